"""Running the stages of a nightly run: a Celery chain of stage tasks, with per-client stages
fanned out as a group of chunk tasks.

How a run moves:

1. `nightly_run_start` takes the pipeline lock, bumps the run's attempt, writes one pending
   `StageRun` per stage and, on commit, sends a chain of stage tasks: every stage up to and
   including the first per-client one.
2. A global stage's task runs the stage; the next link of the chain follows.
3. A per-client stage's task runs `prepare`, writes one `ChunkRun` per client-id range and, on
   commit, sends the chunks as a group. The chain ends there.
4. Each chunk task runs its range and, in one transaction, marks its chunk done (only if it was
   not done already: a redelivered task must not count twice) and adds one to the stage's
   `chunks_done`. The chunk that brings the counter to `chunks_total` sends the finalize task,
   which runs `finalize` (swap the date's results in) and sends the chain of the next stages.
   No chord: a chord can hang forever when a header task fails; here a failed chunk fails the
   run at once and the counter never reaches the total.
5. The last stage marks the run succeeded and releases the lock. Any failure marks the stage
   and the run failed with the error text and releases the lock; the stage's own transaction
   (or swap) guarantees the previous results are still in place, and the date can be re-run.

Every task first checks that its run is still running the same attempt, so tasks of an
abandoned or superseded attempt do nothing.

Faults (tests/faults): every unit (stage task, chunk, finalize) is claimed by the database
session of the task executing it (claims.py) and marked `running` in its run record. A second
delivery of the same task waits for the claim, then finds the unit done (nothing to do) or
still `running`: its first executor died, and the run is failed ("Worker lost"), not silently
re-run (a unit that kills its worker, e.g. out of memory, would loop). A worker killed outright
(nothing redelivered before the broker's visibility timeout) is found by `reap_dead_runs`,
called by the `nightly_watchdog` task and by every start of a run. A database outage in a task
is outlasted: the failure is recorded once PostgreSQL answers again (NIGHTLY_DB_RETRY_SECONDS,
default 300), and a task that met the outage in its own bookkeeping starts over.

With CELERY_TASK_ALWAYS_EAGER (no Redis: the demo and tests) the same code runs everything
in-process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence

from celery import chain, group, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from brokercrm.models import ChunkRun, NightlyRun, RunStatus, StageRun
from brokercrm.nightly.chunks import client_id_ranges
from brokercrm.nightly.claims import CHUNK, FINALIZE, STAGE, claimed, taken_if_free
from brokercrm.nightly.lock import lock_acquire, lock_heartbeat, lock_release
from brokercrm.nightly.registry import Stage, StageContext, StageResult, all_stages, get_stage

logger = logging.getLogger(__name__)

STALE = "stale"
DONE = "done"
FAILED = "failed"
DISPATCHED = "dispatched"
SKIPPED = "skipped"


class NoStages(ValueError):
    MESSAGE = "No nightly stages are registered."


def resolve_stages(names: Sequence[str] | None) -> list[str]:
    """The names to run, in registry order: all stages, or the ones named (validated)."""
    if not names:
        stages = all_stages()
        if not stages:
            raise NoStages(NoStages.MESSAGE)
        return [stage.name for stage in stages]
    wanted = {get_stage(name).name for name in names}
    return [stage.name for stage in all_stages() if stage.name in wanted]


def nightly_run_start(
    *,
    as_of: dt.date,
    stages: Sequence[str] | None = None,
    trigger: str = NightlyRun.Trigger.COMMAND,
    force_lock: bool = False,
    chunk_size: int | None = None,
) -> NightlyRun:
    """Start (or restart) the run for `as_of`; returns the run record.

    `chunk_size` overrides the clients per chunk of per-client stages for this attempt.
    Raises PipelineBusy if another run holds the lock. The tasks are sent when the transaction
    commits; in eager mode the whole run has finished by the time this returns (outside an
    atomic block) and the returned record shows the outcome.
    """
    names = resolve_stages(stages)
    forced = bool(stages)
    reap_dead_runs()  # a run whose worker died no longer holds the lock
    with transaction.atomic():
        run, _ = NightlyRun.objects.get_or_create(as_of=as_of, defaults={"trigger": trigger})
        lock_acquire(run=run, force=force_lock)
        NightlyRun.objects.filter(pk=run.pk).update(
            status=RunStatus.RUNNING,
            attempt=F("attempt") + 1,
            stages=names,
            trigger=trigger,
            options={"chunk_size": chunk_size} if chunk_size else {},
            started_at=timezone.now(),
            finished_at=None,
            error="",
        )
        run.refresh_from_db()
        StageRun.objects.bulk_create(
            StageRun(run=run, attempt=run.attempt, name=name, position=position) for position, name in enumerate(names)
        )
        run_id, attempt = run.pk, run.attempt
        transaction.on_commit(lambda: _send_chain(run_id, attempt, 0, names, forced))
    run.refresh_from_db()
    return run


def _send_chain(run_id: int, attempt: int, position: int, names: Sequence[str], forced: bool) -> None:
    """Send a chain of stage tasks from `position` up to and including the next per-client stage."""
    from brokercrm import tasks

    links = []
    for index in range(position, len(names)):
        links.append(tasks.nightly_stage.si(run_id, attempt, index, forced))
        if get_stage(names[index]).per_client:
            break
    if links:
        chain(*links).apply_async()


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _current(run_id: int, attempt: int) -> NightlyRun | None:
    """The run if it is still running `attempt`, else None (the task is stale)."""
    return NightlyRun.objects.filter(pk=run_id, attempt=attempt, status=RunStatus.RUNNING).first()


def _context(run: NightlyRun, stage_run: StageRun, forced: bool) -> StageContext:
    return StageContext(
        run_id=run.pk,
        attempt=run.attempt,
        stage_run_id=stage_run.pk,
        stage=stage_run.name,
        as_of=run.as_of,
        forced=forced,
    )


def _as_result(value: StageResult | int | None) -> StageResult:
    if isinstance(value, StageResult):
        return value
    return StageResult(rows=int(value or 0))


def _error_text(exc: BaseException) -> str:
    tail = "".join(traceback.format_exception(exc)[-3:])
    return f"{type(exc).__name__}: {exc}\n\n{tail}"[:8000]


class WorkerLost(RuntimeError):
    """The process executing a unit of the run died (or lost the database) in the middle of it."""

    MESSAGE = (
        "Worker lost: {worker} stopped while running {what} of stage {stage} (killed, out of memory, "
        "its machine went down or it lost the database). This attempt is abandoned; the previous "
        "results are still in place. Run the date again."
    )
    OWN_CONNECTION = (
        "Database connection lost: {worker} lost its connection to the database while running {what} "
        "of stage {stage}, so whether that work was committed is unknown. This attempt is abandoned; "
        "the previous results are still in place. Run the date again."
    )


def _db_retry_seconds() -> float:
    return float(getattr(settings, "NIGHTLY_DB_RETRY_SECONDS", 300))


def _persist(write: Callable[[], None], what: str) -> bool:
    """Run a bookkeeping write, retrying while the database is unreachable.

    A stage that failed because PostgreSQL went away (restart, failover, network cut) must still
    get its failure on record once the database is back, or the run would show `running` for
    ever. Retries with a fresh connection for up to NIGHTLY_DB_RETRY_SECONDS; False if it never
    got through (the watchdog, or the next start of the date, then finds the dead unit)."""
    deadline = time.monotonic() + _db_retry_seconds()
    delay = 0.25
    while True:
        try:
            write()
            return True
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() >= deadline:
                logger.exception("could not record %s", what)
                return False
            logger.warning("database unavailable while recording %s; retrying in %.1f s", what, delay)
            try:
                connection.close()
            except Exception:  # already broken: Django drops it anyway
                logger.debug("closing a broken connection failed", exc_info=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _fail(run: NightlyRun, stage: Stage, stage_run: StageRun, ctx: StageContext, exc: BaseException) -> None:
    """Record why the stage failed, fail the run and release the lock (retrying over a database
    outage), then run the stage's cleanup."""
    logger.error("nightly %s stage %s failed", run.as_of, stage.name, exc_info=exc)
    text = _error_text(exc)

    def write() -> None:
        now = timezone.now()
        with transaction.atomic():
            # The first failure is the cause; a chunk that fails later (e.g. because the failed
            # stage's cleanup removed its staging table) must not overwrite it.
            StageRun.objects.filter(pk=stage_run.pk).exclude(status=RunStatus.FAILED).update(
                status=RunStatus.FAILED, finished_at=now, error=text
            )
            NightlyRun.objects.filter(pk=run.pk, attempt=run.attempt, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED, finished_at=now, error=f"Stage {stage.name} failed: {text}"
            )
            lock_release(run_id=run.pk)

    _persist(write, f"the failure of stage {stage.name} of {run.as_of}")
    if stage.cleanup is not None:
        try:
            stage.cleanup(ctx)
        except Exception:
            logger.exception("cleanup of stage %s failed", stage.name)


