"""Moving result frames between the database and pandas, fast, with one code path per backend.

Nightly stages read aggregates into a DataFrame and write a DataFrame of results back.
PostgreSQL gets COPY (3x faster than fetching through the cursor, ~10x faster than
bulk_create, see PERFORMANCE.md); other backends (SQLite: the demo and most tests) get the
cursor and bulk_create. Both paths sit behind the three functions below and both are tested.

- `read_frame(sql, params, columns)`: rows of a SELECT as a DataFrame;
- `bulk_replace(model, frame, where=...)`: delete the rows matching `where` and insert `frame`,
  in one transaction: readers see the old rows or the new ones, never a mix;
- `replace_partition(model, frame, key_field=..., key_value=...)`: the same for a table that is
  LIST-partitioned by `key_field` on PostgreSQL: the new rows are loaded and indexed in a table
  beside the live one, and a short transaction swaps the partitions.
- a side table loaded by many chunk tasks, for a table LIST-partitioned by a generation key
  (the nightly scores): `create_side_table` (prepare), `load_chunk` (each chunk, idempotent),
  `index_side_table` (finalize), `swap_in_side_table` (publish: the only partition from then on)
  and `drop_side_table` (a failure).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q

from brokercrm.lib import pgbinary

# The numpy binary-COPY encoder written for the demo seeder; it belongs in brokercrm/lib.
from brokercrm.lib.db import is_postgres

# PostgreSQL parses this text back to the same numeric value (at most 15 significant
# digits: money with 2 decimals is exact below 10^13).
_FLOAT_FORMAT = "%.15g"
_NULL = r"\N"


def read_frame(sql: str, params: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """The rows of SELECT `sql` as a DataFrame with the given column names.

    On PostgreSQL the rows come back as one array per column (`array_agg` over the query, one
    result row, binary protocol): about 2.5x faster than COPY TO STDOUT, whose client reads one
    message per row (~1 s per million rows in psycopg). Cast numerics to bigint (cents) or
    float8 in `sql` where speed matters: numeric arrives as Decimal. Elsewhere: the cursor.
    """
    if is_postgres():
        aliases = [f"c{index}" for index in range(len(columns))]
        aggregates = ", ".join(f"array_agg({alias})" for alias in aliases)
        select = f"SELECT {aggregates} FROM ({sql}) AS rows ({', '.join(aliases)})"  # noqa: S608
        # Django's cursors bind parameters client-side, which rules out binary results.
        with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as binary:
            binary.execute(select, params, binary=True)
            arrays = binary.fetchone()
        if arrays is None or arrays[0] is None:
            return pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
        return pd.DataFrame({name: _array(values) for name, values in zip(columns, arrays, strict=True)})
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
    return pd.DataFrame.from_records(rows, columns=columns)


def read_numbers(sql: str, params: list, columns: dict[str, str]) -> pd.DataFrame:
    """The rows of SELECT `sql` as a DataFrame of int64 ("i") and float64 ("f") columns.

    PostgreSQL: one result row holding each column as `array_send(array_agg(...))`, the binary
    array of bigint or float8: fixed-width elements, so numpy decodes a column in one call with
    no Python object per value (read_frame builds one per value; COPY TO STDOUT is read one
    message per row). The SELECT must give no NULLs (use COALESCE / nan_sql). Elsewhere: the
    cursor, NULL as NaN in float columns."""
    names = list(columns)
    if not is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        frame = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
        for name, kind in columns.items():
            if kind == "f":
                frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            else:
                frame[name] = pd.to_numeric(frame[name]).astype("int64")
        return frame
    aliases = [f"c{index}" for index in range(len(names))]
    arrays = ", ".join(
        f"array_send(array_agg(CAST({alias} AS {'DOUBLE PRECISION' if kind == 'f' else 'BIGINT'})))"
        for alias, kind in zip(aliases, columns.values(), strict=True)
    )
    statement = f"SELECT {arrays} FROM ({sql}) AS rows ({', '.join(aliases)})"  # noqa: S608
    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as binary:
        binary.execute(statement, params, binary=True)
        payloads = binary.fetchone()
    out = {}
    for name, kind, payload in zip(names, columns.values(), payloads, strict=True):
        out[name] = _decode_array(payload, kind)
    return pd.DataFrame(out)


def _decode_array(payload: bytes | None, kind: str) -> np.ndarray:
    """A 1-D bigint / float8 array in PostgreSQL's binary format -> numpy (no NULL elements)."""
    dtype = "float64" if kind == "f" else "int64"
    if payload is None:
        return np.empty(0, dtype=dtype)
    data = bytes(payload)
    header = np.frombuffer(data, dtype=">i4", count=3)
    ndim, has_null = int(header[0]), int(header[1])
    if ndim == 0:
        return np.empty(0, dtype=dtype)
    if ndim != 1 or has_null:
        raise ValueError("read_numbers: a column has NULLs (use nan_sql / COALESCE)")
    count = int(np.frombuffer(data, dtype=">i4", count=1, offset=12)[0])
    records = np.frombuffer(
        data, dtype=np.dtype([("len", ">i4"), ("value", ">f8" if kind == "f" else ">i8")]), count=count, offset=20
    )
    return records["value"].astype(dtype)


