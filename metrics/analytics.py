"""Pure pandas of the KPI snapshot: a per-client frame in, metric rows out. No ORM, no settings.

`book` has one row per client opened on or before D, with int columns (0/1 flags, counts,
cents) named below; `complaint_times` one row per complaint answered / resolved in the period.
Every metric is a ratio of two sums over a dimension row's clients, so each row carries its
numerator and denominator and a NULL value when the denominator is 0 (never a division error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics import definitions as d

DIMENSIONS = {"overall": None, "tier": "tier", "account_manager": "account_manager_id", "branch": "branch_id"}

# The per-client columns `metric_rows` sums (all numeric, 0 when not applicable).
SUM_COLUMNS = [
    "open_start",
    "open_end",
    "new",
    "tenure_days",
    "commission_cents",
    "trades_year",
    "trades_period",
    "loss",
    "complaints_period",
    "csat_surveyed",
    "csat_satisfied",
    "nps_answered",
    "nps_promoters",
    "nps_detractors",
]
SEGMENT_COLUMNS = ["alive_start", "lost", "dormant_end", "lost_commission_cents"]


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    if denominator == 0 or np.isnan(denominator) or np.isnan(numerator):
        return None
    return numerator / denominator * scale


def latest_answers(answers: pd.DataFrame) -> pd.DataFrame:
    """Per client, the latest answer of each kind (ties on answered_at: the higher id).

    `answers`: client_id, kind, score, answered_at (sortable), id. Returns per client:
    csat_surveyed, csat_satisfied, nps_answered, nps_promoters, nps_detractors (0/1)."""
    columns = ["csat_surveyed", "csat_satisfied", "nps_answered", "nps_promoters", "nps_detractors"]
    if answers.empty:
        return pd.DataFrame(columns=["client_id", *columns]).astype("int64")
    latest = (
        answers.sort_values(["client_id", "kind", "answered_at", "id"], kind="stable")
        .groupby(["client_id", "kind"], sort=False)
        .tail(1)
    )
    csat = latest[latest["kind"] == "csat"]
    nps = latest[latest["kind"] == "nps"]
    frame = pd.DataFrame({"client_id": pd.unique(latest["client_id"])})
    frame = frame.merge(
        pd.DataFrame(
            {
                "client_id": csat["client_id"],
                "csat_surveyed": 1,
                "csat_satisfied": (csat["score"] >= d.CSAT_SATISFIED_MIN).astype("int64"),
            }
        ),
        on="client_id",
        how="left",
    ).merge(
        pd.DataFrame(
            {
                "client_id": nps["client_id"],
                "nps_answered": 1,
                "nps_promoters": (nps["score"] >= d.NPS_PROMOTER_MIN).astype("int64"),
                "nps_detractors": (nps["score"] <= d.NPS_DETRACTOR_MAX).astype("int64"),
            }
        ),
        on="client_id",
        how="left",
    )
    return frame.fillna(0).astype("int64")


TIER_KEYS = {"none": 0, "vip": 1, "major": 2, "ordinary": 3, "small": 4}
TIER_LABELS = {code: name for name, code in TIER_KEYS.items()}


def _keys(frame: pd.DataFrame, dimension: str, *, cohort: bool = False) -> tuple[np.ndarray | None, np.ndarray]:
    """The dimension's key of each row as an integer (grouping on integers is several times
    faster than on text), and a mask of the rows that have one (None: all of them): 0 overall;
    the tier on D (`tier_key`), or on S for start-cohort metrics (`tier_start_key`); the
    manager or branch id (clients without an account manager have no manager row)."""
    if dimension == "overall":
        return None, np.zeros(len(frame), dtype="int64")
    column = {"tier": "tier_start_key" if cohort else "tier_key"}.get(dimension, DIMENSIONS[dimension])
    keys = frame[column].to_numpy(dtype="int64")
    if dimension == "account_manager":
        mask = keys >= 0
        return mask, keys[mask]
    return None, keys


def _labels(dimension: str, keys: np.ndarray | pd.Index) -> list[str]:
    """The stored key text of integer keys: "" overall, the tier code, or the id."""
    if dimension == "overall":
        return ["" for _ in keys]
    if dimension == "tier":
        return [TIER_LABELS[int(key)] for key in keys]
    return [str(int(key)) for key in keys]


def _sum_by_key(frame: pd.DataFrame, dimension: str, columns: list[str], *, cohort: bool = False) -> pd.DataFrame:
    """Per key (sorted): the sums of integer `columns`, exact (np.bincount adds in float64,
    exact below 2^53; the rows are counts and cents), without copying the frame."""
    mask, keys = _keys(frame, dimension, cohort=cohort)
    if len(keys) and keys.min() >= 0 and keys.max() <= max(4 * len(keys), 1 << 16):
        # Small non-negative keys (tier codes, ids): bin by the key itself, no sort.
        present = np.bincount(keys)
        unique = np.flatnonzero(present)
        bins, size = keys, len(present)
    else:
        unique, bins = np.unique(keys, return_inverse=True)
        size = len(unique)
    sums = {}
    for column in columns:
        values = frame[column].to_numpy(dtype="int64")
        if mask is not None:
            values = values[mask]
        total = np.bincount(bins, weights=values, minlength=size)
        sums[column] = total[unique] if bins is keys else total
    return pd.DataFrame(sums, index=_labels(dimension, unique), columns=columns)


def _mean_parts(frame: pd.DataFrame, dimension: str, column: str) -> pd.DataFrame:
    """Per key: sum and count of the non-null values of `column`."""
    mask, keys = _keys(frame, dimension)
    values = frame[column] if mask is None else frame[column][mask]
    result = values.groupby(keys, sort=True).agg(["sum", "count"])
    result.index = _labels(dimension, result.index)
    return result


def _commission_order(population: pd.DataFrame) -> np.ndarray:
    """Row order of the population by commission descending, then client id: a total order,
    sorted once and shared by every dimension's top-share (see _top_share)."""
    commission = population["commission_cents"].to_numpy(dtype="int64")
    return np.lexsort((population["client_id"].to_numpy(dtype="int64"), -commission))


