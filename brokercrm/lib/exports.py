"""Spreadsheet formula injection (CSV / XLSX injection): the one helper every export uses.

A text cell starting with = + - @ (or a tab or carriage return) is run as a formula by Excel
and LibreOffice when the file is opened (`=HYPERLINK(...)`, `@SUM(...)`, `=cmd|' /C calc'!A0`);
openpyxl even writes a string starting with '=' as a formula. Such cells get a leading
apostrophe, which spreadsheets read as "this is text" (OWASP, CSV Injection).

Numbers, dates and other non-text values pass unchanged. With `keep_negative_numbers`, a
text cell that is exactly a plain negative number ('-12', '-1,234.50') is left alone: not a
formula, and a rejects file that repeats the source rows must keep reading as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NEGATIVE_NUMBER = re.compile(r"-\d[\d,]*(\.\d+)?")


def safe_cell(value: Any, *, keep_negative_numbers: bool = False) -> Any:
    """`value` as a spreadsheet shows it but never evaluates it."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if keep_negative_numbers and _PLAIN_NEGATIVE_NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_text(value: object, *, keep_negative_numbers: bool = False) -> str:
    """`value` as text (None as empty), escaped like `safe_cell`."""
    return safe_cell("" if value is None else str(value), keep_negative_numbers=keep_negative_numbers)


def safe_row(values: Iterable[Any], *, keep_negative_numbers: bool = False) -> list[Any]:
    return [safe_cell(value, keep_negative_numbers=keep_negative_numbers) for value in values]
