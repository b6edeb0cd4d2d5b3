"""The rejects file: bad rows as they came, with their reasons, and the error counts."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from brokercrm.lib.exports import safe_text
from clients.ingest import errors
from clients.ingest.validation import ChunkOutcome

MAX_STORED_ERRORS = 1000


class ErrorSink:
    """Counts every error, keeps the first MAX_STORED_ERRORS, and writes bad rows to a rejects file."""

    def __init__(self, header: list[str], rejects_path: Path | None) -> None:
        self.header = header
        self.count = 0
        self.rejected_rows = 0
        self.stored: list[errors.RowError] = []
        self.rejects_path = rejects_path
        self._file: IO[str] | None = None
        self._writer: Any = None
        self.late: dict[int, list[str]] = {}

    def add(self, found: list[errors.RowError]) -> None:
        self.count += len(found)
        room = MAX_STORED_ERRORS - len(self.stored)
        if room > 0:
            self.stored.extend(found[:room])

    def add_chunk(self, frame: Any, outcome: ChunkOutcome) -> None:
        self.add(outcome.errors)
        bad_count = int(outcome.bad.sum())
        self.rejected_rows += bad_count
        if self.rejects_path is None or not bad_count:
            return
        messages: dict[int, list[str]] = {}
        for error in outcome.errors:
            messages.setdefault(error.row, []).append(error.message)
        bad_frame = frame[outcome.bad]
        for row, values in zip(bad_frame.index.tolist(), bad_frame.itertuples(index=False), strict=True):
            self._write(row, list(values), messages.get(row, []))

    def add_late(self, found: list[errors.RowError], frame: Any = None) -> None:
        """Errors found once the rows were staged (conflicts, reversals): their rows were good so far.

        With the chunk's `frame` the rejected rows are written at once; without, they wait
        for a second pass over the file (`write_late`)."""
        if not found:
            return
        self.add(found)
        messages: dict[int, list[str]] = {}
        for error in found:
            messages.setdefault(error.row, []).append(error.message)
        self.rejected_rows += len(messages)
        if self.rejects_path is None:
            return
        if frame is None:
            for row, texts in messages.items():
                self.late.setdefault(row, []).extend(texts)
            return
        for row, texts in messages.items():
            self._write(row, [str(v) for v in frame.loc[row].tolist()], texts)

    def add_file_error(self, found: list[errors.RowError]) -> None:
        self.add(found)

    def write_late(self, frames: Iterator[Any]) -> None:
        """Second pass over the source: write the rows rejected after staging."""
        if not self.late:
            return
        for frame in frames:
            wanted = [row for row in frame.index.tolist() if row in self.late]
            for row in wanted:
                self._write(row, [str(v) for v in frame.loc[row].tolist()], self.late[row])

    def _write(self, row: int, values: list[str], messages: list[str]) -> None:
        if self._writer is None:
            if self.rejects_path is None:
                raise ValueError("no rejects file was asked for")
            # utf-8-sig: Excel opens it with Chinese text intact.
            self._file = open(self.rejects_path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            # The header and the messages quote the file too: escaped like the cells.
            self._writer.writerow(["row", *map(_safe_cell, self.header), "errors"])
        self._writer.writerow([row, *map(_safe_cell, values), _safe_cell(" | ".join(messages))])

    def close(self) -> bool:
        """Close the rejects file; True if one was written."""
        if self._file is None:
            return False
        self._file.close()
        return True


def _safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (brokercrm.lib.exports); a plain negative
    number stays a number. The rejects file is meant to be opened in Excel."""
    return safe_text(value, keep_negative_numbers=True)
