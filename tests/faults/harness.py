"""What the fault tests are built from: throwaway databases cloned from a template, a TCP proxy
that can cut the workers off PostgreSQL, real Celery worker processes, and table snapshots.

Why a proxy and not stopping PostgreSQL: the cluster is shared (other test sessions, other
engineers' databases, CI services); stopping it would disturb all of them, and starting a
private cluster needs initdb/pg_ctl and root or the postgres account. Cutting the TCP path
between the workers and the database is what a worker sees when PostgreSQL restarts or fails
over (established connections reset, new ones refused), it touches nobody else, and it is
pure Python, so it runs the same in CI.
"""

from __future__ import annotations

import datetime as dt
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import connection, models

from brokercrm.celery import app as celery_app
from brokercrm.models import NightlyRun, RunStatus

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"h_fault_{os.getpid()}"


# --- databases ------------------------------------------------------------------------------


def _pg() -> dict:
    return connection.settings_dict


def admin() -> psycopg.Connection:
    db = _pg()
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clone_database(source: str, target: str) -> None:
    """CREATE DATABASE target TEMPLATE source (both ours: their sessions are ended first)."""
    assert source.startswith(("h_fault", "test_")), source
    assert target.startswith("h_fault"), target
    connection.close()
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [source])
        for _ in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)
        raise RuntimeError(f"{source} stayed in use")


@contextmanager
def django_on(name: str) -> Iterator[None]:
    """Point this process's default connection at database `name` for the block."""
    saved = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved


def database_url(name: str, *, port: int | None = None) -> str:
    db = _pg()
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port or db['PORT'] or 5432}/{name}"


# --- snapshots ------------------------------------------------------------------------------

# The apps whose tables the nightly stages write. The run records (brokercrm) differ by design
# (attempts, times), the client book (clients) is input.
RESULT_APPS = ("segmentation", "retention", "compliance", "metrics", "feedback")


def _value(field: models.Field, value: object) -> object:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict | list):
        return repr(value)
    return value


def result_tables() -> list[type[models.Model]]:
    found = []
    for label in RESULT_APPS:
        found.extend(m for m in apps.get_app_config(label).get_models() if not m._meta.proxy and m._meta.managed)
    return found


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every result table, as sorted tuples of its stored values.

    Left out: surrogate keys (`id`), timestamps (datetime columns: when a row was written, not
    what it says), timings (`*_seconds`, e.g. how long a model fit took) and `generation`
    numbers (drawn from a sequence, which PostgreSQL never rolls back: an attempt that failed
    after drawing one shifts the numbers of the next; which result set is published is still
    compared, through ResultSet's kind, date and is_published). Foreign keys are kept as stored:
    the book and reference data they point at have the same ids in every clone of the template;
    rows a run creates and others point at (a retention task's id, a flag's id) are written in
    the same order by every run, so the same result gives the same ids on a fresh clone."""
    taken: dict[str, list[tuple]] = {}
    ignored = _ignored()
    for model in result_tables():
        fields = [
            f
            for f in model._meta.concrete_fields
            if not f.primary_key
            and not isinstance(f, models.DateTimeField)
            and f.name not in ignored.get(model, ())
            and f.name != "generation"
            and not f.name.endswith("_seconds")
        ]
        names = [f.attname for f in fields]
        if not names:
            continue
        rows = [
            tuple(_value(f, v) for f, v in zip(fields, row, strict=True))
            for row in model.objects.values_list(*names)  # every row
        ]
        if model._meta.label in DISTINCT:
            rows = list(set(rows))
        taken[model._meta.label] = sorted(rows, key=repr)
    return taken


DISTINCT = {"compliance.AuditEntry"}


def _nightly_entry(row: tuple) -> bool:
    """An audit entry (as snapshot() stores it) written by a nightly stage as itself."""
    return "nightly" in row[:3] and any(isinstance(v, str) and v.startswith("nightly.") for v in row[:4])


def _ignored() -> dict[type[models.Model], tuple[str, ...]]:
    from compliance.models import AuditEntry, AuditHead

    # The audit trail is a log of acts, not a result: each attempt of the compliance stage is an
    # act and is logged (append-only, enforced by a trigger), so a failed attempt followed by a
    # re-run logs the same nightly entry twice. Compared as a set of distinct entries, without
    # their position (seq) and hashes (which chain in the timestamps); the head only points at
    # the last entry. The chain itself is verified separately (compliance.audit.verify_chain).
    return {AuditEntry: ("seq", "hash", "prev_hash"), AuditHead: tuple(f.name for f in AuditHead._meta.fields)}


def diff(expected: dict[str, list[tuple]], actual: dict[str, list[tuple]]) -> list[str]:
    """Human-readable differences between two snapshots (empty: identical)."""
    out = []
    for label in sorted(set(expected) | set(actual)):
        want, got = expected.get(label, []), actual.get(label, [])
        if label in DISTINCT:
            # A log of acts: every act of the undisturbed run is there, and the only extra ones
            # are the nightly stages' own entries (one per attempt; see _ignored).
            got = [row for row in got if row in want or not _nightly_entry(row)]
        if want != got:
            missing = [r for r in want if r not in got][:3]
            extra = [r for r in got if r not in want][:3]
            out.append(f"{label}: expected {len(want)} rows, got {len(got)}; missing {missing}; extra {extra}")
    if out:
        Path(tempfile.gettempdir(), f"{PREFIX}-diff.txt").write_text("\n".join(out))
    return out


# --- runs -----------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def wait_finished(as_of: dt.date, seconds: float = 60) -> NightlyRun:
    def finished() -> NightlyRun | None:
        run = NightlyRun.objects.filter(as_of=as_of).first()
        return run if run is not None and run.status != RunStatus.RUNNING else None

    try:
        return wait_until(finished, seconds, f"the run for {as_of} to finish")
    except AssertionError:
        run = NightlyRun.objects.get(as_of=as_of)
        stages = list(run.stage_runs.filter(attempt=run.attempt).values_list("name", "status"))
        raise AssertionError(f"run {as_of} still {run.status} after {seconds} s: {stages}") from None


# --- a TCP proxy that can cut the database off ----------------------------------------------


class Proxy:
    """127.0.0.1:<port> -> PostgreSQL. `cut()` resets every open connection and refuses new
    ones until `restore()` (what clients see while the server restarts)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.lock = threading.Lock()
        self.down = False
        self.closed = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True, name="pg-proxy").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            pair = (client, upstream)
            with self.lock:
                self.pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                with self.lock:
                    if pair not in self.pairs:
                        return
        except OSError:
            return
        finally:
            sel.close()
            with self.lock:
                self.pairs.discard(pair)
            for sock in pair:
                _reset(sock)

    def cut(self) -> None:
        self.down = True
        self.cuts += 1
        with self.lock:
            pairs, self.pairs = set(self.pairs), set()
        for pair in pairs:
            for sock in pair:
                _reset(sock)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


