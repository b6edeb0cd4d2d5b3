"""Role x endpoint matrix: every API operation and every page, for every role of the cast.

The routes are not listed by hand: the API operations come from the OpenAPI schema served at
/api/schema/, the pages from Django's URL resolver (every pattern outside /admin/, /api/v1/
and /i18n/). Each route must have a row in MATRIX below, or the test fails and says which row
to add (with the statuses it observed, to check against the policy before pasting them).

For every route and role the test sends:
- GET (every route, whatever it declares);
- each unsafe method the route declares (the schema's methods for the API; POST for the
  page rows listed in MATRIX), with an empty body (an allowed role may get 400 for it), or the
  valid body of BODIES where the body names a client: a refused role must get 403, 404 or 405
  and change nothing (one fingerprint of every table before and after a route's refused
  requests), and an object or body client outside the caller's scope is 404, never a 400;
- every other unsafe method (POST, PUT, PATCH, DELETE): refused for everybody, nothing changes.
Paths that address an object of a client are sent once per owner (a client, flag, task ...
of alice's, bob's and mike's): `S` rows expect 200 in the caller's scope and 404 outside it.
Every response of every request is scanned for the client numbers and names of the clients
outside the caller's scope (tests/security/conftest.py gives them distinctive values).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.test import Client as PageClient
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.conftest import AS_OF, CLIENT_NAMES, CLIENT_NOS, OWNERS, World

ROLES = ("alice", "bob", "mike", "tina", "carol", "dave", "olga", "system", "nina", "anon")

# Whose clients each role sees (brokercrm.policy).
SCOPE: dict[str, frozenset[str]] = {
    "alice": frozenset({"alice"}),
    "bob": frozenset({"bob"}),
    "mike": frozenset({"mike"}),
    "tina": frozenset({"alice", "bob"}),
    "carol": frozenset(OWNERS),
    "dave": frozenset(OWNERS),
    "olga": frozenset(OWNERS),
    "system": frozenset(OWNERS),
    "nina": frozenset(),
    "anon": frozenset(),
}

S = "S"  # 200 for an object of a client in the caller's scope, 404 outside it
W = "W"  # may write: for our empty body any answer but 403/405/5xx (400 is expected); 404 outside the scope
X = "X"  # refused: 403, 404 or 405 (anonymous on a page: the sign-in redirect); nothing changes
R = "R"  # a read-only page's unsafe method: 405 (require_safe), refused (401/403), or the sign-in page; never 2xx
L = "L"  # a page, anonymous: redirected to the sign-in page (302 to /accounts/login/)

# fmt: off
MATRIX: dict[str, tuple[int | str, ...]] = {
    #                                                         alice bob mike tina carol dave olga system nina anon
    # --- the API: /api/v1/ (from the OpenAPI schema) ---------------------------------------------------------------
    "POST /api/v1/auth/token/":                                (400, 400, 400, 400, 400, 400, 400, 400, 400, 400),
    "GET /api/v1/auth/token/":                                 (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    # client data: every role reads its scope; no role, nothing; anonymous, 403
    "GET /api/v1/clients/":                                    (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/clients/{client_no}/":                        (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/clients/{client_no}/interactions/":           (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/clients/{client_no}/needs/":                  (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/clients/{client_no}/scores/":                 (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/clients/{client_no}/tiers/":                  (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/trades/":                                     (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/cash-flows/":                                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/asset-snapshots/":                            (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/instruments/":                                (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    # tiers and segmentation: firm-wide figures for team leads and firm-wide roles only
    "GET /api/v1/tiers/":                                      (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/tiers/runs/":                                 (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/tiers/pareto/":                               (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/tiers/migration/":                            (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/reactivation/":                               (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/nightly-runs/":                               (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/nightly-runs/{as_of}/":                       (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    # tier overrides: ops, or the client's team lead
    "GET /api/v1/clients/{client_no}/tier-overrides/":         (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/clients/{client_no}/tier-overrides/":        (X,   X,   X,   W,   X,   X,   W,   X,   X,   X),
    "GET /api/v1/tier-overrides/{id}/end/":                    (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/tier-overrides/{id}/end/":                   (X,   X,   X,   W,   X,   X,   W,   X,   X,   X),
    # scores
    "GET /api/v1/churn-scores/":                               (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/activity/":                                   (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/lifetime-fits/":                              (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    # feedback: complaints in scope; the register for firm-wide roles; answers by the AM or the survey system
    "GET /api/v1/complaints/":                                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "POST /api/v1/complaints/":                                (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/complaints/register/":                        (403, 403, 403, 403, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/complaints/{id}/":                            (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/complaints/{id}/respond/":                    (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/complaints/{id}/respond/":                   (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/complaints/{id}/escalate/":                   (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/complaints/{id}/escalate/":                  (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/complaints/{id}/resolve/":                    (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/complaints/{id}/resolve/":                   (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/survey-questions/":                           (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/survey-responses/":                           (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "POST /api/v1/survey-responses/":                          (W,   W,   W,   X,   X,   X,   X,   W,   X,   X),
    # metrics: rows of the caller's scope
    "GET /api/v1/metrics/dashboard/":                          (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/metrics/series/":                             (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/metrics/definitions/":                        (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    # retention work: tasks, callbacks and entitlements in scope; playbooks, campaigns, progress firm-wide
    "GET /api/v1/retention/tasks/":                            (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "POST /api/v1/retention/tasks/":                           (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/tasks/workload/":                   (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/retention/tasks/{id}/":                       (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "PATCH /api/v1/retention/tasks/{id}/":                     (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/tasks/{id}/complete/":              (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/retention/tasks/{id}/complete/":             (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/tasks/{id}/cancel/":                (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/retention/tasks/{id}/cancel/":               (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/playbooks/":                        (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/retention/callbacks/":                        (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/retention/callbacks/progress/":               (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "GET /api/v1/retention/callbacks/samples/":                (403, 403, 403, 403, 405, 405, 405, 403, 403, 403),
    "POST /api/v1/retention/callbacks/samples/":               (X,   X,   X,   X,   W,   W,   W,   X,   X,   X),
    "GET /api/v1/retention/callbacks/{id}/attempts/":          (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/retention/callbacks/{id}/attempts/":         (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/service-products/":                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/v1/retention/clients/{client_no}/entitlements/": (S,   S,   S,   S,   S,   S,   S,   S,   S,   403),
    "GET /api/v1/retention/entitlements/{id}/deliveries/":     (405, 405, 405, 405, 405, 405, 405, 405, 405, 403),
    "POST /api/v1/retention/entitlements/{id}/deliveries/":    (W,   W,   W,   W,   W,   W,   W,   W,   X,   X),
    "GET /api/v1/retention/campaigns/":                        (403, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    "POST /api/v1/retention/campaigns/":                       (X,   X,   X,   X,   W,   W,   W,   X,   X,   X),
    "GET /api/v1/retention/campaigns/{id}/{action}/":          (403, 403, 403, 403, 405, 405, 405, 403, 403, 403),
    "POST /api/v1/retention/campaigns/{id}/{action}/":         (X,   X,   X,   X,   W,   W,   W,   X,   X,   X),
    # compliance: officers decide and read the trail; AMs and leads see their clients' flags; ops: admin only
    "GET /api/v1/compliance/flags/":                           (200, 200, 200, 200, 200, 200, 403, 200, 403, 403),
    "GET /api/v1/compliance/flags/{id}/":                      (S,   S,   S,   S,   S,   S,   403, S,   403, 403),
    "GET /api/v1/compliance/flags/take-next/":                 (403, 403, 403, 403, 405, 405, 403, 403, 403, 403),
    "POST /api/v1/compliance/flags/take-next/":                (X,   X,   X,   X,   W,   W,   X,   X,   X,   X),
    "GET /api/v1/compliance/flags/{id}/decide/":               (403, 403, 403, 403, 405, 405, 403, 403, 403, 403),
    "POST /api/v1/compliance/flags/{id}/decide/":              (X,   X,   X,   X,   W,   W,   X,   X,   X,   X),
    "GET /api/v1/compliance/flags/{id}/approve/":              (403, 403, 403, 403, 405, 405, 403, 403, 403, 403),
    "POST /api/v1/compliance/flags/{id}/approve/":             (X,   X,   X,   X,   W,   W,   X,   X,   X,   X),
    "GET /api/v1/compliance/flags/{id}/reject/":               (403, 403, 403, 403, 405, 405, 403, 403, 403, 403),
    "POST /api/v1/compliance/flags/{id}/reject/":              (X,   X,   X,   X,   W,   W,   X,   X,   X,   X),
    "GET /api/v1/compliance/screening-matches/":               (403, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    "GET /api/v1/compliance/watch-lists/":                     (403, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    "GET /api/v1/compliance/suitability-check/":               (S,   S,   S,   S,   S,   S,   403, S,   403, 403),
    "GET /api/v1/compliance/suitability-records/":             (200, 200, 200, 200, 200, 200, 403, 200, 403, 403),
    "POST /api/v1/compliance/suitability-records/":            (W,   W,   W,   W,   W,   W,   X,   W,   X,   X),
    "GET /api/v1/compliance/audit/":                           (403, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    "GET /api/v1/compliance/exports/{dataset}/":               (403, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    # ingestion: other systems and ops
    "GET /api/v1/ingest/{kind}/":                              (403, 403, 403, 403, 403, 403, 405, 405, 403, 403),
    "POST /api/v1/ingest/{kind}/":                             (X,   X,   X,   X,   X,   X,   W,   W,   X,   X),
    "GET /api/v1/ingest/batches/":                             (403, 403, 403, 403, 403, 403, 200, 200, 403, 403),
    "GET /api/v1/ingest/batches/{id}/":                        (403, 403, 403, 403, 403, 403, 200, 200, 403, 403),
    # --- pages (from the URL resolver) -----------------------------------------------------------------------------
    "GET /healthz":                                            (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # the schema and its docs: signed-in users only
    "GET /api/schema/":                                        (200, 200, 200, 200, 200, 200, 200, 200, 200, 403),
    "GET /api/docs/":                                          (200, 200, 200, 200, 200, 200, 200, 200, 200, L),
    "GET /accounts/login/":                                    (302, 302, 302, 302, 302, 302, 302, 302, 302, 200),
    "POST /accounts/login/":                                   (302, 302, 302, 302, 302, 302, 302, 302, 302, 200),
    "GET /accounts/logout/":                                   (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    "POST /accounts/logout/":                                  (W,   W,   W,   W,   W,   W,   W,   W,   W,   W),
    "GET /":                                                   (200, 200, 200, 200, 200, 200, 200, 200, 200, L),
    "GET /clients/<client_no>/":                               (S,   S,   S,   S,   S,   S,   S,   S,   S,   L),
    "GET /clients/<client_no>/trades/":                        (S,   S,   S,   S,   S,   S,   S,   S,   S,   L),
    # acting on a client (account managers and team leads; firm-wide roles read only)
    "GET /clients/<client_no>/interactions/":                  (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /clients/<client_no>/interactions/":                 (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /clients/<client_no>/tasks/":                         (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /clients/<client_no>/tasks/":                        (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /clients/<client_no>/complaints/":                    (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /clients/<client_no>/complaints/":                   (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /clients/<client_no>/callbacks/<pk>/":                (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /clients/<client_no>/callbacks/<pk>/":               (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /tasks/<pk>/done/":                                   (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /tasks/<pk>/done/":                                  (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /tasks/<pk>/reschedule/":                             (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /tasks/<pk>/reschedule/":                            (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    "GET /tasks/<pk>/cancel/":                                 (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /tasks/<pk>/cancel/":                                (W,   W,   W,   W,   X,   X,   X,   X,   X,   L),
    # compliance pages: the queue of one's scope; decisions for officers; a client's trail for officers
    "GET /compliance/":                                        (200, 200, 200, 200, 200, 200, 403, 403, 403, L),
    "GET /compliance/take-next/":                              (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /compliance/take-next/":                             (X,   X,   X,   X,   W,   W,   X,   X,   X,   L),
    "GET /compliance/flags/<pk>/":                             (S,   S,   S,   S,   S,   S,   403, 403, 403, L),
    "GET /compliance/flags/<pk>/decide/":                      (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /compliance/flags/<pk>/decide/":                     (X,   X,   X,   X,   W,   W,   X,   X,   X,   L),
    "GET /compliance/flags/<pk>/approve/":                     (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /compliance/flags/<pk>/approve/":                    (X,   X,   X,   X,   W,   W,   X,   X,   X,   L),
    "GET /compliance/flags/<pk>/reject/":                      (405, 405, 405, 405, 405, 405, 405, 405, 405, L),
    "POST /compliance/flags/<pk>/reject/":                     (X,   X,   X,   X,   W,   W,   X,   X,   X,   L),
    "GET /compliance/clients/<client_no>/audit/":              (403, 403, 403, 403, S,   S,   403, 403, 403, L),
    # management dashboards: team leads and firm-wide roles
    "GET /dashboards/":                                        (403, 403, 403, 200, 200, 200, 200, 200, 403, L),
}
# fmt: on

# Path parameters: (the path segment before it, its name) -> what fills it. The kinds of
# SCOPED_KINDS belong to a client (one per owner, from the world fixture); the others are the
# same for every owner.
PARAMETERS: dict[tuple[str, str], str] = {
    ("clients", "client_no"): "client_no",
    ("complaints", "id"): "complaint",
    ("flags", "id"): "flag",
    ("flags", "pk"): "flag",
    ("tier-overrides", "id"): "tier_override",
    ("tasks", "id"): "task",
    ("tasks", "pk"): "task",
    ("callbacks", "id"): "callback",
    ("callbacks", "pk"): "callback",
    ("entitlements", "id"): "entitlement",
    ("campaigns", "id"): "campaign",
    ("{id}", "action"): "measure",
    ("batches", "id"): "batch",
    ("nightly-runs", "as_of"): AS_OF.isoformat(),
    ("exports", "dataset"): "flags",
    ("ingest", "kind"): "trades",
}
SCOPED_KINDS = frozenset({"client_no", "complaint", "flag", "tier_override", "task", "callback", "entitlement"})

# Query strings some GETs need to answer more than a 400 ("{client_no}" is the owner's).
QUERIES: dict[str, dict[str, str]] = {
    "GET /api/v1/compliance/suitability-check/": {"client_no": "{client_no}", "instrument": "ZQ-R5.SH"},
    "GET /api/v1/compliance/exports/{dataset}/": {"from": "2026-01-01", "to": "2026-12-31"},
    "GET /api/v1/complaints/register/": {"year": "2026"},
    "GET /api/v1/metrics/series/": {"metric": "clients"},
    "GET /api/v1/retention/callbacks/progress/": {"year": "2026"},
    "GET /api/v1/tiers/migration/": {"from": AS_OF.isoformat(), "to": AS_OF.isoformat()},
    "GET /": {"q": "Zebulon"},
}
# Valid bodies for the writes that name a client in the body: in scope they are written, outside
# the scope they must answer 404 (never a 400 that tells the client number exists).
BODIES: dict[str, dict[str, object]] = {
    "POST /api/v1/complaints/": {
        "client_no": "{client_no}",
        "channel": "phone",
        "category": "service",
        "severity": "low",
        "description": "Matrix probe",
    },
    "POST /api/v1/survey-responses/": {"client_no": "{client_no}", "question": "{question}", "score": 9},
    "POST /api/v1/retention/tasks/": {
        "client_no": "{client_no}",
        "kind": "other",
        "reason_text": "Matrix probe",
        "due": "2026-12-31",
    },
    "POST /api/v1/compliance/suitability-records/": {
        "kind": "recommendation",
        "client_no": "{client_no}",
        "instrument": "ZQ-R1.SH",
    },
    "PATCH /api/v1/retention/tasks/{id}/": {"priority": 61},
}
# Routes whose query or body names the owner's client: sent once per owner, like a path.
BY_OWNER = frozenset(key for key, values in {**QUERIES, **BODIES}.items() if "{client_no}" in map(str, values.values()))

CATCH_ALL = ("api-not-found",)  # /api/v1/<anything else>: a JSON 404, not an endpoint
SIGN_OUT = ("/accounts/logout/",)
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
EXCLUDED_PREFIXES = ("admin/", "api/v1/", "i18n/")  # admin: Django's permissions; api/v1: the schema


@dataclass(frozen=True)
class Route:
    path: str  # "/api/v1/clients/{client_no}/" or "/clients/<client_no>/"
    api: bool
    methods: frozenset[str]  # unsafe methods it declares

    @property
    def params(self) -> list[tuple[str, str]]:
        """(segment before, name) of each path parameter, in order."""
        segments = self.path.strip("/").split("/")
        found = []
        for before, segment in zip(["", *segments], segments, strict=False):
            match = re.fullmatch(r"[{<](\w+)[}>]", segment)
            if match:
                found.append((before, match.group(1)))
        return found

    @property
    def scoped(self) -> bool:
        return any(PARAMETERS.get(param) in SCOPED_KINDS for param in self.params)


def _route_text(pattern: object) -> str:
    text = str(pattern)
    if text.startswith("^"):  # a re_path: named groups become {name}
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text).lstrip("^").rstrip("$")
    return text


def resolver_routes() -> list[str]:
    """Every URL pattern of the project, as "prefix/<name>/" text."""
    found: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + _route_text(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name not in CATCH_ALL:
                found.append(prefix + _route_text(pattern.pattern))

    walk(get_resolver().url_patterns, "")
    return found


def _plain(route: str) -> str:
    """ "clients/<str:client_no>/" -> "/clients/<client_no>/"."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", route)


