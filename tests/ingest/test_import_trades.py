"""Importing trades: validation, all-or-nothing, skip-invalid, idempotency, reversals, crashes."""

# Full-width digits and punctuation are the point of some of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from clients.ingest import errors
from clients.ingest.services import Requester
from clients.ingest.staging import StageTable
from clients.models import ImportBatch, Trade
from tests import factories
from tests.ingest.conftest import TRADES_HEADER, error_codes, reversal_line, trade_ids, trade_line, utc

pytestmark = pytest.mark.django_db

REVERSAL_HEADER = TRADES_HEADER + ",reverses_trade_id"


def test_a_valid_file_is_written_whole_and_recorded(book, write_file, run_import) -> None:
    # given
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2", client="C2", pnl="-12.30")])
    clerk = factories.UserFactory(username="ops_ivan")
    # when
    batch = run_import("trades", path, requester=Requester(user=clerk))
    # then
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert (batch.rows_read, batch.rows_written, batch.rows_duplicate, batch.rows_rejected) == (2, 2, 0, 0)
    assert batch.requested_by == clerk
    assert batch.requested_by_name == "ops_ivan"
    assert batch.file_name == "trades.csv"
    assert len(batch.file_sha256) == 64
    assert batch.file_size == path.stat().st_size
    assert batch.finished_at is not None
    assert batch.encoding == "utf-8"
    t2 = Trade.objects.get(trade_id="T2")
    assert (t2.client, t2.instrument, t2.side, t2.channel) == (book.c2, book.stock, "buy", "mobile")
    assert (t2.quantity, t2.price, t2.amount, t2.commission, t2.realized_pnl) == (
        Decimal("100"),
        Decimal("10.5"),
        Decimal("1050"),
        Decimal("5"),
        Decimal("-12.3"),
    )
    # Naive times are Shanghai time, stored in UTC.
    assert t2.executed_at == utc(2025, 3, 3, 2, 0)


def test_a_file_with_several_kinds_of_errors_is_rejected_whole(book, write_file, run_import) -> None:
    path = write_file(
        "bad.csv",
        [
            TRADES_HEADER,
            trade_line("T1"),  # row 2: fine
            trade_line("T2", side="hold"),  # row 3: allowed values
            trade_line("T3", quantity="0", amount="0.00"),  # row 4: quantity > 0
            trade_line("T4", commission="-1.00"),  # row 5: commission >= 0
            trade_line("T5", amount="2000.00"),  # row 6: amount != quantity x price
            trade_line("T6", at="2099-01-01 10:00:00"),  # row 7: future
            trade_line("T7", client="NOBODY"),  # row 8: unknown client
            trade_line("T8", symbol="999999.SH"),  # row 9: unknown instrument
            trade_line("T9", price="abc", channel="pigeon"),  # row 10: type and allowed values
            trade_line("", at=""),  # row 11: required fields
            trade_line("T11", amount='"1.050,00"'),  # row 12: ambiguous separators
        ],
    )
    batch = run_import("trades", path)
    assert batch.status == ImportBatch.Status.REJECTED
    assert Trade.objects.count() == 0
    assert batch.rows_read == 11
    assert batch.rows_rejected == 10
    assert batch.rows_written == 0
    assert error_codes(batch) == {
        (3, "side", errors.INVALID_CHOICE),
        (4, "quantity", errors.NOT_POSITIVE),
        (5, "commission", errors.WRONG_SIGN),
        (6, "amount", errors.AMOUNT_MISMATCH),
        (7, "executed_at", errors.IN_FUTURE),
        (8, "client_no", errors.UNKNOWN_CLIENT),
        (9, "symbol", errors.UNKNOWN_INSTRUMENT),
        (10, "price", errors.INVALID_NUMBER),
        (10, "channel", errors.INVALID_CHOICE),
        (11, "trade_id", errors.REQUIRED),
        (11, "executed_at", errors.REQUIRED),
        (12, "amount", errors.AMBIGUOUS_NUMBER),
    }
    assert batch.error_count == 12
    side = batch.errors.get(row=3)
    assert side.value == "hold"
    assert side.expected == "one of buy, sell"
    mismatch = batch.errors.get(row=6)
    assert mismatch.value == "2000.00"
    assert "quantity x price = 1,050.00" in mismatch.expected