def nan_sql(expression: str) -> str:
    """A float expression with NULL as NaN on PostgreSQL (read_numbers needs no NULLs there;
    elsewhere a NULL is read as NaN)."""
    if is_postgres():
        return f"COALESCE(CAST({expression} AS DOUBLE PRECISION), 'NaN'::float8)"
    return f"CAST({expression} AS DOUBLE PRECISION)"


def _array(values: list) -> np.ndarray:
    """A numpy column from a list psycopg returned (None for NULL)."""
    if values and any(value is None for value in values):
        return np.array(values, dtype=object)
    return np.array(values)


def _fields_by_attname(model: type[models.Model]) -> dict[str, models.Field]:
    return {field.attname: field for field in model._meta.concrete_fields}


def _db_columns(model: type[models.Model], frame: pd.DataFrame) -> list[str]:
    fields = _fields_by_attname(model)
    return [fields[name].column for name in frame.columns]


def _json_columns(model: type[models.Model], frame: pd.DataFrame) -> list[str]:
    fields = _fields_by_attname(model)
    return [name for name in frame.columns if isinstance(fields[name], models.JSONField)]


def _copy_frame(table: str, model: type[models.Model], frame: pd.DataFrame) -> None:
    """COPY the frame's rows into `table`: binary COPY encoded column-wise by numpy when every
    column has a fixed-format type (~10x faster than writing CSV for a million rows), else CSV.
    """
    column_list = ", ".join(connection.ops.quote_name(column) for column in _db_columns(model, frame))
    target = f"COPY {connection.ops.quote_name(table)} ({column_list}) FROM STDIN"
    payload = _binary_payload(model, frame)
    if payload is not None:
        with connection.cursor() as cursor, cursor.cursor.copy(f"{target} WITH (FORMAT binary)") as copy:
            for start in range(0, len(payload), 1 << 22):
                copy.write(payload[start : start + (1 << 22)])
        return
    _copy_frame_csv(target, model, frame)


def _copy_frame_csv(target: str, model: type[models.Model], frame: pd.DataFrame) -> None:
    """CSV COPY. NULL is written as \\N, so an empty string stays an empty string (in plain
    CSV an unquoted empty field would be NULL); JSON columns are serialised here."""
    out = frame.copy()
    for name in _json_columns(model, frame):
        out[name] = out[name].map(lambda value: None if value is None else json.dumps(value, separators=(",", ":")))
    buffer = io.StringIO()
    out.to_csv(buffer, header=False, index=False, float_format=_FLOAT_FORMAT, na_rep=_NULL)
    buffer.seek(0)
    with connection.cursor() as cursor, cursor.cursor.copy(f"{target} WITH (FORMAT csv, NULL '{_NULL}')") as copy:
        while block := buffer.read(1 << 20):
            copy.write(block)


