"""The PostgreSQL path: COPY into the staging table, the advisory lock, per-statement constraint checks."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from clients.ingest import staging
from clients.ingest.kinds import KINDS
from clients.ingest.staging import StageTable
from clients.models import Client, ImportBatch, Trade
from tests.ingest.conftest import TRADES_HEADER, error_codes, reversal_line, trade_line

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_rows_go_in_by_copy(book, write_file, run_import, monkeypatch) -> None:
    copied: list[int] = []
    original = staging._payload

    def spy(columns):
        copied.append(len(columns[0]))
        return original(columns)

    monkeypatch.setattr(staging, "_payload", spy)
    lines = [trade_line(f"T{i}", reverses="") for i in range(5)] + [reversal_line("T0R", "T0")]
    path = write_file("t.csv", [TRADES_HEADER + ",reverses_trade_id", *lines])
    batch = run_import("trades", path, chunk_size=2)
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert batch.rows_written == 6
    # Two chunks straight into the ledger; the third's reversal waits in the pending table.
    assert copied == [2, 2, 1, 1]
    assert Trade.objects.get(trade_id="T0R").reverses.trade_id == "T0"


def test_a_held_key_sends_the_chunk_the_long_way_without_doubling_rows(book, write_file, run_import) -> None:
    run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T2")]))
    path = write_file("b.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2"), trade_line("T3")])
    batch = run_import("trades", path, chunk_size=3)
    assert (batch.rows_written, batch.rows_duplicate) == (2, 1)
    assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["T1", "T2", "T3"]


def test_copy_escapes_text(book, write_file, run_import) -> None:
    header = "client_no,name,branch_code,opened_on,address"
    path = write_file("c.csv", [header, 'N1,"back\\slash\\N, tab\there",SH01,2024-01-02,"line\nbreak\\."'])
    assert run_import("clients", path).status == ImportBatch.Status.SUCCEEDED
    client = Client.objects.get(client_no="N1")
    assert (client.name, client.address) == ("back\\slash\\N, tab\there", "line\nbreak\\.")


def _foreign_keys_are_deferred() -> bool:
    """Insert a reversal of no trade: refused at once only if checks are immediate. (The client
    and instrument are checked at each statement whatever the mode, clients.0009; the reversal's
    foreign key is a deferrable constraint.)"""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity, price,"
                " amount, commission, channel, created_at, reverses_id) SELECT 'PROBE', c.id, now(), i.id, 'buy',"
                " 1, 1, -1, 0, 'online', now(), 987654321 FROM clients_client c, clients_instrument i LIMIT 1"
            )
            transaction.set_rollback(True)
    except IntegrityError:
        return False
    return True


@pytest.mark.parametrize("side", ["hold", "buy"])
def test_staging_tables_and_constraint_mode_do_not_outlive_the_batch(book, write_file, run_import, side) -> None:
    # The probe tells the two modes apart.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert not _foreign_keys_are_deferred()
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    assert _foreign_keys_are_deferred()
    batch = run_import("trades", write_file("t.csv", [TRADES_HEADER, trade_line("T1", side=side)]))
    assert batch.status in {ImportBatch.Status.REJECTED, ImportBatch.Status.SUCCEEDED}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'ingest\\_%%' AND relpersistence = 't'")
        assert cursor.fetchone()[0] == 0
    # Django's own code relies on deferred foreign keys within a transaction.
    assert _foreign_keys_are_deferred()


def test_held_keys_are_probed_by_index_not_by_scanning_the_ledger(book) -> None:
    # given a ledger of some size and a staged chunk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity, price,"
            " amount, commission, channel, created_at) SELECT 'H' || g, %s, now() - interval '1 day', %s, 'buy',"
            " 1, 1, 1, 0, 'online', now() FROM generate_series(1, 20000) g",
            [book.c1.pk, book.stock.pk],
        )
        cursor.execute("ANALYZE clients_trade")
    stage = StageTable(KINDS["trades"], 0)
    stage.create()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {stage.name} (_row, trade_id) SELECT g, 'H' || g FROM generate_series(1, 5000) g")  # noqa: S608
        cursor.execute(f"ANALYZE {stage.name}")
        # when
        cursor.execute("EXPLAIN " + stage.held_pairs_sql(stage.name))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    stage.drop()
    # then
    assert "Index Scan using clients_trade_trade_id" in plan
    assert "Seq Scan on clients_trade" not in plan


def test_a_crash_rolls_back_rows_written_by_insert_select(book, write_file, run_import, monkeypatch) -> None:
    monkeypatch.setattr(staging.StageTable, "_insert_directly", lambda self, *args: False)
    monkeypatch.setattr(staging.StageTable, "_clear", lambda self, table: (_ for _ in ()).throw(OSError("boom")))
    batch = run_import("trades", write_file("t.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2")]))
    assert batch.status == ImportBatch.Status.FAILED
    assert Trade.objects.count() == 0


def test_conflicts_on_postgresql_show_exact_decimals(book, write_file, run_import) -> None:
    run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1")]))
    batch = run_import("trades", write_file("b.csv", [TRADES_HEADER, trade_line("T1", commission="5.01")]))
    assert error_codes(batch) == {(2, "trade_id", "conflict")}
    assert "commission (held 5.00, file 5.01)" in batch.errors.get().expected
