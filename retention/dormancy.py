"""The dormancy stage: per client chunk, the activity segment, the "about to go dormant" warning
and the regulator's dormant account, from the daily rollup and the latest asset snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import Count, Q

from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import bulk_replace
from retention import conf, scoring
from retention.inputs import read_activity_inputs
from retention.models import ClientActivity
from segmentation.models import ResultSet
from segmentation.publish import discard_unpublished, publish

KIND = ResultSet.Kind.ACTIVITY


def _dates(numbers: pd.Series) -> pd.Series:
    values = numbers.to_numpy("int64")
    dates = pd.Series(values.astype("datetime64[D]")).dt.date
    return dates.where(values >= 0, None)


def activity_rows(frame: pd.DataFrame, ctx: StageContext) -> pd.DataFrame:
    """ClientActivity rows (field names) from an activity_segments() frame."""
    return pd.DataFrame(
        {
            "generation": ctx.stage_run_id,
            "as_of": ctx.as_of,
            "client_id": frame["client_id"].to_numpy("int64"),
            "segment": frame["segment"].to_numpy(),
            "first_trade_on": _dates(frame["first_day"]),
            "last_trade_on": _dates(frame["last_day"]),
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
    params = conf.activity_params()
    frame = scoring.activity_segments(
        read_activity_inputs(ctx.as_of, client_id_from, client_id_to, params), ctx.as_of, params
    )
    return bulk_replace(
        ClientActivity,
        activity_rows(frame, ctx),
        where=Q(generation=ctx.stage_run_id, client_id__gte=client_id_from, client_id__lte=client_id_to),
    )


def dormancy_finalize(ctx: StageContext) -> StageResult:
    counts = dict(
        ClientActivity.objects.filter(generation=ctx.stage_run_id)
        .values_list("segment")
        .annotate(n=Count("*"))
        .values_list("segment", "n")
    )
    flags = ClientActivity.objects.filter(generation=ctx.stage_run_id)
    detail = {
        "segments": counts,
        "about_to_go_dormant": flags.filter(about_to_go_dormant=True).count(),
        "regulatory_dormant": flags.filter(regulatory_dormant=True).count(),
    }
    rows = publish(KIND, ClientActivity, ctx, detail)
    return StageResult(rows=rows, detail=detail)


def dormancy_cleanup(ctx: StageContext) -> None:
    discard_unpublished(KIND, ClientActivity, ctx)
