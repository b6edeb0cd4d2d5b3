"""Importing a file of one kind: read in chunks, validate, stage, classify, write, record.

`ingest_file` (CSV / .xlsx, from the command or an API upload) and `ingest_records`
(a JSON array from the API) return the saved `ImportBatch`. The batch row is written
outside the import's transaction: a rejected or crashed import leaves its record and
none of its rows.

- All or nothing by default: one bad row and nothing is written (status `rejected`); with
  `skip_invalid` the good rows are written and the bad ones reported (`partially_succeeded`),
  and saved with their reasons to a rejects file when a path is given.
- Idempotent: a row identical to one already held (or earlier in the file) is a duplicate,
  counted and skipped; the same key with different content is a conflict, rejected.
- Memory stays bounded: one chunk of rows at a time, errors beyond the first 1,000 only
  counted (the rejects file gets them all), reference lookups cached up to a fixed size;
  duplicate detection happens in the database, against the staged rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from brokercrm.lib.db import is_postgres
from clients.ingest import errors, ownership, parsing, reading
from clients.ingest.kinds import KINDS, KindSpec
from clients.ingest.rejects import ErrorSink
from clients.ingest.staging import StageTable
from clients.ingest.validation import ReferenceCache, check_header, complete_chunk, parse_chunk
from clients.models import ImportBatch, ImportBatchError

logger = logging.getLogger(__name__)

# Sent (with `batch`) after an import that wrote or updated rows has been committed.
import_committed = Signal()

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to import: `skip_invalid` writes the good rows of a file with bad ones;
    `allow_updates` lets reference data (not the ledger) change on a conflict;
    `encoding` overrides detection; `rejects_path` receives the bad rows as CSV."""

    skip_invalid: bool = False
    allow_updates: bool = False
    encoding: str | None = None
    sheet: str | None = None
    chunk_size: int = reading.DEFAULT_CHUNK_SIZE
    rejects_path: Path | None = None


@dataclass
class Requester:
    """Who asked for the import: a user, or the name of the OS account running a command."""

    user: AbstractBaseUser | None = None
    name: str = ""

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.name


class _Discard(Exception):
    """Control flow: roll the batch's transaction back."""


# --- the import -----------------------------------------------------------------------------


def _record_start(
    *, kind: str, source: str, requester: Requester, info: reading.SourceInfo, options: ImportOptions
) -> ImportBatch:
    """Record the batch as `running`, claimed by this database session (see ownership.py);
    batches left `running` by a dead import are marked failed first."""
    ownership.reap_abandoned()
    with transaction.atomic():
        batch = _create_batch(kind=kind, source=source, requester=requester, info=info, options=options)
        ownership.claim(batch.pk)
    return batch


def _create_batch(
    *, kind: str, source: str, requester: Requester, info: reading.SourceInfo, options: ImportOptions
) -> ImportBatch:
    return ImportBatch.objects.create(
        kind=kind,
        source=source,
        requested_by=requester.user,
        requested_by_name=requester.label[:150],
        file_name=info.name[:255],
        file_sha256=info.sha256,
        file_size=info.size,
        encoding=info.encoding,
        skip_invalid=options.skip_invalid,
        allow_updates=options.allow_updates,
    )


