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
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from scipy import special

from retention import lifetime
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
    signal is at least `signal_min`); its points (its share of the contributions times the risk)."""
    values = contributions.to_numpy()
    kept = min(params.reasons_kept, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :kept]
    rows = np.arange(values.shape[0])[:, None]
    chosen = values[rows, order]
    usable = (chosen > 0) & (strengths.to_numpy()[rows, order] >= params.signal_min)
    totals = values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        points = np.where(totals[:, None] > 0, np.rint(risk[:, None] * chosen / totals[:, None]), 0).astype("int64")
    return order, usable, points


def top_reasons(
    risk: np.ndarray,
    contributions: pd.DataFrame,
    strengths: pd.DataFrame,
    facts: ReasonFacts,
    params: ChurnParams,
) -> list[list[dict]]:
    """Per client: the strongest signals as [{code, points, facts}], strongest first.

    points = the signal's share of the score (its weighted contribution over the sum of all
    contributions, times the risk), so the points of all reasons add up to at most the risk.
    Vectorised up to the last step: only the kept reasons' facts are built, per client."""
    names = list(contributions.columns)
    n = len(contributions)
    if n == 0:
        return []
    order, usable, points = _strongest(risk, contributions, strengths, params)
    order_list, usable_list, points_list = order.tolist(), usable.tolist(), points.tolist()
    reasons: list[list[dict]] = []
    for i in range(n):
        reasons.append(
            [
                {"code": names[j], "points": points_list[i][k], "facts": facts.of(names[j], i)}
                for k, j in enumerate(order_list[i])
                if usable_list[i][k]
            ]
        )
    return reasons


class ReasonFacts:
    """The figures behind each signal, per client, for the reason texts (JSON-safe values).

    The columns are rounded and converted to Python lists once; `of(code, i)` builds the small
    dict of one reason of one client."""

    def __init__(self, activity: pd.DataFrame, model: pd.DataFrame, signals: pd.DataFrame, act: ActivityParams):
        self.recent_window = act.recent_days
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
        # (values, kind): "int" truncated to an int, a digit count: rounded; "text": str or None.
        self.raw = {
            "since": (since, "int"),
            "gap": (activity["typical_gap_days"].to_numpy("float64"), 1),
            "recent": (activity["recent_days"].to_numpy("float64"), "int"),
            "expected": (activity["baseline_expected"].to_numpy("float64"), 1),
            "p_alive": (model["p_alive"].to_numpy("float64"), 4),
            "p_no_trade": (model["p_no_trade"].to_numpy("float64"), 4),
            "outflow_share": (outflow_share, 4),
            "outflow_window": (np.where(use_30, 30, 90).astype("float64"), "int"),
            "outflow_amount": (outflow, 2),
            "loss_amount": (-pnl, 2),
            "loss_share": (loss_share, 4),
            "closes": (signals["losing_closes"].to_numpy("float64"), "int"),
            "from": (signals["downgrade_from"].to_numpy("float64"), "int"),
            "to": (signals["downgrade_to"].to_numpy("float64"), "int"),
            "on": (downgrade_on, "date"),
            "complaints": (signals["open_complaints"].to_numpy("float64"), "int"),
            "nps": (signals["detractor_score"].to_numpy("float64"), "int"),
            "csat": (signals["low_csat"].to_numpy("float64"), "int"),
        }
        self._columns: dict | None = None

    @property
    def columns(self) -> dict:
        """The fact columns as JSON-safe Python lists (built on first use)."""
        if self._columns is None:
            columns = {}
            for name, (values, kind) in self.raw.items():
                if kind == "int":
                    columns[name] = _ints(values)
                elif kind == "date":
                    columns[name] = [
                        str(day_from_number(int(day))) if not math.isnan(day) and day >= 0 else None
                        for day in values.tolist()
                    ]
                else:
                    columns[name] = _rounded(values, kind)
            columns["outflow_window"] = [int(value) for value in columns["outflow_window"]]
            self._columns = columns
        return self._columns

    # The facts of each reason code: (JSON key, column); a column None is the recent window.
    LAYOUT = {
        "model": (("p_no_trade", "p_no_trade"), ("p_alive", "p_alive"), ("window", None)),
        "dormant": (("days", "since"),),
        "overdue": (("days", "since"), ("gap", "gap")),
        "decline": (("recent", "recent"), ("window", None), ("expected", "expected")),
        "outflow": (("share", "outflow_share"), ("window", "outflow_window"), ("amount", "outflow_amount")),
        "complaints": (("count", "complaints"),),
        "detractor": (("score", "nps"),),
        "low_csat": (("score", "csat"),),
        "losses": (("amount", "loss_amount"), ("closes", "closes"), ("window", None), ("share", "loss_share")),
        "downgrade": (("from", "from"), ("to", "to"), ("on", "on")),
    }

    def json_of(self, code: str, rows: np.ndarray) -> np.ndarray:
        """The JSON text of `of(code, i)` for each i of `rows` (an object array of str): the same
        values json.dumps writes, built column-wise."""
        layout = self.LAYOUT.get(code)
        if layout is None:
            return np.full(len(rows), "{}", dtype=object)
        out = np.full(len(rows), "{", dtype=object)
        for position, (key, column) in enumerate(layout):
            head = ("," if position else "") + f'"{key}":'
            if column is None:
                tokens = np.full(len(rows), str(int(self.recent_window)), dtype=object)
            else:
                values, kind = self.raw[column]
                tokens = _json_tokens(values[rows], kind)
            out = out + head + tokens
        return out + "}"

    def of(self, code: str, i: int) -> dict:
        c = self.columns
        if code == "model":
            return {"p_no_trade": c["p_no_trade"][i], "p_alive": c["p_alive"][i], "window": self.recent_window}
        if code == "dormant":
            return {"days": c["since"][i]}
        if code == "overdue":
            return {"days": c["since"][i], "gap": c["gap"][i]}
        if code == "decline":
            return {"recent": c["recent"][i], "window": self.recent_window, "expected": c["expected"][i]}
        if code == "outflow":
            return {"share": c["outflow_share"][i], "window": c["outflow_window"][i], "amount": c["outflow_amount"][i]}
        if code == "complaints":
            return {"count": c["complaints"][i]}
        if code == "detractor":
            return {"score": c["nps"][i]}
        if code == "low_csat":
            return {"score": c["csat"][i]}
        if code == "losses":
            return {
                "amount": c["loss_amount"][i],
                "closes": c["closes"][i],
                "window": self.recent_window,
                "share": c["loss_share"][i],
            }
        if code == "downgrade":
            return {"from": c["from"][i], "to": c["to"][i], "on": c["on"][i]}
        return {}


