"""Benchmark of the scoring stages (dormancy, churn) against the tier stage, on PostgreSQL, in the
steady nightly state.

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big \\
        .venv/bin/python bench/scoring_bench.py --as-of 2026-11-20

In one run on the same database (Celery eager, one process), for D = --as-of:
1. the rollup catches up (not timed against anything);
2. the night of D - 1 (dormancy and churn) from an EMPTY running summary
   (segmentation/summary.py discarded first): its dormancy stage builds the summary from the
   whole rollup and is printed as the cold first build; nothing else of it is compared;
3. the tier stage for D (--repeat runs), the reactivation stage and, unless --skip-needs, the
   needs stage;
4. the dormancy and churn stages for D, run --runs times through the nightly orchestration.
   Run 1 is the steady nightly case: the summary moves from D - 1 to D (it recomputes the
   clients whose rows expire on D or who have new trades; the number is printed). Later runs
   re-run the same date (the summary is already on D);
5. the tier stage --repeat times again: the baseline is the median of the tier runs before and
   after the scoring runs (on a shared machine the load drifts).
Printed: each run's stage times, with each stage's prepare / chunks / finalize from its run
records, and a digest per result table (the published activity and churn rows without id and
generation, the date's lifetime fit, the running summary and its state, the date's segment
history); the target ratio (dormancy + churn of run 1) / tier stage, target <= 2; the same with
the medians over the runs; the lifetime fit's time; and whether every run gave identical
results. Each timed part also prints the CPU seconds it used, on the whole machine (PostgreSQL's
backends and parallel workers included) and in this process; the summary divides the pair's
machine CPU by the cores: the wall time the same work would take if nothing ever waited, the
least that overlapping Python with PostgreSQL or adding worker processes on this machine could
reach (on a quiet machine: other processes' CPU counts too). `--digest-only` prints the digests
of the results stored for --as-of and stops (to compare two versions of the code: run the bench
with each, then compare).

`--workers N` (needs REDIS_URL) then measures the production shape too: docker-compose.yml runs
one Celery worker with `--concurrency 2`, so a stage's chunks run two at a time. The summary
is put back on D - 1 (a cold night of D - 1, eager), then the dormancy and churn stages of D run
on N real worker processes through Redis (run 1: the summary moves; run 2: a re-run), and the
tier stage of D runs on the same workers (--repeat times). Printed: the same ratios, against
the tier stage on the workers and against the eager tier median, and whether the worker runs
stored the same results as the eager runs (digest).
It writes only the app's own tables; the ledger is read, never changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))  # bench_workers
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--repeat", type=int, default=3, help="tier stage repetitions (median)")
    parser.add_argument("--runs", type=int, default=2, help="runs of the scoring stages (identical results check)")
    parser.add_argument("--skip-needs", action="store_true", help="do not time the needs stage")
    parser.add_argument(
        "--workers", type=int, default=0, help="also run the stages on N real Celery worker processes (REDIS_URL)"
    )
    parser.add_argument(
        "--digest-only", action="store_true", help="print the digests of the results stored for --as-of and stop"
    )
    args = parser.parse_args()

    import django

    django.setup()
    if args.digest_only:
        print(f"digest {digest(args.as_of)}")
        for name, value in digests(args.as_of).items():
            print(f"  {name:16} {value}")
        return
    from django.conf import settings
    from django.db import connection

    from brokercrm.celery import app
    from brokercrm.models import StageRun
    from brokercrm.nightly.orchestration import nightly_run_start
    from retention.models import LifetimeFit
    from segmentation.rollup import activity_rollup
    from segmentation.summary import discard_summary
    from segmentation.tiering import reactivation_compute, tiers_compute

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    if args.workers and not settings.REDIS_URL:
        sys.exit("--workers needs a broker: set REDIS_URL=redis://127.0.0.1:6379/2")
    app.conf.task_always_eager = True  # the eager runs, even with REDIS_URL set (--workers)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client")
        clients = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM clients_trade")
        trades = cursor.fetchone()[0]
    print(f"database {connection.settings_dict['NAME']}: {clients:,} clients, {trades:,} trades, as of {args.as_of}")

    started = time.perf_counter()
    activity_rollup()
    print(f"  rollup catch-up                               {time.perf_counter() - started:8.2f} s")

    discard_summary()
    cold = scoring_night(args.as_of - dt.timedelta(days=1), "D - 1, cold (no summary)")
    print(f"     summary: {summary_state()}")

    tier_times, tier_cpu = [], []
    for attempt in range(args.repeat):
        with CpuMeter() as meter:
            tiers_compute(as_of=args.as_of)
        tier_times.append(meter.wall)
        tier_cpu.append(meter)
        print(f"  tier stage (#{attempt + 1})                              {tier_times[-1]:8.2f} s; {meter}")
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
        runs.append(scoring_night(args.as_of, f"D run {attempt + 1}"))
        print(f"     summary: {summary_state()}")
    # The tier stage again after the scoring runs: on a shared machine the load drifts, so the
    # baseline is the median of the tier runs before and after.
    for attempt in range(args.repeat):
        with CpuMeter() as meter:
            tiers_compute(as_of=args.as_of)
        tier_times.append(meter.wall)
        tier_cpu.append(meter)
        print(f"  tier stage (after, #{attempt + 1})                       {tier_times[-1]:8.2f} s; {meter}")
    tier = statistics.median(tier_times)
    fit = LifetimeFit.objects.get(as_of=args.as_of)
    print(f"  fit: r={fit.r:.6g} alpha={fit.alpha:.6g} a={fit.a:.6g} b={fit.b:.6g} on {fit.customers:,} clients")
    print(f"       Gamma-Gamma {fit.gg_status}: p={fit.p} q={fit.q} v={fit.v}")

    print("\nsummary")
    print(f"  tier stage (median of {len(tier_times)}, before and after)      {tier:8.2f} s")
    print(f"  cold first build (dormancy of D - 1, no summary) {cold['dormancy']:6.2f} s")
    first = runs[0]
    both_first = first["dormancy"] + first["churn"]
    print(f"  run 1 (summary D - 1 -> D): dormancy {first['dormancy']:.2f} s, churn {first['churn']:.2f} s")
    ratio = both_first / tier
    print(f"  dormancy + churn, run 1                        {both_first:8.2f} s   ratio {ratio:5.2f}  (target <= 2)")
    dormancy = statistics.median(r["dormancy"] for r in runs)
    churn = statistics.median(r["churn"] for r in runs)
    both = dormancy + churn
    print(f"  dormancy stage (median of {len(runs)} runs)             {dormancy:8.2f} s   ratio {dormancy / tier:5.2f}")
    print(f"  churn stage (incl. fit; median)                {churn:8.2f} s   ratio {churn / tier:5.2f}")
    print(f"  dormancy + churn (medians)                     {both:8.2f} s   ratio {both / tier:5.2f}  (target <= 2)")
    print(f"  target met (run 1): {both_first <= 2 * tier}")
    for line in cpu_bound_lines(first["cpu"], tier_cpu, tier):
        print(line)
    if needs is not None:
        step = tier + reactivation + needs
        print(f"  segment step: tiers + reactivation + needs     {step:8.2f} s")
        print(f"  dormancy + churn vs the segment step                      ratio {both / step:5.2f}")
    same = len({r["digest"] for r in runs}) == 1
    print(f"  identical results over {len(runs)} runs: {same} (digest {runs[-1]['digest']})")
    if args.workers:
        on_workers(args, tier, runs[-1]["digest"])


def on_workers(args, eager_tier: float, eager_digest: str) -> None:
    """The steady night of --as-of on --workers real worker processes (see the docstring)."""
    from bench_workers import celery_workers, run_on_workers

    from brokercrm.models import RunStatus, StageRun
    from segmentation.summary import discard_summary

    print(f"\non {args.workers} worker processes (Redis)")
    discard_summary()
    scoring_night(args.as_of - dt.timedelta(days=1), "D - 1, cold (eager, puts the summary on D - 1)")
    runs, tier_times = [], []
    with celery_workers(args.workers):
        for attempt in range(2):
            runs.append(scoring_night(args.as_of, f"D run {attempt + 1} on the workers", start=run_on_workers))
            print(f"     summary: {summary_state()}")
        tier_cpu = []
        for attempt in range(args.repeat):
            with CpuMeter() as meter:
                run = run_on_workers(as_of=args.as_of, stages=["tiers"])
            tier_cpu.append(meter)
            if run.status != RunStatus.SUCCEEDED:
                sys.exit(f"tier stage failed on the workers: {run.error[:500]}")
            stage = StageRun.objects.get(run=run, attempt=run.attempt, name="tiers")
            tier_times.append((stage.finished_at - stage.started_at).total_seconds())
            print(f"  tier stage on the workers (#{attempt + 1})         {tier_times[-1]:8.2f} s")
    tier = statistics.median(tier_times)
    first = runs[0]["dormancy"] + runs[0]["churn"]
    both = statistics.median(r["dormancy"] for r in runs) + statistics.median(r["churn"] for r in runs)
    print(f"\nsummary on {args.workers} worker processes")
    print(f"  tier stage on the workers (median of {len(tier_times)})         {tier:8.2f} s")
    print(f"  dormancy + churn, run 1                        {first:8.2f} s   ratio {first / tier:5.2f}  (target <= 2)")
    print(f"  dormancy + churn (medians)                     {both:8.2f} s   ratio {both / tier:5.2f}")
    print(f"  run 1 against the eager tier median ({eager_tier:.2f} s)              ratio {first / eager_tier:5.2f}")
    for line in cpu_bound_lines(runs[0]["cpu"], tier_cpu, tier):
        print(line)
    same = {r["digest"] for r in runs} == {eager_digest}
    print(f"  the same results as the eager runs: {same} (digest {runs[-1]['digest']})")


class CpuMeter:
    """CPU seconds used while it runs: by this process (user + system) and by the whole machine
    (every core's busy time from /proc/stat: this process, PostgreSQL's backends and parallel
    workers, Celery workers ...). On a machine doing nothing else, machine CPU / cores is the
    least wall time the same work could take if nothing ever waited: the bound that overlapping
    Python with PostgreSQL, or more worker processes, could at best reach. None where /proc/stat
    is missing (not Linux)."""

    def __enter__(self) -> CpuMeter:
        self._process = _process_cpu()
        self._machine = _machine_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.process = _process_cpu() - self._process
        machine = _machine_cpu()
        self.machine = None if machine is None or self._machine is None else machine - self._machine

    def __str__(self) -> str:
        machine = "?" if self.machine is None else f"{self.machine:.1f}"
        return f"CPU: {machine} s on the machine ({self.process:.1f} s in this process)"


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu() -> float | None:
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_bound_lines(pair: CpuMeter, tiers: list[CpuMeter], tier_wall: float) -> list[str]:
    """The CPU figures of the summary: the pair's and the tier stage's machine CPU, and the least
    wall time the pair's work could take on this machine's cores against the tier stage."""
    cores = os.cpu_count() or 1
    if pair.machine is None or any(meter.machine is None for meter in tiers):
        return ["  CPU: /proc/stat not readable here"]
    tier_cpu = statistics.median(meter.machine for meter in tiers)
    bound = pair.machine / cores
    return [
        f"  machine CPU, dormancy + churn run 1            {pair.machine:8.1f} s   ({pair.process:.1f} s here)",
        f"  machine CPU, tier stage (median)               {tier_cpu:8.1f} s",
        f"  pair's CPU / {cores} cores (wall if nothing waited)    {bound:8.2f} s   ratio {bound / tier_wall:5.2f}"
        "  (the tier stage's wall time)",
    ]


def scoring_night(as_of, label: str, start=None) -> dict:
    """Run dormancy + churn for `as_of` through the orchestration (`start(as_of=, stages=)`, to
    the run's end: eagerly by default); their times and digest."""
    from brokercrm.models import StageRun
    from brokercrm.nightly.orchestration import nightly_run_start
    from retention.models import LifetimeFit

    if start is None:

        def start(**options):
            return nightly_run_start(trigger="command", force_lock=True, **options)

    with CpuMeter() as meter:
        run = start(as_of=as_of, stages=["dormancy", "churn"])
    wall = meter.wall
    run.refresh_from_db()
    stages = {stage.name: stage for stage in StageRun.objects.filter(run=run, attempt=run.attempt).order_by("position")}
    if run.status != "succeeded":
        sys.exit(f"run {run.pk} {run.status}: {[(s.name, s.status, s.error) for s in stages.values()]}")
    seconds = {name: (stage.finished_at - stage.started_at).total_seconds() for name, stage in stages.items()}
    fit = LifetimeFit.objects.get(as_of=as_of)
    print(
        f"  {label}: dormancy {seconds['dormancy']:.2f} s, churn {seconds['churn']:.2f} s "
        f"(lifetime fit {fit.fit_seconds:.2f} s, {fit.status}), wall {wall:.2f} s; {meter}"
    )
    parts = digests(as_of)
    combined = _combined(parts)
    print(f"     digest {combined}: " + ", ".join(f"{name} {value}" for name, value in parts.items()))
    print(f"     {stage_breakdown(stages)}")
    return {"wall": wall, **seconds, "fit": fit.fit_seconds, "digest": combined, "cpu": meter}


def stage_breakdown(stages: dict) -> str:
    """prepare (start to the first chunk), chunks (first chunk start to last chunk end) and
    finalize (the rest, publication included) of each stage, from its ChunkRun records."""
    from brokercrm.models import ChunkRun

    parts = []
    for name, stage in stages.items():
        chunks = list(ChunkRun.objects.filter(stage_run=stage).values_list("started_at", "finished_at"))
        if not chunks or any(start is None or end is None for start, end in chunks):
            continue
        first = min(start for start, _ in chunks)
        last = max(end for _, end in chunks)
        parts.append(
            f"{name}: prepare {(first - stage.started_at).total_seconds():.2f} + "
            f"{len(chunks)} chunks {(last - first).total_seconds():.2f} + "
            f"finalize {(stage.finished_at - last).total_seconds():.2f} s"
        )
    return "; ".join(parts)


def summary_state() -> str:
    from segmentation.models import ActivitySummaryState

    state = ActivitySummaryState.objects.filter(name="activity").first()
    if state is None:
        return "none"
    return f"as of {state.as_of}, {state.rows:,} rows, {state.recomputed:,} clients recomputed by the last move"


# The reasons and signals of a score (retention/reasons.py: the reason slots, each signal's
# strength, the figures behind the reasons), with NULLs marked (concat_ws would skip them).
_REASON_COLUMNS = [
    *(f"coalesce({name}::text, '-')" for k in (1, 2, 3) for name in (f"reason_{k}", f"reason_{k}_points")),
    *(
        f"signal_{name}"
        for name in ("model", "dormant", "overdue", "decline", "outflow", "complaints", "detractor", "low_csat")
    ),
    "signal_losses",
    "signal_downgrade",
    *(
        f"coalesce({name}::text, '-')"
        for name in (
            "p_no_trade",
            "window_days",
            "days_since_last_trade",
            "typical_gap_days",
            "recent_trading_days",
            "baseline_trading_days",
            "outflow_share",
            "outflow_window_days",
            "outflow_amount",
            "loss_amount",
            "loss_share",
            "losing_closes",
            "downgrade_from",
            "downgrade_to",
            "downgrade_on",
            "open_complaints",
            "nps_score",
            "csat_score",
        )
    ),
]

_DIGEST_QUERIES = {
    # Every stored column but id and generation, in client order.
    "activity": (
        "SELECT md5(string_agg(concat_ws('|', as_of, client_id, segment, first_trade_on, last_trade_on, "
        "days_since_last_trade, trading_days, recent_trading_days, baseline_trading_days, typical_gap_days, "
        "overdue_ratio, trades_year, commission_year, commission, about_to_go_dormant, regulatory_dormant, "
        "cash, market_value), ',' ORDER BY client_id)), count(*) FROM retention_clientactivity"
    ),
    "churn": (
        "SELECT md5(string_agg(concat_ws('|', as_of, client_id, tier, segment, risk, p_alive, "
        "expected_trading_days, clv, clv_simple, value_at_risk, model_used, "
        f"{', '.join(_REASON_COLUMNS)}), ',' ORDER BY client_id)), count(*) FROM retention_churnscore"
    ),
    # The fit of the date, every stored figure but its id, run and time taken.
    "fit": (
        "SELECT md5(string_agg(concat_ws('|', as_of, status, message, time_unit, history_start, customers, "
        "distinct_rows, r, alpha, a, b, log_likelihood, gg_status, p, q, v, gg_log_likelihood), ',' "
        "ORDER BY as_of)), count(*) FROM retention_lifetimefit WHERE as_of = %(as_of)s"
    ),
    "summary": (
        "SELECT md5(string_agg(concat_ws('|', client_id, valid_until, first_day, last_day, trading_days, "
        "recent_days, baseline_days, trades, commission, trades_year, commission_year), ',' ORDER BY client_id)), "
        "count(*) FROM segmentation_clientactivitysummary"
    ),
    "summary_state": (
        "SELECT md5(string_agg(concat_ws('|', name, as_of, trade_watermark, recent_window, baseline_window, rows, "
        "recomputed), ',' ORDER BY name)), count(*) FROM segmentation_activitysummarystate"
    ),
    "segment_log": (
        "SELECT md5(string_agg(concat_ws('|', as_of, base, depth, rows, chain_rows, watermark, params::text), ',' "
        "ORDER BY as_of)), count(*) FROM retention_segmentlogdate WHERE as_of = %(as_of)s"
    ),
    "segment_changes": (
        "SELECT md5(string_agg(concat_ws('|', as_of, client_id, segment), ',' ORDER BY client_id)), count(*) "
        "FROM retention_segmentchange WHERE as_of = %(as_of)s"
    ),
}


def digests(as_of) -> dict[str, str]:
    """Per result table, md5 of its rows as text (ids, generations, run ids and timings left out):
    the published activity and churn rows, the lifetime fit, the running summary and its state,
    and the segment history of `as_of`."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        for name, sql in _DIGEST_QUERIES.items():
            cursor.execute(sql, {"as_of": as_of})
            value, rows = cursor.fetchone()
            out[name] = f"{(value or '-')[:12]}/{rows}"
    return out


def digest(as_of=None) -> str:
    """One digest of every result table (see digests)."""
    if as_of is None:
        from retention.models import ClientActivity

        as_of = ClientActivity.objects.values_list("as_of", flat=True).first()
    return _combined(digests(as_of))


def _combined(parts: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:16]


if __name__ == "__main__":
    main()
