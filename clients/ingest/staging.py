"""The staging tables: valid rows wait there, are classified there, and move on by INSERT.

Each chunk's valid rows are staged in a temporary table typed like the target (same column
types, so what is compared is exactly what would be stored; an encrypted column, the KYC
id_number, arrives as ciphertext plus its keyed hash and is compared by the hash, since its
ciphertext differs on every write): on PostgreSQL by COPY,
elsewhere (SQLite: development, the demo, the fast test suite) by executemany. Everything
after that is the same SQL on both, per chunk:

1. rows whose key is already held: identical -> duplicate (skipped), different -> conflict
   (or an update, when the batch allows updates of reference data). Rows written by earlier
   chunks of the same file are held too (same transaction), so a key repeated anywhere in
   the file is caught here; the id watermark taken at the start tells the two apart;
2. keys repeated within the chunk: the first row counts; an identical repeat is a
   duplicate, a different one a conflict;
3. the remaining rows go into the target in file order: one INSERT ... SELECT per chunk.

Reversing rows (ledger kinds) wait in a second table until the whole file is read, since
their original may come later in the file; then they go through the same steps, plus the
reversal rules: the original must exist (held or written by this batch), must not be a
reversal itself nor reversed already, and the reversal must repeat / negate it.

Every import of a kind holds a transaction-level advisory lock (PostgreSQL) from the first
classification to commit, so what was classified as new is still new when it is written;
the target's unique constraints stay the last word: a row slipping past raises, and the
batch fails whole. Nothing here commits: the caller holds the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from brokercrm.lib import crypto
from brokercrm.lib.db import is_postgres
from clients.ingest import errors
from clients.ingest.kinds import KindSpec
from clients.models import Client, ImportBatch, KYCProfile, mask_identifier

ROW = "_row"
REVERSES = "_reverses"
_FETCH = 10_000

# The tag of each staged value, telling the writer how to serialise it.
TEXT, DECIMAL, INTEGER, BOOLEAN, DATE, DATETIME = "text", "decimal", "integer", "boolean", "date", "datetime"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


@dataclass
class Classification:
    """What staged rows turned out to be; accumulates over the chunks of a batch."""

    duplicates: int = 0
    conflicts: int = 0
    updated: int = 0
    written: int = 0
    errors: list[errors.RowError] = field(default_factory=list)
    duplicate_sample: list[dict[str, object]] = field(default_factory=list)

    def take_errors(self) -> list[errors.RowError]:
        found, self.errors = sorted(self.errors, key=lambda e: e.row), []
        return found


class StageTable:
    """The temporary tables of one batch: `ingest_stage_<id>` (the chunk), `ingest_skip_<id>`
    (rows of the chunk not to write) and, for ledger kinds, `ingest_pending_<id>` (reversals)."""

    def __init__(self, spec: KindSpec, batch_id: int) -> None:
        self.spec = spec
        self.batch_id = batch_id
        self.name = f"ingest_stage_{batch_id}"
        self.skip = f"ingest_skip_{batch_id}"
        self.pending = f"ingest_pending_{batch_id}"
        self.fields = spec.fields
        self.columns = {f: spec.model._meta.get_field(f) for f in self.fields}
        # Encrypted fields: compared through their hash, written (and updated) as ciphertext.
        self.encrypted = spec.encrypted_fields
        self._hash_of = {h: f for f, h in self.encrypted.items() if h}
        self.result = Classification()
        self.watermark = 0
        self._direct = True
        self._tables: list[str] = []
        # Keys updated by this batch (reference data with allow_updates): key -> (row, values).
        self._updates: dict[tuple, tuple[int, tuple]] = {}

    # --- creation and loading ---------------------------------------------------------------

    def create(self) -> None:
        """Create the tables, and take the kind's lock and the id watermark."""
        definitions = [f"{_q(ROW)} integer NOT NULL"]
        definitions += [f"{_q(field.column)} {field.db_type(connection)}" for field in self.columns.values()]
        if self.spec.reversal:
            external = self.spec.model._meta.get_field(self.spec.external_id)
            definitions.append(f"{_q(REVERSES)} {external.db_type(connection)}")
        suffix = " ON COMMIT DROP" if is_postgres() else ""
        tables = [
            (self.name, ", ".join(definitions)),
            (self.skip, f"{_q(ROW)} integer PRIMARY KEY, reason varchar(16)"),
        ]
        if self.spec.reversal:
            tables.append((self.pending, ", ".join(definitions)))
        with connection.cursor() as cursor:
            if is_postgres():
                # Serialise imports of one kind until commit, so the classification of a row
                # as new stays true until it is written (see the module docstring).
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(f"ingest:{self.spec.name}".encode())])
            for name, columns in tables:
                cursor.execute(f"CREATE TEMPORARY TABLE {_q(name)} ({columns}){suffix}")
                self._tables.append(name)
            cursor.execute(f"SELECT MAX({_q('id')}) FROM {_q(self.spec.table)}")  # noqa: S608 - quoted identifier
            self.watermark = cursor.fetchone()[0] or 0

    @property
    def staged_columns(self) -> list[str]:
        names = [ROW] + [self.columns[f].column for f in self.fields]
        return [*names, REVERSES] if self.spec.reversal else names

    def take(
        self,
        rows: np.ndarray,
        values: dict[str, tuple[str, Any]],
        reverses: list | None,
        *,
        constants: dict[str, object],
        allow_updates: bool,
        update_constants: dict[str, object],
    ) -> None:
        """Write one chunk of valid rows. `values` maps each field to (tag, values).

        Reversing rows wait in the pending table for `finish`. The others are first tried
        straight into the target (COPY on PostgreSQL) in a savepoint: for new rows, the
        usual nightly case, that is the whole cost. If a key is already held (a re-sent
        file, a repeat within the file), the unique index refuses the chunk, the savepoint
        is rolled back and the chunk goes the long way: staged, inserted with ON CONFLICT
        DO NOTHING, the rest classified. After one such chunk the batch stays on the long way.
        """
        if len(rows) == 0:
            return
        if reverses is not None:
            originals = np.fromiter((r is None for r in reverses), dtype=bool, count=len(rows))
            if not originals.all():
                self._load(self.pending, *_subset(rows, values, reverses, ~originals))
                rows, values, reverses = _subset(rows, values, reverses, originals)
        if len(rows) == 0:
            return
        if self._direct:
            if self._insert_directly(rows, values, constants):
                return
            self._direct = False
        self._load(self.name, rows, values, reverses)
        self._process_staged(
            len(rows), allow_updates=allow_updates, constants=constants, update_constants=update_constants
        )

    def _insert_directly(self, rows: np.ndarray, values: dict[str, tuple[str, Any]], constants: dict) -> bool:
        """Write new rows straight into the target; False (and nothing written) if a key is held."""
        names = [self.columns[f].column for f in self.fields] + [self._column(name) for name in constants]
        n = len(rows)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if is_postgres():
                    texts = [_constant_text(value) for value in constants.values()]
                    sql = f"COPY {_q(self.spec.table)} ({', '.join(_q(c) for c in names)}) FROM STDIN"
                    # COPY bypasses Django's cursor wrapper: translate the driver's errors here.
                    with connection.wrap_database_errors, cursor.copy(sql) as copy:
                        for block in _copy_blocks([values[f] for f in self.fields], n, texts):
                            copy.write(block)
                else:
                    columns = [_python_values(tag, data) for tag, data in (values[f] for f in self.fields)]
                    columns += [[self._prepared(name, value)] * n for name, value in constants.items()]
                    marks = ", ".join(["%s"] * len(columns))
                    cursor.executemany(
                        f"INSERT INTO {_q(self.spec.table)} ({', '.join(_q(c) for c in names)}) "  # noqa: S608
                        f"VALUES ({marks})",
                        list(zip(*columns, strict=True)),
                    )
        except IntegrityError:
            return False
        self.result.written += n
        return True

    def _load(self, table: str, rows: np.ndarray, values: dict[str, tuple[str, Any]], reverses: list | None) -> None:
        """Put rows into one of the batch's tables (the stage or the pending reversals)."""
        names = ", ".join(_q(c) for c in self.staged_columns)
        if is_postgres():
            columns = [(INTEGER, rows.tolist()), *(values[f] for f in self.fields)]
            if self.spec.reversal:
                columns.append((TEXT, reverses))
            with (
                connection.cursor() as cursor,
                connection.wrap_database_errors,
                cursor.copy(f"COPY {_q(table)} ({names}) FROM STDIN") as copy,
            ):
                for block in _copy_blocks(columns, len(rows)):
                    copy.write(block)
            return
        columns = [rows.tolist()]
        columns += [_python_values(tag, data) for tag, data in (values[f] for f in self.fields)]
        if self.spec.reversal:
            columns.append(reverses)
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_q(table)} ({names}) VALUES ({marks})",  # noqa: S608 - quoted identifiers
                list(zip(*columns, strict=True)),
            )

    def _column(self, name: str) -> str:
        return self.spec.model._meta.get_field(name).column

    def _prepared(self, name: str, value: object) -> object:
        return self.spec.model._meta.get_field(name).get_db_prep_save(value, connection)

    def drop(self) -> None:
        with connection.cursor() as cursor:
            for name in self._tables:
                cursor.execute(f"DROP TABLE IF EXISTS {_q(name)}")
        self._tables = []

    # --- per chunk ----------------------------------------------------------------------------

    def _process_staged(
        self, staged: int, *, allow_updates: bool, constants: dict[str, object], update_constants: dict
    ) -> None:
        """Write the staged chunk's new rows, then classify the rows that were not new.

        The INSERT goes first, with ON CONFLICT DO NOTHING, in file order: the target's
        unique index finds the rows whose key is held (or repeated within the chunk) as a
        by-product of inserting, instead of a separate probe per row. Only when fewer rows
        went in than were staged are the others looked at: duplicates, conflicts, updates."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX({_q('id')}) FROM {_q(self.spec.table)}")  # noqa: S608
            before = cursor.fetchone()[0] or 0
        written = self._insert_new(constants)
        self.result.written += written
        if written < staged and self._classify_not_inserted(before, allow_updates=allow_updates):
            self.result.updated += self._apply_updates(update_constants)
        self._clear(self.name)

    def _insert_new(self, constants: dict[str, object]) -> int:
        target = [_q(self.columns[f].column) for f in self.fields]
        names = target + [_q(self.spec.model._meta.get_field(name).column) for name in constants]
        params = [self.spec.model._meta.get_field(k).get_db_prep_save(v, connection) for k, v in constants.items()]
        source = [f"s.{c}" for c in target] + ["%s"] * len(params)
        key = ", ".join(_q(self.columns[f].column) for f in self.spec.key)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_q(self.spec.table)} ({', '.join(names)}) "  # noqa: S608 - quoted identifiers
                # SQLite needs a WHERE to read ON CONFLICT as an upsert clause.
                f"SELECT {', '.join(source)} FROM {_q(self.name)} s WHERE 1 = 1 ORDER BY s.{_q(ROW)} "
                f"ON CONFLICT ({key}) DO NOTHING",
                params,
            )
            return cursor.rowcount

    def _classify_not_inserted(self, before: int, *, allow_updates: bool) -> int:
        """Classify the chunk's rows that the insert left out; return how many are updates.

        `before` is the highest id before the insert: a held row above it was written by
        that insert, from the first staged row with its key."""
        skips: list[tuple[int, str]] = []
        group: tuple | None = None
        first_row = 0
        for row, held_id, key, staged, stored, plain in self._held_pairs(self.name):
            if key != group:
                group, first_row = key, row
                if held_id > before:
                    continue  # written just now, from this row
            update = self._updates.get(key)
            if update is not None:
                differences = _differences(staged, update[1])
                if differences:
                    self.result.conflicts += 1
                    self.result.errors.append(self._conflict_in_file(row, key, update[0], differences))
                else:
                    self._duplicate(row, key, f"repeats the update of row {update[0]}")
                continue
            if held_id > before:
                origin, earlier = f"repeats row {first_row}", first_row
            elif held_id > self.watermark:
                origin, earlier = "repeats an earlier row of this file", 0
            else:
                origin, earlier = "already held", -1
            differences = _differences(staged, stored)
            if not differences:
                self._duplicate(row, key, origin)
            elif earlier >= 0:
                self.result.conflicts += 1
                self.result.errors.append(self._conflict_in_file(row, key, earlier, differences))
            elif allow_updates:
                self._updates[key] = (row, staged)
                skips.append((row, "update"))
            else:
                self.result.conflicts += 1
                self.result.errors.append(self._conflict(row, key, differences, staged, stored, plain))
        self._add_skips(skips)
        return len(skips)

    def finish(self, constants: dict[str, object]) -> None:
        """Classify and write the reversing rows of the whole file (ledger kinds)."""
        if not self.spec.reversal:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {_q(self.pending)}")  # noqa: S608
            pending = cursor.fetchone()[0]
        if not pending:
            return
        held = self._against_held_rows(self.pending)
        skipped = self._within(self.pending)
        skipped += self._reversals()
        self._write(self.pending, pending - held - skipped, constants, reversals=True, held=held)

    def _clear(self, table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_q(table)}")  # noqa: S608
            cursor.execute(f"DELETE FROM {_q(self.skip)}")  # noqa: S608

    # --- classification -------------------------------------------------------------------------

    def _key_match(self, left: str, right: str) -> str:
        return " AND ".join(
            f"{left}.{_q(self.columns[f].column)} = {right}.{_q(self.columns[f].column)}" for f in self.spec.key
        )

    def _held_join(self, source: str, alias: str, *, on: str | None = None, left: bool = False) -> str:
        """Join each staged row to the target row it names (by key, or by the condition `on`).

        On PostgreSQL as a LATERAL subquery the planner cannot flatten (OFFSET 0): one index
        probe per staged row. A plain join lets it hash the whole target instead, a full scan
        of a ledger of millions of rows for every chunk. SQLite always probes the index."""
        condition = on or self._key_match(alias, source)
        table = _q(self.spec.table)
        join = "LEFT JOIN" if left else "JOIN"
        if is_postgres():
            return f"{join} LATERAL (SELECT * FROM {table} {alias} WHERE {condition} OFFSET 0) {alias} ON TRUE"  # noqa: S608
        return f"{join} {table} {alias} ON {condition}"

    def _not_held(self, source: str) -> str:
        """A condition: the staged row's key is not held (an index probe per row, see _held_join)."""
        offset = " OFFSET 0" if is_postgres() else ""
        return f"NOT EXISTS (SELECT 1 FROM {_q(self.spec.table)} t WHERE {self._key_match('t', source)}{offset})"  # noqa: S608

    def _compared(self) -> list[str]:
        """Fields whose values make a row's content (the key's fields are equal by the join;
        an encrypted field is compared through its hash, its ciphertext differing on every write)."""
        return [f for f in self.fields if f not in self.spec.key and f not in self.encrypted]

    def _content_names(self) -> list[str]:
        return [*self._compared(), "reverses"] if self.spec.reversal else self._compared()

    def _held_pairs(self, table: str) -> Iterator[tuple[int, int, tuple, tuple, tuple, dict]]:
        """(row, held id, key, staged content, held content, ciphertexts) for each staged row
        whose key is held, in key then row order. `ciphertexts` maps each encrypted field's hash
        field to the (staged, held) tokens, for the masked values of a conflict message."""
        n_key = len(self.spec.key)
        n = len(self._compared())
        n_enc = len(self.encrypted)
        for record in _stream(self.held_pairs_sql(table)):
            staged = record[2 + n_key : 2 + n_key + n]
            stored = record[2 + n_key + n : 2 + n_key + 2 * n]
            rest = record[2 + n_key + 2 * n :]
            tokens = {}
            if n_enc:
                for i, (name, hash_name) in enumerate(self.encrypted.items()):
                    tokens[hash_name or name] = (rest[i], rest[n_enc + i])
                rest = rest[2 * n_enc :]
            if self.spec.reversal:
                staged += (rest[-2],)
                stored += (rest[-1],)
            yield record[0], record[1], record[2 : 2 + n_key], staged, stored, tokens

    def held_pairs_sql(self, table: str) -> str:
        compared = self._compared()
        key_cols = [f"s.{_q(self.columns[f].column)}" for f in self.spec.key]
        select = [f"s.{_q(ROW)}", f"t.{_q('id')}", *key_cols]
        select += [f"s.{_q(self.columns[f].column)}" for f in compared]
        select += [f"t.{_q(self.columns[f].column)}" for f in compared]
        select += [f"s.{_q(self.columns[f].column)}" for f in self.encrypted]
        select += [f"t.{_q(self.columns[f].column)}" for f in self.encrypted]
        joins = ""
        if self.spec.reversal:
            external = _q(self.spec.model._meta.get_field(self.spec.external_id).column)
            select += [f"s.{_q(REVERSES)}", f"r.{external}"]
            joins = f" LEFT JOIN {_q(self.spec.table)} r ON r.{_q('id')} = t.{_q('reverses_id')}"
        return (
            f"SELECT {', '.join(select)} FROM {_q(table)} s "  # noqa: S608 - quoted identifiers only
            f"{self._held_join('s', 't')}{joins} "
            f"ORDER BY {', '.join(key_cols)}, s.{_q(ROW)}"
        )

    def _against_held_rows(self, table: str) -> int:
        """Classify pending rows whose key is held (they are not written); return how many."""
        held = 0
        for row, held_id, key, staged, stored, plain in self._held_pairs(table):
            held += 1
            earlier_in_file = held_id > self.watermark
            differences = _differences(staged, stored)
            if not differences:
                self._duplicate(row, key, "repeats an earlier row of this file" if earlier_in_file else "already held")
                continue
            self.result.conflicts += 1
            if earlier_in_file:
                self.result.errors.append(self._conflict_in_file(row, key, 0, differences))
            else:
                self.result.errors.append(self._conflict(row, key, differences, staged, stored, plain))
        return held

    def _conflict(
        self, row: int, key: tuple, differences: list[int], staged: tuple, stored: tuple, tokens: dict | None = None
    ) -> errors.RowError:
        names = self._content_names()
        parts = []
        for i in differences[:4]:
            column = self._file_column(names[i])
            held, given = stored[i], staged[i]
            if names[i] in self._hash_of or names[i] in self.encrypted:
                # The hashes differ: show the (masked) decrypted values instead.
                held, given = (crypto.decrypt(t) if t else "" for t in (tokens or {}).get(names[i], ("", "")))
            parts.append(f"{column} (held {self._shown(column, held)}, file {self._shown(column, given)})")
        correction = "a reversing row" if self.spec.reversal else "--update"
        return errors.RowError(
            row,
            "/".join(self.spec.key_columns),
            "/".join(str(k) for k in key),
            errors.CONFLICT,
            f"the content already held under this key (to correct it: {correction}); differs in " + ", ".join(parts),
        )

    def _conflict_in_file(self, row: int, key: tuple, first_row: int, differences: list[int]) -> errors.RowError:
        names = self._content_names()
        columns = [self._file_column(names[i]) for i in differences[:4]]
        earlier = f"row {first_row}" if first_row else "an earlier row"
        return errors.RowError(
            row,
            "/".join(self.spec.key_columns),
            "/".join(str(k) for k in key),
            errors.CONFLICT_IN_FILE,
            f"a key not used by another row of the file: {earlier} has it with a different {', '.join(columns)}",
        )

    def _within(self, table: str) -> int:
        """Classify keys repeated among the staged rows (not held); return how many rows to skip."""
        key_cols = [_q(self.columns[f].column) for f in self.spec.key]
        compared = [_q(self.columns[f].column) for f in self._compared()]
        if self.spec.reversal:
            compared.append(_q(REVERSES))
        s_key = ", ".join(f"s.{c}" for c in key_cols)
        sql = (
            f"SELECT s.{_q(ROW)}, {s_key}, {', '.join(f's.{c}' for c in compared)} "  # noqa: S608
            f"FROM {_q(table)} s JOIN (SELECT {', '.join(key_cols)} FROM {_q(table)} "
            f"GROUP BY {', '.join(key_cols)} HAVING COUNT(*) > 1) d "
            f"ON {' AND '.join(f's.{c} = d.{c}' for c in key_cols)} "
            f"WHERE {self._not_held('s')} "
            f"ORDER BY {s_key}, s.{_q(ROW)}"
        )
        n_key = len(key_cols)
        skips: list[tuple[int, str]] = []
        first_key: tuple | None = None
        first: tuple = ()
        first_row = 0
        for record in _stream(sql):
            row, key, content = record[0], record[1 : 1 + n_key], record[1 + n_key :]
            if key != first_key:
                first_key, first, first_row = key, content, row
                continue
            differences = _differences(content, first)
            if not differences:
                skips.append((row, "duplicate"))
                self._duplicate(row, key, f"repeats row {first_row}")
                continue
            skips.append((row, "conflict"))
            self.result.conflicts += 1
            self.result.errors.append(self._conflict_in_file(row, key, first_row, differences))
        self._add_skips(skips)
        return len(skips)

    def _reversals(self) -> int:
        """Check the pending reversing rows against their originals; return how many are refused."""
        reversal = self.spec.reversal
        if reversal is None:
            return 0
        table = _q(self.spec.table)
        external = _q(self.spec.model._meta.get_field(self.spec.external_id).column)
        checked = [*reversal.same, *reversal.negated]
        cols = [_q(self.columns[f].column) for f in checked]
        sql = (
            f"SELECT s.{_q(ROW)}, s.{_q(REVERSES)}, {', '.join(f's.{c}' for c in cols)}, "  # noqa: S608
            f"o.{_q('id')}, o.{_q('reverses_id')}, "
            f"(SELECT x.{external} FROM {table} x WHERE x.{_q('reverses_id')} = o.{_q('id')}), "
            f"{', '.join(f'o.{c}' for c in cols)} "
            f"FROM {_q(self.pending)} s "
            f"{self._held_join('s', 'o', on=f'o.{external} = s.{_q(REVERSES)}', left=True)} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {_q(self.skip)} k WHERE k.{_q(ROW)} = s.{_q(ROW)}) "
            # Rows already held (an earlier import of the same reversal) are duplicates, done above.
            f"AND {self._not_held('s')} "
            f"ORDER BY s.{_q(ROW)}"
        )
        n = len(checked)
        external_name = self.spec.external_id
        reversed_here: dict[object, int] = {}
        skips: list[tuple[int, str]] = []
        for record in _stream(sql):
            row, target = record[0], record[1]
            mine = record[2 : 2 + n]
            original_id, original_reverses, reversed_by = record[2 + n : 5 + n]
            original = record[5 + n : 5 + 2 * n]
            problem: tuple[str, str] | None = None
            if original_id is None:
                problem = (
                    errors.REVERSAL_UNKNOWN,
                    f"the {external_name} of a row already imported or of a valid row of this file",
                )
            elif original_reverses is not None:
                problem = (errors.REVERSES_REVERSAL, f"the {external_name} of an original row, not of a reversal")
            elif reversed_by is not None or target in reversed_here:
                by = f"{external_name} {reversed_by}" if reversed_by else f"row {reversed_here[target]} of this file"
                problem = (errors.ALREADY_REVERSED, f"a row not reversed yet ({target} is already reversed by {by})")
            else:
                wrong = [
                    self._file_column(f)
                    for i, f in enumerate(checked)
                    if (mine[i] != original[i] if f in reversal.same else not _negates(mine[i], original[i]))
                ]
                if wrong:
                    problem = (
                        errors.REVERSAL_MISMATCH,
                        f"a reversal of {target}: the same {', '.join(self._file_column(f) for f in reversal.same)}"
                        f" and the negated {', '.join(self._file_column(f) for f in reversal.negated)};"
                        f" differs in {', '.join(wrong)}",
                    )
            if problem is None:
                reversed_here[target] = row
                continue
            skips.append((row, "reversal"))
            self.result.errors.append(errors.RowError(row, reversal.column, str(target), problem[0], problem[1]))
        self._add_skips(skips)
        return len(skips)

    def _duplicate(self, row: int, key: tuple, note: str) -> None:
        self.result.duplicates += 1
        if len(self.result.duplicate_sample) < 100:
            self.result.duplicate_sample.append({"row": row, "key": "/".join(str(k) for k in key), "note": note})

    def _file_column(self, field_name: str) -> str:
        if field_name == "reverses" and self.spec.reversal:
            return self.spec.reversal.column
        field_name = self._hash_of.get(field_name, field_name)  # a hash is shown as its file column
        return next((c.name for c in self.spec.columns if c.field == field_name), field_name)

    def _shown(self, column: str, value: object) -> str:
        spec_column = next((c for c in self.spec.columns if c.name == column), None)
        if spec_column is not None and spec_column.sensitive:
            return mask_identifier(str(value))
        return errors.shown(value)

    def _add_skips(self, skips: Sequence[tuple[int, str]]) -> None:
        if not skips:
            return
        with connection.cursor() as cursor:
            for start in range(0, len(skips), _FETCH):
                cursor.executemany(
                    f"INSERT INTO {_q(self.skip)} ({_q(ROW)}, reason) VALUES (%s, %s)",  # noqa: S608
                    list(skips[start : start + _FETCH]),
                )

    # --- the write -------------------------------------------------------------------------------

    def _write(self, table: str, expected: int, constants: dict[str, object], *, reversals: bool, held: int) -> None:
        """Insert the staged rows that are neither skipped nor held, in file order."""
        if expected <= 0:
            return
        # Leave out rows whose key is held; a fresh file (the common case) needs no such probe.
        held_filter = f"AND {self._not_held('s')} " if held else ""
        target = [_q(self.columns[f].column) for f in self.fields]
        source = [f"s.{c}" for c in target]
        names = target + [_q(self.spec.model._meta.get_field(name).column) for name in constants]
        params = [self.spec.model._meta.get_field(k).get_db_prep_save(v, connection) for k, v in constants.items()]
        marks = ["%s"] * len(params)
        joins = ""
        if reversals:
            external = _q(self.spec.model._meta.get_field(self.spec.external_id).column)
            names.append(_q("reverses_id"))
            marks.append(f"o.{_q('id')}")
            joins = " " + self._held_join("s", "o", on=f"o.{external} = s.{_q(REVERSES)}")
        sql = (
            f"INSERT INTO {_q(self.spec.table)} ({', '.join(names)}) "  # noqa: S608 - quoted identifiers
            f"SELECT {', '.join(source + marks)} FROM {_q(table)} s{joins} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {_q(self.skip)} k WHERE k.{_q(ROW)} = s.{_q(ROW)}) "
            f"{held_filter}ORDER BY s.{_q(ROW)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written = cursor.rowcount
        if written != expected:
            raise RuntimeError(f"wrote {written} rows where {expected} were classified as new")
        self.result.written += written

    def _apply_updates(self, constants: dict[str, object]) -> int:
        """Update held rows with the staged rows classified as updates; return how many.

        KYC profiles changed by an import go into the compliance audit trail (old -> new of
        each changed field, the ID number masked), like a change made in admin."""
        if self.spec.model is not KYCProfile:
            return self._update_held(constants)
        from compliance import audit  # compliance builds on clients
        from compliance.services import KYC_AUDITED_FIELDS, kyc_change

        ids = self._updated_ids()
        fields = ["id", "client_id", *KYC_AUDITED_FIELDS]
        before = {row["id"]: row for row in KYCProfile.objects.filter(id__in=ids).values(*fields)}
        updated = self._update_held(constants)
        after = {row["id"]: row for row in KYCProfile.objects.filter(id__in=ids).values(*fields)}
        clients = Client.objects.in_bulk([row["client_id"] for row in after.values()])
        batch = ImportBatch.objects.select_related("requested_by").get(pk=self.batch_id)
        # One chain append for the whole batch (one head lock, one bulk insert).
        changes = [
            kyc_change(client=clients[new["client_id"]], kyc_id=kyc_id, old=before[kyc_id], new=new)
            for kyc_id, new in after.items()
        ]
        audit.record_many(actor=batch.requested_by, changes=[change for change in changes if change is not None])
        return updated

    def _updated_ids(self) -> list[int]:
        table = _q(self.spec.table)
        match = " AND ".join(
            f"{table}.{_q(self.columns[f].column)} = s.{_q(self.columns[f].column)}" for f in self.spec.key
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {table}.id FROM {table} JOIN {_q(self.name)} s ON {match} "  # noqa: S608
                f"WHERE s.{_q(ROW)} IN (SELECT {_q(ROW)} FROM {_q(self.skip)} WHERE reason = 'update')"
            )
            return [row[0] for row in cursor.fetchall()]

    def _update_held(self, constants: dict[str, object]) -> int:
        table = _q(self.spec.table)
        updated = [*self._compared(), *self.encrypted]
        assignments = [f"{_q(self.columns[f].column)} = s.{_q(self.columns[f].column)}" for f in updated]
        params = []
        for name, value in constants.items():
            assignments.append(f"{_q(self.spec.model._meta.get_field(name).column)} = %s")
            params.append(self.spec.model._meta.get_field(name).get_db_prep_save(value, connection))
        match = " AND ".join(
            f"{table}.{_q(self.columns[f].column)} = s.{_q(self.columns[f].column)}" for f in self.spec.key
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(assignments)} FROM {_q(self.name)} s "  # noqa: S608
                f"WHERE {match} AND s.{_q(ROW)} IN "
                f"(SELECT {_q(ROW)} FROM {_q(self.skip)} WHERE reason = 'update')",
                params,
            )
            return cursor.rowcount


