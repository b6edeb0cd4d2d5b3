"""The KPI snapshot of an as-of date D: read the aggregates (SQL, only rows dated <= D), compute
the metrics (metrics/analytics.py), write them with their definition versions in one
transaction. Re-running D replaces D's rows of the same versions and nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from importlib import import_module

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from brokercrm.lib.exchange_time import day_end, day_start
from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import bulk_replace, nan_sql, no_jit, read_frame, read_numbers, session_work_mem
from brokercrm.nightly.parallel import parallel_possible, run_parallel
from clients.models import Client, ClientAssignment, ClientLogin, Trade
from feedback.models import Complaint, SurveyResponse
from feedback.selectors import sql_datetime
from metrics import analytics
from metrics import definitions as d
from metrics.models import KpiSnapshot, MarketingSpend, MetricValue
from metrics.services import definitions_effective, definitions_sync
from segmentation.models import ClientDailyActivity, ResultSet, RollupWatermark
from segmentation.publish import published
from segmentation.tiering import tiers_at

TIER_NAMES = {1: "vip", 2: "major", 3: "ordinary", 4: "small"}
BOOK_COLUMNS = [
    "client_id",
    "account_manager_id",
    "branch_id",
    "open_start",
    "open_end",
    "new",
    "cac_new",
    "tenure_days",
    "commission_cents",
    "trades_year",
    "trades_period",
]
ROLLUP_WATERMARK = "trade_rollup"
SEGMENT_METRICS = ("churn_rate", "dormancy_rate", "cost_of_churn")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _days_between(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def published_activity(as_of: dt.date) -> int | None:
    """The generation of the published activity rows (the dormancy stage) when they are of `as_of`."""
    result = published(ResultSet.Kind.ACTIVITY)
    if result is None or result.as_of != as_of or result.generation is None:
        return None
    return result.generation


def read_book(
    as_of: dt.date,
    *,
    activity_generation: int | None = None,
    churn_generation: int | None = None,
    client_range: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Every client opened on or before D with flags, lifetime and trading sums (one query).

    The year's commission and trades come from the rollup, or, given `activity_generation` (the
    dormancy stage's rows of D, published the same night), from its `commission_year` and
    `trades_year`: the same sums over the same 365 days ending on D (tested), without reading a
    year of the rollup. The period's trades then come from read_period_trades."""
    if activity_generation is not None:
        return _read_book_from_activity(as_of, activity_generation, churn_generation, client_range)
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
        "CASE WHEN c.opened_on >= %s AND c.opened_on <= %s THEN 1 ELSE 0 END, "
        f"{_days_between(last_day, 'c.opened_on')}, "
        "CAST(ROUND(COALESCE(a.commission, 0) * 100) AS BIGINT), COALESCE(a.trades, 0), COALESCE(a.recent, 0) "
        f"FROM {clients} c LEFT JOIN (SELECT client_id, SUM(commission) AS commission, SUM(trades) AS trades, "
        "SUM(CASE WHEN day > %s THEN trades ELSE 0 END) AS recent "
        f"FROM {activity} WHERE day >= %s AND day <= %s GROUP BY client_id) a ON a.client_id = c.id "
        f"LEFT JOIN {assignments} h ON h.client_id = c.id AND (h.valid_from IS NULL OR h.valid_from < %s) "
        "AND (h.valid_to IS NULL OR h.valid_to >= %s) "
        "WHERE c.opened_on <= %s"
    )
    first_month, last_day_of_cac = cac_months(as_of)
    params = [start, start, as_of, start, first_month, last_day_of_cac, as_of, as_of, start, window_first, as_of]
    params += [end, end, as_of]
    columns = BOOK_COLUMNS
    with session_work_mem(), transaction.atomic():
        frame = read_frame(sql, params, columns)
    return frame.astype(dict.fromkeys(columns, "int64"))


