"""Dormancy segments and churn risk with reasons: pure pandas/numpy on per-client frames, no ORM.

The stages (retention/dormancy.py, retention/churn.py) read the inputs with SQL, call these
functions and store the frames; the back-test (evaluate_churn) calls the same functions on
inputs read as of an earlier date, so what is evaluated is what runs at night.

Dates travel as day numbers (days since 1970-01-01, int64; -1 = none) so a million rows stay
vectorised.

Churn risk combines the signals as a noisy OR: risk = 1 - prod(1 - weight_i x strength_i),
each strength in [0, 1]. A signal's share of the score is weight_i x strength_i over their
sum; the strongest signals become the reasons, in words an account manager can act on.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from scipy import special

from retention import lifetime, reasons
from retention.conf import SIGNALS, ActivityParams, ChurnParams

NONE = -1
EPOCH = dt.date(1970, 1, 1)

SEGMENT_ACTIVE = "active"
SEGMENT_POTENTIAL = "potentially_active"
SEGMENT_DORMANT = "dormant"
SEGMENT_CLOSED = "closed"


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def day_from_number(number: int) -> dt.date | None:
    return None if number < 0 else EPOCH + dt.timedelta(days=int(number))


def day_numbers(values: pd.Series) -> np.ndarray:
    """Dates (date objects, ISO strings, datetime64 or None) -> int64 day numbers, -1 for none."""
    if len(values) == 0:
        return np.empty(0, dtype="int64")
    parsed = pd.to_datetime(values, errors="coerce")
    days = parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")
    return np.where(parsed.isna().to_numpy(), NONE, days)


# ------------------------------------------------------------------------------ activity

ACTIVITY_INPUT = [
    "client_id",
    "opened_on",  # day number
    "closed_on",  # day number or -1
    "first_day",  # first trading day (-1: never traded)
    "last_day",
    "trading_days",  # distinct trading days up to as_of
    "recent_days",  # ... in (as_of - recent, as_of]
    "baseline_days",  # ... in (as_of - recent - baseline, as_of - recent]
    "trades",
    "commission",
    "trades_year",  # trades in the last 365 days
    "commission_year",
    "cash",  # latest snapshot on or before as_of (NaN: none)
    "market_value",
]


def activity_segments(frame: pd.DataFrame, as_of: dt.date, params: ActivityParams) -> pd.DataFrame:
    """Add the activity columns to an ACTIVITY_INPUT frame (one row per client open at some time).

    segment            closed (closed on or before as_of) / dormant (no trade for more than
                       dormant_days) / potentially active (no trade for more than active_days, or
                       trading at less than slowing_ratio of its own baseline rate) / active;
                       a client that never traded counts its days from the opening date;
    typical_gap_days   (last - first trading day) / (trading days - 1), the client's own rhythm;
    overdue_ratio      days since the last trade / typical gap;
    about_to_go_dormant  not yet dormant, no trade for at least overdue_multiple x the typical gap
                       and at least active_days / 2 days (a long weekend is not a warning);
    regulatory_dormant no trade (or no opening) for regulatory_years, cash at most
                       regulatory_max_cash and no holdings in the latest snapshot.
    """
    out = frame.copy()
    today = day_number(as_of)
    last = out["last_day"].to_numpy("int64")
    first = out["first_day"].to_numpy("int64")
    opened = out["opened_on"].to_numpy("int64")
    closed = out["closed_on"].to_numpy("int64")
    days_traded = out["trading_days"].to_numpy("int64")
    traded = last >= 0
    since = np.where(traded, today - last, today - opened)
    is_closed = (closed >= 0) & (closed <= today)

    gap = np.full(len(out), np.nan)
    repeat = traded & (days_traded >= 2)
    gap[repeat] = (last[repeat] - first[repeat]) / (days_traded[repeat] - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        overdue = np.where(repeat & (gap > 0), since / gap, np.nan)

    # The client's own rate over the baseline year, scaled to the recent window; only the part
    # of the baseline year after the first trade counts (a client who started mid-year).
    baseline_end = today - params.recent_days
    baseline_start = baseline_end - params.baseline_days + 1
    covered = np.where(traded, baseline_end - np.maximum(first, baseline_start) + 1, 0)
    covered = np.clip(covered, 0, params.baseline_days)
    baseline_count = out["baseline_days"].to_numpy("float64")
    judged = (covered >= params.recent_days) & (baseline_count >= params.min_baseline_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(judged, baseline_count * params.recent_days / covered, np.nan)
    recent = out["recent_days"].to_numpy("float64")
    slowing = judged & (recent < params.slowing_ratio * expected)

    segment = np.full(len(out), SEGMENT_ACTIVE, dtype=object)
    segment[(since > params.active_days) | slowing] = SEGMENT_POTENTIAL
    segment[since > params.dormant_days] = SEGMENT_DORMANT
    segment[is_closed] = SEGMENT_CLOSED

    open_not_dormant = ~is_closed & (since <= params.dormant_days)
    about = open_not_dormant & (overdue >= params.overdue_multiple) & (since >= params.active_days / 2)

    cash = out["cash"].to_numpy("float64")
    holdings = out["market_value"].to_numpy("float64")
    years = today - params.regulatory_years * 365
    idle_for_years = np.where(traded, last <= years, opened <= years)
    regulatory = ~is_closed & idle_for_years & (cash <= params.regulatory_max_cash) & (holdings == 0)

    out["segment"] = segment
    out["days_since_last_trade"] = since
    out["typical_gap_days"] = gap
    out["overdue_ratio"] = overdue
    out["baseline_expected"] = expected
    out["about_to_go_dormant"] = about
    out["regulatory_dormant"] = regulatory
    return out


# ------------------------------------------------------------------------------ lifetime model


@dataclass(frozen=True)
class ModelFit:
    """The fitted lifetime models of a date, or why there are none."""

    status: str  # ok / boundary / failed / too_few
    message: str
    customers: int
    distinct_rows: int
    bgnbd: lifetime.BgNbdFit | None
    gg_status: str
    gamma_gamma: lifetime.GammaGammaFit | None
    seconds: float = 0.0
    time_unit: str = "weeks"

    @property
    def unit_days(self) -> float:
        return UNIT_DAYS[self.time_unit]

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.bgnbd is not None

    @property
    def value_usable(self) -> bool:
        return self.usable and self.gg_status == "ok" and self.gamma_gamma is not None


MIN_REPEAT_CLIENTS = 30
UNIT_DAYS = {"days": 1.0, "weeks": 7.0}


def model_inputs(activity: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Per traded client: BG/NBD frequency (repeat trading days), recency and age T in days, and
    the Gamma-Gamma monetary value (commission per trading day)."""
    traded = activity[(activity["last_day"] >= 0) & (activity["first_day"] >= 0)]
    today = day_number(as_of)
    first = traded["first_day"].to_numpy("int64")
    days = traded["trading_days"].to_numpy("float64")
    return pd.DataFrame(
        {
            "client_id": traded["client_id"].to_numpy("int64"),
            "frequency": days - 1,
            "recency": (traded["last_day"].to_numpy("int64") - first).astype("float64"),
            "T": (today - first).astype("float64"),
            "monetary": traded["commission"].to_numpy("float64") / np.maximum(days, 1),
        }
    )


