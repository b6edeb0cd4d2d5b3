"""Benchmark: our BG/NBD fitter (retention/lifetime.py) against the `lifetimes` package's BetaGeoFitter.

Issue #5: "Fit and score 1,000,000 clients: fit time at most 0.5x that of the `lifetimes`
package's BetaGeoFitter on the same summary, same parameters to 4 significant digits,
measured in the same run (install `lifetimes` only in the benchmark's environment)."

    .venv/bin/python bench/lifetime_bench.py                  # the PostgreSQL benchmark book
    .venv/bin/python bench/lifetime_bench.py --as-of 2026-11-21
    .venv/bin/python bench/lifetime_bench.py --synthetic 1000000   # no database needed
    .venv/bin/python bench/lifetime_bench.py --csv summary.csv     # columns frequency,recency,T

The per-client summary (time unit: days): a trading day is a (client_id, day) of
segmentation_clientdailyactivity with SUM(trades) > 0 and day < as-of; frequency = trading
days - 1, recency = last - first trading day, T = as-of - first trading day.  The as-of date
defaults to the day after the last day in the table.  Clients who never traded have no first
purchase and so no BG/NBD row.  The database is only read (one aggregate query in a read-only
transaction); the summary is cached in /tmp/lifetime_summary_1m.npz (--refresh re-queries).

Timed, in the same run:

* ours: ``summary_collapse`` + ``bgnbd_fit`` on the whole summary (median of --repeat runs);
* lifetimes: ``BetaGeoFitter(penalizer_coef=0.0).fit(frequency, recency, T)`` on the same rows,
  in a separate virtualenv (created from bench/requirements-lifetimes.txt if missing), run as a
  subprocess that loads the .npz, fits and prints JSON;
* lifetimes again on our collapsed summary with ``weights=`` (plus the time of our collapse),
  a fairer second comparison line: both sides then fit the same distinct rows.

Both parameter sets are evaluated with our ``bgnbd_log_likelihood_terms`` on the same data, so
the better optimum is the one with the higher log-likelihood whatever either fitter reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retention import lifetime as lt  # noqa: E402

DEFAULT_DSN = "postgres://brokercrm:brokercrm@localhost:5432/h_seed_big"
TMP = Path("/tmp")  # noqa: S108 - a fixed, documented cache location on the benchmark machine
DEFAULT_CACHE = TMP / "lifetime_summary_1m.npz"
DEFAULT_VENV = TMP / "lifetimes-venv"
REQUIREMENTS = ROOT / "bench" / "requirements-lifetimes.txt"
#: Parameters the synthetic book is simulated from (days; ~0.035 trading days a day per client).
SYNTHETIC_PARAMS = {"r": 0.7, "alpha": 20.0, "a": 0.4, "b": 3.5}
PARAMS = ("r", "alpha", "a", "b")
TARGET_RATIO = 0.5

SUMMARY_SQL = """
WITH trading_days AS (
    SELECT client_id, day
    FROM segmentation_clientdailyactivity
    WHERE day < %(as_of)s
    GROUP BY client_id, day
    HAVING SUM(trades) > 0
)
SELECT client_id,
       COUNT(*) - 1 AS frequency,
       MAX(day) - MIN(day) AS recency,
       %(as_of)s::date - MIN(day) AS age
FROM trading_days
GROUP BY client_id
ORDER BY client_id
"""

#: Runs inside the lifetimes virtualenv: argv = npz path (frequency, recency, T and, for the
#: collapsed summary, weights).  Times BetaGeoFitter.fit only and prints one JSON line.
LIFETIMES_RUNNER = r"""
import json, sys, time, warnings
import numpy as np
import lifetimes, lifetimes.fitters, scipy, pandas, autograd
from importlib import metadata
from lifetimes import BetaGeoFitter

warnings.simplefilter("ignore")
data = np.load(sys.argv[1])
x, t_x, T = data["frequency"], data["recency"], data["T"]
weights = data["weights"] if "weights" in data.files else None

captured = {}
_minimize = lifetimes.fitters.minimize

