"""A real browser: compliance officer carol takes the next flag from the queue and restricts the
account (high severity: four eyes); dave signs in and approves; the flag is closed and the client
restricted."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from clients.models import Client
from compliance.models import Flag, FlagKind, FlagStatus, Severity
from tests import factories

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
AS_OF = dt.date(2026, 6, 30)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_flag(client, *, kind, severity, subject, days_ago, evidence):
    at = timezone.now() - dt.timedelta(days=days_ago)
    return Flag.objects.create(
        client=client, kind=kind, subject=subject, severity=severity, evidence=evidence,
        first_seen_on=AS_OF, last_seen_on=AS_OF, raised_at=at, updated_at=at,
    )  # fmt: skip


def sign_in(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def sign_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def test_carol_restricts_a_high_flag_and_dave_approves(live_server, page, screenshot_dir, cast):
    # given: a high-severity structuring flag on alice's client, and two lesser flags
    client = factories.ClientFactory(account_manager=cast.alice, client_no="C20240088", name="Li Na")
    factories.KYCProfileFactory(client=client, id_number="310101199001011234")
    structuring = make_flag(
        client, kind=FlagKind.AML_STRUCTURING, severity=Severity.HIGH, subject="deposits:2026-06-24", days_ago=2,
        evidence={"deposits": 4, "total": "191200.00", "threshold": "50000", "window_days": 7},
    )  # fmt: skip
    make_flag(
        cast.bob_client, kind=FlagKind.KYC_REVIEW_OVERDUE, severity=Severity.MEDIUM, subject="review", days_ago=9,
        evidence={"last_review_on": "2023-01-10", "aml_risk": "medium"},
    )  # fmt: skip
    make_flag(
        cast.mike_client, kind=FlagKind.ID_DOCUMENT, severity=Severity.LOW, subject="expiry:2026-07-20", days_ago=1,
        evidence={"state": "expiring", "id_expiry": "2026-07-20"},
    )  # fmt: skip
    base = live_server.url

    # when: carol signs in and opens the queue
    sign_in(page, base, "compliance_carol")
    page.goto(f"{base}/compliance/")

    # then: three flags wait, the high one first
    assert page.get_by_test_id("count-waiting").inner_text() == "3"
    first_row = page.get_by_test_id("flag-table").locator("tbody tr").first
    assert "Li Na" in first_row.inner_text()
    assert "High" in first_row.inner_text()
    page.screenshot(path=str(screenshot_dir / "compliance_queue.png"), full_page=True)

    # when: she takes the next flag
    page.get_by_role("button", name="Take next flag").click()
    page.wait_for_url(re.compile(rf"/compliance/flags/{structuring.pk}/$"))

    # then: the flag page shows the evidence, the client's context (masked ID) and the forms
    assert page.get_by_text(f"Flag #{structuring.pk} is now in review by you.").is_visible()
    assert "191,200.00" in page.get_by_test_id("evidence").inner_text()
    assert page.get_by_test_id("id-masked").inner_text().endswith("310***********1234")
    assert "310101199001011234" not in page.content()
    assert page.get_by_test_id("client-link").get_attribute("href") == "/clients/C20240088/"

    # when: she records "restrict" without a note first, then with one
    page.get_by_label("Restrict account").check()
    page.get_by_role("button", name="Record decision").click()
    assert page.get_by_text("A decision needs a note: say why.").is_visible()
    page.get_by_label("Restrict account").check()
    page.get_by_label("Note (why)").fill("Four deposits just under 50,000 in a week; no plausible source.")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(re.compile(rf"/compliance/flags/{structuring.pk}/$"))

    # then: it waits for a second officer; carol cannot approve it herself
    pending = page.get_by_test_id("pending-approval")
    assert "Waiting for a second compliance officer (four eyes)." in pending.inner_text()
    assert page.get_by_role("button", name="Approve and apply").count() == 0
    assert page.get_by_test_id("flag-status").inner_text() == "In review"
    page.screenshot(path=str(screenshot_dir / "compliance_flag_pending.png"), full_page=True)
    sign_out(page)

    # when: dave signs in, finds the decision awaiting approval, and approves it
    sign_in(page, base, "compliance_dave")
    page.goto(f"{base}/compliance/?view=pending")
    assert page.get_by_test_id("count-pending").inner_text() == "1"
    page.get_by_role("link", name=f"#{structuring.pk}").click()
    page.wait_for_url(re.compile(rf"/compliance/flags/{structuring.pk}/$"))
    assert "Decided by compliance_carol on" in page.get_by_test_id("pending-approval").inner_text()
    page.get_by_label("Approval note (optional)").fill("Agreed: restrict and file a suspicious transaction report.")
    page.screenshot(path=str(screenshot_dir / "compliance_approval.png"), full_page=True)
    page.get_by_role("button", name="Approve and apply").click()
    page.wait_for_url(re.compile(rf"/compliance/flags/{structuring.pk}/$"))

    # then: the flag is closed and the account restricted, on the page and in the database
    assert page.get_by_text("Approved and applied: Restrict account.").is_visible()
    assert page.get_by_test_id("flag-status").inner_text() == "Account restricted"
    assert page.get_by_test_id("client-status").inner_text() == "Restricted"
    decisions = page.get_by_test_id("decisions").inner_text()
    assert "by compliance_carol" in decisions
    assert "reviewed by compliance_dave" in decisions
    page.screenshot(path=str(screenshot_dir / "compliance_flag_closed.png"), full_page=True)
    structuring.refresh_from_db()
    client.refresh_from_db()
    assert (structuring.status, structuring.closed_by_id) == (FlagStatus.RESTRICTED, cast.dave.pk)
    assert client.status == Client.Status.RESTRICTED

    # and: the client's audit trail tells the story
    page.get_by_role("link", name="The full audit trail of this client").click()
    page.wait_for_url(re.compile(r"/compliance/clients/C20240088/audit/$"))
    trail = page.get_by_test_id("audit-table").inner_text()
    for action in ("flag.taken", "flag.decided", "flag.decision_approved", "client.restricted", "flag.restricted"):
        assert action in trail
    page.screenshot(path=str(screenshot_dir / "compliance_audit_trail.png"), full_page=True)
