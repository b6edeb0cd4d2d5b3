"""Lifetime models: BG/NBD and Gamma-Gamma likelihoods, fits, summaries and the command."""

import json
import math
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy import optimize, special

from retention import lifetime as lt
from retention.lifetime import BgNbdFit, GammaGammaFit

TRUE_BG = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(20240501)
    T = rng.uniform(30, 40, 30_000)
    return lt.bgnbd_simulate(**TRUE_BG, T=T, rng=rng)


@pytest.fixture(scope="module")
def fitted(simulated):
    return lt.bgnbd_fit(*simulated)


def _fit(r=0.24, alpha=4.41, a=0.79, b=2.43):
    return BgNbdFit(r, alpha, a, b, 0.0, 1, True, False, "ok")


def _direct_ll(r, alpha, a, b, x, t_x, T):
    """FHL (2005) eq. 6, evaluated literally with math.gamma — fine for small numbers."""
    beta = lambda p, q: math.gamma(p) * math.gamma(q) / math.gamma(p + q)  # noqa: E731
    common = math.gamma(r + x) * alpha**r / math.gamma(r)
    like = beta(a, b + x) / beta(a, b) * common / (alpha + T) ** (r + x)
    if x > 0:
        like += beta(a + 1, b + x - 1) / beta(a, b) * common / (alpha + t_x) ** (r + x)
    return math.log(like)


# ---------------------------------------------------------------- likelihood


@pytest.mark.parametrize(
    ("params", "row"),
    [
        ((0.24, 4.41, 0.79, 2.43), (0, 0.0, 38.86)),
        ((0.24, 4.41, 0.79, 2.43), (2, 30.43, 38.86)),
        ((1.3, 0.7, 0.2, 0.3), (1, 2.0, 5.0)),  # a + b < 1
        ((2.0, 10.0, 3.0, 0.5), (7, 12.5, 13.0)),
    ],
)
def test_bgnbd_log_likelihood_matches_direct_formula(params, row):
    got = lt.bgnbd_log_likelihood_terms(*params, np.array([row[0]]), np.array([row[1]]), np.array([row[2]]))[0]
    assert got == pytest.approx(_direct_ll(*params, *row), rel=1e-10)


def test_bgnbd_gradient_is_analytic_derivative(simulated):
    x, t_x, T = (c[:400] for c in simulated)
    w = np.ones(x.size)
    theta = np.log([0.4, 3.0, 0.6, 1.7])
    err = optimize.check_grad(
        lambda th: lt._bgnbd_ll_grad(th, x, t_x, T, w)[0],
        lambda th: lt._bgnbd_ll_grad(th, x, t_x, T, w)[1],
        theta,
    )
    assert err < 1e-3


def test_bgnbd_log_likelihood_finite_for_huge_frequency():
    ll = lt.bgnbd_log_likelihood_terms(
        0.3, 2.0, 0.4, 0.3, np.array([1e6, 5e4]), np.array([99.0, 50.0]), np.array([100.0, 100.0])
    )
    assert np.all(np.isfinite(ll))


def test_gamma_gamma_log_likelihood_is_density_of_mean():
    # For x = 1 the mean is one transaction: the marginal density of z is a compound gamma
    # (generalised beta prime): z^(p-1) v^q / (B(p, q) (v + z)^(p+q)).
    p, q, v, z = 6.25, 3.74, 15.44, 2.7
    want = (p - 1) * math.log(z) + q * math.log(v) - special.betaln(p, q) - (p + q) * math.log(v + z)
    got = lt.gamma_gamma_log_likelihood_terms(p, q, v, np.array([1.0]), np.array([z]))[0]
    assert got == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------- fits


def test_bgnbd_recovers_parameters(fitted):
    assert fitted.converged
    assert not fitted.at_boundary
    for name, true in TRUE_BG.items():
        assert getattr(fitted, name) == pytest.approx(true, rel=0.15), name
    assert fitted.n_customers == 30_000


