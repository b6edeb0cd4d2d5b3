"""Hold points in the worker processes of the fault tests (imported by worker_settings.py only).

A test writes `<FAULT_HOLD_DIR>/hold[.TAG]` with "KIND STAGE [INDEX] [any]" (KIND: stage, chunk
or finalize; INDEX: a chunk's index). The first task of that kind for that stage then stops
right *after* the first statement that writes data inside a transaction of the stage's own code
(the run records, tables `brokercrm_*`, and the unit's claim do not count), i.e. in the middle of the stage's work
with uncommitted rows (`any`: after its first statement of any kind, for a stage that may
have nothing to write, or writes through COPY, which bypasses Django's execute wrappers).
It creates `<dir>/held[.TAG]` holding "PID" and sleeps until its hold file is removed (or
120 s pass). Only one task ever holds per
hold file (`held` is created exclusively). The test then kills the process, cuts its database
connection, or sends a duplicate message, while it is held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_postrun, task_prerun

KINDS = {
    "brokercrm.tasks.nightly_stage": "stage",
    "brokercrm.tasks.nightly_chunk": "chunk",
    "brokercrm.tasks.nightly_finalize": "finalize",
}
WRITES = ("INSERT", "UPDATE", "DELETE", "COPY", "CREATE", "ALTER", "DROP", "TRUNCATE", "WITH", "MERGE")


def _dir() -> Path | None:
    value = os.environ.get("FAULT_HOLD_DIR")
    return Path(value) if value else None


class _Holder:
    def __init__(self, hold: Path, held: Path, *, any_statement: bool = False) -> None:
        self.hold = hold
        self.held = held
        self.any_statement = any_statement
        self.fired = False

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if self.fired or not (self.any_statement or context["connection"].in_atomic_block):
            return result
        text = sql.lstrip().upper() if isinstance(sql, str) else ""
        if "BROKERCRM_" in text or "PG_ADVISORY" in text or not (self.any_statement or text.startswith(WRITES)):
            return result
        self.fired = True
        try:
            fd = os.open(self.held, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return result
        os.write(fd, f"{os.getpid()}\n{text[:200]}".encode())
        os.close(fd)
        deadline = time.monotonic() + 120
        while self.hold.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return result


@task_prerun.connect
def _arm(task=None, args=None, **_: object) -> None:
    directory = _dir()
    kind = KINDS.get(getattr(task, "name", ""))
    if directory is None or kind is None:
        return
    for hold in sorted(directory.glob("hold*")):
        held = directory / hold.name.replace("hold", "held", 1)
        try:
            wanted = hold.read_text().split()
        except FileNotFoundError:
            continue
        if held.exists() or not wanted or wanted[0] != kind or not _matches(wanted, args):
            continue
        from django.db import connection

        holder = _Holder(hold, held, any_statement="any" in wanted)
        task._fault_holder = holder
        connection.execute_wrappers.append(holder)
        return


def _matches(wanted: list[str], args: tuple) -> bool:
    from brokercrm.models import ChunkRun, NightlyRun

    run_id, _attempt, position = args[:3]
    stages = NightlyRun.objects.filter(pk=run_id).values_list("stages", flat=True).first() or []
    if position >= len(stages) or stages[position] != wanted[1]:
        return False
    if wanted[0] == "chunk" and len(wanted) > 2 and wanted[2].isdigit():
        return ChunkRun.objects.filter(pk=args[3], index=int(wanted[2])).exists()
    return True


@task_postrun.connect
def _disarm(task=None, **_: object) -> None:
    holder = getattr(task, "_fault_holder", None)
    if holder is None:
        return
    from django.db import connection

    if holder in connection.execute_wrappers:
        connection.execute_wrappers.remove(holder)
    task._fault_holder = None
