"""import_watchlist: load (replace) a sanctions or PEP watch list from a CSV file.

python manage.py import_watchlist samples/watchlist_demo.csv --list "Firm sanctions" --kind sanctions
"""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.models import WatchList
from compliance.screening import WatchListImportError, watch_list_load


class Command(BaseCommand):
    help = "Load (replace) a watch list from CSV: entry_id, name, aliases, date_of_birth, countries, remarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file (UTF-8 or GB18030) with a header row.")
        parser.add_argument("--list", required=True, dest="list_name", help="Name of the watch list.")
        parser.add_argument(
            "--kind", choices=WatchList.Kind.values, default=WatchList.Kind.SANCTIONS, help="Default: sanctions."
        )
        parser.add_argument("--source", default="", help="Where the list came from (kept on the list).")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            result = watch_list_load(
                data=path.read_bytes(),
                list_name=options["list_name"],
                kind=options["kind"],
                by=f"command:{getpass.getuser()}",
                source=options["source"] or path.name,
            )
        except WatchListImportError as exc:
            lines = "\n".join(f"  {error}" for error in exc.errors[:50])
            raise CommandError(f"{path.name} rejected, nothing loaded:\n{lines}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.watch_list.name} ({result.watch_list.kind}) version {result.watch_list.version}: "
                f"{result.created} new, {result.updated} changed, {result.unchanged} unchanged, "
                f"{result.deactivated} no longer listed."
            )
        )
