"""A trade's client and instrument exist, whatever writes the ledger (issue #3, clients.0009).

On PostgreSQL the references are checked by statement-level triggers, set-based, instead of
foreign key constraints checked row by row; SQLite keeps its foreign keys (checked at commit).
Each test writes by raw SQL, as a bulk load or a console session could, inside a committed
transaction, so both databases must refuse it: PostgreSQL at the statement, SQLite at commit.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from clients.ingest import errors
from clients.models import Client, ImportBatch, Instrument, Trade
from tests import factories
from tests.ingest.conftest import TRADES_HEADER, error_codes, trade_line

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = (
    "trade_id, client_id, executed_at, instrument_id, side, quantity, price, amount, commission, channel, created_at"
)
MISSING = 987_654_321


def _insert(*rows: tuple[str, int, int]) -> None:
    """INSERT (trade_id, client_id, instrument_id) rows in one statement, by plain SQL."""
    values = ", ".join(["(%s, %s, CURRENT_TIMESTAMP, %s, 'buy', 1, 1, 1, 0, 'online', CURRENT_TIMESTAMP)"] * len(rows))
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO clients_trade ({COLUMNS}) VALUES {values}", params)  # noqa: S608


def _execute(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _delete_client(client_id: int) -> None:
    """A raw DELETE of a client: its assignment history first (Django cascades it, SQL does not)."""
    _execute("DELETE FROM clients_clientassignment WHERE client_id = %s", [client_id])
    _execute("DELETE FROM clients_client WHERE id = %s", [client_id])


def _refused(statement, *args) -> IntegrityError:
    """Run `statement` in a transaction of its own; return the foreign key error that refused it."""
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        statement(*args)
    error = raised.value
    if connection.vendor == "postgresql":
        assert error.__cause__.sqlstate == "23503", error  # foreign_key_violation
    else:
        assert "FOREIGN KEY constraint failed" in str(error)
    return error


@pytest.fixture
def held() -> Trade:
    return factories.TradeFactory(trade_id="HELD")


def test_a_trade_of_an_unknown_client_is_refused_and_nothing_written(held) -> None:
    error = _refused(_insert, ("NEW", MISSING, held.instrument_id))
    if connection.vendor == "postgresql":
        assert 'foreign key constraint "clients_trade_client_id_fk"' in str(error)
        assert f"Key (client_id)=({MISSING}) is not present in table" in error.__cause__.diag.message_detail
        assert error.__cause__.diag.table_name == "clients_trade"
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["HELD"]


def test_a_trade_of_an_unknown_instrument_is_refused(held) -> None:
    error = _refused(_insert, ("NEW", held.client_id, MISSING))
    if connection.vendor == "postgresql":
        assert error.__cause__.diag.constraint_name == "clients_trade_instrument_id_fk"
    assert Trade.objects.count() == 1


def test_one_bad_row_refuses_the_whole_statement(held) -> None:
    other = factories.ClientFactory()
    rows = [(f"N{i}", other.pk if i % 2 else held.client_id, held.instrument_id) for i in range(20)]
    rows.insert(13, ("BAD", MISSING, held.instrument_id))
    error = _refused(_insert, *rows)
    if connection.vendor == "postgresql":
        assert f"Key (client_id)=({MISSING})" in error.__cause__.diag.message_detail
    assert Trade.objects.count() == 1
    # The same rows without the bad one go in, in one statement.
    with transaction.atomic():
        _insert(*[row for row in rows if row[0] != "BAD"])
    assert Trade.objects.count() == 21


def test_updating_a_trade_to_a_missing_client_or_instrument_is_refused(held) -> None:
    _refused(_execute, "UPDATE clients_trade SET client_id = %s WHERE id = %s", [MISSING, held.pk])
    _refused(_execute, "UPDATE clients_trade SET instrument_id = %s WHERE id = %s", [MISSING, held.pk])
    held.refresh_from_db()
    other = factories.ClientFactory()
    with transaction.atomic():  # other columns, and another existing client, are fine
        _execute("UPDATE clients_trade SET realized_pnl = 1 WHERE id = %s", [held.pk])
        _execute("UPDATE clients_trade SET client_id = %s WHERE id = %s", [other.pk, held.pk])
    assert Trade.objects.get().client_id == other.pk


def test_a_client_with_trades_cannot_be_deleted_by_sql_or_the_orm(held) -> None:
    error = _refused(_delete_client, held.client_id)
    if connection.vendor == "postgresql":
        assert f"Key (id)=({held.client_id}) is still referenced from table" in error.__cause__.diag.message_detail
    with pytest.raises(ProtectedError):
        Client.objects.get(pk=held.client_id).delete()
    assert Client.objects.filter(pk=held.client_id).exists()


def test_an_instrument_with_trades_cannot_be_deleted(held) -> None:
    _refused(_execute, "DELETE FROM clients_instrument WHERE id = %s", [held.instrument_id])
    assert Instrument.objects.filter(pk=held.instrument_id).exists()


def test_a_client_or_instrument_without_trades_can_be_deleted(held) -> None:
    client = factories.ClientFactory()
    instrument = factories.InstrumentFactory()
    with transaction.atomic():
        _delete_client(client.pk)
        _execute("DELETE FROM clients_instrument WHERE id = %s", [instrument.pk])
    assert not Client.objects.filter(pk=client.pk).exists()
    assert not Instrument.objects.filter(pk=instrument.pk).exists()
    # A statement deleting several parents is refused if any of them is referenced.
    spare = factories.ClientFactory()
    _execute("DELETE FROM clients_clientassignment WHERE client_id IN (%s, %s)", [spare.pk, held.client_id])
    _refused(_execute, "DELETE FROM clients_client WHERE id IN (%s, %s)", [spare.pk, held.client_id])
    assert Client.objects.filter(pk__in=[spare.pk, held.client_id]).count() == 2


def test_the_import_still_reports_an_unknown_client_per_row(book, write_file, run_import) -> None:
    lines = [TRADES_HEADER, trade_line("T1"), trade_line("T2", client="NOBODY"), trade_line("T3", symbol="999999.SH")]
    batch = run_import("trades", write_file("t.csv", lines))
    assert batch.status == ImportBatch.Status.REJECTED
    assert error_codes(batch) == {(3, "client_no", errors.UNKNOWN_CLIENT), (4, "symbol", errors.UNKNOWN_INSTRUMENT)}
    assert Trade.objects.count() == 0
    batch = run_import("trades", write_file("t.csv", lines), skip_invalid=True)
    assert (batch.status, batch.rows_written) == (ImportBatch.Status.PARTIALLY_SUCCEEDED, 1)
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["T1"]


# --- the mechanism on each database ------------------------------------------------------------


@pytest.mark.sqlite
def test_sqlite_keeps_its_foreign_keys() -> None:
    """0009 changes only Django's state on SQLite. A later rebuild of clients_trade there (any
    AlterField on Trade) would create it from that state, without these: this test says so."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_key_list(clients_trade)")
        found = {(row[3], row[2]) for row in cursor.fetchall()}  # (from column, to table)
    assert {("client_id", "clients_client"), ("instrument_id", "clients_instrument")} <= found