def test_collapsed_weights_fit_equals_uncollapsed():
    rng = np.random.default_rng(7)
    T = rng.integers(30, 41, 8000).astype(float)  # integer ages -> many duplicate rows
    x, t_x, T = lt.bgnbd_simulate(**TRUE_BG, T=T, rng=rng)
    t_x = np.round(t_x)
    (ux, ut, uT), counts = lt.summary_collapse(x, t_x, T)
    assert ux.size < x.size / 4
    assert counts.sum() == x.size
    full = lt.bgnbd_fit(x, t_x, T)
    collapsed = lt.bgnbd_fit(ux, ut, uT, weights=counts)
    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(collapsed, name) == pytest.approx(getattr(full, name), rel=1e-6), name
    assert collapsed.n_customers == full.n_customers == 8000


def test_nobody_repeats_is_flagged_as_boundary():
    n = 500
    fit = lt.bgnbd_fit(np.zeros(n), np.zeros(n), np.linspace(10, 40, n))
    assert fit.at_boundary
    assert "boundary" in fit.message
    assert all(math.isfinite(v) for v in (fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood))


def test_everyone_alive_is_flagged_as_boundary():
    n = 300
    T = np.linspace(20, 40, n)
    fit = lt.bgnbd_fit(np.full(n, 60.0), T.copy(), T)
    assert fit.at_boundary
    assert all(math.isfinite(v) for v in (fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood))


def test_a_plus_b_below_one_fits_without_nan():
    rng = np.random.default_rng(11)
    x, t_x, T = lt.bgnbd_simulate(0.5, 3.0, 0.35, 0.45, rng.uniform(30, 40, 20_000), rng)
    fit = lt.bgnbd_fit(x, t_x, T)
    values = (fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood)
    assert all(math.isfinite(v) for v in values)
    assert fit.converged
    assert fit.a + fit.b < 1


def test_expected_purchases_finite_for_a_plus_b_below_one():
    fit = _fit(r=0.5, alpha=3.0, a=0.35, b=0.45)
    got = lt.bgnbd_expected_purchases(fit, 10.0, np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0]))
    assert np.all(np.isfinite(got))
    assert np.all(got > 0)


def test_customers_first_seen_on_end_date_are_allowed(simulated):
    x, t_x, T = simulated
    fit = lt.bgnbd_fit(np.append(x[:2000], 0.0), np.append(t_x[:2000], 0.0), np.append(T[:2000], 0.0))
    assert math.isfinite(fit.log_likelihood)
    assert fit.n_customers == 2001


def test_penalizer_shrinks_log_parameters(simulated):
    plain = lt.bgnbd_fit(*simulated)
    pen = lt.bgnbd_fit(*simulated, penalizer=0.05)
    norm = lambda f: sum(math.log(v) ** 2 for v in (f.r, f.alpha, f.a, f.b))  # noqa: E731
    assert norm(pen) < norm(plain)
    assert pen.log_likelihood < plain.log_likelihood


def test_gamma_gamma_recovers_parameters():
    rng = np.random.default_rng(99)
    x = rng.integers(1, 12, 30_000).astype(float)
    m = lt.simulate_gamma_gamma(**TRUE_GG, frequency=x, rng=rng)
    fit = lt.gamma_gamma_fit(x, m)
    assert fit.converged
    assert not fit.at_boundary
    for name, true in TRUE_GG.items():
        assert getattr(fit, name) == pytest.approx(true, rel=0.1), name
    # population mean spend p v / (q - 1) is identified much more tightly
    assert fit.p * fit.v / (fit.q - 1) == pytest.approx(6.25 * 15.44 / 2.74, rel=0.02)


def test_gamma_gamma_ignores_zero_frequency_rows():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 2000).astype(float)
    m = lt.simulate_gamma_gamma(**TRUE_GG, frequency=x, rng=rng)
    a = lt.gamma_gamma_fit(x, m)
    b = lt.gamma_gamma_fit(np.concatenate([x, np.zeros(50)]), np.concatenate([m, np.zeros(50)]))
    assert b.p == pytest.approx(a.p, rel=1e-8)
    assert b.n_customers == a.n_customers == 2000


# ---------------------------------------------------------------- predictions


