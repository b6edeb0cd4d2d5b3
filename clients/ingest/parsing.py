"""Column parsers: a column of text values in, typed values and the problems found out.

Each parser works on a whole column of a chunk at once (lists and numpy arrays, no Python
call per value on the common path): a fast regular expression accepts the canonical form,
and only values that miss it go through the slower path that either normalises them or
says exactly why not. Money stays exact: a decimal is passed on as its normalised text and
the database parses it; the float copy is only used for checks (signs, amount consistency).

What is normalised, and what is refused rather than guessed:
- surrounding spaces are dropped; full-width digits and punctuation (U+FF10..U+FF19, U+FF0E: '123.5' typed on a
  Chinese input method) are folded
  with Unicode NFKC in numbers, dates, codes and choices (free text is kept as sent);
- '1,234,567.50' (commas between groups of three, '.' for decimals) reads as 1234567.50;
  any other use of a comma ('1.234,50', '12,34') is refused as ambiguous, never misread;
- naive date-times are in the exchange's time zone and are stored in UTC; an explicit
  offset ('+08:00', 'Z') is honoured; dates accept '2025-01-02', '2025/1/2' and '20250102'.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from clients.ingest import errors

NAT = np.datetime64("NaT", "us")


@dataclass(frozen=True)
class Problem:
    """Rows of a column (`mask`) sharing one problem."""

    mask: np.ndarray
    code: str
    expected: str


@dataclass
class Parsed:
    """A parsed column: `values` per row (None / NaT where empty or invalid), `numbers` as
    float for numeric types (NaN where missing), and the `problems` found."""

    values: list | np.ndarray
    numbers: np.ndarray | None = None
    problems: list[Problem] = field(default_factory=list)
    empty: np.ndarray | None = None


@dataclass(frozen=True)
class Context:
    """What a parser needs to know about 'now': the exchange time zone, now in UTC, today there."""

    time_zone: str
    now_utc: np.datetime64
    today: dt.date

    @classmethod
    def at(cls, now: dt.datetime, time_zone: str) -> Context:
        """The context for an import started at the aware datetime `now`."""
        utc = now.astimezone(dt.UTC).replace(tzinfo=None)
        local_today = pd.Timestamp(now).tz_convert(time_zone).date()
        return cls(time_zone, np.datetime64(utc, "us"), local_today)


def clean(texts: list[str], *, fold: bool) -> list[str]:
    """Strip each value; with `fold`, apply NFKC to non-ASCII ones (full-width digits etc.)."""
    stripped = [t.strip() for t in texts]
    if fold and not all(map(str.isascii, stripped)):
        stripped = [t if t.isascii() else unicodedata.normalize("NFKC", t).strip() for t in stripped]
    return stripped


def _mask(n: int, indices: list[int]) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if indices:
        mask[indices] = True
    return mask


def _fullmatches(pattern: re.Pattern[str], values: list[str]) -> np.ndarray:
    match = pattern.fullmatch
    return np.fromiter((match(v) is not None for v in values), dtype=bool, count=len(values))


def _empty(values: list[str]) -> np.ndarray:
    return np.fromiter((not v for v in values), dtype=bool, count=len(values))


class ColumnType:
    """A column's type: `parse` a list of texts; `describe` what is accepted (for errors, docs)."""

    fold = True

    def describe(self) -> str:
        raise NotImplementedError

    def parse(self, texts: list[str], context: Context) -> Parsed:
        raise NotImplementedError


class Text(ColumnType):
    """Free text up to `max_length` characters, kept as sent (only surrounding spaces dropped)."""

    fold = False

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def describe(self) -> str:
        return f"text of at most {self.max_length} characters"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        values = clean(texts, fold=self.fold)
        too_long = np.fromiter((len(v) > self.max_length for v in values), dtype=bool, count=len(values))
        problems = [Problem(too_long, errors.TOO_LONG, self.describe())] if too_long.any() else []
        return Parsed(values, problems=problems, empty=_empty(values))


class Code(Text):
    """An identifier (client number, trade id, symbol): folded with NFKC, no spaces inside."""

    fold = True
    _SPACE = re.compile(r"[\s\x00-\x1f\x7f]")

    def describe(self) -> str:
        return f"an identifier of at most {self.max_length} characters without spaces"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        parsed = super().parse(texts, context)
        search = self._SPACE.search
        bad = np.fromiter(map(bool, map(search, parsed.values)), dtype=bool, count=len(texts))
        if bad.any():
            parsed.problems.append(Problem(bad, errors.INVALID_CODE, self.describe()))
        return parsed