def test_skip_invalid_writes_the_good_rows_and_saves_the_bad_ones(book, write_file, run_import, tmp_path) -> None:
    path = write_file(
        "mixed.csv",
        [
            TRADES_HEADER,
            trade_line("T1"),
            trade_line("T2", side="hold"),
            trade_line("T3"),
            trade_line("T4", client="X"),
        ],
    )
    rejects = tmp_path / "rejects.csv"
    batch = run_import("trades", path, skip_invalid=True, rejects_path=rejects)
    assert batch.status == ImportBatch.Status.PARTIALLY_SUCCEEDED
    assert trade_ids() == ["T1", "T3"]
    assert (batch.rows_read, batch.rows_written, batch.rows_rejected) == (4, 2, 2)
    assert batch.rejects_file == str(rejects)
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["row"], r["trade_id"], r["side"], r["client_no"]) for r in rows] == [
        ("3", "T2", "hold", "C1"),
        ("5", "T4", "buy", "X"),
    ]
    assert "expected one of buy, sell [invalid_choice]" in rows[0]["errors"]
    assert "[unknown_client]" in rows[1]["errors"]


def test_the_rejects_file_cannot_run_formulas_in_a_spreadsheet(book, write_file, run_import, tmp_path) -> None:
    path = write_file(
        "mixed.csv",
        [TRADES_HEADER, trade_line("T1", client="=HYPERLINK(1)"), trade_line("T2", channel="@SUM(1)", amount="-1.00")],
    )
    rejects = tmp_path / "rejects.csv"
    run_import("trades", path, skip_invalid=True, rejects_path=rejects)
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["client_no"] for r in rows] == ["'=HYPERLINK(1)", "C1"]
    assert (rows[1]["channel"], rows[1]["amount"]) == ("'@SUM(1)", "-1.00")


def test_reimporting_the_same_file_adds_nothing_and_reports_duplicates(book, write_file, run_import) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2")])
    first = run_import("trades", path)
    second = run_import("trades", path)
    assert first.rows_written == 2
    assert second.status == ImportBatch.Status.SUCCEEDED
    assert (second.rows_read, second.rows_written, second.rows_duplicate) == (2, 0, 2)
    assert second.duplicate_sample == [
        {"row": 2, "key": "T1", "note": "already held"},
        {"row": 3, "key": "T2", "note": "already held"},
    ]
    assert Trade.objects.count() == 2
    assert second.file_sha256 == first.file_sha256


def test_normalised_values_make_the_same_content(book, write_file, run_import) -> None:
    # The same trade re-sent with other spellings of the same values is a duplicate.
    run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1")]))
    resent = write_file(
        "b.csv",
        [TRADES_HEADER, trade_line("T1", at="2025-03-03T02:00:00Z", side="BUY", quantity="100.0000",
                                   price="10.5", amount='"1,050"', commission="5", channel="手机")],
    )  # fmt: skip
    batch = run_import("trades", resent)
    assert (batch.status, batch.rows_duplicate, batch.rows_conflict) == (ImportBatch.Status.SUCCEEDED, 1, 0)


def test_a_conflicting_resend_is_reported_never_overwritten(book, write_file, run_import) -> None:
    run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2")]))
    resent = write_file(
        "b.csv", [TRADES_HEADER, trade_line("T1", commission="6.00"), trade_line("T2"), trade_line("T3")]
    )
    batch = run_import("trades", resent)
    assert batch.status == ImportBatch.Status.REJECTED
    assert (batch.rows_conflict, batch.rows_duplicate, batch.rows_rejected) == (1, 1, 1)
    assert trade_ids() == ["T1", "T2"]
    assert Trade.objects.get(trade_id="T1").commission == Decimal("5.00")
    conflict = batch.errors.get()
    assert (conflict.row, conflict.column, conflict.value, conflict.code) == (2, "trade_id", "T1", errors.CONFLICT)
    assert "commission (held 5" in conflict.expected
    assert "file 6" in conflict.expected


