"""The churn stage: fit the lifetime models on the date's activity, then per client chunk the churn
risk (0-100) with its reasons, P(alive), model CLV and the simple CLV; publish at the end.

prepare   reads every open client's trading-day summary from the date's published activity
          rows, fits BG/NBD and Gamma-Gamma (identical rows collapsed) and stores the fit for
          the date (LifetimeFit, kept for every date);
chunk     one client-id range: activity rows + signals (asset outflow, losses, tier downgrades,
          complaints and survey answers) + the stored fit -> ChurnScore rows;
finalize  publish the generation; cleanup drops unpublished rows after a failure.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db import connection
from django.db.models import Count, Q

from brokercrm.lib.db import is_postgres
from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import bulk_replace, read_frame, session_work_mem
from retention import conf, lifetime, scoring
from retention.inputs import SIGNAL_SQL_COLUMNS, ledger_signals_sql, read_signals
from retention.models import ChurnScore, ClientActivity, LifetimeFit
from segmentation.models import ResultSet, TierResult
from segmentation.publish import discard_unpublished, publish

KIND = ResultSet.Kind.CHURN

ACTIVITY_COLUMNS = {
    "client_id": "client_id",
    "segment": "segment",
    "first_trade_on": "first_day",
    "last_trade_on": "last_day",
    "days_since_last_trade": "days_since_last_trade",
    "trading_days": "trading_days",
    "recent_trading_days": "recent_days",
    "baseline_trading_days": "baseline_expected",
    "typical_gap_days": "typical_gap_days",
    "overdue_ratio": "overdue_ratio",
    "trades_year": "trades_year",
    "commission_year": "commission_year",
    "commission": "commission",
    "cash": "cash",
    "market_value": "market_value",
}


class ActivityMissing(RuntimeError):
    MESSAGE = "Activity segments of {as_of} are not published (the dormancy stage must run first)."


def activity_generation(as_of: dt.date) -> int:
    generation = (
        ResultSet.objects.filter(kind=ResultSet.Kind.ACTIVITY, as_of=as_of, is_published=True)
        .values_list("generation", flat=True)
        .first()
    )
    if generation is None:
        raise ActivityMissing(ActivityMissing.MESSAGE.format(as_of=as_of))
    return generation


def read_activity(generation: int, client_from: int | None = None, client_to: int | None = None) -> pd.DataFrame:
    """Stored ClientActivity rows of a generation as an activity_segments()-shaped frame."""
    fields = {field.name: field.column for field in ClientActivity._meta.concrete_fields}
    select = []
    for name in ACTIVITY_COLUMNS:
        column = connection.ops.quote_name(fields[name] if name != "client_id" else "client_id")
        if name in ("commission_year", "commission", "cash", "market_value"):
            column = f"CAST({column} AS DOUBLE PRECISION)"
        select.append(column)
    where, params = "generation = %s", [generation]
    if client_from is not None:
        where += " AND client_id >= %s AND client_id <= %s"
        params += [client_from, client_to]
    raw = read_frame(
        f"SELECT {', '.join(select)} FROM {connection.ops.quote_name(ClientActivity._meta.db_table)} "  # noqa: S608
        f"WHERE {where}",
        params,
        list(ACTIVITY_COLUMNS.values()),
    )
    frame = pd.DataFrame({"client_id": raw["client_id"].to_numpy().astype("int64")})
    frame["segment"] = raw["segment"].to_numpy().astype(object)
    frame["first_day"] = scoring.day_numbers(raw["first_day"])
    frame["last_day"] = scoring.day_numbers(raw["last_day"])
    for column in ("days_since_last_trade", "trading_days", "recent_days", "trades_year"):
        frame[column] = pd.to_numeric(raw[column]).fillna(0).astype("int64").to_numpy()
    for column in (
        "baseline_expected",
        "typical_gap_days",
        "overdue_ratio",
        "commission_year",
        "commission",
        "cash",
        "market_value",
    ):
        frame[column] = pd.to_numeric(raw[column], errors="coerce").astype("float64").to_numpy()
    return frame.sort_values("client_id", kind="stable").reset_index(drop=True)


def staging_table(ctx: StageContext) -> str:
    return f"retention_churn_stage_r{ctx.run_id}_a{ctx.attempt}"


def _drop(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")


def churn_prepare(ctx: StageContext) -> None:
    """Fit the lifetime models; stage the ledger signals of every client in one pass over the
    recent cash flows and trades (each chunk then reads its slice)."""
    activity = read_activity(activity_generation(ctx.as_of))
    inputs = scoring.model_inputs(activity[activity["segment"] != scoring.SEGMENT_CLOSED], ctx.as_of)
    fit = scoring.fit_models(inputs, conf.lifetime_time_unit())
    store_fit(fit, ctx.as_of, nightly_run_id=ctx.run_id)
    table = staging_table(ctx)
    _drop(table)
    sql, params = ledger_signals_sql(ctx.as_of, conf.activity_params())
    quoted = connection.ops.quote_name(table)
    unlogged = "UNLOGGED " if is_postgres() else ""
    with session_work_mem(), connection.cursor() as cursor:
        cursor.execute(f"CREATE {unlogged}TABLE {quoted} AS {sql}", params)
        cursor.execute(f"CREATE INDEX {connection.ops.quote_name(table + '_client')} ON {quoted} (client_id)")


def store_fit(fit: scoring.ModelFit, as_of: dt.date, *, nightly_run_id: int | None = None) -> LifetimeFit:
    bg, gg = fit.bgnbd, fit.gamma_gamma
    stored, _ = LifetimeFit.objects.update_or_create(
        as_of=as_of,
        defaults={
            "nightly_run_id": nightly_run_id,
            "status": fit.status,
            "time_unit": fit.time_unit,
            "message": fit.message[:2000],
            "customers": fit.customers,
            "distinct_rows": fit.distinct_rows,
            "r": bg.r if bg else None,
            "alpha": bg.alpha if bg else None,
            "a": bg.a if bg else None,
            "b": bg.b if bg else None,
            "log_likelihood": bg.log_likelihood if bg else None,
            "gg_status": fit.gg_status,
            "p": gg.p if gg else None,
            "q": gg.q if gg else None,
            "v": gg.v if gg else None,
            "gg_log_likelihood": gg.log_likelihood if gg else None,
            "fit_seconds": round(fit.seconds, 3),
        },
    )
    return stored


def stored_fit(as_of: dt.date) -> scoring.ModelFit:
    """The fit stored for `as_of` as a ModelFit (unusable when none)."""
    row = LifetimeFit.objects.filter(as_of=as_of).first()
    if row is None:
        return scoring.ModelFit("failed", f"No lifetime fit stored for {as_of}.", 0, 0, None, "failed", None)
    bg = None
    if row.r is not None:
        bg = lifetime.BgNbdFit(row.r, row.alpha, row.a, row.b, row.log_likelihood, row.customers, True, False, "")
    gg = None
    if row.p is not None:
        gg = lifetime.GammaGammaFit(row.p, row.q, row.v, row.gg_log_likelihood or 0.0, 0, True, False, "")
    return scoring.ModelFit(
        row.status, row.message, row.customers, row.distinct_rows, bg, row.gg_status, gg, row.fit_seconds, row.time_unit
    )


def churn_chunk(ctx: StageContext, client_id_from: int, client_id_to: int) -> int:
    act, params = conf.activity_params(), conf.churn_params()
    activity = read_activity(activity_generation(ctx.as_of), client_id_from, client_id_to)
    ledger = read_frame(
        f"SELECT {', '.join(SIGNAL_SQL_COLUMNS)} FROM {connection.ops.quote_name(staging_table(ctx))} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s",
        [client_id_from, client_id_to],
        SIGNAL_SQL_COLUMNS,
    )
    signals = read_signals(ctx.as_of, client_id_from, client_id_to, act, ledger=ledger)
    scores = scoring.score_clients(activity, signals, stored_fit(ctx.as_of), ctx.as_of, params, act)
    tiers = pd.DataFrame.from_records(
        TierResult.objects.filter(
            as_of=ctx.as_of, client_id__gte=client_id_from, client_id__lte=client_id_to
        ).values_list("client_id", "tier"),
        columns=["client_id", "tier"],
    )
    scores = scores.merge(tiers.astype({"client_id": "int64"}), on="client_id", how="left")
    rows = pd.DataFrame(
        {
            "generation": ctx.stage_run_id,
            "as_of": ctx.as_of,
            "client_id": scores["client_id"],
            "tier": scores["tier"].astype("Int64"),
            "segment": scores["segment"],
            "risk": scores["risk"].astype("int64"),
            "p_alive": scores["p_alive"],
            "expected_trading_days": scores["expected_trading_days"],
            "clv": scores["clv"],
            "clv_simple": scores["clv_simple"],
            "value_at_risk": scores["value_at_risk"],
            "reasons": scores["reasons"],
            "signals": scores["signals"],
            "model_used": scores["model_used"].astype(bool),
        }
    )
    return bulk_replace(
        ChurnScore,
        rows,
        where=Q(generation=ctx.stage_run_id, client_id__gte=client_id_from, client_id__lte=client_id_to),
    )


def churn_finalize(ctx: StageContext) -> StageResult:
    summary = ChurnScore.objects.filter(generation=ctx.stage_run_id).aggregate(
        high=Count("pk", filter=Q(risk__gte=70)), medium=Count("pk", filter=Q(risk__gte=40, risk__lt=70))
    )
    fit = LifetimeFit.objects.filter(as_of=ctx.as_of).values("status", "r", "alpha", "a", "b").first() or {}
    detail = {"risk_70_plus": summary["high"], "risk_40_69": summary["medium"], "model": fit}
    rows = publish(KIND, ChurnScore, ctx, detail)
    return StageResult(rows=rows, detail=detail)


def churn_cleanup(ctx: StageContext) -> None:
    _drop(staging_table(ctx))
    discard_unpublished(KIND, ChurnScore, ctx)
