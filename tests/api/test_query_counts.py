"""Query counts of every list endpoint are pinned and do not grow with the page size.

Each test serves a page of 3 rows and a page of 30 rows with the same number of queries.
The fixed part of a session-authenticated request is 3 queries: the session, the user,
and the user's roles (the policy asks for them once per request).
"""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.urls import reverse

from clients.models import Client
from tests import factories
from tests.conftest import Cast

# Session + user + roles.
AUTH = 3


@pytest.fixture(params=["alice", "system"])
def reader(request: pytest.FixtureRequest, cast: Cast) -> object:
    """A scoped reader (an account manager: the policy joins through the client) and a firm-wide one."""
    return cast.alice.user if request.param == "alice" else cast.system


def _alice_clients(cast: Cast, n: int) -> list[Client]:
    return [factories.ClientFactory(account_manager=cast.alice) for _ in range(n)]


def _assert_flat(
    api: object,
    url: str,
    make_rows: Callable[[int], None],
    queries: int,
    django_assert_num_queries: Callable,
    page_key: str = "results",
) -> None:
    sizes = []
    made = 0
    for total in (3, 30):
        make_rows(total - made)
        made = total
        with django_assert_num_queries(queries):
            response = api.get(url, {"page_size": 100})
        assert response.status_code == 200
        sizes.append(len(response.json()[page_key]))
    assert sizes[1] >= sizes[0] + 27


def test_client_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        _alice_clients(cast, n)
        factories.ClientFactory.create_batch(n)  # other managers, other users: other joins

    # AUTH + count + page (branch and account manager's user joined)
    _assert_flat(api_as(reader), reverse("clients_api:client-list"), make_rows, AUTH + 2, django_assert_num_queries)


def test_client_detail_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    factories.KYCProfileFactory(client=cast.alice_client)
    for year in range(2015, 2025):
        factories.RiskAssessmentFactory(
            client=cast.alice_client, assessed_on=dt.date(year, 1, 1), expires_on=dt.date(year + 2, 1, 1)
        )
    api = api_as(reader)
    # AUTH + the client (branch, manager, KYC joined) + its latest risk assessment
    with django_assert_num_queries(AUTH + 2):
        response = api.get(reverse("clients_api:client-detail", args=[cast.alice_client.client_no]))
    assert response.json()["current_risk"]["assessed_on"] == "2024-01-01"


def test_trade_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        for client in _alice_clients(cast, n):
            trade = factories.TradeFactory(client=client)  # a new instrument each
            if n > 3:
                # a reversal: its `reverses` is joined, not fetched per row
                factories.TradeFactory(
                    client=client,
                    instrument=trade.instrument,
                    reverses=trade,
                    amount=-trade.amount,
                    commission=-trade.commission,
                )

    # AUTH + page (no count on the keyset-paginated ledger)
    _assert_flat(api_as(reader), reverse("clients_api:trade-list"), make_rows, AUTH + 1, django_assert_num_queries)


def test_cash_flow_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        for client in _alice_clients(cast, n):
            flow = factories.CashFlowFactory(client=client)
            factories.CashFlowFactory(client=client, reverses=flow, amount=-flow.amount)

    _assert_flat(api_as(reader), reverse("clients_api:cash-flow-list"), make_rows, AUTH + 1, django_assert_num_queries)


def test_asset_snapshot_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        for client in _alice_clients(cast, n):
            factories.AssetSnapshotFactory(client=client, cash=Decimal("1.00"))

    _assert_flat(
        api_as(reader), reverse("clients_api:asset-snapshot-list"), make_rows, AUTH + 1, django_assert_num_queries
    )


def test_instrument_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        factories.InstrumentFactory.create_batch(n)

    # session + user + count + page: instruments are not client-scoped, so no roles query
    _assert_flat(api_as(reader), reverse("clients_api:instrument-list"), make_rows, 4, django_assert_num_queries)


def test_client_interaction_list_queries(cast: Cast, reader: object, api_as, django_assert_num_queries) -> None:
    def make_rows(n: int) -> None:
        for _ in range(n):
            factories.InteractionFactory(client=cast.alice_client, by=factories.UserFactory())

    url = reverse("clients_api:client-interaction-list", args=[cast.alice_client.client_no])
    # AUTH + the client lookup (scope check) + page, staff users joined
    _assert_flat(api_as(reader), url, make_rows, AUTH + 2, django_assert_num_queries)
