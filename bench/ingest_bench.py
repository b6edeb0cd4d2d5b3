"""Benchmark the trades import against a raw COPY of the same file, and its peak memory.

    .venv/bin/python bench/ingest_bench.py                      # 1,000,000 rows + memory at 5,000,000
    .venv/bin/python bench/ingest_bench.py --rows 200000 --memory-rows 0   # a quick run

Creates its own PostgreSQL database (default h_ingest_bench, on the server of
$BENCH_SERVER_URL, default postgres://brokercrm:brokercrm@127.0.0.1:5432/), migrates it,
loads reference data (100,000 clients, 500 instruments), writes a trades CSV and measures,
in the same run:

1. raw COPY: the file, as is, into an unconstrained staging table (typed columns, no index,
   no constraint), and the same into an all-text table;
2. the import: `clients.ingest.services.ingest_file` (what `manage.py import_ledger trades`
   runs), into the empty ledger, all or nothing. The compliance check that an import sets off
   after its commit (`compliance.flags_after_import`, a Celery task: in production it runs in a
   worker, after the import has returned) is not part of it: without REDIS_URL Celery would run
   it inline, inside the timed call. It is disconnected for the timed import and timed apart;
3. the ledger's own cost: an INSERT ... SELECT of the same rows (already resolved to ids)
   into the empty ledger with its indexes and foreign keys, in a transaction rolled back --
   the floor any importer pays, whatever it does before (measured before the import); and the
   same without the foreign keys' per-row checks (constraints dropped inside the rolled-back
   transaction), to show what the indexes and what the checks cost;
4. a re-import of the same file (all duplicates);
5. peak memory: `manage.py import_ledger trades` on a --memory-rows file, in a child
   process, its peak RSS read from getrusage(RUSAGE_CHILDREN).

Prints every figure, the ratios, and whether the targets hold (import <= 2x raw COPY;
peak RSS < 500 MB). Absolute times drift with the machine; compare within a run. On a shared
machine wall time also drifts within a run, so each step's CPU seconds are printed too: this
process's (all its threads) plus its database backend's (read from /proc when the server is
on this host), and the same ratios computed on them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANNELS = ("self_service", "phone", "online", "mobile", "counter", "other")
HEADER = "trade_id,client_no,executed_at,symbol,side,quantity,price,amount,commission,channel,realized_pnl\n"


def write_trades(path: Path, rows: int, *, clients: int, instruments: int, prefix: str, seed: int) -> None:
    """A trades file in time order, amounts consistent, a tenth with realised P&L."""
    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 1, 9, 30)  # noqa: DTZ001 - naive on purpose: the file holds exchange time
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        block = 100_000
        for first in range(0, rows, block):
            lines = []
            for i in range(first, min(rows, first + block)):
                quantity = rng.randint(1, 100) * 100
                cents = rng.randint(100, 20_000)
                amount = quantity * cents
                commission = max(500, amount * 3 // 10_000)
                at = base + dt.timedelta(seconds=(i * 86_400 * 400) // max(rows, 1))
                pnl = f"{rng.randint(-50_000, 50_000) / 100:.2f}" if i % 10 == 0 else ""
                lines.append(
                    f"{prefix}{i:012d},C{rng.randrange(clients):08d},{at:%Y-%m-%d %H:%M:%S},"
                    f"{600000 + rng.randrange(instruments)}.SH,{'buy' if i % 2 else 'sell'},{quantity},"
                    f"{cents // 100}.{cents % 100:02d},{amount // 100}.{amount % 100:02d},"
                    f"{commission // 100}.{commission % 100:02d},{CHANNELS[i % 6]},{pnl}\n"
                )
            handle.write("".join(lines))


CPU: dict[str, tuple[float, float | None]] = {}


def _backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's backend process, if it runs on this host."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def cpu_of(label: str) -> Iterator[None]:
    """Record the CPU seconds of a step in CPU: (this process, its database backend or None)."""
    server = _backend_cpu()
    client = time.process_time()
    yield
    client = time.process_time() - client
    after = _backend_cpu()
    CPU[label] = (client, None if server is None or after is None else after - server)


def server_connection(server: str, database: str = "postgres"):
    import psycopg

    return psycopg.connect(server.rstrip("/") + "/" + database, autocommit=True)


def create_database(server: str, name: str) -> None:
    with server_connection(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> None:
    with server_connection(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_reference(clients: int, instruments: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO clients_branch (code, name, city) VALUES ('SH01', 'Shanghai', 'Shanghai')")
        cursor.execute(
            "INSERT INTO clients_client (client_no, name, kind, phone, email, address, branch_id, status, opened_on,"
            " created_at, updated_at) SELECT 'C' || lpad(g::text, 8, '0'), 'Client ' || g, 'individual', '', '', '',"
            " (SELECT id FROM clients_branch), 'open', DATE '2020-01-02', now(), now()"
            " FROM generate_series(0, %s - 1) g",
            [clients],
        )
        cursor.execute(
            "INSERT INTO clients_instrument (symbol, name, asset_class, market, board, industry, cap_class,"
            " is_blue_chip, is_st, risk_level) SELECT (600000 + g)::text || '.SH', 'Stock ' || g, 'stock',"
            " 'secondary', 'Main board', '', '', false, false, 3 FROM generate_series(0, %s - 1) g",
            [instruments],
        )
        cursor.execute("ANALYZE clients_client")
        cursor.execute("ANALYZE clients_instrument")


def raw_copy(path: Path, *, typed: bool) -> float:
    """COPY the file as is into a fresh unconstrained table; return the seconds."""
    from django.db import connection

    numeric = "numeric" if typed else "text"
    stamp = "timestamptz" if typed else "text"
    columns = (
        f"trade_id text, client_no text, executed_at {stamp}, symbol text, side text, quantity {numeric},"
        f" price {numeric}, amount {numeric}, commission {numeric}, channel text, realized_pnl {numeric}"
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw")
        cursor.execute(f"CREATE TABLE bench_raw ({columns})")
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        started = time.perf_counter()
        with cursor.copy("COPY bench_raw FROM STDIN (FORMAT csv, HEADER true)") as copy, path.open("rb") as handle:
            while block := handle.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
        cursor.execute("SET TimeZone = 'UTC'")
    return seconds


def ledger_floor(*, foreign_keys: bool = True) -> float:
    """INSERT the raw-copied rows (ids resolved) into the ledger, constraints checked; roll back.

    Without `foreign_keys`, the ledger's foreign key constraints and the triggers that check its
    client and instrument references (clients.0009) are dropped first, inside the same
    rolled-back transaction: the INSERT then pays for the indexes and checks only."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if not foreign_keys:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'clients_trade'::regclass AND contype = 'f'"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'ALTER TABLE clients_trade DROP CONSTRAINT "{name}"')
            # The client and instrument references are checked by statement-level triggers (clients.0009).
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'clients_trade'::regclass AND NOT tgisinternal"
                " AND tgfoid = to_regproc('clients_fk_child_check')"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP TRIGGER "{name}" ON clients_trade')
        started = time.perf_counter()
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity, price,"
            " amount, commission, channel, realized_pnl, created_at)"
            " SELECT 'F' || r.trade_id, c.id, r.executed_at, i.id, r.side, r.quantity, r.price, r.amount,"
            " r.commission, r.channel, r.realized_pnl, now()"
            " FROM bench_raw r JOIN clients_client c ON c.client_no = r.client_no"
            " JOIN clients_instrument i ON i.symbol = r.symbol"
        )
        transaction.set_rollback(True)
    return time.perf_counter() - started