def fit_models(inputs: pd.DataFrame, time_unit: str = "weeks") -> ModelFit:
    """Fit BG/NBD on (frequency, recency, T) and Gamma-Gamma on repeat clients' commission per day.

    Identical rows are collapsed into weights. In weeks, recency and T are whole weeks for the
    fit (a million clients collapse to a few ten thousand distinct rows, so the fit takes a
    second or two; scoring then uses the exact fractional weeks). A boundary optimum, no
    convergence or too few repeat clients give a fit marked unusable: scoring then stands on
    the rule signals alone.
    """
    import time

    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be one of {sorted(UNIT_DAYS)}, not {time_unit!r}")
    started = time.perf_counter()
    unit = UNIT_DAYS[time_unit]
    frequency = inputs["frequency"].to_numpy("float64")
    recency = np.floor(inputs["recency"].to_numpy("float64") / unit)
    age = np.floor(inputs["T"].to_numpy("float64") / unit)
    valid = (age > 0) & (recency <= age)
    frequency, recency, age = frequency[valid], recency[valid], age[valid]
    repeat_clients = int((frequency > 0).sum())
    if repeat_clients < MIN_REPEAT_CLIENTS:
        return ModelFit(
            "too_few",
            f"{repeat_clients} repeat clients; at least {MIN_REPEAT_CLIENTS} are needed to fit.",
            len(frequency),
            0,
            None,
            "too_few",
            None,
            time.perf_counter() - started,
            time_unit,
        )
    (x, t_x, big_t), weights = lifetime.summary_collapse(frequency, recency, age)
    fit = lifetime.bgnbd_fit(x, t_x, big_t, weights=weights)
    if not fit.converged:
        status = "failed"
    elif fit.at_boundary:
        status = "boundary"
    else:
        status = "ok"

    repeat = inputs[valid & (inputs["frequency"].to_numpy() > 0) & (inputs["monetary"].to_numpy() > 0)]
    gg = None
    gg_status = "too_few"
    if len(repeat) >= MIN_REPEAT_CLIENTS:
        (gx, gm), gw = lifetime.summary_collapse(repeat["frequency"], repeat["monetary"].round(2))
        gg = lifetime.gamma_gamma_fit(gx, gm, weights=gw)
        gg_status = "failed" if not gg.converged else "boundary" if gg.at_boundary or gg.q <= 1 else "ok"
    message = fit.message if status != "ok" else ""
    if gg is not None and gg_status != "ok":
        message = (message + " Gamma-Gamma: " + gg.message).strip()
    return ModelFit(
        status, message, len(frequency), len(x), fit, gg_status, gg, time.perf_counter() - started, time_unit
    )