class CountryCode(Code):
    """An ISO 3166-1 alpha-2 country code, upper-cased ('cn' -> 'CN')."""

    _PATTERN = re.compile(r"[A-Z]{2}")

    def __init__(self) -> None:
        super().__init__(2)

    def describe(self) -> str:
        return "a two-letter country code (ISO 3166-1), e.g. CN"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        values = [v.upper() for v in clean(texts, fold=True)]
        empty = _empty(values)
        bad = ~_fullmatches(self._PATTERN, values) & ~empty
        problems = [Problem(bad, errors.INVALID_CODE, self.describe())] if bad.any() else []
        return Parsed(values, problems=problems, empty=empty)


class Email(Text):
    def describe(self) -> str:
        return "an e-mail address like name@example.com"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        parsed = super().parse(texts, context)
        bad = []
        for i, value in enumerate(parsed.values):
            if value:
                try:
                    validate_email(value)
                except ValidationError:
                    bad.append(i)
        if bad:
            parsed.problems.append(Problem(_mask(len(texts), bad), errors.INVALID_EMAIL, self.describe()))
        return parsed


class Decimal(ColumnType):
    """An exact decimal with at most `max_digits` digits, `decimal_places` after the point.

    `minimum`: None, "positive" (> 0) or "non_negative" (>= 0).
    """

    _PLAIN = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
    _GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")

    def __init__(self, max_digits: int, decimal_places: int, *, minimum: str | None = None) -> None:
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.minimum = minimum
        whole = max_digits - decimal_places
        places = rf"(?:\.\d{{1,{decimal_places}}}0*)?" if decimal_places else r"(?:\.0*)?"
        self._fast = re.compile(rf"-?[1-9]\d{{0,{whole - 1}}}{places}|-?0{places}")

    def describe(self) -> str:
        sign = {"positive": "a number above 0", "non_negative": "a number, 0 or more"}.get(self.minimum, "a number")
        return f"{sign} with at most {self.decimal_places} decimal places, e.g. 1234.50 or 1,234.50"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        n = len(texts)
        values: list = clean(texts, fold=True)
        empty = _empty(values)
        ok = _fullmatches(self._fast, values)
        slow = np.flatnonzero(~ok & ~empty)
        found: dict[str, list[int]] = {}
        for i in slow:
            normalised, code = self._normalise(values[i])
            if code:
                found.setdefault(code, []).append(int(i))
            else:
                values[i] = normalised
                ok[i] = True
        numbers = np.full(n, np.nan)
        good = np.flatnonzero(ok)
        if len(good) == n:
            numbers = np.array(values, dtype=np.float64)
        elif len(good):
            numbers[good] = np.array([values[i] for i in good], dtype=np.float64)
        for i in np.flatnonzero(~ok):
            values[i] = None
        problems = [Problem(_mask(n, rows), code, self._expected(code)) for code, rows in found.items()]
        if self.minimum == "positive":
            below = numbers <= 0
            if below.any():
                problems.append(Problem(below, errors.NOT_POSITIVE, "a number above 0"))
        elif self.minimum == "non_negative":
            below = numbers < 0
            if below.any():
                problems.append(Problem(below, errors.NEGATIVE, "a number, 0 or more"))
        return Parsed(values, numbers, problems, empty)

    def _expected(self, code: str) -> str:
        if code == errors.TOO_MANY_DECIMALS:
            return f"at most {self.decimal_places} decimal places"
        if code == errors.TOO_MANY_DIGITS:
            return f"at most {self.max_digits - self.decimal_places} digits before the decimal point"
        if code == errors.AMBIGUOUS_NUMBER:
            return "'.' as the decimal point, ',' only between groups of three digits (1,234.50), or no separators"
        return self.describe()

    def _normalise(self, value: str) -> tuple[str, str | None]:
        """A value the fast pattern missed: its normalised text, or the error code."""
        if "," in value:
            if not self._GROUPED.fullmatch(value):
                return value, errors.AMBIGUOUS_NUMBER
            value = value.replace(",", "")
        if not self._PLAIN.fullmatch(value):
            return value, errors.INVALID_NUMBER
        sign = "-" if value.startswith("-") else ""
        digits = value.lstrip("+-")
        whole, _, fraction = digits.partition(".")
        whole = whole.lstrip("0") or "0"
        fraction = fraction.rstrip("0")
        if len(fraction) > self.decimal_places:
            return value, errors.TOO_MANY_DECIMALS
        if len(whole) > self.max_digits - self.decimal_places:
            return value, errors.TOO_MANY_DIGITS
        return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}", None


