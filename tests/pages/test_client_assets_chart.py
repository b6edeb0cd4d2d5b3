"""The 360's assets chart: the snapshots oldest first and, at each, the net cash brought in
since the snapshot before (deposits minus withdrawals, by exchange day)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from brokercrm.lib.exchange_time import day_start
from clients.models import CashFlow
from tests import factories
from tests.conftest import Cast
from tests.pages.test_workspace_forms import signed_in

pytestmark = pytest.mark.django_db

MONTH_ENDS = [dt.date(2026, 7, 31), dt.date(2026, 8, 31), dt.date(2026, 9, 30)]


def at(day: dt.date, hour: int) -> dt.datetime:
    return day_start(day) + dt.timedelta(hours=hour)


def test_assets_and_net_flows_between_snapshots(cast: Cast) -> None:
    client = cast.alice_client
    for i, day in enumerate(MONTH_ENDS):
        factories.AssetSnapshotFactory(client=client, as_of=day, cash=Decimal(1000 * (i + 1)), market_value=Decimal(0))
    # before the first snapshot: not counted
    factories.CashFlowFactory(client=client, amount=Decimal(999), occurred_at=at(dt.date(2026, 7, 31), 10))
    # August: +5,000 in, -2,000 out (the 31st counts for the August snapshot, exchange time)
    factories.CashFlowFactory(client=client, amount=Decimal(5000), occurred_at=at(dt.date(2026, 8, 3), 10))
    factories.CashFlowFactory(
        client=client, kind=CashFlow.Kind.WITHDRAWAL, amount=Decimal(2000), occurred_at=at(dt.date(2026, 8, 31), 23)
    )
    # September: a withdrawal and its reversal cancel out
    out = factories.CashFlowFactory(
        client=client, kind=CashFlow.Kind.WITHDRAWAL, amount=Decimal(700), occurred_at=at(dt.date(2026, 9, 2), 10)
    )
    factories.CashFlowFactory(
        client=client,
        kind=CashFlow.Kind.WITHDRAWAL,
        amount=Decimal(-700),
        reverses=out,
        occurred_at=at(dt.date(2026, 9, 3), 10),
    )
    factories.CashFlowFactory(client=cast.bob_client, amount=Decimal(123456), occurred_at=at(dt.date(2026, 8, 5), 9))

    response = signed_in(cast.alice.user).get(reverse("client-detail", args=[client.client_no]))

    assert response.context["assets_chart"] == {
        "dates": ["2026-07-31", "2026-08-31", "2026-09-30"],
        "assets": [1000.0, 2000.0, 3000.0],
        "cash": [1000.0, 2000.0, 3000.0],
        "flows": [None, 3000.0, 0.0],
    }
    assert 'id="assets-data"' in response.text
    assert "client360.js" in response.text


def test_no_chart_with_fewer_than_two_snapshots(cast: Cast) -> None:
    factories.AssetSnapshotFactory(client=cast.alice_client, as_of=MONTH_ENDS[0])

    response = signed_in(cast.alice.user).get(reverse("client-detail", args=[cast.alice_client.client_no]))

    assert response.context["assets_chart"] is None
    assert "client360.js" not in response.text


@pytest.mark.parametrize("months", [3, 30])
def test_the_chart_costs_one_query_whatever_the_history(cast: Cast, django_assert_max_num_queries, months) -> None:
    client = cast.alice_client
    start = dt.date(2024, 1, 31)
    for i in range(months):
        day = start + dt.timedelta(days=30 * i)
        factories.AssetSnapshotFactory(client=client, as_of=day)
        factories.CashFlowFactory(client=client, occurred_at=at(day, 9))
    browser = signed_in(cast.alice.user)

    # the 360 with nothing else on it is 17 queries; the chart's flows add one
    with django_assert_max_num_queries(18) as queries:
        response = browser.get(reverse("client-detail", args=[client.client_no]))

    assert len(queries.captured_queries) == 18
    assert len(response.context["assets_chart"]["dates"]) == min(months, 24)
