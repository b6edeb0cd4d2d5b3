"""The KPI snapshot of an as-of date D: read the aggregates (SQL, only rows dated <= D), compute
the metrics (metrics/analytics.py), write them with their definition versions in one
transaction. Re-running D replaces D's rows of the same versions and nothing else.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from importlib import import_module

import numpy as np
import pandas as pd
from django.db import connection, models, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from brokercrm.lib.exchange_time import day_end, day_start
from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import bulk_replace, read_frame, session_work_mem
from clients.models import Client, ClientAssignment, Trade
from feedback.models import Complaint, SurveyResponse
from feedback.selectors import sql_datetime
from metrics import analytics
from metrics import definitions as d
from metrics.models import KpiSnapshot, MarketingSpend, MetricValue
from metrics.services import definitions_effective, definitions_sync
from segmentation.models import ClientDailyActivity
from segmentation.tiering import tiers_at

TIER_NAMES = {1: "vip", 2: "major", 3: "ordinary", 4: "small"}
SEGMENT_METRICS = ("churn_rate", "dormancy_rate", "cost_of_churn")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _days_between(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def read_book(as_of: dt.date) -> pd.DataFrame:
    """Every client opened on or before D with flags, lifetime and trading sums (one query)."""
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    window_first = as_of - dt.timedelta(days=d.VALUE_WINDOW_DAYS - 1)
    clients, activity = _q(Client._meta.db_table), _q(ClientDailyActivity._meta.db_table)
    assignments = _q(ClientAssignment._meta.db_table)
    last_day = "(CASE WHEN c.closed_on IS NOT NULL AND c.closed_on < %s THEN c.closed_on ELSE %s END)"
    # The manager and branch the client had at the end of D (clients.ClientAssignment), so a
    # reassignment after D does not move the client between D's rows; the client's own columns
    # only when no history row exists.
    end = sql_datetime(day_end(as_of))
    sql = (
        "SELECT c.id, COALESCE(CASE WHEN h.id IS NULL THEN c.account_manager_id ELSE h.account_manager_id END, -1), "  # noqa: S608
        "CASE WHEN h.id IS NULL THEN c.branch_id ELSE h.branch_id END, "
        "CASE WHEN c.opened_on <= %s AND (c.closed_on IS NULL OR c.closed_on > %s) THEN 1 ELSE 0 END, "
        "CASE WHEN c.closed_on IS NULL OR c.closed_on > %s THEN 1 ELSE 0 END, "
        "CASE WHEN c.opened_on > %s THEN 1 ELSE 0 END, "
        f"{_days_between(last_day, 'c.opened_on')}, "
        "CAST(ROUND(COALESCE(a.commission, 0) * 100) AS BIGINT), COALESCE(a.trades, 0), COALESCE(a.recent, 0) "
        f"FROM {clients} c LEFT JOIN (SELECT client_id, SUM(commission) AS commission, SUM(trades) AS trades, "
        "SUM(CASE WHEN day > %s THEN trades ELSE 0 END) AS recent "
        f"FROM {activity} WHERE day >= %s AND day <= %s GROUP BY client_id) a ON a.client_id = c.id "
        f"LEFT JOIN {assignments} h ON h.client_id = c.id AND (h.valid_from IS NULL OR h.valid_from < %s) "
        "AND (h.valid_to IS NULL OR h.valid_to >= %s) "
        "WHERE c.opened_on <= %s"
    )
    params = [start, start, as_of, start, as_of, as_of, start, window_first, as_of, end, end, as_of]
    columns = [
        "client_id",
        "account_manager_id",
        "branch_id",
        "open_start",
        "open_end",
        "new",
        "tenure_days",
        "commission_cents",
        "trades_year",
        "trades_period",
    ]
    with session_work_mem(), transaction.atomic():
        frame = read_frame(sql, params, columns)
    return frame.astype(dict.fromkeys(columns, "int64"))


def read_losers(as_of: dt.date) -> np.ndarray:
    """Ids of clients whose realised P&L over the period's trades sums below zero."""
    start = day_start(as_of - dt.timedelta(days=d.PERIOD_DAYS - 1))
    sql = (
        f"SELECT client_id FROM {_q(Trade._meta.db_table)} "  # noqa: S608
        "WHERE executed_at >= %s AND executed_at < %s GROUP BY client_id "
        "HAVING SUM(COALESCE(realized_pnl, 0)) < 0"
    )
    frame = read_frame(sql, [sql_datetime(start), sql_datetime(day_end(as_of))], ["client_id"])
    return frame["client_id"].to_numpy(dtype="int64")


