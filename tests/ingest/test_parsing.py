"""Column parsers and file reading: what is normalised, what is refused, and why."""

# Full-width digits and punctuation are the point of some of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pytest

from clients.ingest import errors, parsing, reading
from clients.ingest.kinds import CHANNEL_ALIASES, SIDE_ALIASES

NOW = dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
CONTEXT = parsing.Context.at(NOW, "Asia/Shanghai")


def codes(parsed: parsing.Parsed) -> dict[int, set[str]]:
    """Row index -> problem codes."""
    found: dict[int, set[str]] = {}
    for problem in parsed.problems:
        for i in np.flatnonzero(problem.mask):
            found.setdefault(int(i), set()).add(problem.code)
    return found


class TestDecimal:
    def test_plain_and_grouped_numbers_are_read_exactly(self) -> None:
        parsed = parsing.Decimal(20, 2).parse(["1234.50", " 7 ", "1,234,567.89", "0.10", "-3", "+4.5", ".5"], CONTEXT)
        assert parsed.values == ["1234.50", "7", "1234567.89", "0.10", "-3", "4.5", "0.5"]
        assert parsed.numbers.tolist() == [1234.5, 7.0, 1234567.89, 0.1, -3.0, 4.5, 0.5]
        assert parsed.problems == []

    def test_full_width_digits_are_folded(self) -> None:
        parsed = parsing.Decimal(20, 2).parse(["１２３．５", "１，２３４．００"], CONTEXT)
        assert parsed.values == ["123.5", "1234"]
        assert parsed.problems == []

    @pytest.mark.parametrize("text", ["1.234,50", "12,34", "1,23.4", "1,2345.00", "1 234.50"])
    def test_ambiguous_separators_are_refused_not_misread(self, text: str) -> None:
        parsed = parsing.Decimal(20, 2).parse([text], CONTEXT)
        assert parsed.values == [None]
        assert codes(parsed)[0] & {errors.AMBIGUOUS_NUMBER, errors.INVALID_NUMBER}

    def test_comma_with_dot_decimals_is_ambiguous(self) -> None:
        parsed = parsing.Decimal(20, 2).parse(["1.234,50"], CONTEXT)
        assert codes(parsed) == {0: {errors.AMBIGUOUS_NUMBER}}

    @pytest.mark.parametrize("text", ["1e5", "abc", "12.3.4", "¥100", "(5.00)", "--1", "NaN", "inf"])
    def test_anything_but_plain_decimal_notation_is_invalid(self, text: str) -> None:
        assert codes(parsing.Decimal(20, 2).parse([text], CONTEXT)) == {0: {errors.INVALID_NUMBER}}

    def test_decimal_places_and_digits_are_bounded(self) -> None:
        parsed = parsing.Decimal(6, 2).parse(["1.005", "1.500", "12345.0", "1234.5"], CONTEXT)
        assert codes(parsed) == {0: {errors.TOO_MANY_DECIMALS}, 2: {errors.TOO_MANY_DIGITS}}
        assert parsed.values[1] == "1.500"
        assert parsed.values[3] == "1234.5"

    def test_sign_rules(self) -> None:
        positive = parsing.Decimal(20, 4, minimum="positive").parse(["0", "-1", "2"], CONTEXT)
        assert codes(positive) == {0: {errors.NOT_POSITIVE}, 1: {errors.NOT_POSITIVE}}
        non_negative = parsing.Decimal(20, 2, minimum="non_negative").parse(["0", "-0.01"], CONTEXT)
        assert codes(non_negative) == {1: {errors.NEGATIVE}}

    def test_empty_is_marked_not_an_error(self) -> None:
        parsed = parsing.Decimal(20, 2).parse(["", "  "], CONTEXT)
        assert parsed.empty.tolist() == [True, True]
        assert parsed.problems == []


