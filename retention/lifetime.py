"""Customer-lifetime models: BG/NBD (purchase counts) and Gamma-Gamma (spend per transaction).

Pure numpy/scipy/pandas functions; no ORM, no Django.

References
----------
* Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
  Pareto/NBD model", Marketing Science 24(2).  Likelihood in the A1..A4 form of their
  technical note "Implementing the BG/NBD model for customer-base analysis in Excel".
* Fader & Hardie (2013), "The Gamma-Gamma model of monetary value".

Parameters are fitted by maximum likelihood over log-parameters (so they stay positive) with
L-BFGS-B and an analytic gradient, from several starting points; identical rows are collapsed
into weights first and the parts of the likelihood that depend on the frequency alone are
evaluated once per distinct frequency, so very large customer bases fit quickly.  If the
optimum runs to the edge of the parameter space (a log-parameter beyond ``BOUNDARY_LOG``) or
the optimiser does not converge, the fit says so in ``at_boundary`` / ``converged`` /
``message`` instead of returning NaN or a silently meaningless number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

#: Log-parameters are optimised inside [-LOG_BOUND, LOG_BOUND].
LOG_BOUND = 18.0
#: A fitted |log parameter| beyond this (parameter > ~1e5 or < ~1e-5) is reported as a boundary
#: solution: in flat directions of the likelihood L-BFGS-B stops wherever the gain drops below
#: float precision, often well before LOG_BOUND, so the threshold sits well inside it.
BOUNDARY_LOG = 11.5


# ----------------------------------------------------------------------------- helpers


def summary_collapse(*columns):
    """Collapse identical rows of the given equal-length columns.

    Returns ``(unique_columns, counts)`` where ``unique_columns`` is a tuple of arrays (one per
    input column) holding each distinct row once and ``counts`` how many times it occurred.
    """
    data = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    if data.shape[0] == 0:
        return tuple(np.empty(0) for _ in columns), np.empty(0)
    uniq, _, counts = _unique_rows(data)
    return tuple(uniq[:, i] for i in range(uniq.shape[1])), counts.astype(float)


def _unique_rows(data):
    """Distinct rows of a 2-d float array, sorted lexicographically (first column first).

    Same result as ``np.unique(data, axis=0, return_inverse=True, return_counts=True)`` for
    finite values (a row containing NaN is never merged with another) but several times faster:
    one ``lexsort`` of the columns instead of a sort of row records.
    Returns ``(unique_rows, inverse, counts)``.
    """
    n = data.shape[0]
    order = np.lexsort(data.T[::-1])
    ordered = data[order]
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=first[1:])
    starts = np.flatnonzero(first)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    counts = np.diff(np.append(starts, n))
    return ordered[starts], inverse, counts


def _as_weights(weights, n):
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError("weights must have one entry per row")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    return w


def _minimise(neg_ll_and_grad, starts, penalizer):
    """Run L-BFGS-B from each start (log-parameters), return the best result."""
    k = len(starts[0])

    def objective(theta):
        f, g = neg_ll_and_grad(theta)
        if penalizer:
            f = f + penalizer * float(theta @ theta)
            g = g + 2.0 * penalizer * theta
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros(k)
        return f, g

    best = None
    for start in starts:
        res = optimize.minimize(
            objective,
            np.asarray(start, dtype=float),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * k,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
        )
        if not res.success and np.isfinite(res.fun) and res.fun < 1e299:
            # L-BFGS-B often stops with ABNORMAL line-search termination at float precision:
            # one restart from there clears its curvature memory.
            res2 = optimize.minimize(
                objective,
                res.x,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-LOG_BOUND, LOG_BOUND)] * k,
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
            )
            if res2.fun <= res.fun:
                res = res2
        if best is None or (np.isfinite(res.fun) and res.fun < best.fun):
            best = res
    # Converged if scipy says so, or the gradient (of the per-customer mean) is negligible,
    # ignoring components pinned at a bound.
    theta = best.x
    grad = np.asarray(best.jac, dtype=float)
    free = np.abs(theta) < LOG_BOUND - 1e-6
    best.small_gradient = bool(np.all(np.abs(grad[free]) < 1e-6))
    return best


def _diagnose(names, theta, res, total_weight):
    params = np.exp(theta)
    converged = (bool(res.success) or res.small_gradient) and bool(np.isfinite(res.fun)) and res.fun < 1e299
    notes = []
    at_boundary = False
    for name, lp in zip(names, theta, strict=True):
        if abs(lp) > BOUNDARY_LOG:
            at_boundary = True
            notes.append(f"{name} ran to the boundary ({name}={np.exp(lp):.3g})")
    if not converged:
        notes.append(f"optimiser did not converge: {res.message}")
    if not notes:
        notes.append("ok")
    log_likelihood = float(-res.fun * total_weight) if np.isfinite(res.fun) and res.fun < 1e299 else float("-inf")
    return params, log_likelihood, converged, at_boundary, "; ".join(notes)


# ----------------------------------------------------------------------------- BG/NBD


@dataclass(frozen=True)
class BgNbdFit:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float
    converged: bool
    at_boundary: bool
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def bgnbd_log_likelihood_terms(r, alpha, a, b, x, t_x, T):
    """Per-customer BG/NBD log-likelihood, computed entirely in log space.

    ln L = A1 + A2 + log(exp(A3) + [x>0] exp(A4)) with
    A1 = lnΓ(r+x) - lnΓ(r) + r ln alpha,  A2 = lnB(a, b+x) - lnB(a, b),
    A3 = -(r+x) ln(alpha+T),  A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x)
    (ln a - ln(b+x-1) = lnB(a+1, b+x-1) - lnB(a, b+x)).  ``betaln`` keeps it finite for
    a + b < 1 and very large x.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    return _bgnbd_ll_grad(np.log([r, alpha, a, b]), x, t_x, T, None, want_grad=False)


