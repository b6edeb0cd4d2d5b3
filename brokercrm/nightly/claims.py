"""Who is executing a unit of a nightly run right now: claims held by database sessions.

A unit is one stage task, one chunk or one finalize step. The task executing it holds a
PostgreSQL session-level advisory lock on it for as long as it works on it, on its own
database connection. A worker process that dies (SIGKILL, out of memory, a lost machine)
loses its connection, and PostgreSQL drops the lock with it. So:

- a unit marked `running` whose claim can be taken has no executor any more: its worker died
  (or lost the database) in the middle of it;
- a second delivery of the same task (acks_late redelivers after a worker loss; a broker can
  deliver twice) waits on the claim until the first delivery has finished or died, then
  looks at the unit's status: done (nothing to do), or still `running` (the first one died).

The run lock (lock.py) stays a row: it belongs to a run that spans many tasks. The claims
belong to the one task that is working, which is what a dead worker takes away with it.
On SQLite (embedded default, eager, one process) claims are no-ops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from brokercrm.lib.db import is_postgres

logger = logging.getLogger(__name__)

# First key of the two-int advisory locks (a key space of its own in pg_locks); second: the row id.
STAGE = 0x4E01  # StageRun id: a global stage, or a per-client stage's prepare-and-dispatch
CHUNK = 0x4E02  # ChunkRun id
FINALIZE = 0x4E03  # StageRun id: the finalize step of a per-client stage


def _key(pk: int) -> int:
    return int(pk) % 2_147_483_647


@contextmanager
def claimed(kind: int, pk: int) -> Iterator[None]:
    """Hold the claim on a unit while the block runs; waits while another session holds it."""
    if not is_postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [kind, _key(pk)])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, _key(pk)])
        except Exception:  # the connection is gone, and the lock with it
            logger.warning("could not release the claim %s/%s", kind, pk, exc_info=True)


@contextmanager
def taken_if_free(kind: int, pk: int) -> Iterator[bool]:
    """Take the claim only if nobody holds it; yields whether it was taken (released after)."""
    if not is_postgres():
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [kind, _key(pk)])
        (taken,) = cursor.fetchone()
    try:
        yield bool(taken)
    finally:
        if taken:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, _key(pk)])
            except Exception:
                logger.warning("could not release the claim %s/%s", kind, pk, exc_info=True)


def owner_gone(kind: int, pk: int) -> bool:
    """True if nobody holds the claim on the unit (on SQLite: never)."""
    with taken_if_free(kind, pk) as taken:
        return taken
