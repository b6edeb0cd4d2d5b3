"""The churn stage's shortcuts give the very same numbers as the plain formulas (bit for bit)."""

import numpy as np
from scipy import special

from retention import lifetime, scoring


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="float64").view("int64")


def test_expected_purchases_per_distinct_x_and_age_equal_the_formula() -> None:
    rng = np.random.default_rng(7)
    fit = lifetime.BgNbdFit(1.12, 4.46, 0.159, 29.6, 0.0, 1000.0, True, False, "")
    x = rng.integers(0, 60, 5_000).astype(float)
    big_t = rng.integers(1, 150, 5_000).astype(float)
    t_x = np.where(x > 0, np.floor(big_t * rng.random(5_000)), 0.0) + rng.random(5_000) / 7
    t_x = np.minimum(t_x, big_t)
    (ux, ut, u_age), _position = scoring._distinct_rows(x, t_x, big_t)
    alive = lifetime.bgnbd_probability_alive(fit, ux, ut, u_age)
    purchases = scoring._ExpectedPurchases(fit, ux, u_age, alive)
    for horizon in (0.0, 4.3, 52.14, 365 / 7):
        expected = lifetime.bgnbd_expected_purchases(fit, horizon, ux, ut, u_age)
        assert np.array_equal(_bits(purchases(horizon)), _bits(expected))


def _gg_per_row(theta, x, m, w):
    """The Gamma-Gamma log-likelihood and gradient with every special function per row."""
    p, q, v = np.exp(theta)
    px = p * x
    log_m, log_x, log_vmx = np.log(m), np.log(x), np.log(v + m * x)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_vmx
    )
    psi = special.digamma(px + q)
    d_p = x * (psi - special.digamma(px) + log_m + log_x - log_vmx)
    d_q = psi - special.digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    return float(w @ ll), np.array([w @ d_p * p, w @ d_q * q, w @ d_v * v])


def test_gamma_gamma_likelihood_per_distinct_frequency_equals_per_row() -> None:
    rng = np.random.default_rng(11)
    data = np.column_stack([rng.integers(1, 80, 20_000).astype(float), np.round(rng.gamma(2.0, 3.0, 20_000) + 0.01, 2)])
    uniq, _inverse, counts = lifetime._unique_rows(data)
    x, m, w = uniq[:, 0], uniq[:, 1], counts.astype(float)
    prepared = lifetime._gg_prepare(x, m)
    for theta in (np.log([3.5, 1.65, 3.46]), np.log([0.5, 4.0, 1.2]), np.zeros(3)):
        ll, grad = lifetime._gg_ll_grad(theta, x, m, w, prepared=prepared)
        ll_row, grad_row = _gg_per_row(theta, x, m, w)
        assert ll == ll_row
        assert np.array_equal(_bits(grad), _bits(grad_row))