def read_answers(as_of: dt.date) -> pd.DataFrame:
    start = day_start(as_of - dt.timedelta(days=d.SURVEY_WINDOW_DAYS - 1))
    rows = SurveyResponse.objects.filter(answered_at__gte=start, answered_at__lt=day_end(as_of)).values_list(
        "client_id", "kind", "score", "answered_at", "id"
    )
    return pd.DataFrame.from_records(list(rows), columns=["client_id", "kind", "score", "answered_at", "id"])


def read_complaints(as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(complaints opened in the period per client, per-complaint response / resolution hours
    for complaints answered / resolved in the period)."""
    start, end = day_start(as_of - dt.timedelta(days=d.PERIOD_DAYS - 1)), day_end(as_of)
    opened = (
        Complaint.objects.filter(opened_at__gte=start, opened_at__lt=end)
        .values("client_id")
        .order_by("client_id")
        .annotate(n=Count("id"))
    )
    counts = pd.DataFrame.from_records(list(opened.values_list("client_id", "n")), columns=["client_id", "n"])
    handled = Complaint.objects.filter(
        Q(first_response_at__gte=start, first_response_at__lt=end) | Q(resolved_at__gte=start, resolved_at__lt=end)
    ).values_list("client_id", "opened_at", "first_response_at", "resolved_at")

    def in_period(moment: dt.datetime | None) -> bool:
        return moment is not None and start <= moment < end

    records = []
    for client_id, opened_at, responded, resolved in handled:
        records.append(
            (
                client_id,
                (responded - opened_at).total_seconds() / 3600 if in_period(responded) else np.nan,
                (resolved - opened_at).total_seconds() / 3600 if in_period(resolved) else np.nan,
            )
        )
    times = pd.DataFrame.from_records(records, columns=["client_id", "response_hours", "resolution_hours"])
    return counts, times


def read_spend(as_of: dt.date) -> tuple[dict[str, float], dict[str, int]]:
    """CAC inputs: spend and clients opened in the CAC months, overall ("") and by branch id."""
    last_month_end = as_of.replace(day=1) - dt.timedelta(days=1)
    if (as_of + dt.timedelta(days=1)).day == 1:
        last_month_end = as_of  # D is itself a month end
    last_month = last_month_end.replace(day=1)
    first_month = last_month
    for _ in range(d.CAC_MONTHS - 1):
        first_month = (first_month - dt.timedelta(days=1)).replace(day=1)
    spend_rows = MarketingSpend.objects.filter(month__gte=first_month, month__lte=last_month).values_list(
        "branch_id", "amount"
    )
    exact: dict[str, Decimal] = {}
    for branch_id, amount in spend_rows:
        exact[""] = exact.get("", Decimal(0)) + amount
        if branch_id is not None:
            exact[str(branch_id)] = exact.get(str(branch_id), Decimal(0)) + amount
    end = day_end(as_of)
    branch_then = ClientAssignment.objects.filter(
        Q(valid_from__isnull=True) | Q(valid_from__lt=end),
        Q(valid_to__isnull=True) | Q(valid_to__gte=end),
        client_id=OuterRef("pk"),
    ).values("branch_id")[:1]
    opened = (
        Client.objects.filter(opened_on__gte=first_month, opened_on__lte=last_month_end)
        .annotate(branch_then=Coalesce(Subquery(branch_then), "branch_id", output_field=models.BigIntegerField()))
        .values("branch_then")
        .order_by("branch_then")
        .annotate(n=Count("id"))
        .values_list("branch_then", "n")
    )
    new = {str(branch_id): int(n) for branch_id, n in opened}
    new[""] = sum(new.values())
    # Summed exactly as Decimal; a float only for the ratio (values are stored to 4 places).
    return {key: float(amount) for key, amount in exact.items()}, new


def optional_source(name: str) -> object | None:
    """retention.selectors.<name> when the scoring work provides it, else None."""
    try:
        module = import_module("retention.selectors")
    except ImportError:
        return None
    return getattr(module, name, None)


def segment_columns(book: pd.DataFrame, as_of: dt.date, segments_fn: object) -> pd.DataFrame:
    """alive_start, lost, dormant_end, lost_commission_cents from the activity segments on S and D."""
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    before = segments_fn(start).rename(columns={"segment": "segment_start"})
    after = segments_fn(as_of).rename(columns={"segment": "segment_end"})
    merged = book.merge(before[["client_id", "segment_start"]], on="client_id", how="left").merge(
        after[["client_id", "segment_end"]], on="client_id", how="left"
    )
    alive = merged["segment_start"].isin(["active", "potentially_active"]) & (merged["open_start"] == 1)
    gone = merged["segment_end"].isin(["dormant", "closed"]) | (merged["open_end"] == 0)
    book = book.copy()
    book["alive_start"] = alive.astype("int64").to_numpy()
    book["lost"] = (alive & gone).astype("int64").to_numpy()
    book["dormant_end"] = ((merged["segment_end"] == "dormant") & (merged["open_end"] == 1)).astype("int64").to_numpy()
    book["lost_commission_cents"] = np.where(book["lost"] == 1, book["commission_cents"], 0)
    return book


def build_book(as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The per-client frame and the complaint times, with the dimension keys; and notes."""
    notes: dict = {}
    book = read_book(as_of)
    for column, day in (("tier", as_of), ("tier_start", as_of - dt.timedelta(days=d.PERIOD_DAYS))):
        tiers = tiers_at(day)
        if tiers is None or tiers.empty:
            book[column] = "none"
        else:
            mapped = book[["client_id"]].merge(tiers, on="client_id", how="left")["tier"]
            book[column] = mapped.map(TIER_NAMES).fillna("none").to_numpy()
    if (book["tier"] == "none").all():
        notes["tiers"] = "No tiers on or before this date: tier rows are left out."
    book["loss"] = np.isin(book["client_id"].to_numpy(), read_losers(as_of)).astype("int64")
    counts, times = read_complaints(as_of)
    book = book.merge(counts.rename(columns={"n": "complaints_period"}), on="client_id", how="left")
    answers = analytics.latest_answers(read_answers(as_of))
    book = book.merge(answers, on="client_id", how="left")
    fill = ["complaints_period", "csat_surveyed", "csat_satisfied", "nps_answered", "nps_promoters", "nps_detractors"]
    book[fill] = book[fill].fillna(0).astype("int64")
    keys = book[["client_id", "tier", "account_manager_id", "branch_id"]]
    times = times.merge(keys, on="client_id", how="inner")
    return book, times, notes


def compute(as_of: dt.date) -> tuple[list[dict], dict]:
    """Every metric row of `as_of` (code, dimension, key, value, numerator, denominator), and
    notes on what was left out."""
    book, times, notes = build_book(as_of)
    segments_fn = optional_source("activity_segments")
    with_segments = segments_fn is not None
    if with_segments:
        book = segment_columns(book, as_of, segments_fn)
    else:
        notes["segments"] = "retention.selectors.activity_segments is not available: " + ", ".join(SEGMENT_METRICS)
    clv_fn = optional_source("model_clv")
    clv = clv_fn(as_of) if clv_fn is not None else None
    if clv is None:
        notes["cltv_model"] = "No lifetime model fitted for this date (retention.selectors.model_clv)."
    else:
        book = book.merge(
            clv[["client_id", "clv"]].astype({"client_id": "int64", "clv": "float64"}), on="client_id", how="left"
        )
    tiers_missing = "tiers" in notes
    spend, new = read_spend(as_of)
    if "" not in spend:
        notes["cac"] = "No marketing spend entered for the CAC months."
    rows = analytics.metric_rows(
        book, times, with_segments=with_segments, with_clv=clv is not None, spend=spend, new_in_spend_months=new
    )
    if tiers_missing:
        rows = [row for row in rows if row["dimension"] != "tier"]
    return rows, notes


def _money(value: float | None) -> float:
    return np.nan if value is None or (isinstance(value, float) and np.isnan(value)) else round(float(value), 4)


def _changed_values(as_of: dt.date, definition_ids: list[int], frame: pd.DataFrame) -> int:
    """How many of the date's stored values (same versions) a recomputation changes, adds or
    drops: a late-arriving ledger row dated on or before D shows up here, on the record."""
    stored = {
        (definition_id, dimension, key): (None if value is None else float(value))
        for definition_id, dimension, key, value in MetricValue.objects.filter(
            as_of=as_of, definition_id__in=definition_ids
        ).values_list("definition_id", "dimension", "key", "value")
    }
    fresh = {
        (int(definition_id), dimension, key): (None if pd.isna(value) else float(value))
        for definition_id, dimension, key, value in zip(
            frame["definition_id"], frame["dimension"], frame["key"], frame["value"], strict=True
        )
    }
    return sum(
        1
        for key in stored.keys() | fresh.keys()
        if key not in stored or key not in fresh or not _same(stored[key], fresh[key])
    )


def _same(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is right
    return abs(left - right) < 0.00005


def snapshot_compute(*, as_of: dt.date, nightly_run_id: int | None = None) -> StageResult:
    """Compute and store the KPI snapshot of `as_of` (see module doc)."""
    definitions_sync()
    effective = definitions_effective(as_of)
    rows, notes = compute(as_of)
    rows = [row for row in rows if row["code"] in effective]
    frame = pd.DataFrame(
        {
            "as_of": as_of,
            "definition_id": [effective[row["code"]].pk for row in rows],
            "dimension": [row["dimension"] for row in rows],
            "key": [row["key"] for row in rows],
            "tier": [row["key"] if row["dimension"] == "tier" else "" for row in rows],
            "account_manager_id": pd.array(
                [int(row["key"]) if row["dimension"] == "account_manager" else None for row in rows], dtype="Int64"
            ),
            "branch_id": pd.array(
                [int(row["key"]) if row["dimension"] == "branch" else None for row in rows], dtype="Int64"
            ),
            "value": [_money(row["value"]) for row in rows],
            "numerator": [_money(row["numerator"]) for row in rows],
            "denominator": [_money(row["denominator"]) for row in rows],
        }
    )
    ids = sorted({definition.pk for definition in effective.values()})
    population = next(
        (int(row["value"]) for row in rows if row["code"] == "clients" and row["dimension"] == "overall"), 0
    )
    detail: dict = {"left_out": notes}
    with transaction.atomic():
        previous = KpiSnapshot.objects.select_for_update().filter(as_of=as_of).first()
        if previous is not None:
            detail["recomputed"] = {
                "previous_computed_at": previous.computed_at.isoformat(),
                "changed_values": _changed_values(as_of, ids, frame),
            }
        written = bulk_replace(MetricValue, frame, where=Q(as_of=as_of, definition_id__in=ids))
        KpiSnapshot.objects.update_or_create(
            as_of=as_of,
            defaults={
                "nightly_run_id": nightly_run_id,
                "definitions": {code: definition.pk for code, definition in sorted(effective.items())},
                "population": population,
                "rows": written,
                "computed_at": timezone.now(),
                "detail": detail,
            },
        )
    return StageResult(
        rows=written,
        detail={
            "population": population,
            "left_out": sorted(notes),
            **({"recomputed": detail["recomputed"]} if "recomputed" in detail else {}),
        },
    )


def metrics_stage(ctx: StageContext) -> StageResult:
    return snapshot_compute(as_of=ctx.as_of, nightly_run_id=ctx.run_id)