def _assignment_sql(as_of: dt.date) -> tuple[str, str, str, list]:
    """(manager column, branch column, join) of the assignment at the end of D, and its params."""
    end = sql_datetime(day_end(as_of))
    assignments = _q(ClientAssignment._meta.db_table)
    manager = "COALESCE(CASE WHEN h.id IS NULL THEN c.account_manager_id ELSE h.account_manager_id END, -1)"
    branch = "CASE WHEN h.id IS NULL THEN c.branch_id ELSE h.branch_id END"
    join = (
        f"LEFT JOIN {assignments} h ON h.client_id = c.id AND (h.valid_from IS NULL OR h.valid_from < %s) "
        "AND (h.valid_to IS NULL OR h.valid_to >= %s) "
    )
    return manager, branch, join, [end, end]


def _read_book_from_activity(
    as_of: dt.date, generation: int, churn_generation: int | None, client_range: tuple[int, int] | None = None
) -> pd.DataFrame:
    """read_book from D's published activity rows, with `segment_end` (their segment, the rows
    activity_segments(D) returns) and, given `churn_generation`, `clv` (the rows model_clv(D)
    returns, see retention.selectors.model_clv_generation): one query, no merges."""
    from retention import segment_log, selectors
    from retention.models import ChurnScore, ClientActivity

    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    clients, activity = _q(Client._meta.db_table), _q(ClientActivity._meta.db_table)
    manager, branch, join, join_params = _assignment_sql(as_of)
    last_day = "(CASE WHEN c.closed_on IS NOT NULL AND c.closed_on < %s THEN c.closed_on ELSE %s END)"
    # open_start, open_end and new packed in one column (bits 1, 2, 4): fewer arrays to move.
    flags = (
        "(CASE WHEN c.opened_on <= %s AND (c.closed_on IS NULL OR c.closed_on > %s) THEN 1 ELSE 0 END "
        "+ CASE WHEN c.closed_on IS NULL OR c.closed_on > %s THEN 2 ELSE 0 END "
        "+ CASE WHEN c.opened_on > %s THEN 4 ELSE 0 END "
        "+ CASE WHEN c.opened_on >= %s AND c.opened_on <= %s THEN 8 ELSE 0 END)"
    )
    clv_column, clv_join, clv_params = "", "", []
    if churn_generation is not None:
        clv_column = f", {nan_sql('s.clv')}"
        clv_join = f"LEFT JOIN {_q(ChurnScore._meta.db_table)} s ON s.generation = %s AND s.client_id = c.id "
        clv_params = [churn_generation]
    sql = (
        f"SELECT c.id, {manager}, {branch}, {flags}, {_days_between(last_day, 'c.opened_on')}, "  # noqa: S608
        "CAST(ROUND(COALESCE(a.commission_year, 0) * 100) AS BIGINT), COALESCE(a.trades_year, 0), "
        f"{segment_log.code_sql('a.segment')}{clv_column} "
        f"FROM {clients} c LEFT JOIN {activity} a ON a.generation = %s AND a.client_id = c.id "
        f"{clv_join}{join}WHERE c.opened_on <= %s{' AND c.id >= %s AND c.id <= %s' if client_range else ''}"
    )
    first_month, last_day_of_cac = cac_months(as_of)
    params = [start, start, as_of, start, first_month, last_day_of_cac, as_of, as_of, generation, *clv_params]
    params += [*join_params, as_of]
    params += list(client_range or [])
    columns = dict.fromkeys(["client_id", "account_manager_id", "branch_id", "flags", "tenure_days"], "i")
    columns |= {"commission_cents": "i", "trades_year": "i", "segment_code": "i"}
    if churn_generation is not None:
        columns["clv"] = "f"  # NULL (not valued) is NaN
    with session_work_mem(), transaction.atomic():
        if connection.vendor == "postgresql":
            # Merge joins of the client-ordered indexes (the unique (generation, client) ones),
            # not four 1M-row hash tables: about twice as fast at 1M clients. Plans only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_hashjoin = off")
                cursor.execute("SET LOCAL enable_seqscan = off")
        raw = read_numbers(sql, params, columns)
    flags = raw["flags"].to_numpy().astype("int64")
    frame = pd.DataFrame(
        {
            "client_id": raw["client_id"].to_numpy().astype("int64"),
            "account_manager_id": raw["account_manager_id"].to_numpy().astype("int64"),
            "branch_id": raw["branch_id"].to_numpy().astype("int64"),
            "open_start": flags & 1,
            "open_end": (flags >> 1) & 1,
            "new": (flags >> 2) & 1,
            "cac_new": (flags >> 3) & 1,
            "tenure_days": raw["tenure_days"].to_numpy().astype("int64"),
            "commission_cents": raw["commission_cents"].to_numpy().astype("int64"),
            "trades_year": raw["trades_year"].to_numpy().astype("int64"),
            "segment_end": segment_log.NAMES[raw["segment_code"].to_numpy().astype("int64")],
        }
    )
    if churn_generation is not None:
        frame["clv"] = selectors.clv_values(raw["clv"].to_numpy())
    return frame