def model_scores(
    fit: ModelFit, activity: pd.DataFrame, as_of: dt.date, params: ChurnParams, window_days: int = 90
) -> pd.DataFrame:
    """P(alive), P(no trading day in the next `window_days`), expected trading days over the CLV
    horizon and model CLV per client of `activity` (NaN where the model is unusable or the
    client never traded)."""
    n = len(activity)
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    no_trade = np.full(n, np.nan)
    value = np.full(n, np.nan)
    if fit.usable:
        inputs = model_inputs(activity, as_of)
        index = activity.reset_index(drop=True).index[
            ((activity["last_day"] >= 0) & (activity["first_day"] >= 0)).to_numpy()
        ]
        unit = fit.unit_days
        x = inputs["frequency"].to_numpy("float64")
        t_x = inputs["recency"].to_numpy("float64") / unit
        age = np.maximum(inputs["T"].to_numpy("float64") / unit, t_x)
        # Many clients share a (x, t_x, T) row: compute each distinct row once.
        (ux, ut, uT), position = _distinct_rows(x, t_x, age)
        horizon = params.clv_horizon_days / unit
        alive = lifetime.bgnbd_probability_alive(fit.bgnbd, ux, ut, uT)
        p_alive[index] = alive[position]
        no_trade[index] = probability_no_trade(fit.bgnbd, alive, ux, uT, window_days / unit)[position]
        purchases = _ExpectedPurchases(fit.bgnbd, ux, uT, alive)
        expected[index] = purchases(horizon)[position]
        if fit.value_usable:
            spend = lifetime.gamma_gamma_conditional_value(fit.gamma_gamma, x, inputs["monetary"].to_numpy("float64"))
            value[index] = _discounted_value(fit, purchases, params)[position] * spend
    return pd.DataFrame({"p_alive": p_alive, "p_no_trade": no_trade, "expected_trading_days": expected, "clv": value})