def ingest_file(
    *,
    kind: str,
    stream: IO[bytes],
    name: str,
    source: str = ImportBatch.Source.COMMAND,
    requester: Requester | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportBatch:
    """Import a CSV or .xlsx file of `kind` from a seekable binary stream; return the batch."""
    spec = KINDS[kind]
    options = options or ImportOptions()
    requester = requester or Requester()
    try:
        info = reading.inspect(stream, name=name, encoding=options.encoding)
    except errors.FileRejected as exc:
        info = reading.SourceInfo(name, reading.CSV, _size(stream), "", options.encoding or "")
        batch = _record_start(kind=kind, source=source, requester=requester, info=info, options=options)
        try:
            return _finish_rejected_file(batch, exc.errors)
        finally:
            _let_go(batch)
    batch = _record_start(kind=kind, source=source, requester=requester, info=info, options=options)

    def chunks() -> tuple[list[str], Iterator[reading.Chunk]]:
        return reading.read_chunks(stream, info, chunk_size=options.chunk_size, sheet=options.sheet)

    try:
        return _run(batch, spec, chunks, options, progress)
    finally:
        _let_go(batch)


def ingest_records(
    *,
    kind: str,
    records: list[Any],
    body_sha256: str,
    body_size: int,
    name: str = "request.json",
    requester: Requester | None = None,
    options: ImportOptions | None = None,
) -> ImportBatch:
    """Import a JSON array of objects (values as text, see reading.loads); return the batch."""
    spec = KINDS[kind]
    options = options or ImportOptions()
    requester = requester or Requester()
    info = reading.SourceInfo(name, reading.JSON, body_size, body_sha256, "utf-8")
    batch = _record_start(kind=kind, source=ImportBatch.Source.API, requester=requester, info=info, options=options)

    def chunks() -> tuple[list[str], Iterator[reading.Chunk]]:
        return reading.json_chunks(records, chunk_size=options.chunk_size)

    try:
        return _run(batch, spec, chunks, options, None)
    finally:
        _let_go(batch)


def _let_go(batch: ImportBatch) -> None:
    """After the outcome is recorded: release the batch, and sweep batches abandoned meanwhile."""
    ownership.release(batch.pk)
    try:
        ownership.reap_abandoned()
    except Exception:
        logger.warning("could not sweep abandoned import batches", exc_info=True)


def _size(stream: IO[bytes]) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        return size


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    updated: int = 0
    duplicate: int = 0
    conflict: int = 0
    duplicate_sample: list[dict[str, object]] = field(default_factory=list)


def _run(
    batch: ImportBatch,
    spec: KindSpec,
    open_chunks: Callable[[], tuple[list[str], Iterator[reading.Chunk]]],
    options: ImportOptions,
    progress: Progress | None,
) -> ImportBatch:
    counts = _Counts()
    sink: ErrorSink | None = None
    now = timezone.now()
    context = parsing.Context.at(now, settings.TIME_ZONE)
    status = ImportBatch.Status.RUNNING
    failure = ""
    try:
        header, chunks = open_chunks()
        sink = ErrorSink(header, options.rejects_path if options.skip_invalid else None)
        header_errors = check_header(spec, header)
        if header_errors:
            raise errors.FileRejected(header_errors)
        allow_updates = options.allow_updates and spec.updatable
        with transaction.atomic(), _constraints_checked_per_statement():
            stage = StageTable(spec, batch.pk)
            stage.create()
            references: dict[str, ReferenceCache] = {}
            parsed_chunks = (parse_chunk(spec, c, context) for c in chunks if len(c.frame))
            for chunk in reading.prefetch(parsed_chunks):
                counts.read += len(chunk.rows)
                outcome = complete_chunk(spec, chunk, references)
                sink.add_chunk(chunk.frame, outcome)
                # Rows go on being written after a first bad row even when the batch will be
                # rolled back: later chunks are checked against them, so the report is complete.
                stage.take(
                    outcome.rows,
                    outcome.staged,
                    outcome.reverses,
                    constants=spec.constants(now),
                    allow_updates=allow_updates,
                    update_constants=spec.update_constants(now),
                )
                sink.add_late(stage.result.take_errors(), chunk.frame)
                if progress is not None:
                    progress(counts.read, chunk.bytes_read)
            stage.finish(spec.constants(now))
            sink.add_late(stage.result.take_errors())
            counts.duplicate = stage.result.duplicates
            counts.conflict = stage.result.conflicts
            counts.duplicate_sample = stage.result.duplicate_sample
            counts.written = stage.result.written
            counts.updated = stage.result.updated
            if sink.rejected_rows and not options.skip_invalid:
                status = ImportBatch.Status.REJECTED
                raise _Discard
            stage.drop()
        status = ImportBatch.Status.PARTIALLY_SUCCEEDED if sink.rejected_rows else ImportBatch.Status.SUCCEEDED
    except _Discard:
        pass
    except errors.FileRejected as exc:
        status = ImportBatch.Status.REJECTED
        if sink is None:
            sink = ErrorSink([], None)
        sink.add_file_error(exc.errors)
    except Exception as exc:
        logger.exception("import batch %s failed", batch.pk)
        status = ImportBatch.Status.FAILED
        failure = f"{type(exc).__name__}: {exc}"[:4000]
    except (KeyboardInterrupt, SystemExit) as exc:
        # Ctrl-C on the command: the transaction is already rolled back; record it, then stop.
        _record_finish(batch, status=ImportBatch.Status.FAILED, counts=counts, sink=sink,
                       failure=f"interrupted ({type(exc).__name__})", rejects=False)  # fmt: skip
        raise
    if sink is not None and sink.late and status == ImportBatch.Status.PARTIALLY_SUCCEEDED:
        try:
            _, frames = open_chunks()
            sink.write_late(c.frame for c in frames)
        except Exception:
            logger.exception("could not write the late rejects of batch %s", batch.pk)
    rejects_written = sink.close() if sink is not None else False
    finished = _record_finish(batch, status=status, counts=counts, sink=sink, failure=failure, rejects=rejects_written)
    if status in _WROTE and (counts.written or counts.updated):
        # Apps that check new data at once (compliance flags) hear of it once it is committed.
        transaction.on_commit(lambda: import_committed.send(sender=ImportBatch, batch=finished))
    return finished


@contextmanager
def _constraints_checked_per_statement() -> Iterator[None]:
    """Check deferrable constraints (the foreign keys to clients, and a reversal's to its
    original) at each statement, not at commit.

    The cost is the same, but paid chunk by chunk while the next chunk is being parsed,
    instead of all at once at the end. A trade's client and instrument are checked at each
    statement whatever this says (set-based triggers, clients.0009). Restored on the way out;
    a rolled-back transaction restores it by itself."""
    if not is_postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _finish_rejected_file(batch: ImportBatch, found: list[errors.RowError]) -> ImportBatch:
    sink = ErrorSink([], None)
    sink.add_file_error(found)
    return _record_finish(
        batch, status=ImportBatch.Status.REJECTED, counts=_Counts(), sink=sink, failure="", rejects=False
    )


def _record_finish(
    batch: ImportBatch,
    *,
    status: str,
    counts: _Counts,
    sink: ErrorSink | None,
    failure: str,
    rejects: bool,
) -> ImportBatch:
    batch.status = status
    batch.finished_at = timezone.now()
    batch.rows_read = counts.read
    batch.rows_written = counts.written if status in _WROTE else 0
    batch.rows_updated = counts.updated if status in _WROTE else 0
    batch.rows_duplicate = counts.duplicate
    batch.rows_conflict = counts.conflict
    batch.rows_rejected = sink.rejected_rows if sink is not None else 0
    batch.error_count = sink.count if sink is not None else 0
    batch.failure = failure
    batch.duplicate_sample = counts.duplicate_sample
    if rejects and sink is not None and sink.rejects_path is not None:
        batch.rejects_file = str(sink.rejects_path)[:500]
    with transaction.atomic():
        batch.save()
        if sink is not None and sink.stored:
            ImportBatchError.objects.bulk_create(
                [
                    ImportBatchError(
                        batch=batch,
                        row=e.row,
                        column=e.column[:64],
                        value=e.value[:200],
                        code=e.code,
                        expected=e.expected[:500],
                    )
                    for e in sink.stored
                ]
            )
    return batch


_WROTE = {ImportBatch.Status.SUCCEEDED, ImportBatch.Status.PARTIALLY_SUCCEEDED}


def stored_errors(batch: ImportBatch) -> list[errors.RowError]:
    """The stored errors of a batch, in row order."""
    return [errors.RowError(e.row, e.column, e.value, e.code, e.expected) for e in batch.errors.order_by("row", "id")]


def previous_import_of_same_file(batch: ImportBatch) -> ImportBatch | None:
    """An earlier successful batch of the same kind with the same file hash, if any."""
    if not batch.file_sha256:
        return None
    return (
        ImportBatch.objects.filter(kind=batch.kind, file_sha256=batch.file_sha256, status__in=_WROTE)
        .exclude(pk=batch.pk)
        .order_by("-started_at")
        .first()
    )