def test_a_conflicting_resend_with_skip_invalid_writes_only_the_new_rows(book, write_file, run_import) -> None:
    run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1")]))
    batch = run_import(
        "trades",
        write_file("b.csv", [TRADES_HEADER, trade_line("T1", price="10.60", amount="1060.00"), trade_line("T2")]),
        skip_invalid=True,
    )
    assert batch.status == ImportBatch.Status.PARTIALLY_SUCCEEDED
    assert (batch.rows_written, batch.rows_conflict, batch.rows_rejected) == (1, 1, 1)
    assert Trade.objects.get(trade_id="T1").price == Decimal("10.5")


@pytest.mark.parametrize("chunk_size", [1, 2, 100])
def test_repeats_within_the_file(book, write_file, run_import, chunk_size) -> None:
    # Rows 2 and 4 repeat exactly; row 5 reuses T2 with other content. Detected across chunks too.
    path = write_file(
        "t.csv",
        [
            TRADES_HEADER,
            trade_line("T1"),
            trade_line("T2"),
            trade_line("T1"),
            trade_line("T2", quantity="200", amount="2100.00"),
        ],
    )
    batch = run_import("trades", path, skip_invalid=True, chunk_size=chunk_size)
    assert trade_ids() == ["T1", "T2"]
    assert (batch.rows_written, batch.rows_duplicate, batch.rows_conflict) == (2, 1, 1)
    assert error_codes(batch) == {(5, "trade_id", errors.CONFLICT_IN_FILE)}
    assert Trade.objects.get(trade_id="T2").quantity == 100


class TestReversals:
    def test_a_reversal_of_a_held_trade(self, book, write_file, run_import) -> None:
        run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1")]))
        batch = run_import("trades", write_file("b.csv", [REVERSAL_HEADER, reversal_line("T1R", "T1")]))
        assert batch.status == ImportBatch.Status.SUCCEEDED
        reversal = Trade.objects.get(trade_id="T1R")
        assert reversal.reverses.trade_id == "T1"
        assert (reversal.amount, reversal.commission) == (Decimal("-1050"), Decimal("-5"))

    @pytest.mark.parametrize("chunk_size", [1, 50])
    def test_a_reversal_may_come_before_its_original_in_the_file(
        self, book, write_file, run_import, chunk_size
    ) -> None:
        path = write_file("t.csv", [REVERSAL_HEADER, reversal_line("T1R", "T1"), trade_line("T1", reverses="")])
        batch = run_import("trades", path, chunk_size=chunk_size)
        assert batch.status == ImportBatch.Status.SUCCEEDED
        assert Trade.objects.get(trade_id="T1R").reverses == Trade.objects.get(trade_id="T1")

    def test_reversal_problems(self, book, write_file, run_import) -> None:
        run_import("trades", write_file("a.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2")]))
        run_import("trades", write_file("b.csv", [REVERSAL_HEADER, reversal_line("T2R", "T2")]))
        path = write_file(
            "c.csv",
            [
                REVERSAL_HEADER,
                reversal_line("R1", "NOPE"),  # row 2: unknown original
                reversal_line("R2", "T2"),  # row 3: T2 is already reversed (by T2R)
                reversal_line("R3", "T2R"),  # row 4: a reversal of a reversal
                reversal_line("R4", "T1", amount="-1000.00", quantity="95.2381", price="10.50"),  # row 5: mismatch
                reversal_line("R5", "T1"),  # row 6: fine
                reversal_line("R6", "T1"),  # row 7: T1 reversed twice in this file
                reversal_line("R7", "R7"),  # row 8: reverses itself
                trade_line("R8", amount="-1050.00", commission="-5.00", reverses=""),  # row 9: sign, not a reversal
            ],
        )
        batch = run_import("trades", path, skip_invalid=True)
        assert error_codes(batch) == {
            (2, "reverses_trade_id", errors.REVERSAL_UNKNOWN),
            (3, "reverses_trade_id", errors.ALREADY_REVERSED),
            (4, "reverses_trade_id", errors.REVERSES_REVERSAL),
            (5, "reverses_trade_id", errors.REVERSAL_MISMATCH),
            (7, "reverses_trade_id", errors.ALREADY_REVERSED),
            (8, "reverses_trade_id", errors.SELF_REVERSAL),
            (9, "amount", errors.WRONG_SIGN),
            (9, "commission", errors.WRONG_SIGN),
        }
        assert "quantity" in batch.errors.get(row=5).expected
        assert "row 6" in batch.errors.get(row=7).expected
        assert trade_ids() == ["R5", "T1", "T2", "T2R"]

    def test_a_reversal_must_carry_negated_money(self, book, write_file, run_import) -> None:
        path = write_file("t.csv", [REVERSAL_HEADER, trade_line("T1", reverses=""), trade_line("T1R", reverses="T1")])
        batch = run_import("trades", path)
        assert batch.status == ImportBatch.Status.REJECTED
        assert error_codes(batch) == {(3, "amount", errors.WRONG_SIGN), (3, "commission", errors.WRONG_SIGN)}


