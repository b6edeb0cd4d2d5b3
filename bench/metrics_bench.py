"""Benchmark of the nightly metrics stage against the segmentation stages, in the same run.

    DATABASE_URL=postgres://brokercrm:brokercrm@127.0.0.1:5432/h_fb_bench \\
        .venv/bin/python bench/metrics_bench.py --as-of 2026-11-20 --seed-feedback

On a database seeded with bench/seed_large.py (and migrated), it:

1. optionally adds synthetic feedback (--seed-feedback): complaints for ~2% of the clients and
   survey answers for ~5% (CSAT and NPS), dated in the 120 days up to the as-of date, through
   one INSERT ... SELECT each (the demo seeder writes no feedback), and 24 months of marketing
   spend;
2. runs one nightly run of the as-of date with the segmentation stages (rollup, tiers,
   reactivation, needs) and the metrics stage, Celery eager in this process (REDIS_URL unset);
3. prints each stage's wall-clock time from its StageRun record (the scoring stages dormancy and
   churn run too, as in the real night) and the ratios
   metrics / segmentation stages (target <= 1.0), plus metrics / tiers for reference;
4. runs the metrics stage once more (the same date: idempotent) and checks the stored rows
   did not change.

It writes only the apps' own tables (rollup, tiers, needs, feedback, metrics, run records).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")

SEGMENTATION = ["rollup", "tiers", "reactivation", "needs"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--seed-feedback", action="store_true", help="(re)write synthetic complaints and answers")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    if settings.REDIS_URL:
        sys.exit("Unset REDIS_URL: the stages run eagerly in this process.")
    from brokercrm.models import RunStatus, StageRun
    from brokercrm.nightly.orchestration import nightly_run_start
    from metrics.models import MetricValue
    from metrics.snapshot import snapshot_compute

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
    started = time.perf_counter()
    run = nightly_run_start(
        as_of=args.as_of, stages=[*SEGMENTATION, *SCORING, "metrics"], trigger="test", force_lock=True
    )
    run.refresh_from_db()
    total = time.perf_counter() - started
    if run.status != RunStatus.SUCCEEDED:
        sys.exit(f"run failed: {run.error[:2000]}")
    stages = {
        stage.name: (stage.finished_at - stage.started_at).total_seconds()
        for stage in StageRun.objects.filter(run=run, attempt=run.attempt)
    }
    print("\nstage times (one nightly run, same database)")
    for name in [*SEGMENTATION, *SCORING, "metrics"]:
        print(f"  {name:<14} {stages.get(name, float('nan')):8.2f} s")
    segmentation = sum(stages.get(name, 0.0) for name in SEGMENTATION)
    metrics = stages["metrics"]
    print(f"  whole run      {total:8.2f} s")
    print("\nsummary")
    print(f"  segmentation stages {segmentation:8.2f} s")
    print(f"  metrics stage       {metrics:8.2f} s   ratio {metrics / segmentation:5.2f}  (<= 1.0)")
    print(f"  metrics / tiers stage alone        ratio {metrics / stages['tiers']:5.2f}")
    scoring = sum(stages.get(name, 0.0) for name in SCORING)
    print(f"  scoring stages (dormancy + churn) {scoring:8.2f} s   ratio {scoring / segmentation:5.2f}  (<= 2.0)")
    tier_step = stages["tiers"] + stages["reactivation"]
    print(f"  scoring / (tiers + reactivation)   ratio {scoring / tier_step:5.2f}")
    print(f"  metrics / (tiers + reactivation)   ratio {metrics / tier_step:5.2f}")

    before = sorted(
        MetricValue.objects.filter(as_of=args.as_of).values_list("definition_id", "dimension", "key", "value")
    )
    started = time.perf_counter()
    result = snapshot_compute(as_of=args.as_of)
    again = time.perf_counter() - started
    after = sorted(
        MetricValue.objects.filter(as_of=args.as_of).values_list("definition_id", "dimension", "key", "value")
    )
    print(f"  metrics again (same date)   {again:8.2f} s, {result.rows:,} rows, identical: {before == after}")
    print(f"  left out: {result.detail['left_out']}")

    # Where the metrics stage's time goes: the retention recomputations (activity segments on
    # S and D, model CLV) against the stage's own reads and pandas.
    from metrics import snapshot

    real = snapshot.optional_source
    started = time.perf_counter()
    snapshot.compute(args.as_of)
    with_sources = time.perf_counter() - started
    snapshot.optional_source = lambda name: None
    try:
        started = time.perf_counter()
        snapshot.compute(args.as_of)
        own = time.perf_counter() - started
    finally:
        snapshot.optional_source = real
    print(f"  compute, with retention sources     {with_sources:8.2f} s")
    print(f"  compute, own reads and pandas only  {own:8.2f} s   ratio to tiers {own / stages['tiers']:5.2f}")


if __name__ == "__main__":
    main()