def run_import(path: Path) -> tuple[float, object]:
    """Time `ingest_file`; the compliance check it would set off after commit is not timed here."""
    from clients.ingest.services import ImportOptions, Requester, import_committed, ingest_file
    from compliance.tasks import on_import_committed

    uid = "compliance.flags_after_import"  # as connected in compliance/apps.py
    import_committed.disconnect(dispatch_uid=uid)
    try:
        started = time.perf_counter()
        with path.open("rb") as stream:
            batch = ingest_file(
                kind="trades", stream=stream, name=path.name, requester=Requester(name="bench"), options=ImportOptions()
            )
        seconds = time.perf_counter() - started
    finally:
        import_committed.connect(on_import_committed, dispatch_uid=uid)
    return seconds, batch


def follow_up(batch: object) -> float:
    """The compliance check an import sets off after commit (a Celery task), timed apart."""
    from compliance.tasks import flags_after_import

    started = time.perf_counter()
    flags_after_import(batch.pk)
    return time.perf_counter() - started


def memory_run(path: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Import in a child process (the real command); return (seconds, peak RSS MB, last output line)."""
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(ROOT / "manage.py"), "import_ledger", "trades", str(path), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: kilobytes
    lines = [line for line in result.stdout.splitlines() if "rows" in line or "status" in line]
    if result.returncode:
        lines.append(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed")
    return seconds, peak_mb, " / ".join(line.strip() for line in lines)


def print_cpu() -> None:
    """The CPU seconds of each step, and the import's and the floor's ratios to raw COPY on them."""
    print("\nCPU seconds (this process + its database backend)")
    totals = {}
    for label, (client, server) in CPU.items():
        total = client + (server or 0)
        totals[label] = total
        shown = f"{client:6.2f} + {server:6.2f}" if server is not None else f"{client:6.2f} + (server not on this host)"
        print(f"  {label:30s} {shown} = {total:7.2f}")
    copy = totals.get("raw COPY, typed staging table")
    if copy and all(server is not None for _, server in CPU.values()):
        for label in ("import (ingest_file, trades)", "ledger INSERT alone (floor)", "the same, no FK checks"):
            print(f"  ratio {label} / raw COPY (typed), CPU: {totals[label] / copy:6.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=5_000_000, help="0 skips the memory run")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--database", default="h_ingest_bench")
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parser.parse_args()

    server = os.environ.get("BENCH_SERVER_URL", "postgres://brokercrm:brokercrm@127.0.0.1:5432")
    env = {
        **os.environ,
        "DATABASE_URL": f"{server.rstrip('/')}/{args.database}",
        "DJANGO_SETTINGS_MODULE": "brokercrm.settings.local",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    workdir = Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    create_database(server, args.database)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        t = time.perf_counter()
        load_reference(args.clients, args.instruments)
        print(f"database {args.database}: {args.clients:,} clients, {args.instruments} instruments "
              f"loaded in {time.perf_counter() - t:.1f} s")  # fmt: skip

        trades = workdir / "trades.csv"
        t = time.perf_counter()
        write_trades(trades, args.rows, clients=args.clients, instruments=args.instruments, prefix="T", seed=1)
        size_mb = trades.stat().st_size / 1e6
        print(f"trades file: {args.rows:,} rows, {size_mb:.0f} MB, written in {time.perf_counter() - t:.1f} s")

        with cpu_of("raw COPY, all-text table"):
            copy_text = raw_copy(trades, typed=False)
        with cpu_of("raw COPY, typed staging table"):
            copy_typed = raw_copy(trades, typed=True)
        # The floor goes first, into the same empty ledger the import will meet; its rows are
        # rolled back and vacuumed away so the import does not pay for them.
        with cpu_of("ledger INSERT alone (floor)"):
            floor = ledger_floor()
        with cpu_of("the same, no FK checks"):
            floor_no_fk = ledger_floor(foreign_keys=False)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE clients_trade")
        with cpu_of("import (ingest_file, trades)"):
            import_seconds, batch = run_import(trades)
        follow_up_seconds = follow_up(batch)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM clients_trade")
            held = cursor.fetchone()[0]
        copy_typed_after = raw_copy(trades, typed=True)
        reimport_seconds, again = run_import(trades)

        copy_seconds = (copy_typed + copy_typed_after) / 2
        ratio = import_seconds / copy_seconds
        print()
        print(f"raw COPY, typed staging table   {copy_typed:8.2f} s before, {copy_typed_after:.2f} s after the import")
        print(f"raw COPY, all-text table        {copy_text:8.2f} s")
        print(
            f"import (ingest_file, trades)    {import_seconds:8.2f} s  {batch.status}, "
            f"{batch.rows_written:,} written, {held:,} in the ledger, {args.rows / import_seconds:,.0f} rows/s"
        )
        print(f"  ledger INSERT alone (floor)   {floor:8.2f} s  ({floor / copy_seconds:.1f}x raw COPY)")
        print(f"  the same, no FK checks        {floor_no_fk:8.2f} s  ({floor_no_fk / copy_seconds:.1f}x raw COPY)")
        print(f"compliance follow-up (Celery)   {follow_up_seconds:8.2f} s  after commit, not in the import's time")
        print(
            f"re-import (all duplicates)      {reimport_seconds:8.2f} s  {again.status}, "
            f"{again.rows_duplicate:,} duplicates, {again.rows_written} written"
        )
        print(f"ratio import / raw COPY (typed) {ratio:8.2f}x   target <= 2x: {'met' if ratio <= 2 else 'NOT met'}")
        print(f"ratio import / raw COPY (text)  {import_seconds / copy_text:8.2f}x")
        print_cpu()

        exit_code = 0 if ratio <= 2 else 1
        if args.memory_rows:
            big = workdir / "trades_big.csv"
            t = time.perf_counter()
            write_trades(big, args.memory_rows, clients=args.clients, instruments=args.instruments, prefix="M", seed=2)
            print(f"\nmemory file: {args.memory_rows:,} rows, {big.stat().st_size / 1e6:.0f} MB, "
                  f"written in {time.perf_counter() - t:.1f} s")  # fmt: skip
            connection.close()
            seconds, peak_mb, summary = memory_run(big, env)
            print(f"import_ledger in a child process {seconds:8.1f} s, {args.memory_rows / seconds:,.0f} rows/s")
            print(f"  {summary}")
            print(f"peak RSS                        {peak_mb:8.0f} MB   target < 500 MB: "
                  f"{'met' if peak_mb < 500 else 'NOT met'}")  # fmt: skip
            if peak_mb >= 500:
                exit_code = 1
        return exit_code
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server, args.database)
            for path in workdir.glob("*"):
                path.unlink()
            workdir.rmdir()
        else:
            print(f"kept database {args.database} and files in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