def _json_tokens(values: np.ndarray, kind) -> np.ndarray:
    """JSON text per value, as json.dumps writes what _rounded / _ints / the date column hold:
    "null" for NaN or infinity; repr of the float rounded to `kind` digits ("float": as it is;
    the shortest round-trip text); the int ("int": truncated); a quoted ISO date ("date").
    Each distinct value is formatted once."""
    out = np.full(len(values), "null", dtype=object)
    if kind == "date":
        valid = ~np.isnan(values) & (values >= 0)
        days = values[valid].astype("int64")
        uniq, inverse = np.unique(days, return_inverse=True)
        text = np.array([f'"{day_from_number(int(day))}"' for day in uniq.tolist()], dtype=object)
        out[valid] = text[inverse]
        return out
    finite = np.isfinite(values)
    if not finite.any():
        return out
    if kind == "int":
        numbers = values[finite].astype("int64")
        uniq, inverse = np.unique(numbers, return_inverse=True)
        text = np.array([str(number) for number in uniq.tolist()], dtype=object)
    else:
        numbers = values[finite] if kind == "float" else np.round(values[finite], kind)
        # np.unique merges 0.0 and -0.0, which json.dumps writes apart.
        numbers = np.where((numbers == 0) & np.signbit(numbers), -1e-300, numbers)
        uniq, inverse = np.unique(numbers, return_inverse=True)
        text = np.array([("-0.0" if number == -1e-300 else repr(number)) for number in uniq.tolist()], dtype=object)
    out[finite] = text[inverse]
    return out


