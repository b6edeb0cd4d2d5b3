"""Locust users for bench/load_bench.py: account managers working their book.

Run by bench/load_bench.py (which starts gunicorn and reads the results); by hand:

    LOAD_MANAGERS=am_alice,am_bob LOAD_PASSWORD=brokercrm-demo .venv/bin/locust -f bench/locustfile.py \\
        --headless -u 10 -r 5 -t 60s --host http://127.0.0.1:8000

Each simulated user is a real account manager (LOAD_MANAGERS, comma-separated, taken in turn)
signing in through the login form with their password (LOAD_PASSWORD), then, with a think time
between LOAD_WAIT_MIN and LOAD_WAIT_MAX seconds, opening the pages and calling the API an
account manager uses on their own book: home (today's work, the call-first lists, the book), the
client 360 of one of their clients, their open tasks due by today (today's work through the API),
and the API's clients list, client detail, trades of a client, churn scores and tasks.

The server runs the production settings behind a TLS-terminating proxy, which this client plays:
every request says `X-Forwarded-Proto: https` (the server trusts it: SECURE_PROXY_SSL_HEADER=true)
and the cookies the server marks Secure are sent back over the loopback hop, as a browser would
over the HTTPS hop to the proxy. A POST carries the Origin a browser sends (CSRF check).

The measured window starts when the last user has signed in and lasts LOAD_MEASURE_SECONDS; then
this file stops Locust (its --run-time is only a bound).

Failures: any status other than 200 (redirects are not followed: a redirect to the login page
is a failure), a login that does not sign in, a user with no client. LOAD_RAW_OUT: a file that
gets every request (name, seconds, failed, start time) once all users have signed in, and the
sign-ins separately, as JSON when Locust stops.
"""

from __future__ import annotations

import http.cookiejar
import itertools
import json
import os
import random
import re
import time

import gevent
from locust import HttpUser, between, events, task
from locust.exception import StopUser
from requests.cookies import RequestsCookieJar

MANAGERS = [name for name in os.environ.get("LOAD_MANAGERS", "am_alice").split(",") if name]
PASSWORD = os.environ.get("LOAD_PASSWORD", "brokercrm-demo")
WAIT_MIN = float(os.environ.get("LOAD_WAIT_MIN", "2"))
WAIT_MAX = float(os.environ.get("LOAD_WAIT_MAX", "5"))
RAW_OUT = os.environ.get("LOAD_RAW_OUT")
# Seconds to run once every user has signed in; then Locust stops (0: until its --run-time).
MEASURE_SECONDS = float(os.environ.get("LOAD_MEASURE_SECONDS", "0"))
TODAY = os.environ.get("LOAD_TODAY", "")  # the exchange's date: today's work is due on or before it

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_next_manager = itertools.count()
_state = {
    "users_expected": int(os.environ.get("LOAD_USERS", "1")),
    "signed_in": 0,
    "measuring_since": None,
    "measuring_until": None,
}
_records: list[tuple[str, float, bool, float]] = []
_logins: list[float] = []


class ProxyHopCookieJar(RequestsCookieJar):
    """Keeps the cookies the server marks Secure but sends them on the plain-HTTP loopback hop
    (the browser sends them over the HTTPS hop to the proxy this client plays)."""

    def set_cookie(self, cookie: http.cookiejar.Cookie, *args: object, **kwargs: object) -> None:
        cookie.secure = False
        super().set_cookie(cookie, *args, **kwargs)


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, context=None, **kwargs):
    if name == "login":
        return
    if _state["measuring_since"] is not None and _state["measuring_until"] is None:
        _records.append((name, response_time / 1000.0, exception is not None, time.time()))


@events.quitting.add_listener
def _dump(environment, **kwargs):
    if RAW_OUT:
        with open(RAW_OUT, "w") as out:
            json.dump(
                {
                    "measuring_since": _state["measuring_since"],
                    "measuring_until": _state["measuring_until"] or time.time(),
                    "signed_in": _state["signed_in"],
                    "logins": _logins,
                    "requests": _records,
                },
                out,
            )


class AccountManager(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.client.cookies = ProxyHopCookieJar()
        self.client.headers["X-Forwarded-Proto"] = "https"
        self.origin = "https://" + self.host.split("://", 1)[1].rstrip("/")
        self.username = MANAGERS[next(_next_manager) % len(MANAGERS)]
        self._login()
        self.client_nos = self._own_clients()
        _state["signed_in"] += 1
        if _state["signed_in"] >= _state["users_expected"] and _state["measuring_since"] is None:
            _state["measuring_since"] = time.time()
            if MEASURE_SECONDS > 0:
                gevent.spawn_later(MEASURE_SECONDS, self._stop_measuring)

    def _stop_measuring(self) -> None:
        _state["measuring_until"] = time.time()
        self.environment.runner.quit()

    def _login(self) -> None:
        page = self.client.get("/accounts/login/", name="login")
        token = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or not token:
            raise StopUser(f"login page: HTTP {page.status_code}")
        started = time.perf_counter()
        with self.client.post(
            "/accounts/login/",
            data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1), "next": "/"},
            headers={"Origin": self.origin, "Referer": self.origin + "/accounts/login/"},
            allow_redirects=False,
            name="login",
            catch_response=True,
        ) as response:
            if response.status_code != 302 or "sessionid" not in self.client.cookies:
                response.failure(f"{self.username} not signed in: HTTP {response.status_code}")
                raise StopUser()
            response.success()
        _logins.append(time.perf_counter() - started)

    def _own_clients(self) -> list[str]:
        rows = (self._get("/api/v1/clients/?status=open&page_size=50", "api: clients (open)", json=True) or {}).get(
            "results"
        )
        if not rows:
            raise StopUser(f"{self.username} has no open client")
        return [row["client_no"] for row in rows]

    def _get(self, url: str, name: str, *, json: bool = False) -> object:
        """GET, not following redirects; anything but 200 is a failure (and returns None)."""
        with self.client.get(url, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            return response.json() if json else True

    # --- the mix: pages ----------------------------------------------------------------------

    @task(4)
    def home(self) -> None:
        self._get("/", "page: home")

    @task(4)
    def client_360(self) -> None:
        self._get(f"/clients/{random.choice(self.client_nos)}/", "page: client 360")

    # --- the mix: API ------------------------------------------------------------------------

    @task(2)
    def todays_work(self) -> None:
        due = f"&due_before={TODAY}" if TODAY else ""
        self._get(f"/api/v1/retention/tasks/?status=open&mine=true{due}", "api: today's tasks")

    @task(2)
    def api_clients(self) -> None:
        self._get("/api/v1/clients/", "api: clients")

    @task(2)
    def api_client(self) -> None:
        self._get(f"/api/v1/clients/{random.choice(self.client_nos)}/", "api: client")

    @task(2)
    def api_trades(self) -> None:
        self._get(f"/api/v1/trades/?client={random.choice(self.client_nos)}", "api: trades of a client")

    @task(2)
    def api_churn_scores(self) -> None:
        self._get("/api/v1/churn-scores/", "api: churn scores")

    @task(1)
    def api_tasks(self) -> None:
        self._get("/api/v1/retention/tasks/", "api: tasks")
