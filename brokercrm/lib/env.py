"""Strict environment-variable parsing.

Settings come from the environment; a value that cannot be parsed stops the process
with a message naming the variable, instead of silently falling back to a default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_MISSING = object()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | object | None = _MISSING) -> str | None:
    """Return the variable as a string; raise if unset and no default is given."""
    value = _raw(name)
    if value is not None:
        return value
    if default is _MISSING:
        raise ImproperlyConfigured(f"Environment variable {name} is required.")
    return default  # type: ignore[return-value]


def env_bool(name: str, default: bool) -> bool:
    """Parse 1/0, true/false, yes/no, on/off (any case); anything else is an error."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={value!r} is not a boolean (expected one of {sorted(_TRUE | _FALSE)})."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Parse a base-10 integer, optionally bounded below."""
    value = _raw(name)
    if value is None:
        return default
    try:
        parsed = int(value, 10)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not an integer.") from None
    if minimum is not None and parsed < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={parsed} must be >= {minimum}.")
    return parsed


def env_list(name: str, default: list[str] | object | None = _MISSING) -> list[str]:
    """Parse a comma-separated list; empty items are dropped."""
    value = _raw(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return list(default or [])  # type: ignore[arg-type]
    return [item.strip() for item in value.split(",") if item.strip()]