def test_probability_alive_properties():
    fit = _fit()
    assert lt.bgnbd_probability_alive(fit, 0, 0.0, 30.0) == 1.0
    t_x = np.linspace(0.5, 30.0, 60)
    alive = lt.bgnbd_probability_alive(fit, np.full(60, 3.0), t_x, np.full(60, 30.0))
    assert np.all((alive > 0) & (alive <= 1))
    # older recency (smaller t_x) -> less likely alive
    assert np.all(np.diff(alive) > 0)
    assert lt.bgnbd_probability_alive(fit, 1e6, 10.0, 30.0) >= 0.0  # no overflow / NaN
    assert not np.isnan(lt.bgnbd_probability_alive(fit, 1e6, 10.0, 30.0))


def test_expected_purchases_matches_literal_hyp2f1_formula():
    fit = _fit()
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    for x, t_x, T, t in [(0, 0.0, 38.0, 39.0), (2, 30.4, 38.9, 10.0), (5, 20.0, 35.0, 52.0)]:
        z = t / (alpha + T + t)
        literal = (a + b + x - 1) / (a - 1)
        literal *= 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        if x > 0:
            literal /= 1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        got = lt.bgnbd_expected_purchases(fit, t, x, t_x, T)
        assert got == pytest.approx(literal, rel=1e-9)


def test_expected_purchases_large_frequency_is_finite_and_sane():
    fit = _fit()
    got = lt.bgnbd_expected_purchases(fit, 10.0, 500.0, 40.0, 40.0)
    # an active heavy buyer (~12.5/period) keeps buying at roughly that rate, minus dropout
    assert math.isfinite(got)
    assert 50 < got < 130


def test_expected_purchases_monte_carlo():
    """For a brand-new customer (x = 0, T = 0) the conditional expectation is the unconditional
    E[X(t)]; compare it with the mean simulated repeat count of a cohort observed for t."""
    fit = _fit()
    rng = np.random.default_rng(5)
    n, t = 200_000, 20.0
    x, _, _ = lt.bgnbd_simulate(fit.r, fit.alpha, fit.a, fit.b, np.full(n, t), rng)
    got = lt.bgnbd_expected_purchases(fit, t, 0, 0.0, 0.0)
    assert got == pytest.approx(x.mean(), rel=0.03)


def test_gamma_gamma_conditional_value_shrinks_to_population_mean():
    gg = GammaGammaFit(6.25, 3.74, 15.44, 0.0, 1, True, False, "ok")
    pop = 6.25 * 15.44 / 2.74
    assert lt.gamma_gamma_conditional_value(gg, 0, 0.0) == pytest.approx(pop)
    few = lt.gamma_gamma_conditional_value(gg, 1, 100.0)
    many = lt.gamma_gamma_conditional_value(gg, 50, 100.0)
    assert pop < few < many < 100.0


def test_clv_is_discounted_sum():
    bg = _fit()
    gg = GammaGammaFit(6.25, 3.74, 15.44, 0.0, 1, True, False, "ok")
    x, t_x, T, m = 3.0, 30.0, 35.0, 40.0
    undiscounted = lt.clv(bg, gg, x, t_x, T, m, 52, 0.0)
    value = lt.gamma_gamma_conditional_value(gg, x, m)
    assert undiscounted == pytest.approx(lt.bgnbd_expected_purchases(bg, 52.0, x, t_x, T) * value, rel=1e-9)
    discounted = lt.clv(bg, gg, x, t_x, T, m, 52, 0.01)
    assert 0 < discounted < undiscounted
    assert lt.clv(bg, gg, x, t_x, T, m, 0, 0.01) == 0.0


# ---------------------------------------------------------------- summaries


