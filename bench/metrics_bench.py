"""Benchmark of the nightly metrics stage against the tier stage, in the same run, in the steady
state of the nightly (every night runs, so the segment history covers the period start).

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_load_big \\
        .venv/bin/python bench/metrics_bench.py --as-of 2026-11-22 --seed-feedback

On a database seeded with bench/seed_large.py (and migrated), it:

1. optionally adds synthetic feedback (--seed-feedback): complaints for ~2% of the clients and
   survey answers for ~5% (CSAT and NPS), dated in the 120 days up to the as-of date, through
   one INSERT ... SELECT each (the demo seeder writes no feedback), and 24 months of marketing
   spend;
2. builds the steady state, NOT measured: the dormancy stage of the nights S - (N - 1) .. S, with
   S = D - 30 the period start and N = --history-nights (default 2). The first of them starts a
   chain in the segment history (a baseline: every client) unless one continues, the others
   record only the clients whose segment changed, as every night does. (A real chain holds up
   to segment_log.CHECKPOINT_NIGHTS change sets; the rows a read replays are printed.)
   --reuse-history skips this when a previous run of the benchmark recorded S already.
3. runs ONE nightly run of D, measured, Celery eager in this process (REDIS_URL unset): rollup,
   tiers, dormancy (records D in the history), churn (stores the model CLV per client), metrics.
   --full-night adds reactivation and needs, as in the real night (needs takes minutes);
4. prints each stage's wall-clock time from its StageRun record and the ratio metrics / tiers
   (target <= 1.0);
5. runs the metrics stage of D again (the same date: idempotent) and checks the stored rows did
   not change;
6. prints the cold figure: the metrics stage of D without the segment history (the segments of S
   computed from the rollup, as on a first night or after a gap), and checks it stores the same
   rows;
7. prints where the steady stage's time goes (reads, segments of S, model CLV, pandas).

It writes only the apps' own tables (rollup, tiers, activity, churn scores, segment history,
feedback, metrics, run records). The run leaves D's results published.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")

SEGMENTATION = ["rollup", "tiers"]
FULL_NIGHT = ["reactivation", "needs"]
# The scoring stages run between them in the real night (the metrics stage reads their rows).
SCORING = ["dormancy", "churn"]


def seed_feedback(as_of: dt.date) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from feedback.models import Complaint, SurveyQuestion, SurveyResponse

    zone = timezone.get_default_timezone()
    end = dt.datetime.combine(as_of, dt.time(23), tzinfo=zone)
    with transaction.atomic():
        Complaint.objects.all().delete()
        SurveyResponse.objects.all().delete()
        csat, _ = SurveyQuestion.objects.get_or_create(kind="csat", text="How satisfied are you with our service?")
        nps, _ = SurveyQuestion.objects.get_or_create(kind="nps", text="How likely are you to recommend us?")
        with connection.cursor() as cursor:
            # Complaints: every 50th client; opened 0-119 days back; 2/3 answered, 1/2 resolved.
            cursor.execute(
                "INSERT INTO feedback_complaint (client_id, channel, category, severity, description, status, "
                "opened_at, first_response_at, resolved_at, first_response_due_at, resolution_due_at, "
                "escalation_reason, root_cause, resolution, created_at, updated_at) "
                "SELECT id, 'phone', 'service', 'medium', 'synthetic', "
                "CASE WHEN id %% 2 = 0 THEN 'resolved' WHEN id %% 3 <> 0 THEN 'in_progress' ELSE 'open' END, "
                "o, CASE WHEN id %% 2 = 0 OR id %% 3 <> 0 THEN o + interval '5 hours' END, "
                "CASE WHEN id %% 2 = 0 THEN o + interval '50 hours' END, o + interval '24 hours', "
                "o + interval '168 hours', '', CASE WHEN id %% 2 = 0 THEN 'x' ELSE '' END, "
                "CASE WHEN id %% 2 = 0 THEN 'y' ELSE '' END, now(), now() "
                "FROM (SELECT id, %s::timestamptz - (id %% 120) * interval '1 day' - interval '60 hours' AS o "
                "FROM clients_client WHERE id %% 50 = 0) c",
                [end],
            )
            complaints = cursor.rowcount
            cursor.execute(
                "INSERT INTO feedback_surveyresponse (client_id, question_id, kind, score, comment, answered_at, "
                "source, created_at) "
                "SELECT id, CASE WHEN id %% 2 = 0 THEN %s ELSE %s END, "
                "CASE WHEN id %% 2 = 0 THEN 'csat' ELSE 'nps' END, "
                "CASE WHEN id %% 2 = 0 THEN 1 + id %% 5 ELSE id %% 11 END, '', "
                "%s::timestamptz - (id %% 120) * interval '1 day', 'api', now() "
                "FROM clients_client WHERE id %% 20 = 1",
                [csat.pk, nps.pk, end],
            )
            answers = cursor.rowcount
        # Marketing spend: firm-wide 200,000 a month over the 24 months before the as-of date.
        from decimal import Decimal

        from metrics.models import MarketingSpend

        MarketingSpend.objects.all().delete()
        month = as_of.replace(day=1)
        for _ in range(24):
            month = (month - dt.timedelta(days=1)).replace(day=1)
            MarketingSpend.objects.create(month=month, amount=Decimal("200000.00"), note="synthetic")
    print(f"seeded {complaints:,} complaints, {answers:,} survey answers and 24 months of marketing spend")


def stored_values(as_of: dt.date) -> list:
    from metrics.models import MetricValue

    return sorted(MetricValue.objects.filter(as_of=as_of).values_list("definition_id", "dimension", "key", "value"))


def run_stages(as_of: dt.date, stages: list[str]):
    from brokercrm.models import RunStatus, StageRun
    from brokercrm.nightly.orchestration import nightly_run_start

    run = nightly_run_start(as_of=as_of, stages=stages, trigger="test", force_lock=True)
    run.refresh_from_db()
    if run.status != RunStatus.SUCCEEDED:
        sys.exit(f"run of {as_of} failed: {run.error[:2000]}")
    return {
        stage.name: (stage.finished_at - stage.started_at).total_seconds()
        for stage in StageRun.objects.filter(run=run, attempt=run.attempt)
    }


def tier_steady_state(as_of: dt.date, start: dt.date) -> None:
    """The tiers of S as a real night finds them (not measured). Only the last few nights and
    the last run of each month keep their per-client tier rows (TIER_KEEP_DAILY, 7), so S
    (30 nights back) is usually rebuilt by tiers_at from the last kept date before it plus the
    tier changes since. Tier nights are run for the last day of the month before S, for S and
    for the last day of S's month, and TIER_KEEP_DAILY is set to 2 for this process, so D's tier
    stage drops S's rows and the metrics stage rebuilds S like a real night (a month-end S stays
    kept, as it would)."""
    from django.conf import settings

    from segmentation.models import TierRun
    from segmentation.tiering import tiers_prune

    settings.TIER_KEEP_DAILY = 2
    month_before = start.replace(day=1) - dt.timedelta(days=1)
    month_last = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    for night in sorted({month_before, start, month_last}):
        if night >= as_of or TierRun.objects.published().filter(as_of=night).exists():
            continue
        started = time.perf_counter()
        run_stages(night, ["tiers"])
        print(f"  tiers of {night} (for the tiers of S) in {time.perf_counter() - started:6.1f} s")
    tiers_prune(keep_daily=2)
    kept = TierRun.objects.retained().filter(as_of=start).exists()
    base = TierRun.objects.retained().filter(as_of__lt=start).order_by("-as_of").values_list("as_of", flat=True).first()
    how = "read as stored" if kept else f"rebuilt from {base} and the tier changes since"
    print(f"  the tiers of S are {how}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--seed-feedback", action="store_true", help="(re)write synthetic complaints and answers")
    parser.add_argument("--history-nights", type=int, default=2, help="nights recorded up to S before D (>= 1)")
    parser.add_argument("--full-night", action="store_true", help="also run reactivation and needs")
    parser.add_argument(
        "--reuse-history", action="store_true", help="skip step 2 when S is already recorded (a previous run of this)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="then run the tier stage and the metrics stage of D alternately N times each: the median ratio of "
        "the pairs is the figure to trust on a busy machine",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    if settings.REDIS_URL:
        sys.exit("Unset REDIS_URL: the stages run eagerly in this process.")
    from metrics import definitions
    from metrics.snapshot import snapshot_compute
    from retention import segment_log
    from retention.models import SegmentLogDate

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client")
        clients = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM clients_trade")
        trades = cursor.fetchone()[0]
    print(f"database {connection.settings_dict['NAME']}: {clients:,} clients, {trades:,} trades, as of {args.as_of}")
    if args.seed_feedback:
        seed_feedback(args.as_of)

    from segmentation.rollup import activity_rollup

    # The rollup catches up first (not measured): a nightly run reads one new day, not the
    # whole ledger of a freshly seeded database.
    activity_rollup()
    start = args.as_of - dt.timedelta(days=definitions.PERIOD_DAYS)
    reuse = args.reuse_history and segment_log._chain(start) is not None
    if reuse:
        print(f"\nsteady state: the segment history of S = {start} recorded by a previous run is reused")
    else:
        print(f"\nsteady state (not measured): the dormancy stage of {args.history_nights} night(s) up to S = {start}")
    for back in range(args.history_nights - 1 if not reuse else -1, -1, -1):
        night = start - dt.timedelta(days=back)
        started = time.perf_counter()
        run_stages(night, ["dormancy"])
        entry = SegmentLogDate.objects.get(as_of=night)
        kind = "baseline" if entry.base is None else f"changes since {entry.base}"
        print(f"  {night}: recorded {entry.rows:,} rows ({kind}) in {time.perf_counter() - started:6.1f} s")
    entry = SegmentLogDate.objects.get(as_of=start)
    print(f"  a read of S replays {entry.chain_rows:,} rows (baseline + {entry.depth} change set(s))")
    tier_steady_state(args.as_of, start)

    stages_run = [*SEGMENTATION, *(FULL_NIGHT if args.full_night else []), *SCORING, "metrics"]
    started = time.perf_counter()
    stages = run_stages(args.as_of, stages_run)
    total = time.perf_counter() - started
    entry = SegmentLogDate.objects.get(as_of=args.as_of)
    print(f"\nstage times (one nightly run of {args.as_of}, measured)")
    for name in stages_run:
        print(f"  {name:<14} {stages.get(name, float('nan')):8.2f} s")
    print(f"  whole run      {total:8.2f} s")
    print(f"  (the dormancy stage recorded {entry.rows:,} changed segments of {args.as_of} against {entry.base})")
    metrics, tiers = stages["metrics"], stages["tiers"]
    print("\nsummary")
    print(f"  tier stage                {tiers:8.2f} s")
    print(f"  metrics stage (steady)    {metrics:8.2f} s   ratio to tiers {metrics / tiers:5.2f}  (<= 1.0)")

    before = stored_values(args.as_of)
    started = time.perf_counter()
    result = snapshot_compute(as_of=args.as_of)
    again = time.perf_counter() - started
    after = stored_values(args.as_of)
    print(
        f"  metrics again (same date) {again:8.2f} s   {result.rows:,} rows, identical: {before == after}, "
        f"changed values: {result.detail.get('recomputed', {}).get('changed_values')}"
    )
    print(f"  left out: {result.detail['left_out']}")

    real = segment_log.segments_on
    segment_log.segments_on = lambda as_of: None
    try:
        started = time.perf_counter()
        result = snapshot_compute(as_of=args.as_of)
        cold = time.perf_counter() - started
    finally:
        segment_log.segments_on = real
    cold_values = stored_values(args.as_of)
    print(
        f"  metrics stage (cold: no segment history, S computed) {cold:8.2f} s   ratio to tiers {cold / tiers:5.2f}, "
        f"identical: {cold_values == before}"
    )

    # Where the steady stage's time goes.
    from metrics import snapshot
    from retention import selectors

    def timed(label: str, function, *arguments, **keywords):
        started = time.perf_counter()
        value = function(*arguments, **keywords)
        print(f"    {label:<40} {time.perf_counter() - started:6.2f} s")
        return value

    print("  breakdown (steady, each part alone)")
    timed("book, tiers, losers, feedback (build_book)", snapshot.build_book, args.as_of, fast=True)
    timed("segments of S (history)", selectors.activity_segments, start)
    timed("segments of D (published rows)", selectors.activity_segments, args.as_of)
    timed("model CLV (published churn scores)", selectors.model_clv, args.as_of)
    timed("spend", snapshot.read_spend, args.as_of)
    timed("sign-ins of the period", snapshot.read_logins, args.as_of)
    timed("compute (all of the above + pandas)", snapshot.compute, args.as_of)

    if args.pairs:
        # Each stage alone in its own nightly run of D (both are idempotent for a date), tier
        # stage then metrics stage, so load that comes and goes on a shared machine hits both
        # sides of a pair alike.
        print(f"\n  {args.pairs} alternating pairs, each stage alone in a run of {args.as_of}")
        ratios = []
        for number in range(1, args.pairs + 1):
            tier_time = run_stages(args.as_of, ["tiers"])["tiers"]
            metrics_time = run_stages(args.as_of, ["metrics"])["metrics"]
            ratios.append(metrics_time / tier_time)
            print(f"    pair {number}: tiers {tier_time:6.2f} s, metrics {metrics_time:6.2f} s, {ratios[-1]:5.2f}")
        print(f"  median ratio of the pairs {statistics.median(ratios):5.2f}  (<= 1.0)")


if __name__ == "__main__":
    main()
