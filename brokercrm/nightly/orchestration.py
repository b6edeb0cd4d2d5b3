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
abandoned or superseded attempt do nothing. With CELERY_TASK_ALWAYS_EAGER (no Redis: the demo
and tests) the same code runs everything in-process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import traceback
from collections.abc import Sequence

from celery import chain, group
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokercrm.models import ChunkRun, NightlyRun, RunStatus, StageRun
from brokercrm.nightly.chunks import client_id_ranges
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


def _fail(run: NightlyRun, stage: Stage, stage_run: StageRun, ctx: StageContext, exc: BaseException) -> None:
    """Record why the stage failed, fail the run and release the lock."""
    logger.exception("nightly %s stage %s failed", run.as_of, stage.name, exc_info=exc)
    text = _error_text(exc)
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
    if stage.cleanup is not None:
        try:
            stage.cleanup(ctx)
        except Exception:
            logger.exception("cleanup of stage %s failed", stage.name)


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


def stage_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the stage task: run a global stage, or prepare a per-client stage and send its chunks."""
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    stage = get_stage(run.stages[position])
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    if stage_run.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        return DONE  # a redelivered task: the chain's next link follows as usual
    StageRun.objects.filter(pk=stage_run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    ctx = _context(run, stage_run, forced)

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
        return finalize_execute(run_id, attempt, position, forced)
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


def chunk_execute(run_id: int, attempt: int, position: int, chunk_id: int, forced: bool = False) -> str:
    """Body of the chunk task: run one client-id range; the last chunk sends the finalize task."""
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    chunk = ChunkRun.objects.select_related("stage_run").get(pk=chunk_id)
    stage_run = chunk.stage_run
    if chunk.status == RunStatus.SUCCEEDED:
        return DONE
    stage = get_stage(stage_run.name)
    ctx = _context(run, stage_run, forced)
    ChunkRun.objects.filter(pk=chunk_id).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), worker=_worker_name()
    )
    try:
        rows = int(stage.chunk(ctx, chunk.client_id_from, chunk.client_id_to) or 0)
    except Exception as exc:
        ChunkRun.objects.filter(pk=chunk_id).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=_error_text(exc)
        )
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


def finalize_execute(run_id: int, attempt: int, position: int, forced: bool = False) -> str:
    """Body of the finalize task: publish a per-client stage's results, then continue the run."""
    run = _current(run_id, attempt)
    if run is None:
        return STALE
    stage = get_stage(run.stages[position])
    stage_run = StageRun.objects.get(run=run, attempt=attempt, name=stage.name)
    if stage_run.status == RunStatus.SUCCEEDED:
        return DONE
    ctx = _context(run, stage_run, forced)
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