def reasons_json(
    risk: np.ndarray,
    contributions: pd.DataFrame,
    strengths: pd.DataFrame,
    facts: ReasonFacts,
    params: ChurnParams,
) -> np.ndarray:
    """top_reasons() as JSON text per client (an object array of str): the same reasons, points
    and facts, built column-wise (json.loads of each equals top_reasons' list)."""
    names = list(contributions.columns)
    n = len(contributions)
    if n == 0:
        return np.empty(0, dtype=object)
    order, usable, points = _strongest(risk, contributions, strengths, params)
    out = np.full(n, "", dtype=object)
    for k in range(order.shape[1]):
        fragment = np.full(n, "", dtype=object)
        for j, code in enumerate(names):
            where = np.flatnonzero(usable[:, k] & (order[:, k] == j))
            if not len(where):
                continue
            fragment[where] = (
                f'{{"code":"{code}","points":'
                + _json_tokens(points[where, k].astype("float64"), "int")
                + ',"facts":'
                + facts.json_of(code, where)
                + "}"
            )
        out = _joined(out, fragment, np.flatnonzero(usable[:, k]))
    return "[" + out + "]"


def _joined(left: np.ndarray, right: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Element-wise "left,right" (`rows`: where right is not empty; no comma after an empty left)."""
    out = left.copy()
    head = left[rows]
    out[rows] = np.where(head != "", head + ",", head) + right[rows]
    return out


def signals_json(values: pd.DataFrame) -> np.ndarray:
    """_nonzero_dicts() as JSON text per row (an object array of str)."""
    matrix = values.to_numpy("float64")
    out = np.full(len(values), "", dtype=object)
    for column, name in enumerate(values.columns):
        positive = np.flatnonzero(matrix[:, column] > 0)
        if not len(positive):
            continue
        fragment = np.full(len(values), "", dtype=object)
        fragment[positive] = f'"{name}":' + _json_tokens(matrix[positive, column], "float")
        out = _joined(out, fragment, positive)
    return "{" + out + "}"


def _rounded(values: np.ndarray, digits: int) -> list:
    """Rounded floats as a list, None for NaN or infinity."""
    finite = np.isfinite(values)
    return np.where(finite, np.round(np.where(finite, values, 0.0), digits), None).tolist()


def _ints(values: np.ndarray) -> list:
    finite = np.isfinite(values)
    return np.where(finite, np.where(finite, values, 0.0).astype("int64"), None).tolist()


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


def _nonzero_dicts(frame: pd.DataFrame) -> list[dict]:
    """Per row, {column: value} of its non-zero values."""
    names = list(frame.columns)
    values = frame.to_numpy("float64")
    rows, columns = np.nonzero(values > 0)
    out: list[dict] = [{} for _ in range(len(frame))]
    for row, column, value in zip(rows.tolist(), columns.tolist(), values[rows, columns].tolist(), strict=True):
        out[row][names[column]] = value
    return out


def score_clients(
    activity: pd.DataFrame,
    signals: pd.DataFrame,
    fit: ModelFit,
    as_of: dt.date,
    params: ChurnParams,
    act: ActivityParams,
    *,
    as_json: bool = False,
) -> pd.DataFrame:
    """Churn risk, reasons and CLV for the clients of `activity` not closed (rows in its order).

    `activity` is an activity_segments() frame; `signals` a SIGNAL_INPUT frame (any clients;
    missing ones have no signal). `as_json`: reasons and signals as their JSON text (what the
    stage stores; ~10x faster than building and serialising the dicts)."""
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
    facts = ReasonFacts(activity, model, aligned, act)
    if as_json:
        reasons = reasons_json(risk, contributions, strengths, facts, params)
    else:
        reasons = top_reasons(risk, contributions, strengths, facts, params)

    trades_year = activity["trades_year"].to_numpy("float64")
    commission_year = activity["commission_year"].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_trade = np.where(trades_year > 0, commission_year / trades_year, 0.0)
    clv_simple = per_trade * trades_year * params.simple_retention_years
    clv = model["clv"].to_numpy("float64")
    at_risk_base = np.where(np.isnan(clv), clv_simple, clv)
    signal_values = strengths.round(4)
    return pd.DataFrame(
        {
            "client_id": activity["client_id"].to_numpy("int64"),
            "segment": activity["segment"].to_numpy(),
            "risk": risk,
            "p_alive": model["p_alive"].round(6),
            "expected_trading_days": model["expected_trading_days"].round(4),
            "clv": np.round(clv, 2),
            "clv_simple": np.round(clv_simple, 2),
            "value_at_risk": np.round(at_risk_base * risk / 100.0, 2),
            "reasons": reasons,
            "signals": signals_json(signal_values) if as_json else _nonzero_dicts(signal_values),
            "model_used": np.full(len(activity), fit.usable),
        }
    )
