"""The segmentation API: scope, filters, keyset pages, query counts, aggregates, overrides."""

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from brokercrm.models import RunStatus
from segmentation.models import Tier, TierOverride, TierOverrideAudit, TierResult
from tests.conftest import Cast
from tests.segmentation.books import add_assets, add_trade, local_noon, make_book

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
SEGMENT = ["rollup", "tiers", "reactivation", "needs"]


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()  # throttle histories and cached migration matrices
    yield
    cache.clear()


def api_as(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def tiered(cast: Cast, run_nightly: Callable) -> Cast:
    """The cast's books with commission, tiered on the day before AS_OF and on AS_OF.

    alice: her named client + 12 more; bob: his client + 4; mike: his client + 8.
    """
    make_book([index * 10 + 5 for index in range(12)], as_of=AS_OF, manager=cast.alice)
    make_book([index * 10 + 7 for index in range(4)], as_of=AS_OF, manager=cast.bob)
    make_book([index * 10 + 3 for index in range(8)], as_of=AS_OF, manager=cast.mike)
    add_trade(cast.alice_client, commission="2", when=local_noon(AS_OF - dt.timedelta(days=3)))
    add_trade(cast.mike_client, commission="1000", when=local_noon(AS_OF - dt.timedelta(days=3)))
    add_assets(cast.bob_client, as_of=AS_OF, total=50_000_000)
    assert run_nightly(AS_OF - dt.timedelta(days=1), SEGMENT).status == RunStatus.SUCCEEDED
    add_trade(cast.bob_client, commission="5000", when=local_noon(AS_OF))  # bob's client jumps to VIP
    run = run_nightly(AS_OF, SEGMENT)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return cast


def client_nos(response) -> list[str]:
    return [row["client_no"] for row in response.json()["results"]]


def all_pages(api: APIClient, url: str) -> list[dict]:
    rows = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        rows.extend(response.json()["results"])
        url = response.json()["next"]
    return rows


def test_current_tiers_are_scoped_to_the_users_book(tiered: Cast) -> None:
    alice_rows = all_pages(api_as(tiered.alice.user), "/api/v1/tiers/?page_size=5")
    assert len(alice_rows) == 13
    assert {row["account_manager"] for row in alice_rows} == {tiered.alice.employee_no}
    lead_rows = all_pages(api_as(tiered.tina), "/api/v1/tiers/")
    assert {row["account_manager"] for row in lead_rows} == {tiered.alice.employee_no, tiered.bob.employee_no}
    assert len(all_pages(api_as(tiered.carol), "/api/v1/tiers/")) == TierResult.objects.filter(as_of=AS_OF).count()


def test_keyset_pages_walk_the_whole_list_in_rank_order_without_repeats(tiered: Cast) -> None:
    rows = all_pages(api_as(tiered.olga), "/api/v1/tiers/?page_size=4")
    keys = [(row["rank"], row["client_no"]) for row in rows]
    assert len(rows) == TierResult.objects.filter(as_of=AS_OF).count()
    assert len(set(keys)) == len(keys)
    assert [row["rank"] for row in rows] == sorted(row["rank"] for row in rows)
    assert rows[0]["tier"] == "vip"


def test_filters_by_tier_manager_branch_and_change(tiered: Cast) -> None:
    api = api_as(tiered.olga)
    vip = all_pages(api, "/api/v1/tiers/?tier=vip")
    assert {row["tier"] for row in vip} == {"vip"}
    assert len(vip) == TierResult.objects.filter(as_of=AS_OF, tier=Tier.VIP).count()
    mike = all_pages(api, f"/api/v1/tiers/?manager={tiered.mike.employee_no}")
    assert len(mike) == 9
    assert all_pages(api, "/api/v1/tiers/?branch=SH01")
    assert all_pages(api, "/api/v1/tiers/?branch=NOPE") == []
    up = all_pages(api, "/api/v1/tiers/?change=up")
    assert tiered.bob_client.client_no in [row["client_no"] for row in up]
    assert {row["change"] for row in up} == {"up"}


@pytest.mark.parametrize("query", ["tier=0.5", "tier=gold", "change=sideways", "as_of=yesterday", "page_size=0"])
def test_malformed_filters_answer_400(tiered: Cast, query: str) -> None:
    assert api_as(tiered.olga).get(f"/api/v1/tiers/?{query}").status_code == 400


def test_an_unpublished_date_answers_404(tiered: Cast) -> None:
    assert api_as(tiered.olga).get("/api/v1/tiers/?as_of=2020-01-01").status_code == 404


def test_the_tier_list_costs_the_same_queries_at_any_page_size(tiered: Cast, django_assert_num_queries) -> None:
    api = api_as(tiered.carol)
    api.get("/api/v1/tiers/?page_size=1")  # session and roles warmed up alike below
    with django_assert_num_queries(5) as small:
        assert len(api.get("/api/v1/tiers/?page_size=2").json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(api.get("/api/v1/tiers/?page_size=25").json()["results"]) == 25


def test_an_override_wins_and_the_computed_tier_stays_beside_it(tiered: Cast) -> None:
    # given a Small client of alice's
    small = TierResult.objects.filter(as_of=AS_OF, tier=Tier.SMALL, client__account_manager=tiered.alice).first()
    client_no = small.client.client_no
    url = f"/api/v1/clients/{client_no}/tier-overrides/"
    payload = {
        "tier": "vip",
        "reason": "Strategic account",
        "expires_on": str(timezone.localdate() + dt.timedelta(days=30)),
    }

    # account managers may not override; their team lead may
    assert api_as(tiered.alice.user).post(url, payload, format="json").status_code == 403
    created = api_as(tiered.tina).post(url, payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["audit"][0]["action"] == "created"
    assert created.json()["audit"][0]["computed_tier"] == "small"

    rows = {row["client_no"]: row for row in all_pages(api_as(tiered.tina), "/api/v1/tiers/?tier=vip")}
    assert rows[client_no]["tier"] == "vip"
    assert rows[client_no]["computed_tier"] == "small"
    assert rows[client_no]["override_tier"] == "vip"
    assert client_no not in client_nos(api_as(tiered.tina).get("/api/v1/tiers/?tier=small&page_size=100"))

    # ending it needs a reason and is audited; the computed tier applies again
    override_id = created.json()["id"]
    assert api_as(tiered.tina).post(f"/api/v1/tier-overrides/{override_id}/end/", {}, format="json").status_code == 400
    ended = api_as(tiered.olga).post(
        f"/api/v1/tier-overrides/{override_id}/end/", {"reason": "Review done"}, format="json"
    )
    assert ended.status_code == 200
    assert [audit.action for audit in TierOverrideAudit.objects.order_by("id")] == ["created", "ended"]
    rows = {row["client_no"]: row for row in all_pages(api_as(tiered.tina), "/api/v1/tiers/?tier=small")}
    assert rows[client_no]["tier"] == "small"


def test_override_rules(tiered: Cast) -> None:
    url = f"/api/v1/clients/{tiered.mike_client.client_no}/tier-overrides/"
    future = str(timezone.localdate() + dt.timedelta(days=30))
    # tina leads alice and bob, not mike: mike's client does not exist for her
    assert (
        api_as(tiered.tina).post(url, {"tier": "vip", "reason": "x", "expires_on": future}, format="json").status_code
        == 404
    )
    ops = api_as(tiered.olga)
    assert ops.post(url, {"tier": "vip", "reason": " ", "expires_on": future}, format="json").status_code == 400
    past = str(timezone.localdate() - dt.timedelta(days=1))
    response = ops.post(url, {"tier": "vip", "reason": "x", "expires_on": past}, format="json")
    assert response.json() == {"detail": "The expiry date must not be before the start date or today."}
    too_far = str(timezone.localdate() + dt.timedelta(days=400))
    assert ops.post(url, {"tier": "vip", "reason": "x", "expires_on": too_far}, format="json").status_code == 400
    assert ops.post(url, {"tier": "gold", "reason": "x", "expires_on": future}, format="json").status_code == 400
    # a second override replaces the first: one open override per client
    assert ops.post(url, {"tier": "vip", "reason": "a", "expires_on": future}, format="json").status_code == 201
    assert ops.post(url, {"tier": "major", "reason": "b", "expires_on": future}, format="json").status_code == 201
    assert TierOverride.objects.filter(client=tiered.mike_client, ended_at__isnull=True).count() == 1


def test_overrides_expire_in_the_nightly_run_with_an_audit_row(tiered: Cast, run_nightly: Callable) -> None:
    override = TierOverride.objects.create(
        client=tiered.alice_client,
        tier=Tier.VIP,
        reason="Launch campaign",
        starts_on=AS_OF - dt.timedelta(days=10),
        expires_on=AS_OF,
        created_by=tiered.olga,
    )
    assert run_nightly(AS_OF + dt.timedelta(days=1), ["tiers"]).status == RunStatus.SUCCEEDED
    override.refresh_from_db()
    assert override.ended_at is not None
    assert TierOverrideAudit.objects.get(override=override).action == "expired"
    assert run_nightly(AS_OF + dt.timedelta(days=1), ["tiers"]).status == RunStatus.SUCCEEDED
    assert TierOverrideAudit.objects.filter(override=override).count() == 1


def test_a_clients_tier_history(tiered: Cast) -> None:
    response = api_as(tiered.bob.user).get(f"/api/v1/clients/{tiered.bob_client.client_no}/tiers/")
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == str(AS_OF)
    assert body["current"]["tier"] == "vip"
    assert body["changes"][0] == {
        "as_of": str(AS_OF),
        "tier": "vip",
        "previous_tier": body["changes"][0]["previous_tier"],
        "value": "5000.00",
        "rank": 1,
        "percentile": 0.0,
    }
    assert body["changes"][0]["previous_tier"] != "vip"


@pytest.mark.parametrize("path", ["tiers", "needs"])
def test_a_client_outside_the_scope_does_not_exist(tiered: Cast, path: str) -> None:
    assert api_as(tiered.alice.user).get(f"/api/v1/clients/{tiered.mike_client.client_no}/{path}/").status_code == 404
    assert api_as(tiered.alice.user).get(f"/api/v1/clients/{tiered.alice_client.client_no}/{path}/").status_code == 200


def test_needs_profile_of_a_client(tiered: Cast) -> None:
    body = api_as(tiered.carol).get(f"/api/v1/clients/{tiered.bob_client.client_no}/needs/").json()
    assert body["as_of"] == str(AS_OF)
    assert body["trades"] == 1
    assert body["holding_style"] == "unknown"  # one trade defines no style


def test_aggregates_are_for_leads_and_firm_wide_roles(tiered: Cast) -> None:
    for path in ("tiers/runs/", "tiers/pareto/", "tiers/migration/", "nightly-runs/"):
        assert api_as(tiered.alice.user).get(f"/api/v1/{path}").status_code == 403, path
        assert api_as(tiered.tina).get(f"/api/v1/{path}").status_code == 200, path


def test_pareto_and_migration(tiered: Cast) -> None:
    api = api_as(tiered.carol)
    pareto = api.get("/api/v1/tiers/pareto/").json()
    population = TierResult.objects.filter(as_of=AS_OF).count()
    assert pareto["as_of"] == str(AS_OF)
    assert sum(step["clients"] for step in pareto["steps"]) == population
    assert [step["tier"] for step in pareto["steps"]] == ["vip", "major", "ordinary", "small"]
    assert 0 < pareto["top20_share"] <= 1
    assert api.get("/api/v1/tiers/pareto/?as_of=2020-01-01").status_code == 404

    default = api.get("/api/v1/tiers/migration/").json()
    assert default["from_as_of"] == str(AS_OF - dt.timedelta(days=1))
    explicit = api.get(f"/api/v1/tiers/migration/?from={AS_OF - dt.timedelta(days=1)}&to={AS_OF}").json()
    assert explicit["matrix"] == default["matrix"]
    assert sum(sum(row.values()) for row in explicit["matrix"].values()) == population
    # the SQL path (two stored dates, not previous->current) agrees with the stored matrix
    reverse = api.get(f"/api/v1/tiers/migration/?from={AS_OF}&to={AS_OF - dt.timedelta(days=1)}").json()["matrix"]
    for before, row in default["matrix"].items():
        for after, count in row.items():
            assert reverse[after][before] == count


def test_runs_and_reactivation_lists(tiered: Cast) -> None:
    runs = api_as(tiered.olga).get("/api/v1/nightly-runs/").json()
    assert runs["results"][0]["as_of"] == str(AS_OF)
    assert [stage["name"] for stage in runs["results"][0]["stages"]] == SEGMENT
    detail = api_as(tiered.olga).get(f"/api/v1/nightly-runs/{AS_OF}/")
    assert detail.json()["status"] == "succeeded"
    tier_runs = api_as(tiered.olga).get("/api/v1/tiers/runs/").json()
    assert [run["as_of"] for run in tier_runs["results"]] == [str(AS_OF), str(AS_OF - dt.timedelta(days=1))]
    # bob's client: richest in custody but, on the first date, no commission
    listed = api_as(tiered.tina).get("/api/v1/reactivation/").json()["results"]
    assert listed == []  # on AS_OF it trades: no longer low activity
    assert api_as(tiered.alice.user).get("/api/v1/reactivation/").status_code == 200
