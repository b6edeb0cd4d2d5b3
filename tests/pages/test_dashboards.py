"""The management dashboard: who may read it, what it shows after a nightly run (the numbers the
API gives, as tables and as chart data), the migration form, the empty state, and a fixed number
of queries whatever the size of the book."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics.models import MetricValue
from retention.work.models import Callback, CallbackSample, Campaign
from tests import factories
from tests.conftest import Cast
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import add_trade, local_noon, make_book

__all__ = ["eager_celery", "run_nightly"]  # the nightly fixtures, shared

pytestmark = pytest.mark.django_db

D = dt.date(2026, 6, 30)
D0 = D - dt.timedelta(days=1)
URL = "/dashboards/"


def signed_in(user: object) -> Browser:
    browser = Browser()
    browser.force_login(user)
    return browser


def embedded(html: str, element_id: str) -> object:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


def cells(html: str, testid: str) -> list[list[str]]:
    """The text of each row of the table with data-testid=testid (header row included)."""
    table = re.search(rf'<table[^>]*data-testid="{testid}".*?</table>', html, re.S)
    assert table, f"no table {testid}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)
    return [
        [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def campaign(by: object, name: str = "Win back", **report: float) -> Campaign:
    data = {
        "treated_n": 80,
        "treated_converted": 24,
        "treated_rate": 0.3,
        "control_n": 20,
        "control_converted": 2,
        "control_rate": 0.1,
        "uplift": 0.2,
        "standard_error": 0.08,
        "ci_low": 0.043,
        "ci_high": 0.357,
        "confidence": 0.95,
        **report,
    }
    return Campaign.objects.create(
        name=name, control_percent=20, seed=7, task_reason="Call", status="measured", launched_on=D,
        report=data, measured_at=timezone.now(), created_by=by,
    )  # fmt: skip


def callbacks(client: object, *, done: int, pending: int) -> None:
    today = timezone.localdate()
    sample, _ = CallbackSample.objects.get_or_create(
        year=today.year, defaults={"seed": 1, "percent": 10, "population": 400, "sample_size": 0, "drawn_on": today}
    )
    sample.sample_size += done + pending
    sample.save()
    for index in range(done + pending):
        is_done = index < done
        Callback.objects.create(
            client=factories.ClientFactory(account_manager=client.account_manager) if index else client,
            kind="annual_sample", year=today.year, sample=sample, due=today + dt.timedelta(days=30),
            status="done" if is_done else "pending", created_on=today, retain_until=today.replace(year=today.year + 3),
            identity_confirmed=True if is_done else None, no_unauthorised_staff_trading=True if is_done else None,
            risk_disclosure_understood=True if is_done else None, satisfaction=5 if is_done else None,
            completed_at=timezone.now() if is_done else None,
        )  # fmt: skip


@pytest.fixture
def nightly(cast: Cast, run_nightly: object) -> Cast:
    """Two nights over a hand-built book: alice's and bob's clients (tina's team) and mike's;
    between them a new client trades enough to enter at the top."""
    make_book([100, 50, 20, 10, 5, 1, 0], as_of=D, manager=cast.alice)
    make_book([300, 2, 1], as_of=D, manager=cast.bob)
    make_book([40, 30], as_of=D, manager=cast.mike)
    assert run_nightly(D0, ["rollup", "tiers", "metrics"]).status == "succeeded"
    newcomer = factories.ClientFactory(account_manager=cast.mike, opened_on=dt.date(2026, 6, 30), name="Newcomer")
    add_trade(newcomer, commission="1000", when=local_noon(D))
    assert run_nightly(D, ["rollup", "tiers", "metrics"]).status == "succeeded"
    return cast


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["tina", "carol", "olga", "system"])
def test_team_leads_and_firm_wide_roles_read_the_dashboard(cast: Cast, who: str) -> None:
    page = signed_in(getattr(cast, who)).get(URL)
    assert page.status_code == 200
    assert "Management dashboard" in page.content.decode()


@pytest.mark.parametrize("who", ["alice", "mike"])
def test_account_managers_get_a_403_page(cast: Cast, who: str) -> None:
    page = signed_in(getattr(cast, who).user).get(URL)
    assert page.status_code == 403
    text = page.content.decode()
    assert "The management dashboard is for team leads, compliance and operations." in text
    assert "pareto-data" not in text


def test_a_user_without_a_role_gets_403_and_anonymous_users_sign_in_first(cast: Cast) -> None:
    assert signed_in(factories.UserFactory(username="nobody")).get(URL).status_code == 403
    page = Browser().get(URL)
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/")


# --- empty state ----------------------------------------------------------------------------------


def test_before_any_nightly_run_the_page_says_so(cast: Cast) -> None:
    page = signed_in(cast.tina).get(URL)
    text = page.content.decode()
    assert page.status_code == 200
    assert "No nightly run yet." in text
    assert "No campaign yet." in text
    assert "Callback progress appears after a nightly run that includes the callbacks stage." in text
    for chart in ("pareto-data", "tiers-data", "kpi-data", "campaign-data"):
        assert f'id="{chart}"' not in text


# --- content --------------------------------------------------------------------------------------


def test_tiers_pareto_and_migration_after_two_nights(nightly: Cast) -> None:
    text = signed_in(nightly.carol).get(URL).content.decode()
    # population: 12 book clients + the cast's 3 + the newcomer
    assert re.search(r'data-testid="population">16<', text)
    pareto = cells(text, "pareto-table")
    assert pareto[0][0] == "Tier"
    assert [row[:2] for row in pareto[1:]] == [["VIP", "1"], ["Major", "1"], ["Ordinary", "2"], ["Small", "12"]]
    assert pareto[1][3] == "1,000"  # the newcomer's commission
    # the chart is fed the same numbers as the API
    api = signed_in(nightly.carol).get("/api/v1/tiers/pareto/").json()
    chart = embedded(text, "pareto-data")
    assert [step["clients"] for step in chart["steps"]] == [step["clients"] for step in api["steps"]]
    assert [round(step["commission_share"], 6) for step in chart["steps"]] == [
        round(step["commission_share"] * 100, 6) for step in api["steps"]
    ]
    assert chart["top20_share"] == pytest.approx(api["top20_share"] * 100)
    assert f"{api['top20_share'] * 100:.1f}%" in text
    # the migration matrix, previous run against the current one by default
    assert "Clients by tier on 2026-06-29 (rows) and on 2026-06-30 (columns)." in text
    matrix = cells(text, "migration-table")
    api_matrix = signed_in(nightly.carol).get("/api/v1/tiers/migration/").json()["matrix"]
    codes = ["vip", "major", "ordinary", "small", "none"]
    for row, before in zip(matrix[1:], codes, strict=True):
        assert row[1:6] == [str(api_matrix[before][after]) for after in codes]
    moves = re.search(r'data-testid="migration-moves">(.*?)</dl>', text, re.S).group(1)
    assert re.search(r"Entered</dt><dd>1<", moves)
    assert re.search(r"Downgraded</dt><dd>2<", moves)  # the old VIP and Major move down one
    distribution = cells(text, "tiers-table")
    assert distribution[1] == ["2026-06-30", "1", "1", "2", "12", "3"]
    assert distribution[2][0] == "2026-06-29"


def test_the_migration_form_compares_two_dates_and_explains_bad_input(nightly: Cast) -> None:
    browser = signed_in(nightly.tina)
    text = browser.get(URL, {"from_date": "2026-06-29", "to_date": "2026-06-30"}).content.decode()
    assert "Clients by tier on 2026-06-29 (rows) and on 2026-06-30 (columns)." in text
    assert '<option value="2026-06-29" selected>' in text
    text = browser.get(URL, {"from_date": "2026-06-30", "to_date": "2026-06-29"}).content.decode()
    assert "Choose a “from” date before the “to” date." in text
    text = browser.get(URL, {"from_date": "2026-01-01", "to_date": "2026-06-30"}).content.decode()
    assert "Select a valid choice." in text
    assert "Clients by tier on 2026-06-29 (rows)" in text  # the default matrix still shows


def test_kpis_and_league_table_are_firm_wide_for_compliance(nightly: Cast) -> None:
    text = signed_in(nightly.carol).get(URL).content.decode()
    assert "Firm-wide" in text
    overall = {
        row.definition.code: float(row.value)
        for row in MetricValue.objects.filter(as_of=D, dimension="overall").select_related("definition")
        if row.value is not None
    }
    kpi = embedded(text, "kpi-data")
    assert kpi["dates"] == ["2026-06-29", "2026-06-30"]
    series = {row["code"]: row["points"] for row in kpi["series"]}
    assert series["dormancy_rate"][-1] == pytest.approx(overall["dormancy_rate"])
    assert series["retention_rate"][-1] == pytest.approx(overall["retention_rate"])
    assert f"{overall['dormancy_rate']:.1f}%" in re.search(
        r'data-testid="kpi-dormancy_rate">(.*?)</div>', text, re.S
    ).group(1)
    league = cells(text, "league-table")
    managers = [row[1] for row in league[1:]]
    assert len(managers) == 3  # alice, bob and mike
    assert nightly.mike.employee_no in " ".join(managers)
    # largest commission share first: mike has the newcomer's 1,000
    assert nightly.mike.employee_no in managers[0]


def test_a_team_lead_sees_the_league_and_kpis_of_their_team_only(nightly: Cast) -> None:
    text = signed_in(nightly.tina).get(URL).content.decode()
    assert "Your teams" in text
    league = cells(text, "league-table")
    names = " ".join(row[1] for row in league[1:])
    assert nightly.alice.employee_no in names
    assert nightly.bob.employee_no in names
    assert nightly.mike.employee_no not in names
    # the team's figure: the managers' numerators over their denominators
    rows = MetricValue.objects.filter(
        as_of=D, dimension="account_manager", definition__code="dormancy_rate",
        account_manager__in=[nightly.alice, nightly.bob],
    )  # fmt: skip
    expected = float(sum(r.numerator for r in rows) / sum(r.denominator for r in rows) * 100)
    series = {row["code"]: row["points"] for row in embedded(text, "kpi-data")["series"]}
    assert series["dormancy_rate"][-1] == pytest.approx(expected)


def test_callback_progress_and_campaign_uplift(nightly: Cast, run_nightly: object) -> None:
    callbacks(nightly.alice_client, done=1, pending=3)
    night = D + dt.timedelta(days=1)
    assert run_nightly(night, ["callbacks"]).status == "succeeded"
    campaign(nightly.olga)
    Campaign.objects.create(name="Draft one", control_percent=20, seed=1, task_reason="x", created_by=nightly.olga)
    text = signed_in(nightly.tina).get(URL).content.decode()
    progress = cells(text, "callbacks-table")
    assert progress[1][:3] == ["Annual sample", "4", "1"]
    assert "25%" in progress[1][3]
    assert '<progress max="4" value="1"' in text
    as_of = re.search(r'data-testid="callbacks-as-of">([^<]*)<', text).group(1)
    assert as_of == "As of the start of July 2, 2026 (counted by the nightly run)."
    rows = cells(text, "campaigns-table")
    assert rows[1][0].startswith("Draft one")
    assert rows[1][4] == "—"
    assert rows[2][0].startswith("Win back")
    assert rows[2][2:] == ["30.0% n=80", "10.0% n=20", "20.0 [4.3, 35.7]"]
    chart = embedded(text, "campaign-data")
    assert chart["names"] == ["Win back"]
    assert chart["uplift"] == [pytest.approx(20.0)]
    assert chart["ci"] == [[pytest.approx(4.3), pytest.approx(35.7)]]


def test_callback_progress_is_what_the_last_night_counted(nightly: Cast, run_nightly: object) -> None:
    """The page reads the progress the callbacks stage stored (the year's callbacks are not
    counted on each request): a callback done during the day shows after the next night."""
    callbacks(nightly.alice_client, done=1, pending=3)
    assert run_nightly(D + dt.timedelta(days=1), ["callbacks"]).status == "succeeded"
    Callback.objects.filter(status="pending").update(
        status="done", completed_at=timezone.now(), identity_confirmed=True, no_unauthorised_staff_trading=True,
        risk_disclosure_understood=True, satisfaction=5,
    )  # fmt: skip
    progress = cells(signed_in(nightly.tina).get(URL).content.decode(), "callbacks-table")
    assert progress[1][:3] == ["Annual sample", "4", "1"]
    assert run_nightly(D + dt.timedelta(days=2), ["callbacks"]).status == "succeeded"
    progress = cells(signed_in(nightly.tina).get(URL).content.decode(), "callbacks-table")
    assert progress[1][:3] == ["Annual sample", "4", "4"]
    # a failed night keeps the last counted progress on the page
    from brokercrm.models import NightlyRun

    failed = run_nightly(D + dt.timedelta(days=3), ["callbacks"])
    NightlyRun.objects.filter(pk=failed.pk).update(status="failed")
    failed.stage_runs.update(status="failed", detail={})
    progress = cells(signed_in(nightly.tina).get(URL).content.decode(), "callbacks-table")
    assert progress[1][:3] == ["Annual sample", "4", "4"]


def test_the_last_nightly_run_and_its_failed_stage(nightly: Cast) -> None:
    from brokercrm.models import NightlyRun

    NightlyRun.objects.filter(as_of=D).update(status="failed", error="metrics: boom")
    NightlyRun.objects.get(as_of=D).stage_runs.filter(name="metrics").update(status="failed", error="boom")
    text = signed_in(nightly.olga).get(URL).content.decode()
    assert 'data-testid="nightly-status">Failed<' in text
    assert '<span class="mono">metrics</span>: boom' in text


# --- queries --------------------------------------------------------------------------------------


def _queries(user: object, **params: str) -> int:
    browser = signed_in(user)
    with CaptureQueriesContext(connection) as queries:
        assert browser.get(URL, params).status_code == 200
    return len(queries)


def test_a_fixed_number_of_queries_whatever_the_book(cast: Cast, run_nightly: object) -> None:
    empty = {who: _queries(getattr(cast, who)) for who in ("tina", "carol")}
    campaign(cast.olga)
    callbacks(cast.alice_client, done=1, pending=2)
    make_book([30, 20, 10], as_of=D, manager=cast.alice)
    run_nightly(D0, ["rollup", "tiers", "callbacks", "metrics"])
    run_nightly(D, ["rollup", "tiers", "callbacks", "metrics"])
    small = {who: _queries(getattr(cast, who)) for who in ("tina", "carol")}
    chosen = _queries(cast.carol, from_date=D0.isoformat(), to_date=D.isoformat())

    # ten times the clients, the managers, the campaigns and the callbacks
    for index in range(27):
        manager = factories.AccountManagerFactory(team=cast.team if index % 2 else cast.other_team)
        make_book([index + 1, 1], as_of=D, manager=manager)
    for index in range(12):
        campaign(cast.olga, name=f"Campaign {index}")
    callbacks(cast.bob_client, done=10, pending=20)
    run_nightly(D0, ["rollup", "tiers", "callbacks", "metrics"])
    run_nightly(D, ["rollup", "tiers", "callbacks", "metrics"])
    large = {who: _queries(getattr(cast, who)) for who in ("tina", "carol")}

    assert large == small
    assert chosen == small["carol"]  # the two runs, then their stored matrix
    # session, user, roles; nightly run + stages; callbacks 1 (the last night's); tiers 4 (current date, its run, recent
    # runs, migration); KPIs 11 (snapshot, rows, managers, 7 definitions, the trend rows); campaigns
    assert small == {"tina": 16, "carol": 16}
    assert empty == {"tina": 8, "carol": 8}
    assert Decimal(len(MetricValue.objects.filter(dimension="account_manager", as_of=D))) > 30


def test_dates_further_apart_are_compared_in_sql_with_the_api_numbers(cast: Cast, run_nightly: object) -> None:
    make_book([100, 50, 20, 10, 5], as_of=D, manager=cast.alice)
    for day in (D - dt.timedelta(days=2), D0):
        run_nightly(day, ["rollup", "tiers", "metrics"])
    add_trade(cast.bob_client, commission="1000", when=local_noon(D))
    run_nightly(D, ["rollup", "tiers", "metrics"])
    params = {"from_date": "2026-06-28", "to_date": "2026-06-30"}
    default = _queries(cast.carol)
    assert _queries(cast.carol, **params) <= default + 1  # the matrix: one aggregate query
    text = signed_in(cast.carol).get(URL, params).content.decode()
    assert "Clients by tier on 2026-06-28 (rows) and on 2026-06-30 (columns)." in text
    api = signed_in(cast.carol).get("/api/v1/tiers/migration/", {"from": "2026-06-28", "to": "2026-06-30"}).json()
    codes = ["vip", "major", "ordinary", "small", "none"]
    for row, before in zip(cells(text, "migration-table")[1:], codes, strict=True):
        assert row[1:6] == [str(api["matrix"][before][after]) for after in codes]
    assert api["matrix"]["small"]["vip"] == 1  # bob's client went straight to the top