def read_period_trades(as_of: dt.date) -> pd.DataFrame:
    """client_id, trades_period (executions minus reversals in the period, counting the trades the
    rollup holds: id <= its watermark, so the same as summing the rollup's days), loss (1 when the
    realised P&L over all the period's trades sums below zero; see read_losers): one range of
    the ledger's executed_at index instead of a full scan of the rollup.

    The range's rows are read as they are (P&L in cents: two decimal places, so exact) and summed
    per client here: PostgreSQL's GROUP BY over the ~300k clients who traded, with a numeric
    sum, took four times as long as reading the ~700k rows (1M-client book)."""

    start = day_start(as_of - dt.timedelta(days=d.PERIOD_DAYS - 1))
    watermark = RollupWatermark.objects.filter(name=ROLLUP_WATERMARK).values_list("last_trade_id", flat=True).first()
    sql = (
        "SELECT client_id, CASE WHEN id <= %s THEN (CASE WHEN reverses_id IS NULL THEN 1 ELSE -1 END) ELSE 0 END, "  # noqa: S608
        "CAST(ROUND(COALESCE(realized_pnl, 0) * 100) AS BIGINT) "
        f"FROM {_q(Trade._meta.db_table)} WHERE executed_at >= %s AND executed_at < %s"
    )
    params = [watermark or 0, sql_datetime(start), sql_datetime(day_end(as_of))]
    with session_work_mem(), transaction.atomic():
        rows = read_numbers(sql, params, {"client_id": "i", "counted": "i", "pnl_cents": "i"})
    client_ids, slot = np.unique(rows["client_id"].to_numpy("int64"), return_inverse=True)
    # np.bincount adds in float64: exact for counts and cents below 2^53.
    trades = np.bincount(slot, weights=rows["counted"].to_numpy("int64"), minlength=len(client_ids))
    pnl_cents = np.bincount(slot, weights=rows["pnl_cents"].to_numpy("int64"), minlength=len(client_ids))
    return pd.DataFrame(
        {
            "client_id": client_ids,
            "trades_period": trades.astype("int64"),
            "loss": (pnl_cents < 0).astype("int64"),
        }
    )


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


def read_logins(as_of: dt.date) -> pd.DataFrame:
    """client_id, logins: the daily login counts of the period (S, D], as they are: one range of
    the (day, client) index covering the count (about 3 rows per client a month, ~2.9M at 1M
    clients). They are summed per client by login_counts: PostgreSQL's GROUP BY client_id
    builds a hash table of ~1M groups, which took longer than reading every row (2.3 s against
    1.2 s at 1M clients)."""
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    with session_work_mem(), transaction.atomic():
        return read_numbers(
            f"SELECT client_id, logins FROM {_q(ClientLogin._meta.db_table)} "  # noqa: S608
            "WHERE day > %s AND day <= %s",
            [start, as_of],
            {"client_id": "i", "logins": "i"},
        )