def _as_schema_path(route: str) -> str:
    """A resolver route under api/v1/ as the schema writes it (pk is coerced to id)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + route)
    return path.replace("{pk}", "{id}")


def collect_routes(schema: dict) -> list[Route]:
    routes = [
        Route(path, True, frozenset(m.upper() for m in ops if m.upper() in UNSAFE))
        for path, ops in schema["paths"].items()
    ]
    for route in resolver_routes():
        if not route.startswith(EXCLUDED_PREFIXES):
            path = _plain(route)
            declared = {method for method in UNSAFE if f"{method} {path}" in MATRIX}
            routes.append(Route(path, False, frozenset(declared)))
    return routes


def fingerprint() -> str:
    """A digest of every row of every table the application owns (not sessions or logs)."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.proxy or not model._meta.managed or model._meta.app_label in ("sessions", "axes", "admin"):
            continue
        rows = list(model._base_manager.order_by("pk").values_list())
        digest.update(repr((model._meta.label, rows)).encode())
    return digest.hexdigest()


class Caller:
    """Signed-in clients of one role: an API client (the API system user by token) and a page client."""

    def __init__(self, world: World, role: str) -> None:
        self.role = role
        self.api = APIClient()
        self.page = PageClient()
        user = _user(world, role)
        if user is not None:
            self.page.force_login(user)
            if role == "system":
                token, _ = Token.objects.get_or_create(user=user)
                self.api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            else:
                self.api.force_login(user)

    def send(self, route: Route, method: str, url: str, data: dict[str, object]) -> object:
        if route.api:
            call = getattr(self.api, method.lower())
            return call(url, data) if method == "GET" else call(url, data, format="json")
        call = getattr(self.page, method.lower())
        return call(url, data) if method in ("GET", "POST") else call(url)


