"""Settings: strict environment parsing, production refuses to start without its secrets,
`check --deploy` is clean, and the embedded default runs Celery eagerly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from brokercrm.lib import env

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3Y-" + "x9Qz7LmP2vR8tB4nW6yC1dF5gH0jK3sA" * 2
# Encryption at rest (tests/security/test_protection_settings.py checks their refusals).
FIELD_KEYS = {
    "FIELD_ENCRYPTION_KEYS": "cHJvZC1saWtlLWZpZWxkLWtleS1mb3ItdGVzdHMtMDE=",
    "FIELD_HASH_KEY": "h4sh-" + "Rt5yU8iO1pA3sD6fG9hJ2kL4zX7cV0bN" * 2,
}


def _run_django(code: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    # A fresh process with only what a deployment would have: no settings module, no secrets,
    # and not the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE (check --deploy rightly refuses it).
    dropped = {
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "FIELD_ENCRYPTION_KEYS",
        "FIELD_HASH_KEY",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    }
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    environ.update(extra_env)
    return subprocess.run(  # noqa: S603 - fixed argv of our own interpreter
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("off", False)]
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", default=not expected) is expected


def test_env_bool_rejects_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"):
        env.env_bool("SOME_FLAG", default=False)


def test_env_int_rejects_garbage_and_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_INT", "12a")
    with pytest.raises(ImproperlyConfigured, match="SOME_INT='12a' is not an integer"):
        env.env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_INT", "-1")
    with pytest.raises(ImproperlyConfigured, match="must be >= 0"):
        env.env_int("SOME_INT", 1, minimum=0)


def test_env_list_splits_and_requires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTS", " a.example , b.example,, ")
    assert env.env_list("HOSTS") == ["a.example", "b.example"]
    monkeypatch.delenv("HOSTS")
    with pytest.raises(ImproperlyConfigured, match="HOSTS is required"):
        env.env_list("HOSTS")


SETUP = "import django; django.setup(); print('started')"


def test_production_refuses_to_start_without_secret_key() -> None:
    result = _run_django(SETUP, DJANGO_SETTINGS_MODULE="brokercrm.settings.production", ALLOWED_HOSTS="crm.example")
    assert result.returncode != 0
    assert "Environment variable SECRET_KEY is required" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    result = _run_django(SETUP, DJANGO_SETTINGS_MODULE="brokercrm.settings.production", SECRET_KEY=STRONG_KEY)
    assert result.returncode != 0
    assert "Environment variable ALLOWED_HOSTS is required" in result.stderr


def test_production_refuses_a_weak_secret_key() -> None:
    result = _run_django(
        SETUP, DJANGO_SETTINGS_MODULE="brokercrm.settings.production", SECRET_KEY="short", ALLOWED_HOSTS="crm.example"
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be a random string" in result.stderr


def test_production_check_deploy_is_clean() -> None:
    code = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command;"
        "call_command('check', deploy=True, fail_level='WARNING')"
    )
    result = _run_django(
        code,
        DJANGO_SETTINGS_MODULE="brokercrm.settings.production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="crm.example",
        **FIELD_KEYS,
    )
    assert result.returncode == 0, result.stderr


def test_embedded_default_runs_celery_eagerly_and_in_exchange_time() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "print(settings.CELERY_TASK_ALWAYS_EAGER, settings.TIME_ZONE, settings.USE_TZ,"
        " settings.DATABASES['default']['ENGINE'])"
    )
    environ_without = {"DJANGO_SETTINGS_MODULE": "brokercrm.settings.local", "REDIS_URL": "", "DATABASE_URL": ""}
    result = _run_django(code, **environ_without)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "Asia/Shanghai", "True", "django.db.backends.sqlite3"]


def test_redis_url_switches_celery_to_the_broker() -> None:
    code = "import django; django.setup(); from django.conf import settings; print(settings.CELERY_TASK_ALWAYS_EAGER)"
    result = _run_django(code, DJANGO_SETTINGS_MODULE="brokercrm.settings.local", REDIS_URL="redis://127.0.0.1:6399/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_healthz_answers_ok(client: object, db: None) -> None:
    response = client.get("/healthz")  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
