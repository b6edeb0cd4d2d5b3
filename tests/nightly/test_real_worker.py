"""The pipeline through a real Redis broker and real Celery worker processes.

Run with both services, e.g.:
    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_nightly \\
    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/pytest tests/nightly/test_real_worker.py
"""

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from brokercrm.celery import app as celery_app
from brokercrm.models import ChunkRun, NightlyRun, RunStatus
from brokercrm.nightly.orchestration import nightly_run_start
from segmentation.models import NeedsProfile, Tier, TierResult
from tests.segmentation.books import make_book

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

AS_OF = dt.date(2026, 6, 30)
ROOT = Path(__file__).resolve().parents[2]


def _worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="brokercrm.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
    )
    return env


@pytest.fixture
def worker() -> Iterator[subprocess.Popen]:
    """Two prefork worker processes on the test database, stopped whatever happens."""
    celery_app.conf.task_always_eager = False  # the autouse fixture restores it afterwards
    celery_app.control.purge()  # tasks left in the queue by an earlier, interrupted run
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "brokercrm",
            "worker",
            "--pool=prefork",
            "-c",
            "2",
            "-l",
            "INFO",
            "-n",
            f"test{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=_worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start; log: {Path(log.name).read_text()[-3000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_for(run: NightlyRun, seconds: float) -> NightlyRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            return run
        time.sleep(0.5)
    pytest.fail(f"run still {run.status} after {seconds} s: {list(run.stage_runs.values_list('name', 'status'))}")


def test_the_pipeline_runs_on_real_workers(worker: subprocess.Popen) -> None:
    # given 100 clients with distinct commission
    clients = make_book([index + 1 for index in range(100)], as_of=AS_OF)

    # when the run is started here and executed by the worker processes, per-client stages in
    # chunks of 10 clients
    run = nightly_run_start(as_of=AS_OF, trigger=NightlyRun.Trigger.TEST, chunk_size=10)
    assert run.status == RunStatus.RUNNING  # nothing ran in this process
    run = _wait_for(run, 120)

    # then
    assert run.status == RunStatus.SUCCEEDED, run.error
    tiers = list(TierResult.objects.filter(as_of=AS_OF).values_list("tier", flat=True))
    assert [tiers.count(tier) for tier in (Tier.VIP, Tier.MAJOR, Tier.ORDINARY, Tier.SMALL)] == [3, 7, 10, 80]
    assert NeedsProfile.objects.filter(as_of=AS_OF).count() == len(clients)
    chunks = ChunkRun.objects.filter(stage_run__run=run, stage_run__name="needs")
    assert chunks.count() == 10
    assert set(chunks.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    workers = set(chunks.values_list("worker", flat=True))
    assert all(name and str(os.getpid()) not in name.split(":")[-1] for name in workers)
    stage = run.stage_runs.get(name="needs")
    assert (stage.chunks_done, stage.chunks_total) == (10, 10)

    # and running the same date again on the workers gives the same tiers
    before = sorted(TierResult.objects.filter(as_of=AS_OF).values_list("client_id", "tier", "rank"))
    again = _wait_for(nightly_run_start(as_of=AS_OF, trigger=NightlyRun.Trigger.TEST, chunk_size=10), 120)
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert again.attempt == 2
    assert sorted(TierResult.objects.filter(as_of=AS_OF).values_list("client_id", "tier", "rank")) == before
