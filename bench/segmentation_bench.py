"""Benchmark of the nightly segmentation on PostgreSQL (a database seeded with seed_demo).

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big \\
    REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/segmentation_bench.py --as-of 2026-11-20

Measures, in one run on the same database:

1. the baseline: `SELECT client_id, sum(commission) FROM clients_trade WHERE executed_at >=
   <as-of + 1 day - 365 days, 00:00 exchange time> GROUP BY client_id`, rows fetched;
2. a full night for the day before the as-of date: the rollup rebuilt from an empty table
   (every trade executed before the as-of date), then the tier and reactivation stages;
3. an incremental night for the as-of date: the rollup picks up the trades after the first
   night's watermark (one new day), then the same stages. The tier stage of this night is
   "the full segmentation stage" compared with the baseline (target <= 1.5x); the whole night
   is compared with the full night (target <= 0.25x);
4. the per-client stage (needs profiles) on one Celery worker process, then on two, through
   Redis (REDIS_URL, db 2): the ratio of the two times (target < 1).

It writes only the app's own tables (rollup, tiers, reactivation, needs, run records); the
ledger is read, never changed. Times are wall-clock seconds; the ratios are what matter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_workers import celery_workers, run_on_workers  # noqa: E402 - bench/ is the script's directory

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")


def timed(label: str, fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:8.2f} s")
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True, help="last day of trades in the ledger")
    parser.add_argument("--repeat", type=int, default=3, help="baseline / tier stage repetitions (median)")
    parser.add_argument("--chunk-size", type=int, default=None, help="clients per chunk (default NIGHTLY_CHUNK_SIZE)")
    parser.add_argument("--skip-full", action="store_true", help="skip the full/incremental nights (rollup kept)")
    parser.add_argument("--skip-workers", action="store_true", help="skip the 1 vs 2 worker measurement")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    print(f"database {connection.settings_dict['NAME']}, as of {args.as_of}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client")
        clients = cursor.fetchone()[0]
        cursor.execute("SELECT count(*), max(id) FROM clients_trade")
        trades, max_id = cursor.fetchone()
    print(f"{clients:,} clients, {trades:,} trades")

    results: dict[str, float] = {}
    baseline = measure_baseline(args.as_of, args.repeat)
    results["baseline"] = baseline
    if not args.skip_full:
        results.update(measure_nights(args.as_of, args.repeat))
    else:
        results.update(measure_tier_stage(args.as_of, args.repeat))
    if not args.skip_workers:
        if not settings.REDIS_URL:
            print("\nworkers: skipped (set REDIS_URL=redis://127.0.0.1:6379/2)")
        else:
            results.update(measure_workers(args.as_of, args.chunk_size, clients))

    print("\nsummary")
    print(f"  baseline GROUP BY over the ledger window          {baseline:8.2f} s")
    tier = results["tier_stage"]
    print(f"  tier stage (full segmentation of one date)        {tier:8.2f} s   ratio {tier / baseline:5.2f}  (<= 1.5)")
    segment = tier + results["reactivation_stage"]
    print(f"  tier + reactivation stages                        {segment:8.2f} s   ratio {segment / baseline:5.2f}")
    if "full_night" in results:
        full, incremental = results["full_night"], results["incremental_night"]
        print(f"  full night (rollup from scratch + stages)         {full:8.2f} s")
        print(
            f"  incremental night (one new day + stages)          {incremental:8.2f} s"
            f"   ratio {incremental / full:5.2f}  (<= 0.25)"
        )
    if "one_worker" in results:
        one, two = results["one_worker"], results["two_workers"]
        print(f"  needs stage, 1 worker process                     {one:8.2f} s")
        print(f"  needs stage, 2 worker processes                   {two:8.2f} s   ratio {two / one:5.2f}  (< 1)")
        one_chunks, two_chunks = results["one_worker_chunks"], results["two_workers_chunks"]
        print(
            f"  needs chunks only, 1 -> 2 processes               {one_chunks:8.2f} s -> "
            f"{two_chunks:.2f} s   ratio {two_chunks / one_chunks:5.2f}"
        )
    _ = max_id


def window_start(as_of: dt.date) -> dt.datetime:
    from django.utils import timezone

    zone = timezone.get_default_timezone()
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=zone) - dt.timedelta(days=365)


def measure_baseline(as_of: dt.date, repeat: int) -> float:
    from django.db import connection

    print("\n1. baseline")
    sql = "SELECT client_id, sum(commission) FROM clients_trade WHERE executed_at >= %s GROUP BY client_id"
    times = []
    for attempt in range(repeat):

        def run() -> int:
            with connection.cursor() as cursor:
                cursor.execute(sql, [window_start(as_of)])
                return len(cursor.fetchall())

        seconds, rows = timed(f"SELECT ... GROUP BY client_id (#{attempt + 1})", run)
        times.append(seconds)
    print(f"  rows: {rows:,}; median {statistics.median(times):.2f} s")
    return statistics.median(times)


def _stage_times(as_of: dt.date, repeat: int, prefix: str) -> dict[str, float]:
    from segmentation.tiering import reactivation_compute, tiers_compute

    tier_times, reactivation_times = [], []
    for attempt in range(repeat):
        seconds, result = timed(f"{prefix} tier stage (#{attempt + 1})", lambda: tiers_compute(as_of=as_of))
        tier_times.append(seconds)
    print(f"    tiers: {result.detail['tiers']}, changes {result.detail['changes']}")
    seconds, result = timed(f"{prefix} reactivation stage", lambda: reactivation_compute(as_of=as_of))
    reactivation_times.append(seconds)
    print(f"    reactivation candidates: {result.rows:,}")
    return {"tier_stage": statistics.median(tier_times), "reactivation_stage": statistics.median(reactivation_times)}


def measure_tier_stage(as_of: dt.date, repeat: int) -> dict[str, float]:
    from segmentation.rollup import activity_rollup

    print("\n2. tier stage on the current rollup")
    timed("rollup (catch up)", activity_rollup)
    return _stage_times(as_of, repeat, "")


def measure_nights(as_of: dt.date, repeat: int) -> dict[str, float]:
    from django.db import connection, transaction
    from django.utils import timezone

    from segmentation.models import ClientDailyActivity, RollupWatermark
    from segmentation.rollup import WATERMARK, activity_rollup
    from segmentation.tiering import reactivation_compute, tiers_compute

    zone = timezone.get_default_timezone()
    day_start = dt.datetime.combine(as_of, dt.time.min, tzinfo=zone)
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM clients_trade WHERE executed_at < %s", [day_start])
        cut = cursor.fetchone()[0] or 0
        cursor.execute(
            "SELECT count(*) FILTER (WHERE id > %s), count(*) FILTER (WHERE id <= %s AND executed_at >= %s) "
            "FROM clients_trade",
            [cut, cut, day_start],
        )
        new, early = cursor.fetchone()
    print(f"\n2. full night for {as_of - dt.timedelta(days=1)} (rollup from scratch up to trade id {cut:,})")
    print(f"   the incremental night then adds {new:,} trades (and {early:,} of {as_of} sit below the cut)")
    with transaction.atomic():
        ClientDailyActivity.objects.all()._raw_delete(ClientDailyActivity.objects.db)
        RollupWatermark.objects.update_or_create(name=WATERMARK, defaults={"last_trade_id": 0, "rows_upserted": 0})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE segmentation_clientdailyactivity")  # a fresh table, as on a first night
    previous = as_of - dt.timedelta(days=1)
    full_rollup, _ = timed("rollup from scratch", lambda: activity_rollup(upto_trade_id=cut))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segmentation_clientdailyactivity")
    full_tiers, _ = timed("tier stage", lambda: tiers_compute(as_of=previous))
    full_reactivation, _ = timed("reactivation stage", lambda: reactivation_compute(as_of=previous))
    full = full_rollup + full_tiers + full_reactivation
    print(f"  full night total {full:.2f} s")

    print(f"\n3. incremental night for {as_of} (one new day)")
    incremental_rollup, _ = timed("rollup, incremental", activity_rollup)
    stage = _stage_times(as_of, repeat, "")
    incremental = incremental_rollup + stage["tier_stage"] + stage["reactivation_stage"]
    print(f"  incremental night total {incremental:.2f} s")
    return {"full_night": full, "incremental_night": incremental, **stage}


def _run_needs_on_workers(as_of: dt.date, workers: int, chunk_size: int | None) -> tuple[float, float, int]:
    from brokercrm.models import ChunkRun, RunStatus, StageRun

    with celery_workers(workers):
        started = time.perf_counter()
        run = run_on_workers(as_of, ["needs"], chunk_size=chunk_size)
        seconds = time.perf_counter() - started
        if run.status != RunStatus.SUCCEEDED:
            raise RuntimeError(f"needs stage failed on the workers: {run.error[:500]}")
        stage = StageRun.objects.get(run=run, attempt=run.attempt, name="needs")
        chunks = ChunkRun.objects.filter(stage_run=stage)
        first = min(chunks.values_list("started_at", flat=True))
        last = max(chunks.values_list("finished_at", flat=True))
        used = len(set(chunks.values_list("worker", flat=True)))
        return seconds, (last - first).total_seconds(), used


def measure_workers(as_of: dt.date, chunk_size: int | None, clients: int) -> dict[str, float]:
    from brokercrm.nightly.chunks import client_id_ranges

    chunks = len(client_id_ranges(chunk_size))
    print(f"\n4. needs profiles (per-client stage) on real workers, {chunks} chunks")
    one, one_chunks, used_one = _run_needs_on_workers(as_of, 1, chunk_size)
    print(f"  1 worker process:  {one:8.2f} s (chunks {one_chunks:.2f} s, {used_one} process used)")
    two, two_chunks, used_two = _run_needs_on_workers(as_of, 2, chunk_size)
    print(f"  2 worker processes: {two:8.2f} s (chunks {two_chunks:.2f} s, {used_two} processes used)")
    print(f"  ratio 2/1: {two / one:.2f}  (chunks only: {two_chunks / one_chunks:.2f})")
    return {"one_worker": one, "two_workers": two, "one_worker_chunks": one_chunks, "two_workers_chunks": two_chunks}


if __name__ == "__main__":
    main()
