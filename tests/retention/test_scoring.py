"""Dormancy segments, churn risk, reasons and the back-test measures, on hand-built frames (no database)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retention import lifetime, reasons, scoring
from retention.backtest import auc, top_fraction_precision
from retention.conf import SIGNALS, ActivityParams, ChurnParams

AS_OF = dt.date(2026, 6, 30)
TODAY = scoring.day_number(AS_OF)
ACT = ActivityParams()


def row(client_id: int, **values: float) -> dict:
    base = {
        "client_id": client_id,
        "opened_on": TODAY - 2000,
        "closed_on": -1,
        "first_day": -1,
        "last_day": -1,
        "trading_days": 0,
        "recent_days": 0,
        "baseline_days": 0,
        "trades": 0,
        "commission": 0.0,
        "trades_year": 0,
        "commission_year": 0.0,
        "cash": np.nan,
        "market_value": np.nan,
    }
    base.update(values)
    return base


def traded(client_id: int, *, first_ago: int, last_ago: int, days: int, recent: int, baseline: int, **more) -> dict:
    return row(
        client_id,
        first_day=TODAY - first_ago,
        last_day=TODAY - last_ago,
        trading_days=days,
        recent_days=recent,
        baseline_days=baseline,
        **more,
    )


@pytest.fixture
def segments() -> pd.DataFrame:
    rows = [
        traded(1, first_ago=400, last_ago=5, days=100, recent=22, baseline=78),  # steady, recent
        traded(2, first_ago=400, last_ago=45, days=60, recent=2, baseline=58),  # quiet 45 days
        traded(3, first_ago=700, last_ago=200, days=50, recent=0, baseline=10),  # 200 days idle
        traded(4, first_ago=400, last_ago=5, days=100, recent=22, baseline=78, closed_on=TODAY - 1),
        traded(5, first_ago=600, last_ago=10, days=60, recent=2, baseline=40),  # slowing: 2 vs ~9.9 usual
        traded(6, first_ago=300, last_ago=20, days=101, recent=25, baseline=76),  # gap 2.8 days, 20 idle
        row(7, opened_on=TODAY - 4 * 365, cash=50.0, market_value=0.0),  # never traded, 4 years, tiny cash
        traded(8, first_ago=2000, last_ago=4 * 365, days=5, recent=0, baseline=0, cash=500.0, market_value=0.0),
        traded(9, first_ago=2000, last_ago=4 * 365, days=5, recent=0, baseline=0, cash=10.0, market_value=1000.0),
        row(10, opened_on=TODAY - 10),  # new, not traded yet
        traded(11, first_ago=2000, last_ago=4 * 365, days=5, recent=0, baseline=0, cash=10.0, market_value=0.0),
    ]
    return scoring.activity_segments(pd.DataFrame(rows), AS_OF, ACT).set_index("client_id")


def test_activity_segments_follow_the_thresholds(segments: pd.DataFrame) -> None:
    expected = {
        1: "active",
        2: "potentially_active",
        3: "dormant",
        4: "closed",
        5: "potentially_active",
        6: "active",
        7: "dormant",
        8: "dormant",
        9: "dormant",
        10: "active",
        11: "dormant",
    }
    assert segments["segment"].to_dict() == expected
    assert segments.loc[3, "days_since_last_trade"] == 200
    assert segments.loc[7, "days_since_last_trade"] == 4 * 365  # counted from the opening
    assert segments.loc[10, "days_since_last_trade"] == 10


def test_slowing_is_measured_against_the_clients_own_baseline(segments: pd.DataFrame) -> None:
    # Client 5: 40 trading days in the baseline year -> 40 x 90 / 365 = 9.86 expected in 90 days.
    assert segments.loc[5, "baseline_expected"] == pytest.approx(40 * 90 / 365)
    assert segments.loc[5, "segment"] == "potentially_active"
    # Client 1 traded 22 days in 90 against 78 x 90 / 365 = 19.2: active.
    assert segments.loc[1, "segment"] == "active"


def test_about_to_go_dormant_is_overdue_against_the_clients_own_rhythm(segments: pd.DataFrame) -> None:
    # Client 6: 101 trading days over 280 days -> typical gap 2.8 days; 20 days idle = 7.1 gaps.
    assert segments.loc[6, "typical_gap_days"] == pytest.approx(280 / 100)
    assert segments.loc[6, "overdue_ratio"] == pytest.approx(20 / 2.8)
    assert bool(segments.loc[6, "about_to_go_dormant"])
    # Client 1: 5 days idle on a ~4-day rhythm is not a warning; dormant or closed clients neither.
    assert not segments.loc[[1, 3, 4], "about_to_go_dormant"].any()


def test_regulatory_dormant_needs_years_without_trade_tiny_cash_and_no_holdings(segments: pd.DataFrame) -> None:
    flags = segments["regulatory_dormant"]
    assert bool(flags[7])
    assert bool(flags[11])
    assert not flags[8]  # 500 in cash: above REGULATORY_DORMANT_MAX_CASH
    assert not flags[9]  # still holds securities
    assert not flags[3]  # 200 days is not years


def test_thresholds_are_settings() -> None:
    frame = pd.DataFrame([traded(1, first_ago=400, last_ago=45, days=60, recent=20, baseline=58)])
    loose = ActivityParams(active_days=60, dormant_days=365)
    assert scoring.activity_segments(frame, AS_OF, loose)["segment"].tolist() == ["active"]
    tight = ActivityParams(active_days=10, dormant_days=40)
    assert scoring.activity_segments(frame, AS_OF, tight)["segment"].tolist() == ["dormant"]


# --- the model's P(no trade) -------------------------------------------------------------------


def test_probability_of_no_trade_matches_a_simulated_population() -> None:
    """Mean of P(no trading day in (T, T+t] | history) over clients = the share that does not
    trade in the window, for clients simulated from known BG/NBD parameters."""
    rng = np.random.default_rng(7)
    r, alpha, a, b = 0.8, 12.0, 0.6, 3.0
    n, big_t, window = 40_000, 52.0, 13.0
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    silent = np.ones(n, dtype=bool)
    for i in range(n):
        now, alive = 0.0, True
        while alive:
            now += rng.exponential(1 / lam[i])
            if now > big_t + window:
                break
            if now <= big_t:
                x[i], t_x[i] = x[i] + 1, now
            else:
                silent[i] = False
                break
            alive = rng.random() >= p[i]
    fit = lifetime.BgNbdFit(r, alpha, a, b, 0.0, n, True, False, "")
    alive = lifetime.bgnbd_probability_alive(fit, x, t_x, np.full(n, big_t))
    predicted = scoring.probability_no_trade(fit, alive, x, np.full(n, big_t), window)
    standard_error = np.sqrt(silent.mean() * (1 - silent.mean()) / n)
    assert predicted.mean() == pytest.approx(silent.mean(), abs=4 * standard_error)
    # Limits: no time, no chance to trade; forever, only the dropped-out stay silent.
    assert scoring.probability_no_trade(fit, alive, x, np.full(n, big_t), 0.0) == pytest.approx(1.0)
    forever = scoring.probability_no_trade(fit, alive, x, np.full(n, big_t), 1e14)
    np.testing.assert_allclose(forever, 1 - alive, atol=1e-6)


# --- churn risk --------------------------------------------------------------------------------


def params(**weights: float) -> ChurnParams:
    return ChurnParams(weights={name: weights.get(name, 0.0) for name in SIGNALS})


def test_risk_combines_signals_as_a_noisy_or() -> None:
    strengths = pd.DataFrame([dict.fromkeys(SIGNALS, 0.0)] * 3)
    strengths.loc[0, "outflow"] = 1.0
    strengths.loc[1, ["outflow", "decline"]] = [1.0, 0.5]
    risk, contributions = scoring.churn_risk(strengths, params(outflow=0.5, decline=0.6))
    # 1 - (1 - 0.5)(1 - 0.3) = 0.65
    assert risk.tolist() == [50, 65, 0]
    assert contributions.loc[1, "decline"] == pytest.approx(0.3)


def test_the_risk_is_shared_out_in_whole_points_that_add_up_to_it() -> None:
    """Three equal signals of a risk of 50: shares of 16.67 each. Rounded one by one they would be
    17 + 17 + 17 = 51 points; by largest remainder 17 + 17 + 16."""
    strengths = pd.DataFrame([dict.fromkeys(SIGNALS, 0.0)] * 3)
    strengths.loc[0, ["decline", "outflow", "losses"]] = 1.0
    strengths.loc[1, ["outflow", "decline", "complaints"]] = [1.0, 0.55, 0.3]
    settings = params(decline=0.2063, outflow=0.2063, losses=0.2063, complaints=0.5)
    risk, contributions = scoring.churn_risk(strengths, settings)
    assert risk[0] == 50
    assert np.rint(risk[0] * contributions.loc[0] / contributions.loc[0].sum()).sum() == 51
    order, usable, points = scoring._strongest(risk, contributions, strengths, settings)
    assert [SIGNALS[j] for j in order[0]] == ["decline", "outflow", "losses"]
    assert points[0].tolist() == [17, 17, 16]
    for row in range(3):
        total = contributions.loc[row].sum()
        shares = (risk[row] * contributions.loc[row] / total).to_numpy() if total else np.zeros(len(SIGNALS))
        assert points[row].sum() <= risk[row]
        assert np.all(np.abs(points[row] - shares[order[row]]) < 1)
    assert points[2].tolist() == [0, 0, 0]  # no signal, no risk
    assert not usable[2].any()


def activity_frame(rows: list[dict]) -> pd.DataFrame:
    return scoring.activity_segments(pd.DataFrame(rows), AS_OF, ACT)


def test_score_gives_reasons_in_words_with_their_points() -> None:
    activity = activity_frame(
        [
            traded(1, first_ago=600, last_ago=3, days=200, recent=10, baseline=120, cash=38_000.0, market_value=0.0),
            traded(2, first_ago=600, last_ago=3, days=200, recent=30, baseline=120, cash=50_000.0, market_value=0.0),
        ]
    )
    signals = scoring.empty_signals(np.array([1]))
    signals.loc[0, ["outflow_30", "outflow_90"]] = [62_000.0, 62_000.0]
    unusable = scoring.ModelFit("too_few", "", 0, 0, None, "too_few", None)
    weights = {"outflow": 0.6, "decline": 0.3, "model": 0.85, "dormant": 0.6, "overdue": 0.5, "complaints": 0.35}
    scores = scoring.score_clients(activity, signals, unusable, AS_OF, params(**weights), ACT)
    first, second = scores.to_dict("records")
    first["reasons"] = reasons.reasons_of(scores.iloc[0].get)
    second["reasons"] = reasons.reasons_of(scores.iloc[1].get)
    # Outflow 62,000 of 100,000 -> share 0.62 / 0.5 full -> strength 1 x weight 0.6; decline: 10 days
    # against 120 x 90 / 365 = 29.6 -> 1 - 10/29.6 = 0.662 x 0.3.
    decline = 0.3 * (1 - 10 / (120 * 90 / 365))
    assert first["risk"] == round(100 * (1 - (1 - 0.6) * (1 - decline)))
    assert [reason["code"] for reason in first["reasons"]] == ["outflow", "decline"]
    assert sum(reason["points"] for reason in first["reasons"]) <= first["risk"]
    assert scoring.reason_text(first["reasons"][0]) == "Moved out 62% of assets in 30 days (net 62,000 withdrawn)"
    assert scoring.reason_text(first["reasons"][1]) == "Traded on 10 days in the last 90, against 29.6 usually"
    assert not first["model_used"]
    assert second["risk"] == 0
    assert second["reasons"] == []
    # Simple CLV: commission a year x retention years (both zero here).
    assert first["clv_simple"] == 0


def test_when_the_model_does_not_fit_the_rule_signals_stand_alone() -> None:
    activity = activity_frame([traded(1, first_ago=300, last_ago=20, days=101, recent=25, baseline=76)])
    unusable = scoring.ModelFit("boundary", "a -> 0", 10, 5, None, "too_few", None)
    scores = scoring.score_clients(
        activity,
        scoring.empty_signals(np.array([], dtype="int64")),
        unusable,
        AS_OF,
        params(overdue=0.5, model=0.9),
        ACT,
    )
    reason = reasons.reasons_of(scores.iloc[0].get)[0]
    assert reason["code"] == "overdue"
    assert scoring.reason_text(reason) == "No trade for 20 days; usually trades every 2.8 days"
    assert np.isnan(scores.loc[0, "p_alive"])


def test_a_boundary_fit_is_reported_not_used() -> None:
    # Everyone trades like clockwork until today: no sign of drop-out, b runs to infinity.
    rng = np.random.default_rng(3)
    n = 2000
    frequency = rng.integers(5, 60, n).astype(float)
    age = np.full(n, 700.0)
    inputs = pd.DataFrame(
        {"client_id": np.arange(n), "frequency": frequency, "recency": age, "T": age, "monetary": 1.0}
    )
    fit = scoring.fit_models(inputs, "days")
    assert fit.status in ("boundary", "failed")
    assert not fit.usable
    assert fit.message


def test_too_few_repeat_clients_is_not_a_fit() -> None:
    inputs = pd.DataFrame({"client_id": [1, 2], "frequency": [0.0, 3.0], "recency": [0.0, 20.0], "T": [30.0, 40.0]})
    inputs["monetary"] = 1.0
    fit = scoring.fit_models(inputs)
    assert fit.status == "too_few"
    assert not fit.usable


# --- back-test measures ------------------------------------------------------------------------


def test_auc_counts_ties_as_half() -> None:
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    labels = np.array([1, 1, 0, 0])
    # Pairs (pos, neg): (0.9,0.8) win, (0.9,0.1) win, (0.8,0.8) tie, (0.8,0.1) win -> 3.5 / 4
    assert auc(scores, labels) == pytest.approx(0.875)
    assert np.isnan(auc(scores, np.ones(4)))


def test_top_decile_precision_takes_ties_fractionally() -> None:
    scores = np.array([5.0] * 4 + [1.0] * 16)  # top 10% = 2 of the 4 tied
    labels = np.array([1, 0, 0, 0] + [0] * 16)
    assert top_fraction_precision(scores, labels) == pytest.approx(0.25)
    labels = np.array([1, 1, 1, 1] + [0] * 16)
    assert top_fraction_precision(scores, labels) == pytest.approx(1.0)