def _frequency_groups(x, w):
    """Distinct frequencies, each row's index into them and (with weights) their total weight.

    The x-only parts of the likelihood (log-gamma, log-beta, digamma terms) are evaluated once
    per distinct frequency instead of once per row: a customer base has a few hundred distinct
    frequencies however many (x, t_x, T) rows it has.
    """
    xs, idx = np.unique(x, return_inverse=True)
    idx = idx.reshape(np.shape(x))
    wx = None if w is None else np.bincount(idx.ravel(), weights=np.ravel(w), minlength=xs.size)
    return xs, idx, wx


def _dot(u, v):
    """Plain (non-BLAS) dot product of two 1-d arrays.

    For the 1-d sums of the likelihood a multi-threaded BLAS ``dot`` costs far more than it
    saves (thread start-up and, on a busy machine, waiting for cores); einsum's own loop does not.
    """
    return float(np.einsum("i,i->", u, v))


def _bgnbd_ll_grad(theta, x, t_x, T, w, want_grad=True, groups=None):
    """Log-likelihood (weighted sum, and its gradient w.r.t. log-parameters) or per-row terms.

    Terms depending on x only are evaluated per distinct frequency (``groups``, see
    ``_frequency_groups``); per row there remain two logs, one exp and one log1p.
    """
    r, alpha, a, b = np.exp(theta)
    xs, idx, wx = _frequency_groups(x, w) if groups is None else groups
    pos_s = xs > 0
    xs_safe = np.where(pos_s, xs, 1.0)
    # A1 + A2 and ln a - ln(b+x-1) per distinct x (-inf for x = 0: no A4 term)
    a12_s = (
        special.gammaln(r + xs)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + xs)
        - special.betaln(a, b)
    )
    c4_s = np.where(pos_s, np.log(a) - np.log(b + xs_safe - 1.0), -np.inf)
    rx = r + x
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    a3 = -rx * log_at
    # log(exp(A3) + exp(A4)) = A3 + log1p(exp(d)) with d = A4 - A3 (-inf when x = 0), evaluated
    # from the larger term: e = exp(-|d|) <= 1.
    d = c4_s[idx] + rx * (log_at - log_atx)
    e = np.exp(-np.abs(d))
    lse = a3 + np.maximum(d, 0.0) + np.log1p(e)
    if not want_grad:
        return a12_s[idx] + lse
    ll = _dot(wx, a12_s) + _dot(w, lse)
    # shares of the two terms: w4 = exp(A4 - lse) = 1 / (1 + exp(-d)), w3 = 1 - w4
    small = e / (1.0 + e)
    w4 = np.where(d > 0, 1.0 - small, small)
    ww4 = w * w4
    ww3 = w - ww4
    total = float(wx.sum())
    psi_ab = special.digamma(a + b)
    psi_abx_s = special.digamma(a + b + xs)
    d_r = (
        _dot(wx, special.digamma(r + xs))
        + total * (np.log(alpha) - special.digamma(r))
        - _dot(ww3, log_at)
        - _dot(ww4, log_atx)
    )
    d_alpha = total * r / alpha - _dot(ww3 * rx, 1.0 / (alpha + T)) - _dot(ww4 * rx, 1.0 / (alpha + t_x))
    d_a = total * psi_ab - _dot(wx, psi_abx_s) + float(ww4.sum()) / a
    inv_bx1_s = np.where(pos_s, 1.0 / (b + xs_safe - 1.0), 0.0)
    d_b = (
        _dot(wx, special.digamma(b + xs) - psi_abx_s)
        + total * (psi_ab - special.digamma(b))
        - _dot(np.bincount(idx.ravel(), weights=ww4.ravel(), minlength=xs.size), inv_bx1_s)
    )
    return ll, np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def bgnbd_fit(frequency, recency, T, weights=None, penalizer=0.0, starts=None) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood on (frequency x, recency t_x, age T).

    ``weights`` multiply each row's log-likelihood (e.g. counts of identical customers).  Rows
    are collapsed into unique (x, t_x, T) with summed weights before fitting.  ``penalizer``
    adds ``penalizer * sum(log(param)**2)`` to the per-customer mean negative log-likelihood
    (0 by default = plain ML).
    """
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise ValueError("frequency, recency and T must be 1-d arrays of equal length")
    w = _as_weights(weights, x.size)
    if x.size == 0 or w.sum() <= 0:
        raise ValueError("no customers to fit")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("need 0 <= recency <= T and frequency >= 0")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("frequency, recency and T must be finite")

    # Collapse identical rows, summing their weights.
    uniq, inverse, _ = _unique_rows(np.column_stack([x, t_x, T]))
    uw = np.bincount(inverse, weights=w, minlength=uniq.shape[0])
    keep = uw > 0
    ux, ut, uT, uw = uniq[keep, 0], uniq[keep, 1], uniq[keep, 2], uw[keep]
    total = float(uw.sum())
    groups = _frequency_groups(ux, uw)

    def neg(theta):
        ll, g = _bgnbd_ll_grad(theta, ux, ut, uT, uw, groups=groups)
        return -ll / total, -g / total

    if starts is None:
        mean_T = float(np.average(uT, weights=uw))
        mean_x = float(np.average(ux, weights=uw))
        rate = max(mean_x / mean_T, 1e-3)
        starts = [
            np.log([1.0, 1.0 / rate, 1.0, 1.0]),
            np.log([0.5, 1.0, 0.5, 2.0]),
            np.log([1.0, mean_T, 1.0, 5.0]),
            np.log([0.2, 5.0, 0.8, 0.5]),
        ]
    res = _minimise(neg, [np.asarray(s, dtype=float) for s in starts], penalizer)
    theta = res.x
    (r, alpha, a, b), ll, converged, at_boundary, message = _diagnose(("r", "alpha", "a", "b"), theta, res, total)
    if penalizer:
        ll, _ = _bgnbd_ll_grad(theta, ux, ut, uT, uw, groups=groups)
    return BgNbdFit(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=ll,
        n_customers=total,
        converged=converged,
        at_boundary=at_boundary,
        message=message,
    )


def _log_alive_ratio(fit, x, t_x, T):
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) for x > 0, -inf for x == 0."""
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    pos = x > 0
    x_safe = np.where(pos, x, 1.0)
    lr = np.log(fit.a) - np.log(fit.b + x_safe - 1.0) + (fit.r + x) * (np.log(fit.alpha + T) - np.log(fit.alpha + t_x))
    return np.where(pos, lr, -np.inf)


