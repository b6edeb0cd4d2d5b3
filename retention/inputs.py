"""Reading the scoring inputs of a client-id range as of a date: set-based SQL, one query per source.

Everything is read with a date bound (`<= as_of`), so scoring an earlier date (the back-test)
sees only what was known then. Works on PostgreSQL and SQLite (plain SQL, no DISTINCT ON).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import psycopg
from django.db import DataError, connection, transaction

from brokercrm.lib.db import is_postgres
from brokercrm.lib.exchange_time import day_start
from brokercrm.nightly.bulk import read_frame, read_numbers
from clients.models import AssetSnapshot, CashFlow, Client, Trade
from retention.conf import ActivityParams
from retention.scoring import ACTIVITY_INPUT, NONE, day_numbers, empty_signals
from segmentation import summary
from segmentation.conf import asset_snapshot_max_age_days
from segmentation.models import TierHistory


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def read_activity_inputs(
    as_of: dt.date,
    client_from: int,
    client_to: int,
    params: ActivityParams,
    *,
    days: pd.DataFrame | None = None,
    assets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One ACTIVITY_INPUT row per client of the range opened on or before `as_of`.

    `days`: the range's rollup aggregates when already known (the dormancy stage reads them from
    the running summary, segmentation/summary.py: summary.DAY_COLUMNS, days as day numbers);
    otherwise they are computed here from the rollup (the back-test, past dates). `assets`: the
    range's read_latest_assets() rows when already known (the dormancy stage stages them)."""
    clients = read_numbers(
        f"SELECT id, {summary.day_number_sql('opened_on')}, "  # noqa: S608
        f"COALESCE({summary.day_number_sql('closed_on')}, {NONE}) FROM {_table(Client)} "
        "WHERE id >= %s AND id <= %s AND opened_on <= %s ORDER BY id",
        [client_from, client_to, as_of],
        {"client_id": "i", "opened_on": "i", "closed_on": "i"},
    )
    if days is None:
        days = read_rollup_days(as_of, client_from, client_to, params)
    frame = clients.merge(days, on="client_id", how="left")
    for column in ("first_day", "last_day"):
        frame[column] = frame[column].fillna(NONE).astype("int64")
    for column in ("trading_days", "recent_days", "baseline_days", "trades", "trades_year"):
        frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("commission", "commission_year"):
        frame[column] = frame[column].fillna(0.0).astype("float64")
    if assets is None:
        assets = read_latest_assets(as_of, client_from, client_to)
    frame = frame.merge(assets, on="client_id", how="left")
    return frame[ACTIVITY_INPUT].sort_values("client_id", kind="stable").reset_index(drop=True)


def read_latest_assets(as_of: dt.date, client_from: int, client_to: int) -> pd.DataFrame:
    """Per client of the range: cash and market value of its latest snapshot of the last
    ASSET_SNAPSHOT_MAX_AGE_DAYS (an older one is stale; none: no row).

    PostgreSQL: one probe of the (client, as_of) unique index per client, newest first (a range
    scan of the as_of index would read every client's snapshots of the period for each chunk).
    Elsewhere: the period's snapshots of the range, the latest picked here."""
    oldest = as_of - dt.timedelta(days=asset_snapshot_max_age_days())
    columns = {"client_id": "i", "cash": "f", "market_value": "f"}
    snapshots = _table(AssetSnapshot)
    if is_postgres():
        return read_numbers(
            "SELECT c.id, s.cash, s.market_value "  # noqa: S608
            f"FROM {_table(Client)} c CROSS JOIN LATERAL (SELECT as_of, cash, market_value FROM {snapshots} "
            "WHERE client_id = c.id AND as_of <= %s ORDER BY as_of DESC LIMIT 1) s "
            "WHERE c.id >= %s AND c.id <= %s AND s.as_of > %s",
            [as_of, client_from, client_to, oldest],
            columns,
        )
    assets = read_frame(
        "SELECT client_id, as_of, CAST(cash AS DOUBLE PRECISION), CAST(market_value AS DOUBLE PRECISION) "  # noqa: S608
        f"FROM {snapshots} "
        "WHERE client_id >= %s AND client_id <= %s AND as_of > %s AND as_of <= %s",
        [client_from, client_to, oldest, as_of],
        ["client_id", "as_of", "cash", "market_value"],
    )
    if len(assets):
        assets["as_of"] = day_numbers(assets["as_of"])
        assets = assets.sort_values(["client_id", "as_of"], kind="stable").drop_duplicates("client_id", keep="last")
    return assets.drop(columns="as_of").astype({"client_id": "int64", "cash": "float64", "market_value": "float64"})


