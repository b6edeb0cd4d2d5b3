"""A real browser: an account manager reads the book at a glance and the panels on the home
page, moves a task due today to next week from today's work, and opens a client's trades page
and filters it; the same home page renders in Chinese."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from retention.services import open_task
from retention.work.models import RetentionTask
from segmentation.models import ResultSet, Tier, TierRun
from tests import factories
from tests.pages.test_home_panels import tiers

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_an_account_manager_works_from_the_home_panels(live_server, page, screenshot_dir, cast):
    today = timezone.localdate()
    night = today - dt.timedelta(days=1)
    TierRun.objects.create(as_of=night, basis="commission", is_published=True, retained=True)
    ResultSet.objects.create(kind=ResultSet.Kind.REACTIVATION, as_of=night, is_published=True)
    tiers(night, {cast.alice_client: Tier.VIP})
    birthday = factories.ClientFactory(
        account_manager=cast.alice, name="Birthday Bao", birthday=(today + dt.timedelta(days=1)).replace(year=1980)
    )
    factories.KYCProfileFactory(client=birthday, id_expiry=today + dt.timedelta(days=9))
    client = factories.ClientFactory(account_manager=cast.alice, client_no="C55500001", name="Zhou Ming")
    for i, side in enumerate(["buy", "sell", "buy"]):
        factories.TradeFactory(client=client, side=side, executed_at=timezone.now() - dt.timedelta(days=i + 1))
    task = open_task(
        client=client,
        kind="reactivation",
        reason_code="test",
        reason_text="No trade for 60 days; usually every 5.",
        due=today,
        priority=60,
        assignee=cast.alice.user,
    )

    sign_in(page, live_server, "am_alice")

    glance = page.get_by_test_id("glance")
    assert "Your book at a glance" in glance.inner_text()
    assert "VIP" in page.get_by_test_id("glance-tiers").inner_text()
    birthdays = page.locator("section", has=page.get_by_role("heading", name="Birthdays this week")).inner_text()
    assert "Birthday Bao" in birthdays
    kyc = page.locator("section", has=page.get_by_role("heading", name="KYC expiring")).inner_text()
    assert "Birthday Bao" in kyc
    assert "ID document" in kyc
    page.screenshot(path=str(screenshot_dir / "home_panels.png"), full_page=True)

    # reschedule the task from today's work, with the keyboard for the date
    item = page.locator(f"#task-{task.pk}")
    item.get_by_text("Reschedule or cancel").click()
    due = item.get_by_label("New due date")
    due.focus()
    next_week = today + dt.timedelta(days=7)
    due.fill(next_week.isoformat())
    item.get_by_role("button", name="Reschedule").click()
    page.wait_for_url(re.compile(r"/#today-heading$"))
    assert f"Moved to {next_week.isoformat()}" in page.get_by_test_id("message").inner_text()
    assert page.locator(f"#task-{task.pk}").count() == 0
    task.refresh_from_db()
    assert task.due == next_week
    assert RetentionTask.objects.get(pk=task.pk).status == "open"

    # the client's trades, filtered to sells
    page.goto(f"{live_server.url}/clients/C55500001/")
    page.get_by_role("link", name="All trades, with filters").click()
    page.wait_for_url(re.compile(r"/clients/C55500001/trades/$"))
    assert "3 trades" in page.get_by_role("heading", name=re.compile("trades$")).inner_text()
    page.get_by_label("Side").select_option("sell")
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url(re.compile(r"side=sell"))
    assert "1 trade" in page.get_by_role("heading", name=re.compile("trade$")).inner_text()
    assert page.get_by_test_id("trades").locator("tbody tr").count() == 1
    page.screenshot(path=str(screenshot_dir / "client_trades_filtered.png"), full_page=True)

    # the home page in Chinese
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state()
    assert "我的客户概览" in page.get_by_test_id("glance").inner_text()
    assert "本周生日" in page.content()
    page.screenshot(path=str(screenshot_dir / "home_panels_zh.png"), full_page=True)
