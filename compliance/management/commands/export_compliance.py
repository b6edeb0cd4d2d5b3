"""export_compliance: write a regulator's export (flags, decisions, suitability) for a period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance import audit, exports


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Export flags, decisions or suitability records of a period as CSV or XLSX."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", choices=exports.DATASETS)
        parser.add_argument("--from", dest="start", type=_date, required=True, help="First day (YYYY-MM-DD).")
        parser.add_argument("--to", dest="end", type=_date, required=True, help="Last day, inclusive.")
        parser.add_argument("--format", choices=exports.FORMATS, default="csv")
        parser.add_argument("--out", default=None, help="Output file (default: the export's own name).")

    def handle(self, *args: object, **options: object) -> None:
        if options["end"] < options["start"]:
            raise CommandError("--to must not be before --from")
        period = exports.Period(options["start"], options["end"])
        content, _, name = exports.export(options["dataset"], period, options["format"])
        path = Path(options["out"] or name)
        path.write_bytes(content)
        audit.record(
            actor="command:export_compliance",
            action=audit.AuditAction.EXPORTED,
            object_type="export",
            object_id=options["dataset"],
            new={"from": period.start, "to": period.end, "format": options["format"], "bytes": len(content)},
        )
        self.stdout.write(self.style.SUCCESS(f"Wrote {path} ({len(content):,} bytes)."))