def _worker_lost(
    run: NightlyRun, stage: Stage, stage_run: StageRun, ctx: StageContext, *, what: str, worker: str
) -> str:
    """Fail the run: the unit `what` was left `running` by a process that no longer holds it."""
    # The unit is ours when a task lost its connection mid-unit and started over (_over_db_outage).
    template = WorkerLost.OWN_CONNECTION if worker and worker == _worker_name() else WorkerLost.MESSAGE
    exc = WorkerLost(template.format(worker=worker or "a worker", what=what, stage=stage.name))
    _fail(run, stage, stage_run, ctx, exc)
    return FAILED


def _advance(run: NightlyRun, stage_run: StageRun, forced: bool, *, continue_chain: bool) -> None:
    """After a stage: finish the run if it was the last stage, else (if the chain ended at this
    stage) send the chain of the following stages."""
    names = run.stages
    nxt = stage_run.position + 1
    if nxt >= len(names):
        with transaction.atomic():
            finished = NightlyRun.objects.filter(pk=run.pk, attempt=run.attempt, status=RunStatus.RUNNING).update(
                status=RunStatus.SUCCEEDED, finished_at=timezone.now(), error=""
            )
            if finished:
                lock_release(run_id=run.pk)
        return
    lock_heartbeat(run_id=run.pk)
    if continue_chain:
        run_id, attempt = run.pk, run.attempt
        transaction.on_commit(lambda: _send_chain(run_id, attempt, nxt, names, forced))


