"""Benchmark the demo-book seeder at scale.

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big \\
        .venv/bin/python bench/seed_large.py --clients 1000000 --months 24

Resets the demo tables of that database, seeds the book and prints rows per table,
rows per second and the time of each phase. The target (docs/ARCHITECTURE "Scale"):
1,000,000 clients and ~20,000,000 trades into PostgreSQL in under 15 minutes on the
2-core benchmark machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="default: today (exchange tz)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from clients.demo.book import seed_demo_book

    as_of = args.as_of or timezone.localdate()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"seeding {args.clients:,} clients x {args.months} months, seed {args.seed}, as of {as_of}")
    started = time.monotonic()
    summary = seed_demo_book(
        clients=args.clients, months=args.months, seed=args.seed, as_of=as_of, reset=True, show_progress=None
    )
    total_seconds = time.monotonic() - started

    written = summary.written
    rows = sum(written.values())
    print("\nrows written:")
    for name, count in written.items():
        print(f"  {name:<16} {count:>12,}")
    print(f"  {'total':<16} {rows:>12,}")
    print("\nphases (s):")
    for name, seconds in summary.phases.items():
        print(f"  {name:<48} {seconds:8.1f}")
    load_seconds = total_seconds - summary.phases.get("counting and measuring", 0.0)
    trades = written.get("Trade", 0)
    print(f"\ntotal seconds (load, indexes, commit): {load_seconds:.1f}")
    print(f"rows/s overall: {rows / load_seconds:,.0f}")
    print(f"trades/s overall: {trades / load_seconds:,.0f}")
    print(f"total seconds including counts and concentration query: {total_seconds:.1f}")
    c = summary.concentration
    print(f"commission share of the top 20% ({c.top_clients:,} of {c.clients:,}) over 12 months: {c.share:.1%}")


if __name__ == "__main__":
    main()