# --- real worker processes ------------------------------------------------------------------


class Worker:
    """A prefork Celery worker (2 processes) on REDIS_URL, in its own process group, whose
    database is `database_url` and whose hold points read `hold_dir`."""

    def __init__(self, db_url: str, hold_dir: Path) -> None:
        self.db_url = db_url
        self.hold_dir = hold_dir
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="h-fault-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self.name = f"fault{os.getpid()}x{time.monotonic_ns()}@%h"

    def start(self) -> Worker:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="tests.faults.worker_settings",
            DATABASE_URL=self.db_url,
            DB_CONN_MAX_AGE="0",
            REDIS_URL=settings.REDIS_URL,
            FAULT_HOLD_DIR=str(self.hold_dir),
            PYTHONPATH=str(ROOT),
        )
        argv = [sys.executable, "-m", "celery", "-A", "brokercrm", "worker", "--pool=prefork", "-c", "2"]
        argv += ["-l", "INFO", "-n", self.name, "--without-gossip", "--without-mingle"]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            argv,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[self.name.replace("%h", socket.gethostname())], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the Celery worker did not start; log: {self.tail()}")
        return self

    def busy(self) -> bool:
        """True while the worker has a task queued, reserved or running."""
        node = self.name.replace("%h", socket.gethostname())
        inspect = celery_app.control.inspect(destination=[node], timeout=1.0)
        active, reserved = inspect.active() or {}, inspect.reserved() or {}
        if node not in active:
            return True  # no answer: assume busy
        with celery_app.connection_for_write() as conn:
            queued = conn.default_channel.client.llen("celery")
        return bool(active.get(node) or reserved.get(node) or queued)

    def tail(self, chars: int = 4000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def kill_all(self) -> None:
        """SIGKILL the whole worker: main process and pool processes (a machine lost)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        # Nothing to finish: the queue is purged after every scenario. SIGKILL the group (the
        # main process and any pool process it left behind).
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """False once the process is gone or a zombie (an orphaned pool process nobody reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
