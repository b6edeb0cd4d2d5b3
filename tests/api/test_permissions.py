"""The one permission policy, seen through every client-data endpoint, for every role of the cast.

An account manager sees their own book, a team lead their team's books, compliance, ops
and the API system user everything, a user without a role nothing; a client outside the
scope answers 404 (never 403) on detail and on its sub-lists, and never appears in a list.
"""

from collections.abc import Callable

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests import factories
from tests.conftest import Cast

ALL = frozenset({"alice", "bob", "mike"})

# who -> (how to get the user from the cast, whose clients they may see)
SCOPES: dict[str, tuple[Callable[[Cast], object], frozenset[str]]] = {
    "alice (account manager)": (lambda c: c.alice.user, frozenset({"alice"})),
    "bob (account manager)": (lambda c: c.bob.user, frozenset({"bob"})),
    "mike (other team's manager)": (lambda c: c.mike.user, frozenset({"mike"})),
    "tina (team lead of alice and bob)": (lambda c: c.tina, frozenset({"alice", "bob"})),
    "carol (compliance)": (lambda c: c.carol, ALL),
    "dave (compliance)": (lambda c: c.dave, ALL),
    "olga (ops)": (lambda c: c.olga, ALL),
    "system (API system)": (lambda c: c.system, ALL),
    "nina (no role)": (lambda c: factories.UserFactory(username="no_role_nina"), frozenset()),
}


@pytest.fixture
def ledger(cast: Cast) -> dict[str, str]:
    """One row of every kind for each cast client; returns owner -> client_no."""
    owners = {"alice": cast.alice_client, "bob": cast.bob_client, "mike": cast.mike_client}
    for client in owners.values():
        factories.TradeFactory(client=client)
        factories.CashFlowFactory(client=client)
        factories.AssetSnapshotFactory(client=client)
        factories.InteractionFactory(client=client)
        factories.KYCProfileFactory(client=client)
    return {owner: client.client_no for owner, client in owners.items()}


def _client_nos(response: object) -> set[str]:
    body = response.json()
    return {row["client_no"] if "client_no" in row else row["client"] for row in body["results"]}


@pytest.mark.parametrize("who", list(SCOPES))
def test_lists_contain_exactly_the_clients_in_scope(who: str, cast: Cast, ledger: dict[str, str], api_as) -> None:
    get_user, visible = SCOPES[who]
    api = api_as(get_user(cast))
    expected = {ledger[owner] for owner in visible}

    for name in ("client-list", "trade-list", "cash-flow-list", "asset-snapshot-list"):
        response = api.get(reverse(f"clients_api:{name}"))
        assert response.status_code == 200, name
        assert _client_nos(response) == expected, name


@pytest.mark.parametrize("who", list(SCOPES))
def test_detail_and_sub_lists_answer_404_outside_the_scope(
    who: str, cast: Cast, ledger: dict[str, str], api_as
) -> None:
    get_user, visible = SCOPES[who]
    api = api_as(get_user(cast))

    for owner, client_no in ledger.items():
        expected_status = 200 if owner in visible else 404
        detail = api.get(reverse("clients_api:client-detail", args=[client_no]))
        interactions = api.get(reverse("clients_api:client-interaction-list", args=[client_no]))
        assert detail.status_code == expected_status, owner
        assert interactions.status_code == expected_status, owner
        if expected_status == 200:
            assert detail.json()["client_no"] == client_no
            assert len(interactions.json()["results"]) == 1


def test_an_unknown_client_number_is_404_like_an_out_of_scope_one(cast: Cast, api_as) -> None:
    api = api_as(cast.alice.user)
    assert api.get(reverse("clients_api:client-detail", args=["C-NO-SUCH"])).status_code == 404


def test_filtering_by_another_managers_client_number_gives_an_empty_list(
    cast: Cast, ledger: dict[str, str], api_as
) -> None:
    api = api_as(cast.alice.user)
    response = api.get(reverse("clients_api:trade-list"), {"client": ledger["bob"]})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("who", list(SCOPES))
def test_every_signed_in_user_reads_instruments(who: str, cast: Cast, api_as) -> None:
    factories.InstrumentFactory(symbol="600519.SH")
    get_user, _ = SCOPES[who]
    response = api_as(get_user(cast)).get(reverse("clients_api:instrument-list"))
    assert response.status_code == 200
    assert [row["symbol"] for row in response.json()["results"]] == ["600519.SH"]


@pytest.mark.parametrize(
    "name", ["client-list", "trade-list", "cash-flow-list", "asset-snapshot-list", "instrument-list"]
)
def test_anonymous_requests_are_refused(name: str, db: None) -> None:
    assert APIClient().get(reverse(f"clients_api:{name}")).status_code == 403


def test_the_api_is_read_only(cast: Cast, api_as) -> None:
    api = api_as(cast.system)
    assert api.post(reverse("clients_api:client-list"), {}).status_code == 405
    assert api.delete(reverse("clients_api:client-detail", args=[cast.alice_client.client_no])).status_code == 405
