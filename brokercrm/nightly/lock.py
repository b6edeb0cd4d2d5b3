"""The pipeline lock: a database row taken with a compare-and-set UPDATE.

Why a row and not a Redis or advisory lock: the lock belongs to a *run*, not to a process.
A run spans many tasks on many workers (a chain of stages, groups of chunks), so no single
connection lives as long as the run; a PostgreSQL advisory lock would die with the
connection of the task that took it. A row also works on SQLite (the embedded default) and
shows up in admin.

The UPDATE ... WHERE run IS NULL OR heartbeat_at < stale checks its row count: exactly one
of two concurrent callers sees 1. On PostgreSQL the loser's UPDATE waits for the winner's
transaction and then re-checks the WHERE against the committed row; SQLite serialises writers.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from brokercrm.models import NightlyRun, PipelineLock, RunStatus

PIPELINE_LOCK = "nightly"


class PipelineBusy(RuntimeError):
    MESSAGE = "Another nightly run holds the lock: {holder}."


def lock_ttl() -> dt.timedelta:
    """After this long without a heartbeat a held lock counts as abandoned."""
    return dt.timedelta(minutes=int(getattr(settings, "NIGHTLY_LOCK_TTL_MINUTES", 180)))


def lock_acquire(*, run: NightlyRun, name: str = PIPELINE_LOCK, force: bool = False) -> None:
    """Make `run` the holder of lock `name`, or raise PipelineBusy.

    A lock is free when nobody holds it, when its holder's heartbeat is older than the TTL
    (the holder died), or when `force` is given (an operator breaking a stuck lock). A run
    whose lock is taken from it is marked failed, so its late tasks stop at their next check.
    """
    now = timezone.now()
    with transaction.atomic():
        PipelineLock.objects.get_or_create(name=name)
        free = Q(run__isnull=True) | Q(heartbeat_at__lt=now - lock_ttl())
        if force:
            free = Q()
        previous = PipelineLock.objects.filter(name=name).values_list("run_id", flat=True).first()
        taken = PipelineLock.objects.filter(free, name=name).update(run=run, acquired_at=now, heartbeat_at=now)
        if taken != 1:
            holder = NightlyRun.objects.filter(pk=previous).first()
            raise PipelineBusy(PipelineBusy.MESSAGE.format(holder=holder or "unknown run"))
        if previous is not None and previous != run.pk:
            NightlyRun.objects.filter(pk=previous, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error=f"Abandoned: the pipeline lock was taken over by the run for {run.as_of}.",
            )


def lock_heartbeat(*, run_id: int, name: str = PIPELINE_LOCK) -> bool:
    """Refresh the holder's heartbeat; False if `run_id` no longer holds the lock."""
    return PipelineLock.objects.filter(name=name, run_id=run_id).update(heartbeat_at=timezone.now()) == 1


def lock_release(*, run_id: int, name: str = PIPELINE_LOCK) -> bool:
    """Release the lock if `run_id` holds it; False if it did not."""
    return PipelineLock.objects.filter(name=name, run_id=run_id).update(run=None, heartbeat_at=None) == 1


def lock_holder(name: str = PIPELINE_LOCK) -> NightlyRun | None:
    lock = PipelineLock.objects.select_related("run").filter(name=name).first()
    return lock.run if lock else None
