"""The churn stage's ledger signals summed in numpy from the raw rows (inputs.ledger_signals_frame)
equal the SQL aggregate (inputs.ledger_signals_sql) on a small book with every kind of row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.utils import timezone

from brokercrm.nightly.bulk import read_frame
from clients.models import CashFlow
from retention import conf
from retention.inputs import SIGNAL_SQL_COLUMNS, ledger_signals_frame, ledger_signals_sql
from tests import factories
from tests.segmentation.books import add_trade

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AS_OF = dt.date(2026, 6, 30)
ZONE = timezone.get_default_timezone()


def at(days_back: int, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(AS_OF - dt.timedelta(days=days_back), dt.time(hour), tzinfo=ZONE)


def test_the_numpy_sums_equal_the_sql_aggregate():
    manager = factories.AccountManagerFactory()
    clients = [factories.ClientFactory(account_manager=manager, opened_on=dt.date(2024, 1, 2)) for _ in range(6)]
    flows = [
        (0, "withdrawal", "1234.56", 3),
        (0, "deposit", "100.01", 45),  # 90 days only
        (1, "withdrawal", "0.01", 29),  # the first day of the 30
        (1, "withdrawal", "99999.99", 30),  # the day before: 90 days only
        (2, "deposit", "500.00", 10),
        (2, "withdrawal", "500.00", 11),  # nets to zero
        (3, "withdrawal", "42.00", 95),  # outside every window
        (3, "withdrawal", "7.10", 0),  # the as-of day itself
    ]
    for index, kind, amount, days_back in flows:
        factories.CashFlowFactory(
            client=clients[index],
            kind=getattr(CashFlow.Kind, kind.upper()),
            amount=Decimal(amount),
            occurred_at=at(days_back),
        )
    losing = add_trade(clients[4], commission="5", when=at(5))
    losing.realized_pnl = Decimal("-12.34")
    losing.save()
    winning = add_trade(clients[4], commission="5", when=at(6))
    winning.realized_pnl = Decimal("20.00")
    winning.save()
    reversal = add_trade(clients[4], commission="-5", when=at(4), reverses=losing, amount="-10")
    reversal.realized_pnl = Decimal("12.34")  # cancels the P&L; not a losing close itself
    reversal.save()
    old = add_trade(clients[5], commission="5", when=at(400))
    old.realized_pnl = Decimal("-1.00")  # outside the recent window
    old.save()
    add_trade(clients[5], commission="5", when=at(2))  # no realised P&L

    params = conf.activity_params()
    fast = ledger_signals_frame(AS_OF, params)
    sql, sql_params = ledger_signals_sql(AS_OF, params)
    slow = read_frame(sql, sql_params, SIGNAL_SQL_COLUMNS)
    assert fast is not None
    assert len(slow) == 5  # clients 0-4; client 5's trades are outside the window or have no P&L
    pd.testing.assert_frame_equal(
        fast[SIGNAL_SQL_COLUMNS].sort_values("client_id").reset_index(drop=True),
        slow.astype({"client_id": "int64", "losing_closes": "int64"})
        .astype(dict.fromkeys(SIGNAL_SQL_COLUMNS[1:4], "float64"))
        .sort_values("client_id")
        .reset_index(drop=True),
        check_exact=True,
    )


def test_an_amount_beyond_bigint_cents_falls_back_to_the_sql():
    """Reading the rows as integer cents fails for an amount of 10^17 (10^19 cents > 2^63): the
    frame says None (the stage then runs the SQL aggregate) instead of failing the night. The
    error comes from the raw psycopg cursor read_numbers uses, not through Django's wrapper."""
    client = factories.ClientFactory(account_manager=factories.AccountManagerFactory(), opened_on=dt.date(2024, 1, 2))
    factories.CashFlowFactory(
        client=client, kind=CashFlow.Kind.WITHDRAWAL, amount=Decimal("100000000000000000.00"), occurred_at=at(3)
    )
    params = conf.activity_params()
    assert ledger_signals_frame(AS_OF, params) is None
    sql, sql_params = ledger_signals_sql(AS_OF, params)
    slow = read_frame(sql, sql_params, SIGNAL_SQL_COLUMNS)
    assert float(slow.loc[0, "outflow_30"]) == 1e17
