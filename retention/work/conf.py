"""Business settings of retention work, read at call time with their defaults (README "Retention work").

Read at call time, so tests can override them with pytest-django's `settings` fixture.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _int(name: str, default: int, *, minimum: int) -> int:
    value = getattr(settings, name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least {minimum}, not {value!r}.")
    return value


def callback_new_account_days() -> int:
    """Days after opening by which a new account's regulatory callback is due (one month)."""
    return _int("RETENTION_CALLBACK_NEW_ACCOUNT_DAYS", 30, minimum=1)


def callback_sample_percent() -> int:
    """Share of the clients open at the previous year-end sampled for a callback each year (>= 10)."""
    return _int("RETENTION_CALLBACK_SAMPLE_PERCENT", 10, minimum=10)


def callback_max_attempts() -> int:
    """Failed or unreachable attempts after which a callback is escalated to the team lead."""
    return _int("RETENTION_CALLBACK_MAX_ATTEMPTS", 3, minimum=1)


def callback_retry_days() -> int:
    """Days until the retry of a failed or unreachable callback is due."""
    return _int("RETENTION_CALLBACK_RETRY_DAYS", 2, minimum=1)


def callback_retention_years() -> int:
    """Years a callback record is kept before it may be deleted (the regulator: at least 3)."""
    return _int("RETENTION_CALLBACK_RETENTION_YEARS", 3, minimum=3)


def callback_sample_due_days() -> int:
    """Days after the draw by which the sampled callbacks are due."""
    return _int("RETENTION_CALLBACK_SAMPLE_DUE_DAYS", 90, minimum=1)


def campaign_control_percent() -> int:
    """Default share of a campaign's target held out as the control group."""
    value = _int("RETENTION_CAMPAIGN_CONTROL_PERCENT", 20, minimum=1)
    if value > 90:
        raise ImproperlyConfigured(f"RETENTION_CAMPAIGN_CONTROL_PERCENT must be at most 90, not {value}.")
    return value


def task_expire_overdue_days() -> int:
    """Open tasks this many days past their due date are expired by the nightly run."""
    return _int("RETENTION_TASK_EXPIRE_OVERDUE_DAYS", 30, minimum=1)


def entitlement_spread_first_delivery() -> bool:
    """Spread the first delivery of newly granted recurring services over their first period."""
    value = getattr(settings, "RETENTION_ENTITLEMENT_SPREAD_FIRST_DELIVERY", True)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"RETENTION_ENTITLEMENT_SPREAD_FIRST_DELIVERY must be True or False, not {value!r}.")
    return value


def callback_sample_auto() -> bool:
    """The nightly run draws the year's sample (seed derived from the year) if compliance has not."""
    value = getattr(settings, "RETENTION_CALLBACK_SAMPLE_AUTO", True)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"RETENTION_CALLBACK_SAMPLE_AUTO must be True or False, not {value!r}.")
    return value
