"""Fixtures of the fault tests: a template book with one published night, the reference results
of an undisturbed next night, a database proxy, and real Celery workers on Redis.

Every scenario runs on its own clone of the template (`scenario`), so each one starts from the
same book and the same published night D, and its results are compared with the reference: the
undisturbed run of night E on another clone of the very same template.

Run them with both services, e.g.:
    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_fault1 \\
    REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/pytest tests/faults
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from brokercrm.celery import app as celery_app
from brokercrm.models import NightlyRun, RunStatus
from brokercrm.nightly.orchestration import nightly_run_start
from brokercrm.nightly.registry import all_stages
from tests.faults import harness

# Night D is published in the template; the scenarios run night E (a Friday: every stage is due).
D = dt.date(2026, 6, 25)
E = dt.date(2026, 6, 26)
CLIENTS = 60
CHUNK = 15  # clients per chunk: 4 chunks per per-client stage
VIEWER = "fault_viewer"


@dataclass
class Template:
    name: str
    reference: dict[str, list[tuple]] = field(default_factory=dict)  # after an undisturbed night E
    visible_d: dict[str, object] = field(default_factory=dict)  # what readers see with D published
    visible_e: dict[str, object] = field(default_factory=dict)  # ... after an undisturbed E


def visible() -> dict[str, object]:
    """What the selectors and the API show readers now: current tiers, churn scores, activity
    segments, the reactivation list, the latest KPI snapshot."""
    from django.test import Client as HttpClient

    from compliance.models import Flag
    from metrics.selectors import dashboard
    from retention.selectors import churn_scores, client_activity_list
    from retention.work.models import Callback, RetentionTask
    from segmentation.selectors import reactivation_list, tier_current_as_of, tier_list

    user = get_user_model().objects.get(username=VIEWER)
    snapshot, metric_rows = dashboard(user=user)
    http = HttpClient()
    http.force_login(user)
    response = http.get("/api/v1/tiers/")
    assert response.status_code == 200, response.content[:300]
    return {
        "tiers_as_of": tier_current_as_of(),
        "tiers": sorted(tier_list(user=user).values_list("client_id", "as_of", "tier", "rank", "value")),
        "api_tiers": response.json().get("count"),
        "churn": sorted(churn_scores(user=user).values_list("client_id", "as_of", "risk")),
        "activity": sorted(client_activity_list(user=user).values_list("client_id", "as_of", "segment")),
        "reactivation": sorted(reactivation_list(user=user).values_list("client_id", flat=True)),
        "flags": sorted(Flag.objects.values_list("client_id", "kind", "subject", "status", "severity")),
        "tasks": sorted(RetentionTask.objects.values_list("client_id", "kind", "status", "reason_code", "due")),
        "callbacks": sorted(Callback.objects.values_list("client_id", "kind", "year", "status", "due")),
        "metrics_as_of": snapshot.as_of if snapshot else None,
        "metrics": sorted((m.definition_id, m.dimension, m.key, str(m.value)) for m in metric_rows),
    }


# Which stages write what `visible` shows: (first, last) writer. After a run failed in stage S,
# a part is the previous night's if S <= first, the new night's if S > last.
VISIBLE_WRITERS = {
    "tiers_as_of": ("tiers", "tiers"),
    "tiers": ("tiers", "tiers"),
    "api_tiers": ("tiers", "tiers"),
    "reactivation": ("reactivation", "reactivation"),
    "activity": ("dormancy", "dormancy"),
    "churn": ("churn", "churn"),
    "flags": ("compliance", "compliance"),
    "tasks": ("playbooks", "entitlements"),
    "callbacks": ("callbacks", "callbacks"),
    "metrics_as_of": ("metrics", "metrics"),
    "metrics": ("metrics", "metrics"),
}


def expected_visible(template: Template, failed_stage: str) -> dict[str, object]:
    """What readers must see after a run of E failed in `failed_stage`: the previous night's
    results of that stage and the later ones, E's of the stages that had finished."""
    order = [stage.name for stage in all_stages()]
    at = order.index(failed_stage)
    expected = {}
    for part, (first, last) in VISIBLE_WRITERS.items():
        if at <= order.index(first):
            expected[part] = template.visible_d[part]
        elif at > order.index(last):
            expected[part] = template.visible_e[part]
    return expected


@contextmanager
def eager() -> Iterator[None]:
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = saved


def run_eager(as_of: dt.date) -> NightlyRun:
    with eager():
        run = nightly_run_start(as_of=as_of, trigger=NightlyRun.Trigger.TEST, chunk_size=CHUNK)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


