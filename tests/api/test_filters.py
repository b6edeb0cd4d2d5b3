"""Filters and ordering of the list endpoints; malformed values answer 400 naming the parameter."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from brokercrm.api.filters import INVALID_DATE_OR_DATETIME
from clients.models import Channel, Client, Instrument
from tests import factories
from tests.conftest import Cast

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _nos(response: object, key: str = "client_no") -> list[str]:
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


@pytest.fixture
def api(cast: Cast, api_as) -> object:
    return api_as(cast.carol)


@pytest.fixture
def book(cast: Cast) -> dict[str, Client]:
    """A few clients of varied branch, status, kind and opening date, plus the cast's three."""
    other_branch = factories.BranchFactory(code="BJ02", name="Beijing Xidan")
    other_team = factories.TeamFactory(branch=other_branch)
    beijing_manager = factories.AccountManagerFactory(team=other_team, employee_no="E90001")
    return {
        "zhang": factories.ClientFactory(
            client_no="C20240001", name="Zhang Wei", account_manager=beijing_manager, opened_on=dt.date(2024, 3, 5)
        ),
        "institution": factories.ClientFactory(
            client_no="C20240002",
            name="Lujiazui Asset Management",
            kind=Client.Kind.INSTITUTION,
            account_manager=cast.alice,
            opened_on=dt.date(2024, 6, 30),
        ),
        "closed": factories.ClientFactory(
            client_no="C20190003",
            name="Li Na",
            account_manager=beijing_manager,
            status=Client.Status.CLOSED,
            opened_on=dt.date(2019, 1, 1),
            closed_on=dt.date(2023, 1, 1),
        ),
    }


def test_clients_by_branch_manager_status_and_kind(api: object, book: dict[str, Client], cast: Cast) -> None:
    url = reverse("clients_api:client-list")
    assert set(_nos(api.get(url, {"branch": "BJ02"}))) == {"C20240001", "C20190003"}
    assert _nos(api.get(url, {"account_manager": "E90001", "status": "closed"})) == ["C20190003"]
    assert _nos(api.get(url, {"kind": "institution"})) == ["C20240002"]
    assert set(_nos(api.get(url, {"account_manager": cast.alice.employee_no}))) == {
        cast.alice_client.client_no,
        "C20240002",
    }
    assert _nos(api.get(url, {"branch": "NOPE"})) == []


def test_clients_by_opening_date_range_inclusive(api: object, book: dict[str, Client]) -> None:
    url = reverse("clients_api:client-list")
    response = api.get(url, {"opened_after": "2024-03-05", "opened_before": "2024-06-30"})
    assert _nos(response) == ["C20240001", "C20240002"]


def test_clients_search_by_name_or_number(api: object, book: dict[str, Client]) -> None:
    url = reverse("clients_api:client-list")
    assert _nos(api.get(url, {"q": "zhang"})) == ["C20240001"]
    assert _nos(api.get(url, {"q": "c2024"})) == ["C20240001", "C20240002"]
    assert _nos(api.get(url, {"q": "0002"})) == []  # numbers match from the start only