def _top_share(population: pd.DataFrame, dimension: str, order: np.ndarray | None = None) -> pd.DataFrame:
    """Per key of the dimension: commission of the top ceil(20% n) population clients by
    commission (ties broken by client id), and of all n. Sorted and summed in numpy.

    `order`: _commission_order(population), when the caller has it."""
    mask, keys = _keys(population, dimension)
    if len(keys) == 0:
        return pd.DataFrame({"top": [], "total": []}, dtype="float64")
    if order is None:
        order = _commission_order(population)
    commission = population["commission_cents"].to_numpy(dtype="int64")[order]
    if mask is None:
        keys = keys[order]
    else:
        # The keys of the masked rows, in commission order: a row's key by its position.
        full = np.full(len(population), -1, dtype="int64")
        full[mask] = keys
        kept = mask[order]
        keys, commission = full[order][kept], commission[kept]
    # By key, then commission descending, then client id: the (commission, id) order is total,
    # so sorting by it first and then stably by key gives the same order as one 3-key lexsort.
    by_key = np.argsort(keys, kind="stable")
    keys, commission = keys[by_key], commission[by_key]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    rank = np.arange(len(keys)) - np.repeat(starts, sizes)
    top_n = np.repeat((sizes * d.TOP_SHARE_PERCENT + 99) // 100, sizes)
    top = np.add.reduceat(np.where(rank < top_n, commission, 0), starts)
    total = np.add.reduceat(commission, starts)
    return pd.DataFrame({"top": top, "total": total}, index=_labels(dimension, keys[starts]))


class _Table:
    """Lookups into a per-key aggregate (a plain dict: thousands of lookups a night) that answer
    0 for a key it does not have."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.keys = set(frame.index)
        self.data: dict[str, dict[str, float]] = {
            key: {column: float(value) for column, value in row.items()} for key, row in frame.to_dict("index").items()
        }

    def get(self, key: str, column: str) -> float:
        return self.data.get(key, {}).get(column, 0.0)


POPULATION_COLUMNS = [
    "open_end",
    "new",
    "commission_cents",
    "trades_year",
    "trades_period",
    "loss",
    "complaints_period",
    "csat_surveyed",
    "csat_satisfied",
    "nps_answered",
    "nps_promoters",
    "nps_detractors",
    "dormant_end",
]
COHORT_COLUMNS = ["open_start", "retained", "alive_start", "lost", "lost_commission_cents"]


def _tier_keys(frame: pd.DataFrame, column: str) -> np.ndarray:
    given = f"{column}_key"
    if given in frame.columns:
        return frame[given].to_numpy(dtype="int64")
    return frame[column].map(TIER_KEYS).astype("int64").to_numpy()


def metric_rows(
    book: pd.DataFrame,
    complaint_times: pd.DataFrame,
    *,
    with_segments: bool,
    with_clv: bool,
    spend: dict[str, float],
    new_in_spend_months: dict[str, int],
    with_logins: bool = False,
) -> list[dict]:
    """Metric rows: dicts with code, dimension, key, value, numerator, denominator.

    `book`: one row per client opened on or before D with client_id, tier and tier_start (codes,
    "none" when not tiered on D / S), account_manager_id (-1: none), branch_id, SUM_COLUMNS,
    and SEGMENT_COLUMNS when `with_segments`, clv (float, NaN: not valued) when `with_clv`,
    logins_period (sign-ins in the period) when `with_logins` (login data was provided).
    `complaint_times`: the client's keys (tier, account_manager_id, branch_id), response_hours
    and resolution_hours (NaN when not in the period). `spend`, `new_in_spend_months`: by ""
    (overall) and branch id as text.

    Start-cohort metrics (retention, churn, cost of churn) group the clients at period start
    by their tier on S; everything else groups by the tier on D.
    """
    # tier_key / tier_start_key: TIER_KEYS of tier / tier_start, given by the caller when it has
    # them (the nightly book: the tier codes themselves), else mapped from the text here.
    book = book.assign(
        retained=((book["open_start"] == 1) & (book["open_end"] == 1)).astype("int64"),
        tier_key=_tier_keys(book, "tier"),
        tier_start_key=_tier_keys(book, "tier_start"),
        one=1,
    )
    complaint_times = complaint_times.assign(tier_key=_tier_keys(complaint_times, "tier"))
    if not with_segments:
        book = book.assign(**dict.fromkeys(SEGMENT_COLUMNS, 0))
    # Only the numeric columns used below (the text columns are the costly ones to copy).
    used = ["client_id", "tier_key", "tier_start_key", "tenure_days", "one", "account_manager_id", "branch_id"]
    used += [*POPULATION_COLUMNS, *COHORT_COLUMNS, *(["clv"] if with_clv else [])]
    used += ["logins_period"] if with_logins else []
    book = book[list(dict.fromkeys(column for column in used if column in book.columns))]
    population = book[book["open_end"] == 1]
    total_commission = float(population["commission_cents"].sum())
    commission_order = _commission_order(population)
    rows: list[dict] = []
    for dimension in DIMENSIONS:
        pop = _Table(
            _sum_by_key(population, dimension, POPULATION_COLUMNS + (["logins_period"] if with_logins else []))
        )
        cohort = _Table(_sum_by_key(book, dimension, COHORT_COLUMNS, cohort=True))
        everyone = _Table(_sum_by_key(book, dimension, ["tenure_days", "one"]))
        top = _Table(_top_share(population, dimension, commission_order))
        response = _Table(_mean_parts(complaint_times, dimension, "response_hours"))
        resolution = _Table(_mean_parts(complaint_times, dimension, "resolution_hours"))
        clv = _Table(_mean_parts(population, dimension, "clv")) if with_clv else None
        keys = sorted(pop.keys | cohort.keys | everyone.keys)
        if dimension == "overall":
            keys = [""]  # the overall row exists even for an empty book
        for key in keys:

            def add(
                code: str,
                value: float | None,
                numerator: float | None,
                denominator: float | None,
                dimension: str = dimension,
                key: str = key,
            ) -> None:
                rows.append(
                    {
                        "code": code,
                        "dimension": dimension,
                        "key": key,
                        "value": value,
                        "numerator": numerator,
                        "denominator": denominator,
                    }
                )

            n = pop.get(key, "open_end")
            add("clients", n, n, None)
            start, retained = cohort.get(key, "open_start"), cohort.get(key, "retained")
            add("retention_rate", _ratio(retained, start, 100), retained, start)
            losers = pop.get(key, "loss")
            add("loss_rate", _ratio(losers, n, 100), losers, n)
            trades_period = pop.get(key, "trades_period")
            add("trade_frequency", _ratio(trades_period, n), trades_period, n)
            if with_logins:
                logins = pop.get(key, "logins_period")
                add("login_frequency", _ratio(logins, n), logins, n)
            complaints = pop.get(key, "complaints_period")
            add("complaint_rate", _ratio(complaints, n, 100), complaints, n)
            add("complaint_iceberg", complaints * d.ICEBERG_MULTIPLIER, complaints, None)
            surveyed, satisfied = pop.get(key, "csat_surveyed"), pop.get(key, "csat_satisfied")
            add("csat", _ratio(satisfied, surveyed, 100), satisfied, surveyed)
            answered = pop.get(key, "nps_answered")
            net = pop.get(key, "nps_promoters") - pop.get(key, "nps_detractors")
            add("nps", _ratio(net, answered, 100), net, answered)
            for code, table in (("first_response_hours", response), ("resolution_hours", resolution)):
                total, count = table.get(key, "sum"), table.get(key, "count")
                add(code, _ratio(total, count), total, count)
            # CLTV (simple): (commission / trades) x (trades / clients) x mean lifetime in years.
            commission = pop.get(key, "commission_cents") / 100
            trades_year = pop.get(key, "trades_year")
            value_per_trade = _ratio(commission, trades_year)
            frequency = _ratio(trades_year, n)
            lifetime_years = _ratio(everyone.get(key, "tenure_days"), everyone.get(key, "one"), 1 / 365.25)
            parts = (value_per_trade, frequency, lifetime_years)
            cltv = None if None in parts else value_per_trade * frequency * lifetime_years
            add("cltv_simple", cltv, commission, n)
            top_cents, key_cents = top.get(key, "top"), top.get(key, "total")
            add("top20_commission_share", _ratio(top_cents, key_cents, 100), top_cents / 100, key_cents / 100)
            add("commission_share", _ratio(key_cents, total_commission, 100), key_cents / 100, total_commission / 100)
            if dimension in ("overall", "branch") and key in spend:
                cost, acquired = spend[key], float(new_in_spend_months.get(key, 0))
                cac = _ratio(cost, acquired)
                add("cac", cac, cost, acquired)
                add("cltv_cac_ratio", _ratio(cltv, cac) if cltv is not None and cac else None, cltv, cac)
            if with_segments:
                alive, lost = cohort.get(key, "alive_start"), cohort.get(key, "lost")
                add("churn_rate", _ratio(lost, alive, 100), lost, alive)
                dormant = pop.get(key, "dormant_end")
                add("dormancy_rate", _ratio(dormant, n, 100), dormant, n)
                lost_value = cohort.get(key, "lost_commission_cents") / 100
                add("cost_of_churn", lost_value * (1 + d.REPUTATION_FACTOR), lost_value, None)
            if clv is not None:
                total, scored = clv.get(key, "sum"), clv.get(key, "count")
                add("cltv_model", _ratio(total, scored), total, scored)
    return rows