def _stage_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the stage task: run a global stage, or prepare a per-client stage and send its chunks."""
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    stage = get_stage(run.stages[position])
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    if stage_run.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        return DONE  # a redelivered task: the chain's next link follows as usual
    with claimed(STAGE, stage_run.pk):
        return _stage_claimed(run_id, attempt, position, stage, forced)


def _stage_claimed(run_id: int, attempt: int, position: int, stage: Stage, forced: bool) -> str:
    run = _current(run_id, attempt)  # again: the claim may have been waited for
    if run is None:
        return STALE
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    ctx = _context(run, stage_run, forced)
    if stage_run.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        return DONE
    if stage_run.status == RunStatus.FAILED:
        return STALE
    if stage_run.status == RunStatus.RUNNING:
        if stage.per_client and stage_run.chunks_total:
            return DONE  # its chunks were sent: this is a second delivery of the stage task
        # We hold the claim, yet the stage is marked running: whoever started it is gone.
        return _worker_lost(run, stage, stage_run, ctx, what="the stage task", worker=stage_run.worker)
    StageRun.objects.filter(pk=stage_run.pk).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), worker=_worker_name()
    )

    if not (forced or stage.due_on(run.as_of)):
        StageRun.objects.filter(pk=stage_run.pk).update(status=RunStatus.SKIPPED, finished_at=timezone.now())
        _advance(run, stage_run, forced, continue_chain=stage.per_client)
        return SKIPPED

    if not stage.per_client:
        try:
            result = _as_result(stage.run(ctx))
        except Exception as exc:
            _fail(run, stage, stage_run, ctx, exc)
            return FAILED
        StageRun.objects.filter(pk=stage_run.pk).update(
            status=RunStatus.SUCCEEDED, finished_at=timezone.now(), rows=result.rows, detail=result.detail
        )
        _advance(run, stage_run, forced, continue_chain=False)
        return DONE

    try:
        if stage.prepare is not None:
            stage.prepare(ctx)
        ranges = client_id_ranges(run.options.get("chunk_size") or stage.chunk_size)
    except Exception as exc:
        _fail(run, stage, stage_run, ctx, exc)
        return FAILED
    if not ranges:
        return _finalize_execute(run_id, attempt, position, forced)
    with transaction.atomic():
        ChunkRun.objects.filter(stage_run=stage_run).delete()
        chunks = ChunkRun.objects.bulk_create(
            ChunkRun(stage_run=stage_run, index=index, client_id_from=low, client_id_to=high)
            for index, (low, high) in enumerate(ranges)
        )
        StageRun.objects.filter(pk=stage_run.pk).update(chunks_total=len(chunks), chunks_done=0, rows=0)
        chunk_ids = [chunk.pk for chunk in ChunkRun.objects.filter(stage_run=stage_run).order_by("index")]
        transaction.on_commit(lambda: _send_chunks(run_id, attempt, position, chunk_ids, forced))
    return DISPATCHED


def _send_chunks(run_id: int, attempt: int, position: int, chunk_ids: list[int], forced: bool) -> None:
    from brokercrm import tasks

    group(tasks.nightly_chunk.si(run_id, attempt, position, chunk_id, forced) for chunk_id in chunk_ids).apply_async()


def _chunk_execute(run_id: int, attempt: int, position: int, chunk_id: int, forced: bool = False) -> str:
    """Body of the chunk task: run one client-id range; the last chunk sends the finalize task.

    The chunk is claimed while it runs (claims.py): a second delivery waits for the first, then
    finds the chunk done (nothing to do) or still `running` (the first delivery's worker died:
    the run fails, it is not silently re-run; a chunk that kills its worker would loop)."""
    if _current(run_id, attempt) is None:
        return STALE
    with claimed(CHUNK, chunk_id):
        return _chunk_claimed(run_id, attempt, position, chunk_id, forced)


def _chunk_claimed(run_id: int, attempt: int, position: int, chunk_id: int, forced: bool) -> str:
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    chunk = ChunkRun.objects.select_related("stage_run").get(pk=chunk_id)
    stage_run = chunk.stage_run
    if chunk.status == RunStatus.SUCCEEDED:
        return DONE
    if chunk.status == RunStatus.FAILED:
        return STALE
    stage = get_stage(stage_run.name)
    ctx = _context(run, stage_run, forced)
    if chunk.status == RunStatus.RUNNING:
        return _worker_lost(run, stage, stage_run, ctx, what=f"chunk {chunk.index}", worker=chunk.worker)
    ChunkRun.objects.filter(pk=chunk_id).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), worker=_worker_name()
    )
    try:
        rows = int(stage.chunk(ctx, chunk.client_id_from, chunk.client_id_to) or 0)
    except Exception as exc:
        error = _error_text(exc)

        def write() -> None:
            ChunkRun.objects.filter(pk=chunk_id).update(
                status=RunStatus.FAILED, finished_at=timezone.now(), error=error
            )

        _persist(write, f"the failure of chunk {chunk.index} of stage {stage.name}")
        _fail(run, stage, stage_run, ctx, exc)
        return FAILED
    with transaction.atomic():
        counted = (
            ChunkRun.objects.filter(pk=chunk_id)
            .exclude(status=RunStatus.SUCCEEDED)
            .update(status=RunStatus.SUCCEEDED, finished_at=timezone.now(), rows=rows, error="")
        )
        if not counted:
            return DONE  # another delivery of this task already counted the chunk
        # The UPDATE locks the stage row until commit, so concurrent chunks count one at a time
        # and exactly one of them reads chunks_done == chunks_total.
        StageRun.objects.filter(pk=stage_run.pk).update(chunks_done=F("chunks_done") + 1, rows=F("rows") + rows)
        done, total = StageRun.objects.filter(pk=stage_run.pk).values_list("chunks_done", "chunks_total").get()
        lock_heartbeat(run_id=run_id)
        if done == total:
            transaction.on_commit(lambda: _send_finalize(run_id, attempt, position, forced))
    return DONE


def _send_finalize(run_id: int, attempt: int, position: int, forced: bool) -> None:
    from brokercrm import tasks

    tasks.nightly_finalize.delay(run_id, attempt, position, forced)


def _finalize_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the finalize task: publish a per-client stage's results, then continue the run."""
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    stage = get_stage(run.stages[position])
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    if stage_run.status == RunStatus.SUCCEEDED:
        return DONE
    with claimed(FINALIZE, stage_run.pk):
        return _finalize_claimed(run_id, attempt, stage, forced)


