"""Hand-built books: clients with exactly the commission (or assets) a test needs."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from decimal import Decimal

from django.utils import timezone

from clients.models import AccountManager, AssetSnapshot, Client, Instrument, Trade
from tests import factories

_numbers = itertools.count(1)


def local_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12, 0), tzinfo=timezone.get_default_timezone())


def make_clients(
    count: int,
    *,
    manager: AccountManager | None = None,
    opened_on: dt.date = dt.date(2020, 1, 2),
    closed_on: dt.date | None = None,
) -> list[Client]:
    manager = manager or factories.AccountManagerFactory()
    clients = [
        Client(
            client_no=f"K{next(_numbers):08d}",
            name=f"Client {index}",
            branch=manager.team.branch,
            account_manager=manager,
            opened_on=opened_on,
            closed_on=closed_on,
            status=Client.Status.CLOSED if closed_on else Client.Status.OPEN,
        )
        for index in range(count)
    ]
    Client.objects.bulk_create(clients)
    return list(Client.objects.filter(client_no__in=[client.client_no for client in clients]).order_by("id"))


def add_trade(
    client: Client,
    *,
    commission: Decimal | str,
    when: dt.datetime,
    instrument: Instrument | None = None,
    channel: str = "mobile",
    side: str = "buy",
    amount: Decimal | str | None = None,
    reverses: Trade | None = None,
    price: Decimal | str = "10",
) -> Trade:
    commission = Decimal(commission)
    amount = Decimal(amount) if amount is not None else (abs(commission) * 1000).quantize(Decimal("0.01"))
    if reverses is not None:
        amount, commission = -abs(amount), -abs(commission)
    price = Decimal(price)
    return Trade.objects.create(
        trade_id=f"X{next(_numbers):012d}",
        client=client,
        executed_at=when,
        instrument=instrument or factories.InstrumentFactory(symbol="600000.SH"),
        side=side,
        quantity=(abs(amount) / price).quantize(Decimal("0.0001")) if price else Decimal(1),
        price=price,
        amount=amount,
        commission=commission,
        channel=channel,
        reverses=reverses,
    )


def make_book(
    values: Sequence[Decimal | str | int],
    *,
    as_of: dt.date,
    manager: AccountManager | None = None,
    days_before: int = 10,
) -> list[Client]:
    """One client per value, each with one trade carrying that commission (none for 0)."""
    clients = make_clients(len(values), manager=manager)
    instrument = factories.InstrumentFactory(symbol="600000.SH")
    when = local_noon(as_of - dt.timedelta(days=days_before))
    trades = []
    for client, value in zip(clients, values, strict=True):
        commission = Decimal(str(value))
        if commission <= 0:
            continue
        amount = commission * 1000
        trades.append(
            Trade(
                trade_id=f"X{next(_numbers):012d}",
                client=client,
                executed_at=when,
                instrument=instrument,
                side="buy",
                quantity=(amount / 10).quantize(Decimal("0.0001")),
                price=Decimal(10),
                amount=amount,
                commission=commission,
                channel="mobile",
            )
        )
    Trade.objects.bulk_create(trades)
    return clients


def add_assets(client: Client, *, as_of: dt.date, total: Decimal | str | int) -> AssetSnapshot:
    return AssetSnapshot.objects.create(client=client, as_of=as_of, cash=Decimal(str(total)), market_value=Decimal(0))


_unsaved_ids = itertools.count(1)


def trade_on(
    client: Client, day: dt.date, instrument: Instrument, commission: str = "5.00", pnl: str | None = None
) -> Trade:
    """An unsaved buy at noon of `day` (exchange time) with `commission` (amount 1,000x it), for
    tests that save or bulk-create it themselves."""
    amount = Decimal(commission) * 1000
    return Trade(
        trade_id=f"U{next(_unsaved_ids):010d}",
        client=client,
        executed_at=local_noon(day),
        instrument=instrument,
        side="buy",
        quantity=amount / 10,
        price=Decimal(10),
        amount=amount,
        commission=Decimal(commission),
        channel="mobile",
        realized_pnl=None if pnl is None else Decimal(pnl),
    )