def _user(world: World, role: str) -> object | None:
    cast = world.cast
    return {
        "alice": cast.alice.user,
        "bob": cast.bob.user,
        "mike": cast.mike.user,
        "tina": cast.tina,
        "carol": cast.carol,
        "dave": cast.dave,
        "olga": cast.olga,
        "system": cast.system,
        "nina": world.nina,
        "anon": None,
    }[role]


def _fill(world: World, route: Route, owner: str) -> str:
    path = route.path
    for param in route.params:
        kind = PARAMETERS[param]
        value = world.ids[kind][owner] if kind in world.ids else kind
        path = re.sub(r"[{<]" + param[1] + r"[}>]", str(value), path, count=1)
    return path


def _body_text(response: object) -> str:
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return content.decode("utf-8", errors="replace")


def _leaks(role: str, response: object) -> list[str]:
    text = _body_text(response)
    outside = [owner for owner in OWNERS if owner not in SCOPE[role]]
    return [
        f"{owner}'s client {marker!r}"
        for owner in outside
        for marker in (CLIENT_NOS[owner], CLIENT_NAMES[owner])
        if marker in text
    ]


def _expected(symbol: int | str, *, in_scope: bool, route: Route) -> Callable[[int, object], bool]:
    """A check of a status (and response) against a MATRIX cell."""
    if symbol == S:
        return lambda status, _: status == (200 if in_scope else 404)
    if symbol == W:
        if not in_scope:
            return lambda status, _: status == 404
        return lambda status, _: status < 500 and status not in (403, 405)
    if symbol == X:
        if route.api:
            return lambda status, _: status in (403, 404, 405)
        return lambda status, response: status in (403, 404, 405) or _to_sign_in(status, response)
    if symbol == R:
        return lambda status, response: status in (401, 403, 405) or _to_sign_in(status, response)
    if symbol == L:
        return _to_sign_in
    return lambda status, _: status == symbol


