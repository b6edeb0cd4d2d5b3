"""The needs-profile stage: per client, sent as chunks of client ids.

prepare  one pass over the ledger window: per client, instrument, day and side, the trades and
         amounts, into a staging table ordered by client (each chunk then reads a contiguous
         slice instead of the whole ledger through an index);
chunk    one client-id range: read its slice, its channel mix (from the daily rollup) and its
         average assets, compute the profiles in pandas, replace the range's rows for the date;
finalize publish the date and drop the previous refresh; cleanup drops the staging table.

Refreshed nightly or weekly (NEEDS_REFRESH, NEEDS_REFRESH_WEEKDAY); the first run always
refreshes. A failure leaves the previous refresh published.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Case, DecimalField, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from brokercrm.lib.db import is_postgres
from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import bulk_replace, drop_table, read_frame, session_work_mem
from clients.models import AssetSnapshot, Client, Instrument, Trade
from segmentation import conf
from segmentation.analytics import needs_profiles
from segmentation.models import ClientDailyActivity, NeedsProfile, ResultSet
from segmentation.publish import discard_unpublished, publish
from segmentation.tiering import window_bounds

TRADE_COLUMNS = [
    "client_id",
    "instrument_id",
    "day",
    "side",
    "trades",
    "amount",
    "high_price_trades",
    "high_price_amount",
]


def staging_table(ctx: StageContext) -> str:
    return f"segmentation_needs_stage_r{ctx.run_id}_a{ctx.attempt}"


def needs_is_due(as_of: dt.date) -> bool:
    if conf.needs_refresh() == "nightly" or as_of.weekday() == conf.needs_refresh_weekday():
        return True
    return not ResultSet.objects.filter(kind=ResultSet.Kind.NEEDS, is_published=True).exists()


def _window(as_of: dt.date) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    first, last = window_bounds(as_of, conf.needs_params().window_days)
    zone = timezone.get_default_timezone()
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return first, last, start, end


def needs_prepare(ctx: StageContext) -> None:
    table = staging_table(ctx)
    drop_table(table)
    _, _, start, end = _window(ctx.as_of)
    high = Decimal(conf.needs_high_price())
    sign = Case(When(reverses__isnull=True, then=Value(1)), default=Value(-1), output_field=IntegerField())
    select = (
        Trade.objects.filter(executed_at__gte=start, executed_at__lt=end)
        .annotate(day=TruncDate("executed_at", tzinfo=timezone.get_default_timezone()))
        .values("client_id", "instrument_id", "day", "side")
        .annotate(
            trades=Sum(sign),
            amount_sum=Sum("amount"),
            high_price_trades=Sum(
                Case(When(price__gte=high, then=sign), default=Value(0), output_field=IntegerField())
            ),
            high_price_amount=Sum(
                Case(When(price__gte=high, then=F("amount")), default=Value(Decimal(0)), output_field=DecimalField())
            ),
        )
        .order_by("client_id")
    )
    sql, params = select.query.sql_with_params()
    quoted = connection.ops.quote_name(table)
    unlogged = "UNLOGGED " if is_postgres() else ""
    with session_work_mem(), connection.cursor() as cursor:
        cursor.execute(f"CREATE {unlogged}TABLE {quoted} AS {sql}", params)
        cursor.execute(f"CREATE INDEX {connection.ops.quote_name(table + '_client')} ON {quoted} (client_id)")


def needs_chunk(ctx: StageContext, client_id_from: int, client_id_to: int) -> int:
    params = conf.needs_params()
    first, last, _, _ = _window(ctx.as_of)
    quoted = connection.ops.quote_name(staging_table(ctx))
    trades = read_frame(
        f"SELECT client_id, instrument_id, day, side, trades, amount_sum, high_price_trades, high_price_amount "  # noqa: S608
        f"FROM {quoted} WHERE client_id >= %s AND client_id <= %s",
        [client_id_from, client_id_to],
        TRADE_COLUMNS,
    )
    trades["day"] = pd.to_datetime(trades["day"])
    for column in ("client_id", "instrument_id", "trades", "high_price_trades"):
        trades[column] = trades[column].astype("int64")
    for column in ("amount", "high_price_amount"):
        trades[column] = trades[column].astype("float64")
    activity = connection.ops.quote_name(ClientDailyActivity._meta.db_table)
    channels = read_frame(
        f"SELECT client_id, channel, SUM(trades), SUM(amount) FROM {activity} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s AND day >= %s AND day <= %s GROUP BY client_id, channel",
        [client_id_from, client_id_to, first, last],
        ["client_id", "channel", "trades", "amount"],
    ).astype({"client_id": "int64", "trades": "int64", "amount": "float64"})
    snapshots = connection.ops.quote_name(AssetSnapshot._meta.db_table)
    assets = read_frame(
        f"SELECT client_id, AVG(cash + market_value) FROM {snapshots} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s AND as_of >= %s AND as_of <= %s GROUP BY client_id",
        [client_id_from, client_id_to, first, last],
        ["client_id", "avg_assets"],
    ).astype({"client_id": "int64", "avg_assets": "float64"})
    instruments = pd.DataFrame.from_records(
        Instrument.objects.values_list("id", "asset_class", "market", "cap_class", "is_blue_chip", "is_st", "industry"),
        columns=["instrument_id", "asset_class", "market", "cap_class", "is_blue_chip", "is_st", "industry"],
    )
    population = pd.Series(
        list(
            Client.objects.open_on(ctx.as_of)
            .filter(pk__gte=client_id_from, pk__lte=client_id_to)
            .values_list("pk", flat=True)
        ),
        dtype="int64",
    )
    profiles = needs_profiles(population, trades, instruments, channels, assets, params)
    rows = pd.DataFrame(
        {
            "generation": ctx.stage_run_id,
            "as_of": ctx.as_of,
            "client_id": profiles["client_id"],
            "trades": profiles["trades"],
            "active_days": profiles["active_days"],
            "trades_per_month": profiles["trades_per_month"].round(4),
            "amount": profiles["amount"].round(2),
            "avg_ticket": profiles["avg_ticket"].round(2),
            "turnover": profiles["turnover"].round(4),
            "holding_style": profiles["holding_style"],
            "holding_mix": profiles["holding_mix"],
            "primary_channel": profiles["primary_channel"],
            "channel_mix": profiles["channel_mix"],
            "product_mix": profiles["product_mix"],
            "preferences": profiles["preferences"],
            "top_industries": profiles["top_industries"],
        }
    )
    rows["avg_ticket"] = rows["avg_ticket"].replace({np.inf: np.nan})
    return bulk_replace(
        NeedsProfile,
        rows,
        where=Q(generation=ctx.stage_run_id, client_id__gte=client_id_from, client_id__lte=client_id_to),
    )


def needs_finalize(ctx: StageContext) -> StageResult:
    """Publish this run's generation for the date; every other generation goes."""
    rows = publish(ResultSet.Kind.NEEDS, NeedsProfile, ctx)
    return StageResult(rows=rows, detail={"profiles": rows})


def needs_cleanup(ctx: StageContext) -> None:
    """Drop the staging table; after a failure also the unpublished rows of this run."""
    drop_table(staging_table(ctx))
    discard_unpublished(ResultSet.Kind.NEEDS, NeedsProfile, ctx)
