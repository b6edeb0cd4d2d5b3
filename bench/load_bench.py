"""Load test of the account managers' pages and API (issue #10, item 5), on loopback, bounded in time.

    .venv/bin/pip install -e '.[bench]'      # locust, the load generator (pinned in pyproject.toml)
    .venv/bin/python bench/load_bench.py \\
        --database-url postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big [--users 50 --run-time 90]

What it does, in one run:
1. picks --managers real account managers of the book (active, in the account_manager group, with
   open clients; am_alice and am_bob first), who sign in with the password the demo seeder gave
   everyone (--password, default $DEMO_PASSWORD or brokercrm-demo);
2. `collectstatic` (the production settings serve hashed static files through whitenoise), then
   starts gunicorn on 127.0.0.1 with --workers sync workers (3, as the Dockerfile) and the
   **production settings**: a random SECRET_KEY (and field-encryption keys when the settings ask
   for them and none are given), ALLOWED_HOSTS=127.0.0.1, DEBUG off, secure cookies, HSTS, SSL
   redirect on. The one switch is SECURE_PROXY_SSL_HEADER=true: production behind its
   TLS-terminating proxy, a role the load generator plays (it sends `X-Forwarded-Proto: https`
   and returns the Secure cookies over the loopback hop; bench/locustfile.py);
3. runs Locust headless (bench/locustfile.py) three times against it: a warm-up with one user
   (not counted), the single-user baseline (one user, a short think time, --baseline-time s), then
   --users users spawned at --spawn-rate per second for --run-time s, each thinking
   --wait-min..--wait-max s between requests. Only the requests made once every user has signed
   in count (the sign-ins, a deliberately slow password hash each, are reported apart);
4. stops gunicorn and prints, per phase and per request kind: requests, errors, p50/p95/p99, and
   requests per second; and p95(--users) / p95(1 user).
Exit 1 on any error (a non-200 answer, a failed sign-in, a server that does not start).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DEFAULT_URL = "postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pick_managers(url: str, count: int) -> list[tuple[str, int]]:
    """Real account managers with open clients: (username, open clients), am_alice/am_bob first."""
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """
            SELECT u.username, count(c.id)
            FROM auth_user u
            JOIN auth_user_groups ug ON ug.user_id = u.id
            JOIN auth_group g ON g.id = ug.group_id AND g.name = 'account_manager'
            JOIN clients_accountmanager am ON am.user_id = u.id AND am.is_active
            JOIN clients_client c ON c.account_manager_id = am.id AND c.status <> 'closed'
            WHERE u.is_active
            GROUP BY u.username, am.id
            ORDER BY u.username NOT IN ('am_alice', 'am_bob'), am.id
            LIMIT %s
            """,
            [count],
        ).fetchall()
    return [(username, clients) for username, clients in rows]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": args.settings,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": os.environ.get("LOAD_SECRET_KEY") or secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Production behind its TLS-terminating proxy (the load generator sends X-Forwarded-Proto).
        "SECURE_PROXY_SSL_HEADER": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    # Settings that encrypt fields at rest want keys of their own; random ones when none are given
    # (a book whose identifiers were encrypted under other keys needs those: set them in the env).
    env.setdefault("FIELD_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    env.setdefault("FIELD_HASH_KEY", secrets.token_urlsafe(48))
    for name in ("DEBUG", "SECURE_SSL_REDIRECT"):
        env.pop(name, None)  # the production defaults: DEBUG off, SSL redirect on
    return env


class Server:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], log: Path) -> None:
        self.port = args.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "brokercrm.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(args.workers),
            "--timeout",
            "60",
            "--error-logfile",
            str(log),
            "--chdir",
            str(ROOT),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            command, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.tail()}")
            try:
                request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
                    self.url + "/accounts/login/", headers={"X-Forwarded-Proto": "https"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our loopback server
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"gunicorn not answering after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the arbiter and its workers: our own group
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def run_locust(
    args: argparse.Namespace,
    *,
    label: str,
    host: str,
    users: int,
    spawn_rate: float,
    seconds: int,
    wait: tuple[float, float],
    managers: list[str],
    workdir: Path,
) -> dict:
    raw = workdir / f"{label}.json"
    env = {
        **os.environ,
        "LOAD_MANAGERS": ",".join(managers),
        "LOAD_PASSWORD": args.password,
        "LOAD_USERS": str(users),
        "LOAD_WAIT_MIN": str(wait[0]),
        "LOAD_WAIT_MAX": str(wait[1]),
        "LOAD_RAW_OUT": str(raw),
        "LOAD_TODAY": args.today.isoformat(),
        "LOAD_MEASURE_SECONDS": str(seconds),
    }
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    # Locust stops itself `seconds` after the last sign-in; --run-time only bounds a run that hangs.
    bound = seconds + 60 + int(users * 2 / spawn_rate) + users * 2
    command += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{bound}s", "--stop-timeout", "10"]
    command += ["--host", host, "--loglevel", "WARNING", "--csv", str(workdir / label)]
    print(f"  {label}: {users} user(s) signing in, then {seconds} s measured ...", flush=True)
    started = time.time()
    done = subprocess.run(  # noqa: S603 - fixed argv
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    ended = time.time()
    data = json.loads(raw.read_text()) if raw.exists() else {"requests": [], "logins": [], "measuring_since": None}
    data["locust_exit"] = done.returncode
    data["locust_output"] = done.stdout
    data["failures_csv"] = _failures(workdir / f"{label}_failures.csv")
    since = data["measuring_since"] or ended
    data["window"] = max(1e-9, (data.get("measuring_until") or ended) - since)
    data["total_seconds"] = ended - started
    return data


def _failures(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[1:]
    return [line for line in lines if line.strip()]


def summary(data: dict) -> dict:
    times = [r[1] for r in data["requests"]]
    return {
        "requests": len(times),
        "errors": sum(1 for r in data["requests"] if r[2]),
        "p50": percentile(times, 0.50) * 1000,
        "p95": percentile(times, 0.95) * 1000,
        "p99": percentile(times, 0.99) * 1000,
        "rps": len(times) / data["window"],
        "window": data["window"],
    }


def by_name(data: dict) -> dict[str, dict]:
    names: dict[str, list[float]] = {}
    for name, seconds, _failed, _at in data["requests"]:
        names.setdefault(name, []).append(seconds)
    return {
        name: {"n": len(v), "p50": percentile(v, 0.5) * 1000, "p95": percentile(v, 0.95) * 1000}
        for name, v in sorted(names.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--settings", default="brokercrm.settings.production")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (2-4)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--managers", type=int, default=10, help="distinct account managers signing in")
    parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "brokercrm-demo"))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--run-time", type=int, default=90, help="seconds measured once all users signed in")
    parser.add_argument("--baseline-time", type=int, default=45, help="seconds measured with one user")
    parser.add_argument("--warmup-time", type=int, default=15, help="seconds of the uncounted warm-up")
    parser.add_argument("--wait-min", type=float, default=2, help="think time of the concurrent users (s)")
    parser.add_argument("--wait-max", type=float, default=5)
    parser.add_argument("--baseline-wait", type=float, default=0.1, help="think time of the single user (s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.today = dt.datetime.now(zoneinfo.ZoneInfo(os.environ.get("TIME_ZONE", "Asia/Shanghai"))).date()

    managers = pick_managers(args.database_url, args.managers)
    if not managers:
        sys.exit("no account manager with open clients in that database")
    names = [name for name, _ in managers]
    database = args.database_url.rsplit("/", 1)[-1]
    print(f"database {database}; account managers: " + ", ".join(f"{n} ({c} open clients)" for n, c in managers))

    env = server_env(args)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
    )
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="load_bench_") as tmp:
        workdir = Path(tmp)
        server = Server(args, env, workdir / "gunicorn.log")
        try:
            server.wait_ready()
            print(f"gunicorn ({args.workers} sync workers, {args.settings}) on {server.url}")
            common = {"host": server.url, "managers": names, "workdir": workdir}
            bw = (args.baseline_wait * 0.5, args.baseline_wait * 1.5)
            warm = run_locust(args, label="warmup", users=1, spawn_rate=1, seconds=args.warmup_time, wait=bw, **common)
            single = run_locust(
                args, label="single", users=1, spawn_rate=1, seconds=args.baseline_time, wait=bw, **common
            )
            load = run_locust(
                args,
                label="load",
                users=args.users,
                spawn_rate=args.spawn_rate,
                seconds=args.run_time,
                wait=(args.wait_min, args.wait_max),
                **common,
            )
        except RuntimeError as exc:
            sys.exit(str(exc))
        finally:
            server.stop()
        log_tail = server.tail()

    phases = {"1 user": single, f"{args.users} users": load}
    for label, data in (("warm-up", warm), *phases.items()):
        if data["locust_exit"] != 0 or data["failures_csv"] or data["measuring_since"] is None:
            failed.append(f"{label}: locust exit {data['locust_exit']}; failures: {data['failures_csv'] or 'none'}")
            if data["measuring_since"] is None:
                failed.append(f"{label}: not every user signed in ({data.get('signed_in', 0)})")

    print()
    print(
        f"{'phase':<10} {'requests':>8} {'errors':>6} {'req/s':>7} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'window':>7}"
    )
    stats = {}
    for label, data in phases.items():
        s = stats[label] = summary(data)
        print(
            f"{label:<10} {s['requests']:>8} {s['errors']:>6} {s['rps']:7.1f} {s['p50']:8.1f} {s['p95']:8.1f} "
            f"{s['p99']:8.1f} {s['window']:6.0f}s"
        )
        if s["errors"]:
            failed.append(f"{label}: {s['errors']} failed requests")
    ratio = stats[f"{args.users} users"]["p95"] / stats["1 user"]["p95"]
    print(f"\np95 ratio ({args.users} users / 1 user): {ratio:.2f}")
    if single["logins"]:
        print(f"a sign-in alone: {single['logins'][0] * 1000:.0f} ms (the password hash; not counted above)")
    logins = load["logins"]
    if logins:
        print(
            f"sign-ins during the spawn of {args.users} users: {len(logins)}, "
            f"median {percentile(logins, 0.5) * 1000:.0f} ms, max {max(logins) * 1000:.0f} ms (not counted above)"
        )
    print("\nper request kind (ms):")
    single_names, load_names = by_name(single), by_name(load)
    print(f"{'request':<28} {'1u n':>6} {'1u p50':>8} {'1u p95':>8} {'Nu n':>6} {'Nu p50':>8} {'Nu p95':>8}")
    for name in sorted(set(single_names) | set(load_names)):
        a = single_names.get(name, {"n": 0, "p50": float("nan"), "p95": float("nan")})
        b = load_names.get(name, {"n": 0, "p50": float("nan"), "p95": float("nan")})
        print(f"{name:<28} {a['n']:>6} {a['p50']:8.1f} {a['p95']:8.1f} {b['n']:>6} {b['p50']:8.1f} {b['p95']:8.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "database": database,
                    "managers": managers,
                    "phases": stats,
                    "p95_ratio": ratio,
                    "by_name": {"1 user": single_names, f"{args.users} users": load_names},
                },
                indent=1,
            )
        )
    if failed:
        print("\nFAILED:")
        for line in failed:
            print(f"  {line}")
        for data in (warm, single, load):
            if data["locust_exit"] != 0:
                print(data["locust_output"][-3000:])
        print("gunicorn log (tail):\n" + log_tail)
        sys.exit(1)
    print("OK: no errors")


if __name__ == "__main__":
    main()