class TestDateTime:
    def test_naive_times_are_exchange_time_stored_as_utc(self) -> None:
        parsed = parsing.DateTime().parse(["2025-03-03 09:30:00", "2025/3/3 9:30", "2025-03-03T09:30:00.5"], CONTEXT)
        assert parsed.values.tolist() == [
            dt.datetime(2025, 3, 3, 1, 30),
            dt.datetime(2025, 3, 3, 1, 30),
            dt.datetime(2025, 3, 3, 1, 30, 0, 500000),
        ]

    def test_explicit_offsets_are_honoured(self) -> None:
        parsed = parsing.DateTime().parse(
            ["2025-03-03T01:30:00Z", "2025-03-03 09:30:00+0800", "2025-03-03 03:30+02"], CONTEXT
        )
        assert parsed.values.tolist() == [dt.datetime(2025, 3, 3, 1, 30)] * 3

    def test_a_naive_and_an_aware_time_in_one_column(self) -> None:
        parsed = parsing.DateTime().parse(["2025-03-03 09:30:00", "2025-03-03T01:30:00+00:00"], CONTEXT)
        assert parsed.values[0] == parsed.values[1]

    @pytest.mark.parametrize(
        "text", ["2025-02-30 10:00:00", "2025-03-03", "yesterday", "2025-03-03 25:00:00", "03/03/2025 10:00"]
    )
    def test_invalid_times(self, text: str) -> None:
        parsed = parsing.DateTime().parse([text], CONTEXT)
        assert codes(parsed) == {0: {errors.INVALID_DATETIME}}
        assert np.isnat(parsed.values[0])

    def test_future_is_refused_relative_to_the_import(self) -> None:
        parsed = parsing.DateTime(not_future=True).parse(["2026-03-10 11:59:59", "2026-03-10 12:00:01"], CONTEXT)
        assert codes(parsed) == {1: {errors.IN_FUTURE}}

    def test_full_width_digits(self) -> None:
        parsed = parsing.DateTime().parse(["２０２５－０３－０３　０９：３０：００"], CONTEXT)
        assert parsed.values.tolist() == [dt.datetime(2025, 3, 3, 1, 30)]


class TestDate:
    def test_formats(self) -> None:
        parsed = parsing.Date().parse(["2025-01-31", "2025/1/31", "20250131", "2025-01-31 00:00:00", ""], CONTEXT)
        assert parsed.values == ["2025-01-31"] * 4 + [None]
        assert parsed.problems == []

    def test_invalid_and_future(self) -> None:
        parsed = parsing.Date(not_future=True).parse(["2025-02-29", "31/01/2025", "2026-03-11", "2026-03-10"], CONTEXT)
        assert codes(parsed) == {0: {errors.INVALID_DATE}, 1: {errors.INVALID_DATE}, 2: {errors.IN_FUTURE}}


class TestChoiceAndFriends:
    def test_choices_ignore_case_and_accept_aliases(self) -> None:
        side = parsing.Choice(["buy", "sell"], SIDE_ALIASES).parse(["BUY", "买入", "卖", "S", "hold"], CONTEXT)
        assert side.values == ["buy", "buy", "sell", "sell", None]
        assert codes(side) == {4: {errors.INVALID_CHOICE}}
        channels = ["self_service", "phone", "online", "mobile", "counter", "other"]
        channel = parsing.Choice(channels, CHANNEL_ALIASES).parse(["Self-service", "手机", "WEB"], CONTEXT)
        assert channel.values == ["self_service", "mobile", "online"]

    def test_boolean(self) -> None:
        parsed = parsing.Boolean().parse(["true", "N", "是", "0", "maybe", ""], CONTEXT)
        assert parsed.values == [True, False, True, False, None, None]
        assert codes(parsed) == {4: {errors.INVALID_BOOLEAN}}

    def test_integer_with_prefix(self) -> None:
        parsed = parsing.Integer(1, 5, prefix="R").parse(["R3", "r5", "4", "R6", "X2"], CONTEXT)
        assert parsed.values[:3] == [3, 5, 4]
        assert codes(parsed) == {3: {errors.OUT_OF_RANGE}, 4: {errors.INVALID_INTEGER}}

    def test_code_refuses_inner_spaces_and_text_keeps_full_width(self) -> None:
        code = parsing.Code(10).parse(["ＡＢ１", "A B", "TOO-LONG-CODE"], CONTEXT)
        assert code.values[0] == "AB1"
        assert codes(code) == {1: {errors.INVALID_CODE}, 2: {errors.TOO_LONG}}
        text = parsing.Text(20).parse(["  上海（浦东）  "], CONTEXT)
        assert text.values == ["上海（浦东）"]


