"""Reading files as a stream of chunks of text values.

A file is never read whole into memory. A first streaming pass hashes it (SHA-256, kept on
the batch) and settles its encoding; a second pass yields `Chunk`s of at most `chunk_size`
rows, every value a `str` exactly as written (no type guessing: typing is the schema's job).

Encodings: a UTF-8 BOM means UTF-8; otherwise the file must decode as UTF-8 strictly, or it
is read as GB18030 (a superset of GBK and GB2312, what Chinese back-office software writes).
`encoding=` overrides detection; the file must then decode with it entirely.

Row numbers count the header as row 1, like a spreadsheet; blank lines keep their number
and are skipped.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from queue import Full, Queue
from typing import IO, Any, TypeVar

import pandas as pd

from clients.ingest import errors

CSV = "csv"
XLSX = "xlsx"
JSON = "json"
FORMATS = (CSV, XLSX, JSON)

DEFAULT_CHUNK_SIZE = 50_000
# The name given to a column whose header cell is empty (a trailing comma on every line).
UNNAMED_PREFIX = "_unnamed_"
_BLOCK = 1 << 20
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class SourceInfo:
    """What the first pass learnt about a file."""

    name: str
    format: str
    size: int
    sha256: str
    encoding: str


@dataclass(frozen=True)
class Chunk:
    """Rows of a file: `frame` has one str column per header name, indexed by row number."""

    frame: pd.DataFrame
    bytes_read: int


def format_for(name: str) -> str:
    """The format implied by a file name: .xlsx is Excel, .json JSON, anything else CSV."""
    suffix = PurePath(name).suffix.lower()
    if suffix == ".xlsx":
        return XLSX
    if suffix == ".json":
        return JSON
    if suffix in {".xls", ".xlsb", ".ods"}:
        raise errors.FileRejected(
            [errors.RowError(0, "", name, errors.UNSUPPORTED_FORMAT, "a CSV or .xlsx file (save the sheet as .xlsx)")]
        )
    return CSV


def inspect(stream: IO[bytes], *, name: str, encoding: str | None = None) -> SourceInfo:
    """Hash `stream` and settle its text encoding, reading it once in blocks.

    Raises FileRejected when the bytes are not text in the given (or any detected) encoding.
    The stream is left at its start.
    """
    file_format = format_for(name)
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    if file_format != CSV:
        while block := stream.read(_BLOCK):
            digest.update(block)
            size += len(block)
        stream.seek(0)
        return SourceInfo(name, file_format, size, digest.hexdigest(), "utf-8" if file_format == JSON else "")
    if encoding:
        encoding = _checked_codec_name(encoding)
    elif head.startswith(_UTF8_BOM):
        encoding = "utf-8-sig"
    elif head.startswith(_UTF16_BOMS):
        raise errors.FileRejected(
            [
                errors.RowError(
                    0, "", "UTF-16", errors.ENCODING, "UTF-8 or GB18030/GBK text (save the file as UTF-8 CSV)"
                )
            ]
        )
    candidates = [encoding] if encoding else ["utf-8", "gb18030"]
    for position, candidate in enumerate(candidates):
        failure = _decode_failure(stream, candidate, digest if position == 0 else None)
        if position == 0:
            size = stream.tell()
        if failure is None:
            stream.seek(0)
            return SourceInfo(name, file_format, size, digest.hexdigest(), candidate)
    stream.seek(0)
    line, byte = failure
    tried = " or ".join(candidates)
    raise errors.FileRejected(
        [
            errors.RowError(
                line,
                "",
                f"byte 0x{byte:02x}",
                errors.ENCODING,
                f"text in {tried}; pass the file's encoding explicitly (--encoding / ?encoding=)",
            )
        ]
    )


def _checked_codec_name(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise errors.FileRejected(
            [errors.RowError(0, "", encoding, errors.ENCODING, "a known encoding name, e.g. utf-8, gbk, gb18030")]
        ) from None
    # utf-8 with a BOM is read as utf-8-sig so the BOM does not stick to the first header.
    return "utf-8-sig" if name == "utf-8" else name


def _decode_failure(stream: IO[bytes], encoding: str, digest: Any) -> tuple[int, int] | None:
    """Decode the whole stream strictly; None if it decodes, else (line number, bad byte)."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines = 1
    while True:
        block = stream.read(_BLOCK)
        if digest is not None and block:
            digest.update(block)
        try:
            decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            # exc.object is the block plus any bytes of a character cut at the previous block's
            # end; those cannot contain a newline, so counting in it gives the right line.
            lines += exc.object.count(b"\n", 0, max(exc.start, 0))
            bad = exc.object[exc.start] if 0 <= exc.start < len(exc.object) else 0
            if digest is not None:
                # Keep hashing: the batch records the hash of the whole file.
                while rest := stream.read(_BLOCK):
                    digest.update(rest)
            return lines, bad
        if not block:
            return None
        lines += block.count(b"\n")


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it, for the progress bar."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def normalise_header(name: object) -> str:
    """'Trade ID ' -> 'trade_id'; full-width letters folded (NFKC); a stray BOM dropped."""
    text = unicodedata.normalize("NFKC", str(name or "")).replace("\ufeff", "").strip().lower()
    return "_".join(text.replace("-", " ").split())


