"""Keyset pagination of the ledger: paging through many trades that share an execution
time neither repeats nor skips a row, in either direction, even while new trades arrive.

DRF's CursorPagination positions on the first ordering field only and skips ties with a
capped OFFSET (see brokercrm/api/pagination.py); ours positions on (executed_at, id).
"""

import base64
import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from brokercrm.api.pagination import INVALID_CURSOR
from clients.models import Trade
from tests import factories
from tests.conftest import Cast

TIMESTAMPS = [dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=s) for s in (0, 1, 2)]


@pytest.fixture
def tied_trades(cast: Cast) -> set[str]:
    """250 trades of alice's client sharing 3 execution times; returns their trade ids."""
    instrument = factories.InstrumentFactory()
    trades = [
        factories.TradeFactory.build(
            trade_id=f"TIE{i:04d}", client=cast.alice_client, instrument=instrument, executed_at=TIMESTAMPS[i % 3]
        )
        for i in range(250)
    ]
    Trade.objects.bulk_create(trades)
    return {trade.trade_id for trade in trades}


def _walk(api: object, url: str | None, params: dict[str, str] | None, link: str) -> list[list[dict]]:
    pages = []
    while url:
        response = api.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body["results"])
        url, params = body[link], None
    return pages


def test_paging_forward_through_ties_returns_every_trade_once(cast: Cast, tied_trades: set[str], api_as) -> None:
    api = api_as(cast.alice.user)

    pages = _walk(api, reverse("clients_api:trade-list"), {"page_size": "50"}, "next")

    assert [len(page) for page in pages] == [50, 50, 50, 50, 50]
    ids = [row["trade_id"] for page in pages for row in page]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == tied_trades
    executed = [row["executed_at"] for page in pages for row in page]
    assert executed == sorted(executed, reverse=True)


def test_paging_back_with_previous_links_returns_the_same_pages(cast: Cast, tied_trades: set[str], api_as) -> None:
    api = api_as(cast.alice.user)
    forward = _walk(api, reverse("clients_api:trade-list"), {"page_size": "50"}, "next")
    last_page_url = None
    url, params = reverse("clients_api:trade-list"), {"page_size": "50"}
    while url:
        body = api.get(url, params).json()
        last_page_url, url, params = url, body["next"], None

    backward = _walk(api, api.get(last_page_url).json()["previous"], None, "previous")

    assert backward == list(reversed(forward[:-1]))
    assert api.get(reverse("clients_api:trade-list"), {"page_size": "50"}).json()["previous"] is None


def test_paging_oldest_first_through_ties(cast: Cast, tied_trades: set[str], api_as) -> None:
    api = api_as(cast.system)

    pages = _walk(api, reverse("clients_api:trade-list"), {"page_size": "50", "ordering": "executed_at"}, "next")

    ids = [row["trade_id"] for page in pages for row in page]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == tied_trades
    executed = [row["executed_at"] for page in pages for row in page]
    assert executed == sorted(executed)


def test_trades_arriving_between_pages_neither_repeat_nor_shift_rows(cast: Cast, tied_trades: set[str], api_as) -> None:
    api = api_as(cast.alice.user)
    first = api.get(reverse("clients_api:trade-list"), {"page_size": "50"}).json()
    # New executions, newer and at an already-seen time, land before the cursor.
    factories.TradeFactory(trade_id="NEW1", client=cast.alice_client, executed_at=TIMESTAMPS[2] + dt.timedelta(hours=1))
    factories.TradeFactory(trade_id="NEW2", client=cast.alice_client, executed_at=TIMESTAMPS[2])

    rest = _walk(api, first["next"], None, "next")

    ids = [row["trade_id"] for row in first["results"]] + [row["trade_id"] for page in rest for row in page]
    assert len(ids) == len(set(ids))
    assert set(ids) - {"NEW2"} == tied_trades


def test_the_page_query_is_one_row_value_comparison(cast: Cast, tied_trades: set[str], api_as) -> None:
    api = api_as(cast.system)
    next_url = api.get(reverse("clients_api:trade-list"), {"page_size": "50"}).json()["next"]
    assert "cursor" in parse_qs(urlparse(next_url).query)

    with CaptureQueriesContext(connection) as ctx:
        api.get(next_url)

    page_sql = ctx.captured_queries[-1]["sql"]
    # The ledger's page finds its keys in a sub-select (the row comparison and the LIMIT are
    # there), then reads those rows with their joins.
    keys = re.search(r"IN \(SELECT (.*?) LIMIT 51\)", page_sql)
    assert keys is not None, page_sql
    assert '(U0."executed_at", U0."id") <' in keys.group(1).replace('"U0"', "U0")
    assert "OFFSET" not in page_sql.upper()


@pytest.mark.parametrize(
    "payload",
    [
        '["2026-03-02T01:30:00+00:00","99999999999999999999999",0]',
        '["not a time","1",0]',
        '["2026-03-02T01:30:00+00:00","1",7]',
        '["2026-03-02T01:30:00+00:00"]',
        '{"v":1}',
    ],
)
def test_a_forged_cursor_is_400(cast: Cast, api_as, payload: str) -> None:
    token = base64.urlsafe_b64encode(payload.encode()).decode()
    response = api_as(cast.system).get(reverse("clients_api:trade-list"), {"cursor": token})
    assert response.status_code == 400
    assert response.json() == {"cursor": [INVALID_CURSOR]}


def test_the_last_page_has_no_next_link_and_an_empty_list_has_no_links(cast: Cast, api_as) -> None:
    api = api_as(cast.alice.user)
    body = api.get(reverse("clients_api:trade-list")).json()
    assert body == {"next": None, "previous": None, "results": []}


def test_more_ties_than_drfs_offset_cap(cast: Cast, api_as) -> None:
    # DRF's CursorPagination caps its tie-skipping OFFSET at 1,000 rows: past that it serves
    # the same rows again and never reaches the end (measured: 2,500 trades at one time).
    instrument = factories.InstrumentFactory()
    Trade.objects.bulk_create(
        factories.TradeFactory.build(
            trade_id=f"BULK{i:05d}", client=cast.mike_client, instrument=instrument, executed_at=TIMESTAMPS[0]
        )
        for i in range(1500)
    )
    api = api_as(cast.system)

    pages = _walk(api, reverse("clients_api:trade-list"), {"page_size": "400"}, "next")

    assert [len(page) for page in pages] == [400, 400, 400, 300]
    assert len({row["trade_id"] for page in pages for row in page}) == 1500


def test_cash_flows_page_through_ties_too(cast: Cast, api_as) -> None:
    moment = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    factories.CashFlowFactory.create_batch(25, client=cast.bob_client, occurred_at=moment)
    api = api_as(cast.tina)

    pages = _walk(api, reverse("clients_api:cash-flow-list"), {"page_size": "10"}, "next")

    assert [len(page) for page in pages] == [10, 10, 5]
    assert len({row["flow_id"] for page in pages for row in page}) == 25
