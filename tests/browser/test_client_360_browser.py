"""A real browser: the account manager sees who to call first and opens the client 360 from it."""

import datetime as dt
import re

import pytest

from retention.models import ChurnScore, ClientActivity
from segmentation.models import ResultSet, Tier
from tests import factories

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
AS_OF = dt.date(2026, 6, 30)
OUTFLOW = {"code": "outflow", "points": 45, "facts": {"share": 0.62, "window": 30, "amount": 62000.0}}
DECLINE = {"code": "decline", "points": 20, "facts": {"recent": 1, "window": 90, "expected": 5.7}}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_from_the_call_first_list_to_the_client_360(live_server, page, screenshot_dir, cast):
    # given: last night scored alice's client at risk, with reasons
    client = factories.ClientFactory(account_manager=cast.alice, client_no="C20240077", name="Wang Fang")
    factories.KYCProfileFactory(client=client, id_number="310101199001011234")
    for kind in (ResultSet.Kind.CHURN, ResultSet.Kind.ACTIVITY):
        ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=3)
    ChurnScore.objects.create(
        generation=3, as_of=AS_OF, client=client, tier=Tier.VIP, segment="potentially_active", risk=72,
        p_alive=0.41, clv=18000, clv_simple=15000, value_at_risk=12960, reasons=[OUTFLOW, DECLINE],
    )  # fmt: skip
    ClientActivity.objects.create(
        generation=3, as_of=AS_OF, client=client, segment="potentially_active", last_trade_on=AS_OF,
        days_since_last_trade=20, trading_days=88, recent_trading_days=1, baseline_trading_days=5.7,
        typical_gap_days=2.8, overdue_ratio=7.1, about_to_go_dormant=True,
    )  # fmt: skip

    # when: she signs in
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("am_alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    # then: the client heads the call-first list with the top reason in words
    at_risk = page.locator("section", has=page.get_by_role("heading", name="At risk: call first"))
    assert "Wang Fang" in at_risk.inner_text()
    assert "Moved out 62% of assets in 30 days" in at_risk.inner_text()
    page.screenshot(path=str(screenshot_dir / "home_call_first.png"), full_page=True)

    # when: she opens the client
    at_risk.get_by_role("link", name="Wang Fang").click()
    page.wait_for_url(re.compile(r"/clients/C20240077/$"))

    # then: the 360 shows the score, every reason, the warning and a masked ID
    assert page.get_by_test_id("churn-risk").inner_text() == "72"
    reasons = page.locator("ol.reasons").inner_text()
    assert "Moved out 62% of assets in 30 days (net 62,000 withdrawn)" in reasons
    assert "Traded on 1 day in the last 90, against 5.7 usually" in reasons
    assert page.get_by_text("About to go dormant").is_visible()
    assert page.get_by_test_id("id-masked").inner_text().endswith("310***********1234")
    assert "310101199001011234" not in page.content()
    page.screenshot(path=str(screenshot_dir / "client_360.png"), full_page=True)
