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

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Count, Q

from brokercrm.lib.db import is_postgres
from brokercrm.nightly import StageContext, StageResult, bulk
from brokercrm.nightly.bulk import bulk_replace, drop_table, nan_sql, no_jit, read_numbers, session_work_mem
from brokercrm.nightly.parallel import run_parallel
from retention import conf, lifetime, scoring
from retention.inputs import SIGNAL_SQL_COLUMNS, ledger_signals_frame, ledger_signals_sql, read_signals
from retention.models import ActivitySegment, ChurnScore, ClientActivity, LifetimeFit
from segmentation import summary
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


_INT_COLUMNS = ("days_since_last_trade", "trading_days", "recent_trading_days", "trades_year")


def read_activity(
    generation: int,
    client_from: int | None = None,
    client_to: int | None = None,
    *,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Stored ClientActivity rows of a generation as an activity_segments()-shaped frame
    (`columns`: only these ClientActivity fields besides client_id and segment).

    Read as numbers (segment as its index in ActivitySegment, dates as day numbers, NULL
    integers as 0 and NULL floats as NaN) through read_numbers: no Python object per
    value."""
    fields = {field.name: field.column for field in ClientActivity._meta.concrete_fields}
    wanted = [name for name in ACTIVITY_COLUMNS if name not in ("client_id", "segment")]
    if columns is not None:
        wanted = [name for name in wanted if name in columns]
    segments = list(ActivitySegment.values)
    quote = connection.ops.quote_name
    select = ["client_id"]
    select.append(
        f"CASE {quote(fields['segment'])} "
        + " ".join(f"WHEN '{value}' THEN {index}" for index, value in enumerate(segments))
        + f" ELSE {len(segments)} END"
    )
    kinds = {"client_id": "i", "segment": "i"}
    for name in wanted:
        column = quote(fields[name])
        if name in ("first_trade_on", "last_trade_on"):
            select.append(f"COALESCE({summary.day_number_sql(column)}, {scoring.NONE})")
            kinds[name] = "i"
        elif name in _INT_COLUMNS:
            select.append(f"COALESCE({column}, 0)")
            kinds[name] = "i"
        else:
            select.append(nan_sql(column))
            kinds[name] = "f"
    where, params = "generation = %s", [generation]
    if client_from is not None:
        where += " AND client_id >= %s AND client_id <= %s"
        params += [client_from, client_to]
    # No ORDER BY: the frame is sorted below (PostgreSQL sorted a range's rows in parallel
    # workers and merged them for it).
    raw = read_numbers(
        f"SELECT {', '.join(select)} FROM {quote(ClientActivity._meta.db_table)} "  # noqa: S608
        f"WHERE {where}",
        params,
        kinds,
    )
    labels = np.array([*segments, None], dtype=object)
    frame = pd.DataFrame({"client_id": raw["client_id"].to_numpy("int64")})
    frame["segment"] = labels[raw["segment"].to_numpy("int64")]
    for name in wanted:
        target = ACTIVITY_COLUMNS[name]
        frame[target] = raw[name].to_numpy("int64" if kinds[name] == "i" else "float64")
    return frame.sort_values("client_id", kind="stable").reset_index(drop=True)


def read_fit_activity(generation: int) -> pd.DataFrame:
    """The rows of a generation the lifetime fit is made on: model_inputs() of
    read_activity(generation) without its closed clients, read as only those rows (open, with a
    first and a last trading day) and columns, in no particular order (the fit collapses its rows
    into sorted distinct ones, so their order does not matter): no sort of 1M rows, ~20% fewer
    rows."""
    quote = connection.ops.quote_name
    first = summary.day_number_sql(quote("first_trade_on"))
    last = summary.day_number_sql(quote("last_trade_on"))
    return read_numbers(
        f"SELECT client_id, {first}, {last}, COALESCE(trading_days, 0), {nan_sql(quote('commission'))} "  # noqa: S608
        f"FROM {quote(ClientActivity._meta.db_table)} WHERE generation = %s AND segment <> %s "
        f"AND {first} >= 0 AND {last} >= 0",
        [generation, scoring.SEGMENT_CLOSED],
        {"client_id": "i", "first_day": "i", "last_day": "i", "trading_days": "i", "commission": "f"},
    )


def staging_table(ctx: StageContext) -> str:
    return f"retention_churn_stage_r{ctx.run_id}_a{ctx.attempt}"


def churn_prepare(ctx: StageContext) -> None:
    """Fit the lifetime models; stage the ledger signals of every client in one pass over the
    recent cash flows and trades (each chunk then reads its slice).

    The two run side by side (brokercrm.nightly.parallel): the fit is numpy work on the activity
    rows (~2.5 s at 1M clients) while staging the signals mostly waits on PostgreSQL reading
    ~1.5M cash-flow and trade rows (~2.5 s)."""
    generation = activity_generation(ctx.as_of)
    bulk.create_side_table(ChurnScore, key_field="generation", key_value=ctx.stage_run_id)

    def fit_and_store() -> None:
        inputs = scoring.model_inputs(read_fit_activity(generation), ctx.as_of)
        store_fit(scoring.fit_models(inputs, conf.lifetime_time_unit()), ctx.as_of, nightly_run_id=ctx.run_id)

    run_parallel({"fit": fit_and_store, "ledger signals": lambda: stage_ledger_signals(staging_table(ctx), ctx.as_of)})


def stage_ledger_signals(table: str, as_of: dt.date) -> None:
    """The staging table of every client's ledger signals (SIGNAL_SQL_COLUMNS), indexed by client.

    PostgreSQL: summed in numpy from the raw rows (inputs.ledger_signals_frame) and written by
    binary COPY into an unlogged table (the rows of the SQL below, faster); elsewhere, or when
    the sums could not be exact, CREATE TABLE AS the SQL."""
    drop_table(table)
    params = conf.activity_params()
    quoted = connection.ops.quote_name(table)
    frame = ledger_signals_frame(as_of, params)
    with session_work_mem(), connection.cursor() as cursor:
        if frame is not None:
            cursor.execute(
                f"CREATE UNLOGGED TABLE {quoted} (client_id bigint NOT NULL, outflow_30 double precision NOT NULL, "
                "outflow_90 double precision NOT NULL, pnl_recent double precision NOT NULL, "
                "losing_closes bigint NOT NULL)"
            )
            bulk.copy_numbers(
                table,
                frame,
                {column: "i" if column in ("client_id", "losing_closes") else "f" for column in SIGNAL_SQL_COLUMNS},
            )
        else:
            sql, sql_params = ledger_signals_sql(as_of, params)
            unlogged = "UNLOGGED " if is_postgres() else ""
            cursor.execute(f"CREATE {unlogged}TABLE {quoted} AS {sql}", sql_params)
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
    with no_jit():
        return _churn_chunk(ctx, client_id_from, client_id_to)


def _churn_chunk(ctx: StageContext, client_id_from: int, client_id_to: int) -> int:
    act, params = conf.activity_params(), conf.churn_params()
    activity = read_activity(activity_generation(ctx.as_of), client_id_from, client_id_to)
    ledger = read_numbers(
        f"SELECT {', '.join(SIGNAL_SQL_COLUMNS)} FROM {connection.ops.quote_name(staging_table(ctx))} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s",
        [client_id_from, client_id_to],
        {column: "i" if column == "client_id" else "f" for column in SIGNAL_SQL_COLUMNS},
    )
    signals = read_signals(ctx.as_of, client_id_from, client_id_to, act, ledger=ledger)
    scores = scoring.score_clients(activity, signals, stored_fit(ctx.as_of), ctx.as_of, params, act)
    tiers = read_numbers(
        f"SELECT client_id, tier FROM {connection.ops.quote_name(TierResult._meta.db_table)} "  # noqa: S608
        "WHERE as_of = %s AND client_id >= %s AND client_id <= %s",
        [ctx.as_of, client_id_from, client_id_to],
        {"client_id": "i", "tier": "i"},
    )
    tier = pd.Series(tiers["tier"].to_numpy("int64"), index=tiers["client_id"].to_numpy("int64"))
    rows = pd.DataFrame({"generation": ctx.stage_run_id, "as_of": ctx.as_of}, index=scores.index)
    rows = pd.concat([rows, scores], axis=1)
    rows.insert(3, "tier", tier.reindex(scores["client_id"].to_numpy()).astype("Int64").to_numpy())
    return write_scores(rows, ctx.stage_run_id, client_id_from, client_id_to)


def write_scores(rows: pd.DataFrame, generation: int, client_from: int, client_to: int) -> int:
    """Replace a chunk's ChurnScore rows of a generation with `rows` (score_clients() columns
    plus generation, as_of and tier), in one transaction: on PostgreSQL by binary COPY into the
    generation's side table (bulk.load_chunk: idempotent without a scan), elsewhere (SQLite)
    bulk_replace."""
    if bulk.partitioned(ChurnScore):
        return bulk.load_chunk(
            ChurnScore, rows, key_value=generation, range_field="client", low=client_from, high=client_to
        )
    where = Q(generation=generation, client_id__gte=client_from, client_id__lte=client_to)
    return bulk_replace(ChurnScore, rows, where=where)


def _risk_counts(generation: int) -> dict[str, int]:
    """Scores of 70+ and 40-69 of a generation not yet published: on PostgreSQL in its side table
    (not in ChurnScore before the swap)."""
    if not bulk.partitioned(ChurnScore):
        return ChurnScore.objects.filter(generation=generation).aggregate(
            high=Count("pk", filter=Q(risk__gte=70)), medium=Count("pk", filter=Q(risk__gte=40, risk__lt=70))
        )
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(bulk.load_table(ChurnScore, generation))
        cursor.execute(
            f"SELECT COUNT(*) FILTER (WHERE risk >= 70), COUNT(*) FILTER (WHERE risk >= 40 AND risk < 70) FROM {table}"  # noqa: S608
        )
        high, medium = cursor.fetchone()
    return {"high": high, "medium": medium}


def churn_finalize(ctx: StageContext) -> StageResult:
    if bulk.partitioned(ChurnScore):
        bulk.index_side_table(ChurnScore, key_value=ctx.stage_run_id)
    summary = _risk_counts(ctx.stage_run_id)
    fit = LifetimeFit.objects.filter(as_of=ctx.as_of).values("status", "r", "alpha", "a", "b").first() or {}
    detail = {"risk_70_plus": summary["high"], "risk_40_69": summary["medium"], "model": fit}
    rows = publish(KIND, ChurnScore, ctx, detail)
    return StageResult(rows=rows, detail=detail)


def churn_cleanup(ctx: StageContext) -> None:
    drop_table(staging_table(ctx))
    discard_unpublished(KIND, ChurnScore, ctx)