def test_clients_ordering_is_explicit_and_ends_in_the_client_number(api: object, book: dict[str, Client]) -> None:
    url = reverse("clients_api:client-list")
    by_opening = _nos(api.get(url, {"ordering": "-opened_on", "branch": "BJ02"}))
    assert by_opening == ["C20240001", "C20190003"]
    # Three cast clients share an opening date: the client number breaks the tie.
    tied = _nos(api.get(url, {"ordering": "opened_on", "branch": "SH01", "kind": "individual"}))
    assert tied == sorted(tied)


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"opened_after": "notadate"}, "opened_after"),
        ({"opened_before": "2024-02-30"}, "opened_before"),
        ({"status": "dormant"}, "status"),
        ({"kind": "robot"}, "kind"),
        ({"ordering": "phone"}, "ordering"),
        ({"ordering": "name,secret"}, "ordering"),
        ({"page_size": "lots"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_malformed_client_filters_are_400(api: object, params: dict[str, str], bad: str) -> None:
    response = api.get(reverse("clients_api:client-list"), params)
    assert response.status_code == 400
    assert list(response.json()) == [bad]


def test_unknown_choice_message_is_clear(api: object) -> None:
    response = api.get(reverse("clients_api:client-list"), {"status": "dormant"})
    assert response.json() == {"status": ["Select a valid choice. dormant is not one of the available choices."]}


@pytest.fixture
def trades(cast: Cast) -> dict[str, object]:
    stock = factories.InstrumentFactory(symbol="600519.SH")
    future = factories.InstrumentFactory(symbol="IF2606.CFE", asset_class=Instrument.AssetClass.FUTURES)
    at = lambda *args: dt.datetime(*args, tzinfo=SHANGHAI)  # noqa: E731
    return {
        "t1": factories.TradeFactory(
            trade_id="T1", client=cast.alice_client, instrument=stock, executed_at=at(2026, 3, 2, 9, 30)
        ),
        "t2": factories.TradeFactory(
            trade_id="T2",
            client=cast.alice_client,
            instrument=future,
            side="sell",
            channel=Channel.PHONE,
            executed_at=at(2026, 3, 2, 14, 55),
        ),
        "t3": factories.TradeFactory(
            trade_id="T3", client=cast.bob_client, instrument=stock, executed_at=at(2026, 3, 3, 0, 10)
        ),
        "t4": factories.TradeFactory(
            trade_id="T4", client=cast.mike_client, instrument=future, executed_at=at(2026, 3, 1, 23, 59)
        ),
    }


def _trade_ids(api: object, **params: str) -> list[str]:
    return _nos(api.get(reverse("clients_api:trade-list"), params), key="trade_id")


def test_trades_by_client_instrument_channel_side_and_asset_class(
    api: object, trades: dict[str, object], cast: Cast
) -> None:
    assert _trade_ids(api, client=cast.alice_client.client_no) == ["T2", "T1"]
    assert _trade_ids(api, instrument="600519.SH") == ["T3", "T1"]
    assert _trade_ids(api, channel="phone") == ["T2"]
    assert _trade_ids(api, side="sell") == ["T2"]
    assert _trade_ids(api, asset_class="futures") == ["T2", "T4"]


def test_trades_by_executed_range_dates_are_whole_exchange_days(api: object, trades: dict[str, object]) -> None:
    # 2026-03-02 in Shanghai: T1 and T2, not T4 (the minute before) nor T3 (just after midnight).
    assert _trade_ids(api, executed_after="2026-03-02", executed_before="2026-03-02") == ["T2", "T1"]
    assert _trade_ids(api, executed_after="2026-03-03") == ["T3"]


def test_trades_by_executed_range_datetimes(api: object, trades: dict[str, object]) -> None:
    # A naive date-time is exchange time; the upper bound is exclusive.
    assert _trade_ids(api, executed_after="2026-03-02T09:30:00", executed_before="2026-03-02T14:55") == ["T1"]
    # 2026-03-02T06:55Z is 14:55 in Shanghai.
    assert _trade_ids(api, executed_after="2026-03-02T06:55:00Z") == ["T3", "T2"]
    assert _trade_ids(api, executed_before="2026-03-02T09:30:00+08:00") == ["T4"]


def test_trades_can_be_read_oldest_first(api: object, trades: dict[str, object]) -> None:
    assert _trade_ids(api, ordering="executed_at") == ["T4", "T1", "T2", "T3"]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"executed_after": "notadate"}, "executed_after"),
        ({"executed_after": "2026-13-01"}, "executed_after"),
        ({"executed_before": "2026-03-02T25:00"}, "executed_before"),
        ({"channel": "fax"}, "channel"),
        ({"side": "hold"}, "side"),
        ({"asset_class": "crypto"}, "asset_class"),
        ({"ordering": "commission"}, "ordering"),
        ({"ordering": "executed_at,-executed_at"}, "ordering"),
        ({"cursor": "garbage"}, "cursor"),
        ({"page_size": "-5"}, "page_size"),
    ],
)
def test_malformed_trade_filters_are_400(api: object, params: dict[str, str], bad: str) -> None:
    response = api.get(reverse("clients_api:trade-list"), params)
    assert response.status_code == 400
    assert list(response.json()) == [bad]