def copy_numbers(table: str, frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """PostgreSQL: binary COPY of a frame's int64 ("i": bigint) and float64 ("f": double
    precision) columns, no NULLs, into `table` (columns named like the frame's): the numbers
    go over as they are, encoded by numpy (the reverse of read_numbers)."""
    names = list(columns)
    quote = connection.ops.quote_name
    if frame.empty:
        return
    blocks = [
        _encode_float(frame[name].to_numpy("float64"), None)
        if kind == "f"
        else pgbinary.encode_int(frame[name].to_numpy("int64"), size=8)
        for name, kind in columns.items()
    ]
    payload = pgbinary.SIGNATURE + pgbinary.encode_rows(blocks) + pgbinary.TRAILER
    statement = f"COPY {quote(table)} ({', '.join(quote(name) for name in names)}) FROM STDIN WITH (FORMAT binary)"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for start in range(0, len(payload), 1 << 22):
            copy.write(payload[start : start + (1 << 22)])


def _encode_float(values: np.ndarray, is_null: np.ndarray | None) -> pgbinary.Block:
    out = np.empty(len(values), dtype=[("len", ">i4"), ("value", ">f8")])
    out["len"] = 8
    out["value"] = values
    matrix = out.view(np.uint8).reshape(len(values), 12)
    if is_null is None or not is_null.any():
        return matrix, None
    out["len"][is_null] = -1
    return matrix, np.where(is_null, 4, 12)


def _days(series: pd.Series) -> np.ndarray:
    """datetime64[D] values of a column of dates (NULL as 2000-01-01; masked by the caller)."""
    if np.issubdtype(series.dtype, np.datetime64):
        return series.to_numpy().astype("datetime64[D]")
    if len(series) and series.notna().all() and (series == series.iloc[0]).all():
        return np.full(len(series), np.datetime64(series.iloc[0], "D"))  # one date: the usual case
    return pd.to_datetime(series.where(series.notna(), dt.date(2000, 1, 1))).to_numpy().astype("datetime64[D]")


_BINARY_TYPES = {
    "bigint",
    "integer",
    "smallint",
    "double precision",
    "numeric",
    "date",
    "varchar",
    "text",
    "boolean",
    "jsonb",
}
_NULL_FIELD = np.frombuffer((-1).to_bytes(4, "big", signed=True), dtype=np.uint8)


def _binary_payload(model: type[models.Model], frame: pd.DataFrame) -> bytes | None:
    """The frame as PostgreSQL binary COPY data, or None if a column's type is not supported
    (json, arrays ...; jsonb is supported). Money (numeric) columns hold currency units as floats
    and are rounded to the field's decimal places.

    Each column is encoded once over every row, its NULLs marked in place (a bare -1 length),
    and pgbinary.encode_rows assembles the rows, grouped by layout. (Encoding each group of
    rows with the same NULL pattern apart, a pandas row selection and the columns' encoding
    per group, took ~80 ms for a 50,000-row chunk of ClientActivity with its 8 NULL patterns:
    ~45 ms now.)"""
    fields = _fields_by_attname(model)
    types = {name: (fields[name].db_type(connection) or "").split("(")[0] for name in frame.columns}
    if any(db_type not in _BINARY_TYPES for db_type in types.values()):
        return None
    if frame.empty:
        return pgbinary.SIGNATURE + pgbinary.TRAILER
    blocks = []
    for name in frame.columns:
        series = frame[name]
        is_null = series.isna().to_numpy() if series.hasnans else None
        if is_null is not None and is_null.all():
            blocks.append((np.broadcast_to(_NULL_FIELD, (len(series), 4)), None))
        else:
            blocks.append(_column_block(series, types[name], fields[name], is_null))
    return b"".join((pgbinary.SIGNATURE, pgbinary.encode_rows(blocks, by_layout=True), pgbinary.TRAILER))


def _column_block(
    series: pd.Series, db_type: str, field: models.Field, is_null: np.ndarray | None = None
) -> pgbinary.Block:
    """One column encoded for binary COPY, the rows of `is_null` as NULL (their values are
    replaced by a placeholder first: NaN has no integer, None no date)."""
    if db_type in ("bigint", "integer", "smallint"):
        size = {"bigint": 8, "integer": 4, "smallint": 2}[db_type]
        values = series.to_numpy(dtype="int64", na_value=0) if is_null is not None else series.to_numpy("int64")
        return pgbinary.encode_int(values, size=size, is_null=is_null)
    if db_type == "double precision":
        return _encode_float(series.to_numpy(dtype="float64", na_value=0.0), is_null)
    if db_type == "numeric":
        values = series.to_numpy(dtype="float64", na_value=0.0)
        scaled = np.rint(values * 10**field.decimal_places).astype("int64")
        return pgbinary.encode_numeric(scaled, scale=field.decimal_places, is_null=is_null)
    if db_type == "date":
        days = _days(series)
        if is_null is not None:
            days = np.where(is_null, np.datetime64("2000-01-01", "D"), days)
        return pgbinary.encode_date(days, is_null=is_null)
    if db_type == "boolean":
        values = series.to_numpy(dtype=bool, na_value=False) if is_null is not None else series.to_numpy(bool)
        return pgbinary.encode_bool(values, is_null=is_null)
    if db_type == "jsonb":
        # jsonb's binary input is a version byte (1) and the JSON text.
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
        nulls = is_null if is_null is not None else np.zeros(len(series), dtype=bool)
        texts = ["" if null else dumps(value) for value, null in zip(series, nulls, strict=True)]
        return pgbinary.encode_bytes(np.array(texts, dtype=object), prefix=b"\x01", is_null=is_null)
    return _encode_text(series, is_null)


def _encode_text(series: pd.Series, is_null: np.ndarray | None) -> pgbinary.Block:
    """A text column (values as str()), each distinct value UTF-8 encoded once: the columns
    written are codes and labels (a segment, a tier name), so encoding the strings of every
    row (~25 ms a 50,000-row chunk) is mostly repeated work; taking the rows' bytes from the
    distinct values' block costs ~2 ms."""
    codes, distinct = pd.factorize(series.astype(str).to_numpy())
    block, used = pgbinary.encode_bytes(np.asarray(distinct, dtype=object))
    block, used = block[codes], used[codes]
    if is_null is None or not is_null.any():
        return block, used
    block[is_null, :4] = _NULL_FIELD
    return block, np.where(is_null, 4, used)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as dicts of plain Python values with None for missing ones."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {key: (value.item() if isinstance(value, np.generic) else value) for key, value in record.items()}
        for record in clean.to_dict("records")
    ]


