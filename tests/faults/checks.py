"""Assertions shared by the fault tests."""

from brokercrm.models import ChunkRun, NightlyRun, PipelineLock, RunStatus, StageRun
from compliance.audit import verify_chain
from tests.faults import harness
from tests.faults.conftest import E, expected_visible, visible


def assert_in_progress(run: NightlyRun, spec: str, pid: int) -> None:
    """The run records show the held unit running, in the process about to be killed."""
    kind, stage, *index = spec.split()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    stage_run = StageRun.objects.get(run=run, attempt=run.attempt, name=stage)
    assert stage_run.status == RunStatus.RUNNING
    if kind == "chunk":
        chunk = ChunkRun.objects.get(stage_run=stage_run, index=int(index[0]))
        assert chunk.status == RunStatus.RUNNING
        assert chunk.worker.endswith(f":{pid}")
    else:
        assert stage_run.worker.endswith(f":{pid}")
        assert (stage_run.finalize_started_at is not None) == (kind == "finalize")


def assert_recovers(scenario, failed: NightlyRun, stage: str, *, cause: str = "Worker lost") -> None:
    """The run failed in `stage` and said why, released the lock, readers see the previous
    results of that stage, and a re-run on a worker gives exactly the undisturbed results."""
    assert failed.status == RunStatus.FAILED, failed.error
    assert cause in failed.error, failed.error
    assert f"Stage {stage} failed" in failed.error, failed.error
    assert StageRun.objects.get(run=failed, attempt=failed.attempt, name=stage).status == RunStatus.FAILED
    assert PipelineLock.objects.get(name="nightly").run_id is None
    expected = expected_visible(scenario.template, stage)
    now = visible()
    wrong = [part for part in expected if now[part] != expected[part]]
    assert wrong == [], f"readers see other results than the last good ones: {wrong}"
    # the date is run again on a worker (no --force-lock: the failed run released the lock)
    scenario.worker  # noqa: B018 - (re)started if the test killed it
    scenario.start()
    again = harness.wait_finished(E)
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert again.attempt == failed.attempt + 1
    differences = harness.diff(scenario.template.reference, harness.snapshot())
    assert differences == [], differences
    assert visible() == scenario.template.visible_e, "readers do not see the undisturbed results"
    report = verify_chain()
    assert report.ok, report