def test_a_malformed_date_says_what_is_expected(api: object) -> None:
    response = api.get(reverse("clients_api:trade-list"), {"executed_after": "yesterday"})
    assert response.json() == {"executed_after": [INVALID_DATE_OR_DATETIME]}


def test_cash_flows_by_client_kind_and_occurred_range(api: object, cast: Cast) -> None:
    at = lambda day: dt.datetime(2026, 3, day, 10, tzinfo=SHANGHAI)  # noqa: E731
    factories.CashFlowFactory(flow_id="F1", client=cast.alice_client, occurred_at=at(1))
    factories.CashFlowFactory(flow_id="F2", client=cast.alice_client, kind="withdrawal", occurred_at=at(2))
    factories.CashFlowFactory(flow_id="F3", client=cast.bob_client, occurred_at=at(3))
    url = reverse("clients_api:cash-flow-list")

    assert _nos(api.get(url, {"client": cast.alice_client.client_no}), key="flow_id") == ["F2", "F1"]
    assert _nos(api.get(url, {"kind": "deposit"}), key="flow_id") == ["F3", "F1"]
    assert _nos(api.get(url, {"occurred_after": "2026-03-02", "occurred_before": "2026-03-02"}), "flow_id") == ["F2"]
    assert api.get(url, {"kind": "transfer"}).status_code == 400
    assert api.get(url, {"occurred_before": "03/02/2026"}).status_code == 400


def test_asset_snapshots_by_client_and_day(api: object, cast: Cast) -> None:
    for day in (1, 2, 3):
        factories.AssetSnapshotFactory(client=cast.alice_client, as_of=dt.date(2026, 3, day))
    factories.AssetSnapshotFactory(client=cast.bob_client, as_of=dt.date(2026, 3, 2))
    url = reverse("clients_api:asset-snapshot-list")

    rows = api.get(url, {"client": cast.alice_client.client_no, "as_of_after": "2026-03-02"}).json()["results"]
    assert [row["as_of"] for row in rows] == ["2026-03-03", "2026-03-02"]
    assert rows[0]["total"] == "25000.00"
    assert len(api.get(url, {"as_of": "2026-03-02"}).json()["results"]) == 2
    assert api.get(url, {"as_of": "March"}).status_code == 400


def test_instruments_filters(api: object) -> None:
    factories.InstrumentFactory(symbol="600519.SH", name="Kweichow Moutai", risk_level=3)
    factories.InstrumentFactory(symbol="IF2606.CFE", name="CSI 300 futures", asset_class="futures", risk_level=5)
    url = reverse("clients_api:instrument-list")

    assert _nos(api.get(url, {"risk_level": "5"}), key="symbol") == ["IF2606.CFE"]
    assert _nos(api.get(url, {"asset_class": "stock"}), key="symbol") == ["600519.SH"]
    assert _nos(api.get(url, {"q": "moutai"}), key="symbol") == ["600519.SH"]
    assert _nos(api.get(url, {"ordering": "-risk_level"}), key="symbol") == ["IF2606.CFE", "600519.SH"]
    # A risk level is a whole number 1..5: 2.5 or 7 is refused, not rounded or ignored.
    assert api.get(url, {"risk_level": "2.5"}).status_code == 400
    assert api.get(url, {"risk_level": "7"}).status_code == 400
