"""The ledger's indexes after clients.0006 (issue #3): what each insert maintains, and the
rules that stay the database's: a trade id once, a trade reversed at most once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from clients.models import Trade
from tests import factories

pytestmark = pytest.mark.django_db


def _raw_reversal(original: Trade, trade_id: str) -> None:
    """A reversing row written by plain SQL, as a bulk load could: no model validation."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity, price,"
            " amount, commission, channel, created_at, reverses_id)"
            " SELECT %s, client_id, executed_at, instrument_id, side, quantity, price, -amount, -commission,"
            " channel, created_at, id FROM clients_trade WHERE id = %s",
            [trade_id, original.pk],
        )


def test_a_trade_is_reversed_at_most_once_even_by_raw_sql() -> None:
    original = factories.TradeFactory()
    _raw_reversal(original, "R1")
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_reversal(original, "R2")
    assert list(Trade.objects.filter(reverses=original).values_list("trade_id", flat=True)) == ["R1"]


def test_many_original_trades_and_reversals_of_different_trades() -> None:
    first, second = factories.TradeFactory(), factories.TradeFactory()
    factories.TradeFactory.create_batch(3)  # originals: no reverses, no constraint entry
    _raw_reversal(first, "R1")
    _raw_reversal(second, "R2")
    assert Trade.objects.filter(reverses__isnull=False).count() == 2
    # The reverse accessor is a (foreign key) manager now, with at most one row.
    assert [t.trade_id for t in first.reversed_by.all()] == ["R1"]
    assert set(Trade.objects.filter(reversed_by__isnull=True).values_list("trade_id", flat=True)) == set(
        Trade.objects.exclude(pk__in=[first.pk, second.pk]).values_list("trade_id", flat=True)
    )


def test_a_trade_id_is_held_once() -> None:
    trade = factories.TradeFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.TradeFactory(trade_id=trade.trade_id, quantity=Decimal("1"))


def _indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'clients_trade'")
        return dict(cursor.fetchall())


@pytest.mark.postgres
def test_the_ledger_maintains_these_indexes_and_no_other() -> None:
    """Each one is paid on every ledger insert (clients.models.Trade says which reads need it):
    no pattern index on trade_id, no entry for original trades in the reversal index."""
    definitions = _indexes()
    shape = {name: definition.split(" USING ", 1)[1] for name, definition in definitions.items()}
    instrument = next(name for name in shape if name.startswith("clients_trade_instrument_id"))
    assert shape == {
        "clients_trade_pkey": "btree (id)",
        "clients_trade_trade_id_key": "btree (trade_id)",
        "trade_reversed_at_most_once": "btree (reverses_id) WHERE (reverses_id IS NOT NULL)",
        "trade_client_time_id": "btree (client_id, executed_at, id)",
        "trade_executed_at": "btree (executed_at)",
        instrument: "btree (instrument_id)",
    }
    assert "UNIQUE" in definitions["trade_reversed_at_most_once"]


@pytest.mark.postgres
def test_the_foreign_keys_are_kept() -> None:
    """The reversal's foreign key stays a constraint; the client and instrument references are
    checked by set-based triggers since clients.0009 (tests/ingest/test_ledger_references.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'clients_trade'::regclass"
            " AND contype = 'f' ORDER BY 1"
        )
        found = [row[0] for row in cursor.fetchall()]
    assert found == [
        "FOREIGN KEY (reverses_id) REFERENCES clients_trade(id) DEFERRABLE INITIALLY DEFERRED",
    ]


@pytest.mark.postgres
def test_lookups_by_reverses_use_the_partial_index() -> None:
    """The `reversed_by` join and the importer's "already reversed" check look up
    `reverses_id = <id>`: the partial index serves them (its predicate is implied)."""
    original = factories.TradeFactory()
    _raw_reversal(original, "R1")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT id FROM clients_trade WHERE reverses_id = %s", [original.pk])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "trade_reversed_at_most_once" in plan


def test_reference_lookup_finds_every_key_even_one_holding_the_separator() -> None:
    """The importer sends a chunk's client numbers as one text split on chr(31) (PostgreSQL),
    falling back to an array when a key holds that character; both find exactly the held keys."""
    from clients.ingest.kinds import CLIENT
    from clients.ingest.validation import _fetch_ids

    plain = factories.ClientFactory(client_no="LOOKUP-1")
    odd = factories.ClientFactory(client_no="LOOKUP\x1f2")
    assert _fetch_ids(CLIENT, {"LOOKUP-1", "MISSING"}) == {"LOOKUP-1": plain.pk}
    assert _fetch_ids(CLIENT, {"LOOKUP-1", "LOOKUP\x1f2", "MISSING"}) == {"LOOKUP-1": plain.pk, "LOOKUP\x1f2": odd.pk}