def _stream(sql: str, params: Sequence[object] = ()) -> Iterator[tuple]:
    """Rows of `sql`, fetched in blocks through a server-side cursor on PostgreSQL."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while block := cursor.fetchmany(_FETCH):
            yield from block


def _differences(left: Sequence[object], right: Sequence[object]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]


def _negates(value: object, original: object) -> bool:
    if value is None or original is None:
        return value is None and original is None
    return value == -original  # type: ignore[operator]


# --- serialising staged values ---------------------------------------------------------------

_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def _copy_text(tag: str, data: Any) -> list[str]:
    """Values in PostgreSQL's COPY text format: \\N for NULL, specials escaped."""
    if tag == DATETIME:
        texts = np.datetime_as_string(data, unit="us", timezone="naive")
        nat = np.isnat(data)
        return ["\\N" if missing else text + "+00" for text, missing in zip(texts.tolist(), nat.tolist(), strict=True)]
    if tag == BOOLEAN:
        return ["\\N" if v is None else ("t" if v else "f") for v in data]
    if tag == INTEGER:
        return ["\\N" if v is None else str(v) for v in data]
    texts = ["\\N" if v is None else v for v in data]
    if tag == TEXT:
        joined = "\x00".join(texts)
        if any(special in joined for special in _COPY_SPECIAL):
            texts = [_escape(t) for t in texts]
    return texts