def probability_no_trade(fit: lifetime.BgNbdFit, p_alive, x, big_t, t: float) -> np.ndarray:
    """P(no trading day in (T, T + t] | history) under BG/NBD.

    A client who has dropped out never trades again; one still alive has, given the history,
    a trading rate lambda ~ Gamma(r + x, alpha + T) (drop-out happens only right after a trade,
    so it cannot end a run without trades early), hence P(0 | alive) = E[exp(-lambda t)] =
    ((alpha + T) / (alpha + T + t)) ** (r + x).
    """
    x = np.asarray(x, dtype=float)
    big_t = np.asarray(big_t, dtype=float)
    log_silent = (fit.r + x) * (np.log(fit.alpha + big_t) - np.log(fit.alpha + big_t + t))
    return 1.0 - p_alive + p_alive * np.exp(log_silent)


def _distinct_rows(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """(the distinct rows' columns, sorted as lifetime.summary_collapse gives them, and each
    row's index into them)."""
    if not len(columns[0]):
        return tuple(np.empty(0) for _ in columns), np.zeros(0, dtype=np.intp)
    uniq, inverse, _counts = lifetime._unique_rows(np.column_stack([np.asarray(c, dtype=float) for c in columns]))
    return tuple(uniq[:, i] for i in range(uniq.shape[1])), inverse


class _ExpectedPurchases:
    """lifetime.bgnbd_expected_purchases(fit, t, x, t_x, T) of distinct (x, t_x, T) rows, for
    several horizons t: the same values, computed with less work. The hypergeometric factor
    depends on a row through (x, T) only, and many rows (clients who last traded on different
    days) share one: it is evaluated once per distinct (x, T) and horizon, then multiplied by
    each row's P(alive) (`alive`, computed once), as bgnbd_expected_purchases does."""

    def __init__(self, fit: lifetime.BgNbdFit, x: np.ndarray, big_t: np.ndarray, alive: np.ndarray):
        self.fit = fit
        self.alive = alive
        (self.x, self.big_t), self.pair = _distinct_rows(x, big_t)

    def __call__(self, t: float) -> np.ndarray:
        r, alpha, a, b = self.fit.r, self.fit.alpha, self.fit.a, self.fit.b
        t = np.asarray(t, dtype=float)
        x, big_t = self.x, self.big_t
        # The expressions of lifetime.bgnbd_expected_purchases, term for term.
        z = t / (alpha + big_t + t)
        one_minus_z = (alpha + big_t) / (alpha + big_t + t)
        hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        bracket = 1.0 - one_minus_z ** (a - 1.0) * hyp
        numer = (a + b + x - 1.0) / (a - 1.0) * bracket
        return numer[self.pair] * self.alive


def _discounted_value(fit: ModelFit, purchases: _ExpectedPurchases, params: ChurnParams, steps: int = 12) -> np.ndarray:
    """Discounted expected trading days over the horizon, per unit of spend per trading day
    (`purchases`: the expected trading days of the rows by horizon).

    lifetime.clv discounts day by day (365 evaluations of the hypergeometric function per row);
    here the horizon is cut into `steps` equal periods, each period's expected trading days
    discounted at its midpoint: within 0.1% of the daily sum for horizons up to a year."""
    unit = fit.unit_days
    edges = np.linspace(0.0, params.clv_horizon_days / unit, steps + 1)
    n = len(purchases.alive)
    total = np.zeros(n)
    previous = np.zeros(n)
    for start, end in itertools.pairwise(edges):
        cumulative = purchases(end)
        total += (cumulative - previous) / (1.0 + params.daily_discount) ** ((start + end) / 2 * unit)
        previous = cumulative
    return total


# ------------------------------------------------------------------------------ churn risk

SIGNAL_INPUT = [
    "client_id",
    "outflow_30",  # net withdrawals in the last 30 days (withdrawals - deposits)
    "outflow_90",
    "pnl_recent",  # realised P&L in the recent window
    "losing_closes",  # closing trades with a realised loss in the recent window
    "downgrade_steps",  # tiers lost in the recent window (0: none)
    "downgrade_from",
    "downgrade_to",
    "downgrade_on",  # day number
    "open_complaints",
    "detractor_score",  # lowest NPS answer 0-6 in the feedback window (NaN: none)
    "low_csat",  # lowest CSAT answer <= 2 (NaN: none)
]


def empty_signals(client_ids: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"client_id": np.asarray(client_ids, dtype="int64")})
    for column in SIGNAL_INPUT[1:]:
        frame[column] = np.nan
    for column in ("outflow_30", "outflow_90", "pnl_recent", "losing_closes", "downgrade_steps", "open_complaints"):
        frame[column] = 0.0
    frame["downgrade_on"] = NONE
    return frame


