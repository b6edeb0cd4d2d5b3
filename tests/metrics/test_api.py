"""The metrics API: dashboard bundle and series, scoped by role, with pinned query counts."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from metrics.snapshot import snapshot_compute
from tests import factories
from tests.conftest import Cast
from tests.segmentation.books import add_trade, local_noon

pytestmark = pytest.mark.django_db

D = dt.date(2026, 6, 30)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_retention_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("metrics.snapshot.optional_source", lambda name: None)


def api_as(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def snapshots(cast: Cast) -> Cast:
    add_trade(cast.alice_client, commission="100", when=local_noon(D - dt.timedelta(days=3)))
    add_trade(cast.mike_client, commission="40", when=local_noon(D - dt.timedelta(days=40)))
    from segmentation.rollup import activity_rollup

    activity_rollup()
    snapshot_compute(as_of=D - dt.timedelta(days=1))
    snapshot_compute(as_of=D)
    return cast


def keys(rows: list[dict], dimension: str) -> set[str]:
    return {row["key"] for row in rows if row["dimension"] == dimension}


def test_dashboard_rows_follow_the_users_scope(snapshots: Cast) -> None:
    cast = snapshots
    everything = api_as(cast.carol).get("/api/v1/metrics/dashboard/").json()
    assert everything["as_of"] == D.isoformat()
    assert keys(everything["rows"], "overall") == {""}
    assert keys(everything["rows"], "account_manager") == {str(m.pk) for m in (cast.alice, cast.bob, cast.mike)}

    alice = api_as(cast.alice.user).get("/api/v1/metrics/dashboard/").json()
    assert {row["dimension"] for row in alice["rows"]} == {"account_manager"}
    assert keys(alice["rows"], "account_manager") == {str(cast.alice.pk)}
    assert {row["label"] for row in alice["rows"]} == {cast.alice.employee_no}

    tina = api_as(cast.tina).get("/api/v1/metrics/dashboard/").json()
    assert keys(tina["rows"], "account_manager") == {str(cast.alice.pk), str(cast.bob.pk)}
    assert {row["dimension"] for row in tina["rows"]} == {"account_manager"}

    nobody = factories.UserFactory(username="no_role_nina")
    assert api_as(nobody).get("/api/v1/metrics/dashboard/").json()["rows"] == []


def test_dashboard_values_are_the_stored_numbers(snapshots: Cast) -> None:
    rows = api_as(snapshots.olga).get("/api/v1/metrics/dashboard/").json()["rows"]
    by = {(row["metric"], row["dimension"], row["key"]): row for row in rows}
    assert by[("clients", "overall", "")]["value"] == "3.0000"
    alice_share = by[("commission_share", "account_manager", str(snapshots.alice.pk))]
    assert alice_share["value"] == f"{100 / 140 * 100:.4f}"
    assert alice_share["version"] == 1
    assert alice_share["unit"] == "percent"


def test_dashboard_costs_the_same_queries_for_3_or_30_managers(snapshots: Cast, django_assert_num_queries) -> None:
    api = api_as(snapshots.carol)
    api.get("/api/v1/metrics/dashboard/")
    with django_assert_num_queries(5) as small:  # session, user, roles, snapshot, rows
        few = api.get("/api/v1/metrics/dashboard/").json()["rows"]
    # given 27 more managers with clients
    for _ in range(27):
        factories.ClientFactory(account_manager=factories.AccountManagerFactory(team=snapshots.team))
    snapshot_compute(as_of=D)
    with django_assert_num_queries(len(small.captured_queries)):
        many = api.get("/api/v1/metrics/dashboard/").json()["rows"]
    assert len(keys(many, "account_manager")) == 30
    assert len(many) > len(few)


def test_series_filters_and_scope(snapshots: Cast) -> None:
    cast = snapshots
    url = "/api/v1/metrics/series/?metric=clients&dimension=overall"
    rows = api_as(cast.system).get(url).json()["results"]
    assert [row["as_of"] for row in rows] == [(D - dt.timedelta(days=1)).isoformat(), D.isoformat()]
    one = api_as(cast.system).get(url + f"&from={D}&to={D}").json()["results"]
    assert [row["as_of"] for row in one] == [D.isoformat()]
    # an account manager sees only her own rows, whatever she asks for
    assert api_as(cast.alice.user).get(url).json()["results"] == []
    own = api_as(cast.alice.user).get("/api/v1/metrics/series/?metric=clients").json()["results"]
    assert {row["key"] for row in own} == {str(cast.alice.pk)}
    assert len(own) == 2


@pytest.mark.parametrize(
    "query",
    ["", "metric=nope", "metric=nps&dimension=planet", "metric=nps&from=yesterday", "metric=nps&version=x"],
)
def test_series_rejects_malformed_filters(snapshots: Cast, query: str) -> None:
    response = api_as(snapshots.olga).get(f"/api/v1/metrics/series/?{query}")
    assert response.status_code == 400


def test_series_costs_the_same_queries_at_any_page_size(snapshots: Cast, django_assert_num_queries) -> None:
    api = api_as(snapshots.olga)
    url = "/api/v1/metrics/series/?metric=clients"
    api.get(url + "&page_size=1")
    with django_assert_num_queries(5) as small:
        assert len(api.get(url + "&page_size=2").json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(api.get(url + "&page_size=8").json()["results"]) == 8


def test_definitions_are_listed_with_their_formulas(snapshots: Cast) -> None:
    rows = api_as(snapshots.alice.user).get("/api/v1/metrics/definitions/?page_size=100").json()["results"]
    churn = next(row for row in rows if row["code"] == "churn_rate")
    assert churn["version"] == 1
    assert "lost" in churn["formula"]


def test_series_shows_each_date_in_the_version_in_force(snapshots: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    from metrics import definitions as catalogue
    from metrics import services

    later = D + dt.timedelta(days=1)
    clients = next(entry for entry in catalogue.CATALOGUE if entry.code == "clients")
    v2 = catalogue.Definition(**{**clients.__dict__, "version": 2, "formula": "Clients open on D (v2)."})
    services.definitions_sync((*catalogue.CATALOGUE, catalogue.Definition(**{**v2.__dict__, "effective_from": later})))
    monkeypatch.setitem(services.IMPLEMENTED, "clients", {1, 2})
    snapshot_compute(as_of=later)
    api = api_as(snapshots.olga)
    url = "/api/v1/metrics/series/?metric=clients&dimension=overall"
    rows = api.get(url).json()["results"]
    assert [(row["as_of"], row["version"]) for row in rows] == [
        ((D - dt.timedelta(days=1)).isoformat(), 1),
        (D.isoformat(), 1),
        (later.isoformat(), 2),
    ]
    assert [row["as_of"] for row in api.get(url + "&version=2").json()["results"]] == [later.isoformat()]