def login_counts(rows: pd.DataFrame, book_ids: np.ndarray) -> np.ndarray | None:
    """Sign-ins of each client of `book_ids` (sorted, unique) in the rows of read_logins, 0 for
    none; None when there are no rows at all (no login data provided: the metric is left out
    rather than shown as zero). Sign-ins of clients outside the book (not open on D) do not
    count."""
    if rows.empty:
        return None
    client_ids = rows["client_id"].to_numpy("int64")
    if not len(book_ids):
        return np.zeros(0, dtype="int64")
    position = np.searchsorted(book_ids, client_ids)
    position[position == len(book_ids)] = 0
    in_book = book_ids[position] == client_ids
    logins = rows["logins"].to_numpy("int64")[in_book]
    return np.bincount(position[in_book], weights=logins, minlength=len(book_ids)).astype("int64")


def read_answers(as_of: dt.date) -> pd.DataFrame:
    start = day_start(as_of - dt.timedelta(days=d.SURVEY_WINDOW_DAYS - 1))
    if connection.vendor == "postgresql":
        # One array per column; answered_at as epoch microseconds (the same order), not a
        # model instance and an aware datetime per answer.
        sql = (
            "SELECT client_id, kind, score, CAST(EXTRACT(EPOCH FROM answered_at) * 1000000 AS BIGINT), id "  # noqa: S608
            f"FROM {_q(SurveyResponse._meta.db_table)} WHERE answered_at >= %s AND answered_at < %s"
        )
        frame = read_frame(sql, [start, day_end(as_of)], ["client_id", "kind", "score", "answered_at", "id"])
        if not len(frame):
            return pd.DataFrame(columns=["client_id", "kind", "score", "answered_at", "id"])
        return frame.astype({"client_id": "int64", "score": "int64", "answered_at": "int64", "id": "int64"})
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