@pytest.fixture(scope="session")
def template(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[Template]:
    """The book (demo generator, CLIENTS clients, 4 months), the retention defaults and night D,
    published; plus the reference snapshot of an undisturbed night E on a clone of it."""
    with django_db_blocker.unblock():
        created = None
        if not connection.settings_dict["NAME"].startswith("test_"):
            # pytest-django creates the test database only when a collected test is marked
            # django_db; these tests are not (they switch databases), so when they run alone
            # the test database is set up here the same way.
            created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        test_db = connection.settings_dict["NAME"]
        tpl = Template(name=f"{harness.PREFIX}_tpl")
        harness.clone_database(test_db, tpl.name)
        try:
            with harness.django_on(tpl.name):
                call_command(
                    "seed_demo", clients=CLIENTS, months=3, seed=11, as_of=E + dt.timedelta(days=1),
                    reset=True, no_progress=True, stdout=open("/dev/null", "w"),  # noqa: SIM115
                )  # fmt: skip
                call_command("retention_defaults", stdout=open("/dev/null", "w"))  # noqa: SIM115
                get_user_model().objects.create_superuser(VIEWER, password="x")
                run_eager(D)
                tpl.visible_d = visible()
            reference = f"{harness.PREFIX}_ref"
            harness.clone_database(tpl.name, reference)
            try:
                with harness.django_on(reference):
                    run_eager(E)
                    tpl.reference = harness.snapshot()
                    tpl.visible_e = visible()
                    assert tpl.visible_e["tiers_as_of"] == E
            finally:
                harness.drop_database(reference)
            yield tpl
        finally:
            harness.drop_database(tpl.name)
            if created is not None:
                teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def proxy() -> Iterator[harness.Proxy]:
    db = connection.settings_dict
    proxy = harness.Proxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    yield proxy
    proxy.close()


class Workers:
    """The worker of the scenarios (restarted after a test kills it)."""

    def __init__(self, db_url: str, hold_dir: Path) -> None:
        self.db_url = db_url
        self.hold_dir = hold_dir
        self.current: harness.Worker | None = None
        self.started = 0

    def ensure(self) -> harness.Worker:
        if self.current is None or self.current.process.poll() is not None:
            if self.current is not None:
                self.current.stop()
            self.current = harness.Worker(self.db_url, self.hold_dir).start()
            self.started += 1
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
def workers(template: Template, proxy: harness.Proxy) -> Iterator[Workers]:
    celery_app.conf.task_always_eager = False
    hold_dir = Path(tempfile.mkdtemp(prefix="h-fault-hold-"))
    pool = Workers(harness.database_url(f"{harness.PREFIX}_work", port=proxy.port), hold_dir)
    try:
        yield pool
    finally:
        pool.stop()
        shutil.rmtree(hold_dir, ignore_errors=True)
        harness.drop_database(f"{harness.PREFIX}_work")


@dataclass
class Scenario:
    template: Template
    workers: Workers
    proxy: harness.Proxy
    hold_dir: Path

    @property
    def worker(self) -> harness.Worker:
        return self.workers.ensure()

    def hold(self, spec: str, tag: str = "") -> None:
        """Arm a hold point (hold.py); `tag` tells several apart."""
        suffix = f".{tag}" if tag else ""
        (self.hold_dir / f"held{suffix}").unlink(missing_ok=True)
        (self.hold_dir / f"hold{suffix}").write_text(spec)

    def release(self, tag: str | None = None) -> None:
        """Let the held task go on (every hold point without `tag`)."""
        names = [f"hold.{tag}" if tag else "hold"] if tag is not None else ["hold*"]
        for pattern in names:
            for path in self.hold_dir.glob(pattern):
                path.unlink(missing_ok=True)

    def held_pid(self, tag: str = "", seconds: float = 60) -> int:
        marker = self.hold_dir / (f"held.{tag}" if tag else "held")
        harness.wait_until(lambda: marker.exists() and marker.read_text().strip(), seconds, "a worker to hold")
        return int(marker.read_text().split()[0])

    def start(self, as_of: dt.date = E) -> NightlyRun:
        run = nightly_run_start(as_of=as_of, trigger=NightlyRun.Trigger.TEST, chunk_size=CHUNK)
        assert run.status == RunStatus.RUNNING
        return run


@pytest.fixture
def scenario(
    template: Template, workers: Workers, proxy: harness.Proxy, django_db_blocker: pytest.FixtureRequest
) -> Iterator[Scenario]:
    """A fresh clone of the template as the workers' database (and this process's), a running
    worker, no hold armed, an empty queue."""
    work = f"{harness.PREFIX}_work"
    celery_app.conf.task_always_eager = False
    with django_db_blocker.unblock():
        proxy.restore()
        scene = Scenario(template, workers, proxy, workers.hold_dir)
        for path in workers.hold_dir.glob("h*"):
            path.unlink(missing_ok=True)
        celery_app.control.purge()
        harness.clone_database(template.name, work)
        workers.ensure()
        try:
            with harness.django_on(work):
                yield scene
        finally:
            scene.release()
            proxy.restore()
            celery_app.control.purge()