class TestRealWorldFiles:
    def test_gbk_export_with_chinese_values(self, book, write_file, run_import) -> None:
        lines = [
            TRADES_HEADER,
            trade_line("T1", side="买入", channel="柜台"),
            trade_line("T2", side="卖出", channel="手机"),
        ]
        batch = run_import("trades", write_file("gbk.csv", lines, encoding="gbk"))
        assert (batch.status, batch.encoding) == (ImportBatch.Status.SUCCEEDED, "gb18030")
        assert list(Trade.objects.order_by("trade_id").values_list("side", "channel")) == [
            ("buy", "counter"),
            ("sell", "mobile"),
        ]

    def test_explicit_encoding(self, book, write_file, run_import) -> None:
        path = write_file("gbk.csv", [TRADES_HEADER, trade_line("T1", side="买入")], encoding="gbk")
        assert run_import("trades", path, encoding="gbk").encoding == "gbk"
        rejected = run_import("trades", path, encoding="utf-8")
        assert rejected.status == ImportBatch.Status.REJECTED
        assert error_codes(rejected) == {(2, "", errors.ENCODING)}

    def test_utf8_with_bom(self, book, write_file, run_import) -> None:
        batch = run_import("trades", write_file("bom.csv", [TRADES_HEADER, trade_line("T1")], bom=True))
        assert (batch.status, batch.encoding) == (ImportBatch.Status.SUCCEEDED, "utf-8-sig")

    def test_thousands_separators_full_width_digits_and_offsets(self, book, write_file, run_import) -> None:
        path = write_file(
            "t.csv",
            [
                TRADES_HEADER,
                trade_line("T1", quantity="1000", price="10.50", amount='"10,500.00"', commission="5.00"),
                trade_line("T2", quantity="１００", price="１０．５", amount="１０５０", commission="５"),
                trade_line("T3", at="2025-03-03T10:00:00+00:00"),
            ],
        )
        batch = run_import("trades", path)
        assert batch.status == ImportBatch.Status.SUCCEEDED
        assert Trade.objects.get(trade_id="T1").amount == Decimal("10500.00")
        assert Trade.objects.get(trade_id="T2").price == Decimal("10.5")
        assert Trade.objects.get(trade_id="T3").executed_at == utc(2025, 3, 3, 10, 0)

    def test_header_problems_reject_the_file(self, book, write_file, run_import) -> None:
        path = write_file("t.csv", ["trade_id,client_no,executed_at,symbol,side,quantity,price,amount,channel,colour"])
        batch = run_import("trades", path)
        assert batch.status == ImportBatch.Status.REJECTED
        assert error_codes(batch) == {(1, "colour", errors.UNKNOWN_COLUMN), (1, "commission", errors.MISSING_COLUMN)}

    def test_a_malformed_row_rejects_the_file_naming_the_row(self, book, write_file, run_import) -> None:
        path = write_file("t.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2") + ",extra"])
        batch = run_import("trades", path, skip_invalid=True)
        assert batch.status == ImportBatch.Status.REJECTED
        assert error_codes(batch) == {(3, "", errors.MALFORMED)}
        assert Trade.objects.count() == 0

    def test_header_names_are_normalised(self, book, write_file, run_import) -> None:
        header = "Trade ID,CLIENT_NO,executed at,Symbol,Side,Quantity,Price,Amount,Commission,Channel"
        batch = run_import("trades", write_file("t.csv", [header, trade_line("T1")[: -len(",")]]))
        assert batch.status == ImportBatch.Status.SUCCEEDED

    def test_an_empty_file_and_a_header_only_file(self, book, write_file, run_import) -> None:
        empty = run_import("trades", write_file("e.csv", ""))
        assert (empty.status, error_codes(empty)) == (ImportBatch.Status.REJECTED, {(0, "", errors.EMPTY_FILE)})
        header_only = run_import("trades", write_file("h.csv", [TRADES_HEADER]))
        assert (header_only.status, header_only.rows_read) == (ImportBatch.Status.SUCCEEDED, 0)


