"""Celery tasks of the nightly pipeline. Thin: each one calls a service in brokercrm.nightly.

`brokercrm.tasks.nightly` is what beat starts (schedule in settings: NIGHTLY_HOUR:NIGHTLY_MINUTE,
exchange time). It runs the as-of date `NIGHTLY_AS_OF_LAG_DAYS` (default 1) before today in the
exchange time zone: at 01:30 the business day that has just closed is yesterday's calendar
date, and every trade of that day (up to 24:00 exchange time) is in the ledger. A deployment
that schedules the run before midnight sets the lag to 0.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from brokercrm.models import NightlyRun
from brokercrm.nightly.lock import PipelineBusy
from brokercrm.nightly.orchestration import chunk_execute, finalize_execute, nightly_run_start, stage_execute

logger = logging.getLogger(__name__)


def nightly_default_as_of(now: dt.datetime | None = None) -> dt.date:
    """The as-of date a scheduled run processes: today (exchange time) minus the lag."""
    lag = int(getattr(settings, "NIGHTLY_AS_OF_LAG_DAYS", 1))
    return timezone.localdate(now) - dt.timedelta(days=lag)


@shared_task(name="brokercrm.tasks.nightly", ignore_result=True)
def nightly(as_of: str | None = None) -> str:
    """Start the nightly run (beat entry point). `as_of` is an ISO date; default: see module doc."""
    day = dt.date.fromisoformat(as_of) if as_of else nightly_default_as_of()
    try:
        run = nightly_run_start(as_of=day, trigger=NightlyRun.Trigger.BEAT)
    except PipelineBusy as exc:
        logger.warning("nightly run for %s not started: %s", day, exc)
        return "busy"
    return f"started {run.as_of} attempt {run.attempt}"


@shared_task(name="brokercrm.tasks.nightly_stage", ignore_result=True, acks_late=True)
def nightly_stage(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    return stage_execute(run_id, attempt, position, forced)


@shared_task(name="brokercrm.tasks.nightly_chunk", ignore_result=True, acks_late=True)
def nightly_chunk(run_id: int, attempt: int, position: int, chunk_id: int, forced: bool = False) -> str:
    return chunk_execute(run_id, attempt, position, chunk_id, forced)


@shared_task(name="brokercrm.tasks.nightly_finalize", ignore_result=True, acks_late=True)
def nightly_finalize(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    return finalize_execute(run_id, attempt, position, forced)