def _finalize_claimed(run_id: int, attempt: int, stage: Stage, forced: bool) -> str:
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    if stage_run.status == RunStatus.SUCCEEDED:
        return DONE
    if stage_run.status == RunStatus.FAILED:
        return STALE
    ctx = _context(run, stage_run, forced)
    if stage_run.finalize_started_at is not None:
        return _worker_lost(run, stage, stage_run, ctx, what="the finalize step", worker=stage_run.worker)
    StageRun.objects.filter(pk=stage_run.pk).update(finalize_started_at=timezone.now(), worker=_worker_name())
    try:
        unfinished = ChunkRun.objects.filter(stage_run=stage_run).exclude(status=RunStatus.SUCCEEDED).count()
        if unfinished:
            raise RuntimeError(f"{unfinished} chunk(s) of stage {stage.name} have not succeeded")
        result = _as_result(stage.finalize(ctx)) if stage.finalize is not None else StageResult()
    except Exception as exc:
        _fail(run, stage, stage_run, ctx, exc)
        return FAILED
    stage_run.refresh_from_db(fields=["rows"])
    StageRun.objects.filter(pk=stage_run.pk).update(
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        rows=result.rows or stage_run.rows,
        detail=result.detail,
    )
    if stage.cleanup is not None:
        try:
            stage.cleanup(ctx)
        except Exception:
            logger.exception("cleanup of stage %s failed", stage.name)
    _advance(run, stage_run, forced, continue_chain=True)
    return DONE