def latest_assets_frame(as_of: dt.date) -> pd.DataFrame:
    """read_latest_assets() of every client at once (PostgreSQL: the dormancy stage stages it
    for its chunks): the snapshots of the last ASSET_SNAPSHOT_MAX_AGE_DAYS read in one range
    scan of the as_of index, the latest per client picked in numpy (one probe of the
    (client, as_of) index per client in each chunk took ~0.2 s a chunk of 50,000). Clients
    without a snapshot in the period have no row; the client ids are those of the snapshots
    (the caller joins them to its clients)."""
    oldest = as_of - dt.timedelta(days=asset_snapshot_max_age_days())
    rows = read_numbers(
        f"SELECT client_id, {summary.day_number_sql('as_of')}, cash, market_value "  # noqa: S608
        f"FROM {_table(AssetSnapshot)} WHERE as_of > %s AND as_of <= %s",
        [oldest, as_of],
        {"client_id": "i", "day": "i", "cash": "f", "market_value": "f"},
    )
    client = rows["client_id"].to_numpy("int64")
    order = np.lexsort((rows["day"].to_numpy("int64"), client))
    client = client[order]
    last = np.ones(len(client), dtype=bool)
    last[:-1] = client[1:] != client[:-1]  # (client, as_of) is unique: the last row is the latest
    keep = order[last]
    return pd.DataFrame(
        {
            "client_id": client[last],
            "cash": rows["cash"].to_numpy("float64")[keep],
            "market_value": rows["market_value"].to_numpy("float64")[keep],
        }
    )


def read_rollup_days(as_of: dt.date, client_from: int, client_to: int, params: ActivityParams) -> pd.DataFrame:
    """The rollup aggregates of the range's clients with a trading day (summary.DAY_COLUMNS, days
    as day numbers), in one pass over the rollup's (client, day) index in client order.

    A trading day is a day with a channel row of positive net trades (a trade reversed the same
    day leaves none); a day traded on two channels counts once (DISTINCT). Sums run over every
    row, so a reversal booked on a later day nets out of the commission."""
    sql, sql_params = summary.aggregate_sql(
        as_of,
        params.recent_days,
        params.baseline_days,
        "client_id >= %s AND client_id <= %s",
        [client_from, client_to],
        summary=False,
    )
    days = read_frame(sql, sql_params, summary.DAY_COLUMNS)
    days_numeric = pd.DataFrame({"client_id": days["client_id"].to_numpy("int64")})
    days_numeric["first_day"] = day_numbers(days["first_day"])
    days_numeric["last_day"] = day_numbers(days["last_day"])
    for column in ("trading_days", "recent_days", "baseline_days", "trades", "trades_year"):
        days_numeric[column] = days[column].to_numpy().astype("int64")
    for column in ("commission", "commission_year"):
        days_numeric[column] = days[column].to_numpy().astype("float64")
    return days_numeric


SIGNAL_SQL_COLUMNS = ["client_id", "outflow_30", "outflow_90", "pnl_recent", "losing_closes"]


def ledger_signals_sql(
    as_of: dt.date, params: ActivityParams, client_from: int | None = None, client_to: int | None = None
) -> tuple[str, list]:
    """SELECT of the ledger signals per client (SIGNAL_SQL_COLUMNS): net withdrawals over the last
    30 and 90 days, realised P&L and losing closes in the recent window. Reads time ranges of the
    cash-flow and trade indexes; without a client range it covers every client (the stage's
    staging table), with one a slice (the back-test)."""
    end = day_start(as_of + dt.timedelta(days=1))
    start_30 = day_start(as_of - dt.timedelta(days=29))
    start_90 = day_start(as_of - dt.timedelta(days=89))
    recent = day_start(as_of - dt.timedelta(days=params.recent_days - 1))
    flows_where, trades_where, flows_params, trades_params = "", "", [], []
    if client_from is not None:
        flows_where = trades_where = " AND client_id >= %s AND client_id <= %s"
        flows_params = trades_params = [client_from, client_to]
    sql = (
        "SELECT COALESCE(f.client_id, t.client_id) AS client_id, COALESCE(f.outflow_30, 0) AS outflow_30, "  # noqa: S608
        "COALESCE(f.outflow_90, 0) AS outflow_90, COALESCE(t.pnl_recent, 0) AS pnl_recent, "
        "COALESCE(t.losing_closes, 0) AS losing_closes FROM ("
        "SELECT client_id, "
        "CAST(SUM(CASE WHEN occurred_at >= %s THEN "
        "CASE WHEN kind = 'withdrawal' THEN amount ELSE -amount END ELSE 0 END) AS DOUBLE PRECISION) AS outflow_30, "
        "CAST(SUM(CASE WHEN kind = 'withdrawal' THEN amount ELSE -amount END) AS DOUBLE PRECISION) AS outflow_90 "
        f"FROM {_table(CashFlow)} WHERE occurred_at >= %s AND occurred_at < %s{flows_where} "
        "GROUP BY client_id) f FULL OUTER JOIN ("
        "SELECT client_id, CAST(SUM(realized_pnl) AS DOUBLE PRECISION) AS pnl_recent, "
        "SUM(CASE WHEN realized_pnl < 0 AND reverses_id IS NULL THEN 1 ELSE 0 END) AS losing_closes "
        f"FROM {_table(Trade)} WHERE executed_at >= %s AND executed_at < %s AND realized_pnl IS NOT NULL"
        f"{trades_where} GROUP BY client_id) t ON f.client_id = t.client_id"
    )
    return sql, [start_30, start_90, end, *flows_params, recent, end, *trades_params]


