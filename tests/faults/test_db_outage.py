"""Issue #10, item 3: PostgreSQL unavailable for a few seconds in the middle of a stage.

The workers reach PostgreSQL through a TCP proxy (harness.Proxy) that the test cuts: the open
connections are reset and new ones refused for 3 s, then served again. The shared cluster is
never stopped (see harness.py for why a proxy). A worker is held in the middle of a chunk (rows
written, not committed) when the cut comes; it goes on, meets the dead connection, and must get
the failure on record once the database is back. Readers keep the previous results, and a re-run
gives exactly the rows of an undisturbed run.
"""

import time

import pytest

from brokercrm.models import ChunkRun, RunStatus
from tests.faults import harness
from tests.faults.checks import assert_in_progress, assert_recovers
from tests.faults.conftest import E

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

OUTAGE_SECONDS = 3


def test_the_database_drops_for_a_few_seconds_in_the_middle_of_a_chunk(scenario) -> None:
    spec = "chunk dormancy 1"
    scenario.hold(spec)
    run = scenario.start()
    pid = scenario.held_pid()
    assert_in_progress(run, spec, pid)

    scenario.proxy.cut()  # PostgreSQL "goes away" for the workers only
    scenario.release()  # the held chunk goes on, on a dead connection
    time.sleep(OUTAGE_SECONDS)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nothing could be recorded during the outage
    scenario.proxy.restore()

    failed = harness.wait_finished(E, 60)
    assert harness.process_alive(pid)  # the worker survived; only the stage failed
    # the run fails as soon as the first task records the outage (another chunk may be first);
    # the held chunk records its own failure once its retry gets through
    chunk = ChunkRun.objects.get(
        stage_run__run=failed, stage_run__attempt=failed.attempt, stage_run__name="dormancy", index=1
    )

    def recorded() -> bool:
        chunk.refresh_from_db()
        return chunk.status != RunStatus.RUNNING

    harness.wait_until(recorded, 30, "the held chunk to record its failure")
    assert chunk.status == RunStatus.FAILED
    assert "connection" in chunk.error.lower() or "server" in chunk.error.lower(), chunk.error
    # the chunk whose own code met the outage says so (OperationalError ...); a task that lost the
    # connection in its bookkeeping cannot know whether its work was committed, and says that
    causes = ("OperationalError", "InterfaceError", "Database connection lost")
    assert any(cause in failed.error for cause in causes), failed.error
    assert_recovers(scenario, failed, "dormancy", cause="dormancy")
