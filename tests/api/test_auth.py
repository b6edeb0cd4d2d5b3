"""Token authentication for systems: issued through django.contrib.auth.authenticate,
so django-axes counts failures and locks a username out; the endpoint is rate-limited."""

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from brokercrm.api.auth import BAD_CREDENTIALS, LOCKED_OUT
from tests.conftest import Cast

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "pw-for-tests-1"  # tests/factories.py UserFactory


@pytest.fixture(autouse=True)
def _generous_auth_rate(settings: object) -> None:
    """Lockout tests make many calls; only the throttle test sets a tight "auth" rate."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "1000/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_the_token_route_is_where_the_schema_says() -> None:
    assert reverse("api-token") == TOKEN_URL


def test_a_system_gets_a_token_and_reads_its_scope_with_it(cast: Cast, django_assert_num_queries) -> None:
    response = APIClient().post(TOKEN_URL, {"username": "am_alice", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=cast.alice.user).key

    api = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    # token with its user (one query) + roles + page
    with django_assert_num_queries(3):
        trades = api.get(reverse("clients_api:trade-list"))
    assert trades.status_code == 200
    clients = api.get(reverse("clients_api:client-list")).json()["results"]
    assert [row["client_no"] for row in clients] == [cast.alice_client.client_no]


def test_the_same_token_is_returned_on_every_call(cast: Cast) -> None:
    api = APIClient()
    first = api.post(TOKEN_URL, {"username": "system_api", "password": PASSWORD}).json()["token"]
    second = api.post(TOKEN_URL, {"username": "system_api", "password": PASSWORD}).json()["token"]
    assert first == second


def test_a_wrong_password_is_400_and_gives_no_token(cast: Cast) -> None:
    response = APIClient().post(TOKEN_URL, {"username": "am_alice", "password": "wrong"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [BAD_CREDENTIALS]}
    assert not Token.objects.exists()


def test_missing_fields_are_400(cast: Cast) -> None:
    response = APIClient().post(TOKEN_URL, {"username": "am_alice"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_an_inactive_user_gets_no_token(cast: Cast) -> None:
    cast.system.is_active = False
    cast.system.save()
    response = APIClient().post(TOKEN_URL, {"username": "system_api", "password": PASSWORD}, format="json")
    assert response.status_code == 400


def test_a_bad_token_is_refused(cast: Cast) -> None:
    api = APIClient(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get(reverse("clients_api:client-list")).status_code in (401, 403)


def test_repeated_failures_lock_the_username_out_even_with_the_right_password(cast: Cast) -> None:
    api = APIClient()
    statuses = [
        api.post(TOKEN_URL, {"username": "am_bob", "password": f"guess-{i}"}, format="json").status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[:-1] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert statuses[-1] == 429  # the failure that reaches the limit locks the username

    response = api.post(TOKEN_URL, {"username": "am_bob", "password": PASSWORD}, format="json")

    assert response.status_code == 429
    assert response.json()["detail"].startswith(LOCKED_OUT)
    assert "Retry-After" in response.headers
    assert not Token.objects.filter(user=cast.bob.user).exists()
    # Another username from another machine is not affected.
    other = APIClient(REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="back-office")
    assert other.post(TOKEN_URL, {"username": "am_alice", "password": PASSWORD}).status_code == 200


def test_a_success_resets_the_failure_count(cast: Cast) -> None:
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert api.post(TOKEN_URL, {"username": "am_bob", "password": "nope"}).status_code == 400
    assert api.post(TOKEN_URL, {"username": "am_bob", "password": PASSWORD}).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert api.post(TOKEN_URL, {"username": "am_bob", "password": "nope"}).status_code == 400


def test_the_auth_throttle_trips(cast: Cast) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/minute"}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        api = APIClient()
        statuses = [api.post(TOKEN_URL, {"username": "system_api", "password": PASSWORD}).status_code for _ in range(4)]
        # The limit is per client address: another address still gets through.
        other = APIClient(REMOTE_ADDR="10.9.8.7").post(TOKEN_URL, {"username": "system_api", "password": PASSWORD})

    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200


def test_the_token_endpoint_needs_no_csrf_token(cast: Cast) -> None:
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(cast.carol)  # even with a session cookie present
    response = api.post(TOKEN_URL, {"username": "system_api", "password": PASSWORD}, format="json")
    assert response.status_code == 200