def _insert(model: type[models.Model], frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    if is_postgres():
        _copy_frame(model._meta.db_table, model, frame)
    else:
        model.objects.bulk_create([model(**record) for record in _records(frame)], batch_size=2000)


def bulk_replace(model: type[models.Model], frame: pd.DataFrame, *, where: Q | dict[str, Any]) -> int:
    """Replace the rows of `model` matching `where` with the rows of `frame`; returns rows written.

    One transaction: a crash before the commit leaves the old rows. Frame columns are field
    names (`client_id` for a foreign key).
    """
    condition = where if isinstance(where, Q) else Q(**where)
    with transaction.atomic():
        model.objects.filter(condition).delete()
        _insert(model, frame)
    return len(frame)


def _is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def partitioned(model: type[models.Model]) -> bool:
    """Whether `model`'s table is partitioned (PostgreSQL, after its partitioning migration)."""
    return is_postgres() and _is_partitioned(model._meta.db_table)


def partition_name(model: type[models.Model], key_value: dt.date | int) -> str:
    """`<table>_p20261120` for a date key, `<table>_p<n>` for an integer key (a generation)."""
    suffix = f"{key_value:%Y%m%d}" if isinstance(key_value, dt.date) else str(int(key_value))
    return f"{model._meta.db_table}_p{suffix}"


def _key_literal(value: dt.date | int) -> str:
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(int(value))
    raise TypeError("partition keys are dates or integers")


def _create_side_table(cursor: Any, parent: str, side: str, key_column: str, literal: str) -> None:
    """A table shaped like the parent, with no index, holding only `literal` keys: the CHECK lets
    ATTACH skip its validation scan."""
    q = connection.ops.quote_name
    cursor.execute(
        f"CREATE TABLE {q(side)} (LIKE {q(parent)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        f"CHECK ({q(key_column)} IS NOT NULL AND {q(key_column)} = {literal}))"
    )


