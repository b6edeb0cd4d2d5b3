"""Checking a chunk of rows: every column parsed, the rules across a row, the references.

`parse_chunk` needs no database and runs in the reading thread, ahead of the writes;
`complete_chunk` resolves client numbers, symbols, branch codes and employee numbers to ids
(one query per chunk for the keys not seen before) and gathers the errors and the values of
the good rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from brokercrm.lib import crypto
from brokercrm.lib.db import is_postgres
from clients.ingest import errors, parsing, reading
from clients.ingest.kinds import Column, KindSpec, ParsedChunk, Reference
from clients.ingest.staging import BOOLEAN, DATE, DATETIME, DECIMAL, INTEGER, TEXT
from clients.models import mask_identifier

REFERENCE_CACHE_SIZE = 500_000


def check_header(spec: KindSpec, header: list[str]) -> list[errors.RowError]:
    found = []
    known = {c.name for c in spec.columns}
    seen: set[str] = set()
    for name in header:
        if not name:
            continue
        if name in seen:
            found.append(errors.RowError(1, name, name, errors.DUPLICATE_COLUMN, "each column once"))
        seen.add(name)
        if name not in known:
            found.append(
                errors.RowError(
                    1,
                    name,
                    name,
                    errors.UNKNOWN_COLUMN,
                    f"only the columns of {spec.name}: {', '.join(c.name for c in spec.columns)}",
                )
            )
    for column in spec.columns:
        if column.required and column.name not in seen:
            found.append(errors.RowError(1, column.name, "", errors.MISSING_COLUMN, f"a column named {column.name}"))
    return found


# --- references ---------------------------------------------------------------------------


class ReferenceCache:
    """Business key -> id for one referenced model; one query per chunk for the keys not seen."""

    def __init__(self, reference: Reference, *, max_size: int = REFERENCE_CACHE_SIZE) -> None:
        self.reference = reference
        self.max_size = max_size
        self._ids: dict[str, int | None] = {}

    def resolve(self, keys: list[str | None]) -> list[int | None]:
        wanted = {k for k in keys if k} - self._ids.keys()
        if wanted:
            if len(self._ids) + len(wanted) > self.max_size:
                self._ids.clear()
            found = _fetch_ids(self.reference, wanted)
            self._ids.update(dict.fromkeys(wanted))
            self._ids.update(found)
        get = self._ids.get
        return [get(k) if k else None for k in keys]


# Separates the keys of one lookup sent as a single text (see _fetch_ids): ASCII "unit separator".
_KEY_SEPARATOR = "\x1f"


def _fetch_ids(reference: Reference, keys: set[str]) -> dict[str, int]:
    model = reference.model
    if is_postgres():
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(model._meta.get_field(reference.lookup).column)
        # The keys go as one text split by the server, not as an array parameter: the driver
        # quotes an array element by element in Python (~2x the query's time for 100,000 keys).
        # A key holding the separator itself (never a real client number or symbol) falls back.
        joined = _KEY_SEPARATOR.join(keys)
        if joined.count(_KEY_SEPARATOR) == len(keys) - 1:
            condition, param = "ANY(string_to_array(%s, chr(31)))", joined
        else:
            condition, param = "ANY(%s)", list(keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {column}, id FROM {table} WHERE {column} = {condition}",  # noqa: S608 - quoted identifiers
                [param],
            )
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        part = ordered[start : start + 500]
        found.update(model.objects.filter(**{f"{reference.lookup}__in": part}).values_list(reference.lookup, "id"))
    return found


# --- validating a chunk ---------------------------------------------------------------------


@dataclass
class ParsedRows:
    """A chunk after the checks that need no database (run ahead, in the reading thread)."""

    frame: Any
    bytes_read: int
    rows: np.ndarray
    raw: dict[str, list[str]]
    parsed: dict[str, parsing.Parsed]
    problems: list[tuple[str, np.ndarray, str, Any]]
    column_bad: dict[str, np.ndarray]


@dataclass
class ChunkOutcome:
    rows: np.ndarray
    bad: np.ndarray
    errors: list[errors.RowError]
    staged: dict[str, tuple[str, Any]]
    reverses: list | None


def _tag(column: Column) -> str:
    if column.reference is not None:
        return INTEGER
    kind = column.type
    if isinstance(kind, parsing.Decimal):
        return DECIMAL
    if isinstance(kind, parsing.Integer):
        return INTEGER
    if isinstance(kind, parsing.Boolean):
        return BOOLEAN
    if isinstance(kind, parsing.DateTime):
        return DATETIME
    if isinstance(kind, parsing.Date):
        return DATE
    return TEXT


def parse_chunk(spec: KindSpec, chunk: reading.Chunk, context: parsing.Context) -> ParsedRows:
    """Parse every column of a chunk and apply the rules across a row. No database access:
    this runs in the reading thread, ahead of the writes."""
    frame = chunk.frame
    n = len(frame)
    rows = frame.index.to_numpy()
    raw: dict[str, list[str]] = {}
    parsed: dict[str, parsing.Parsed] = {}
    problems: list[tuple[str, np.ndarray, str, Any]] = []
    column_bad: dict[str, np.ndarray] = {}
    for name in frame.columns:
        if name.startswith(reading.UNNAMED_PREFIX):
            filled = np.fromiter(map(bool, map(str.strip, frame[name].tolist())), dtype=bool, count=n)
            if filled.any():
                problems.append(("", filled, errors.MALFORMED, "no value in a column without a header"))
    for column in spec.columns:
        texts = frame[column.name].tolist() if column.name in frame.columns else [""] * n
        raw[column.name] = texts
        result = column.type.parse(texts, context)
        parsed[column.name] = result
        bad = np.zeros(n, dtype=bool)
        for problem in result.problems:
            problems.append((column.name, problem.mask, problem.code, problem.expected))
            bad |= problem.mask
        column_bad[column.name] = bad
        empty = result.empty if result.empty is not None else np.zeros(n, dtype=bool)
        if column.required:
            if empty.any():
                problems.append((column.name, empty, errors.REQUIRED, f"a value: {column.type.describe()}"))
        elif empty.any():
            _fill_default(result, empty, column.default)
    chunk_rows = ParsedChunk(rows, raw, parsed)
    for check in spec.row_checks:
        for problem in check(chunk_rows):
            problems.append((problem.column, problem.mask, problem.code, problem.expected))
    return ParsedRows(frame, chunk.bytes_read, rows, raw, parsed, problems, column_bad)


def complete_chunk(spec: KindSpec, chunk: ParsedRows, references: dict[str, ReferenceCache]) -> ChunkOutcome:
    """Resolve the chunk's references (one query per referenced model for keys not cached),
    then gather its errors and the values of its good rows."""
    n = len(chunk.rows)
    problems = list(chunk.problems)
    resolved: dict[str, list[int | None]] = {}
    for column in spec.columns:
        if column.reference is None:
            continue
        cache = references.setdefault(column.reference.model.__name__, ReferenceCache(column.reference))
        values = chunk.parsed[column.name].values
        keys = [None if bad else v for v, bad in zip(values, chunk.column_bad[column.name].tolist(), strict=True)]
        ids = cache.resolve(keys)
        unknown = np.fromiter((k is not None and i is None for k, i in zip(keys, ids, strict=True)), bool, count=n)
        if unknown.any():
            problems.append((column.name, unknown, column.reference.code, column.reference.expected))
        resolved[column.name] = ids
    bad = np.zeros(n, dtype=bool)
    found: list[errors.RowError] = []
    order = {c.name: i for i, c in enumerate(spec.columns)}
    for name, mask, code, expected in problems:
        bad |= mask
        texts = chunk.raw.get(name)
        sensitive = name in order and spec.columns[order[name]].sensitive
        for i in np.flatnonzero(mask).tolist():
            value = texts[i].strip() if texts is not None else ""
            if sensitive:
                value = mask_identifier(value)
            text = expected(i) if callable(expected) else expected
            found.append(errors.RowError(int(chunk.rows[i]), name, errors.shown(value), code, text))
    found.sort(key=lambda e: (e.row, order.get(e.column, -1)))
    good = ~bad
    staged: dict[str, tuple[str, Any]] = {}
    for column in spec.columns:
        if not column.field:
            continue
        values = resolved[column.name] if column.reference is not None else chunk.parsed[column.name].values
        staged[column.field] = (_tag(column), _select(values, good))
    for name, hash_name in spec.encrypted_fields.items():
        # Encrypted at rest: only the ciphertext and its keyed hash leave this function.
        plain = staged[name][1]
        if hash_name:
            staged[hash_name] = (TEXT, crypto.blind_index_many(plain))
        staged[name] = (TEXT, crypto.encrypt_many(plain))
    reverses = None
    if spec.reversal is not None:
        reverses = _select(chunk.parsed[spec.reversal.column].values, good)
    return ChunkOutcome(chunk.rows[good], bad, found, staged, reverses)


def _fill_default(result: parsing.Parsed, empty: np.ndarray, default: object) -> None:
    values = result.values
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            return  # an empty optional date-time stays NaT (NULL)
        values[empty] = default
        return
    for i in np.flatnonzero(empty).tolist():
        values[i] = default


def _select(values: Any, good: np.ndarray) -> Any:
    if good.all():
        return values
    if isinstance(values, np.ndarray):
        return values[good]
    return [v for v, keep in zip(values, good.tolist(), strict=True) if keep]