class TestCrash:
    def test_a_crash_after_a_chunk_was_written_leaves_nothing_of_the_batch(
        self, book, write_file, run_import, monkeypatch
    ) -> None:
        # given a file of three chunks, and a writer that dies after writing the first one
        run_import("trades", write_file("old.csv", [TRADES_HEADER, trade_line("T0")]))
        original = StageTable.take
        calls = []

        def crash_after_first(self, *args, **kwargs):
            original(self, *args, **kwargs)
            calls.append(Trade.objects.count())
            if len(calls) == 2:
                raise ConnectionError("database went away")

        monkeypatch.setattr(StageTable, "take", crash_after_first)
        path = write_file("t.csv", [TRADES_HEADER] + [trade_line(f"T{i}") for i in range(1, 7)])
        # when
        batch = run_import("trades", path, chunk_size=2)
        # then rows were in the ledger mid-batch, and none of them is left
        assert calls == [3, 5]
        assert batch.status == ImportBatch.Status.FAILED
        assert batch.failure == "ConnectionError: database went away"
        assert trade_ids() == ["T0"]
        assert ImportBatch.objects.get(pk=batch.pk).status == ImportBatch.Status.FAILED

    def test_a_crash_while_writing_the_reversals(self, book, write_file, run_import, monkeypatch) -> None:
        def crash(self, constants):
            raise RuntimeError("disk full")

        monkeypatch.setattr(StageTable, "finish", crash)
        path = write_file("t.csv", [REVERSAL_HEADER, trade_line("T1", reverses=""), reversal_line("T1R", "T1")])
        batch = run_import("trades", path)
        assert (batch.status, Trade.objects.count()) == (ImportBatch.Status.FAILED, 0)

    def test_an_interrupted_command_is_recorded_as_failed(self, book, write_file, run_import, monkeypatch) -> None:
        def interrupt(self, constants):
            raise KeyboardInterrupt

        monkeypatch.setattr(StageTable, "finish", interrupt)
        with pytest.raises(KeyboardInterrupt):
            run_import("trades", write_file("t.csv", [TRADES_HEADER, trade_line("T1")]))
        batch = ImportBatch.objects.get()
        assert (batch.status, batch.failure) == (ImportBatch.Status.FAILED, "interrupted (KeyboardInterrupt)")
        assert Trade.objects.count() == 0

    def test_the_ledger_stays_usable_after_a_failed_batch(self, book, write_file, run_import, monkeypatch) -> None:
        monkeypatch.setattr(StageTable, "finish", lambda self, constants: 1 / 0)
        run_import("trades", write_file("t.csv", [TRADES_HEADER, trade_line("T1")]))
        monkeypatch.undo()
        batch = run_import("trades", write_file("t2.csv", [TRADES_HEADER, trade_line("T1")]))
        assert (batch.status, trade_ids()) == (ImportBatch.Status.SUCCEEDED, ["T1"])