def cac_months(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, last day) of the CAC months of D: the CAC_MONTHS whole months up to the last
    month end on or before D."""
    last_month_end = as_of.replace(day=1) - dt.timedelta(days=1)
    if (as_of + dt.timedelta(days=1)).day == 1:
        last_month_end = as_of  # D is itself a month end
    first_month = last_month_end.replace(day=1)
    for _ in range(d.CAC_MONTHS - 1):
        first_month = (first_month - dt.timedelta(days=1)).replace(day=1)
    return first_month, last_month_end


def read_spend(as_of: dt.date) -> dict[str, float]:
    """CAC input: the marketing spend of the CAC months, overall ("") and by branch id. The
    clients opened in those months come from the book (its cac_new column, see new_in_cac_months)."""
    first_month, last_month_end = cac_months(as_of)
    spend_rows = MarketingSpend.objects.filter(
        month__gte=first_month, month__lte=last_month_end.replace(day=1)
    ).values_list("branch_id", "amount")
    exact: dict[str, Decimal] = {}
    for branch_id, amount in spend_rows:
        exact[""] = exact.get("", Decimal(0)) + amount
        if branch_id is not None:
            exact[str(branch_id)] = exact.get(str(branch_id), Decimal(0)) + amount
    # Summed exactly as Decimal; a float only for the ratio (values are stored to 4 places).
    return {key: float(amount) for key, amount in exact.items()}


def new_in_cac_months(book: pd.DataFrame) -> dict[str, int]:
    """Clients opened in the CAC months, overall ("") and by the branch they had at the end of D
    (the book's branch_id), from the book's cac_new column."""
    opened = book["cac_new"].to_numpy("int64") == 1
    branches, counts = np.unique(book["branch_id"].to_numpy("int64")[opened], return_counts=True)
    new = {str(int(branch)): int(count) for branch, count in zip(branches, counts, strict=True)}
    new[""] = int(opened.sum())
    return new


def optional_source(name: str) -> object | None:
    """retention.selectors.<name> when the scoring work provides it, else None."""
    try:
        module = import_module("retention.selectors")
    except ImportError:
        return None
    return getattr(module, name, None)


def _segment_of(book_ids: np.ndarray, segments: pd.DataFrame) -> np.ndarray:
    """The segment (object array, None when the client has no segment) of each book client."""
    position = pd.Index(segments["client_id"].to_numpy(dtype="int64")).get_indexer(book_ids)
    values = np.append(segments["segment"].to_numpy(dtype=object), None)
    return values[position]  # position -1 picks the appended None


def segment_columns(
    book: pd.DataFrame, as_of: dt.date, segments_fn: object, *, segments_start: pd.DataFrame | None = None
) -> pd.DataFrame:
    """alive_start, lost, dormant_end, lost_commission_cents from the activity segments on S and D
    (`segments_start`: segments_fn(S) when already read)."""
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    ids = book["client_id"].to_numpy(dtype="int64")
    segment_start = _segment_of(ids, segments_fn(start) if segments_start is None else segments_start)
    if "segment_end" in book.columns:  # D's published rows, read with the book (= segments_fn(D))
        segment_end = book["segment_end"].to_numpy(dtype=object)
    else:
        segment_end = _segment_of(ids, segments_fn(as_of))
    open_start = book["open_start"].to_numpy() == 1
    open_end = book["open_end"].to_numpy() == 1
    alive = ((segment_start == "active") | (segment_start == "potentially_active")) & open_start
    gone = (segment_end == "dormant") | (segment_end == "closed") | ~open_end
    book = book.assign(alive_start=alive.astype("int64"))
    book["lost"] = (alive & gone).astype("int64")
    book["dormant_end"] = ((segment_end == "dormant") & open_end).astype("int64")
    book["lost_commission_cents"] = np.where(book["lost"] == 1, book["commission_cents"], 0)
    return book


def _positions(book_ids: np.ndarray, ids: object) -> np.ndarray:
    """Row of each book client in `ids` (unique client ids), -1 when absent."""
    return pd.Index(np.asarray(ids, dtype="int64")).get_indexer(book_ids)


def _take(values: object, position: np.ndarray, missing: object) -> np.ndarray:
    """values[position], `missing` where position is -1 (a left join on a unique key)."""
    values = np.asarray(values)
    out = np.append(values, np.array([missing], dtype=values.dtype if values.dtype != object else object))
    return out[position]


TIER_TEXT = np.array(["none", *TIER_NAMES.values()], dtype=object)


PARALLEL_READS = 4  # threads (own connections) for the independent reads; 0 or 1: one by one


def _parallel() -> bool:
    return PARALLEL_READS > 1 and parallel_possible()


def run_reads(tasks: dict[str, Callable[[], object]]) -> dict[str, object]:
    """{name: task()}: the independent reads of the stage at once, each on its own connection
    (the database works on them in parallel), on PostgreSQL outside a transaction (the nightly
    stage); inside one (the tests) one by one (brokercrm.nightly.parallel)."""
    return run_parallel(tasks, workers=PARALLEL_READS)


def book_reads(as_of: dt.date, *, fast: bool) -> dict[str, Callable[[], object]]:
    """The reads build_book assembles (see there), by name."""
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    generation = published_activity(as_of) if fast else None
    churn_generation = None
    if generation is not None:
        clv_generation = optional_source("model_clv_generation")
        churn_generation = clv_generation(as_of) if clv_generation is not None else None
    tasks: dict[str, Callable[[], object]] = {
        "book": lambda: read_book(as_of, activity_generation=generation, churn_generation=churn_generation),
        "tiers": lambda: tiers_at(as_of),
        "tiers_start": lambda: tiers_at(start),
        "complaints": lambda: read_complaints(as_of),
        "answers": lambda: read_answers(as_of),
    }
    if generation is not None:
        tasks["period"] = lambda: read_period_trades(as_of)
        if _parallel():  # the longest read, in two client-id halves read at once
            low, high = Client.objects.aggregate(low=Min("id"), high=Max("id")).values()
            if low is not None and high > low:
                middle = (low + high) // 2

                def half(first: int, last: int) -> Callable[[], object]:
                    return lambda: read_book(
                        as_of,
                        activity_generation=generation,
                        churn_generation=churn_generation,
                        client_range=(first, last),
                    )

                tasks["book"], tasks["book_more"] = half(low, middle), half(middle + 1, high)
    else:
        tasks["losers"] = lambda: read_losers(as_of)
    return tasks


def build_book(
    as_of: dt.date, *, fast: bool = False, reads: dict[str, object] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The per-client frame and the complaint times, with the dimension keys; and notes.

    `fast`: read D's published activity rows (and churn scores) when they are of D (see
    read_book); the book then also carries `segment_end` and maybe `clv`. `reads`: the results
    of book_reads when already read."""
    notes: dict = {}
    if reads is None:
        reads = run_reads(book_reads(as_of, fast=fast))
    book = reads["book"]
    if "book_more" in reads:
        book = pd.concat([book, reads["book_more"]], ignore_index=True)
    ids = book["client_id"].to_numpy(dtype="int64")
    if "period" in reads:
        period = reads["period"]
        position = _positions(ids, period["client_id"])
        book["trades_period"] = _take(period["trades_period"].to_numpy("int64"), position, 0)
        book["loss"] = _take(period["loss"].to_numpy("int64"), position, 0)
    else:
        book["loss"] = np.isin(ids, reads["losers"]).astype("int64")
    for column in ("tier", "tier_start"):
        tiers = reads[{"tier": "tiers", "tier_start": "tiers_start"}[column]]
        if tiers is None or tiers.empty:
            keys = np.zeros(len(book), dtype="int64")
        else:
            codes = pd.to_numeric(tiers["tier"], errors="coerce").fillna(0).to_numpy("int64")
            keys = _take(codes, _positions(ids, tiers["client_id"]), 0)
        # The tier code is analytics.TIER_KEYS of its name (0: none): given as the key too.
        book[column] = TIER_TEXT[keys]
        book[f"{column}_key"] = keys
    if (book["tier"] == "none").all():
        notes["tiers"] = "No tiers on or before this date: tier rows are left out."
    counts, times = reads["complaints"]
    book["complaints_period"] = _take(
        counts["n"].to_numpy("int64") if len(counts) else np.empty(0, "int64"),
        _positions(ids, counts["client_id"]),
        0,
    )
    answers = analytics.latest_answers(reads["answers"])
    position = _positions(ids, answers["client_id"])
    for column in ["csat_surveyed", "csat_satisfied", "nps_answered", "nps_promoters", "nps_detractors"]:
        book[column] = _take(answers[column].to_numpy("int64"), position, 0)
    keys = book[["client_id", "tier", "tier_key", "account_manager_id", "branch_id"]]
    times = times.merge(keys, on="client_id", how="inner")
    return book, times, notes


def compute(as_of: dt.date) -> tuple[list[dict], dict]:
    """Every metric row of `as_of` (code, dimension, key, value, numerator, denominator), and
    notes on what was left out."""
    with no_jit():
        return _compute(as_of)


def _compute(as_of: dt.date) -> tuple[list[dict], dict]:
    # The published rows of D are read with the book only when retention provides them (the
    # tests swap the retention sources for fixed frames).
    start = as_of - dt.timedelta(days=d.PERIOD_DAYS)
    fast = optional_source("published_segments") is not None
    segments_fn = optional_source("activity_segments")
    clv_fn = optional_source("model_clv")
    tasks = book_reads(as_of, fast=fast)
    tasks["spend"] = lambda: read_spend(as_of)
    tasks["logins"] = lambda: read_logins(as_of)
    if segments_fn is not None:
        tasks["segments_start"] = lambda: segments_fn(start)
    reads = run_reads(tasks)
    book, times, notes = build_book(as_of, reads=reads)
    with_segments = segments_fn is not None
    if with_segments:
        book = segment_columns(book, as_of, segments_fn, segments_start=reads["segments_start"])
    else:
        notes["segments"] = "retention.selectors.activity_segments is not available: " + ", ".join(SEGMENT_METRICS)
    with_clv = "clv" in book.columns
    if not with_clv:
        clv = clv_fn(as_of) if clv_fn is not None else None
        if clv is not None:
            position = _positions(book["client_id"].to_numpy("int64"), clv["client_id"])
            book["clv"] = _take(clv["clv"].to_numpy("float64"), position, np.nan)
            with_clv = True
    if not with_clv:
        notes["cltv_model"] = "No lifetime model fitted for this date (retention.selectors.model_clv)."
    book = book.drop(columns=["segment_end"], errors="ignore")
    book_ids = book["client_id"].to_numpy("int64")
    if len(book_ids) > 1 and not (book_ids[1:] > book_ids[:-1]).all():
        book = book.sort_values("client_id", kind="stable").reset_index(drop=True)
        book_ids = book["client_id"].to_numpy("int64")
    logins = login_counts(reads["logins"], book_ids)
    if logins is None:
        notes["login_frequency"] = "No login data provided for the period (manage.py import_ledger logins)."
    else:
        book["logins_period"] = logins
    tiers_missing = "tiers" in notes
    spend, new = reads["spend"], new_in_cac_months(book)
    if "" not in spend:
        notes["cac"] = "No marketing spend entered for the CAC months."
    rows = analytics.metric_rows(
        book,
        times,
        with_segments=with_segments,
        with_clv=with_clv,
        spend=spend,
        new_in_spend_months=new,
        with_logins=logins is not None,
    )
    if tiers_missing:
        rows = [row for row in rows if row["dimension"] != "tier"]
    return rows, notes


def _money(value: float | None) -> float:
    return np.nan if value is None or (isinstance(value, float) and np.isnan(value)) else round(float(value), 4)


def _changed_values(as_of: dt.date, definition_ids: list[int], frame: pd.DataFrame) -> int:
    """How many of the date's stored values (same versions) a recomputation changes, adds or
    drops: a late-arriving ledger row dated on or before D shows up here, on the record. A value
    changes when it differs by 0.00005 or more, or turns defined or undefined."""
    keys = ["definition_id", "dimension", "key"]
    table = _q(MetricValue._meta.db_table)
    placeholders = ", ".join(["%s"] * len(definition_ids)) or "NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT definition_id, dimension, {_q('key')}, CAST(value AS DOUBLE PRECISION) FROM {table} "  # noqa: S608
            f"WHERE as_of = %s AND definition_id IN ({placeholders})",
            [as_of, *definition_ids],
        )
        stored = pd.DataFrame.from_records(cursor.fetchall(), columns=[*keys, "value"])
    stored = stored.astype({"definition_id": "int64", "value": "float64"})
    fresh = frame[[*keys, "value"]].astype({"definition_id": "int64", "value": "float64"})
    merged = stored.merge(fresh, on=keys, how="outer", suffixes=("_stored", "_fresh"), indicator=True)
    old, new = merged["value_stored"].to_numpy("float64"), merged["value_fresh"].to_numpy("float64")
    with np.errstate(invalid="ignore"):
        differs = np.where(np.isnan(old) | np.isnan(new), np.isnan(old) != np.isnan(new), np.abs(old - new) >= 0.00005)
    return int(np.count_nonzero((merged["_merge"] != "both").to_numpy() | differs))


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