# Sums of cents stay exact in float64 (and their quotient by 100 correctly rounded, like
# PostgreSQL's numeric -> double cast) below 2^53.
_EXACT_CENTS = 2**53


def ledger_signals_frame(as_of: dt.date, params: ActivityParams) -> pd.DataFrame | None:
    """PostgreSQL: the rows of ledger_signals_sql() for every client (the stage's staging table),
    computed from the raw rows instead of by GROUP BY: the window's cash flows and trades are
    read as numbers (amounts as integer cents) and summed per client in numpy. PostgreSQL's hash
    aggregates of ~300k-600k clients and their full join took ~5 s against ~1.5 s to read the
    rows. The same rows and values: the clients with a cash flow or a trade with a realised P&L
    in the windows, the sums exact in cents divided by 100 (correctly rounded, as the numeric
    sum's cast to double precision is). None (use the SQL) elsewhere, or when a sum is too
    large to be exact in float64."""
    if not is_postgres():
        return None
    _sql, (start_30, start_90, end, recent, _end) = ledger_signals_sql(as_of, params)  # the same bounds
    try:
        with transaction.atomic():
            flows, trades = _ledger_rows(start_30, start_90, end, recent)
    except (DataError, psycopg.errors.DataError):  # an amount beyond bigint cents (read_numbers' raw cursor)
        return None
    flow_cents = flows["cents"].to_numpy("int64")
    flow_ids, (out_30, out_90) = _sums_per_key(
        flows["client_id"].to_numpy("int64"), flow_cents * flows["in_30"].to_numpy("int64"), flow_cents
    )
    trade_ids, (pnl, losing) = _sums_per_key(
        trades["client_id"].to_numpy("int64"), trades["cents"].to_numpy("int64"), trades["losing"].to_numpy("int64")
    )
    rows = max(len(flow_cents), len(trades), 1)
    largest_row = max(int(np.abs(values).max(initial=0)) for values in (flow_cents, trades["cents"].to_numpy("int64")))
    largest_sum = max(int(np.abs(values).max(initial=0)) for values in (out_30, out_90, pnl))
    if largest_row * rows >= 2**63 or largest_sum >= _EXACT_CENTS:
        return None  # an int64 sum might overflow, or a sum not be exact in float64: SQL then
    ids = np.concatenate([flow_ids, trade_ids])  # each sorted and distinct; np.union1d: 0.6 s (hashing)
    ids.sort(kind="stable")
    ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])] if len(ids) else ids
    frame = pd.DataFrame({"client_id": ids})
    in_flows = np.searchsorted(ids, flow_ids)
    in_trades = np.searchsorted(ids, trade_ids)
    for name, where, values in (
        ("outflow_30", in_flows, out_30),
        ("outflow_90", in_flows, out_90),
        ("pnl_recent", in_trades, pnl),
    ):
        column = np.zeros(len(ids), dtype="float64")
        column[where] = values / 100.0
        frame[name] = column
    closes = np.zeros(len(ids), dtype="int64")
    closes[in_trades] = losing
    frame["losing_closes"] = closes
    return frame