class Integer(ColumnType):
    """A whole number in [minimum, maximum]; `prefix` letters allowed before it ('C3' -> 3)."""

    def __init__(self, minimum: int, maximum: int, *, prefix: str = "", label: str = "") -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.prefix = prefix
        self.label = label
        self._pattern = re.compile(rf"(?:{re.escape(prefix)})?([+-]?\d{{1,9}})" if prefix else r"([+-]?\d{1,9})", re.I)

    def describe(self) -> str:
        if self.label:
            return self.label
        return f"a whole number from {self.minimum} to {self.maximum}"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        n = len(texts)
        values: list = clean(texts, fold=True)
        empty = _empty(values)
        numbers = np.full(n, np.nan)
        invalid: list[int] = []
        out_of_range: list[int] = []
        match = self._pattern.fullmatch
        for i, value in enumerate(values):
            if not value:
                values[i] = None
                continue
            found = match(value)
            if found is None:
                invalid.append(i)
                values[i] = None
                continue
            number = int(found.group(1))
            if not self.minimum <= number <= self.maximum:
                out_of_range.append(i)
                values[i] = None
                continue
            values[i] = number
            numbers[i] = number
        problems = []
        if invalid:
            problems.append(Problem(_mask(n, invalid), errors.INVALID_INTEGER, self.describe()))
        if out_of_range:
            problems.append(Problem(_mask(n, out_of_range), errors.OUT_OF_RANGE, self.describe()))
        return Parsed(values, numbers, problems, empty)


def _choice_key(value: str) -> str:
    return "_".join(value.lower().replace("-", " ").split())


class Choice(ColumnType):
    """One of `choices` (stored values); `aliases` maps other spellings (e.g. '买入') to them.

    Matching ignores case, and spaces or hyphens match underscores ('Self-service')."""

    def __init__(self, choices: list[str] | tuple[str, ...], aliases: Mapping[str, str] | None = None) -> None:
        self.choices = tuple(choices)
        self._lookup = {_choice_key(c): c for c in self.choices if c}
        for alias, target in (aliases or {}).items():
            self._lookup[_choice_key(alias)] = target

    def describe(self) -> str:
        return "one of " + ", ".join(c for c in self.choices if c)

    def parse(self, texts: list[str], context: Context) -> Parsed:
        values = clean(texts, fold=True)
        empty = _empty(values)
        get = self._lookup.get
        out = [(get(v) or get(_choice_key(v))) if v else None for v in values]
        bad = np.fromiter((o is None for o in out), dtype=bool, count=len(out)) & ~empty
        problems = [Problem(bad, errors.INVALID_CHOICE, self.describe())] if bad.any() else []
        return Parsed(out, problems=problems, empty=empty)


_TRUE = ("true", "t", "yes", "y", "1", "是", "有")
_FALSE = ("false", "f", "no", "n", "0", "否", "无")


class Boolean(Choice):
    def __init__(self) -> None:
        super().__init__(["true", "false"], {**dict.fromkeys(_TRUE, "true"), **dict.fromkeys(_FALSE, "false")})

    def describe(self) -> str:
        return "true or false (also yes/no, 1/0, 是/否)"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        parsed = super().parse(texts, context)
        parsed.values = [None if v is None else v == "true" for v in parsed.values]  # noqa: PD011
        parsed.problems = [Problem(p.mask, errors.INVALID_BOOLEAN, p.expected) for p in parsed.problems]
        return parsed


_DATE_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_ANY = re.compile(
    r"(?:(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})|(\d{4})(\d{2})(\d{2}))(?:[ T]+0{1,2}:00(?::00(?:\.0+)?)?)?"
)


