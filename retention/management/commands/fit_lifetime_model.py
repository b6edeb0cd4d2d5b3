"""Fit BG/NBD (and, with a value column, Gamma-Gamma) to a transaction CSV; print JSON."""

import json
import math

import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from retention import lifetime


def _clean(value):
    """JSON-safe: non-finite floats become null rather than invalid JSON (NaN/Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Command(BaseCommand):
    help = "Fit a BG/NBD (+ optional Gamma-Gamma) lifetime model to a transaction CSV and print the parameters as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="Path to the transaction CSV")
        parser.add_argument("--customer-col", required=True)
        parser.add_argument("--date-col", required=True)
        parser.add_argument("--value-col", default=None)
        parser.add_argument("--time-unit", choices=["days", "weeks"], default="days")
        parser.add_argument("--end", required=True, help="Observation end date, YYYY-MM-DD")

    def handle(self, *args, **opts):
        try:
            end = pd.Timestamp(opts["end"])
        except (ValueError, TypeError) as exc:
            raise CommandError(f"Bad --end date {opts['end']!r}: expected YYYY-MM-DD") from exc
        if pd.isna(end):
            raise CommandError(f"Bad --end date {opts['end']!r}: expected YYYY-MM-DD")

        wanted = [opts["customer_col"], opts["date_col"]]
        if opts["value_col"]:
            wanted.append(opts["value_col"])
        try:
            header = pd.read_csv(opts["csv"], nrows=0).columns
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read CSV {opts['csv']!r}: {exc}") from exc
        missing = [c for c in wanted if c not in header]
        if missing:
            raise CommandError(f"Column(s) not in CSV: {', '.join(missing)} (available: {', '.join(map(str, header))})")

        df = pd.read_csv(opts["csv"], usecols=list(dict.fromkeys(wanted)))
        try:
            dates = pd.to_datetime(df[opts["date_col"]], format="mixed")
        except (ValueError, TypeError) as exc:
            raise CommandError(f"Bad date in column {opts['date_col']!r}: {exc}") from exc
        if dates.isna().any():
            raise CommandError(f"Missing date(s) in column {opts['date_col']!r}")
        values = None
        if opts["value_col"]:
            values = pd.to_numeric(df[opts["value_col"]], errors="coerce")
            if values.isna().any():
                raise CommandError(f"Non-numeric or missing value(s) in column {opts['value_col']!r}")

        summary = lifetime.summary_from_transactions(
            df[opts["customer_col"]].to_numpy(),
            dates.to_numpy(),
            None if values is None else values.to_numpy(),
            end_date=end,
            time_unit=opts["time_unit"],
        )
        if summary.empty:
            raise CommandError("No transactions on or before --end")
        try:
            fit = lifetime.bgnbd_fit(summary["frequency"], summary["recency"], summary["T"])
        except ValueError as exc:
            raise CommandError(f"BG/NBD fit failed: {exc}") from exc
        result = {k: _clean(v) for k, v in fit.as_dict().items()}
        if values is not None:
            try:
                gg = lifetime.gamma_gamma_fit(summary["frequency"], summary["monetary_value"])
            except ValueError as exc:
                raise CommandError(f"Gamma-Gamma fit failed: {exc}") from exc
            result["gamma_gamma"] = {k: _clean(v) for k, v in gg.as_dict().items()}
            result.update({"p": gg.p, "q": gg.q, "v": gg.v})
        self.stdout.write(json.dumps(result, indent=2))