@pytest.mark.postgres
def test_postgres_checks_the_references_by_triggers_not_constraints() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'clients_trade'::regclass"
            " AND contype = 'f'"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "FOREIGN KEY (reverses_id) REFERENCES clients_trade(id) DEFERRABLE INITIALLY DEFERRED"
        ]
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE %s",
            ["clients\\_trade\\_%\\_fk\\_%"],
        )
        found = set(cursor.fetchall())
    expected = set()
    for name, parent in (("clients_trade_client_id_fk", "clients_client"),
                         ("clients_trade_instrument_id_fk", "clients_instrument")):  # fmt: skip
        expected |= {("clients_trade", f"{name}_insert"), ("clients_trade", f"{name}_update")}
        expected |= {(parent, f"{name}_parent_{event}") for event in ("delete", "update", "truncate")}
    assert found == expected


@pytest.mark.postgres
def test_postgres_checks_once_per_statement(held) -> None:
    """One trigger call per statement and reference, whatever the number of rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SET track_functions = 'pl'")
        with transaction.atomic():
            cursor.execute(
                f"INSERT INTO clients_trade ({COLUMNS}) SELECT 'G' || g, %s, now(), %s, 'buy', 1, 1, 1, 0, 'online',"  # noqa: S608
                " now() FROM generate_series(1, 5000) g",
                [held.client_id, held.instrument_id],
            )
            cursor.execute("SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'clients_fk_child_check'")
            assert cursor.fetchone()[0] == 2
        cursor.execute("RESET track_functions")
    assert Trade.objects.count() == 5001


@pytest.mark.postgres
def test_postgres_truncate_of_a_referenced_table_is_refused_unless_the_ledger_goes_too(held) -> None:
    _refused(_execute, "TRUNCATE clients_instrument CASCADE")
    assert Trade.objects.count() == 1
    with transaction.atomic():
        _execute("TRUNCATE clients_trade, clients_instrument CASCADE")
    assert Trade.objects.count() == 0


@pytest.mark.postgres
def test_postgres_changing_a_referenced_id_is_refused(held) -> None:
    _refused(_execute, "UPDATE clients_instrument SET id = %s WHERE id = %s", [MISSING, held.instrument_id])
    free = factories.InstrumentFactory()
    with transaction.atomic():
        _execute("UPDATE clients_instrument SET id = %s WHERE id = %s", [MISSING, free.pk])
    assert Instrument.objects.filter(pk=MISSING).exists()


# --- concurrency: the same row locks as a foreign key ----------------------------------------------


def _connect() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


def _in_thread(work) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except Exception as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _waits_for_a_lock(conn: psycopg.Connection, pid: int) -> bool:
    for _ in range(100):
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if row and row[0] == "Lock":
            return True
        time.sleep(0.05)
    return False


def _raw_insert_sql() -> str:
    values = "(%s, %s, CURRENT_TIMESTAMP, %s, 'buy', 1, 1, 1, 0, 'online', CURRENT_TIMESTAMP)"
    return f"INSERT INTO clients_trade ({COLUMNS}) VALUES {values}"  # noqa: S608


@pytest.mark.postgres
def test_postgres_a_delete_waits_for_an_uncommitted_trade_of_the_client_then_fails(held) -> None:
    client = factories.ClientFactory()
    with _connect() as inserter, _connect() as deleter, _connect() as watcher:
        inserter.execute(_raw_insert_sql(), ["RACE", client.pk, held.instrument_id])  # holds KEY SHARE

        def delete() -> None:
            with deleter.transaction():
                deleter.execute("DELETE FROM clients_clientassignment WHERE client_id = %s", [client.pk])
                deleter.execute("DELETE FROM clients_client WHERE id = %s", [client.pk])

        thread, outcome = _in_thread(delete)
        assert _waits_for_a_lock(watcher, deleter.info.backend_pid)
        inserter.commit()
        thread.join(10)
    assert isinstance(outcome[0], psycopg.errors.ForeignKeyViolation), outcome
    assert Trade.objects.filter(trade_id="RACE", client=client).exists()


@pytest.mark.postgres
def test_postgres_a_trade_waits_for_an_uncommitted_delete_of_its_client_then_fails(held) -> None:
    client = factories.ClientFactory()
    with _connect() as inserter, _connect() as deleter, _connect() as watcher:
        deleter.execute("DELETE FROM clients_clientassignment WHERE client_id = %s", [client.pk])
        deleter.execute("DELETE FROM clients_client WHERE id = %s", [client.pk])

        def insert() -> None:
            with inserter.transaction():
                inserter.execute(_raw_insert_sql(), ["RACE", client.pk, held.instrument_id])

        thread, outcome = _in_thread(insert)
        assert _waits_for_a_lock(watcher, inserter.info.backend_pid)
        deleter.commit()
        thread.join(10)
    assert isinstance(outcome[0], psycopg.errors.ForeignKeyViolation), outcome
    assert not Trade.objects.filter(trade_id="RACE").exists()
    assert not Client.objects.filter(pk=client.pk).exists()
