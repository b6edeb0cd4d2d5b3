"""Issue #10, item 3: the same task delivered twice to real workers.

A chunk task and a finalize task are each sent a second time, with the same arguments, while the
first delivery is in the middle of its work (held, rows written and not committed), and once
more after the run has finished. The second delivery waits on the unit's claim, then finds it
done and does nothing: the chunk is counted once, the stage published once, and the results are
exactly those of an undisturbed run.
"""

import pytest
from django.db import connection

from brokercrm.celery import app as celery_app
from brokercrm.models import ChunkRun, RunStatus, StageRun
from tests.faults import harness
from tests.faults.conftest import E, visible

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def waiting_on_a_claim() -> int:
    """Sessions of the workers' database waiting for an advisory lock (a unit's claim)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        )
        return cursor.fetchone()[0]


def started_by(chunk: ChunkRun, pid: int) -> bool:
    chunk.refresh_from_db()
    return chunk.worker.endswith(f":{pid}")


def test_a_chunk_and_a_finalize_delivered_twice(scenario) -> None:
    scenario.hold("chunk needs 0", "chunk")
    scenario.hold("finalize churn", "finalize")
    run = scenario.start()
    needs = run.stages.index("needs")
    churn = run.stages.index("churn")

    # a second delivery of chunk 0 of needs while the first one is in the middle of it
    first = scenario.held_pid("chunk")
    chunk = ChunkRun.objects.get(stage_run__run=run, stage_run__name="needs", index=0)
    chunk_args = [run.pk, run.attempt, needs, chunk.pk, False]
    celery_app.send_task("brokercrm.tasks.nightly_chunk", args=chunk_args)
    # it waits on the chunk's claim (without claims it would run the chunk a second time, at once)
    harness.wait_until(lambda: waiting_on_a_claim() or not started_by(chunk, first), 30, "the second delivery")
    assert waiting_on_a_claim(), "the second delivery ran the chunk while the first was in the middle of it"
    scenario.release("chunk")

    # a second delivery of the finalize step of churn while the first one is publishing
    first = scenario.held_pid("finalize")
    finalize_args = [run.pk, run.attempt, churn, False]
    celery_app.send_task("brokercrm.tasks.nightly_finalize", args=finalize_args)
    harness.wait_until(waiting_on_a_claim, 30, "the second delivery to wait on the finalize claim")
    scenario.release("finalize")

    run = harness.wait_finished(E)
    assert run.status == RunStatus.SUCCEEDED, run.error
    stage = StageRun.objects.get(run=run, attempt=run.attempt, name="needs")
    assert (stage.chunks_done, stage.chunks_total) == (4, 4)
    assert harness.diff(scenario.template.reference, harness.snapshot()) == []

    # and once more each (and a stage task) after the run has finished: nothing changes
    celery_app.send_task("brokercrm.tasks.nightly_chunk", args=chunk_args)
    celery_app.send_task("brokercrm.tasks.nightly_finalize", args=finalize_args)
    celery_app.send_task("brokercrm.tasks.nightly_stage", args=[run.pk, run.attempt, needs, False])
    harness.wait_until(lambda: not scenario.worker.busy(), 30, "the worker to be idle")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert harness.diff(scenario.template.reference, harness.snapshot()) == []
    assert visible() == scenario.template.visible_e
