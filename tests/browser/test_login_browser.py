"""A real browser: sign in as an account manager, see the book, search it, sign out."""

import re

import pytest

from tests import factories

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_account_manager_signs_in_searches_and_signs_out(live_server, page, screenshot_dir, cast):
    # given: alice's book of a few clients, and bob's client she must not see
    alice_user = cast.alice.user
    alice_user.first_name, alice_user.last_name = "Alice", "Chen"
    alice_user.save()
    for no, name in [("C20240017", "Wang Fang"), ("C20240018", "Li Na"), ("C20240031", "Zhao Lei")]:
        factories.ClientFactory(account_manager=cast.alice, client_no=no, name=name)

    # when: she signs in
    page.goto(f"{live_server.url}/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/$"))
    page.screenshot(path=str(screenshot_dir / "login.png"), full_page=True)
    page.get_by_label("Username").fill("am_alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # then: her book, and nobody else's
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="My book").is_visible()
    assert page.locator(".whoami__name").inner_text() == "Alice Chen"
    rows = page.locator("table.table tbody tr")
    assert rows.count() == 4
    assert "Wang Fang" in page.locator("table.table").inner_text()
    assert cast.bob_client.client_no not in page.content()
    page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)

    # when: she searches by name
    page.get_by_placeholder("Search by name or client number").fill("wang")
    page.get_by_role("button", name="Search").click()

    # then: one row
    page.wait_for_url(re.compile(r"\?q=wang$"))
    assert rows.count() == 1
    assert "C20240017" in rows.first.inner_text()
    page.screenshot(path=str(screenshot_dir / "home_search.png"), full_page=True)

    # when: she signs out, the book is gone
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/$"))
    page.goto(f"{live_server.url}/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/$"))
    assert "Wang Fang" not in page.content()
