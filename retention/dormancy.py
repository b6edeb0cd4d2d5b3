"""The dormancy stage: per client chunk, the activity segment, the "about to go dormant" warning
and the regulator's dormant account, from the daily rollup and the latest asset snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Count, Q

from brokercrm.lib.db import is_postgres
from brokercrm.nightly import StageContext, StageResult, bulk
from brokercrm.nightly.bulk import bulk_replace, drop_table, no_jit, read_numbers
from retention import conf, scoring
from retention.inputs import latest_assets_frame, read_activity_inputs
from retention.models import ClientActivity
from segmentation import summary
from segmentation.models import ResultSet
from segmentation.publish import discard_unpublished, publish

KIND = ResultSet.Kind.ACTIVITY


def _dates(numbers: pd.Series, *, as_datetime64: bool = False) -> pd.Series | np.ndarray:
    """Day numbers (-1: none) as dates: date objects and None, or (`as_datetime64`) datetime64
    and NaT, which the binary COPY encodes without a Python object per value."""
    values = numbers.to_numpy("int64")
    if as_datetime64:
        return np.where(values >= 0, values, np.iinfo("int64").min).astype("datetime64[D]").astype("datetime64[s]")
    dates = pd.Series(values.astype("datetime64[D]")).dt.date
    return dates.where(values >= 0, None)


def activity_rows(frame: pd.DataFrame, ctx: StageContext, *, as_datetime64: bool = False) -> pd.DataFrame:
    """ClientActivity rows (field names) from an activity_segments() frame (`as_datetime64`: the
    dates as datetime64, which the binary COPY converts in one numpy call; else date objects.
    The as-of date as a column of date objects cost ~4 ms a 50,000-row chunk to encode)."""
    return pd.DataFrame(
        {
            "generation": ctx.stage_run_id,
            "as_of": np.datetime64(ctx.as_of, "D") if as_datetime64 else ctx.as_of,
            "client_id": frame["client_id"].to_numpy("int64"),
            "segment": frame["segment"].to_numpy(),
            "first_trade_on": _dates(frame["first_day"], as_datetime64=as_datetime64),
            "last_trade_on": _dates(frame["last_day"], as_datetime64=as_datetime64),
            "days_since_last_trade": frame["days_since_last_trade"].to_numpy("int64"),
            "trading_days": frame["trading_days"].to_numpy("int64"),
            "recent_trading_days": frame["recent_days"].to_numpy("int64"),
            "baseline_trading_days": frame["baseline_expected"].round(4),
            "typical_gap_days": frame["typical_gap_days"].round(4),
            "overdue_ratio": frame["overdue_ratio"].replace([np.inf, -np.inf], np.nan).round(4),
            "trades_year": frame["trades_year"].to_numpy("int64"),
            "commission_year": frame["commission_year"].round(2),
            "commission": frame["commission"].round(2),
            "about_to_go_dormant": frame["about_to_go_dormant"].to_numpy(bool),
            "regulatory_dormant": frame["regulatory_dormant"].to_numpy(bool),
            "cash": frame["cash"].round(2),
            "market_value": frame["market_value"].round(2),
        }
    )


def dormancy_chunk(ctx: StageContext, client_id_from: int, client_id_to: int) -> int:
    with no_jit():
        return _dormancy_chunk(ctx, client_id_from, client_id_to)


def _dormancy_chunk(ctx: StageContext, client_id_from: int, client_id_to: int) -> int:
    params = conf.activity_params()
    # The rollup aggregates from the running summary moved to the date (None: an earlier date
    # than the summary's, computed in full from the rollup like the back-test does).
    days = summary.summary_days(ctx.as_of, params.recent_days, params.baseline_days, client_id_from, client_id_to)
    assets = _staged_assets(ctx, client_id_from, client_id_to)
    frame = scoring.activity_segments(
        read_activity_inputs(ctx.as_of, client_id_from, client_id_to, params, days=days, assets=assets),
        ctx.as_of,
        params,
    )
    if bulk.partitioned(ClientActivity):
        rows = activity_rows(frame, ctx, as_datetime64=True)
        return bulk.load_chunk(
            ClientActivity,
            rows,
            key_value=ctx.stage_run_id,
            range_field="client",
            low=client_id_from,
            high=client_id_to,
        )
    # Unpartitioned (SQLite): replace the chunk's rows in the table itself.
    return bulk_replace(
        ClientActivity,
        activity_rows(frame, ctx),
        where=Q(generation=ctx.stage_run_id, client_id__gte=client_id_from, client_id__lte=client_id_to),
    )


def assets_table(ctx: StageContext) -> str:
    return f"retention_dormancy_assets_r{ctx.run_id}_a{ctx.attempt}"


_ASSET_COLUMNS = {"client_id": "i", "cash": "f", "market_value": "f"}


def dormancy_prepare(ctx: StageContext) -> None:
    """PostgreSQL: the generation's side table, which the chunks load (bulk.create_side_table),
    and the latest asset snapshot of every client staged in one pass (the chunks read their
    slice instead of probing the snapshots client by client)."""
    bulk.create_side_table(ClientActivity, key_field="generation", key_value=ctx.stage_run_id)
    if not is_postgres():
        return
    table = assets_table(ctx)
    quoted = connection.ops.quote_name(table)
    drop_table(table)
    frame = latest_assets_frame(ctx.as_of)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE UNLOGGED TABLE {quoted} (client_id bigint NOT NULL, cash double precision NOT NULL, "
            "market_value double precision NOT NULL)"
        )
        bulk.copy_numbers(table, frame, _ASSET_COLUMNS)
        cursor.execute(f"CREATE INDEX {connection.ops.quote_name(table + '_client')} ON {quoted} (client_id)")


def _staged_assets(ctx: StageContext, client_from: int, client_to: int) -> pd.DataFrame | None:
    """The range's latest assets from the table dormancy_prepare staged (None elsewhere: read
    them per client then)."""
    if not is_postgres():
        return None
    return read_numbers(
        f"SELECT client_id, cash, market_value FROM {connection.ops.quote_name(assets_table(ctx))} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s ORDER BY client_id",
        [client_from, client_to],
        _ASSET_COLUMNS,
    )


def _segment_counts(generation: int) -> list[tuple[str, int, int, int]]:
    """(segment, rows, about to go dormant, regulatory dormant) of a generation not yet published,
    in one pass over it: on PostgreSQL in its side table (not in ClientActivity before the swap)."""
    if not bulk.partitioned(ClientActivity):
        return list(
            ClientActivity.objects.filter(generation=generation)
            .values_list("segment")
            .annotate(
                n=Count("*"),
                about=Count("pk", filter=Q(about_to_go_dormant=True)),
                regulatory=Count("pk", filter=Q(regulatory_dormant=True)),
            )
            .values_list("segment", "n", "about", "regulatory")
        )
    table = connection.ops.quote_name(bulk.load_table(ClientActivity, generation))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT segment, COUNT(*), COUNT(*) FILTER (WHERE about_to_go_dormant), "  # noqa: S608
            f"COUNT(*) FILTER (WHERE regulatory_dormant) FROM {table} GROUP BY segment"
        )
        return cursor.fetchall()


def dormancy_finalize(ctx: StageContext) -> StageResult:
    if bulk.partitioned(ClientActivity):
        bulk.index_side_table(ClientActivity, key_value=ctx.stage_run_id)
    per_segment = _segment_counts(ctx.stage_run_id)
    counts, about, regulatory = {}, 0, 0
    for segment, n, about_n, regulatory_n in per_segment:
        counts[segment] = n
        about += about_n
        regulatory += regulatory_n
    detail = {"segments": counts, "about_to_go_dormant": about, "regulatory_dormant": regulatory}
    from retention import segment_log  # the segment history (metrics: segments of past dates)

    segment_log.record(ctx)
    rows = publish(KIND, ClientActivity, ctx, detail)
    return StageResult(rows=rows, detail=detail)


def dormancy_cleanup(ctx: StageContext) -> None:
    if is_postgres():
        drop_table(assets_table(ctx))
    discard_unpublished(KIND, ClientActivity, ctx)
