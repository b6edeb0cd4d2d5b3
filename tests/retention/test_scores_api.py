"""The scores API: scope by role, filters (VIP and Major with risk >= 70 by value at risk), keyset
pages, reasons in words, query counts, and the admin lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from clients.models import Client
from retention.models import ChurnScore, ClientActivity, LifetimeFit
from segmentation.models import ResultSet, Tier
from tests.conftest import Cast
from tests.segmentation.books import make_clients

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
GENERATION = 41
OUTFLOW = {"code": "outflow", "points": 40, "facts": {"share": 0.62, "window": 30, "amount": 62000.0}}


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def api_as(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def publish(kind: str, generation: int = GENERATION) -> None:
    ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=generation)


def score(client: Client, *, risk: int, tier: int, value: str, generation: int = GENERATION) -> ChurnScore:
    return ChurnScore.objects.create(
        generation=generation,
        as_of=AS_OF,
        client=client,
        tier=tier,
        segment="potentially_active",
        risk=risk,
        p_alive=0.4,
        clv=Decimal(value),
        clv_simple=Decimal(value),
        value_at_risk=Decimal(value) * risk / 100,
        reasons=[OUTFLOW],
        signals={"outflow": 1.0},
    )


def activity(client: Client, *, segment: str = "active", days: int = 5, about: bool = False) -> ClientActivity:
    return ClientActivity.objects.create(
        generation=GENERATION,
        as_of=AS_OF,
        client=client,
        segment=segment,
        days_since_last_trade=days,
        trading_days=40,
        recent_trading_days=3,
        about_to_go_dormant=about,
    )


@pytest.fixture
def scored(cast: Cast) -> Cast:
    publish(ResultSet.Kind.CHURN)
    publish(ResultSet.Kind.ACTIVITY)
    score(cast.alice_client, risk=80, tier=Tier.VIP, value="10000")
    score(cast.bob_client, risk=75, tier=Tier.MAJOR, value="4000")
    score(cast.mike_client, risk=90, tier=Tier.VIP, value="20000")
    for client in make_clients(3, manager=cast.alice):
        score(client, risk=30, tier=Tier.SMALL, value="100")
    activity(cast.alice_client, segment="potentially_active", days=40, about=True)
    activity(cast.bob_client)
    activity(cast.mike_client, segment="dormant", days=400)
    # An unpublished generation (a run in progress) is never shown.
    score(cast.alice_client, risk=1, tier=Tier.SMALL, value="1", generation=GENERATION + 1)
    return cast


def client_nos(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["client_no"] for row in response.json()["results"]]


def test_each_role_sees_its_scope(scored: Cast) -> None:
    url = "/api/v1/churn-scores/"
    alice = client_nos(api_as(scored.alice.user).get(url))
    assert scored.alice_client.client_no in alice
    assert len(alice) == 4
    assert scored.mike_client.client_no not in alice
    lead = client_nos(api_as(scored.tina).get(url))
    assert {scored.alice_client.client_no, scored.bob_client.client_no} <= set(lead)
    assert scored.mike_client.client_no not in lead
    assert len(client_nos(api_as(scored.carol).get(url))) == 6
    assert api_as(scored.alice.user).get(f"/api/v1/clients/{scored.mike_client.client_no}/scores/").status_code == 404
    assert APIClient().get(url).status_code == 403


def test_vip_and_major_at_risk_by_value_at_risk(scored: Cast) -> None:
    rows = api_as(scored.carol).get("/api/v1/churn-scores/?tier=vip&tier=major&min_risk=70").json()["results"]
    assert [row["client_no"] for row in rows] == [
        scored.mike_client.client_no,  # 20000 x 0.90
        scored.alice_client.client_no,  # 10000 x 0.80
        scored.bob_client.client_no,  # 4000 x 0.75
    ]
    assert rows[0]["tier"] == "vip"
    assert rows[0]["value_at_risk"] == "18000.00"
    assert rows[0]["reasons"][0]["text"] == "Moved out 62% of assets in 30 days (net 62,000 withdrawn)"
    by_risk = api_as(scored.carol).get("/api/v1/churn-scores/?ordering=-risk&min_risk=50").json()["results"]
    assert [row["risk"] for row in by_risk] == [90, 80, 75]


def test_filter_by_the_strongest_reason_and_the_share_moved_out(scored: Cast) -> None:
    """The reasons are columns: ?reason= is the strongest one, ?min_outflow_share= the measured share."""
    losing = ChurnScore.objects.get(generation=GENERATION, client=scored.bob_client)
    losing.reasons = [{"code": "losses", "points": 30, "facts": {"amount": 9000.0, "closes": 4, "window": 90}}]
    losing.outflow_share = 0.1
    losing.save()
    api = api_as(scored.carol)
    by_losses = client_nos(api.get("/api/v1/churn-scores/?reason=losses"))
    assert by_losses == [scored.bob_client.client_no]
    assert len(client_nos(api.get("/api/v1/churn-scores/?reason=outflow&reason=losses"))) == 6
    moved_out = client_nos(api.get("/api/v1/churn-scores/?min_outflow_share=0.5"))
    assert len(moved_out) == 5  # every score's outflow fact is 0.62 but Bob's
    assert scored.bob_client.client_no not in moved_out
    assert api.get("/api/v1/churn-scores/?reason=moon").status_code == 400
    assert api.get("/api/v1/churn-scores/?min_outflow_share=2").status_code == 400


@pytest.mark.parametrize("query", ["tier=0.5", "tier=gold", "min_risk=abc", "min_risk=101", "segment=asleep"])
def test_malformed_filters_answer_400(scored: Cast, query: str) -> None:
    assert api_as(scored.carol).get(f"/api/v1/churn-scores/?{query}").status_code == 400


def test_keyset_pages_walk_every_row_once(scored: Cast) -> None:
    client = api_as(scored.carol)
    seen, url = [], "/api/v1/churn-scores/?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["client_no"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == 6


def test_activity_list_finds_the_about_to_go_dormant(scored: Cast) -> None:
    rows = client_nos(api_as(scored.carol).get("/api/v1/activity/?about_to_go_dormant=true"))
    assert rows == [scored.alice_client.client_no]
    assert client_nos(api_as(scored.alice.user).get("/api/v1/activity/?segment=dormant")) == []
    assert client_nos(api_as(scored.carol).get("/api/v1/activity/?segment=dormant")) == [scored.mike_client.client_no]


def test_a_clients_scores(scored: Cast) -> None:
    body = api_as(scored.alice.user).get(f"/api/v1/clients/{scored.alice_client.client_no}/scores/").json()
    assert body["activity"]["segment"] == "potentially_active"
    assert body["activity"]["about_to_go_dormant"]
    assert body["churn"]["risk"] == 80
    assert body["churn"]["reasons"][0]["code"] == "outflow"


def test_a_client_without_scores_is_404(cast: Cast) -> None:
    url = f"/api/v1/clients/{cast.alice_client.client_no}/scores/"
    assert api_as(cast.alice.user).get(url).status_code == 404


def test_lists_cost_the_same_queries_for_3_or_30_rows(cast: Cast) -> None:
    publish(ResultSet.Kind.CHURN)
    publish(ResultSet.Kind.ACTIVITY)
    clients = make_clients(30, manager=cast.alice)

    def count(n: int, url: str) -> int:
        api = api_as(cast.alice.user)
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"{url}?page_size={n}").status_code == 200
        return len(queries)

    for client in clients:
        score(client, risk=50, tier=Tier.SMALL, value="10")
        activity(client)
    for url in ("/api/v1/churn-scores/", "/api/v1/activity/"):
        assert count(3, url) == count(30, url) <= 8


def test_lifetime_fits_are_for_dashboard_roles(scored: Cast) -> None:
    LifetimeFit.objects.create(as_of=AS_OF, status="ok", r=1.1, alpha=4.2, a=0.2, b=3.0, customers=1000)
    assert api_as(scored.alice.user).get("/api/v1/lifetime-fits/").status_code == 403
    body = api_as(scored.tina).get("/api/v1/lifetime-fits/").json()
    assert body["results"][0]["status"] == "ok"
    assert body["results"][0]["r"] == 1.1


def test_admin_lists_published_scores_in_scope(scored: Cast) -> None:
    from django.test import Client as Browser

    from brokercrm.services import roles_ensure

    roles_ensure()  # ops' admin permissions, as on every deployment
    browser = Browser()
    browser.force_login(scored.olga)
    page = browser.get("/admin/retention/churnscore/?risk_band=70")
    assert page.status_code == 200
    text = page.content.decode()
    assert scored.mike_client.client_no in text
    assert "Moved out 62% of assets" in text
    assert browser.get("/admin/retention/clientactivity/?about_to_go_dormant__exact=1").status_code == 200
    assert browser.get("/admin/retention/lifetimefit/").status_code == 200