def read_chunks(
    stream: IO[bytes], info: SourceInfo, *, chunk_size: int = DEFAULT_CHUNK_SIZE, sheet: str | None = None
) -> tuple[list[str], Iterator[Chunk]]:
    """The header (normalised names) and an iterator over the data rows in chunks."""
    stream.seek(0)
    if info.format == XLSX:
        return _xlsx_chunks(stream, chunk_size=chunk_size, sheet=sheet)
    if info.format == JSON:
        raise ValueError("JSON payloads are read with json_chunks()")
    return _csv_chunks(stream, info, chunk_size=chunk_size)


def _csv_chunks(stream: IO[bytes], info: SourceInfo, *, chunk_size: int) -> tuple[list[str], Iterator[Chunk]]:
    counter = _CountingReader(stream)
    text = io.TextIOWrapper(io.BufferedReader(counter, _BLOCK), encoding=info.encoding, newline="")
    try:
        raw_header = next(csv.reader(text))
    except StopIteration:
        raise errors.FileRejected(
            [errors.RowError(0, "", "", errors.EMPTY_FILE, "a header row naming the columns")]
        ) from None
    except csv.Error as exc:
        raise errors.FileRejected([errors.RowError(1, "", "", errors.MALFORMED, f"a CSV header row ({exc})")]) from None
    header = [normalise_header(h) for h in raw_header]
    names = [h or f"{UNNAMED_PREFIX}{i}" for i, h in enumerate(header)]

    def chunks() -> Iterator[Chunk]:
        reader = pd.read_csv(
            text,
            header=None,
            names=names,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            chunksize=chunk_size,
            engine="c",
        )
        try:
            for frame in reader:
                frame.index = frame.index + 2
                yield Chunk(_drop_blank_rows(frame), counter.count)
        except pd.errors.ParserError as exc:
            raise errors.FileRejected([_parser_error(exc, len(names))]) from None

    return header, chunks()


def _parser_error(exc: Exception, columns: int) -> errors.RowError:
    """A pandas tokenizer error as a RowError. Its line numbers count from the first data line."""
    text = str(exc).strip()
    row = 0
    marker = " in line "
    if marker in text:
        digits = "".join(itertools.takewhile(str.isdigit, text.split(marker, 1)[1]))
        row = int(digits) + 1 if digits else 0
    elif "starting at row" in text:
        digits = "".join(itertools.takewhile(str.isdigit, text.split("starting at row", 1)[1].strip()))
        row = int(digits) + 2 if digits else 0
    detail = text.split("C error:", 1)[-1].strip()
    return errors.RowError(
        row,
        "",
        detail,
        errors.MALFORMED,
        f"{columns} comma-separated fields per row, quotes closed (the file cannot be read past this row)",
    )


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    blank = None
    for column in frame.columns:
        empty = frame[column].to_numpy() == ""
        blank = empty if blank is None else blank & empty
    return frame[~blank] if blank is not None and blank.any() else frame