def _index_and_analyze(parent: str, side: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        _index_partition_like_parent(cursor, parent, side)
        cursor.execute(f"ANALYZE {connection.ops.quote_name(side)}")


_INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ ")


def _index_partition_like_parent(cursor: Any, parent: str, side: str) -> None:
    """Give the new table the parent's indexes, so ATTACH adopts them instead of building them
    under the swap's lock. Primary key and unique constraints become constraints again."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid), i.indisprimary, c.contype, "
        "ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) "
        "      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) "
        "FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
        "WHERE i.indrelid = to_regclass(%s)",
        [parent],
    )
    quoted_side = connection.ops.quote_name(side)
    for definition, is_primary, contype, columns in cursor.fetchall():
        column_list = ", ".join(connection.ops.quote_name(column) for column in columns)
        if is_primary:
            cursor.execute(f"ALTER TABLE {quoted_side} ADD PRIMARY KEY ({column_list})")
        elif contype == "u":
            cursor.execute(f"ALTER TABLE {quoted_side} ADD UNIQUE ({column_list})")
        else:
            match = _INDEX_HEAD.match(definition)
            if match is None:
                raise RuntimeError(f"Unexpected index definition on {parent}: {definition}")
            cursor.execute(f"CREATE {match.group(1) or ''}INDEX ON {quoted_side} " + definition[match.end() :])


def replace_partition(
    model: type[models.Model],
    frame: pd.DataFrame,
    *,
    key_field: str,
    key_value: dt.date,
    in_swap: Callable[[], None] | None = None,
) -> int:
    """Replace every row whose `key_field` equals `key_value` with the rows of `frame`.

    PostgreSQL, table LIST-partitioned by `key_field`: the rows are copied into a new table
    beside the live one and indexed there; then one short transaction detaches and drops the
    old partition for `key_value` (if any), attaches the new one and runs `in_swap` (publish the
    date). Readers see the old partition or the new one. Elsewhere: delete + insert + `in_swap`
    in one transaction. Any failure leaves the previous rows in place.
    """
    if not partitioned(model):
        with transaction.atomic():
            written = bulk_replace(model, frame, where={key_field: key_value})
            if in_swap is not None:
                in_swap()
        return written

    parent = model._meta.db_table
    canonical = partition_name(model, key_value)
    side = f"{canonical}_n{uuid.uuid4().hex[:8]}"
    literal = _key_literal(key_value)
    q = connection.ops.quote_name
    try:
        with connection.cursor() as cursor:
            _create_side_table(cursor, parent, side, model._meta.get_field(key_field).column, literal)
        _copy_frame(side, model, frame)
        _index_and_analyze(parent, side)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '60s'")
            if canonical in dict(_partitions(cursor, parent)):
                cursor.execute(f"ALTER TABLE {q(parent)} DETACH PARTITION {q(canonical)}")
                cursor.execute(f"DROP TABLE {q(canonical)}")
            cursor.execute(f"ALTER TABLE {q(parent)} ATTACH PARTITION {q(side)} FOR VALUES IN ({literal})")
            cursor.execute(f"ALTER TABLE {q(side)} RENAME TO {q(canonical)}")
            if in_swap is not None:
                in_swap()
    except BaseException:
        _drop_quietly(side)
        raise
    return len(frame)


def _partitions(cursor: Any, parent: str) -> list[tuple[str, bool]]:
    """(name, is the DEFAULT partition) of every partition attached to `parent`."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s) "
        "ORDER BY c.relname",
        [parent],
    )
    return [(name, bool(is_default)) for name, is_default in cursor.fetchall()]