def stage_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the stage task: run a global stage, or prepare a per-client stage and send its chunks."""
    return _over_db_outage(_stage_execute, run_id, attempt, position, forced)


def chunk_execute(run_id: int, attempt: int, position: int, chunk_id: int, forced: bool = False) -> str:
    """Body of the chunk task: run one client-id range; the last chunk sends the finalize task."""
    return _over_db_outage(_chunk_execute, run_id, attempt, position, chunk_id, forced)


def finalize_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the finalize task: publish a per-client stage's results, then continue the run."""
    return _over_db_outage(_finalize_execute, run_id, attempt, position, forced)


def _over_db_outage(body: Callable[..., str], *args: object) -> str:
    """Run a task body; if the database connection drops in the task's own bookkeeping (a stage's
    errors are recorded by the body itself), start the body again on a fresh connection until
    NIGHTLY_DB_RETRY_SECONDS have passed.

    Safe because every body re-reads the unit's state under its claim: a unit that had not
    started runs now; one left `running` by the lost connection fails the run as abandoned.
    Without this, a task that met the outage before marking its unit would vanish (acked,
    failed) and leave the run `running` with nothing to notice it."""
    deadline = time.monotonic() + _db_retry_seconds()
    delay = 0.25
    while True:
        try:
            return body(*args)
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() >= deadline:
                raise
            logger.warning("database unavailable in nightly task %s%r; retrying in %.1f s", body.__name__, args, delay)
            try:
                connection.close()
            except Exception:
                logger.debug("closing a broken connection failed", exc_info=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# --- dead workers ---------------------------------------------------------------------------


def _executing_units(run: NightlyRun) -> list[tuple[int, int, StageRun, str, str]]:
    """(claim kind, id, stage run, what, worker) of every unit of the run's attempt marked running."""
    units = []
    for stage_run in StageRun.objects.filter(run=run, attempt=run.attempt, status=RunStatus.RUNNING):
        if stage_run.finalize_started_at is not None:
            units.append((FINALIZE, stage_run.pk, stage_run, "the finalize step", stage_run.worker))
        elif not stage_run.chunks_total:
            units.append((STAGE, stage_run.pk, stage_run, "the stage task", stage_run.worker))
        for chunk in ChunkRun.objects.filter(stage_run=stage_run, status=RunStatus.RUNNING).order_by("index"):
            units.append((CHUNK, chunk.pk, stage_run, f"chunk {chunk.index}", chunk.worker))
    return units


def _unit_still_running(kind: int, pk: int) -> bool:
    if kind == CHUNK:
        return ChunkRun.objects.filter(pk=pk, status=RunStatus.RUNNING).exists()
    stage_run = StageRun.objects.filter(pk=pk, status=RunStatus.RUNNING).first()
    if stage_run is None:
        return False
    return stage_run.finalize_started_at is not None if kind == FINALIZE else not stage_run.chunks_total


def reap_dead_runs() -> list[NightlyRun]:
    """Fail every running run whose work was being done by a process that is gone.

    A unit (stage task, chunk, finalize) marked `running` whose claim nobody holds any more was
    abandoned by its worker (killed, out of memory, machine lost, database connection lost):
    the run is failed at once with what was lost, the lock is released and the stage's
    cleanup runs; the published results stay those of the last good run. Runs with no unit in
    progress are left to the lock's heartbeat TTL. PostgreSQL only (claims); returns the runs
    failed. Called by `nightly_run_start` and by the `brokercrm.tasks.nightly_watchdog` task.
    """
    if connection.vendor != "postgresql":
        return []
    reaped = []
    for run in NightlyRun.objects.running():
        for kind, pk, stage_run, what, worker in _executing_units(run):
            with taken_if_free(kind, pk) as taken:
                # With the claim in hand nobody can be working on the unit: if it is still
                # marked running, its executor died.
                if not taken or not _unit_still_running(kind, pk) or _current(run.pk, run.attempt) is None:
                    continue
                stage = get_stage(stage_run.name)
                _worker_lost(run, stage, stage_run, _context(run, stage_run, False), what=what, worker=worker)
            run.refresh_from_db()
            reaped.append(run)
            break
    return reaped


@shared_task(name="brokercrm.tasks.nightly_watchdog", ignore_result=True)
def nightly_watchdog() -> int:
    """Periodic check (beat, every few minutes): fail runs whose worker died. Returns how many."""
    return len(reap_dead_runs())