def _payload(columns: list[list[str]]) -> str:
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


# Rows per COPY message. A chunk's COPY text is never built whole (peak memory of a 200,000-row
# import: 307 MB against 327 MB with the chunk's text in one piece); the server starts on a
# block while the next one is being formatted (no measurable speed difference on 2 cores).
COPY_BLOCK = 5_000


def _copy_blocks(columns: list[tuple[str, Any]], n: int, constants: Sequence[str] = ()) -> Iterator[str]:
    """The COPY text of `n` rows, block by block. Each column is (tag, values); each constant
    is a COPY text repeated on every row."""
    for start in range(0, n, COPY_BLOCK):
        stop = min(n, start + COPY_BLOCK)
        texts = [_copy_text(tag, data[start:stop]) for tag, data in columns]
        texts += [[text] * (stop - start) for text in constants]
        yield _payload(texts)


def _constant_text(value: object) -> str:
    """A constant (created_at, answers ...) in COPY text format."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _escape(json.dumps(value))
    return _escape(str(value))


def _subset(
    rows: np.ndarray, values: dict[str, tuple[str, Any]], reverses: list | None, mask: np.ndarray
) -> tuple[np.ndarray, dict[str, tuple[str, Any]], list | None]:
    picked = mask.tolist()

    def pick(data: Any) -> Any:
        if isinstance(data, np.ndarray):
            return data[mask]
        return [v for v, keep in zip(data, picked, strict=True) if keep]

    chosen = {name: (tag, pick(data)) for name, (tag, data) in values.items()}
    return rows[mask], chosen, (pick(reverses) if reverses is not None else None)


def _escape(text: str) -> str:
    if text == "\\N":
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _python_values(tag: str, data: Any) -> list:
    """Values as Django's SQLite backend stores them (datetimes as naive UTC text)."""
    if tag == DATETIME:
        texts = np.datetime_as_string(data, unit="us", timezone="naive").tolist()
        nat = np.isnat(data).tolist()
        out = []
        for text, missing in zip(texts, nat, strict=True):
            if missing:
                out.append(None)
                continue
            text = text.replace("T", " ")
            out.append(text[:-7] if text.endswith(".000000") else text)
        return out
    if tag == BOOLEAN:
        return [None if v is None else int(bool(v)) for v in data]
    return list(data)
