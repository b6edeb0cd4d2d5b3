"""Production settings: the field-encryption secrets are required and never the development
ones; sessions and cookies are secure (HTTPS only, HttpOnly, SameSite, HSTS, bounded life)."""

from __future__ import annotations

import json

import pytest

from tests.brokercrm.test_settings import FIELD_KEYS, STRONG_KEY, _run_django

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "brokercrm.settings.production",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "crm.example",
}
SETUP = "import django; django.setup(); print('started')"


def _production(**env: str) -> object:
    return _run_django(SETUP, **{**PRODUCTION, **FIELD_KEYS, **env})


def test_production_refuses_to_start_without_field_encryption_keys() -> None:
    result = _run_django(SETUP, **PRODUCTION, FIELD_HASH_KEY=FIELD_KEYS["FIELD_HASH_KEY"])
    assert result.returncode != 0
    assert "Environment variable FIELD_ENCRYPTION_KEYS is required" in result.stderr


def test_production_refuses_to_start_without_a_hash_key() -> None:
    result = _run_django(SETUP, **PRODUCTION, FIELD_ENCRYPTION_KEYS=FIELD_KEYS["FIELD_ENCRYPTION_KEYS"])
    assert result.returncode != 0
    assert "Environment variable FIELD_HASH_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHktaW5zZWN1cmUtZmllbGQta2V5LTAwMDA="},
            "must not contain the development key",
        ),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-key"}, "FIELD_ENCRYPTION_KEYS: key 1 is not a Fernet key"),
        (
            {"FIELD_ENCRYPTION_KEYS": FIELD_KEYS["FIELD_ENCRYPTION_KEYS"] + ",c2hvcnQ="},
            "FIELD_ENCRYPTION_KEYS: key 2 is not a Fernet key",
        ),
        ({"FIELD_HASH_KEY": "short"}, "FIELD_HASH_KEY must be a random string"),
        ({"FIELD_HASH_KEY": "dev-only-insecure-hash-key-never-used-in-production"}, "FIELD_HASH_KEY must be"),
        ({"FIELD_HASH_KEY": STRONG_KEY}, "FIELD_HASH_KEY must be a secret of its own"),
    ],
)
def test_production_refuses_weak_or_development_field_keys(env: dict[str, str], message: str) -> None:
    result = _production(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_a_rotation_list_of_keys() -> None:
    second = "b2xkLWZpZWxkLWtleS1zdGlsbC1uZWVkZWQtZm9yLTE="
    code = "import django; django.setup(); from django.conf import settings; print(len(settings.FIELD_ENCRYPTION_KEYS))"
    result = _run_django(
        code,
        **{**PRODUCTION, **FIELD_KEYS, "FIELD_ENCRYPTION_KEYS": f"{FIELD_KEYS['FIELD_ENCRYPTION_KEYS']}, {second}"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_development_settings_use_the_fixed_development_keys() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "print(settings.FIELD_ENCRYPTION_KEYS[0], settings.FIELD_HASH_KEY)"
    )
    result = _run_django(code, DJANGO_SETTINGS_MODULE="brokercrm.settings.local")
    assert result.returncode == 0, result.stderr
    key, hash_key = result.stdout.split()
    assert key == "ZGV2LW9ubHktaW5zZWN1cmUtZmllbGQta2V5LTAwMDA="  # b"dev-only-insecure-field-key-0000"
    assert "insecure" in hash_key


def test_development_settings_refuse_a_malformed_key() -> None:
    result = _run_django(SETUP, DJANGO_SETTINGS_MODULE="brokercrm.settings.local", FIELD_ENCRYPTION_KEYS="nope")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 1 is not a Fernet key" in result.stderr


NAMES = [
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "LANGUAGE_COOKIE_SECURE",
    "LANGUAGE_COOKIE_HTTPONLY",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "DEBUG",
]


def _production_values(**env: str) -> dict[str, object]:
    code = (
        "import django, json; django.setup(); from django.conf import settings;"
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {NAMES!r} + ['SECURE_PROXY_SSL_HEADER']}}))"
    )
    result = _run_django(code, **{**PRODUCTION, **FIELD_KEYS, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_sessions_and_cookies_are_secure() -> None:
    values = _production_values()
    assert values == {
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_AGE": 8 * 3600,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": True,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "LANGUAGE_COOKIE_SECURE": True,
        "LANGUAGE_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "DEBUG": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_production_trusts_the_proxy_header_only_when_told_and_bounds_the_session() -> None:
    values = _production_values(SECURE_PROXY_SSL_HEADER="true", SESSION_COOKIE_AGE="3600")
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_AGE"] == 3600


def test_production_cookies_on_the_wire() -> None:
    """The CSRF cookie a production login page sets: __Host-, Secure, HttpOnly, SameSite, path /."""
    code = (
        "import django; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client, override_settings;"
        # No collectstatic in a test: the plain storage instead of the manifest one.
        "plain = {'default': {'BACKEND': 'django.core.files.storage.FileSystemStorage'},"
        " 'staticfiles': {'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}};"
        "r = override_settings(STORAGES=plain)(lambda: Client().get('/accounts/login/', secure=True))();"
        "c = r.cookies['__Host-csrftoken'];"
        "print(r.status_code, bool(c['secure']), bool(c['httponly']), c['samesite'], c['path'], c['domain'] or '-')"
    )
    result = _run_django(
        code, **{**PRODUCTION, **FIELD_KEYS, "ALLOWED_HOSTS": "testserver", "DATABASE_URL": "sqlite:///:memory:"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "True", "True", "Lax", "/", "-"]
