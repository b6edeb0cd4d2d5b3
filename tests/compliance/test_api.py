"""The compliance API: a permission matrix over every endpoint and role, scope, unmasked ID
numbers only for compliance (audited), pinned query counts, the suitability gate, exports."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from clients.models import Client
from compliance import services
from compliance.exports import safe_cell
from compliance.models import AuditEntry, Flag, FlagKind, Severity, SuitabilityRecord
from tests import factories
from tests.compliance.conftest import AS_OF, assess, instrument

pytestmark = pytest.mark.django_db

ID_NUMBER = "110105198005171234"
MASKED = "110***********1234"
AUTH = 3  # session, user, roles


def make_flag(client, kind=FlagKind.PEP, severity=Severity.MEDIUM, subject="kyc"):
    now = timezone.now()
    return Flag.objects.create(
        client=client,
        kind=kind,
        subject=subject,
        severity=severity,
        evidence={"source": "kyc"},
        first_seen_on=AS_OF,
        last_seen_on=AS_OF,
        raised_at=now,
        updated_at=now,
    )


@pytest.fixture
def book(cast):
    factories.KYCProfileFactory(client=cast.alice_client, id_number=ID_NUMBER)
    for client in (cast.alice_client, cast.bob_client, cast.mike_client):
        assess(client, 2, on=timezone.localdate() - dt.timedelta(days=10))
    flags = {
        "alice": make_flag(cast.alice_client),
        "bob": make_flag(cast.bob_client, kind=FlagKind.SANCTIONS, severity=Severity.HIGH, subject="kyc:x"),
        "mike": make_flag(cast.mike_client),
    }
    instrument(2, "R2.OK")
    instrument(4, "R4.HOT")
    return flags


ROLES = ["carol", "alice", "tina", "mike", "olga", "system", "nobody", "anonymous"]


def client_for(cast, role, api_as):
    from rest_framework.test import APIClient

    users = {
        "carol": cast.carol,
        "alice": cast.alice.user,
        "tina": cast.tina,
        "mike": cast.mike.user,
        "olga": cast.olga,
        "system": cast.system,
    }
    if role == "anonymous":
        return APIClient()
    if role == "nobody":
        return api_as(factories.UserFactory(username="no_role_nina"))
    return api_as(users[role])


def endpoints(cast, book):
    alice_flag = book["alice"].pk
    suit_ok = {"kind": "recommendation", "client_no": cast.alice_client.client_no, "instrument": "R2.OK"}
    today = timezone.localdate().isoformat()
    return {
        "flag-list": ("get", reverse("compliance_api:flag-list"), None),
        "flag-detail": ("get", reverse("compliance_api:flag-detail", args=[alice_flag]), None),
        "take-next": ("post", reverse("compliance_api:flag-take-next"), {}),
        "decide": (
            "post",
            reverse("compliance_api:flag-decide", args=[alice_flag]),
            {"decision": "escalate", "note": "n"},
        ),
        "approve": ("post", reverse("compliance_api:flag-approve", args=[alice_flag]), {}),
        "reject": ("post", reverse("compliance_api:flag-reject", args=[alice_flag]), {"note": "n"}),
        "screening-matches": ("get", reverse("compliance_api:screening-match-list"), None),
        "watch-lists": ("get", reverse("compliance_api:watch-list-list"), None),
        "suitability-list": ("get", reverse("compliance_api:suitability-list"), None),
        "suitability-create": ("post", reverse("compliance_api:suitability-list"), suit_ok),
        "suitability-check": (
            "get",
            reverse("compliance_api:suitability-check") + f"?client_no={cast.alice_client.client_no}&instrument=R2.OK",
            None,
        ),
        "audit": ("get", reverse("compliance_api:audit-list"), None),
        "export": ("get", reverse("compliance_api:export", args=["flags"]) + f"?from={today}&to={today}", None),
    }


# Expected status per endpoint and role. approve answers 409 for an officer: nothing pending.
# alice's flag is in alice's book and tina's team; mike, olga (ops: admin only) and a user
# without a role get 403 on role-gated endpoints, 404 where the scope hides alice's client.
MATRIX = {
    #                     carol alice tina mike olga system nobody anon
    "flag-list": (200, 200, 200, 200, 403, 200, 403, 403),
    "flag-detail": (200, 200, 200, 404, 403, 200, 403, 403),
    "take-next": (200, 403, 403, 403, 403, 403, 403, 403),
    "decide": (200, 403, 403, 403, 403, 403, 403, 403),
    "approve": (409, 403, 403, 403, 403, 403, 403, 403),
    "reject": (409, 403, 403, 403, 403, 403, 403, 403),
    "screening-matches": (200, 403, 403, 403, 403, 403, 403, 403),
    "watch-lists": (200, 403, 403, 403, 403, 403, 403, 403),
    "suitability-list": (200, 200, 200, 200, 403, 200, 403, 403),
    "suitability-create": (201, 201, 201, 404, 403, 201, 403, 403),
    "suitability-check": (200, 200, 200, 404, 403, 200, 403, 403),
    "audit": (200, 403, 403, 403, 403, 403, 403, 403),
    "export": (200, 403, 403, 403, 403, 403, 403, 403),
}


@pytest.mark.parametrize("endpoint", list(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(cast, book, api_as, endpoint, role):
    method, url, data = endpoints(cast, book)[endpoint]
    api = client_for(cast, role, api_as)

    response = getattr(api, method)(url, data, format="json") if method == "post" else api.get(url)

    expected = MATRIX[endpoint][ROLES.index(role)]
    assert response.status_code == expected, (endpoint, role, response.content[:300])


def test_the_matrix_covers_every_compliance_route():
    from compliance.api import urls

    assert {pattern.name for pattern in urls.urlpatterns} == {
        "flag-list",
        "flag-take-next",
        "flag-detail",
        "flag-decide",
        "flag-approve",
        "flag-reject",
        "screening-match-list",
        "watch-list-list",
        "suitability-list",
        "suitability-check",
        "audit-list",
        "export",
    }


def test_account_managers_see_that_a_flag_exists_not_its_details(cast, book, api_as):
    alice = api_as(cast.alice.user).get(reverse("compliance_api:flag-list")).json()["results"]
    detail = api_as(cast.alice.user).get(reverse("compliance_api:flag-detail", args=[book["alice"].pk])).json()
    tina = api_as(cast.tina).get(reverse("compliance_api:flag-list")).json()["results"]

    assert [row["client_no"] for row in alice] == [cast.alice_client.client_no]
    assert alice[0]["kind"] == "pep"
    assert alice[0]["severity"] == "medium"
    assert alice[0]["evidence"] is None
    assert alice[0]["subject"] is None
    assert detail["id_number"] == MASKED
    assert detail["decisions"] is None
    assert {row["client_no"] for row in tina} == {cast.alice_client.client_no, cast.bob_client.client_no}


def test_only_compliance_sees_the_unmasked_id_number_and_each_view_is_audited(cast, book, api_as):
    url = reverse("compliance_api:flag-detail", args=[book["alice"].pk])

    officer = api_as(cast.carol).get(url).json()
    system = api_as(cast.system).get(url).json()

    assert officer["id_number"] == ID_NUMBER
    assert officer["evidence"] == {"source": "kyc"}
    assert system["id_number"] == MASKED
    assert ID_NUMBER not in str(system)
    views = AuditEntry.objects.filter(action="kyc.id_number_viewed")
    assert [(v.actor_name, v.client_no) for v in views] == [("compliance_carol", cast.alice_client.client_no)]


def test_flag_filters(cast, book, api_as):
    api = api_as(cast.carol)
    url = reverse("compliance_api:flag-list")

    def ids(**params):
        response = api.get(url, params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(severity="high") == {book["bob"].pk}
    assert ids(kind="pep") == {book["alice"].pk, book["mike"].pk}
    assert ids(branch="SH01") == {flag.pk for flag in book.values()}
    assert ids(branch="ZZ99") == set()
    assert ids(min_age_days=2) == set()
    assert ids(max_age_days=0) == {flag.pk for flag in book.values()}
    assert api.get(url, {"severity": "urgent"}).status_code == 400
    assert api.get(url, {"min_age_days": "soon"}).status_code == 400


def test_decide_through_the_api_with_four_eyes(cast, book, api_as):
    bob_flag = book["bob"]
    decide = reverse("compliance_api:flag-decide", args=[bob_flag.pk])
    approve = reverse("compliance_api:flag-approve", args=[bob_flag.pk])

    no_note = api_as(cast.carol).post(decide, {"decision": "clear"}, format="json")
    pending = api_as(cast.carol).post(decide, {"decision": "clear", "note": "False alarm."}, format="json")
    self_approval = api_as(cast.carol).post(approve, {}, format="json")
    approved = api_as(cast.dave).post(approve, {"note": "Agreed."}, format="json")

    assert no_note.status_code == 400
    assert "note" in no_note.json()
    assert pending.status_code == 200
    assert pending.json()["applied"] is False
    assert pending.json()["flag"]["pending_approval"] is True
    assert self_approval.status_code == 403
    assert approved.status_code == 200
    assert approved.json()["flag"]["status"] == "cleared"


@pytest.mark.parametrize("reader", ["alice", "carol"])
def test_flag_list_query_count_is_flat(cast, api_as, django_assert_num_queries, reader):
    user = cast.alice.user if reader == "alice" else cast.carol
    api = api_as(user)
    url = reverse("compliance_api:flag-list")
    sizes = []
    for total in (3, 30):
        while Flag.objects.filter(client__account_manager=cast.alice).count() < total:
            make_flag(factories.ClientFactory(account_manager=cast.alice))
        with django_assert_num_queries(AUTH + 2):  # count + page (client, branch, assignee joined)
            response = api.get(url, {"page_size": 100})
        assert response.status_code == 200
        sizes.append(len(response.json()["results"]))
    assert sizes == [3, 30]


def test_audit_and_suitability_list_query_counts_are_flat(cast, api_as, django_assert_num_queries):
    r4 = instrument(4, "R4.Q")
    api = api_as(cast.carol)
    for total in (3, 30):
        while SuitabilityRecord.objects.count() < total:
            client = factories.ClientFactory(account_manager=cast.alice)
            assess(client, 2, on=timezone.localdate())
            services.suitability_record(
                client=client,
                instrument=r4,
                kind="order_warning",
                by=cast.alice.user,
                warning_text="Above your level.",
                acknowledged_at=timezone.now(),
                acknowledgement_method="online",
            )
        with django_assert_num_queries(AUTH + 1):  # one page query, keyset: no count
            suitability = api.get(reverse("compliance_api:suitability-list"), {"page_size": 100})
        with django_assert_num_queries(AUTH + 1):
            trail = api.get(reverse("compliance_api:audit-list"), {"page_size": 100})
        assert len(suitability.json()["results"]) == total
        assert len(trail.json()["results"]) == total


def test_the_suitability_gate(cast, book, api_as):
    url = reverse("compliance_api:suitability-list")
    api = api_as(cast.alice.user)
    base = {"kind": "order_warning", "client_no": cast.alice_client.client_no, "instrument": "R4.HOT"}

    no_warning = api.post(url, base, format="json")
    no_ack = api.post(url, {**base, "warning_text": "R4 is above your C2."}, format="json")
    ok = api.post(
        url,
        {
            **base,
            "warning_text": "R4 is above your C2.",
            "acknowledged_at": timezone.now().isoformat(),
            "acknowledgement_method": "recorded_call",
        },
        format="json",
    )
    check = api.get(
        reverse("compliance_api:suitability-check"),
        {"client_no": cast.alice_client.client_no, "instrument": "R4.HOT"},
    )
    unknown = api.post(url, {**base, "instrument": "NOPE"}, format="json")

    assert no_warning.status_code == 400
    assert "warning_text" in no_warning.json()
    assert no_ack.status_code == 400
    assert "acknowledged_at" in no_ack.json()
    assert ok.status_code == 201
    assert ok.json()["mismatch"] is True
    assert (ok.json()["client_risk_level"], ok.json()["product_risk_level"]) == (2, 4)
    assert check.json()["mismatch"] is True
    assert check.json()["allowed"] is True
    assert unknown.status_code == 400
    assert "instrument" in unknown.json()
    assert AuditEntry.objects.filter(action="suitability.recorded").count() == 1


def test_the_gate_refuses_c1_above_r1_and_clients_without_an_assessment(cast, book, api_as):
    assess(cast.bob_client, 1, on=timezone.localdate() - dt.timedelta(days=1))  # now C1
    fresh = factories.ClientFactory(account_manager=cast.alice)
    api = api_as(cast.tina)
    url = reverse("compliance_api:suitability-list")
    payload = {
        "kind": "recommendation",
        "instrument": "R2.OK",
        "warning_text": "Above your level.",
        "acknowledged_at": timezone.now().isoformat(),
        "acknowledgement_method": "signed_form",
    }

    c1 = api.post(url, {**payload, "client_no": cast.bob_client.client_no}, format="json")
    none = api.post(url, {**payload, "client_no": fresh.client_no}, format="json")

    assert c1.status_code == 400
    assert "C1" in c1.json()["instrument"][0]
    assert none.status_code == 400
    assert "no risk assessment" in none.json()["client_no"][0]
    assert not SuitabilityRecord.objects.exists()


def test_exports_are_csv_and_xlsx_with_formulas_defused(cast, book, api_as):
    evil = factories.ClientFactory(account_manager=cast.alice, name='=HYPERLINK("http://x")')
    make_flag(evil)
    services.flag_decide(flag=book["alice"], officer=cast.carol, decision="clear", note="-2+3 checked")
    api = api_as(cast.carol)
    today = timezone.localdate().isoformat()

    flags_csv = api.get(reverse("compliance_api:export", args=["flags"]), {"from": today, "to": today})
    decisions_xlsx = api.get(
        reverse("compliance_api:export", args=["decisions"]), {"from": today, "to": today, "file_format": "xlsx"}
    )
    bad = api.get(reverse("compliance_api:export", args=["flags"]), {"from": today, "to": "2000-01-01"})

    assert flags_csv.status_code == 200
    rows = list(csv.DictReader(io.StringIO(flags_csv.content.decode("utf-8-sig"))))
    assert len(rows) == 4
    names = {row["client_name"] for row in rows}
    assert '\'=HYPERLINK("http://x")' in names
    assert MASKED in {row["id_number_masked"] for row in rows}
    sheet = load_workbook(io.BytesIO(decisions_xlsx.content)).active
    values = list(sheet.values)
    assert values[0][:3] == ("decision_id", "flag_id", "client_no")
    assert values[1][7] == "'-2+3 checked"
    assert bad.status_code == 400
    assert AuditEntry.objects.filter(action="compliance.exported").count() == 2


def test_safe_cell_leaves_numbers_alone():
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("plain") == "plain"
    assert safe_cell(-5) == -5


def test_restrict_through_the_api_restricts_the_account(cast, book, api_as):
    flag = book["mike"]
    response = api_as(cast.carol).post(
        reverse("compliance_api:flag-decide", args=[flag.pk]),
        {"decision": "restrict", "note": "Refuses to provide source of funds."},
        format="json",
    )

    assert response.status_code == 200
    assert Client.objects.get(pk=cast.mike_client.pk).status == Client.Status.RESTRICTED


def test_screening_match_and_watch_list_query_counts_are_flat(cast, api_as, django_assert_num_queries):
    from compliance.models import ScreeningMatch
    from compliance.screening import watch_list_load

    api = api_as(cast.carol)
    for total in (3, 30):
        rows = "".join(f"E{n},Name Number{n}\n" for n in range(total))
        entries = watch_list_load(
            data=f"entry_id,name\n{rows}".encode(), list_name=f"List {total}", kind="sanctions", by="test"
        ).watch_list.entries.all()
        for entry in entries:
            ScreeningMatch.objects.create(
                client=factories.ClientFactory(account_manager=cast.alice),
                entry=entry,
                score=90,
                name_score=90,
                matched_fields=["name"],
                client_name="x",
                matched_name=entry.name,
                screened_at=timezone.now(),
            )
        with django_assert_num_queries(AUTH + 2):  # count + page (client, entry, list joined)
            matches = api.get(reverse("compliance_api:screening-match-list"), {"page_size": 100})
        with django_assert_num_queries(AUTH + 2):
            lists = api.get(reverse("compliance_api:watch-list-list"))
        assert len(matches.json()["results"]) == ScreeningMatch.objects.count()
        assert len(lists.json()["results"]) == (1 if total == 3 else 2)
