"""Issue #10, item 3: a real worker process killed in the middle of a stage.

For one stage (or chunk, or finalize step) of each app, a prefork worker on Redis is stopped in
the middle of the stage's own work, with rows written and not committed (hold.py), and then:

- its pool process is SIGKILLed (the main process lives: acks_late + reject_on_worker_lost put
  the message back, the next delivery finds the unit `running` with nobody holding its claim);
- or the whole worker, main process included, is SIGKILLed (a lost machine: nothing is
  redelivered before the visibility timeout; the watchdog, or the next start of the date,
  finds the unit `running` with nobody holding its claim).

Each time: the run is reported failed with what was lost, readers still see the previous
night's results of that stage, and a re-run on a worker completes with exactly the rows of an
undisturbed run of the same night on the same book (every result table, row by row).
"""

import os
import signal

import pytest

from brokercrm.models import RunStatus
from brokercrm.nightly.orchestration import reap_dead_runs
from tests.faults import harness
from tests.faults.checks import assert_in_progress, assert_recovers
from tests.faults.conftest import E

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# KIND STAGE [CHUNK INDEX]: a global stage's task, a chunk, or a finalize step, per app.
KILLS = [
    "stage tiers",  # segmentation: the ranking and partition swap
    "chunk needs 1",  # segmentation: a chunk of a per-client stage
    "finalize churn",  # retention scoring: the publish step of a per-client stage
    "stage compliance",  # compliance
    "stage playbooks any",  # retention work (tasks: COPY, maybe none to open: hold on any statement)
    "stage metrics",  # metrics
]


@pytest.mark.parametrize("spec", KILLS)
def test_a_pool_process_killed_in_the_middle_of_a_stage(scenario, spec: str) -> None:
    stage = spec.split()[1]
    scenario.hold(spec)
    run = scenario.start()
    pid = scenario.held_pid()
    assert_in_progress(run, spec, pid)

    os.kill(pid, signal.SIGKILL)
    scenario.release()

    failed = harness.wait_finished(E, 60)
    assert scenario.worker.process.poll() is None  # the main process replaced its pool process
    assert_recovers(scenario, failed, stage)


def test_the_whole_worker_killed_in_the_middle_of_a_chunk(scenario) -> None:
    spec = "chunk churn 0"
    scenario.hold(spec)
    run = scenario.start()
    pid = scenario.held_pid()
    assert_in_progress(run, spec, pid)

    scenario.worker.kill_all()  # main process and pool: nothing is acked, nothing redelivered
    scenario.release()
    harness.wait_until(lambda: not harness.process_alive(pid), 10, "the pool process to be gone")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # nobody has noticed yet

    # the watchdog notices: the chunk is `running` and nobody holds its claim
    harness.wait_until(reap_dead_runs, 20, "the watchdog to find the dead worker")
    run.refresh_from_db()
    assert "chunk 0" in run.error
    assert_recovers(scenario, run, "churn")
