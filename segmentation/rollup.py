"""Incremental rollup of the trade ledger into per-client daily activity.

The watermark is the highest trade id already rolled up. Each run adds the trades with
watermark < id <= the ledger's current max id to ClientDailyActivity, keyed by client,
exchange-calendar day and channel. A trade that arrives late for an earlier day has a new
(higher) id, so it is picked up and added to that earlier day's row.

Why adding is exact: the ledger is append-only (a correction is a new reversing row with
negated money, counted as -1 trade), so a (client, day, channel) total is the sum of its rows,
old and new. Each batch upserts its sums and moves the watermark in ONE transaction: a crash
leaves activity and watermark consistent, and a re-run adds nothing twice.

Why the max id is read under a short SHARE lock on PostgreSQL: ids come from a sequence, so a
transaction that took id 100 may commit after one that took id 101. Reading max(id) while
that first transaction is still open would move the watermark past a trade that is not yet
visible, and it would never be rolled up. LOCK ... IN SHARE MODE waits for every open
transaction that inserts into the ledger (they hold ROW EXCLUSIVE) and blocks new ones for
the instant of the read; every id <= the max read then is committed. (SQLite has one writer.)
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from clients.models import Trade
from segmentation.models import ClientDailyActivity, RollupWatermark

WATERMARK = "trade_rollup"


class RollupConflict(RuntimeError):
    MESSAGE = "The rollup watermark moved while this rollup ran (another rollup is running?)."


@dataclass(frozen=True)
class RollupResult:
    rows: int  # activity rows inserted or updated
    batches: int
    from_trade_id: int
    to_trade_id: int


def _settled_max_trade_id() -> int:
    """The highest trade id such that every trade with a smaller id is committed (see module doc)."""
    table = connection.ops.quote_name(Trade._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            seconds = int(getattr(settings, "ROLLUP_LOCK_TIMEOUT_SECONDS", 60))
            cursor.execute(f"SET LOCAL lock_timeout = '{seconds}s'")
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        return int(cursor.fetchone()[0])


def _batch_sql(low: int, high: int) -> tuple[str, list]:
    """INSERT ... SELECT ... ON CONFLICT that adds trades low < id <= high to the activity rows."""
    day = TruncDate("executed_at", tzinfo=timezone.get_default_timezone())
    select = (
        Trade.objects.filter(id__gt=low, id__lte=high)
        .annotate(day=day)
        .values("client_id", "day", "channel")
        .annotate(
            n=Sum(Case(When(reverses__isnull=True, then=Value(1)), default=Value(-1), output_field=IntegerField())),
            amount_sum=Sum("amount"),
            commission_sum=Sum("commission"),
        )
        # In key order, so the batch walks the rollup's indexes once from end to end instead
        # of jumping between random leaf pages (a first rollup of 20M trades is mostly this).
        .order_by("client_id", "day", "channel")
    )
    select_sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(ClientDailyActivity._meta.db_table)
    sql = (
        f"INSERT INTO {table} (client_id, day, channel, trades, amount, commission) {select_sql} "
        "ON CONFLICT (client_id, day, channel) DO UPDATE SET "
        f"trades = {table}.trades + excluded.trades, "
        f"amount = {table}.amount + excluded.amount, "
        f"commission = {table}.commission + excluded.commission"
    )
    return sql, list(params)


def activity_rollup(*, upto_trade_id: int | None = None, batch_ids: int | None = None) -> RollupResult:
    """Roll trades after the watermark into ClientDailyActivity; returns what was read.

    Works in id batches of `batch_ids` (setting ROLLUP_BATCH_IDS, default 2,000,000), each one
    transaction that also moves the watermark, so a first rollup of a large ledger makes
    durable progress. `upto_trade_id` caps the run (benchmarks simulate "the next day" with it).
    """
    batch = int(batch_ids or getattr(settings, "ROLLUP_BATCH_IDS", 2_000_000))
    RollupWatermark.objects.get_or_create(name=WATERMARK)
    start = RollupWatermark.objects.get(name=WATERMARK).last_trade_id
    high = _settled_max_trade_id()
    if upto_trade_id is not None:
        high = min(high, upto_trade_id)
    low, batches, rows = start, 0, 0
    while low < high:
        top = min(low + batch, high)
        with transaction.atomic():
            # Lock the watermark row: a concurrent rollup waits here, then sees the moved mark.
            mark = RollupWatermark.objects.select_for_update().get(name=WATERMARK)
            if mark.last_trade_id != low:
                raise RollupConflict(RollupConflict.MESSAGE)
            sql, params = _batch_sql(low, top)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                count = max(cursor.rowcount, 0)
            RollupWatermark.objects.filter(name=WATERMARK).update(
                last_trade_id=top, rows_upserted=F("rows_upserted") + count
            )
        rows += count
        batches += 1
        low = top
    if rows:
        _vacuum()
    return RollupResult(rows=rows, batches=batches, from_trade_id=start, to_trade_id=max(start, high))


def _vacuum() -> None:
    """Refresh the visibility map and statistics of the rollup on PostgreSQL, so the window
    sums can read the covering index alone (an index-only scan skips the table only for pages
    marked all-visible). Cheap after a night: VACUUM visits only the pages that changed. Not
    possible inside a transaction (tests): autovacuum does it later."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(ClientDailyActivity._meta.db_table)}")


def activity_rebuild() -> RollupResult:
    """Empty the rollup and read the whole ledger again (after a ledger repair)."""
    with transaction.atomic():
        ClientDailyActivity.objects.all().delete()
        RollupWatermark.objects.update_or_create(name=WATERMARK, defaults={"last_trade_id": 0, "rows_upserted": 0})
    return activity_rollup()
