"""A running per-client summary of the daily rollup, so the dormancy stage does not aggregate the
whole rollup (18.6M rows at 1M clients) every night.

What a row holds (ClientActivitySummary): the client's rollup aggregates on a date, exactly as
`retention.inputs.read_activity_inputs` computes them (first / last trading day, trading days,
trades, commission; trading days in the recent and baseline windows; trades and commission of
the last 365 days), and `valid_until`, the last date they still hold: the day before the
earliest of
- a trading day of the recent window leaving it (day + recent - 1),
- a trading day of the baseline window leaving it (day + recent + baseline - 1; a day moving
  from the recent window into the baseline window is a recent-window event already),
- a rollup day of the 365-day window leaving it (day + 364),
- a later rollup day (one after the date: it enters every window and the lifetime sums).
Without a new trade, nothing else can change a client's aggregates between its date and
`valid_until`.

What the state says (ActivitySummaryState, one row): every row holds on `as_of` for the rollup
of the trades with id <= `trade_watermark` (the rollup watermark, read before the rollup).
Moving the summary to a date D >= as_of recomputes, exactly from the rollup, only:
- the clients with a trade of id > trade_watermark (late trades and reversals included: a new
  ledger row is a new id, whatever its execution date; a reversal may remove a trading day);
- the clients whose row expires before D (valid_until < D).
Every other row holds on D as it is. The rows and the state change in one transaction, so a
killed move leaves the previous summary and its state. A date before the state's (a back-test,
re-running an old night) is not served: the caller computes it in full from the rollup, and the
summary stays where it is. Other window lengths, or a rollup watermark that went back (a
rebuild), rebuild the summary from the whole rollup. After a rollup rebuild that changed the
ledger's history in place, call discard_summary().

Works on PostgreSQL and SQLite (plain SQL; day numbers computed in SQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from django.db import connection, transaction

from brokercrm.lib.db import is_postgres
from brokercrm.nightly.bulk import _insert, read_frame, read_numbers
from clients.models import Trade
from segmentation.models import ActivitySummaryState, ClientActivitySummary, ClientDailyActivity, RollupWatermark

STATE = "activity"
ROLLUP_WATERMARK = "trade_rollup"  # segmentation.rollup.WATERMARK
YEAR_DAYS = 365
EPOCH = dt.date(1970, 1, 1)
# Above this share of the summary to recompute, one pass over the whole rollup is cheaper
# than looking the clients up one by one.
FULL_PASS_SHARE = 0.3
SQLITE_BATCH = 500
MOVE_LOCK = 0x5E5A_0300  # PostgreSQL advisory lock key (one bigint) held by a move

# The aggregate columns of a summary row (and of the frame the dormancy stage reads).
DAY_COLUMNS = [
    "client_id",
    "first_day",
    "last_day",
    "trading_days",
    "recent_days",
    "baseline_days",
    "trades",
    "commission",
    "trades_year",
    "commission_year",
]
_EXPIRY_COLUMNS = ["recent_min", "baseline_min", "year_min"]


def day_number_sql(expression: str) -> str:
    """SQL of a date expression as a day number (days since 1970-01-01), NULL kept."""
    if is_postgres():
        return f"({expression} - DATE '1970-01-01')"
    return f"CAST(julianday({expression}) - 2440587.5 AS INTEGER)"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model) -> str:
    return _q(model._meta.db_table)


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def windows(as_of: dt.date, recent_days: int, baseline_days: int) -> tuple[dt.date, dt.date, dt.date]:
    """(recent_start, baseline_start, year_start): each window is (start, ...], exclusive."""
    recent_start = as_of - dt.timedelta(days=recent_days)
    baseline_start = recent_start - dt.timedelta(days=baseline_days)
    return recent_start, baseline_start, as_of - dt.timedelta(days=YEAR_DAYS)


def aggregate_sql(
    as_of: dt.date, recent_days: int, baseline_days: int, where: str, where_params: list, *, summary: bool
) -> tuple[str, list]:
    """The rollup aggregates per client of the rows matching `where` up to `as_of`.

    summary=False: the dormancy inputs as read_activity_inputs has always read them (dates,
    clients with a trading day only). summary=True: the same aggregates as day numbers, every
    client with a rollup row up to `as_of`, plus the earliest day in each window (valid_until).
    The shared aggregate expressions are the same text in both, so they give the same values."""
    recent_start, baseline_start, year_start = windows(as_of, recent_days, baseline_days)
    day = day_number_sql if summary else (lambda expression: expression)
    select = (
        f"SELECT client_id, {day('MIN(CASE WHEN trades > 0 THEN day END)')}, "
        f"{day('MAX(CASE WHEN trades > 0 THEN day END)')}, "
        "COUNT(DISTINCT CASE WHEN trades > 0 THEN day END), "
        "COUNT(DISTINCT CASE WHEN trades > 0 AND day > %s THEN day END), "
        "COUNT(DISTINCT CASE WHEN trades > 0 AND day > %s AND day <= %s THEN day END), "
        "SUM(trades), CAST(SUM(commission) AS DOUBLE PRECISION), "
        "SUM(CASE WHEN day > %s THEN trades ELSE 0 END), "
        "CAST(SUM(CASE WHEN day > %s THEN commission ELSE 0 END) AS DOUBLE PRECISION)"
    )
    params: list = [recent_start, baseline_start, recent_start, year_start, year_start]
    if summary:
        select += (
            f", {day('MIN(CASE WHEN trades > 0 AND day > %s THEN day END)')}"
            f", {day('MIN(CASE WHEN trades > 0 AND day > %s AND day <= %s THEN day END)')}"
            f", {day('MIN(CASE WHEN day > %s THEN day END)')}"
        )
        params += [recent_start, baseline_start, recent_start, year_start]
    sql = f"{select} FROM {_table(ClientDailyActivity)} WHERE {where} AND day <= %s GROUP BY client_id"
    if not summary:
        sql += " HAVING MAX(CASE WHEN trades > 0 THEN day END) IS NOT NULL"
    return sql, [*params, *where_params, as_of]


def _client_filters(client_ids: np.ndarray | None) -> Iterator[tuple[str, list]]:
    """WHERE clauses over client_id: every client (None), or the given ones (PostgreSQL: one
    array; SQLite: batches of IN lists)."""
    if client_ids is None:
        yield "1 = 1", []
        return
    ids = np.unique(np.asarray(client_ids, dtype="int64")).tolist()
    if not ids:
        return
    if is_postgres():
        yield "client_id = ANY(%s)", [ids]
        return
    for start in range(0, len(ids), SQLITE_BATCH):
        batch = ids[start : start + SQLITE_BATCH]
        yield f"client_id IN ({', '.join(['%s'] * len(batch))})", batch


def compute_rows(
    as_of: dt.date, recent_days: int, baseline_days: int, client_ids: np.ndarray | None = None
) -> pd.DataFrame:
    """Summary rows (ClientActivitySummary fields) on `as_of`, computed from the rollup, for the
    given clients (None: every client) that have a rollup row."""
    parts, later = [], []
    for where, params in _client_filters(client_ids):
        sql, sql_params = aggregate_sql(as_of, recent_days, baseline_days, where, params, summary=True)
        parts.append(read_frame(sql, sql_params, DAY_COLUMNS + _EXPIRY_COLUMNS))
        later.append(
            read_frame(
                f"SELECT client_id, {day_number_sql('MIN(day)')} FROM {_table(ClientDailyActivity)} "  # noqa: S608
                f"WHERE {where} AND day > %s GROUP BY client_id",
                [*params, as_of],
                ["client_id", "next_day"],
            )
        )
    columns = DAY_COLUMNS + _EXPIRY_COLUMNS
    aggregates = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    upcoming = pd.concat(later, ignore_index=True) if later else pd.DataFrame(columns=["client_id", "next_day"])
    aggregates = aggregates.astype({"client_id": "int64"})
    upcoming = upcoming.astype({"client_id": "int64"})
    frame = aggregates.merge(upcoming, on="client_id", how="outer")
    out = pd.DataFrame({"client_id": frame["client_id"].to_numpy("int64")})
    for column in ("first_day", "last_day"):
        out[column] = pd.to_numeric(frame[column]).astype("Int64")
    for column in ("trading_days", "recent_days", "baseline_days", "trades", "trades_year"):
        out[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    for column in ("commission", "commission_year"):
        out[column] = pd.to_numeric(frame[column]).fillna(0.0).astype("float64")
    expiries = np.column_stack(
        [
            pd.to_numeric(frame["recent_min"]).to_numpy("float64") + recent_days - 1,
            pd.to_numeric(frame["baseline_min"]).to_numpy("float64") + recent_days + baseline_days - 1,
            pd.to_numeric(frame["year_min"]).to_numpy("float64") + YEAR_DAYS - 1,
            pd.to_numeric(frame["next_day"]).to_numpy("float64") - 1,
        ]
    )
    earliest = np.where(np.isnan(expiries), np.inf, expiries).min(axis=1)
    out["valid_until"] = pd.array(np.where(np.isinf(earliest), None, earliest), dtype="Int64")
    return out.sort_values("client_id", kind="stable").reset_index(drop=True)


def _rollup_watermark() -> int:
    mark = RollupWatermark.objects.filter(name=ROLLUP_WATERMARK).values_list("last_trade_id", flat=True).first()
    return int(mark or 0)


def _ids(sql: str, params: list) -> np.ndarray:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return np.array([row[0] for row in cursor.fetchall()], dtype="int64")


def _delete_rows(client_ids: np.ndarray | None) -> None:
    table = _table(ClientActivitySummary)
    with connection.cursor() as cursor:
        if client_ids is None:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            return
        for where, params in _client_filters(client_ids):
            cursor.execute(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608


def _write(rows: pd.DataFrame) -> None:
    _insert(ClientActivitySummary, rows[["client_id", "valid_until", *DAY_COLUMNS[1:]]])


def move_summary(as_of: dt.date, recent_days: int, baseline_days: int) -> bool:
    """Bring the summary to `as_of` (see the module doc); False when it cannot serve that date
    (an earlier date than the summary's): compute in full then.

    One transaction holding an advisory lock and the state row: a concurrent move (another
    chunk of the same stage) waits, then finds the summary already on the date and does
    nothing."""
    with transaction.atomic():
        if is_postgres():
            # Serialise moves even before the state row exists (the first build).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MOVE_LOCK])
        state = ActivitySummaryState.objects.select_for_update().filter(name=STATE).first()
        watermark = _rollup_watermark()
        if state is not None:
            if state.as_of > as_of:
                return False
            same_windows = (state.recent_window, state.baseline_window) == (recent_days, baseline_days)
            if same_windows and state.as_of == as_of and state.trade_watermark == watermark:
                return True
        if state is None or not same_windows or watermark < state.trade_watermark:
            # No summary, other windows or a rebuilt rollup: compute every client.
            _delete_rows(None)
            rows = compute_rows(as_of, recent_days, baseline_days)
            _write(rows)
            recomputed = len(rows)
        else:
            table = _table(ClientActivitySummary)
            changed = np.union1d(
                _ids(f"SELECT DISTINCT client_id FROM {_table(Trade)} WHERE id > %s", [state.trade_watermark]),  # noqa: S608
                _ids(f"SELECT client_id FROM {table} WHERE valid_until < %s", [day_number(as_of)]),  # noqa: S608
            )
            total = ClientActivitySummary.objects.count()
            if len(changed) > FULL_PASS_SHARE * max(total, 1):
                rows = compute_rows(as_of, recent_days, baseline_days)
                rows = rows[np.isin(rows["client_id"].to_numpy(), changed)]
            else:
                rows = compute_rows(as_of, recent_days, baseline_days, changed)
            _delete_rows(changed)
            _write(rows)
            recomputed = len(changed)
        ActivitySummaryState.objects.update_or_create(
            name=STATE,
            defaults={
                "as_of": as_of,
                "trade_watermark": watermark,
                "recent_window": recent_days,
                "baseline_window": baseline_days,
                "rows": ClientActivitySummary.objects.count(),
                "recomputed": recomputed,
            },
        )
    return True


def summary_days(
    as_of: dt.date, recent_days: int, baseline_days: int, client_from: int, client_to: int
) -> pd.DataFrame | None:
    """The rollup aggregates on `as_of` of the clients of a range with a trading day (DAY_COLUMNS,
    days as day numbers), from the summary moved to `as_of`; None when the summary cannot serve
    the date (compute in full then)."""
    if not move_summary(as_of, recent_days, baseline_days):
        return None
    table = _table(ClientActivitySummary)
    with transaction.atomic():
        # Read the rows under a share lock of the state: no move can run in between.
        lock = " FOR SHARE" if is_postgres() else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT as_of, recent_window, baseline_window FROM {_table(ActivitySummaryState)} "  # noqa: S608
                f"WHERE name = %s{lock}",
                [STATE],
            )
            state = cursor.fetchone()
        if state is None or _as_date(state[0]) != as_of or (state[1], state[2]) != (recent_days, baseline_days):
            return None  # moved by someone else meanwhile
        frame = read_numbers(
            f"SELECT {', '.join(_q(c) for c in DAY_COLUMNS)} FROM {table} "  # noqa: S608
            "WHERE client_id >= %s AND client_id <= %s AND last_day IS NOT NULL",
            [client_from, client_to],
            {column: "f" if column.startswith("commission") else "i" for column in DAY_COLUMNS},
        )
    return frame


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def discard_summary() -> None:
    """Drop the summary and its state (the next move rebuilds it): after a rollup rebuild."""
    with transaction.atomic():
        ActivitySummaryState.objects.filter(name=STATE).delete()
        _delete_rows(None)