def signal_strengths(
    activity: pd.DataFrame, model: pd.DataFrame, signals: pd.DataFrame, params: ChurnParams, act: ActivityParams
) -> pd.DataFrame:
    """Each signal's strength in [0, 1] per client (rows aligned with `activity`)."""
    n = len(activity)
    strengths = pd.DataFrame(index=range(n), columns=list(SIGNALS), dtype="float64").fillna(0.0)
    segment = activity["segment"].to_numpy()
    since = activity["days_since_last_trade"].to_numpy("float64")
    dormant = segment == SEGMENT_DORMANT

    # The model's P(no trade soon) already weighs recency against the client's own rhythm; the
    # rule versions of it (dormant, overdue) stand in for clients the model does not cover.
    silent = model["p_no_trade"].to_numpy("float64")
    modelled = ~np.isnan(silent)
    strengths["model"] = np.where(modelled, silent, 0.0)
    strengths["dormant"] = (dormant & ~modelled).astype("float64")

    overdue = activity["overdue_ratio"].to_numpy("float64")
    span = 2 * act.overdue_multiple - 1
    overdue_strength = np.clip((overdue - 1.0) / span, 0.0, 1.0)
    overdue_ok = ~modelled & ~dormant & ~np.isnan(overdue) & (since >= act.active_days / 2)
    strengths["overdue"] = np.where(overdue_ok, overdue_strength, 0.0)

    expected = activity["baseline_expected"].to_numpy("float64")
    recent = activity["recent_days"].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        decline = np.clip(1.0 - recent / expected, 0.0, 1.0)
    strengths["decline"] = np.where(~dormant & (expected >= 2), decline, 0.0)

    assets = signals["assets"].to_numpy("float64")
    shares = []
    for column in ("outflow_30", "outflow_90"):
        out = signals[column].to_numpy("float64")
        base = np.nan_to_num(assets) + out  # assets before the money left
        with np.errstate(divide="ignore", invalid="ignore"):
            shares.append(np.where((out > 0) & (base > 0), np.minimum(out / base, 1.0), 0.0))
    share = np.maximum(shares[0], shares[1])
    strengths["outflow"] = np.clip(share / params.outflow_full_share, 0.0, 1.0)

    complaints = signals["open_complaints"].to_numpy("float64")
    strengths["complaints"] = np.clip(complaints, 0, 2) / 2 * 0.5 + np.where(complaints > 0, 0.5, 0.0)

    detractor = signals["detractor_score"].to_numpy("float64")
    strengths["detractor"] = np.where(np.isnan(detractor), 0.0, 0.5 + 0.5 * (6 - np.clip(detractor, 0, 6)) / 6)
    csat = signals["low_csat"].to_numpy("float64")
    strengths["low_csat"] = np.where(np.isnan(csat), 0.0, np.where(csat <= 1, 1.0, 0.6))

    pnl = signals["pnl_recent"].to_numpy("float64")
    closes = signals["losing_closes"].to_numpy("float64")
    losing = (pnl < 0) & (closes >= params.loss_min_trades)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss_share = np.where(np.nan_to_num(assets) > 0, -pnl / (np.nan_to_num(assets) - pnl), np.nan)
    loss_strength = np.where(np.isnan(loss_share), 0.5, np.clip(loss_share / params.loss_full_share, 0.0, 1.0))
    strengths["losses"] = np.where(losing, loss_strength, 0.0)

    steps = signals["downgrade_steps"].to_numpy("float64")
    strengths["downgrade"] = np.where(steps >= 2, 1.0, np.where(steps >= 1, 0.6, 0.0))
    return strengths


