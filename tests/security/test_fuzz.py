"""Schema fuzzing: schemathesis generates requests from the OpenAPI schema at /api/schema/ and sends
them to the Django WSGI app, on a small demo book (300 clients, 2 months, one nightly run).

Every operation, as the API system user (token) and as an account manager (token), with valid
(positive) and invalid (negative) data. Checks: no 5xx; the status code, content type, headers
and body are those the schema documents; invalid data is rejected (4xx), valid data is not
refused with a 400/422 for its shape.

Bounded for CI: FUZZ_EXAMPLES examples per operation, mode and user (default 4; raise it locally,
e.g. FUZZ_EXAMPLES=100), no deadline, derandomized (the same cases on every run, so a failure
in CI reproduces locally).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from clients.models import Client
from tests.conftest import Cast
from tests.security.conftest import World

AS_OF = dt.date(2026, 11, 20)
# A schema-valid request may still be refused with a 400 for what a schema cannot say: a cursor
# that no earlier page handed out, `to` before `from`, an unknown client number in a body ...
# Authentication is the matrix's job (tests/security/test_matrix.py: anonymous and role-less
# callers on every route); schemathesis' probe for it would also generate session cookies.
EXCLUDED_CHECKS = [positive_data_acceptance, ignored_auth]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The project's WSGI app, without closing the test's database connection after each request
    (what Django's own test client does too): the requests see the test transaction's book."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def book(db: None, eager: None, run_nightly: Callable) -> dict[str, object]:
    """A demo book of 300 clients with 2 months of ledger, its nightly results and the demo users."""
    call_command("seed_demo", clients=300, months=2, seed=5, as_of=AS_OF, no_progress=True, stdout=StringIO())
    call_command("retention_defaults", stdout=StringIO())
    run_nightly(AS_OF)  # what the night produced (a failed stage leaves its results empty: fuzz them too)
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(["system_api", "am_alice"], field_name="username")
    alice_client = Client.objects.filter(account_manager__user=users["am_alice"]).order_by("pk").first()
    return {
        "tokens": {name: Token.objects.get_or_create(user=user)[0].key for name, user in users.items()},
        "client_no": alice_client.client_no,
    }


def _fuzzer(operation: object, mode: GenerationMode, headers: dict[str, str]) -> tuple[Callable, list[int]]:
    """A Hypothesis test sending `operation`'s cases of `mode`, and its count of cases."""
    counter = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        counter[0] += 1
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

    return fuzz, counter


def test_every_operation_matches_its_schema_under_fuzzing(book: dict, wsgi_app: WSGIHandler) -> None:
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", wsgi_app, headers={"Authorization": f"Token {book['tokens']['system_api']}"}
    )
    started = time.monotonic()
    failures: list[str] = []
    cases = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    for username, token in book["tokens"].items():
        headers = {"Authorization": f"Token {token}"}
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz, counter = _fuzzer(operation, mode, headers)
                try:
                    fuzz()
                except Unsatisfiable:
                    pass
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{username} {mode.value} {operation.label}: {exc}")
                cases += counter[0]
    elapsed = time.monotonic() - started
    print(
        f"\nfuzz: {len(operations)} operations x 2 users x 2 modes, {cases} cases "
        f"(max {EXAMPLES} per operation, mode and user) in {elapsed:.0f} s"
    )
    assert not failures, "\n\n".join(failures)


# --- regressions of what the fuzzing and the matrix found ---------------------------------------


@pytest.fixture
def schema_paths(db: None) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)["paths"]


def _api(user: object | None = None, **kwargs: object) -> APIClient:
    api = APIClient(**kwargs)
    if user is not None:
        api.force_login(user)
    return api


@pytest.mark.parametrize(
    ("who", "url", "query", "parameter"),
    [
        ("alice", "/api/v1/churn-scores/", {"tier": "0.5"}, "tier"),
        ("alice", "/api/v1/churn-scores/", {"min_risk": "high"}, "min_risk"),
        # a yes/no filter ignored anything but its spellings of true and false
        ("alice", "/api/v1/compliance/flags/", {"pending_approval": "null"}, "pending_approval"),
        ("alice", "/api/v1/activity/", {"about_to_go_dormant": "yes please"}, "about_to_go_dormant"),
        # an empty value meant "no filter"
        ("alice", "/api/v1/complaints/", {"breached": ""}, "breached"),
        ("alice", "/api/v1/compliance/flags/", {"min_age_days": ""}, "min_age_days"),
        # a single-valued filter given twice kept the last value
        ("alice", "/api/v1/retention/callbacks/", {"year": ["2026", "junk"]}, "year"),
        # a malformed page number answered 404 (Not found), like a missing object
        ("alice", "/api/v1/clients/", {"page": "abc"}, "page"),
        ("alice", "/api/v1/clients/", {"page": "99"}, "page"),
        # an empty ordering meant the default order; a page size past the maximum was capped silently
        ("alice", "/api/v1/trades/", {"ordering": ""}, "ordering"),
        ("alice", "/api/v1/activity/", {"page_size": "8901447"}, "page_size"),
        ("alice", "/api/v1/clients/", {"page_size": "501"}, "page_size"),
        # the import record's ordering ignored unknown fields
        ("olga", "/api/v1/ingest/batches/", {"ordering": "junk"}, "ordering"),
    ],
)
def test_a_malformed_filter_answers_400_naming_the_parameter(
    who: str, url: str, query: dict, parameter: str, cast: Cast
) -> None:
    user = cast.olga if who == "olga" else cast.alice.user
    response = _api(user).get(url, query)
    assert response.status_code == 400, response.content
    assert parameter in response.json()


