"""Bulk writers for generated tables: PostgreSQL COPY or SQLite executemany.

`bulk_writer()` is the one place that picks the path. Both writers take a *frame*: a
dict from a model's attribute names (``client_id``, ``executed_at`` ...) to numpy
arrays, one value per row, in the representation below. Every concrete column must be
present: a frame is checked against the model so a missing field fails loudly.

=================  =================================================================
field              frame value
=================  =================================================================
integers, FKs      int array
BooleanField       bool array
DateField          datetime64[D]
DateTimeField      datetime64[us], UTC
DecimalField       int64 in units of 10**-decimal_places (cents for 2 places)
Char/Text/JSON     str array (StringDType, ``U`` or object) or ASCII ``S`` bytes
=================  =================================================================
A nullable column is given as `Nullable(values, is_null)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.apps import apps
from django.core.management.color import no_style
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from brokercrm.lib import pgbinary

_COPY_ROWS_PER_WRITE = 200_000


@dataclass(frozen=True)
class Nullable:
    values: np.ndarray
    is_null: np.ndarray


Frame = dict[str, "np.ndarray | Nullable"]


@dataclass(frozen=True)
class Column:
    attname: str
    column: str
    kind: str  # int2 int4 int8 bool date timestamp numeric text json
    scale: int = 0


_KINDS = {
    "AutoField": "int4",
    "IntegerField": "int4",
    "PositiveIntegerField": "int4",
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "PositiveBigIntegerField": "int8",
    "SmallAutoField": "int2",
    "SmallIntegerField": "int2",
    "PositiveSmallIntegerField": "int2",
    "BooleanField": "bool",
    "DateField": "date",
    "DateTimeField": "timestamp",
    "DecimalField": "numeric",
    "CharField": "text",
    "TextField": "text",
    "EmailField": "text",
    "JSONField": "json",
}


def table_columns(model: type[models.Model]) -> list[Column]:
    """The stored columns of `model` (generated columns excluded), in field order."""
    columns = []
    for field in model._meta.concrete_fields:
        if getattr(field, "generated", False):
            continue
        typed = field.target_field if field.is_relation else field
        kind = _KINDS[typed.get_internal_type()]
        columns.append(Column(field.attname, field.column, kind, getattr(typed, "decimal_places", 0) or 0))
    return columns


def _checked(model: type[models.Model], frame: Frame) -> tuple[list[Column], int]:
    columns = table_columns(model)
    expected = {column.attname for column in columns}
    if set(frame) != expected:
        missing, unexpected = sorted(expected - set(frame)), sorted(set(frame) - expected)
        raise ValueError(f"{model.__name__} frame: missing {missing}, unexpected {unexpected}")
    lengths = {len(value.values if isinstance(value, Nullable) else value) for value in frame.values()}
    if len(lengths) != 1:
        raise ValueError(f"{model.__name__} frame: columns of different lengths {sorted(lengths)}")
    return columns, lengths.pop()


class BulkWriter(Protocol):
    vendor: str

    def delete_all(self, models_: list[type[models.Model]]) -> None: ...

    def loading(self, models_: list[type[models.Model]]) -> contextlib.AbstractContextManager[None]: ...

    def insert(self, model: type[models.Model], frame: Frame) -> int: ...


def bulk_writer(connection: BaseDatabaseWrapper) -> BulkWriter:
    """The writer for `connection`: COPY on PostgreSQL, executemany on SQLite."""
    if connection.vendor == "postgresql":
        return PostgresCopyWriter(connection)
    if connection.vendor == "sqlite":
        return SqliteWriter(connection)
    raise NotImplementedError(f"seed_demo supports PostgreSQL and SQLite, not {connection.vendor}")


def dependent_models(models_: list[type[models.Model]]) -> list[type[models.Model]]:
    """`models_` plus every installed model that points at them through a foreign key,
    directly or not: the rows TRUNCATE ... CASCADE would remove."""
    found = list(models_)
    changed = True
    while changed:
        changed = False
        for model in apps.get_models(include_auto_created=True):
            if model in found:
                continue
            if any(f.is_relation and f.many_to_one and f.related_model in found for f in model._meta.concrete_fields):
                found.append(model)
                changed = True
    return found


class PostgresCopyWriter:
    """COPY ... FROM STDIN (FORMAT BINARY), the rows encoded by numpy (see pgbinary).

    Into a table that was empty when the load began, secondary indexes, unique and foreign
    key constraints are dropped for the load and rebuilt after it (PostgreSQL's "Populating
    a Database" advice): building an index by sorting once is several times faster than
    maintaining it row by row, and a deferred foreign key would otherwise queue one
    trigger event per row until commit. Everything happens in the caller's transaction,
    so a failed load leaves the old tables and their indexes untouched.
    """

    vendor = "postgresql"

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def _execute(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def delete_all(self, models_: list[type[models.Model]]) -> None:
        tables = ", ".join(self.connection.ops.quote_name(m._meta.db_table) for m in models_)
        # TRUNCATE refuses tables with deferred foreign-key checks still pending in this
        # transaction: run them first.
        self._execute("SET CONSTRAINTS ALL IMMEDIATE")
        self._execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        self._execute("SET CONSTRAINTS ALL DEFERRED")

    @contextlib.contextmanager
    def loading(self, models_: list[type[models.Model]]) -> Iterator[None]:
        self._execute("SET LOCAL synchronous_commit = off")
        self._execute("SET LOCAL maintenance_work_mem = '512MB'")
        # ALTER TABLE refuses to run while rows inserted earlier in the transaction still
        # wait for their deferred foreign-key checks: run those checks now.
        self._execute("SET CONSTRAINTS ALL IMMEDIATE")
        rebuild: list[str] = []
        for model in models_:
            table = model._meta.db_table
            if self._execute(f"SELECT EXISTS (SELECT 1 FROM {self.connection.ops.quote_name(table)})")[0][0]:  # noqa: S608
                continue
            rebuild.extend(self._drop_secondary_structures(table))
        yield
        for statement in rebuild:
            self._execute(statement)
        for sql in self.connection.ops.sequence_reset_sql(no_style(), models_):
            self._execute(sql)
        for model in models_:
            self._execute(f"ANALYZE {self.connection.ops.quote_name(model._meta.db_table)}")
        self._execute("SET CONSTRAINTS ALL DEFERRED")

    def _drop_secondary_structures(self, table: str) -> list[str]:
        """Drop FK and unique constraints and plain indexes of `table`; return the
        statements that recreate them, in a valid order (indexes, uniques, FKs)."""
        qtable = self.connection.ops.quote_name(table)
        constraints = self._execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype, conname",
            [table],
        )
        indexes = self._execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "                WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid) "
            "ORDER BY i.relname",
            [table],
        )
        for name, _kind, _definition in constraints:
            self._execute(f"ALTER TABLE {qtable} DROP CONSTRAINT {self.connection.ops.quote_name(name)}")
        for name, _definition in indexes:
            self._execute(f"DROP INDEX {self.connection.ops.quote_name(name)}")
        recreate = [definition for _name, definition in indexes]
        for kind in ("u", "f"):
            recreate += [
                f"ALTER TABLE {qtable} ADD CONSTRAINT {self.connection.ops.quote_name(name)} {definition}"
                for name, k, definition in constraints
                if k == kind
            ]
        return recreate

    def insert(self, model: type[models.Model], frame: Frame) -> int:
        columns, rows = _checked(model, frame)
        if rows == 0:
            return 0
        qn = self.connection.ops.quote_name
        sql = f"COPY {qn(model._meta.db_table)} ({', '.join(qn(c.column) for c in columns)}) FROM STDIN (FORMAT BINARY)"
        self.connection.ensure_connection()
        raw = self.connection.connection
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(pgbinary.SIGNATURE)
            for start in range(0, rows, _COPY_ROWS_PER_WRITE):
                part = slice(start, start + _COPY_ROWS_PER_WRITE)
                copy.write(pgbinary.encode_rows([_pg_block(c, frame[c.attname], part) for c in columns]))
            copy.write(pgbinary.TRAILER)
        return rows


def _pg_block(column: Column, value: np.ndarray | Nullable, part: slice) -> pgbinary.Block:
    is_null = value.is_null[part] if isinstance(value, Nullable) else None
    values = (value.values if isinstance(value, Nullable) else value)[part]
    kind = column.kind
    if kind in ("int2", "int4", "int8"):
        return pgbinary.encode_int(values, size=int(kind[3]), is_null=is_null)
    if kind == "bool":
        return pgbinary.encode_bool(values, is_null=is_null)
    if kind == "date":
        return pgbinary.encode_date(values, is_null=is_null)
    if kind == "timestamp":
        return pgbinary.encode_timestamp(values, is_null=is_null)
    if kind == "numeric":
        return pgbinary.encode_numeric(values, scale=column.scale, is_null=is_null)
    if kind == "json":
        return pgbinary.encode_bytes(values, prefix=b"\x01", is_null=is_null)
    return pgbinary.encode_bytes(values, is_null=is_null)


class SqliteWriter:
    """executemany INSERTs inside the caller's transaction, values in the text forms
    Django itself stores (UTC datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]')."""

    vendor = "sqlite"

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def delete_all(self, models_: list[type[models.Model]]) -> None:
        # Foreign keys are DEFERRABLE INITIALLY DEFERRED on SQLite: inside the
        # transaction the order of the deletes does not matter.
        with self.connection.cursor() as cursor:
            for model in dependent_models(models_):
                cursor.execute(f"DELETE FROM {self.connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608

    @contextlib.contextmanager
    def loading(self, models_: list[type[models.Model]]) -> Iterator[None]:
        yield

    def insert(self, model: type[models.Model], frame: Frame) -> int:
        columns, rows = _checked(model, frame)
        if rows == 0:
            return 0
        qn = self.connection.ops.quote_name
        sql = (
            f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c.column) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        values = [_sqlite_values(c, frame[c.attname]) for c in columns]
        self.connection.ensure_connection()
        cursor = self.connection.connection.cursor()
        try:
            cursor.executemany(sql, zip(*values, strict=True))
        finally:
            cursor.close()
        return rows


def _sqlite_values(column: Column, value: np.ndarray | Nullable) -> list:
    is_null = value.is_null if isinstance(value, Nullable) else None
    values = value.values if isinstance(value, Nullable) else value
    kind = column.kind
    if kind in ("int2", "int4", "int8") or kind == "bool":
        out = values.astype(np.int64).tolist()
    elif kind == "date":
        out = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").tolist()
    elif kind == "timestamp":
        out = _sqlite_datetimes(values).tolist()
    elif kind == "numeric":
        out = (values.astype(np.int64) / 10**column.scale).tolist()
    elif values.dtype.kind == "S":
        out = values.astype(str).tolist()
    else:
        out = values.astype(str).tolist() if values.dtype.kind != "O" else list(values)
    if is_null is not None:
        for index in np.flatnonzero(is_null).tolist():
            out[index] = None
    return out


def _sqlite_datetimes(values: np.ndarray) -> np.ndarray:
    micros = values.astype("datetime64[us]")
    with_fraction = np.datetime_as_string(micros, unit="us")
    whole = np.datetime_as_string(micros, unit="s")
    text = np.where(micros.astype(np.int64) % 1_000_000 == 0, whole, with_fraction)
    return np.strings.replace(text, "T", " ")
