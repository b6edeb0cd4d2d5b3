"""The database itself rejects ledger rows that break the rules, even when a bulk load
or a raw query skips model validation."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from clients.models import AssetSnapshot, Trade
from tests import factories

pytestmark = pytest.mark.django_db


def _raw_insert_trade(**overrides: object) -> None:
    base = factories.TradeFactory.build()
    client = factories.ClientFactory()
    instrument = factories.InstrumentFactory()
    values = {
        "trade_id": base.trade_id,
        "client_id": client.pk,
        "executed_at": base.executed_at,
        "instrument_id": instrument.pk,
        "side": "buy",
        "quantity": Decimal("100"),
        "price": Decimal("10"),
        "amount": Decimal("1000"),
        "commission": Decimal("0.30"),
        "channel": "mobile",
        "created_at": base.executed_at,
    }
    values.update(overrides)
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO clients_trade ({columns}) VALUES ({placeholders})", list(values.values()))  # noqa: S608


def test_raw_insert_with_valid_values_is_accepted() -> None:
    _raw_insert_trade()
    assert Trade.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("commission", Decimal("-0.01")), ("quantity", Decimal("0")), ("quantity", Decimal("-5")), ("side", "hold")],
)
def test_raw_insert_breaking_a_rule_is_rejected(field: str, value: object) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_insert_trade(**{field: value})
    assert Trade.objects.count() == 0


def test_bulk_create_bypassing_validation_is_rejected() -> None:
    trade = factories.TradeFactory.build(
        client=factories.ClientFactory(), instrument=factories.InstrumentFactory(), commission=Decimal("-1")
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Trade.objects.bulk_create([trade])


def test_a_reversal_carries_negated_money_and_is_allowed_once() -> None:
    original = factories.TradeFactory()
    reversal = factories.TradeFactory(
        client=original.client,
        instrument=original.instrument,
        reverses=original,
        amount=-original.amount,
        commission=-original.commission,
    )
    assert reversal.reverses == original
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.TradeFactory(
            client=original.client,
            instrument=original.instrument,
            reverses=original,
            amount=-original.amount,
            commission=-original.commission,
        )


def test_a_reversal_with_positive_commission_is_rejected() -> None:
    original = factories.TradeFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.TradeFactory(
            reverses=original, client=original.client, amount=-original.amount, commission=original.commission
        )


def test_one_asset_snapshot_per_client_per_day() -> None:
    snapshot = factories.AssetSnapshotFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        AssetSnapshot.objects.create(
            client=snapshot.client, as_of=snapshot.as_of, cash=Decimal(1), market_value=Decimal(1)
        )


def test_negative_cash_flow_without_reversal_is_rejected() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.CashFlowFactory(amount=Decimal("-5"))


def test_closed_client_needs_a_closing_date() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ClientFactory(status="closed", closed_on=None)
