"""Exchange-day boundaries: every "as of D" in the CRM is a day in the exchange's time zone
(settings.TIME_ZONE); storage is UTC. One definition for the API filters, the nightly readers,
the metrics and the pages."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def day_start(day: dt.date) -> dt.datetime:
    """00:00 of `day` in the exchange time zone (an aware datetime)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def day_end(day: dt.date) -> dt.datetime:
    """The first instant after `day` (exchange time): `x < day_end(d)` means "on or before d"."""
    return day_start(day + dt.timedelta(days=1))
