"""A client's trades page: all trades, newest first, paged and filtered with the API's filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Trade
from tests import factories
from tests.conftest import Cast
from tests.pages.test_workspace_forms import signed_in

pytestmark = pytest.mark.django_db


def trades_url(client) -> str:
    return reverse("client-trades", args=[client.client_no])


def make_trades(client, n: int, **kw) -> list[Trade]:
    now = timezone.now()
    return [factories.TradeFactory(client=client, executed_at=now - dt.timedelta(days=i + 1), **kw) for i in range(n)]


def test_trades_are_paged_newest_first(cast: Cast) -> None:
    trades = make_trades(cast.alice_client, 60)
    browser = signed_in(cast.alice.user)

    first = browser.get(trades_url(cast.alice_client))
    second = browser.get(trades_url(cast.alice_client), {"page": 2})

    assert first.status_code == 200
    assert [t.pk for t in first.context["page"].object_list] == [t.pk for t in trades[:50]]
    assert [t.pk for t in second.context["page"].object_list] == [t.pk for t in trades[50:]]
    assert "60 trades" in first.text
    assert "Page 1 of 2" in first.text


def test_filters_by_side_symbol_and_dates(cast: Cast) -> None:
    make_trades(cast.alice_client, 5)
    etf = factories.InstrumentFactory(symbol="510300.SH")
    sells = make_trades(cast.alice_client, 3, side=Trade.Side.SELL, instrument=etf)
    browser = signed_in(cast.alice.user)

    by_side = browser.get(trades_url(cast.alice_client), {"side": "sell"})
    by_symbol = browser.get(trades_url(cast.alice_client), {"instrument": "510300.SH"})
    day = timezone.localdate(sells[1].executed_at)
    by_day = browser.get(
        trades_url(cast.alice_client),
        {"executed_after": day.isoformat(), "executed_before": day.isoformat(), "side": "sell"},
    )

    assert {t.pk for t in by_side.context["page"].object_list} == {t.pk for t in sells}
    assert {t.pk for t in by_symbol.context["page"].object_list} == {t.pk for t in sells}
    assert [t.pk for t in by_day.context["page"].object_list] == [sells[1].pk]
    assert "Clear" in by_side.text


def test_a_malformed_filter_is_a_400_naming_the_field(cast: Cast) -> None:
    make_trades(cast.alice_client, 2)

    response = signed_in(cast.alice.user).get(trades_url(cast.alice_client), {"side": "short", "executed_after": "x"})

    assert response.status_code == 400
    assert list(response.context["page"].object_list) == []
    assert "Select a valid choice. short is not one of the available choices." in response.text
    assert 'aria-invalid="true"' in response.text
    assert "Correct the filters above." in response.text


def test_another_clients_trades_cannot_be_filtered_in(cast: Cast) -> None:
    make_trades(cast.alice_client, 1)
    make_trades(cast.bob_client, 2)

    response = signed_in(cast.tina).get(trades_url(cast.alice_client), {"client": cast.bob_client.client_no})

    assert response.context["page"].paginator.count == 1


def test_scope_is_the_policys(cast: Cast) -> None:
    make_trades(cast.mike_client, 1)

    assert signed_in(cast.alice.user).get(trades_url(cast.mike_client)).status_code == 404
    assert signed_in(cast.carol).get(trades_url(cast.mike_client)).status_code == 200
    assert signed_in(cast.alice.user).get(trades_url(cast.alice_client)).status_code == 200


@pytest.mark.parametrize("n", [3, 120])
def test_the_query_count_does_not_grow_with_the_trades(cast: Cast, django_assert_num_queries, n: int) -> None:
    make_trades(cast.alice_client, n)
    browser = signed_in(cast.alice.user)

    # session, user, roles, the client (in scope) and its current risk assessment, the count,
    # the page (instrument joined)
    with django_assert_num_queries(7):
        browser.get(trades_url(cast.alice_client), {"side": "buy"})
