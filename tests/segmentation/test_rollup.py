"""The incremental rollup of the ledger into per-client daily activity."""

import datetime as dt
from decimal import Decimal

import pytest

from clients.models import Trade
from segmentation.models import ClientDailyActivity, RollupWatermark
from segmentation.rollup import WATERMARK, RollupConflict, activity_rebuild, activity_rollup
from tests.segmentation.books import add_trade, local_noon, make_clients

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 6, 29)


def activity() -> dict:
    return {
        (row.client_id, row.day, row.channel): (row.trades, row.amount, row.commission)
        for row in ClientDailyActivity.objects.all()
    }


def ledger_sums() -> dict:
    """The same figures computed straight from the ledger, one trade at a time."""
    zone = dt.timezone(dt.timedelta(hours=8))
    sums: dict = {}
    for trade in Trade.objects.all():
        key = (trade.client_id, trade.executed_at.astimezone(zone).date(), trade.channel)
        count, amount, commission = sums.get(key, (0, Decimal(0), Decimal(0)))
        sums[key] = (
            count + (1 if trade.reverses_id is None else -1),
            amount + trade.amount,
            commission + trade.commission,
        )
    return sums


def test_rollup_sums_by_client_exchange_day_and_channel() -> None:
    alice, bob = make_clients(2)
    add_trade(alice, commission="1.50", when=local_noon(DAY), channel="mobile", amount="5000")
    add_trade(alice, commission="2.50", when=local_noon(DAY), channel="mobile", amount="7000")
    add_trade(alice, commission="4", when=local_noon(DAY), channel="phone", amount="1000")
    # 23:30 in Shanghai on the 29th is 15:30 UTC: still the 29th; 00:30 on the 30th is the 30th
    zone = dt.timezone(dt.timedelta(hours=8))
    add_trade(bob, commission="1", when=dt.datetime(2026, 6, 29, 23, 30, tzinfo=zone))
    add_trade(bob, commission="1", when=dt.datetime(2026, 6, 30, 0, 30, tzinfo=zone))
    result = activity_rollup()
    assert activity() == {
        (alice.pk, DAY, "mobile"): (2, Decimal("12000.00"), Decimal("4.00")),
        (alice.pk, DAY, "phone"): (1, Decimal("1000.00"), Decimal("4.00")),
        (bob.pk, DAY, "mobile"): (1, Decimal("1000.00"), Decimal("1.00")),
        (bob.pk, DAY + dt.timedelta(days=1), "mobile"): (1, Decimal("1000.00"), Decimal("1.00")),
    }
    assert result.to_trade_id == Trade.objects.order_by("-id").first().pk
    assert RollupWatermark.objects.get(name=WATERMARK).last_trade_id == result.to_trade_id


def test_rollup_is_incremental_and_picks_up_late_trades_for_earlier_days() -> None:
    (client,) = make_clients(1)
    add_trade(client, commission="10", when=local_noon(DAY))
    activity_rollup()
    # the next night: a trade of today and a late one for the 29th, plus a reversal of a
    # trade of the 29th
    add_trade(client, commission="3", when=local_noon(DAY + dt.timedelta(days=1)))
    late = add_trade(client, commission="5", when=local_noon(DAY) - dt.timedelta(hours=1))
    add_trade(client, commission="5", when=local_noon(DAY + dt.timedelta(days=1)), reverses=late)
    second = activity_rollup()
    assert activity() == ledger_sums()
    assert activity()[(client.pk, DAY, "mobile")] == (2, Decimal("15000.00"), Decimal("15.00"))
    assert activity()[(client.pk, DAY + dt.timedelta(days=1), "mobile")] == (0, Decimal("-2000.00"), Decimal("-2.00"))
    assert second.batches == 1


def test_running_the_rollup_again_adds_nothing() -> None:
    (client,) = make_clients(1)
    add_trade(client, commission="10", when=local_noon(DAY))
    activity_rollup()
    snapshot = activity()
    again = activity_rollup()
    assert again.batches == 0
    assert again.rows == 0
    assert activity() == snapshot


def test_rollup_in_small_batches_equals_one_batch() -> None:
    clients = make_clients(3)
    for index in range(12):
        add_trade(
            clients[index % 3],
            commission=str(index + 1),
            when=local_noon(DAY - dt.timedelta(days=index % 4)),
            channel=["mobile", "online"][index % 2],
        )
    # start the watermark just below the first trade (ids do not restart at 1 between tests)
    activity_rollup(upto_trade_id=Trade.objects.order_by("id").first().pk - 1)
    result = activity_rollup(batch_ids=5)
    assert result.batches == 3  # 12 trades in id batches of 5
    assert activity() == ledger_sums()
    batched = activity()
    activity_rebuild()
    assert activity() == batched


def test_rollup_can_stop_at_a_given_trade_id() -> None:
    (client,) = make_clients(1)
    first = add_trade(client, commission="1", when=local_noon(DAY))
    add_trade(client, commission="2", when=local_noon(DAY))
    activity_rollup(upto_trade_id=first.pk)
    assert activity()[(client.pk, DAY, "mobile")][2] == Decimal("1.00")
    activity_rollup()
    assert activity()[(client.pk, DAY, "mobile")][2] == Decimal("3.00")


def test_a_rollup_that_finds_the_watermark_moved_stops(monkeypatch) -> None:
    (client,) = make_clients(1)
    add_trade(client, commission="1", when=local_noon(DAY))
    from segmentation import rollup

    real = rollup._settled_max_trade_id

    def concurrent_rollup_moves_the_mark() -> int:
        high = real()
        RollupWatermark.objects.filter(name=WATERMARK).update(last_trade_id=high)
        return high

    monkeypatch.setattr(rollup, "_settled_max_trade_id", concurrent_rollup_moves_the_mark)
    with pytest.raises(RollupConflict):
        activity_rollup()
    assert ClientDailyActivity.objects.count() == 0
