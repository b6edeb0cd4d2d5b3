"""seed_demo: load a deterministic demo book (clients, ledger, demo users).

python manage.py seed_demo --clients 5000 --months 24 --seed 42 --reset
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from clients.demo import users
from clients.demo.book import DEMO_MODELS, seed_demo_book
from compliance.demo import seed_compliance_demo


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Generate a deterministic demo book: branches, managers, clients, KYC, ledger, and the demo users."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clients", type=int, default=5000, help="Number of clients (default 5000).")
        parser.add_argument("--months", type=int, default=24, help="Months of ledger history (default 24).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--as-of",
            type=_date,
            default=None,
            help="The ledger holds everything before this day (default: today in the exchange time zone).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Empty the client tables (and what references them) first. Without it the book is added "
            "next to existing data, with new ids; branches, managers and instruments are reused.",
        )
        parser.add_argument("--no-progress", action="store_true", help="Never show the progress bar.")

    def handle(self, *args: object, **options: object) -> None:
        clients, months = options["clients"], options["months"]
        if clients < 1 or months < 1:
            raise CommandError("--clients and --months must be at least 1")
        as_of = options["as_of"] or timezone.localdate()
        summary = seed_demo_book(
            clients=clients,
            months=months,
            seed=options["seed"],
            as_of=as_of,
            reset=options["reset"],
            show_progress=False if options["no_progress"] else None,
        )
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo book seeded (seed {options['seed']}, as of {as_of}, {months} months)."))
        for model in DEMO_MODELS:
            out.write(f"  {model.__name__:<16} {summary.counts[model.__name__]:>12,}")
        c = summary.concentration
        out.write(
            f"Top 20% of clients ({c.top_clients:,} of {c.clients:,}) made {c.share:.1%} of the commission "
            f"from {c.window_start} to {c.window_end} ({c.commission:,.2f} CNY; measured in the database)."
        )
        out.write(f"Seconds: {summary.seconds:.1f}")
        demo = seed_compliance_demo(as_of=as_of, seed=options["seed"], reset=options["reset"])
        out.write(
            f"Compliance: {demo.watch_list_entries} watch-list entries, {demo.aml_flows} AML-pattern cash flows, "
            f"{demo.high_risk_nationals} high-risk nationals, {demo.acknowledged_warnings} acknowledged order warnings."
        )
        for line in users.login_lines(password=summary.password, api_token=summary.api_token):
            out.write(line)
