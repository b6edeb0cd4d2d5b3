"""Write the annual complaints register (the same file as GET /api/v1/complaints/register/)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from feedback import exports, selectors


class Command(BaseCommand):
    help = "Export the complaints register of a calendar year (exchange time) as CSV or XLSX."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--year", type=int, required=True, help="e.g. 2026")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv", dest="file_format")
        parser.add_argument("--out", type=Path, help="default: complaints-register-<year>.<format>")

    def handle(self, *args: object, year: int, file_format: str, out: Path | None, **options: object) -> None:
        if not 2000 <= year <= timezone.localdate().year:
            raise CommandError(f"--year: expected a year from 2000 to {timezone.localdate().year}, got {year}.")
        rows = selectors.register_rows(year=year)
        body = exports.register_csv(rows) if file_format == "csv" else exports.register_xlsx(rows, year=year)
        path = out or Path(f"complaints-register-{year}.{file_format}")
        path.write_bytes(body)
        self.stdout.write(f"{rows.count()} complaints opened in {year} -> {path}")