def _log():
    return pd.DataFrame(
        [
            ("A", "2024-01-01 09:00", 10.0),
            ("A", "2024-01-01 17:30", 5.0),  # same day: one transaction of 15
            ("A", "2024-01-08 10:00", 20.0),
            ("A", "2024-01-15 10:00", 30.0),
            ("A", "2024-01-15 11:00", 10.0),  # same day: 40
            ("B", "2024-01-10 12:00", 7.0),  # single purchase
            ("C", "2024-01-03 08:00", 12.0),
            ("C", "2024-01-24 08:00", 18.0),
            ("C", "2024-02-20 08:00", 999.0),  # after end: ignored
            ("D", "2024-03-01 08:00", 5.0),  # only after end: customer dropped
        ],
        columns=["cust", "when", "amount"],
    )


def test_summary_from_transactions_weeks_with_values():
    log = _log()
    s = lt.summary_from_transactions(log["cust"], log["when"], log["amount"], end_date="2024-01-29", time_unit="weeks")
    assert list(s.index) == ["A", "B", "C"]
    assert s.loc["A", "frequency"] == 2
    assert s.loc["A", "recency"] == pytest.approx(2.0)
    assert s.loc["A", "T"] == pytest.approx(28 / 7)
    assert s.loc["A", "monetary_value"] == pytest.approx((20 + 40) / 2)
    assert s.loc["B", "frequency"] == 0
    assert s.loc["B", "recency"] == 0
    assert s.loc["B", "T"] == pytest.approx(19 / 7)
    assert s.loc["B", "monetary_value"] == 0
    assert s.loc["C", "frequency"] == 1
    assert s.loc["C", "recency"] == pytest.approx(3.0)
    assert s.loc["C", "T"] == pytest.approx(26 / 7)
    assert s.loc["C", "monetary_value"] == pytest.approx(18.0)


def test_summary_from_transactions_days_without_values():
    log = _log()
    s = lt.summary_from_transactions(log["cust"], log["when"], end_date="2024-01-29")
    assert "monetary_value" not in s.columns
    assert s.loc["A", ["frequency", "recency", "T"]].tolist() == [2, 14, 28]


# ---------------------------------------------------------------- command


@pytest.fixture
def csv_path(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for c in range(150):
        first = start + pd.Timedelta(days=int(rng.integers(0, 60)))
        rows.append((f"c{c}", first, 10.0 + c % 7, "x"))
        for _ in range(int(rng.integers(0, 6))):
            rows.append((f"c{c}", first + pd.Timedelta(days=int(rng.integers(1, 200))), float(rng.gamma(5, 4)), "y"))
    path = tmp_path / "tx.csv"
    pd.DataFrame(rows, columns=["client", "booked", "amount", "ignored"]).to_csv(path, index=False)
    return path


def test_command_prints_json(csv_path):
    out = StringIO()
    call_command(
        "fit_lifetime_model",
        "--csv", str(csv_path),
        "--customer-col", "client",
        "--date-col", "booked",
        "--value-col", "amount",
        "--time-unit", "weeks",
        "--end", "2024-09-30",
        stdout=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    for key in ("r", "alpha", "a", "b", "log_likelihood", "n_customers", "converged", "at_boundary", "message"):
        assert key in data
    for key in ("p", "q", "v"):
        assert data[key] > 0
    assert "log_likelihood" in data["gamma_gamma"]
    assert data["n_customers"] == 150


def test_command_without_values(csv_path):
    out = StringIO()
    call_command(
        "fit_lifetime_model", csv=str(csv_path), customer_col="client", date_col="booked", end="2024-09-30", stdout=out
    )
    data = json.loads(out.getvalue())
    assert "p" not in data
    assert data["r"] > 0


def test_command_missing_column(csv_path):
    with pytest.raises(CommandError, match="nope"):
        call_command("fit_lifetime_model", csv=str(csv_path), customer_col="nope", date_col="booked", end="2024-09-30")


def test_command_bad_date_in_data(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("cid,day\n1,2024-01-01\n1,notadate\n")
    with pytest.raises(CommandError, match="Bad date in column"):
        call_command("fit_lifetime_model", csv=str(path), customer_col="cid", date_col="day", end="2024-02-01")


def test_command_bad_end_date(csv_path):
    with pytest.raises(CommandError, match="--end"):
        call_command(
            "fit_lifetime_model", csv=str(csv_path), customer_col="client", date_col="booked", end="2024-13-45"
        )
