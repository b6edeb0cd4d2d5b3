"""Who owns a running import batch, and what happens to one whose owner is gone.

The batch row is committed before the import's own transaction starts (so a crashed import
is still on record). An import killed outright (SIGKILL, OOM, a lost machine) never gets to
write its outcome: its transaction is rolled back by PostgreSQL, so none of its rows remain,
but the row would stay `running` for ever.

So on PostgreSQL the importing *database session* owns the batch: it takes a session-level
advisory lock on the batch id in the same transaction that inserts the row (no other session
can see the row unlocked), and releases it when the import has recorded its outcome. A
process that dies loses its connection and PostgreSQL drops the lock with it. Every import
(command, API, admin) first sweeps the `running` batches: one whose lock can be taken has no
owner any more and is marked failed ("abandoned"); the import then proceeds as usual. On
SQLite (the embedded default, one process) there is nothing to sweep.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.utils import timezone

from brokercrm.lib.db import is_postgres
from clients.models import ImportBatch

logger = logging.getLogger(__name__)

# First key of the two-int advisory locks of import batches (a space of its own in pg_locks).
LOCK_CLASS = 0x1B47
ABANDONED = (
    "abandoned: the importing process stopped before recording an outcome (killed or lost its "
    "database connection); its transaction was rolled back, so nothing of this batch was written. "
    "Import the file again."
)


def _key(batch_id: int) -> int:
    return int(batch_id) % 2_147_483_647


def claim(batch_id: int) -> None:
    """Hold the batch for this database session (call inside the transaction inserting it)."""
    if not is_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, _key(batch_id)])


def release(batch_id: int) -> None:
    """Let go of the batch (after its outcome is recorded). Never raises."""
    if not is_postgres():
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _key(batch_id)])
    except Exception:  # the connection is gone: so is the lock
        logger.warning("could not release the claim on import batch %s", batch_id, exc_info=True)


def owner_alive(batch_id: int) -> bool:
    """True if some session holds the batch (its import is still going)."""
    if not is_postgres():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, _key(batch_id)])
        (free,) = cursor.fetchone()
        if free:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _key(batch_id)])
    return not free


def reap_abandoned(*, exclude: int | None = None) -> list[int]:
    """Mark failed every `running` batch whose owner is gone; return their ids.

    A batch claimed by this very session (`exclude`, or an unreleased claim) is skipped: session
    advisory locks are re-entrant, so this session would always get its own lock."""
    if not is_postgres():
        return []
    running = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING)
    if exclude is not None:
        running = running.exclude(pk=exclude)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objsubid = 2 "
            "AND pid = pg_backend_pid() AND granted",
            [LOCK_CLASS],
        )
        mine = {int(row[0]) for row in cursor.fetchall()}
    reaped = []
    for batch_id in running.values_list("pk", flat=True):
        if _key(batch_id) in mine or owner_alive(batch_id):
            continue
        updated = ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.RUNNING).update(
            status=ImportBatch.Status.FAILED,
            finished_at=timezone.now(),
            failure=ABANDONED,
            rows_written=0,
            rows_updated=0,
        )
        if updated:
            logger.warning("import batch %s was abandoned by its process: marked failed", batch_id)
            reaped.append(batch_id)
    return reaped