# --- a side table loaded by chunks, one partition per generation ----------------------------
#
# The nightly scores write a new generation (~1M rows) per run, from chunk tasks that may run in
# parallel worker processes. Each generation gets a side table named like its partition
# (`<table>_p<generation>`, so every process finds it), created unindexed by the stage's
# prepare, filled by COPY, indexed once at the end (four indexes built over 1M sorted keys cost a
# fraction of maintaining them row by row through the COPY) and attached as the only partition
# by the publication. Deleting a published generation's rows is then a DROP TABLE.
#
# A chunk may run twice (a redelivered or retried task). Without an index, deleting its range
# before the COPY would scan the whole side table, once per chunk. Instead each chunk records
# its range in a small marker table (`<side>_chunks`) in the same transaction as its COPY: a
# range with no marker has no rows (an attempt that died rolled back its rows and its marker
# together), so the first attempt of every chunk writes without deleting; only a chunk whose
# range is marked (an earlier attempt committed) deletes that range first.


def _markers(side: str) -> str:
    return f"{side}_chunks"


def create_side_table(model: type[models.Model], *, key_field: str, key_value: int) -> str | None:
    """Create the unindexed side table of `key_value` and its chunk markers; returns its name, or
    None when the table is not partitioned (SQLite: the chunks write the table itself).

    Side tables left by loads that crashed (no cleanup ran) are dropped first: one load per table
    runs at a time (the pipeline lock)."""
    if not partitioned(model):
        return None
    drop_orphan_partitions(model)
    side = partition_name(model, key_value)
    q = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {q(side)}, {q(_markers(side))}")
        key_column = model._meta.get_field(key_field).column
        _create_side_table(cursor, model._meta.db_table, side, key_column, _key_literal(key_value))
        cursor.execute(f"CREATE TABLE {q(_markers(side))} (low bigint NOT NULL, high bigint NOT NULL)")
    return side


def load_table(model: type[models.Model], key_value: int) -> str:
    """Where the rows of generation `key_value` are before their publication (and after it,
    as the partition): its side table when the table is partitioned, else the table itself."""
    return partition_name(model, key_value) if partitioned(model) else model._meta.db_table


def load_chunk(
    model: type[models.Model],
    frame: pd.DataFrame,
    *,
    key_value: int,
    range_field: str,
    low: int,
    high: int,
    copy: Callable[[str], None] | None = None,
) -> int:
    """COPY one chunk's rows (`range_field` between `low` and `high`) into the side table of
    `key_value`, idempotently (see the comment above create_side_table); returns rows written.

    `copy(table)` writes the frame into `table` when the default COPY of `frame` will not do."""
    side = partition_name(model, key_value)
    q = connection.ops.quote_name
    column = q(model._meta.get_field(range_field).column)
    with transaction.atomic(), connection.cursor() as cursor:
        # Two deliveries of one chunk at once (a broker may deliver twice) must not both miss
        # each other's marker: the second waits for the first to commit, then sees its marker.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{side}:{low}"])
        cursor.execute(
            f"SELECT 1 FROM {q(_markers(side))} WHERE low <= %s AND high >= %s LIMIT 1",  # noqa: S608
            [high, low],
        )
        if cursor.fetchone() is not None:
            cursor.execute(f"DELETE FROM {q(side)} WHERE {column} >= %s AND {column} <= %s", [low, high])  # noqa: S608
            cursor.execute(f"DELETE FROM {q(_markers(side))} WHERE low >= %s AND high <= %s", [low, high])  # noqa: S608
        if not frame.empty:
            (copy or (lambda table: _copy_frame(table, model, frame)))(side)
        cursor.execute(f"INSERT INTO {q(_markers(side))} (low, high) VALUES (%s, %s)", [low, high])  # noqa: S608
    return len(frame)


def index_side_table(model: type[models.Model], *, key_value: int) -> None:
    """After the last chunk: the parent's indexes and fresh statistics on the side table (ATTACH
    adopts the indexes; queries on the new rows before and after the publication plan on real
    numbers). The chunk markers are no longer needed."""
    side = partition_name(model, key_value)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(_markers(side))}")
    _index_and_analyze(model._meta.db_table, side)


