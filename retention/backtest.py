"""Back-test of the churn score: score the book as of D - horizon with what was known then, and
compare with who actually stopped trading in the horizon.

Population: clients open at the cut-off whose activity segment then was active or potentially
active (already dormant or closed clients are not a prediction). Outcome: no trading day in
(cut-off, cut-off + horizon]. Scores: the nightly churn risk (same functions as the stage)
against a baseline of days since the last trade. Reported for each: AUC (Mann-Whitney, ties
count half), precision and lift in the top decile (ties at the decile edge counted
fractionally, so a baseline with many equal values is not flattered or punished by the order
rows happen to be in).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from brokercrm.nightly.chunks import client_id_ranges
from retention import conf, scoring
from retention.inputs import read_activity_inputs, read_signals


@dataclass(frozen=True)
class Ranking:
    name: str
    auc: float
    top_decile_precision: float
    top_decile_lift: float


@dataclass(frozen=True)
class BacktestResult:
    as_of: dt.date
    cutoff: dt.date
    horizon_days: int
    population: int
    churned: int
    model_status: str
    rankings: list[Ranking] = field(default_factory=list)

    @property
    def base_rate(self) -> float:
        return self.churned / self.population if self.population else float("nan")

    def as_dict(self) -> dict:
        return {
            "as_of": str(self.as_of),
            "cutoff": str(self.cutoff),
            "horizon_days": self.horizon_days,
            "population": self.population,
            "churned": self.churned,
            "base_rate": _finite(self.base_rate),
            "model_status": self.model_status,
            "rankings": [
                {
                    "name": r.name,
                    "auc": _finite(r.auc),
                    "top_decile_precision": _finite(r.top_decile_precision),
                    "top_decile_lift": _finite(r.top_decile_lift),
                }
                for r in self.rankings
            ],
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(a random positive scores above a random negative), ties half."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores, method="average")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_fraction_precision(scores: np.ndarray, labels: np.ndarray, fraction: float = 0.1) -> float:
    """Share of positives among the top `fraction` by score; clients tied with the last one in
    are taken fractionally (the expectation over random tie-breaking)."""
    n = len(scores)
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(fraction * n))
    order = np.argsort(-scores, kind="stable")
    edge = scores[order[k - 1]]
    above = scores > edge
    tied = scores == edge
    taken_from_tie = k - int(above.sum())
    positives = labels[above].sum() + labels[tied].mean() * taken_from_tie
    return float(positives / k)


def ranking(name: str, scores: np.ndarray, labels: np.ndarray) -> Ranking:
    precision = top_fraction_precision(scores, labels)
    base = labels.mean() if len(labels) else float("nan")
    return Ranking(name, auc(scores, labels), precision, precision / base if base else float("nan"))


def evaluate(as_of: dt.date, horizon_days: int = 90, *, chunk_size: int | None = None) -> BacktestResult:
    """Score as of `as_of - horizon_days` and compare with trading in the horizon (see module doc)."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    cutoff = as_of - dt.timedelta(days=horizon_days)
    act = conf.activity_params()
    params = conf.churn_params()
    outcome_params = conf.ActivityParams(
        active_days=act.active_days,
        dormant_days=max(act.dormant_days, horizon_days + 1),
        recent_days=horizon_days,
        baseline_days=act.baseline_days,
        slowing_ratio=act.slowing_ratio,
        min_baseline_days=act.min_baseline_days,
        overdue_multiple=act.overdue_multiple,
    )
    ranges = client_id_ranges(chunk_size)
    activities, signals, outcomes = [], [], []
    for first, last in ranges:
        activities.append(scoring.activity_segments(read_activity_inputs(cutoff, first, last, act), cutoff, act))
        signals.append(read_signals(cutoff, first, last, act))
        future = read_activity_inputs(as_of, first, last, outcome_params)
        outcomes.append(future[["client_id", "recent_days"]])
    if not activities:
        return BacktestResult(as_of, cutoff, horizon_days, 0, 0, "too_few")
    activity = pd.concat(activities, ignore_index=True)
    signal = pd.concat(signals, ignore_index=True)
    outcome = pd.concat(outcomes, ignore_index=True)

    inputs = scoring.model_inputs(activity[activity["segment"] != scoring.SEGMENT_CLOSED], cutoff)
    fit = scoring.fit_models(inputs, conf.lifetime_time_unit())
    live = activity[activity["segment"].isin([scoring.SEGMENT_ACTIVE, scoring.SEGMENT_POTENTIAL])]
    scored = scoring.score_clients(live, signal, fit, cutoff, params, act)
    frame = scored[["client_id", "risk"]].merge(
        live[["client_id", "days_since_last_trade"]], on="client_id", how="left"
    )
    frame = frame.merge(outcome, on="client_id", how="left")
    labels = (frame["recent_days"].fillna(0).to_numpy() == 0).astype(bool)
    model = ranking("churn risk", frame["risk"].to_numpy("float64"), labels)
    baseline = ranking("days since last trade", frame["days_since_last_trade"].to_numpy("float64"), labels)
    return BacktestResult(as_of, cutoff, horizon_days, len(frame), int(labels.sum()), fit.status, [model, baseline])