class TestEncoding:
    def inspect(self, data: bytes, encoding: str | None = None) -> reading.SourceInfo:
        return reading.inspect(io.BytesIO(data), name="f.csv", encoding=encoding)

    def test_utf8_with_and_without_bom(self) -> None:
        assert self.inspect("a,b\n上海,1\n".encode()).encoding == "utf-8"
        assert self.inspect(b"\xef\xbb\xbf" + "a,b\n上海,1\n".encode()).encoding == "utf-8-sig"

    def test_gbk_is_detected_as_gb18030(self) -> None:
        info = self.inspect("a,b\n上海浦东,买入\n".encode("gbk"))
        assert info.encoding == "gb18030"

    def test_explicit_encoding_wins_and_must_fit(self) -> None:
        assert self.inspect("a\n上海\n".encode("gbk"), "gbk").encoding == "gbk"
        with pytest.raises(errors.FileRejected) as caught:
            self.inspect("a\nb\n上海\n".encode("gbk"), "utf-8")
        error = caught.value.errors[0]
        assert (error.row, error.code) == (3, errors.ENCODING)

    def test_bytes_that_are_no_text_are_refused_with_their_line(self) -> None:
        with pytest.raises(errors.FileRejected) as caught:
            self.inspect(b"a,b\n1,2\n3,\xff\xff\n")
        assert (caught.value.errors[0].row, caught.value.errors[0].code) == (3, errors.ENCODING)

    def test_hash_and_size(self) -> None:
        info = self.inspect(b"a,b\n1,2\n")
        assert info.size == 8
        assert info.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


class TestReading:
    def test_a_file_is_read_in_chunks_with_spreadsheet_row_numbers(self) -> None:
        data = "Trade ID,Amount\n" + "".join(f"T{i},{i}\n" for i in range(7)) + "\n"
        stream = io.BytesIO(data.encode())
        info = reading.inspect(stream, name="t.csv")
        header, chunks = reading.read_chunks(stream, info, chunk_size=3)
        frames = [c.frame for c in chunks]
        assert header == ["trade_id", "amount"]
        assert [len(f) for f in frames] == [3, 3, 1]
        assert frames[0].index.tolist() == [2, 3, 4]
        assert frames[2].loc[8, "trade_id"] == "T6"

    def test_blank_lines_keep_their_row_number(self) -> None:
        stream = io.BytesIO(b"a,b\n1,2\n\n3,4\n")
        _header, chunks = reading.read_chunks(stream, reading.inspect(stream, name="t.csv"), chunk_size=10)
        assert next(chunks).frame.index.tolist() == [2, 4]

    def test_a_row_with_too_many_fields_stops_the_file_with_its_row(self) -> None:
        stream = io.BytesIO(b"a,b\n1,2\n3,4,5\n")
        _header, chunks = reading.read_chunks(stream, reading.inspect(stream, name="t.csv"), chunk_size=10)
        with pytest.raises(errors.FileRejected) as caught:
            list(chunks)
        assert (caught.value.errors[0].row, caught.value.errors[0].code) == (3, errors.MALFORMED)

    @pytest.mark.parametrize(
        ("value", "text"),
        [(1234.5, "1234.5"), (100.0, "100"), (0.1 + 0.2, "0.30000000000000004"), (dt.date(2025, 1, 2), "2025-01-02"),
         (dt.datetime(2025, 1, 2, 9, 30), "2025-01-02 09:30:00"), (dt.datetime(2025, 1, 2), "2025-01-02"), (None, ""),
         (True, "true"), (7, "7")],
    )  # fmt: skip
    def test_excel_cells_as_text(self, value: object, text: str) -> None:
        assert reading.excel_cell_text(value) == text

    def test_unsupported_spreadsheet_formats_are_named(self) -> None:
        with pytest.raises(errors.FileRejected) as caught:
            reading.format_for("book.xls")
        assert caught.value.errors[0].code == errors.UNSUPPORTED_FORMAT

    def test_json_numbers_stay_exact_text(self) -> None:
        records = reading.loads(b'[{"Amount": 10.50, "qty": 100, "ok": true, "note": null}]')
        header, chunks = reading.json_chunks(records)
        frame = next(chunks).frame
        assert header == ["amount", "qty", "ok", "note"]
        assert frame.iloc[0].tolist() == ["10.50", "100", "true", ""]
        assert frame.index.tolist() == [1]