def churn_risk(strengths: pd.DataFrame, params: ChurnParams) -> tuple[np.ndarray, pd.DataFrame]:
    """(risk 0-100 per client, weighted contributions per signal)."""
    weights = pd.Series({name: float(params.weights.get(name, 0.0)) for name in strengths.columns})
    contributions = strengths.mul(weights, axis=1).clip(0.0, 1.0)
    survive = np.prod(1.0 - contributions.to_numpy(), axis=1)
    risk = np.rint(100.0 * (1.0 - survive)).astype("int64")
    return np.clip(risk, 0, 100), contributions


def _strongest(
    risk: np.ndarray, contributions: pd.DataFrame, strengths: pd.DataFrame, params: ChurnParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, usable, points), each clients x kept: the columns of the `reasons_kept` largest
    contributions per client, strongest first; whether each is a reason (contributes, and its
    signal is at least `signal_min`); its points (its share of the contributions times the risk).

    The risk is shared out in whole points by largest remainder: each signal gets the whole part
    of its share, and the points left go to the largest fractions (the stronger signal first on
    a tie). So the points of all signals add up to the risk exactly and a client's reasons never
    to more (rounding each share to the nearest point gave 46 points of a risk of 45)."""
    values = contributions.to_numpy()
    n, m = values.shape
    kept = min(params.reasons_kept, m)
    order = np.argsort(-values, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    totals = values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(totals[:, None] > 0, risk[:, None] * values / totals[:, None], 0.0)
    whole = np.floor(shares)
    left = np.rint(np.where(totals > 0, risk, 0) - whole.sum(axis=1)).astype("int64")
    # Rank of each signal's fraction in its row, largest first (ties: in contribution order).
    fractions = (shares - whole)[rows, order]
    by_fraction = order[rows, np.argsort(-fractions, axis=1, kind="stable")]
    rank = np.empty_like(by_fraction)
    rank[rows, by_fraction] = np.arange(m)
    all_points = (whole + (rank < left[:, None])).astype("int64")
    order = order[:, :kept]
    chosen = values[rows, order]
    usable = (chosen > 0) & (strengths.to_numpy()[rows, order] >= params.signal_min)
    return order, usable, all_points[rows, order]


def reason_columns(
    risk: np.ndarray, contributions: pd.DataFrame, strengths: pd.DataFrame, params: ChurnParams
) -> dict[str, np.ndarray]:
    """The reason slots of ChurnScore per client (retention/reasons.py): `reason_<k>`, the number
    of the k-th strongest signal (reasons.CODES; 0 when it is no reason), and `reason_<k>_points`, its share
    of the score (its weighted contribution over the sum of all contributions, times the risk),
    so the points of all reasons add up to at most the risk."""
    names = np.array([*(reasons.CODES[name] for name in contributions.columns), 0], dtype="int64")
    n = len(contributions)
    columns = {}
    if n:
        order, usable, points = _strongest(risk, contributions, strengths, params)
    for k, (code_field, points_field) in enumerate(reasons.REASON_FIELDS):
        if n == 0 or k >= order.shape[1]:
            columns[code_field] = np.zeros(n, dtype="int64")
            columns[points_field] = np.zeros(n, dtype="int64")
            continue
        columns[code_field] = names[np.where(usable[:, k], order[:, k], len(names) - 1)]
        columns[points_field] = np.where(usable[:, k], points[:, k], 0)
    return columns


def fact_columns(
    activity: pd.DataFrame, model: pd.DataFrame, signals: pd.DataFrame, act: ActivityParams
) -> dict[str, np.ndarray]:
    """The figures behind the reasons per client, as ChurnScore's fact fields (reasons.FACT_FIELDS):
    integers as float64 with NaN for none, floats rounded as the reasons show them, money in
    cents' precision, the downgrade day as datetime64 (NaT: none)."""
    since = activity["days_since_last_trade"].to_numpy("float64")
    assets = np.nan_to_num(signals["assets"].to_numpy("float64"))
    out30 = signals["outflow_30"].to_numpy("float64")
    out90 = signals["outflow_90"].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        share30 = np.where(out30 > 0, out30 / (assets + out30), 0.0)
        share90 = np.where(out90 > 0, out90 / (assets + out90), 0.0)
    use_30 = (out30 > 0) & (share30 >= share90)
    outflow = np.where(use_30, out30, out90)
    base = assets + outflow
    pnl = signals["pnl_recent"].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        loss_share = np.where(assets > 0, -pnl / (assets - pnl), np.nan)
        outflow_share = np.where(base > 0, outflow / base, np.nan)
    downgrade_on = signals["downgrade_on"].to_numpy("float64")
    on = np.where(np.isnan(downgrade_on) | (downgrade_on < 0), np.iinfo("int64").min, np.nan_to_num(downgrade_on))

    def whole(values: np.ndarray) -> np.ndarray:  # truncated to an integer; NaN (and infinity): none
        values = np.asarray(values, dtype="float64")
        return np.where(np.isfinite(values), np.trunc(np.where(np.isfinite(values), values, 0.0)), np.nan)

    def rounded(values: np.ndarray, digits: int) -> np.ndarray:
        values = np.asarray(values, dtype="float64")
        return np.where(np.isfinite(values), np.round(values, digits), np.nan)

    return {
        "p_no_trade": rounded(model["p_no_trade"].to_numpy("float64"), 4),
        "window_days": np.full(len(activity), float(act.recent_days)),
        "days_since_last_trade": whole(since),
        "typical_gap_days": rounded(activity["typical_gap_days"].to_numpy("float64"), 1),
        "recent_trading_days": whole(activity["recent_days"].to_numpy("float64")),
        "baseline_trading_days": rounded(activity["baseline_expected"].to_numpy("float64"), 1),
        "outflow_share": rounded(outflow_share, 4),
        "outflow_window_days": np.where(use_30, 30.0, 90.0),
        "outflow_amount": rounded(outflow, 2),
        "loss_amount": rounded(-pnl, 2),
        "loss_share": rounded(loss_share, 4),
        "losing_closes": whole(signals["losing_closes"].to_numpy("float64")),
        "downgrade_from": whole(signals["downgrade_from"].to_numpy("float64")),
        "downgrade_to": whole(signals["downgrade_to"].to_numpy("float64")),
        "downgrade_on": on.astype("int64").astype("datetime64[D]"),
        "open_complaints": whole(signals["open_complaints"].to_numpy("float64")),
        "nps_score": whole(signals["detractor_score"].to_numpy("float64")),
        "csat_score": whole(signals["low_csat"].to_numpy("float64")),
    }