def minimize(*args, **kwargs):  # record the optimiser's result (iterations, gradient)
    res = _minimize(*args, **kwargs)
    captured["res"] = res
    captured["method"] = kwargs.get("method")
    captured["tol"] = kwargs.get("tol")
    return res

lifetimes.fitters.minimize = minimize

started, cpu_started = time.perf_counter(), time.process_time()
fitter = BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, T, weights=weights)
seconds = time.perf_counter() - started
cpu_seconds = time.process_time() - cpu_started

w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
res = captured["res"]
scale = float(fitter._scale)
mean_nll_scaled = float(fitter._negative_log_likelihood_)
# lifetimes fits on time * scale (scale = 1 / max T); ll(scaled) = ll(days) - x ln(scale) per row.
ll_days = -mean_nll_scaled * float(w.sum()) + float(w @ x) * np.log(scale)
print(json.dumps({
    "weighted": weights is not None,
    "rows": int(x.size),
    "customers": float(w.sum()),
    "params": {k: float(v) for k, v in fitter.params_.items()},
    "log_likelihood_reported": ll_days,
    "mean_nll_scaled": mean_nll_scaled,
    "scale": scale,
    "seconds": seconds,
    "cpu_seconds": cpu_seconds,
    "optimizer": {
        "method": captured["method"] or "default (BFGS: no bounds or constraints)",
        "tol": captured["tol"],
        "success": bool(res.success),
        "message": str(res.message),
        "nit": int(res.nit),
        "nfev": int(res.nfev),
        "grad_max_abs": float(np.max(np.abs(res.jac))),
    },
    "versions": {n: metadata.version(n) for n in ("lifetimes", "numpy", "scipy", "pandas", "autograd")},
    "python": sys.version.split()[0],
}))
"""


# ----------------------------------------------------------------------------- summary sources


def _save(path: Path, x, t_x, T, meta: dict) -> None:
    np.savez(path, frequency=x, recency=t_x, T=T, meta=np.array(json.dumps(meta)))


def _load(path: Path):
    with np.load(path) as data:
        return data["frequency"], data["recency"], data["T"], json.loads(str(data["meta"]))


def summary_from_postgres(dsn: str, as_of: dt.date | None, cache: Path, refresh: bool):
    if cache.exists() and not refresh:
        x, t_x, T, meta = _load(cache)
        if (
            meta.get("source") == "postgres"
            and meta.get("dsn") == dsn
            and (as_of is None or meta["as_of"] == str(as_of))
        ):
            print(f"summary: cached {cache} ({meta['dsn_db']}, as of {meta['as_of']}, query {meta['seconds']:.1f} s)")
            return x, t_x, T, meta
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.read_only = True  # every transaction of this connection is READ ONLY
        with conn.cursor() as cur:
            if as_of is None:
                cur.execute("SELECT MAX(day) + 1 FROM segmentation_clientdailyactivity")
                as_of = cur.fetchone()[0]
            cur.execute(SUMMARY_SQL, {"as_of": as_of})
            rows = cur.fetchall()
            cur.execute("SELECT COUNT(*) FROM clients_client")
            n_clients = cur.fetchone()[0]
        conn.rollback()
    seconds = time.perf_counter() - started
    arr = np.array([r[1:] for r in rows], dtype=float).reshape(-1, 3)
    x, t_x, T = arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()
    meta = {
        "source": "postgres",
        "dsn": dsn,
        "dsn_db": dsn.rsplit("/", 1)[-1],
        "as_of": str(as_of),
        "clients_in_book": int(n_clients),
        "seconds": seconds,
    }
    _save(cache, x, t_x, T, meta)
    print(f"summary: queried {meta['dsn_db']} as of {as_of} in {seconds:.1f} s, cached to {cache}")
    return x, t_x, T, meta


def summary_synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 731, n).astype(float)  # ages in whole days, as in the database summary
    x, t_x, T = lt.bgnbd_simulate(**SYNTHETIC_PARAMS, T=T, rng=rng)
    t_x = np.ceil(t_x)  # last trading day on a whole day (>= 1 when x > 0, <= T)
    meta = {"source": "synthetic", "n": n, "seed": seed, "true_params": SYNTHETIC_PARAMS}
    print(f"summary: simulated {n:,} clients from BG/NBD {SYNTHETIC_PARAMS} (seed {seed})")
    return x, t_x, T, meta


def summary_from_csv(path: Path):
    import pandas as pd

    df = pd.read_csv(path)
    missing = {"frequency", "recency", "T"} - set(df.columns)
    if missing:
        sys.exit(f"{path}: missing column(s) {sorted(missing)}")
    meta = {"source": "csv", "path": str(path)}
    print(f"summary: {len(df):,} rows from {path}")
    return (df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")), meta


# ----------------------------------------------------------------------------- lifetimes venv


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def ensure_venv(venv: Path, base_python: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {base_python} -m venv")
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)  # noqa: S603 - fixed argv
    pins = _pins()
    probe = (
        "import json, importlib.metadata as m\n"
        f"names = {sorted(pins)!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    probed = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)  # noqa: S603
    installed = json.loads(probed.stdout)
    if installed != pins:
        print(f"installing {REQUIREMENTS.name} into {venv}")
        subprocess.run(  # noqa: S603 - fixed argv
            [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)], check=True
        )
    return python


def run_lifetimes(python: Path, npz: Path) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [python, "-c", LIFETIMES_RUNNER, str(npz)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"lifetimes on {npz} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- comparison


def same_sig(a: float, b: float, digits: int = 4) -> bool:
    """a and b round to the same number at ``digits`` significant digits."""
    return f"{a:.{digits - 1}e}" == f"{b:.{digits - 1}e}"


def units_of_last_digit(a: float, b: float, digits: int = 4) -> float:
    """|a - b| in units of b's ``digits``-th significant digit (< 0.5: within rounding)."""
    unit = 10.0 ** (math.floor(math.log10(abs(b))) - (digits - 1))
    return abs(a - b) / unit