def bgnbd_probability_alive(fit, x, t_x, T):
    """P(customer still alive | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    return np.exp(-np.logaddexp(0.0, _log_alive_ratio(fit, x, t_x, T)))


def bgnbd_expected_purchases(fit, t, x, t_x, T):
    """E[number of purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10).

    E = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)] / (1 + δ R)
    with z = t/(alpha+T+t) and R the P(alive) ratio.  Evaluated literally, ``hyp2f1`` is asked for
    c - a - b = a - 1 - r - x  << 0 with z -> 1, i.e. a huge value multiplied by a tiny one, and
    it overflows / loses precision for large x or long horizons.  We therefore use Euler's
    transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z), which turns the bracket into
    1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): its parameters no longer grow with x, so it
    is well behaved for large frequencies.  ``hyp2f1`` remains inaccurate as z -> 1 (horizons t
    many times larger than alpha+T) and is singular at a = 1 exactly (and where a+b+x-1 is
    a non-positive integer, e.g. x = 0 with a + b = 1); non-finite results are
    returned as NaN, never silently replaced.
    """
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    z = t / (alpha + T + t)
    one_minus_z = (alpha + T) / (alpha + T + t)
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    bracket = 1.0 - one_minus_z ** (a - 1.0) * hyp
    # (a+b+x-1)/(a-1) * bracket: both change sign together when a < 1, the product is >= 0.
    numer = (a + b + x - 1.0) / (a - 1.0) * bracket
    return numer * bgnbd_probability_alive(fit, x, t_x, T)


def bgnbd_simulate(r, alpha, a, b, T, rng):
    """Simulate (frequency, recency) for customers of ages ``T`` from the BG/NBD process.

    lam ~ Gamma(r, rate alpha), p ~ Beta(a, b).  Repeat purchases form a Poisson(lam) process; after each
    repeat purchase the customer drops out with probability p (everyone is alive at time 0), so
    the number of repeat purchases the customer would make is K ~ Geometric(p) on {1, 2, ...}.  Given N(T)=n
    arrivals in (0, T], the observed frequency is x = min(K, n) and t_x is the x-th of n sorted
    uniform arrival times, i.e. T * Beta(x, n - x + 1).
    """
    T = np.asarray(T, dtype=float)
    n_cust = T.size
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n_cust)
    p = rng.beta(a, b, size=n_cust)
    k = rng.geometric(p)  # repeat purchases up to and including the one after which they drop out
    n = rng.poisson(lam * T)
    x = np.minimum(k, n)
    pos = x > 0
    t_x = np.zeros(n_cust)
    t_x[pos] = T[pos] * rng.beta(x[pos], n[pos] - x[pos] + 1)
    return x.astype(float), t_x, T.copy()


# ----------------------------------------------------------------------------- Gamma-Gamma


@dataclass(frozen=True)
class GammaGammaFit:
    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: float
    converged: bool
    at_boundary: bool
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def _gg_prepare(x, m):
    """What the Gamma-Gamma likelihood needs of the data whatever the parameters: the distinct
    frequencies and each row's index into them (the log-gamma and digamma terms depend on the
    row through x only: a few hundred distinct values against ~1M distinct (x, m) rows), and
    log m, log x and m x per row."""
    xs, idx = np.unique(x, return_inverse=True)
    return xs, idx.reshape(np.shape(x)), np.log(m), np.log(x), m * x


def _gg_ll_grad(theta, x, m, w, want_grad=True, prepared=None):
    """Log-likelihood (weighted sum, and its gradient w.r.t. log-parameters) or per-row terms.

    The special functions of p x and p x + q are evaluated per distinct frequency and gathered
    (the same values, element by element, as evaluating them per row)."""
    p, q, v = np.exp(theta)
    xs, idx, log_m, log_x, mx = _gg_prepare(x, m) if prepared is None else prepared
    pxs = p * xs
    pxqs = pxs + q
    px = pxs[idx]
    pxq = pxqs[idx]
    log_vmx = np.log(v + mx)
    ll = (
        special.gammaln(pxqs)[idx]
        - special.gammaln(pxs)[idx]
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * log_m
        + px * log_x
        - pxq * log_vmx
    )
    if not want_grad:
        return ll
    psi = special.digamma(pxqs)[idx]
    d_p = x * (psi - special.digamma(pxs)[idx] + log_m + log_x - log_vmx)
    d_q = psi - special.digamma(q) + np.log(v) - log_vmx
    d_v = q / v - pxq / (v + mx)
    return float(w @ ll), np.array([w @ d_p * p, w @ d_q * q, w @ d_v * v])


def gamma_gamma_log_likelihood_terms(p, q, v, x, m):
    """Per-customer log density of the observed mean spend m over x transactions."""
    return _gg_ll_grad(np.log([p, q, v]), np.asarray(x, float), np.asarray(m, float), None, want_grad=False)


def gamma_gamma_fit(frequency, monetary_value, weights=None, penalizer=0.0, starts=None) -> GammaGammaFit:
    """Fit Gamma-Gamma (p, q, v) by ML on customers with frequency > 0 and their mean spend.

    Rows with frequency == 0 are ignored (their mean is undefined); monetary values must be > 0.
    """
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    if x.shape != m.shape or x.ndim != 1:
        raise ValueError("frequency and monetary_value must be 1-d arrays of equal length")
    w = _as_weights(weights, x.size)
    keep = (x > 0) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    if x.size == 0:
        raise ValueError("no customers with repeat transactions to fit")
    if np.any(m <= 0) or not np.all(np.isfinite(m)):
        raise ValueError("monetary values must be finite and > 0")
    uniq, inverse, _ = _unique_rows(np.column_stack([x, m]))
    uw = np.bincount(inverse.ravel(), weights=w, minlength=uniq.shape[0])
    ux, um = uniq[:, 0], uniq[:, 1]
    total = float(uw.sum())
    prepared = _gg_prepare(ux, um)

    def neg(theta):
        ll, g = _gg_ll_grad(theta, ux, um, uw, prepared=prepared)
        return -ll / total, -g / total

    if starts is None:
        mean_m = float(np.average(um, weights=uw))
        starts = [
            np.log([1.0, 2.0, mean_m]),
            np.log([5.0, 3.0, 3.0 * mean_m]),
            np.log([0.5, 1.5, 0.5 * mean_m]),
        ]
    res = _minimise(neg, [np.asarray(s, dtype=float) for s in starts], penalizer)
    theta = res.x
    (p, q, v), ll, converged, at_boundary, message = _diagnose(("p", "q", "v"), theta, res, total)
    if penalizer:
        ll, _ = _gg_ll_grad(theta, ux, um, uw, prepared=prepared)
        ll = float(ll)
    return GammaGammaFit(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=ll,
        n_customers=total,
        converged=converged,
        at_boundary=at_boundary,
        message=message,
    )


def gamma_gamma_conditional_value(fit, x, m):
    """E[mean spend per transaction | x, m] = p (v + x m) / (p x + q - 1).

    A weighted average of the population mean p v/(q-1) and the customer's own mean m; for
    x == 0 it is the population mean.  Needs q > 1 (otherwise the mean is infinite -> ValueError).
    """
    if fit.q <= 1.0:
        raise ValueError("Gamma-Gamma q <= 1: the expected spend per transaction is infinite")
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
    return fit.p * (fit.v + x * m) / (fit.p * x + fit.q - 1.0)


def simulate_gamma_gamma(p, q, v, frequency, rng):
    """Mean spend for customers with the given frequencies (x >= 1): nu ~ Gamma(q, rate v),
    each transaction z ~ Gamma(p, rate nu), mean of the x transactions (sum ~ Gamma(p x, nu))."""
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(shape=q, scale=1.0 / v, size=x.size)
    total = rng.gamma(shape=p * x, scale=1.0 / nu)
    return total / x


# ----------------------------------------------------------------------------- CLV


def clv(bgnbd, gg, x, t_x, T, m, horizon_periods, discount_rate_per_period):
    """Discounted customer lifetime value over ``horizon_periods`` future periods.

    Method: for k = 1..H the expected number of purchases in period k is
    E[Y(k)] - E[Y(k-1)] (BG/NBD conditional expectation, cumulative), each multiplied by the
    Gamma-Gamma conditional expected spend per transaction and discounted by (1 + d)^-k, i.e.
    purchases are treated as occurring at the end of their period.  Periods are the model's
    time unit (days or weeks).
    """
    horizon = int(horizon_periods)
    if horizon < 0:
        raise ValueError("horizon_periods must be >= 0")
    x = np.asarray(x, dtype=float)
    value = gamma_gamma_conditional_value(gg, x, m)
    total = np.zeros(np.broadcast(x, np.asarray(T, float)).shape)
    prev = np.zeros_like(total)
    for k in range(1, horizon + 1):
        cum = bgnbd_expected_purchases(bgnbd, float(k), x, t_x, T)
        total = total + (cum - prev) * value / (1.0 + discount_rate_per_period) ** k
        prev = cum
    return total


# ----------------------------------------------------------------------------- summaries


_UNIT_DAYS = {"days": 1.0, "weeks": 7.0}


def summary_from_transactions(customer_ids, dates, values=None, *, end_date, time_unit="days") -> pd.DataFrame:
    """Per-customer (frequency, recency, T[, monetary_value]) from a transaction log.

    Transactions are truncated to calendar days; several on the same day count as one, their
    values summed.  frequency = number of repeat transaction days; recency = first to last
    transaction day; T = first transaction day to ``end_date``; in fractional ``time_unit``
    (weeks = days / 7).  monetary_value = mean value of the repeat transaction days (the first
    day is excluded, as in ``lifetimes``); 0 when frequency is 0.  Transactions after
    ``end_date`` are ignored.  Returns a DataFrame indexed by customer id.
    """
    if time_unit not in _UNIT_DAYS:
        raise ValueError(f"time_unit must be one of {sorted(_UNIT_DAYS)}")
    unit = _UNIT_DAYS[time_unit]
    end = pd.Timestamp(end_date).normalize()
    df = pd.DataFrame({"customer": np.asarray(customer_ids), "date": pd.to_datetime(np.asarray(dates))})
    if df["date"].dt.tz is not None:
        df["date"] = df["date"].dt.tz_localize(None)
    df["date"] = df["date"].dt.normalize()
    with_values = values is not None
    df["value"] = np.asarray(values, dtype=float) if with_values else 0.0
    df = df[df["date"] <= end]
    daily = df.groupby(["customer", "date"], sort=True)["value"].sum().reset_index()
    grouped = daily.groupby("customer", sort=True)
    first = grouped["date"].min()
    last = grouped["date"].max()
    n_days = grouped["date"].count()
    out = pd.DataFrame(index=first.index)
    out["frequency"] = (n_days - 1).astype(float)
    out["recency"] = (last - first).dt.days / unit
    out["T"] = (end - first).dt.days / unit
    if with_values:
        first_value = grouped["value"].first()
        total_value = grouped["value"].sum()
        repeat = out["frequency"]
        out["monetary_value"] = np.where(repeat > 0, (total_value - first_value) / repeat.where(repeat > 0, 1), 0.0)
    out.index.name = "customer"
    return out