def _tier_name(tier: int | None) -> str:
    """The tier's name in the active language."""
    from segmentation.models import Tier

    return str(Tier(tier).label) if tier in Tier.values else "?"


def reason_text(reason: dict) -> str:
    """One reason in words an account manager can act on, in the active language."""
    code, f = reason["code"], reason.get("facts") or {}

    def pct(value: float | None) -> str:
        return "?" if value is None else f"{round(100 * value)}%"

    def money(value: float | None) -> str:
        return "?" if value is None else number_format(round(value), 0, force_grouping=True)

    if code == "model":
        return _("Lifetime model: %(silent)s chance of no trade in the next %(window)s days (still active: %(p)s)") % {
            "silent": pct(f.get("p_no_trade")),
            "window": f.get("window"),
            "p": pct(f.get("p_alive")),
        }
    if code == "dormant":
        return _("No trade for %(days)s days: dormant") % {"days": f.get("days")}
    if code == "overdue":
        return _("No trade for %(days)s days; usually trades every %(gap)s days") % {
            "days": f.get("days"),
            "gap": f.get("gap"),
        }
    if code == "decline":
        return (
            ngettext(
                "Traded on %(recent)s day in the last %(window)s, against %(expected)s usually",
                "Traded on %(recent)s days in the last %(window)s, against %(expected)s usually",
                f.get("recent") or 0,
            )
            % f
        )
    if code == "outflow":
        return _("Moved out %(share)s of assets in %(window)s days (net %(amount)s withdrawn)") % {
            "share": pct(f.get("share")),
            "window": f.get("window"),
            "amount": money(f.get("amount")),
        }
    if code == "complaints":
        count = f.get("count") or 0
        return ngettext("%(count)d open complaint", "%(count)d open complaints", count) % {"count": count}
    if code == "detractor":
        return _("Gave an NPS score of %(score)s (detractor)") % f
    if code == "low_csat":
        return _("Rated satisfaction %(score)s out of 5") % f
    if code == "losses":
        text = _("Lost %(amount)s on %(closes)s closing trades in %(window)s days") % {
            "amount": money(f.get("amount")),
            "closes": f.get("closes"),
            "window": f.get("window"),
        }
        if f.get("share") is not None:
            text += " " + _("(%(share)s of assets)") % {"share": pct(f.get("share"))}
        return text
    if code == "downgrade":
        return _("Tier fell from %(old)s to %(new)s on %(on)s") % {
            "old": _tier_name(f.get("from")),
            "new": _tier_name(f.get("to")),
            "on": f.get("on"),
        }
    return code


