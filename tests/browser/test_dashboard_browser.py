"""A real browser: a team lead reads the management dashboard; the charts are drawn by the
Chart.js this server serves (no request leaves it), and without JavaScript the tables remain."""

import datetime as dt

import pytest
from django.utils import timezone

from retention.work.models import Campaign
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import add_trade, local_noon, make_book

__all__ = ["eager_celery", "run_nightly"]

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
D = dt.date(2026, 6, 30)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAWN = """() => [...document.querySelectorAll("canvas")].map((canvas) => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
  return {id: canvas.id, chart: !!Chart.getChart(canvas), painted: painted, width: canvas.width};
})"""


def test_a_team_lead_reads_the_dashboards_with_charts_served_here(live_server, page, screenshot_dir, cast, run_nightly):
    # given: two nights over a small book of tina's team and another team
    make_book([100, 50, 20, 10, 5, 1, 0], as_of=D, manager=cast.alice)
    make_book([300, 2, 1], as_of=D, manager=cast.bob)
    make_book([40, 30], as_of=D, manager=cast.mike)
    run_nightly(D - dt.timedelta(days=1), ["rollup", "tiers", "metrics"])
    add_trade(cast.mike_client, commission="1000", when=local_noon(D))
    assert run_nightly(D, ["rollup", "tiers", "metrics"]).status == "succeeded"
    report = {"treated_n": 80, "treated_rate": 0.3, "control_n": 20, "control_rate": 0.1}
    Campaign.objects.create(
        name="Win back", control_percent=20, seed=7, task_reason="Call", status="measured", launched_on=D,
        report={**report, "uplift": 0.2, "ci_low": 0.043, "ci_high": 0.357}, measured_at=timezone.now(),
        created_by=cast.olga,
    )  # fmt: skip
    requests, responses = [], {}
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: responses.__setitem__(response.url, response.status))

    # when: tina signs in and opens the dashboard
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("lead_tina")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/dashboards/")
    page.wait_for_function("() => document.getElementById('dashboard').classList.contains('has-charts')")

    # then: every chart is drawn by Chart.js, on a canvas with painted pixels
    assert page.get_by_role("heading", name="Management dashboard").is_visible()
    canvases = page.evaluate(DRAWN)
    ids = {canvas["id"] for canvas in canvases}
    # KPIs this book does not measure (no survey, no complaint answered) have no chart, only "—"
    assert {
        "pareto-chart",
        "tiers-chart",
        "kpi-chart-dormancy_rate",
        "kpi-chart-retention_rate",
        "campaign-chart",
    } <= ids
    assert "kpi-chart-nps" not in ids
    for canvas in canvases:
        assert canvas["chart"], canvas
        assert canvas["width"] > 0, canvas
        assert canvas["painted"] > 0, canvas
    assert page.evaluate("() => Chart.version").startswith("4.")

    # and: what a manager reads
    assert page.get_by_test_id("top20").inner_text().endswith("%")
    league = page.get_by_test_id("league-table").inner_text()
    assert cast.alice.employee_no in league
    assert cast.bob.employee_no in league
    assert cast.mike.employee_no not in league  # another team
    assert "Your teams" in page.locator("#kpi-heading").inner_text()
    assert "20.0 [4.3, 35.7]" in page.get_by_test_id("campaigns-table").inner_text()
    page.screenshot(path=str(screenshot_dir / "management_dashboard.png"), full_page=True)

    # and: Chart.js and the page's script come from this server; nothing else was asked for
    chart_js = [url for url in requests if url.endswith("/static/vendor/chartjs/chart.umd.min.js")]
    assert chart_js
    assert responses[chart_js[0]] == 200
    assert any(url.endswith("/static/brokercrm/dashboard.js") for url in requests)
    assert all(url.startswith(live_server.url) for url in requests), [
        url for url in requests if not url.startswith(live_server.url)
    ]

    # when: she compares two dates with the keyboard-usable form
    page.get_by_label("From date", exact=True).select_option("2026-06-29")
    page.get_by_label("To date", exact=True).select_option("2026-06-30")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/dashboards/?from_date=2026-06-29&to_date=2026-06-30*")
    assert "Clients by tier on 2026-06-29 (rows) and on 2026-06-30 (columns)." in page.content()
    assert page.get_by_test_id("migration-table").is_visible()
    assert page.get_by_label("From date", exact=True).input_value() == "2026-06-29"


def test_without_javascript_the_numbers_are_tables(live_server, chromium, screenshot_dir, cast, run_nightly):
    make_book([100, 50, 20, 10, 5, 1], as_of=D, manager=cast.alice)
    run_nightly(D, ["rollup", "tiers", "metrics"])
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("compliance_carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/dashboards/")
        assert page.get_by_test_id("pareto-table").is_visible()
        assert "VIP" in page.get_by_test_id("pareto-table").inner_text()
        assert page.get_by_test_id("league-table").is_visible()
        assert not page.locator("#pareto-chart").is_visible()  # no script, no empty chart frames
        page.screenshot(path=str(screenshot_dir / "management_dashboard_no_js.png"), full_page=True)
    finally:
        context.close()