def swap_in_side_table(model: type[models.Model], *, key_value: int, in_swap: Callable[[], None] | None = None) -> None:
    """Make the side table of `key_value` the table's only partition, in one transaction that also
    runs `in_swap` (publish): every other partition is detached and dropped, the DEFAULT partition
    emptied (rows written outside a nightly load, e.g. by hand or by tests), the side table
    attached (its CHECK spares ATTACH the validation scan; its indexes are adopted). Readers see
    the old generation or the new one. A failure rolls it all back: the old partition stays."""
    parent = model._meta.db_table
    side = partition_name(model, key_value)
    q = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '60s'")
        partitions = _partitions(cursor, parent)
        for name, is_default in sorted(partitions, key=lambda item: item[1]):  # DETACH (parent locked) first
            if is_default:
                cursor.execute(f"DELETE FROM {q(name)}")  # noqa: S608
            elif name != side:
                cursor.execute(f"ALTER TABLE {q(parent)} DETACH PARTITION {q(name)}")
                cursor.execute(f"DROP TABLE {q(name)}")
        if side not in dict(partitions):
            cursor.execute(
                f"ALTER TABLE {q(parent)} ATTACH PARTITION {q(side)} FOR VALUES IN ({_key_literal(key_value)})"
            )
        if in_swap is not None:
            in_swap()


def drop_side_table(model: type[models.Model], *, key_value: int) -> bool:
    """Drop the side table of `key_value` and its markers unless it is attached (published);
    returns whether it was dropped. A failed stage's cleanup: the published generation stays."""
    if not partitioned(model):
        return False
    side = partition_name(model, key_value)
    with connection.cursor() as cursor:
        if side in dict(_partitions(cursor, model._meta.db_table)):
            return False
    _drop_quietly(side)
    _drop_quietly(_markers(side))
    return True


def drop_table(table: str) -> None:
    """DROP TABLE IF EXISTS `table` (a stage's staging table)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")


def _drop_quietly(table: str) -> None:
    """Best effort: a table left behind by a crash is dropped by `drop_orphan_partitions`."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")
    except Exception:  # noqa: S110 - the original error is what the caller must see
        pass


def drop_orphan_partitions(model: type[models.Model]) -> int:
    """Drop tables left beside a partitioned table by loads that crashed before their swap: every
    table named like one of its partitions (`<table>_p...`: side tables, chunk markers) that is
    not attached. Call it only when no load of the table is running (a stage's prepare)."""
    if not partitioned(model):
        return 0
    parent = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE %s "
            "AND c.relnamespace = current_schema()::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
            [parent.replace("_", r"\_") + r"\_p%"],
        )
        orphans = [row[0] for row in cursor.fetchall()]
        for table in orphans:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")
    return len(orphans)


def drop_partition(model: type[models.Model], *, key_field: str, key_value: dt.date) -> None:
    """Remove every row whose `key_field` equals `key_value` (PostgreSQL: drop the partition)."""
    if partitioned(model):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(partition_name(model, key_value))}")
    else:
        model.objects.filter(**{key_field: key_value}).delete()


@contextmanager
def session_work_mem() -> Iterator[None]:
    """Raise PostgreSQL's work_mem for this connection meanwhile (setting NIGHTLY_WORK_MEM,
    default 256MB): the nightly aggregations and sorts of ~1M groups then stay in memory,
    which roughly halves their time (PERFORMANCE.md). No-op elsewhere."""
    if not is_postgres():
        yield
        return
    value = str(getattr(settings, "NIGHTLY_WORK_MEM", "256MB"))
    if not re.fullmatch(r"\d+(kB|MB|GB)", value):
        raise ValueError(f"NIGHTLY_WORK_MEM must look like 256MB, not {value!r}")
    with connection.cursor() as cursor:
        cursor.execute(f"SET work_mem = '{value}'")
    try:
        yield
    finally:
        # In a failed transaction the SET is rolled back with it and RESET cannot run.
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET work_mem")


@contextmanager
def no_jit() -> Iterator[None]:
    """Switch PostgreSQL's JIT off for this connection meanwhile: the nightly chunk queries
    (tens of thousands of rows, large cost estimates) otherwise pay ~10-100 ms of compilation
    each, more than they gain. No-op elsewhere."""
    if not is_postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET jit")
