# Chinese text is written with full-width punctuation on purpose.
# ruff: noqa: RUF001
"""A real browser: the account manager switches the workspace to Simplified Chinese with the
header button and reads her home page, call-first reasons included, in Chinese."""

import datetime as dt

import pytest

from retention.models import ChurnScore, ClientActivity
from segmentation.models import ResultSet, Tier
from tests import factories

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
AS_OF = dt.date(2026, 6, 30)
OUTFLOW = {"code": "outflow", "points": 45, "facts": {"share": 0.62, "window": 30, "amount": 62000.0}}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_switching_to_chinese_from_the_header(live_server, page, screenshot_dir, cast):
    # given: last night scored one of alice's clients at risk
    client = factories.ClientFactory(account_manager=cast.alice, client_no="C20240088", name="王芳")
    for kind in (ResultSet.Kind.CHURN, ResultSet.Kind.ACTIVITY):
        ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=3)
    ChurnScore.objects.create(
        generation=3, as_of=AS_OF, client=client, tier=Tier.VIP, segment="potentially_active", risk=72,
        p_alive=0.41, clv=18000, clv_simple=15000, value_at_risk=12960, reasons=[OUTFLOW],
    )  # fmt: skip
    ClientActivity.objects.create(
        generation=3, as_of=AS_OF, client=client, segment="potentially_active", last_trade_on=AS_OF,
        days_since_last_trade=20, trading_days=88, recent_trading_days=1, baseline_trading_days=5.7,
        typical_gap_days=2.8, overdue_ratio=7.1, about_to_go_dormant=True,
    )  # fmt: skip

    # when: she signs in, in English
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("am_alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="My book").is_visible()

    # and: presses 简体中文 in the header
    page.get_by_role("button", name="简体中文").click()
    page.wait_for_url(f"{live_server.url}/")
    page.get_by_role("heading", name="我的客户").wait_for()

    # then: the page, its header and the reasons read in Chinese
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.get_by_role("button", name="简体中文").get_attribute("aria-current") == "true"
    assert page.get_by_role("button", name="退出登录").is_visible()
    at_risk = page.locator("section", has=page.get_by_role("heading", name="流失风险：优先联系"))
    assert "王芳" in at_risk.inner_text()
    assert "30 天内转出 62% 的资产（净流出 62,000 元）" in at_risk.inner_text()
    assert page.get_by_role("heading", name="即将休眠").is_visible()
    assert "At risk: call first" not in page.content()
    page.screenshot(path=str(screenshot_dir / "home_zh.png"), full_page=True)

    # and: the choice sticks on the next page
    at_risk.get_by_role("link", name="王芳").click()
    page.get_by_role("heading", name="客户可能流失的原因").wait_for()
    assert "潜在活跃" in page.locator("main").inner_text()

    # when: she switches back
    page.get_by_role("button", name="English").click()
    page.get_by_role("heading", name="Why this client may leave").wait_for()
