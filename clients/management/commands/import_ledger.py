"""python manage.py import_ledger KIND FILE: import a back-office export (CSV or .xlsx).

Exit status 0 when the batch succeeded or partially succeeded (--skip-invalid), 1 when it
was rejected or failed; either way the batch is recorded (admin: Import batches).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from clients.ingest import reading
from clients.ingest.kinds import KINDS
from clients.ingest.services import ImportOptions, Requester, ingest_file, previous_import_of_same_file, stored_errors
from clients.models import ImportBatch


class Command(BaseCommand):
    help = "Import a file of clients, instruments, trades, cashflows, snapshots, kyc, risk or logins (CSV or .xlsx)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS), help="what the file holds")
        parser.add_argument("file", help="path of the CSV or .xlsx file")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="write the valid rows and save the invalid ones with their reasons to a rejects file "
            "(default: one invalid row rejects the whole file)",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="reference data only (clients, instruments, snapshots, kyc, risk): update rows whose "
            "content changed instead of reporting them as conflicts",
        )
        parser.add_argument("--encoding", help="the file's encoding, e.g. gbk (default: detect UTF-8 / GB18030)")
        parser.add_argument("--sheet", help="the sheet of an .xlsx file (default: the first)")
        parser.add_argument("--rejects", help="where --skip-invalid saves bad rows (default: FILE.rejects.csv)")
        parser.add_argument("--user", help="username recorded as the one who imported (default: the OS user)")
        parser.add_argument("--chunk-size", type=int, default=reading.DEFAULT_CHUNK_SIZE, help="rows per chunk")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
        parser.add_argument("--show-errors", type=int, default=20, help="how many errors to print (default 20)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        if options["update"] and not KINDS[options["kind"]].updatable:
            raise CommandError(f"--update does not apply to {options['kind']}: correct the ledger with reversing rows")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']}")
        rejects = None
        if options["skip_invalid"]:
            rejects = Path(options["rejects"]) if options["rejects"] else path.with_name(path.name + ".rejects.csv")
        import_options = ImportOptions(
            skip_invalid=options["skip_invalid"],
            allow_updates=options["update"],
            encoding=options["encoding"],
            sheet=options["sheet"],
            chunk_size=options["chunk_size"],
            rejects_path=rejects,
        )
        requester = Requester(user=user, name=f"os:{getpass.getuser()}")
        bar = self._progress_bar(path, enabled=not options["no_progress"])
        progress = None
        if bar is not None:

            def progress(rows: int, bytes_read: int) -> None:
                if bytes_read:
                    bar.update(bytes_read - bar.n)
                bar.set_postfix(rows=f"{rows:,}", refresh=False)

        try:
            with path.open("rb") as stream:
                batch = ingest_file(
                    kind=options["kind"],
                    stream=stream,
                    name=path.name,
                    requester=requester,
                    options=import_options,
                    progress=progress,
                )
        finally:
            if bar is not None:
                bar.close()
        self._report(batch, show=options["show_errors"])
        if batch.status in {ImportBatch.Status.REJECTED, ImportBatch.Status.FAILED}:
            raise CommandError(f"Import batch #{batch.pk} {batch.get_status_display().lower()}.")

    def _progress_bar(self, path: Path, *, enabled: bool) -> Any:
        if not enabled or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr)

    def _report(self, batch: ImportBatch, *, show: int) -> None:
        write = self.stdout.write
        write(f"Import batch #{batch.pk}: {batch.kind} from {batch.file_name} ({batch.encoding or 'xlsx'})")
        write(f"  status     {batch.get_status_display()}")
        write(
            f"  rows       read {batch.rows_read:,} | written {batch.rows_written:,} | updated {batch.rows_updated:,}"
            f" | duplicate {batch.rows_duplicate:,} | conflict {batch.rows_conflict:,}"
            f" | rejected {batch.rows_rejected:,}"
        )
        earlier = previous_import_of_same_file(batch)
        if earlier is not None:
            started = timezone.localtime(earlier.started_at)
            write(f"  note       the same file was imported before, in batch #{earlier.pk} ({started:%Y-%m-%d %H:%M})")
        for sample in batch.duplicate_sample[: min(show, 5)]:
            write(f"  duplicate  row {sample['row']}: {sample['key']} ({sample['note']})")
        if batch.failure:
            write(f"  failure    {batch.failure}")
        if batch.rejects_file:
            write(f"  rejects    {batch.rejects_file}")
        if batch.error_count:
            write(f"  errors     {batch.error_count:,} (showing {min(show, batch.error_count)})")
            for error in stored_errors(batch)[:show]:
                write(f"    {error.message}")
