"""Page-time benchmark: the same pages for the same people on the 5,000-client demo book and on the
1,000,000-client book (issue #9: "page time for the same account manager changes by at most 1.5x").

    .venv/bin/python bench/page_bench.py \\
        --demo-url postgres://brokercrm:brokercrm@127.0.0.1:5432/h_load_demo \\
        --big-url  postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big  [--repeat 30]

Both databases must have the nightly results published and the demo cast (am_alice, lead_tina,
compliance_carol: `seed_demo` and `bench/seed_large.py` create them). The script starts itself
once per database (`--worker`, DATABASE_URL set, local settings with DEBUG off), so each book has
its own Django process. A worker:
- picks the pages' objects by one rule in both books: the account manager's open client with the
  most trades (client 360 and the client APIs), the first active flag on the manager's clients in
  queue order, else the first in the whole queue (flag page; the audit trail of its client, or of
  the 360's client when the book has no active flag: then the flag page is not measured);
- logs each person in with `force_login` and drives Django's test Client in-process (no HTTP, no
  server: the least noisy way to time the view, its queries and the template);
- requests every page --warmup times, then once more counting its queries.
Then the parent asks the two workers for one timed request at a time, page after page, alternating
between the books (and which book goes first), --repeat times: whatever else runs on the machine
weighs on both books alike. It prints, per page: HTTP status, queries (demo/1M where they differ),
median and p90 on each book and the ratio of the medians (1M / demo); it exits 1 if a ratio
exceeds --max-ratio (1.5), or a page answers 5xx or differently in the two books.

`--sql PAGE` (with --worker, or passed through by the parent) prints that page's queries with
their times, slowest first, to find what grows with the book (then EXPLAIN ANALYZE it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEMO_URL = "postgres://brokercrm:brokercrm@127.0.0.1:5432/h_load_demo"
DEFAULT_BIG_URL = "postgres://brokercrm:brokercrm@127.0.0.1:5432/h_seed_big"

# (name, who, url): who is "am" (--manager), "lead" (--lead) or "officer" (--officer); the url may
# name {client_no} (the manager's client), {flag_id} (a flag on their clients) and {audit_client_no}
# (that flag's client).
PAGES: list[tuple[str, str, str]] = [
    ("home", "am", "/"),
    ("home search", "am", "/?q={client_prefix}"),
    ("client 360", "am", "/clients/{client_no}/"),
    ("compliance (AM: own flags)", "am", "/compliance/"),
    ("dashboard (AM)", "am", "/dashboards/"),
    ("home (lead)", "lead", "/"),
    ("dashboard (lead)", "lead", "/dashboards/"),
    ("compliance queue", "officer", "/compliance/"),
    ("flag", "officer", "/compliance/flags/{flag_id}/"),
    ("client audit trail", "officer", "/compliance/clients/{audit_client_no}/audit/"),
    ("client 360 (officer)", "officer", "/clients/{client_no}/"),
    # The account manager's API (session auth, as a browser would).
    ("api clients", "am", "/api/v1/clients/"),
    ("api client", "am", "/api/v1/clients/{client_no}/"),
    ("api client interactions", "am", "/api/v1/clients/{client_no}/interactions/"),
    ("api trades of client", "am", "/api/v1/trades/?client={client_no}"),
    ("api trades (book)", "am", "/api/v1/trades/"),
    ("api cash flows of client", "am", "/api/v1/cash-flows/?client={client_no}"),
    ("api asset snapshots of client", "am", "/api/v1/asset-snapshots/?client={client_no}"),
    ("api tiers", "am", "/api/v1/tiers/"),
    ("api client tiers", "am", "/api/v1/clients/{client_no}/tiers/"),
    ("api client needs", "am", "/api/v1/clients/{client_no}/needs/"),
    ("api reactivation", "am", "/api/v1/reactivation/"),
    ("api churn scores", "am", "/api/v1/churn-scores/"),
    ("api churn scores by risk", "am", "/api/v1/churn-scores/?ordering=-risk"),
    ("api activity (about to go dormant)", "am", "/api/v1/activity/?about_to_go_dormant=true"),
    ("api client scores", "am", "/api/v1/clients/{client_no}/scores/"),
    ("api tasks", "am", "/api/v1/retention/tasks/"),
    ("api tasks open mine", "am", "/api/v1/retention/tasks/?status=open&mine=true"),
    ("api callbacks", "am", "/api/v1/retention/callbacks/"),
    ("api client entitlements", "am", "/api/v1/retention/clients/{client_no}/entitlements/"),
    ("api complaints", "am", "/api/v1/complaints/"),
    ("api survey responses", "am", "/api/v1/survey-responses/"),
    ("api compliance flags", "am", "/api/v1/compliance/flags/"),
    ("api suitability records", "am", "/api/v1/compliance/suitability-records/"),
    ("api metrics dashboard", "am", "/api/v1/metrics/dashboard/"),
]


# Pages over the team lead's teams' book: comparable only when that book has about the same size in
# both databases (the demo seeder gives a team 2 account managers; the 1M book up to 6).
TEAM_SCOPED = {"home (lead)"}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- worker: one database, one Django process -------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test import Client as TestClient
    from django.test.utils import CaptureQueriesContext

    from clients.models import Client, Trade
    from compliance.models import ACTIVE_STATUSES, Flag

    user_model = get_user_model()
    users = {
        "am": user_model.objects.get(username=args.manager),
        "lead": user_model.objects.get(username=args.lead),
        "officer": user_model.objects.get(username=args.officer),
    }
    book = Client.objects.filter(account_manager__user=users["am"])
    book_size = book.count()
    book_open = book.exclude(status=Client.Status.CLOSED).count()
    team_book = Client.objects.filter(account_manager__team__lead=users["lead"]).count()
    top = (
        Trade.objects.filter(client__in=book.exclude(status=Client.Status.CLOSED))
        .values("client_id")
        .annotate(n=Count("id"))
        .order_by("-n", "client_id")
        .first()
    )
    if top is None:
        sys.exit(f"{args.manager} has no open client with trades in {connection.settings_dict['NAME']}")
    client = Client.objects.get(pk=top["client_id"])
    flag = (
        Flag.objects.filter(client__in=book, status__in=ACTIVE_STATUSES).queue_order().select_related("client").first()
        or Flag.objects.filter(status__in=ACTIVE_STATUSES).queue_order().select_related("client").first()
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client")
        clients_total = cursor.fetchone()[0]
        volumes = {}
        for label, sql in (
            ("active flags", "SELECT count(*) FROM compliance_flag WHERE status IN ('open', 'in_review', 'escalated')"),
            ("open tasks", "SELECT count(*) FROM retention_retentiontask WHERE status = 'open'"),
            ("callbacks", "SELECT count(*) FROM retention_callback"),
            ("audit entries", "SELECT count(*) FROM compliance_auditentry"),
        ):
            cursor.execute(sql)
            volumes[label] = cursor.fetchone()[0]
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'clients_trade'")
        trades_estimate = cursor.fetchone()[0]
    values = {
        "client_no": client.client_no,
        "client_prefix": client.client_no[:-2],
        # No active flag at all (the compliance stage never ran on that book): no flag page, and
        # the audit trail of the client of the 360 instead.
        "flag_id": flag.pk if flag else None,
        "audit_client_no": flag.client.client_no if flag else client.client_no,
    }

    browsers = {}
    for who, user in users.items():
        browser = TestClient()
        browser.force_login(user)
        browsers[who] = browser
    pages = [
        (name, who, url.format(**values))
        for name, who, url in PAGES
        if _selected(name, args.only) and not ("{flag_id}" in url and values["flag_id"] is None)
    ]

    def fetch(who: str, url: str) -> tuple[int, int]:
        response = browsers[who].get(url)
        return response.status_code, len(response.content)

    for _ in range(args.warmup):
        for _name, who, url in pages:
            fetch(who, url)
    result: dict[str, dict] = {}
    for name, who, url in pages:
        with CaptureQueriesContext(connection) as captured:
            status, size = fetch(who, url)
        result[name] = {"url": url, "who": who, "status": status, "bytes": size, "queries": len(captured)}
        if args.sql and args.sql == name:
            print(
                f"--- queries of {name!r} ({url}) on {connection.settings_dict['NAME']}, slowest first", file=sys.stderr
            )
            for query in sorted(captured.captured_queries, key=lambda q: -float(q["time"])):
                print(f"{float(query['time']) * 1000:9.1f} ms  {query['sql']}", file=sys.stderr)
    reply(
        {
            "database": connection.settings_dict["NAME"],
            "clients": clients_total,
            "trades_estimate": trades_estimate,
            "manager": args.manager,
            "book": book_size,
            "book_open": book_open,
            "team_book": team_book,
            "volumes": volumes,
            "objects": values,
            "pages": result,
        }
    )
    # Then time one request per line read: "<page name>" -> seconds; an empty line ends.
    by_name = {name: (who, url) for name, who, url in pages}
    for line in sys.stdin:
        name = line.rstrip("\n")
        if not name:
            break
        who, url = by_name[name]
        started = time.perf_counter()
        fetch(who, url)
        reply(time.perf_counter() - started)


def reply(value: object) -> None:
    """One JSON line to the parent (stdout is the channel; Django logs go to stderr)."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _selected(name: str, only: list[str] | None) -> bool:
    return not only or any(part.lower() in name.lower() for part in only)