def score_clients(
    activity: pd.DataFrame,
    signals: pd.DataFrame,
    fit: ModelFit,
    as_of: dt.date,
    params: ChurnParams,
    act: ActivityParams,
) -> pd.DataFrame:
    """Churn risk, reasons and CLV for the clients of `activity` not closed (rows in its order).

    `activity` is an activity_segments() frame; `signals` a SIGNAL_INPUT frame (any clients;
    missing ones have no signal). The signals' strengths, the reason slots and the figures
    behind them come as ChurnScore's typed columns (retention/reasons.py; reasons.reasons_of(row.get) gives
    a row's reasons as dicts)."""
    activity = activity[activity["segment"] != SEGMENT_CLOSED].reset_index(drop=True)
    aligned = activity[["client_id"]].merge(signals, on="client_id", how="left")
    # Assets: the latest snapshot read with the activity (NaN: none recent).
    aligned["assets"] = (activity["cash"] + activity["market_value"]).to_numpy("float64")
    defaults = empty_signals(np.empty(0))
    for column in SIGNAL_INPUT[1:]:
        fill = NONE if column == "downgrade_on" else (0.0 if defaults[column].dtype != object else np.nan)
        if column in ("detractor_score", "low_csat", "downgrade_from", "downgrade_to"):
            continue
        aligned[column] = aligned[column].fillna(fill)
    model = model_scores(fit, activity, as_of, params, act.recent_days)
    strengths = signal_strengths(activity, model, aligned, params, act)
    risk, contributions = churn_risk(strengths, params)
    trades_year = activity["trades_year"].to_numpy("float64")
    commission_year = activity["commission_year"].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_trade = np.where(trades_year > 0, commission_year / trades_year, 0.0)
    clv_simple = per_trade * trades_year * params.simple_retention_years
    clv = model["clv"].to_numpy("float64")
    at_risk_base = np.where(np.isnan(clv), clv_simple, clv)
    rows = {
        "client_id": activity["client_id"].to_numpy("int64"),
        "segment": activity["segment"].to_numpy(),
        "risk": risk,
        "p_alive": model["p_alive"].round(6).to_numpy(),
        "expected_trading_days": model["expected_trading_days"].round(4).to_numpy(),
        "clv": np.round(clv, 2),
        "clv_simple": np.round(clv_simple, 2),
        "value_at_risk": np.round(at_risk_base * risk / 100.0, 2),
        "model_used": np.full(len(activity), fit.usable),
    }
    rounded = strengths.round(4)
    rows.update({field: rounded[name].to_numpy("float64") for name, field in reasons.SIGNAL_FIELDS.items()})
    rows.update(reason_columns(risk, contributions, strengths, params))
    rows.update(fact_columns(activity, model, aligned, act))
    return pd.DataFrame(rows)
