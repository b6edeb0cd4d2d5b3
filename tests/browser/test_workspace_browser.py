"""A real browser: an account manager sees a regulatory callback due today on the home page,
opens the client and completes the callback with its checklist; the task and the callback are
done, on the page and in the database."""

import re

import pytest
from django.utils import timezone

from retention.services import open_task
from retention.work.callbacks import retain_until
from retention.work.models import Callback, CallbackAttempt, RetentionTask
from tests import factories

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_account_manager_completes_a_callback_from_the_home_page(live_server, page, screenshot_dir, cast):
    # given: a new account of alice's with its regulatory callback due today
    today = timezone.localdate()
    client = factories.ClientFactory(account_manager=cast.alice, client_no="C20240123", name="Chen Jing")
    task = open_task(
        client=client,
        kind="callback",
        source="callback",
        reason_code="callback_new_account",
        reason_text="Regulatory callback: new account. Confirm identity, no unauthorised trading by staff.",
        due=today,
        priority=70,
    )
    callback = Callback.objects.create(
        client=client, kind="new_account", year=today.year, due=today, task=task, created_on=today,
        retain_until=retain_until(today),
    )  # fmt: skip

    # when: she signs in
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("am_alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    # then: today's work lists the callback, with its reason
    today_panel = page.locator("section", has=page.get_by_role("heading", name="Today's work"))
    text = today_panel.inner_text()
    assert "Chen Jing" in text
    assert "Callback" in text
    assert "Regulatory callback: new account" in text
    page.screenshot(path=str(screenshot_dir / "workspace_home_today.png"), full_page=True)

    # when: she opens the callback from the list
    today_panel.get_by_role("link", name="Record the callback").click()
    page.wait_for_url(re.compile(r"/clients/C20240123/#callbacks-heading$"))

    # and: answers the checklist (keyboard for the first item) and records the call
    form = page.locator(f"#callback-{callback.pk}")
    identity = form.get_by_label("Identity confirmed")
    identity.focus()
    identity.select_option("yes")
    form.get_by_label("No unauthorised trading by staff").select_option("yes")
    form.get_by_label("Risk disclosure understood").select_option("yes")
    form.get_by_label("Satisfaction (1-5)").select_option("5")
    form.get_by_label("Note").fill("Client confirmed everything.")
    page.screenshot(path=str(screenshot_dir / "workspace_callback_form.png"), full_page=True)
    form.get_by_role("button", name="Record the call").click()
    page.wait_for_url(re.compile(r"/clients/C20240123/#callbacks-heading$"))

    # then: the page says so, the callback shows done, the contact is in the interactions
    assert "Callback completed with its checklist; its task is done." in page.get_by_test_id("message").inner_text()
    assert page.locator(f"#callback-{callback.pk}").get_by_test_id("callback-status").inner_text() == "Done"
    assert page.locator(f"#callback-{callback.pk} form").count() == 0
    contacts = page.locator("section", has=page.get_by_role("heading", name="Interactions")).inner_text()
    assert "Regulatory callback" in contacts
    assert "No open task." in page.locator("section", has=page.get_by_role("heading", name="Open tasks")).inner_text()
    page.screenshot(path=str(screenshot_dir / "workspace_callback_done.png"), full_page=True)

    # and: in the database
    callback.refresh_from_db()
    assert callback.status == "done"
    assert (callback.identity_confirmed, callback.no_unauthorised_staff_trading) == (True, True)
    assert (callback.risk_disclosure_understood, callback.satisfaction) == (True, 5)
    assert callback.completed_by == cast.alice.user
    task = RetentionTask.objects.get(pk=task.pk)
    assert (task.status, task.closed_by) == ("done", cast.alice.user)
    assert task.interaction is not None
    assert CallbackAttempt.objects.get(callback=callback).result == "completed"

    # and: the home page has nothing left for today
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Book").click()
    page.wait_for_url(f"{live_server.url}/")
    today_panel = page.locator("section", has=page.get_by_role("heading", name="Today's work"))
    assert "Nothing due today." in today_panel.inner_text()
    page.screenshot(path=str(screenshot_dir / "workspace_home_done.png"), full_page=True)