# --- parent: both databases, the table ---------------------------------------------------------


class Worker:
    """A worker process on one database, kept alive: the parent asks it for one timed request at
    a time, alternating between the two books, so that whatever else runs on the machine weighs
    on both alike."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "brokercrm.settings.local",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            # One user making hundreds of requests a minute: not what the API throttle is for.
            "API_THROTTLE_USER": "1000000/minute",
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(ROOT),
            "PYTHONWARNINGS": "ignore",
        }
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--warmup", str(args.warmup)]
        command += ["--manager", args.manager, "--lead", args.lead, "--officer", args.officer]
        for part in args.only or []:
            command += ["--only", part]
        if args.sql:
            command += ["--sql", args.sql]
        self.name = url.rsplit("/", 1)[-1]
        self.process = subprocess.Popen(  # noqa: S603 - our own script, argv list
            command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = self._read()
        for page in self.info["pages"].values():
            page["times"] = []

    def _read(self) -> object:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            sys.exit(f"worker on {self.name} failed with exit code {self.process.returncode}")
        return json.loads(line)

    def time(self, page: str) -> None:
        self.process.stdin.write(page + "\n")
        self.process.stdin.flush()
        self.info["pages"][page]["times"].append(self._read())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-url", default=os.environ.get("DEMO_DATABASE_URL", DEFAULT_DEMO_URL))
    parser.add_argument("--big-url", default=os.environ.get("BIG_DATABASE_URL", DEFAULT_BIG_URL))
    parser.add_argument("--manager", default="am_alice")
    parser.add_argument("--lead", default="lead_tina")
    parser.add_argument("--officer", default="compliance_carol")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page and database")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument("--only", action="append", help="pages whose name contains this (repeatable)")
    parser.add_argument("--sql", help="print the queries of this page (exact name) with their times")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    urls = {"demo": args.demo_url, "big": args.big_url}
    started = time.monotonic()
    workers: dict[str, Worker] = {}
    try:
        for key in ("demo", "big"):
            print(f"setting up and warming up on {urls[key].rsplit('/', 1)[-1]} ...", flush=True)
            workers[key] = Worker(urls[key], args)
        common = [name for name in workers["demo"].info["pages"] if name in workers["big"].info["pages"]]
        print(f"timing {len(common)} pages x {args.repeat} on both books, alternating ...", flush=True)
        for rep in range(args.repeat):
            order = ("demo", "big") if rep % 2 == 0 else ("big", "demo")
            for name in common:
                for key in order:
                    workers[key].time(name)
    finally:
        for worker_process in workers.values():
            worker_process.close()
    demo, big = workers["demo"].info, workers["big"].info
    if args.json:
        args.json.write_text(json.dumps({"demo": demo, "big": big}, indent=1))

    print()
    for label, data in (("demo", demo), ("1M", big)):
        print(f"{label:>4}: {data['database']}: {data['clients']:,} clients, ~{data['trades_estimate']:,} trades")
        print(
            f"      {data['manager']}'s book {data['book']:,} clients ({data['book_open']:,} open); "
            f"{args.lead}'s teams {data['team_book']:,} clients; "
            + ", ".join(f"{k} {v:,}" for k, v in data["volumes"].items())
        )
        print(
            f"      client {data['objects']['client_no']}, flag {data['objects']['flag_id']}, "
            f"audit trail of {data['objects']['audit_client_no']}"
        )
    team_ratio = big["team_book"] / max(1, demo["team_book"])
    team_differs = not (1 / args.max_ratio <= team_ratio <= args.max_ratio)
    print(f"{args.repeat} timed requests per page and book, after {args.warmup} warm-up requests")
    print()
    header = (
        f"{'page':<36} {'who':<8} {'status':>6} {'queries':>9} "
        f"{'demo med':>9} {'demo p90':>9} {'1M med':>9} {'1M p90':>9} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    failures = []
    skipped = [
        name for name in {**demo["pages"], **big["pages"]} if name not in demo["pages"] or name not in big["pages"]
    ]
    for name in skipped:
        demo["pages"].pop(name, None)
        big["pages"].pop(name, None)
    for name in demo["pages"]:
        d, b = demo["pages"][name], big["pages"][name]
        d_med, b_med = statistics.median(d["times"]) * 1000, statistics.median(b["times"]) * 1000
        d_p90, b_p90 = percentile(d["times"], 0.9) * 1000, percentile(b["times"], 0.9) * 1000
        ratio = b_med / d_med
        status = str(d["status"]) if d["status"] == b["status"] else f"{d['status']}/{b['status']}"
        queries = str(d["queries"]) if d["queries"] == b["queries"] else f"{d['queries']}/{b['queries']}"
        mark = ""
        if ratio > args.max_ratio and name in TEAM_SCOPED and team_differs:
            mark = "  (team book differs)"
        elif ratio > args.max_ratio:
            mark = "  <-- over"
            failures.append(f"{name}: {ratio:.2f}x > {args.max_ratio}x ({d_med:.1f} ms -> {b_med:.1f} ms)")
        if d["status"] != b["status"] or d["status"] >= 500 or b["status"] >= 500:
            mark += "  <-- status"
            failures.append(f"{name}: HTTP {d['status']} on the demo book, {b['status']} on the 1M book")
        who = {"am": args.manager, "lead": args.lead, "officer": args.officer}[d["who"]]
        print(
            f"{name:<36} {who[:8]:<8} {status:>6} {queries:>9} "
            f"{d_med:9.1f} {d_p90:9.1f} {b_med:9.1f} {b_p90:9.1f} {ratio:6.2f}{mark}"
        )
    different = [name for name in demo["pages"] if demo["pages"][name]["queries"] != big["pages"][name]["queries"]]
    print("\ntimes in ms; ratio = 1M median / demo median; queries demo/1M where they differ")
    if team_differs:
        print(
            f"{args.lead}'s teams hold {demo['team_book']:,} clients in the demo book and {big['team_book']:,} in "
            f"the 1M book ({team_ratio:.1f}x): pages over them ({', '.join(sorted(TEAM_SCOPED))}) are shown, "
            "not judged"
        )
    if skipped:
        print(f"not measured (no active flag in one of the books): {', '.join(skipped)}")
    if different:
        print(f"query counts differ between the books on: {', '.join(different)}")
    worst = max(
        demo["pages"],
        key=lambda n: statistics.median(big["pages"][n]["times"]) / statistics.median(demo["pages"][n]["times"]),
    )
    worst_ratio = statistics.median(big["pages"][worst]["times"]) / statistics.median(demo["pages"][worst]["times"])
    print(f"largest ratio: {worst_ratio:.2f}x ({worst}); limit {args.max_ratio}x; {time.monotonic() - started:.0f} s")
    if failures:
        print("\nFAILED:")
        for line in failures:
            print(f"  {line}")
        sys.exit(1)
    print("OK: every page within the limit")


if __name__ == "__main__":
    main()
