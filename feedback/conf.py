"""Feedback settings, read with their defaults at call time (tests override them with the
`settings` fixture). See README, "Feedback", "Settings"."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SEVERITIES = ("low", "medium", "high", "critical")

# Hours from opening: first response, resolution. Calendar hours (complaints arrive by phone
# and app at any time; the regulator counts calendar time).
DEFAULT_SLA: dict[str, dict[str, int]] = {
    "critical": {"first_response_hours": 2, "resolution_hours": 24},
    "high": {"first_response_hours": 8, "resolution_hours": 72},
    "medium": {"first_response_hours": 24, "resolution_hours": 168},
    "low": {"first_response_hours": 48, "resolution_hours": 336},
}


def sla_targets(severity: str) -> tuple[dt.timedelta, dt.timedelta]:
    """(first response, resolution) targets of a severity, from FEEDBACK_SLA."""
    table = getattr(settings, "FEEDBACK_SLA", DEFAULT_SLA)
    try:
        entry = table[severity]
        first = int(entry["first_response_hours"])
        resolution = int(entry["resolution_hours"])
    except (KeyError, TypeError, ValueError):
        raise ImproperlyConfigured(
            f"FEEDBACK_SLA[{severity!r}] must be a dict with integer first_response_hours and resolution_hours."
        ) from None
    if not 0 < first <= resolution:
        raise ImproperlyConfigured(
            f"FEEDBACK_SLA[{severity!r}]: need 0 < first_response_hours <= resolution_hours, got {first}, {resolution}."
        )
    return dt.timedelta(hours=first), dt.timedelta(hours=resolution)


def signal_days() -> int:
    """Look-back of the churn signals from surveys (detractor, low CSAT), in days incl. as_of."""
    value = int(getattr(settings, "FEEDBACK_SIGNAL_DAYS", 180))
    if value < 1:
        raise ImproperlyConfigured(f"FEEDBACK_SIGNAL_DAYS must be at least 1, not {value}.")
    return value


def followup_due_days() -> int:
    """Days the account manager has to call back a detractor."""
    value = int(getattr(settings, "FEEDBACK_DETRACTOR_FOLLOWUP_DAYS", 2))
    if value < 0:
        raise ImproperlyConfigured(f"FEEDBACK_DETRACTOR_FOLLOWUP_DAYS must be >= 0, not {value}.")
    return value