def log_likelihood(params: dict, ux, ut, uT, counts) -> float:
    terms = lt.bgnbd_log_likelihood_terms(*(params[k] for k in PARAMS), ux, ut, uT)
    return float(counts @ terms)


def mean_grad(params: dict, ux, ut, uT, counts) -> np.ndarray:
    """Gradient of the per-customer mean log-likelihood w.r.t. log-parameters (days)."""
    theta = np.log([params[k] for k in PARAMS])
    _, g = lt._bgnbd_ll_grad(theta, ux, ut, uT, counts)
    return g / counts.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--synthetic", type=int, metavar="N", help="simulate N clients instead of reading the database")
    src.add_argument("--csv", type=Path, metavar="FILE", help="read a saved summary (frequency,recency,T)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="end of observation (default: last day + 1)")
    parser.add_argument("--dsn", default=os.environ.get("LIFETIME_BENCH_DSN", DEFAULT_DSN))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache of the database summary (.npz)")
    parser.add_argument("--refresh", action="store_true", help="re-query the database even if the cache exists")
    parser.add_argument("--seed", type=int, default=20261122, help="seed of --synthetic")
    parser.add_argument("--repeat", type=int, default=3, help="runs of our fit (median reported)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv for lifetimes")
    parser.add_argument("--venv-python", default="python3", help="interpreter used to create --venv")
    parser.add_argument("--skip-weighted", action="store_true", help="skip lifetimes on the collapsed summary")
    args = parser.parse_args()

    if args.synthetic:
        x, t_x, T, meta = summary_synthetic(args.synthetic, args.seed)
        npz = TMP / f"lifetime_summary_synthetic_{args.synthetic}_{args.seed}.npz"
        _save(npz, x, t_x, T, meta)
    elif args.csv:
        (x, t_x, T), meta = summary_from_csv(args.csv)
        npz = TMP / f"lifetime_summary_csv_{args.csv.stem}.npz"
        _save(npz, x, t_x, T, meta)
    else:
        x, t_x, T, meta = summary_from_postgres(args.dsn, args.as_of, args.cache, args.refresh)
        npz = args.cache
        print(f"  {meta['clients_in_book']:,} clients in the book, {x.size:,} with at least one trading day")
    print(
        f"  rows {x.size:,}; mean frequency {x.mean():.2f}, recency {t_x.mean():.1f} d, T {T.mean():.1f} d; "
        f"frequency 0: {int((x == 0).sum()):,}"
    )

    python = ensure_venv(args.venv, args.venv_python)

    # ---- ours (timed: collapse + fit)
    print(f"\nours: summary_collapse + bgnbd_fit, {args.repeat} run(s)")
    times, cpu_times, collapse_times, collapse_cpu_times = [], [], [], []
    for i in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        (ux, ut, uT), counts = lt.summary_collapse(x, t_x, T)
        collapse_times.append(time.perf_counter() - started)
        collapse_cpu_times.append(time.process_time() - cpu_started)
        ours = lt.bgnbd_fit(ux, ut, uT, weights=counts)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        print(
            f"  run {i + 1}: {times[-1]:7.3f} s wall, {cpu_times[-1]:7.3f} s CPU "
            f"(collapse {collapse_times[-1]:.3f} s wall, {ux.size:,} distinct rows)"
        )
    ours_seconds, ours_cpu = statistics.median(times), statistics.median(cpu_times)
    collapse_seconds, collapse_cpu = statistics.median(collapse_times), statistics.median(collapse_cpu_times)
    collapsed_npz = npz.with_name(npz.stem + "_collapsed.npz")
    np.savez(collapsed_npz, frequency=ux, recency=ut, T=uT, weights=counts)
    print(f"  {ours.message}; converged={ours.converged}, at_boundary={ours.at_boundary}")

    started = time.perf_counter()
    alive = lt.bgnbd_probability_alive(ours, x, t_x, T)
    expected = lt.bgnbd_expected_purchases(ours, 90.0, x, t_x, T)
    score_seconds = time.perf_counter() - started
    print(
        f"  scoring all {x.size:,} rows (P(alive) + expected trading days in 90 d): {score_seconds:.3f} s; "
        f"non-finite {int((~np.isfinite(alive)).sum() + (~np.isfinite(expected)).sum())}"
    )

    # ---- lifetimes (same run, subprocess in its own venv)
    print(f"\nlifetimes: BetaGeoFitter(penalizer_coef=0.0).fit on all {x.size:,} rows (subprocess, {python})")
    ref = run_lifetimes(python, npz)
    print(f"  {ref['seconds']:.2f} s wall, {ref['cpu_seconds']:.2f} s CPU; optimiser {ref['optimizer']}")
    refw = None
    if not args.skip_weighted:
        print(f"lifetimes: the same on our collapsed summary ({ux.size:,} rows) with weights=counts")
        refw = run_lifetimes(python, collapsed_npz)
        print(
            f"  {refw['seconds']:.2f} s wall, {refw['cpu_seconds']:.2f} s CPU (fit only; + our collapse "
            f"{collapse_seconds:.3f} s wall, {collapse_cpu:.3f} s CPU); optimiser {refw['optimizer']}"
        )
        refw["seconds"] += collapse_seconds
        refw["cpu_seconds"] += collapse_cpu
    versions = ", ".join(f"{k} {v}" for k, v in ref["versions"].items())
    print(f"  benchmark env: Python {ref['python']}, {versions}")

    # ---- comparison
    ours_params = {k: getattr(ours, k) for k in PARAMS}
    ll_ours = log_likelihood(ours_params, ux, ut, uT, counts)
    ll_ref = log_likelihood(ref["params"], ux, ut, uT, counts)
    print("\nparameters (time unit: days; lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b) in both)")
    print(
        f"  {'':6} {'ours':>16} {'lifetimes':>16} {'4 s.f. equal':>13} {'rel. diff':>10} {'diff / 4th-digit unit':>22}"
    )
    agree = {}
    for k in PARAMS:
        a, b = ours_params[k], ref["params"][k]
        agree[k] = same_sig(a, b)
        rel = abs(a - b) / abs(b)
        print(
            f"  {k:6} {a:16.9g} {b:16.9g} {('yes' if agree[k] else 'NO'):>13} {rel:10.1e} "
            f"{units_of_last_digit(a, b):22.2e}"
        )
    if refw is not None:
        shown = ", ".join(f"{k}={refw['params'][k]:.9g}" for k in PARAMS)
        print(f"  lifetimes, collapsed + weights: {shown}")
        print(
            "  4 s.f. equal to ours: "
            + ", ".join(f"{k} {'yes' if same_sig(ours_params[k], refw['params'][k]) else 'NO'}" for k in PARAMS)
        )

    print("\nlog-likelihood (total over clients, days; evaluated with bgnbd_log_likelihood_terms)")
    print(f"  ours, reported by bgnbd_fit          {ours.log_likelihood:20.6f}")
    print(f"  ours, re-evaluated                   {ll_ours:20.6f}")
    print(f"  lifetimes params, our formula        {ll_ref:20.6f}")
    print(f"  lifetimes, its own value (unscaled)  {ref['log_likelihood_reported']:20.6f}")
    if refw is not None:
        ll_refw = log_likelihood(refw["params"], ux, ut, uT, counts)
        print(f"  lifetimes weighted params, ours      {ll_refw:20.6f}")
        print(f"  lifetimes weighted, its own value    {refw['log_likelihood_reported']:20.6f}")
    same_model = abs(ll_ref - ref["log_likelihood_reported"]) <= 1e-6 * abs(ll_ref)
    print(f"  same parameterisation (lifetimes' own LL == our formula at its params): {'yes' if same_model else 'NO'}")
    if abs(ll_ours - ll_ref) <= 1e-10 * abs(ll_ref):
        better = "neither: equal to 1e-10 relative (the same optimum)"
    else:
        better = "ours" if ll_ours > ll_ref else "lifetimes"
    print(f"  ours - lifetimes: {ll_ours - ll_ref:+.3e}  -> higher likelihood: {better}")
    g_ours, g_ref = mean_grad(ours_params, ux, ut, uT, counts), mean_grad(ref["params"], ux, ut, uT, counts)
    print(
        f"  max |d mean LL / d log-param|: at ours {np.abs(g_ours).max():.2e}, at lifetimes {np.abs(g_ref).max():.2e}"
    )

    print("\nsummary (wall seconds; CPU seconds in brackets - the machine may be shared)")
    ratio = ours_seconds / ref["seconds"]
    print(f"  rows fitted                                 {x.size:,}")
    print(f"  ours (collapse + fit), median of {args.repeat}         {ours_seconds:10.3f} s  [{ours_cpu:9.3f} s]")
    print(f"  lifetimes BetaGeoFitter.fit, all rows       {ref['seconds']:10.3f} s  [{ref['cpu_seconds']:9.3f} s]")
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(
        f"  ratio ours / lifetimes                      {ratio:10.4f}    [{ours_cpu / ref['cpu_seconds']:9.4f}]"
        f"   target <= {TARGET_RATIO}: {verdict}"
    )
    if refw is not None:
        ratio_w = ours_seconds / refw["seconds"]
        verdict = "PASS" if ratio_w <= TARGET_RATIO else "FAIL"
        print(
            f"  our collapse + lifetimes weighted fit       {refw['seconds']:10.3f} s  [{refw['cpu_seconds']:9.3f} s]"
        )
        print(
            f"  ratio ours / lifetimes (weighted)           {ratio_w:10.4f}    [{ours_cpu / refw['cpu_seconds']:9.4f}]"
            f"   target <= {TARGET_RATIO}: {verdict}"
        )
    all_agree = all(agree.values())
    print(f"  parameters equal to 4 significant digits    {'PASS' if all_agree else 'FAIL'} {agree}")
    print(f"  log-likelihood ours / lifetimes             {ll_ours:.6f} / {ll_ref:.6f}")


if __name__ == "__main__":
    main()
