"""Fixtures of the nightly-pipeline tests: Celery eager in-process (even when REDIS_URL is set
for the suite: only the real-worker test talks to the broker) and a helper that runs a date."""

from collections.abc import Callable, Iterator

import pytest

from brokercrm.celery import app as celery_app


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


@pytest.fixture
def run_nightly(django_capture_on_commit_callbacks: Callable) -> Callable:
    """run_nightly(as_of, stages=None) -> NightlyRun, run to its end in-process.

    The test transaction never commits, so the on-commit hooks that send the tasks are
    captured and executed (with the hooks they add in turn)."""
    from brokercrm.nightly.orchestration import nightly_run_start

    def run(as_of, stages=None, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            started = nightly_run_start(as_of=as_of, stages=stages, trigger="test", **kwargs)
        started.refresh_from_db()
        return started

    return run