def _ledger_rows(start_30, start_90, end, recent) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The windows' cash flows (client, in the last 30 days, signed cents) and closing trades
    (client, P&L cents, losing close) as numbers."""
    flows = read_numbers(
        "SELECT client_id, CASE WHEN occurred_at >= %s THEN 1 ELSE 0 END, "  # noqa: S608
        "CAST((CASE WHEN kind = 'withdrawal' THEN amount ELSE -amount END) * 100 AS BIGINT) "
        f"FROM {_table(CashFlow)} WHERE occurred_at >= %s AND occurred_at < %s",
        [start_30, start_90, end],
        {"client_id": "i", "in_30": "i", "cents": "i"},
    )
    trades = read_numbers(
        "SELECT client_id, CAST(realized_pnl * 100 AS BIGINT), "  # noqa: S608
        "CASE WHEN realized_pnl < 0 AND reverses_id IS NULL THEN 1 ELSE 0 END "
        f"FROM {_table(Trade)} WHERE executed_at >= %s AND executed_at < %s AND realized_pnl IS NOT NULL",
        [recent, end],
        {"client_id": "i", "cents": "i", "losing": "i"},
    )
    return flows, trades


def _sums_per_key(keys: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(sorted distinct keys, per value column its int64 sum per key): exact."""
    if not len(keys):
        return keys, [np.zeros(0, dtype="int64") for _ in values]
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[starts], [np.add.reduceat(column[order], starts) for column in values]


def read_signals(
    as_of: dt.date,
    client_from: int,
    client_to: int,
    params: ActivityParams,
    *,
    with_feedback: bool = True,
    ledger: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One SIGNAL_INPUT row per client of the range with any signal (others: no signal).

    `ledger`: the range's rows of SIGNAL_SQL_COLUMNS when already computed (the stage reads them
    from its staging table); otherwise they are read here."""
    if ledger is None:
        sql, sql_params = ledger_signals_sql(as_of, params, client_from, client_to)
        ledger = read_frame(sql, sql_params, SIGNAL_SQL_COLUMNS)
    downgrades = read_frame(
        "SELECT client_id, as_of, previous_tier, tier "  # noqa: S608
        f"FROM {_table(TierHistory)} "
        "WHERE client_id >= %s AND client_id <= %s AND as_of > %s AND as_of <= %s "
        "AND tier IS NOT NULL AND previous_tier IS NOT NULL AND tier > previous_tier",
        [client_from, client_to, as_of - dt.timedelta(days=params.recent_days), as_of],
        ["client_id", "as_of", "previous_tier", "tier"],
    )
    parts = [
        ledger.astype(
            {
                "client_id": "int64",
                "outflow_30": "float64",
                "outflow_90": "float64",
                "pnl_recent": "float64",
                "losing_closes": "float64",
            }
        )
    ]
    if len(downgrades):
        downgrades = downgrades.astype({"client_id": "int64", "previous_tier": "int64", "tier": "int64"})
        downgrades["downgrade_on"] = day_numbers(downgrades["as_of"])
        downgrades = downgrades.sort_values(["client_id", "downgrade_on"])
        grouped = downgrades.groupby("client_id")
        summary = pd.DataFrame(
            {
                "downgrade_from": grouped["previous_tier"].first(),
                "downgrade_to": grouped["tier"].last(),
                "downgrade_on": grouped["downgrade_on"].last(),
            }
        ).reset_index()
        summary["downgrade_steps"] = (summary["downgrade_to"] - summary["downgrade_from"]).clip(lower=0)
        parts.append(summary.astype({"downgrade_from": "float64", "downgrade_to": "float64"}))
    if with_feedback:
        feedback = feedback_signals(as_of, client_from, client_to)
        if feedback is not None and len(feedback):
            parts.append(feedback)
    ids = np.unique(np.concatenate([part["client_id"].to_numpy("int64") for part in parts]))
    frame = empty_signals(ids).set_index("client_id")
    for part in parts:
        if not len(part):
            continue
        part = part.set_index("client_id")
        frame.loc[part.index, part.columns] = part.to_numpy()
    frame = frame.reset_index()
    frame["downgrade_on"] = frame["downgrade_on"].astype("int64")
    return frame


def feedback_signals(as_of: dt.date, client_from: int, client_to: int) -> pd.DataFrame | None:
    """Open complaints and detractor / low-CSAT answers from the feedback app, when it provides them."""
    try:
        from feedback.selectors import churn_signals
    except ImportError:
        return None
    frame = churn_signals(as_of, client_from, client_to)
    if frame is None or not len(frame):
        return None
    return frame[["client_id", "open_complaints", "detractor_score", "low_csat"]].astype(
        {"client_id": "int64", "open_complaints": "float64", "detractor_score": "float64", "low_csat": "float64"}
    )
