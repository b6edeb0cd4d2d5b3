"""The security log (`brokercrm.security`): failed logins and lockouts with username and IP,
denied accesses (403 pages and API, 401 API, 404 outside the user's scope) with user, path
and reason. Never a password."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import Cast

LOGGER = "brokercrm.security"
WRONG = "wrong-password-do-not-log-7731"


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_failed_page_login_is_logged_with_username_and_ip(cast: Cast, client, security_log) -> None:
    response = client.post(reverse("login"), {"username": "am_alice", "password": WRONG}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200  # the form again, with an error

    logged = [line for line in lines(security_log) if line.startswith("login failed")]
    assert len(logged) == 1
    assert 'username="am_alice"' in logged[0]
    assert "ip=203.0.113.7" in logged[0]
    assert 'path="/accounts/login/"' in logged[0]
    assert WRONG not in security_log.text
    assert all(r.levelno == logging.WARNING for r in security_log.records if r.name == LOGGER)


def test_a_failed_api_token_request_is_logged(cast: Cast, security_log) -> None:
    APIClient().post("/api/v1/auth/token/", {"username": "system_api", "password": WRONG}, REMOTE_ADDR="198.51.100.2")
    logged = [line for line in lines(security_log) if line.startswith("login failed")]
    assert logged
    assert 'username="system_api"' in logged[0]
    assert "ip=198.51.100.2" in logged[0]
    assert WRONG not in security_log.text


def test_a_lockout_is_logged(cast: Cast, client, security_log, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "am_bob", "password": WRONG}, REMOTE_ADDR="203.0.113.9")
    assert any(line.startswith("login locked out") and 'username="am_bob"' in line for line in lines(security_log))


def test_a_forbidden_page_is_logged_with_user_path_and_reason(cast: Cast, client, security_log) -> None:
    client.force_login(cast.alice.user)
    response = client.get(reverse("compliance-take-next"))
    assert response.status_code in (403, 405)
    response = client.get(
        reverse("compliance-client-audit", args=[cast.alice_client.client_no]), {"q": "310115199912319876"}
    )
    assert response.status_code == 403

    logged = [line for line in lines(security_log) if "status=403" in line]
    assert logged
    line = logged[-1]
    assert f"user=am_alice#{cast.alice.user.pk}" in line
    assert f'path="/compliance/clients/{cast.alice_client.client_no}/audit/?q"' in line
    assert "310115199912319876" not in security_log.text  # parameter names, never values
    assert "method=GET" in line
    assert 'reason="' in line


def test_a_forbidden_api_call_is_logged_with_drf_reason(cast: Cast, security_log) -> None:
    api = APIClient()
    api.force_login(cast.alice.user)
    response = api.post("/api/v1/compliance/flags/take-next/", {}, format="json")
    assert response.status_code == 403

    logged = [line for line in lines(security_log) if "status=403" in line]
    assert logged
    assert "permission_denied" in logged[-1]
    assert "user=am_alice" in logged[-1]


def test_an_api_call_with_a_bad_token_is_logged(db: None, security_log) -> None:
    response = APIClient().get("/api/v1/clients/", HTTP_AUTHORIZATION="Token not-a-real-token")
    # 403, not 401: session authentication comes first and sends no WWW-Authenticate challenge.
    assert response.status_code in (401, 403)
    logged = [line for line in lines(security_log) if f"status={response.status_code}" in line]
    assert logged
    assert "user=anonymous" in logged[0]
    assert "authentication_failed" in logged[0]
    assert "not-a-real-token" not in security_log.text


def test_an_api_lookup_outside_the_scope_is_a_404_and_logged(cast: Cast, security_log) -> None:
    api = APIClient()
    api.force_login(cast.alice.user)

    outside = api.get(f"/api/v1/clients/{cast.mike_client.client_no}/")
    missing = api.get("/api/v1/clients/NO-SUCH-CLIENT/")

    assert outside.status_code == missing.status_code == 404  # the answer tells nothing
    logged = [line for line in lines(security_log) if "out_of_scope" in line]
    assert len(logged) == 1
    assert f"client_no={cast.mike_client.client_no}" in logged[0]
    assert "user=am_alice" in logged[0]
    assert "clients.Client" in logged[0]


def test_a_firm_wide_user_does_not_pay_for_the_scope_check(cast: Cast, security_log, django_assert_num_queries) -> None:
    from brokercrm.policy import get_visible_or_404
    from clients.models import Client

    with pytest.raises(Exception, match="No client"), django_assert_num_queries(2):  # roles + the lookup
        get_visible_or_404(cast.olga, Client.objects.all(), client_no="NO-SUCH-CLIENT")
    assert not lines(security_log)
