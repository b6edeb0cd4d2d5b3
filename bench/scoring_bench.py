"""Benchmark of the scoring stages (dormancy, churn) against the segmentation stage, on PostgreSQL.

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big \\
        .venv/bin/python bench/scoring_bench.py --as-of 2026-11-20

In one run on the same database (Celery eager, one process):
1. the rollup catches up (not timed against anything);
2. the segmentation stages: the tier stage for the as-of date (median of --repeat runs), the
   reactivation stage and the needs stage (per-client chunks, like the scoring stages);
3. the dormancy and churn stages for the same date, run twice through the nightly
   orchestration; the time of each, their sum against the tier stage and against the whole
   segment step (tiers + reactivation + needs; target <= 2x), the
   lifetime fit's share, and whether the second run gave identical results (a digest of the
   published rows of each stage).
It writes only the app's own tables; the ledger is read, never changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--repeat", type=int, default=3, help="tier stage repetitions (median)")
    parser.add_argument("--runs", type=int, default=2, help="runs of the scoring stages (identical results check)")
    parser.add_argument("--skip-needs", action="store_true", help="do not time the needs stage")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from brokercrm.models import StageRun
    from brokercrm.nightly.orchestration import nightly_run_start
    from retention.models import LifetimeFit
    from segmentation.rollup import activity_rollup
    from segmentation.tiering import reactivation_compute, tiers_compute

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client")
        clients = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM clients_trade")
        trades = cursor.fetchone()[0]
    print(f"database {connection.settings_dict['NAME']}: {clients:,} clients, {trades:,} trades, as of {args.as_of}")

    started = time.perf_counter()
    activity_rollup()
    print(f"  rollup catch-up                               {time.perf_counter() - started:8.2f} s")

    tier_times = []
    for attempt in range(args.repeat):
        started = time.perf_counter()
        tiers_compute(as_of=args.as_of)
        tier_times.append(time.perf_counter() - started)
        print(f"  tier stage (#{attempt + 1})                              {tier_times[-1]:8.2f} s")
    tier = statistics.median(tier_times)
    started = time.perf_counter()
    reactivation_compute(as_of=args.as_of)
    reactivation = time.perf_counter() - started
    print(f"  reactivation stage                            {reactivation:8.2f} s")
    needs = None
    if not args.skip_needs:
        run = nightly_run_start(as_of=args.as_of, stages=["needs"], trigger="command", force_lock=True)
        run.refresh_from_db()
        stage = StageRun.objects.get(run=run, attempt=run.attempt, name="needs")
        needs = (stage.finished_at - stage.started_at).total_seconds()
        print(f"  needs stage (per-client chunks)               {needs:8.2f} s")

    runs = []
    for attempt in range(args.runs):
        started = time.perf_counter()
        run = nightly_run_start(as_of=args.as_of, stages=["dormancy", "churn"], trigger="command", force_lock=True)
        wall = time.perf_counter() - started
        run.refresh_from_db()
        stages = {
            stage.name: stage for stage in StageRun.objects.filter(run=run, attempt=run.attempt).order_by("position")
        }
        if run.status != "succeeded":
            sys.exit(f"run {run.pk} {run.status}: {[(s.stage, s.status, s.error) for s in stages.values()]}")
        seconds = {name: (stage.finished_at - stage.started_at).total_seconds() for name, stage in stages.items()}
        fit = LifetimeFit.objects.get(as_of=args.as_of)
        runs.append({"wall": wall, **seconds, "fit": fit.fit_seconds, "digest": digest()})
        print(
            f"  run {attempt + 1}: dormancy {seconds['dormancy']:.2f} s, churn {seconds['churn']:.2f} s "
            f"(lifetime fit {fit.fit_seconds:.2f} s, {fit.status}), wall {wall:.2f} s"
        )
    fit = LifetimeFit.objects.get(as_of=args.as_of)
    print(f"  fit: r={fit.r:.6g} alpha={fit.alpha:.6g} a={fit.a:.6g} b={fit.b:.6g} on {fit.customers:,} clients")
    print(f"       Gamma-Gamma {fit.gg_status}: p={fit.p} q={fit.q} v={fit.v}")

    print("\nsummary")
    dormancy = statistics.median(r["dormancy"] for r in runs)
    churn = statistics.median(r["churn"] for r in runs)
    print(f"  tier stage (segmentation)                      {tier:8.2f} s")
    print(f"  dormancy stage                                 {dormancy:8.2f} s   ratio {dormancy / tier:5.2f}")
    print(f"  churn stage (incl. fit)                        {churn:8.2f} s   ratio {churn / tier:5.2f}")
    both = dormancy + churn
    print(f"  dormancy + churn                               {both:8.2f} s   ratio {both / tier:5.2f}  (vs tier stage)")
    if needs is not None:
        step = tier + reactivation + needs
        print(f"  segment step: tiers + reactivation + needs     {step:8.2f} s")
        print(f"  dormancy + churn vs the segment step                      ratio {both / step:5.2f}  (<= 2)")
    same = len({r["digest"] for r in runs}) == 1
    print(f"  identical results over {len(runs)} runs: {same}")


def digest() -> str:
    """A digest of the published scoring rows (order-independent of generation ids)."""
    from django.db import connection

    hasher = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(string_agg(concat_ws('|', client_id, segment, days_since_last_trade, trading_days, "
            "about_to_go_dormant, regulatory_dormant, overdue_ratio), ',' ORDER BY client_id)) "
            "FROM retention_clientactivity"
        )
        hasher.update(cursor.fetchone()[0].encode())
        cursor.execute(
            "SELECT md5(string_agg(concat_ws('|', client_id, tier, segment, risk, p_alive, clv, clv_simple, "
            "value_at_risk, reasons::text), ',' ORDER BY client_id)) FROM retention_churnscore"
        )
        hasher.update(cursor.fetchone()[0].encode())
    return hasher.hexdigest()[:16]


if __name__ == "__main__":
    main()