def _xlsx_chunks(stream: IO[bytes], *, chunk_size: int, sheet: str | None) -> tuple[list[str], Iterator[Chunk]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a file that is not a workbook
        raise errors.FileRejected(
            [errors.RowError(0, "", type(exc).__name__, errors.UNSUPPORTED_FORMAT, "an Excel .xlsx workbook")]
        ) from None
    if sheet is not None and sheet not in workbook.sheetnames:
        raise errors.FileRejected(
            [errors.RowError(0, "", sheet, errors.MALFORMED, f"one of the sheets {workbook.sheetnames}")]
        )
    worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
    rows = worksheet.iter_rows(values_only=True)
    try:
        raw_header = next(rows)
    except StopIteration:
        workbook.close()
        raise errors.FileRejected(
            [errors.RowError(0, "", "", errors.EMPTY_FILE, "a header row naming the columns")]
        ) from None
    while raw_header and raw_header[-1] is None:
        raw_header = raw_header[:-1]
    header = [normalise_header(h) for h in raw_header]
    names = [h or f"{UNNAMED_PREFIX}{i}" for i, h in enumerate(header)]
    width = len(names)

    def chunks() -> Iterator[Chunk]:
        row_no = 1
        try:
            while True:
                batch = list(itertools.islice(rows, chunk_size))
                if not batch:
                    return
                records = []
                index = []
                for values in batch:
                    row_no += 1
                    cells = [excel_cell_text(v) for v in values[:width]]
                    cells.extend([""] * (width - len(cells)))
                    overflow = any(v not in (None, "") for v in values[width:])
                    if overflow:
                        raise errors.FileRejected(
                            [
                                errors.RowError(
                                    row_no, "", "", errors.MALFORMED, f"values only under the {width} named columns"
                                )
                            ]
                        )
                    if any(cells):
                        records.append(cells)
                        index.append(row_no)
                frame = pd.DataFrame(records, columns=names, index=index, dtype=object)
                yield Chunk(frame, 0)
        finally:
            workbook.close()

    return header, chunks()


def excel_cell_text(value: object) -> str:
    """A cell as the text a person sees: numbers without float noise, dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr() is the shortest text that reads back as the same double: 1234.5, not 1234.4999999.
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def json_chunks(records: list[Any], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[list[str], Iterator[Chunk]]:
    """A JSON array of objects as chunks. Numbers must have been parsed as text (see `loads`)."""
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise errors.FileRejected(
            [errors.RowError(0, "", "", errors.MALFORMED, "a JSON array of objects, one per row")]
        )
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            seen.setdefault(str(key), None)
    raw_names = list(seen)
    header = [normalise_header(k) for k in raw_names]

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(records), chunk_size):
            part = records[start : start + chunk_size]
            data = {
                name: [_json_text(record.get(raw)) for record in part]
                for raw, name in zip(raw_names, header, strict=True)
            }
            # Row n of a JSON array is its n-th object (there is no header row).
            index = range(start + 1, start + 1 + len(part))
            yield Chunk(pd.DataFrame(data, index=index, dtype=object), 0)

    return header, chunks()


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def loads(body: bytes) -> Any:
    """Parse a JSON body keeping numbers as their exact text ('10.50' stays '10.50')."""
    return json.loads(body, parse_float=str, parse_int=str)


T = TypeVar("T")


def prefetch(items: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """Run the iterator `items` in a background thread, at most `depth` items ahead.

    Reading and parsing a chunk is CPU work in Python and pandas; writing the previous
    chunk is mostly waiting on the database (the driver releases the GIL). Overlapping
    the two is most of what makes a large import faster. `items` must not use the database:
    Django connections belong to their thread, and the import's transaction to this one.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(message, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consuming thread, raised there
            put(("error", exc))

    worker = threading.Thread(target=work, name="ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=10)
