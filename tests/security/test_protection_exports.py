"""Spreadsheet formula injection: one helper (brokercrm.lib.exports) behind every CSV/XLSX
the CRM writes: compliance exports, the complaints register, the import rejects file."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook

from brokercrm.lib import exports


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+86 138 0000 0000", "'+86 138 0000 0000"),
        ("-2+3", "'-2+3"),
        ("-12", "'-12"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("cmd|' /C calc'!A0", "cmd|' /C calc'!A0"),  # harmless unless it starts a formula
        ("plain text", "plain text"),
        ("", ""),
        (-5, -5),
        (3.5, 3.5),
        (None, None),
    ],
)
def test_safe_cell(value: object, expected: object) -> None:
    assert exports.safe_cell(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("-12", "-12"), ("-1,234.50", "-1,234.50"), ("-2+3", "'-2+3"), ("-", "'-"), ("=1", "'=1")]
)
def test_plain_negative_numbers_may_stay_numbers(value: str, expected: str) -> None:
    assert exports.safe_cell(value, keep_negative_numbers=True) == expected


def test_safe_text_and_row() -> None:
    assert exports.safe_text(None) == ""
    assert exports.safe_text(12) == "12"
    assert exports.safe_row(["=a", 1, "b"]) == ["'=a", 1, "b"]


def test_an_escaped_cell_stays_text_in_xlsx() -> None:
    workbook = Workbook()
    workbook.active.append(exports.safe_row(["=1+1", "@x"]))
    buffer = io.BytesIO()
    workbook.save(buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert [cell.value for cell in sheet[1]] == ["'=1+1", "'@x"]
    assert all(cell.data_type == "s" for cell in sheet[1])  # text, not a formula


def test_every_export_uses_the_one_helper() -> None:
    from compliance import exports as compliance_exports
    from feedback import exports as feedback_exports

    assert compliance_exports.safe_cell is exports.safe_cell
    assert feedback_exports.escape_cell("=1") == "'=1"
    assert compliance_exports.to_csv(["a"], [["=1"]]).decode("utf-8-sig").splitlines()[1] == "'=1"


def test_the_rejects_file_escapes_cells_header_and_messages(tmp_path) -> None:
    from clients.ingest import errors
    from clients.ingest.rejects import ErrorSink

    path = tmp_path / "rejects.csv"
    sink = ErrorSink(["client_no", "=evil_header"], path)
    sink._write(2, ["=HYPERLINK(1)", "-12"], ["@bad value"])
    sink.add([errors.RowError(2, "client_no", "x", errors.MALFORMED, "x")])
    assert sink.close()
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["row", "client_no", "'=evil_header", "errors"]
    assert rows[1] == ["2", "'=HYPERLINK(1)", "-12", "'@bad value"]
