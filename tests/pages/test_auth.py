"""Sign-in, sign-out and the lockout after repeated failed sign-ins (django-axes)."""

import pytest
from django.conf import settings
from django.test import Client as BrowserClient
from django.urls import reverse

LOGIN = reverse("login")
LOGOUT = reverse("logout")
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory


def browser(ip: str, user_agent: str) -> BrowserClient:
    """A test client that looks like one browser on one machine."""
    return BrowserClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent)


def signed_in(client: BrowserClient) -> bool:
    return "_auth_user_id" in client.session


def test_login_page_renders(client, db):
    response = client.get(LOGIN)

    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    assert 'autocomplete="current-password"' in response.text


def test_login_goes_to_home_and_logout_back_to_login(client, cast):
    response = client.post(LOGIN, {"username": "am_alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert signed_in(client)

    response = client.post(LOGOUT)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not signed_in(client)


def test_login_honours_next(client, cast):
    response = client.post(LOGIN, {"username": "am_alice", "password": PASSWORD, "next": "/?q=abc"})

    assert response["Location"] == "/?q=abc"


def test_login_refuses_an_offsite_next(client, cast):
    response = client.post(LOGIN, {"username": "am_alice", "password": PASSWORD, "next": "https://evil.example/"})

    assert response["Location"] == reverse("home")


def test_wrong_password_shows_an_error(client, cast):
    response = client.post(LOGIN, {"username": "am_alice", "password": "wrong"})

    assert response.status_code == 200
    assert 'class="alert alert--error"' in response.text
    assert not signed_in(client)


def test_signed_in_user_skips_the_login_page(client, cast):
    client.force_login(cast.alice.user)

    response = client.get(LOGIN)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_logout_is_post_only(client, cast):
    client.force_login(cast.alice.user)

    response = client.get(LOGOUT)

    assert response.status_code == 405
    assert signed_in(client)


def test_repeated_failures_lock_the_username_out(cast):
    # given: a browser that gets alice's password wrong up to the limit
    assert settings.AXES_FAILURE_LIMIT == 5
    attacker = browser("10.0.0.5", "Mozilla/5.0 attacker")
    statuses = [
        attacker.post(LOGIN, {"username": "am_alice", "password": f"guess-{i}"}).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]

    # when: the right password comes next, from that browser or from alice's own
    from_attacker = attacker.post(LOGIN, {"username": "am_alice", "password": PASSWORD})
    alice = browser("10.0.0.9", "Mozilla/5.0 alice")
    from_alice = alice.post(LOGIN, {"username": "am_alice", "password": PASSWORD})

    # then: refused with the lockout page; the limit-th failure already answered 429
    assert statuses == [200, 200, 200, 200, 429]
    for response in (from_attacker, from_alice):
        assert response.status_code == 429
        assert "registration/locked_out.html" in [t.name for t in response.templates]
        assert "Sign-in temporarily locked" in response.text
        assert "Try again in 15 minutes." in response.text
    assert not signed_in(attacker)
    assert not signed_in(alice)


def test_lockout_of_one_user_does_not_affect_another(cast):
    attacker = browser("10.0.0.5", "Mozilla/5.0 attacker")
    for i in range(settings.AXES_FAILURE_LIMIT):
        attacker.post(LOGIN, {"username": "am_alice", "password": f"guess-{i}"})

    bob = browser("10.0.0.7", "Mozilla/5.0 bob")
    response = bob.post(LOGIN, {"username": "am_bob", "password": PASSWORD})

    assert response.status_code == 302
    assert signed_in(bob)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_language_switch(client, cast, language):
    client.force_login(cast.alice.user)

    response = client.post(reverse("set_language"), {"language": language, "next": "/"})

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == language
    assert client.get("/").status_code == 200