def test_the_tier_filter_rejects_a_tier_that_is_not_one(world: World) -> None:
    api = _api(world.cast.alice.user)
    response = api.get("/api/v1/tiers/", {"tier": "0.5"})
    assert response.status_code == 400
    assert "tier" in response.json()
    assert api.get("/api/v1/tiers/", {"tier": "vip"}).status_code == 200


def test_well_formed_filters_still_filter(cast: Cast) -> None:
    api = _api(cast.alice.user)
    for url, query in [
        ("/api/v1/churn-scores/", {"tier": ["vip", "major"], "min_risk": "70"}),
        ("/api/v1/compliance/flags/", {"pending_approval": "true", "unassigned": "False"}),
        ("/api/v1/complaints/", {"breached": "any", "escalated": "false"}),
        ("/api/v1/clients/", {"page": "1"}),
    ]:
        assert api.get(url, query).status_code == 200, (url, query)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/retention/tasks/abc/"),
        ("get", "/api/v1/complaints/1.8/"),
        ("post", "/api/v1/complaints/0.5/respond/"),
        ("post", "/api/v1/compliance/flags/null/decide/"),
        ("get", "/api/v1/no-such-endpoint/"),
        ("post", "/api/v1/retention/campaigns/W%0A1/measure/"),
    ],
)
def test_a_path_the_api_does_not_have_is_a_json_404(method: str, url: str, cast: Cast) -> None:
    # Was Django's HTML 404 page, or the HTML CSRF failure page for a POST with a session.
    response = getattr(_api(cast.system, enforce_csrf_checks=True), method)(url, {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_role_that_may_not_override_a_tier_is_refused_before_its_body_is_read(cast: Cast) -> None:
    url = f"/api/v1/clients/{cast.alice_client.client_no}/tier-overrides/"
    # alice sees her client but may not override its tier: 403 (was a 400 about the body)
    assert _api(cast.alice.user).post(url, {}, format="json").status_code == 403
    # mike does not see it at all
    assert _api(cast.mike.user).post(url, {}, format="json").status_code == 404
    # tina, the team lead, may: the empty body is what is wrong
    assert _api(cast.tina).post(url, {}, format="json").status_code == 400


def test_a_task_is_patched_with_json_only(cast: Cast) -> None:
    from retention.work.models import RetentionTask

    task = RetentionTask.objects.create(
        client=cast.alice_client,
        assignee=cast.alice.user,
        kind="other",
        reason_code="manual",
        reason_text="Call",
        due=AS_OF,
    )
    url = f"/api/v1/retention/tasks/{task.pk}/"
    # A blank optional field in a form body was read as "not sent": 200 and nothing changed.
    assert _api(cast.alice.user).patch(url, {"assignee": ""}, format="multipart").status_code == 415
    assert _api(cast.alice.user).patch(url, {"assignee": ""}, format="json").status_code == 400


def test_the_schema_documents_what_the_endpoints_answer(schema_paths: dict) -> None:
    def responses(path: str, method: str) -> set[str]:
        return set(schema_paths[path][method]["responses"])

    assert {"400", "403", "404"} <= responses("/api/v1/clients/{client_no}/tier-overrides/", "post")
    assert {"400", "403", "404"} <= responses("/api/v1/tier-overrides/{id}/end/", "post")
    assert {"403", "404"} <= responses("/api/v1/ingest/batches/{id}/", "get")
    assert {"400", "403"} <= responses("/api/v1/ingest/batches/", "get")
    assert {"404", "415"} <= responses("/api/v1/ingest/{kind}/", "post")
    assert "403" in responses("/api/v1/retention/callbacks/progress/", "get")
    assert "403" in responses("/api/v1/retention/callbacks/samples/", "post")
    assert "403" in responses("/api/v1/retention/campaigns/", "post")
    assert "403" in responses("/api/v1/retention/tasks/workload/", "get")
    assert "400" in responses("/api/v1/compliance/suitability-check/", "get")
    assert "400" in responses("/api/v1/tiers/migration/", "get")
    assert "400" in responses("/api/v1/tiers/pareto/", "get")
    assert "400" in responses("/api/v1/nightly-runs/{as_of}/", "get")
    assert "404" in responses("/api/v1/tiers/", "get")
    # the complaint and flag ids are {id} in the path: no stray `pk` parameter
    for path in ("/api/v1/complaints/{id}/", "/api/v1/compliance/flags/{id}/"):
        names = [p["name"] for p in schema_paths[path]["get"].get("parameters", []) if p["in"] == "path"]
        assert names == ["id"], path


def test_scores_document_a_missing_account_manager_as_null(db: None) -> None:
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for name in ("ChurnScore", "Activity"):
        for field in ("account_manager", "branch"):
            assert components[name]["properties"][field].get("nullable") is True, (name, field)
