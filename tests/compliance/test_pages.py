"""Compliance pages: who may see what, the queue and take-next, a flag's evidence and context,
decisions through the forms with four eyes, a client's audit trail, and query counts that do
not grow with the number of flags."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from clients.models import Client
from compliance import services
from compliance.models import AuditEntry, Flag, FlagDecision, FlagKind, FlagStatus, Severity
from tests import factories
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
ID_NUMBER = "310101199001011234"
QUEUE = "/compliance/"


def signed_in(user: object) -> Browser:
    browser = Browser()
    browser.force_login(user)
    return browser


def make_flag(
    client: Client,
    *,
    kind: str = FlagKind.PEP,
    severity: int = Severity.MEDIUM,
    subject: str = "kyc",
    days_ago: int = 1,
    evidence: dict | None = None,
) -> Flag:
    at = timezone.now() - dt.timedelta(days=days_ago)
    return Flag.objects.create(
        client=client,
        kind=kind,
        subject=subject,
        severity=severity,
        evidence=evidence if evidence is not None else {"source": "kyc", "declared_pep": True},
        first_seen_on=AS_OF,
        last_seen_on=AS_OF,
        raised_at=at,
        updated_at=at,
    )


def flag_url(flag: Flag, action: str = "") -> str:
    return f"/compliance/flags/{flag.pk}/{action + '/' if action else ''}"


@pytest.fixture
def flags(cast: Cast) -> dict[str, Flag]:
    factories.KYCProfileFactory(client=cast.alice_client, id_number=ID_NUMBER)
    return {
        "alice": make_flag(
            cast.alice_client,
            kind=FlagKind.SANCTIONS,
            severity=Severity.HIGH,
            subject="entry:999",
            days_ago=3,
            evidence={"list": "Firm sanctions", "matched_name": "Zhang Wei", "score": 96},
        ),
        "bob": make_flag(cast.bob_client, kind=FlagKind.KYC_REVIEW_OVERDUE, subject="review"),
        "mike": make_flag(cast.mike_client, kind=FlagKind.ID_DOCUMENT, severity=Severity.LOW, subject="expiry:x"),
    }


# --- Who may see what ----------------------------------------------------------------------------


def test_only_officers_and_client_owners_reach_the_pages(cast: Cast, flags: dict[str, Flag]) -> None:
    for user in (cast.olga, cast.system):
        browser = signed_in(user)
        assert browser.get(QUEUE).status_code == 403
        assert browser.get(flag_url(flags["alice"])).status_code == 403
        assert browser.post("/compliance/take-next/").status_code == 403
        assert browser.get(f"/compliance/clients/{cast.alice_client.client_no}/audit/").status_code == 403
    anonymous = Browser()
    response = anonymous.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert anonymous.get(flag_url(flags["alice"])).status_code == 302


def test_the_officer_sees_the_whole_queue(cast: Cast, flags: dict[str, Flag]) -> None:
    page = signed_in(cast.carol).get(QUEUE)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Compliance review queue" in text
    for client in (cast.alice_client, cast.bob_client, cast.mike_client):
        assert client.client_no in text
    # highest severity first
    assert text.index(cast.alice_client.client_no) < text.index(cast.bob_client.client_no)
    assert text.index(cast.bob_client.client_no) < text.index(cast.mike_client.client_no)
    assert "Take next flag" in text


def test_account_managers_see_only_that_their_clients_have_flags(cast: Cast, flags: dict[str, Flag]) -> None:
    alice = signed_in(cast.alice.user)
    text = alice.get(QUEUE).content.decode()
    assert "Compliance flags on your clients" in text
    assert cast.alice_client.client_no in text
    assert cast.bob_client.client_no not in text
    assert cast.mike_client.client_no not in text
    assert "Take next flag" not in text

    page = alice.get(flag_url(flags["alice"]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Sanctions list match" in text
    for secret in ("Zhang Wei", "entry:999", ID_NUMBER, "Record decision", "Decisions so far"):
        assert secret not in text
    assert alice.get(flag_url(flags["mike"])).status_code == 404
    assert alice.post(flag_url(flags["alice"], "decide"), {"decision": "clear", "note": "x"}).status_code == 403
    assert alice.get(f"/compliance/clients/{cast.alice_client.client_no}/audit/").status_code == 403


def test_the_team_lead_sees_the_team_books_only(cast: Cast, flags: dict[str, Flag]) -> None:
    tina = signed_in(cast.tina)
    text = tina.get(QUEUE).content.decode()
    assert cast.alice_client.client_no in text
    assert cast.bob_client.client_no in text
    assert cast.mike_client.client_no not in text
    assert tina.get(flag_url(flags["bob"])).status_code == 200
    assert tina.get(flag_url(flags["mike"])).status_code == 404


def test_an_unknown_flag_or_client_is_404(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    assert carol.get("/compliance/flags/999999/").status_code == 404
    assert carol.post("/compliance/flags/999999/decide/", {"decision": "clear", "note": "x"}).status_code == 404
    assert carol.get("/compliance/clients/NOPE/audit/").status_code == 404


# --- The queue -------------------------------------------------------------------------------------


def test_the_queue_filters_by_kind_severity_branch_and_view(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    text = carol.get(QUEUE, {"kind": FlagKind.SANCTIONS}).content.decode()
    assert cast.alice_client.client_no in text
    assert cast.bob_client.client_no not in text
    text = carol.get(QUEUE, {"severity": "low"}).content.decode()
    assert cast.mike_client.client_no in text
    assert cast.alice_client.client_no not in text
    text = carol.get(QUEUE, {"branch": "SH01", "severity": "high", "kind": FlagKind.PEP}).content.decode()
    assert "No flag matches these filters." in text
    text = carol.get(QUEUE, {"view": "mine"}).content.decode()
    assert "You have no flag in review." in text
    page = carol.get(QUEUE, {"severity": "extreme"})
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()


def test_counts_and_pages_stop_at_the_cap(cast: Cast, flags: dict[str, Flag], monkeypatch) -> None:
    from compliance import pages

    monkeypatch.setattr(pages, "COUNT_CAP", 2)
    monkeypatch.setattr(pages, "PAGE_SIZE", 1)
    response = signed_in(cast.carol).get(QUEUE)

    assert response.status_code == 200
    assert str(response.context["counts"]["waiting"]) == "2+"  # 3 waiting
    assert str(response.context["counts"]["high"]) == "1"
    assert response.context["total_label"] == "2+"
    assert response.context["page"].paginator.num_pages == 2  # the third flag is not offered
    assert 'data-testid="count-waiting">2+<' in response.text


def test_take_next_assigns_the_top_flag_and_opens_it(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    response = carol.post("/compliance/take-next/", {"kind": "", "severity": "", "branch": ""})
    assert response.status_code == 302
    assert response["Location"] == flag_url(flags["alice"])
    flags["alice"].refresh_from_db()
    assert (flags["alice"].status, flags["alice"].assigned_to) == (FlagStatus.IN_REVIEW, cast.carol)
    text = carol.get(response["Location"]).content.decode()
    assert f"Flag #{flags['alice'].pk} is now in review by you." in text
    assert "Firm sanctions" in text
    assert "Zhang Wei" in text
    assert f'href="/clients/{cast.alice_client.client_no}/"' in text  # the client 360
    assert ID_NUMBER not in text
    assert "310***********1234" in text
    assert carol.get(QUEUE, {"view": "mine"}).content.decode().count(f'href="{flag_url(flags["alice"])}"') == 1


def test_take_next_with_nothing_waiting_says_so(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    response = carol.post("/compliance/take-next/", {"kind": FlagKind.AML_STRUCTURING}, follow=True)
    assert response.redirect_chain[-1][0] == f"{QUEUE}?kind={FlagKind.AML_STRUCTURING}"
    assert "Nothing is waiting in the queue for these filters." in response.content.decode()
    assert not Flag.objects.filter(assigned_to=cast.carol).exists()


def test_take_next_with_bad_filters_takes_nothing(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    response = carol.post("/compliance/take-next/", {"severity": "extreme"}, follow=True)
    assert "The filters are not valid: choose them again." in response.content.decode()
    assert not Flag.objects.filter(assigned_to=cast.carol).exists()


def test_get_is_refused_on_the_forms(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    assert carol.get("/compliance/take-next/").status_code == 405
    assert carol.get(flag_url(flags["bob"], "decide")).status_code == 405


# --- Decisions -------------------------------------------------------------------------------------


def test_a_medium_decision_applies_at_once(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    response = carol.post(flag_url(flags["bob"], "decide"), {"decision": "clear", "note": "Reviewed on the phone."})
    assert response.status_code == 302
    assert response["Location"] == flag_url(flags["bob"])
    flags["bob"].refresh_from_db()
    assert (flags["bob"].status, flags["bob"].closed_by) == (FlagStatus.CLEARED, cast.carol)
    text = carol.get(flag_url(flags["bob"])).content.decode()
    assert "Decision recorded: Clear." in text
    assert "This flag is closed (Cleared)." in text
    assert "Reviewed on the phone." in text
    assert "Record decision" not in text


def test_a_decision_needs_a_note_and_a_choice(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    page = carol.post(flag_url(flags["bob"], "decide"), {"decision": "clear", "note": "   "})
    assert page.status_code == 400
    assert "A decision needs a note: say why." in page.content.decode()
    assert 'aria-describedby="decide_note_error"' in page.content.decode()
    assert 'id="decide_note_error"' in page.content.decode()
    page = carol.post(flag_url(flags["bob"], "decide"), {"note": "Fine."})
    assert page.status_code == 400
    assert "Choose clear, escalate or restrict." in page.content.decode()
    assert not FlagDecision.objects.exists()


def test_whitelisting_is_offered_on_watch_list_matches_only(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    assert "Confirmed false match" in carol.get(flag_url(flags["alice"])).content.decode()
    assert "Confirmed false match" not in carol.get(flag_url(flags["bob"])).content.decode()
    page = carol.post(flag_url(flags["bob"], "decide"), {"decision": "clear", "note": "x", "whitelist": "on"})
    assert page.status_code == 400
    assert escape(services.ComplianceError.WHITELIST_NOT_SCREENING) in page.content.decode()


def test_a_flag_in_review_by_another_officer_cannot_be_decided(cast: Cast, flags: dict[str, Flag]) -> None:
    services.flag_take_next(officer=cast.carol)  # alice's high flag
    dave = signed_in(cast.dave)
    assert "In review by compliance_carol" in dave.get(flag_url(flags["alice"])).content.decode()
    page = dave.post(flag_url(flags["alice"], "decide"), {"decision": "escalate", "note": "Mine now."})
    assert page.status_code == 409
    assert "This flag is in review by another officer." in page.content.decode()
    assert not FlagDecision.objects.exists()


def test_four_eyes_carol_restricts_and_dave_approves(cast: Cast, flags: dict[str, Flag]) -> None:
    flag = flags["alice"]
    carol, dave = signed_in(cast.carol), signed_in(cast.dave)
    carol.post("/compliance/take-next/")

    response = carol.post(flag_url(flag, "decide"), {"decision": "restrict", "note": "Confirmed list match."})
    assert response.status_code == 302
    text = carol.get(flag_url(flag)).content.decode()
    assert "It waits for a second compliance officer to approve it (four eyes)." in text
    assert "Waiting for a second compliance officer (four eyes)." in text
    assert "You made this decision" in text
    assert "Approve and apply" not in text
    refused = carol.post(flag_url(flag, "approve"), {"note": ""})
    assert refused.status_code == 403
    assert "second, different compliance officer" in refused.content.decode()
    flag.refresh_from_db()
    cast.alice_client.refresh_from_db()
    assert flag.status == FlagStatus.IN_REVIEW
    assert cast.alice_client.status == Client.Status.OPEN

    text = dave.get(flag_url(flag)).content.decode()
    assert "Decided by compliance_carol on" in text
    assert "Approve and apply" in text
    assert dave.get(QUEUE, {"view": "pending"}).content.decode().count(f'href="{flag_url(flag)}"') == 1
    response = dave.post(flag_url(flag, "approve"), {"note": "Agreed."})
    assert response.status_code == 302

    flag.refresh_from_db()
    cast.alice_client.refresh_from_db()
    assert (flag.status, flag.closed_by) == (FlagStatus.RESTRICTED, cast.dave)
    assert cast.alice_client.status == Client.Status.RESTRICTED
    text = dave.get(flag_url(flag)).content.decode()
    assert "Approved and applied: Restrict account. Flag status: Account restricted." in text
    assert "reviewed by compliance_dave" in text

    trail = dave.get(f"/compliance/clients/{cast.alice_client.client_no}/audit/").content.decode()
    for action in ("flag.taken", "flag.decided", "flag.decision_approved", "client.restricted", "flag.restricted"):
        assert action in trail
    assert "Confirmed list match." in trail
    assert "status: in_review → restricted" in trail
    assert "status: open → restricted" in trail


def test_the_second_officer_may_reject_with_a_note(cast: Cast, flags: dict[str, Flag]) -> None:
    flag = flags["alice"]
    services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="False match.")
    dave = signed_in(cast.dave)
    page = dave.post(flag_url(flag, "reject"), {"note": ""})
    assert page.status_code == 400
    assert "Rejecting needs a note: say why." in page.content.decode()
    response = dave.post(flag_url(flag, "reject"), {"note": "Dates of birth agree."}, follow=True)
    assert "Decision rejected. The flag is back in the queue." in response.content.decode()
    flag.refresh_from_db()
    assert (flag.status, flag.assigned_to) == (FlagStatus.OPEN, None)
    assert FlagDecision.objects.get().status == FlagDecision.Status.REJECTED


def test_the_forms_are_csrf_protected(cast: Cast, flags: dict[str, Flag]) -> None:
    browser = Browser(enforce_csrf_checks=True)
    browser.force_login(cast.carol)
    assert browser.post("/compliance/take-next/").status_code == 403
    assert browser.post(flag_url(flags["bob"], "decide"), {"decision": "clear", "note": "x"}).status_code == 403
    assert not FlagDecision.objects.exists()


# --- Audit trail -------------------------------------------------------------------------------------


def test_the_audit_trail_of_a_client(cast: Cast, flags: dict[str, Flag]) -> None:
    carol = signed_in(cast.carol)
    text = carol.get(f"/compliance/clients/{cast.bob_client.client_no}/audit/").content.decode()
    assert "Nothing audited for this client yet." in text
    services.flag_decide(flag=flags["bob"], officer=cast.carol, decision="escalate", note="Needs EDD.")
    services.flag_decide(flag=flags["alice"], officer=cast.carol, decision="escalate", note="Other client.")
    text = carol.get(f"/compliance/clients/{cast.bob_client.client_no}/audit/").content.decode()
    assert "flag.escalated" in text
    assert "Needs EDD." in text
    assert "Other client." not in text
    assert AuditEntry.objects.filter(client_no=cast.bob_client.client_no).count() == 2


# --- Query counts ------------------------------------------------------------------------------------

# session, user, the user's roles, then what each page reads (see compliance/pages.py)
QUEUE_QUERIES = 10  # + branches, four capped counts, page count, page rows
SCOPE_QUERIES = 5  # + page count, page rows
FLAG_QUERIES = 9  # + flag (joined), decisions, risk assessment, other flags, recent audit, watch-list match
AUDIT_QUERIES = 6  # + client, page count, page rows


def add_flags(cast: Cast, count: int) -> None:
    for number in range(count):
        client = cast.alice_client if number % 2 else cast.bob_client
        make_flag(client, kind=FlagKind.AML_STRUCTURING, subject=f"deposit:{number}", days_ago=number % 20 + 1)


def count_queries(user: object, url: str, params: dict | None = None) -> int:
    browser = signed_in(user)
    with CaptureQueriesContext(connection) as queries:
        assert browser.get(url, params or {}).status_code == 200
    return len(queries)


def page_counts(cast: Cast, flag: Flag) -> dict[str, int]:
    return {
        "queue": count_queries(cast.carol, QUEUE),
        "queue filtered": count_queries(cast.carol, QUEUE, {"view": "active", "severity": "medium", "branch": "SH01"}),
        "my clients": count_queries(cast.alice.user, QUEUE),
        "flag": count_queries(cast.carol, flag_url(flag)),
        "flag (manager)": count_queries(cast.alice.user, flag_url(flag)),
        "audit": count_queries(cast.carol, f"/compliance/clients/{cast.alice_client.client_no}/audit/"),
    }


def test_the_pages_cost_the_same_queries_with_3_or_30_flags(cast: Cast, flags: dict[str, Flag]) -> None:
    flag = flags["alice"]
    services.flag_decide(flag=flag, officer=cast.carol, decision="restrict", note="Pending.")
    few = page_counts(cast, flag)

    add_flags(cast, 27)
    for extra in Flag.objects.filter(client=cast.alice_client, kind=FlagKind.AML_STRUCTURING)[:5]:
        services.flag_decide(flag=extra, officer=cast.dave, decision="escalate", note="More audit entries.")
    many = page_counts(cast, flag)

    assert Flag.objects.count() == 30
    assert many == few
    assert few == {
        "queue": QUEUE_QUERIES,
        "queue filtered": QUEUE_QUERIES,
        "my clients": SCOPE_QUERIES,
        "flag": FLAG_QUERIES,
        "flag (manager)": 4,
        "audit": AUDIT_QUERIES,
    }