def _to_sign_in(status: int, response: object) -> bool:
    return status == 302 and response["Location"].startswith("/accounts/login/")


def test_every_route_answers_every_role_as_the_matrix_says(world: World) -> None:
    system = Caller(world, "system")
    schema = system.api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    routes = collect_routes(schema)
    schema_paths = set(schema["paths"])
    undocumented = sorted(
        _as_schema_path(route)
        for route in resolver_routes()
        if route.startswith("api/v1/") and _as_schema_path(route) not in schema_paths
    )
    assert not undocumented, f"API routes missing from the OpenAPI schema: {undocumented}"
    unknown_parameters = sorted({param for route in routes for param in route.params if param not in PARAMETERS})
    assert not unknown_parameters, f"Add the path parameters {unknown_parameters} to PARAMETERS in {__file__}."

    callers = {role: Caller(world, role) for role in ROLES}
    failures: list[str] = []
    missing: dict[str, dict[str, list[int]]] = {}
    requests = 0
    checked: set[tuple[str, str]] = set()  # (route key, role)

    # Signing out ends the callers' sessions: that route goes last.
    routes.sort(key=lambda route: route.path in SIGN_OUT)
    for route in routes:
        owners = OWNERS if route.scoped or f"GET {route.path}" in BY_OWNER else OWNERS[:1]
        # Refused attempts first, all under one fingerprint: nothing may change.
        before = fingerprint()
        refused: list[str] = []
        allowed: list[tuple[str, str]] = []
        for method in ("GET", *UNSAFE):
            key = f"{method} {route.path}"
            tried = owners
            if method == "GET" or method in route.methods:
                row = MATRIX.get(key, (None,) * len(ROLES))
            elif route.api or method == "POST":
                # An undeclared unsafe method: refused for everybody (a page: only POST is tried, and a
                # read-only page may render as for a GET). One owner is enough: nothing is looked up.
                row, tried = (X if route.api else R,) * len(ROLES), OWNERS[:1]
            else:
                continue
            for role, symbol in zip(ROLES, row, strict=True):
                if method in UNSAFE and symbol not in (W, None):
                    refused.append(f"{role} {method}")
                    for owner in tried:
                        requests += _check(callers[role], route, method, owner, symbol, world, failures, missing)
                    checked.add((key, role))
                else:
                    allowed.append((method, role, symbol))
        after = fingerprint()
        if after != before:
            failures.append(f"{route.path}: a refused request changed the data ({', '.join(refused)})")
        for method, role, symbol in allowed:
            key = f"{method} {route.path}"
            for owner in owners:
                requests += _check(callers[role], route, method, owner, symbol, world, failures, missing)
            checked.add((key, role))

    if missing:
        rows = "\n".join(
            f'    "{key}": ({", ".join(str(min(statuses[role])) for role in ROLES)}),  # observed; check!'
            for key, statuses in sorted(missing.items())
        )
        failures.append(
            f"New routes without a row in MATRIX ({__file__}): add one per route and method, saying what each "
            f"role may get (S, W, X or a status). The statuses observed now, for owner alice:\n{rows}"
        )
    stale = sorted(set(MATRIX) - {key for key, _ in checked if key in MATRIX})
    if stale:
        failures.append(f"MATRIX rows for routes that no longer exist: {stale}")
    api_ops = sum(1 + len(route.methods) for route in routes if route.api)
    print(
        f"\nmatrix: {len(routes)} routes ({sum(r.api for r in routes)} API paths with {api_ops} operations, "
        f"{sum(not r.api for r in routes)} pages) x {len(ROLES)} roles x GET and the unsafe methods: "
        f"{len(checked)} route-method-role cells, {requests} requests, every body scanned for out-of-scope clients"
    )
    assert not failures, "\n".join(failures)


