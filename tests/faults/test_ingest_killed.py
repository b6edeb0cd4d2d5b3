"""Issue #10, item 4: the import killed in the middle of a large file.

`manage.py import_ledger trades FILE` runs as a subprocess on a 100,000-row file and is
SIGKILLed once it is visibly inside the load (its batch is recorded `running` and PostgreSQL is
copying the file into its staging table). Nothing of the batch may remain in the ledger; the
next import notices that the batch's owner is gone and marks it failed (abandoned) instead of
leaving it `running` for ever; importing the same file again completes with every row once.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from clients.ingest import ownership
from clients.models import ImportBatch, ImportBatchError, Trade
from tests import factories
from tests.faults import harness

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 100_000
CLIENTS = 50
HEADER = "trade_id,client_no,executed_at,symbol,side,quantity,price,amount,commission,channel,realized_pnl"


def write_trades(path: Path) -> None:
    lines = [HEADER]
    for n in range(ROWS):
        day = 1 + n % 28
        lines.append(
            f"F{n:07d},FC{n % CLIENTS:03d},2025-03-{day:02d} {9 + n % 6:02d}:{n % 60:02d}:00,600000.SH,"
            f"{'buy' if n % 2 else 'sell'},100,10.50,1050.00,5.00,mobile,"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def import_command(path: Path) -> list[str]:
    return [sys.executable, "manage.py", "import_ledger", "trades", str(path), "--no-progress"]


def command_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="brokercrm.settings.test",
        DATABASE_URL=harness.database_url(db["NAME"]),
        PYTHONPATH=str(harness.ROOT),
    )
    return env


def copying() -> bool:
    """A session of this database is copying rows in (the import's staging load)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy p "
            "JOIN pg_database d ON d.oid = p.datid WHERE d.datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def owner_backends(batch_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
            [ownership.LOCK_CLASS, batch_id],
        )
        return cursor.fetchone()[0]


def test_an_import_killed_mid_file_leaves_nothing_and_the_rerun_completes(tmp_path: Path) -> None:
    manager = factories.AccountManagerFactory()
    for n in range(CLIENTS):
        factories.ClientFactory(client_no=f"FC{n:03d}", account_manager=manager)
    factories.InstrumentFactory(symbol="600000.SH")
    path = tmp_path / "trades.csv"
    write_trades(path)

    process = subprocess.Popen(  # noqa: S603 - fixed argv
        import_command(path), cwd=harness.ROOT, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        batch = harness.wait_until(
            lambda: ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING).first(), 60, "the batch row"
        )
        harness.wait_until(copying, 60, "the import to be loading rows")
        assert process.poll() is None, process.stdout.read().decode()[-2000:]
        assert owner_backends(batch.pk) == 1  # the importing session holds its batch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    # PostgreSQL notices the dead client, rolls its transaction back and drops its locks
    harness.wait_until(lambda: owner_backends(batch.pk) == 0, 30, "the killed import's session to end")
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.RUNNING  # what the dead process left
    assert Trade.objects.count() == 0
    assert not ImportBatchError.objects.filter(batch=batch).exists()

    # the same file again, to the end
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - fixed argv
        import_command(path), cwd=harness.ROOT, env=command_env(), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure.startswith("abandoned")
    assert (batch.rows_written, batch.rows_updated) == (0, 0)
    rerun = ImportBatch.objects.exclude(pk=batch.pk).get()
    assert rerun.status == ImportBatch.Status.SUCCEEDED
    assert (rerun.rows_read, rerun.rows_written, rerun.rows_duplicate) == (ROWS, ROWS, 0)
    assert Trade.objects.count() == ROWS
    assert Trade.objects.values("trade_id").distinct().count() == ROWS
    assert owner_backends(rerun.pk) == 0  # released
    print(f"re-import of {ROWS:,} rows: {time.monotonic() - started:.1f} s")
