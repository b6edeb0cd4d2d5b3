"""What can be wrong with an imported file, as constants the tests and callers can rely on.

Every problem is a `RowError`: the row (the header is row 1, like a spreadsheet; 0 means
the whole file), the column, the value found and what was expected instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- whole-file problems -------------------------------------------------------------
ENCODING = "encoding"
MALFORMED = "malformed"
MISSING_COLUMN = "missing_column"
UNKNOWN_COLUMN = "unknown_column"
DUPLICATE_COLUMN = "duplicate_column"
EMPTY_FILE = "empty_file"
UNSUPPORTED_FORMAT = "unsupported_format"

# --- one value ----------------------------------------------------------------------
REQUIRED = "required"
MISSING_FIELDS = "missing_fields"
TOO_LONG = "too_long"
INVALID_NUMBER = "invalid_number"
AMBIGUOUS_NUMBER = "ambiguous_number"
TOO_MANY_DECIMALS = "too_many_decimals"
TOO_MANY_DIGITS = "too_many_digits"
INVALID_INTEGER = "invalid_integer"
OUT_OF_RANGE = "out_of_range"
NOT_POSITIVE = "not_positive"
NEGATIVE = "negative"
INVALID_CHOICE = "invalid_choice"
INVALID_BOOLEAN = "invalid_boolean"
INVALID_DATE = "invalid_date"
INVALID_DATETIME = "invalid_datetime"
IN_FUTURE = "in_future"
INVALID_EMAIL = "invalid_email"
INVALID_CODE = "invalid_code"

# --- one row, several values ------------------------------------------------------------
AMOUNT_MISMATCH = "amount_mismatch"
WRONG_SIGN = "wrong_sign"
DATE_ORDER = "date_order"
STATUS_DATE = "status_date"
SELF_REVERSAL = "self_reversal"

# --- references to other data ------------------------------------------------------------
UNKNOWN_CLIENT = "unknown_client"
UNKNOWN_INSTRUMENT = "unknown_instrument"
UNKNOWN_BRANCH = "unknown_branch"
UNKNOWN_ACCOUNT_MANAGER = "unknown_account_manager"

# --- the row against rows already held, or earlier rows of the file ---------------------
CONFLICT = "conflict"
CONFLICT_IN_FILE = "conflict_in_file"
REVERSAL_UNKNOWN = "reversal_unknown"
REVERSAL_MISMATCH = "reversal_mismatch"
ALREADY_REVERSED = "already_reversed"
REVERSES_REVERSAL = "reverses_reversal"

FILE_LEVEL = frozenset(
    {ENCODING, MALFORMED, MISSING_COLUMN, UNKNOWN_COLUMN, DUPLICATE_COLUMN, EMPTY_FILE, UNSUPPORTED_FORMAT}
)

VALUE_SHOWN_MAX = 200


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: `row` (header = 1; 0 = whole file), `column`, `value` found, `expected`."""

    row: int
    column: str
    value: str
    code: str
    expected: str

    @property
    def message(self) -> str:
        where = "file" if self.row == 0 else f"row {self.row}"
        column = f", column {self.column}" if self.column else ""
        value = f": {self.value!r}" if self.value else ""
        return f"{where}{column}{value} — expected {self.expected} [{self.code}]"

    def as_dict(self) -> dict[str, object]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "code": self.code,
            "expected": self.expected,
        }


def shown(value: object) -> str:
    """`value` as shown in an error: text, cut to a readable length."""
    text = "" if value is None else str(value)
    return text if len(text) <= VALUE_SHOWN_MAX else text[: VALUE_SHOWN_MAX - 1] + "…"


class FileRejected(Exception):
    """The file cannot be read as a table of the kind: nothing of it is imported."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(e.message for e in errors[:3]))
        self.errors = errors