class Date(ColumnType):
    """A calendar date; `not_future` refuses dates after today in the exchange's time zone."""

    def __init__(self, *, not_future: bool = False) -> None:
        self.not_future = not_future

    def describe(self) -> str:
        future = ", not after today" if self.not_future else ""
        return f"a date like 2025-01-31 (or 2025/1/31, 20250131){future}"

    def parse(self, texts: list[str], context: Context) -> Parsed:
        n = len(texts)
        values: list = clean(texts, fold=True)
        empty = _empty(values)
        ok = _fullmatches(_DATE_CANONICAL, values)
        invalid: list[int] = []
        for i in np.flatnonzero(~ok & ~empty):
            found = _DATE_ANY.fullmatch(values[i])
            if found is None:
                invalid.append(int(i))
                continue
            year, month, day = found.groups()[:3] if found.group(1) else found.groups()[3:6]
            values[i] = f"{year}-{int(month):02d}-{int(day):02d}"
        texts_ok = [v if v and _DATE_CANONICAL.fullmatch(v) else "" for v in values]
        days = pd.to_datetime(pd.Series(texts_ok, dtype=object), format="%Y-%m-%d", errors="coerce")
        days_array = days.to_numpy(dtype="datetime64[D]")
        unparsed = np.isnat(days_array) & ~empty
        invalid_mask = _mask(n, invalid) | unparsed
        problems = []
        if invalid_mask.any():
            problems.append(Problem(invalid_mask, errors.INVALID_DATE, self.describe()))
        if self.not_future:
            future = days_array > np.datetime64(context.today, "D")
            if future.any():
                problems.append(Problem(future, errors.IN_FUTURE, f"a date not after today ({context.today})"))
        out = [None if bad or not v else v for v, bad in zip(values, invalid_mask, strict=True)]
        return Parsed(out, days_array.astype("datetime64[D]"), problems, empty)


_DATETIME_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_DATETIME_ANY = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


class DateTime(ColumnType):
    """A date and time. Naive values are in the exchange's time zone; stored as UTC.

    `not_future` refuses times after the moment the import started."""

    def __init__(self, *, not_future: bool = False) -> None:
        self.not_future = not_future

    def describe(self) -> str:
        future = ", not in the future" if self.not_future else ""
        return (
            "a date and time like 2025-01-31 14:30:00 (exchange time), or with an offset: 2025-01-31T06:30:00Z" + future
        )

    def parse(self, texts: list[str], context: Context) -> Parsed:
        n = len(texts)
        values = clean(texts, fold=True)
        empty = _empty(values)
        canonical = _fullmatches(_DATETIME_CANONICAL, values)
        naive = ["" for _ in range(n)]
        aware: dict[int, str] = {}
        invalid: list[int] = []
        for i in np.flatnonzero(canonical):
            naive[i] = values[i]
        for i in np.flatnonzero(~canonical & ~empty):
            found = _DATETIME_ANY.fullmatch(values[i])
            if found is None:
                invalid.append(int(i))
                continue
            year, month, day, hour, minute, second, fraction, offset = found.groups()
            text = (
                f"{year}-{int(month):02d}-{int(day):02d} {int(hour):02d}:{minute}:{second or '00'}"
                f".{(fraction or '0')[:6].ljust(6, '0')}"
            )
            if offset:
                offset = offset.upper()
                if offset == "Z":
                    offset = "+00:00"
                elif len(offset) == 3:
                    offset += ":00"
                elif ":" not in offset:
                    offset = f"{offset[:3]}:{offset[3:]}"
                aware[int(i)] = text + offset
            else:
                naive[i] = text
        local = pd.to_datetime(pd.Series(naive, dtype=object), format="ISO8601", errors="coerce")
        # Naive times are exchange time; a time that does not exist there (DST gap) is refused.
        utc = (
            pd.DatetimeIndex(local)
            .tz_localize(context.time_zone, ambiguous="NaT", nonexistent="NaT")
            .tz_convert("UTC")
            .tz_localize(None)
            .to_numpy(dtype="datetime64[us]", copy=True)
        )
        if aware:
            positions = list(aware)
            stamped = pd.to_datetime(
                pd.Series(list(aware.values()), dtype=object),
                format="%Y-%m-%d %H:%M:%S.%f%z",
                utc=True,
                errors="coerce",
            )
            utc[positions] = stamped.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        invalid_mask = (np.isnat(utc) & ~empty) | _mask(n, invalid)
        problems = []
        if invalid_mask.any():
            problems.append(Problem(invalid_mask, errors.INVALID_DATETIME, self.describe()))
        if self.not_future:
            future = utc > context.now_utc
            if future.any():
                problems.append(
                    Problem(future, errors.IN_FUTURE, "a time not after the moment of the import (no future trades)")
                )
        utc[invalid_mask] = NAT
        return Parsed(utc, None, problems, empty)
