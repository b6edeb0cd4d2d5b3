"""Back-test the churn score: score as of D - horizon with the data known then, compare with who
stopped trading in the horizon, against a days-since-last-trade baseline."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from retention.backtest import evaluate
from segmentation.rollup import activity_rollup


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of {value!r}: expected a date as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Score the book as of AS_OF - HORIZON using only the data known then, and compare with the clients "
        "who actually stopped trading in (AS_OF - HORIZON, AS_OF]: AUC, precision and lift in the top decile, "
        "for the churn risk and for a days-since-last-trade baseline."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=_date, required=True, help="End of the outcome window (YYYY-MM-DD).")
        parser.add_argument("--horizon", type=int, default=90, help="Outcome window in days (default 90).")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--no-rollup", action="store_true", help="Do not bring the daily activity rollup up to date first."
        )

    def handle(self, *args: object, **options: object) -> None:
        horizon = options["horizon"]
        if horizon < 1:
            raise CommandError("--horizon must be at least 1 day.")
        if not options["no_rollup"]:
            activity_rollup()
        result = evaluate(options["as_of"], horizon)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        self.stdout.write(
            f"Scored as of {result.cutoff}, outcome {result.cutoff} .. {result.as_of} ({result.horizon_days} days); "
            f"lifetime model: {result.model_status}"
        )
        if not result.population:
            self.stdout.write("No active or potentially active clients at the cut-off: nothing to evaluate.")
            return
        self.stdout.write(
            f"Population {result.population:,} active or potentially active clients; "
            f"{result.churned:,} stopped trading ({result.base_rate:.1%})"
        )
        self.stdout.write(f"  {'score':<24} {'AUC':>7} {'top-decile precision':>22} {'lift':>6}")
        for ranking in result.rankings:
            self.stdout.write(
                f"  {ranking.name:<24} {ranking.auc:7.3f} {ranking.top_decile_precision:22.1%} "
                f"{ranking.top_decile_lift:6.2f}"
            )
        model, baseline = result.rankings
        verdict = (
            "beats"
            if model.auc > baseline.auc and model.top_decile_lift > baseline.top_decile_lift
            else "does not beat"
        )
        self.stdout.write(f"The churn risk {verdict} the baseline (AUC and top-decile lift).")
