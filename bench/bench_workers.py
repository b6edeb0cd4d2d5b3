"""Real Celery worker processes for the benchmarks: the nightly stages as production runs them
(docker-compose.yml starts one worker with `--concurrency 2`), through Redis (REDIS_URL).

    with celery_workers(2):
        run = run_on_workers(as_of, ["dormancy", "churn"])
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CELERY_WORKER = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "brokercrm",
    "worker",
    "--pool=prefork",
    "-c",
    "1",
    "-l",
    "WARNING",
]


def start_workers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    """`count` worker processes (one process each) on this process's database and broker."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
    )
    processes = []
    for index in range(count):
        log = (log_dir / f"bench-worker-{count}-{index}.log").open("w")
        processes.append(
            subprocess.Popen(  # noqa: S603 - fixed argv
                [*CELERY_WORKER, "-n", f"bench{index}-{os.getpid()}@%h"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def celery_workers(count: int, log_dir: Path = Path("/tmp")) -> Iterator[None]:  # noqa: S108
    """`count` worker processes answering pings, tasks sent to them (not run eagerly) inside."""
    from brokercrm.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    processes = start_workers(count, log_dir)
    try:
        deadline = time.monotonic() + 90
        while len(app.control.ping(timeout=1.0)) < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"workers did not start; see {log_dir}/bench-worker-*.log")
        yield
    finally:
        stop_workers(processes)
        app.conf.task_always_eager = eager


def run_on_workers(as_of: dt.date, stages: list[str], **options):
    """Start a nightly run of `stages` for `as_of` and wait for its end (the NightlyRun)."""
    from brokercrm.models import NightlyRun, RunStatus
    from brokercrm.nightly.orchestration import nightly_run_start

    run = nightly_run_start(as_of=as_of, stages=stages, trigger=NightlyRun.Trigger.TEST, force_lock=True, **options)
    while True:
        time.sleep(0.25)
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            return run