def _check(
    caller: Caller,
    route: Route,
    method: str,
    owner: str,
    symbol: int | str | None,
    world: World,
    failures: list[str],
    missing: dict[str, dict[str, list[int]]],
) -> int:
    key = f"{method} {route.path}"
    url = _fill(world, route, owner)
    values = {kind: ids[owner] for kind, ids in world.ids.items()}
    data = {
        name: value.format(**values) if isinstance(value, str) else value
        for name, value in {**QUERIES, **BODIES}.get(key, {}).items()
    }
    data = {name: int(value) if name in ("question",) else value for name, value in data.items()}
    response = caller.send(route, method, url, data)
    status = response.status_code
    where = f"{key} as {caller.role}" + (f" (owner {owner})" if route.scoped else "")
    if status >= 500:
        failures.append(f"{where}: {status}")
    leaks = _leaks(caller.role, response)
    if leaks:
        failures.append(f"{where}: the response shows {', '.join(leaks)}")
    if symbol is None:
        if owner == OWNERS[0]:
            missing.setdefault(key, defaultdict(list))[caller.role].append(status)
        return 1
    by_owner = route.scoped or key in BY_OWNER
    in_scope = owner in SCOPE[caller.role] if by_owner else True
    if symbol == S and not by_owner:
        failures.append(f"{key}: S needs a path (or query) addressing a client's object")
    elif not _expected(symbol, in_scope=in_scope, route=route)(status, response):
        failures.append(f"{where}: got {status}, the matrix says {symbol}")
    return 1
