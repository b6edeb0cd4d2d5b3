"""Bulk reads and writes: the same behaviour on SQLite (cursor, bulk_create) and PostgreSQL
(COPY, partition swap). Run the suite with DATABASE_URL=postgres://... for the second path."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.db import connection

from brokercrm.lib.db import is_postgres
from brokercrm.nightly.bulk import (
    bulk_replace,
    drop_orphan_partitions,
    drop_partition,
    partition_name,
    read_frame,
    replace_partition,
)
from segmentation.models import NeedsProfile, Tier, TierResult
from tests.segmentation.books import make_clients

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 6, 30)


def tier_frame(client_ids: list[int], day: dt.date, tier: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": day,
            "client_id": client_ids,
            "tier": tier,
            "value": [1234.56] * len(client_ids),
            "rank": range(1, len(client_ids) + 1),
            "percentile": 0.0,
            "previous_tier": pd.array([None] * len(client_ids), dtype="Int64"),
            "change": 3,  # TierMove.NEW
        }
    )


def stored(day: dt.date) -> list[tuple]:
    return sorted(TierResult.objects.filter(as_of=day).values_list("client_id", "tier", "value", "previous_tier"))


def test_read_frame_returns_the_rows_of_a_select() -> None:
    clients = make_clients(3)
    frame = read_frame(
        "SELECT id, client_no FROM clients_client WHERE id >= %s ORDER BY id", [clients[1].pk], ["id", "no"]
    )
    assert frame["id"].tolist() == [clients[1].pk, clients[2].pk]
    assert frame["no"].tolist() == [clients[1].client_no, clients[2].client_no]


def test_read_frame_of_no_rows_has_the_columns() -> None:
    frame = read_frame("SELECT id, client_no FROM clients_client WHERE id < 0", [], ["id", "no"])
    assert frame.empty
    assert list(frame.columns) == ["id", "no"]


def test_bulk_replace_swaps_only_the_matching_rows_and_keeps_nulls_and_blanks() -> None:
    clients = make_clients(2)
    base = {
        "generation": 1,
        "trades": 0,
        "active_days": 0,
        "trades_per_month": 0.0,
        "amount": 0.0,
        "avg_ticket": None,
        "turnover": None,
        "holding_style": "unknown",
        "holding_mix": {},
        "primary_channel": "",
        "channel_mix": {"mobile": {"trades": 1, "note": 'quote " and, comma, 中文, back\\slash'}},
        "product_mix": {},
        "preferences": {"market": "secondary"},
        "top_industries": ["Banking"],
    }
    old = pd.DataFrame([{"as_of": DAY, "client_id": clients[0].pk, **base}])
    other_day = pd.DataFrame(
        [{**base, "as_of": DAY - dt.timedelta(days=7), "client_id": clients[1].pk, "generation": 2}]
    )
    bulk_replace(NeedsProfile, old, where={"as_of": DAY})
    bulk_replace(NeedsProfile, other_day, where={"as_of": DAY - dt.timedelta(days=7)})
    new = pd.DataFrame([{"as_of": DAY, "client_id": clients[1].pk, **base, "trades": 5, "avg_ticket": 10.5}])
    assert bulk_replace(NeedsProfile, new, where={"as_of": DAY}) == 1
    rows = {(row.as_of, row.client_id): row for row in NeedsProfile.objects.all()}
    assert set(rows) == {(DAY, clients[1].pk), (DAY - dt.timedelta(days=7), clients[1].pk)}
    row = rows[(DAY, clients[1].pk)]
    assert row.trades == 5
    assert float(row.avg_ticket) == 10.5
    assert row.turnover is None
    assert row.primary_channel == ""
    assert row.channel_mix == {"mobile": {"trades": 1, "note": 'quote " and, comma, 中文, back\\slash'}}
    assert row.top_industries == ["Banking"]


def test_replace_partition_replaces_one_date_and_leaves_the_others() -> None:
    clients = make_clients(3)
    ids = [client.pk for client in clients]
    replace_partition(TierResult, tier_frame(ids, DAY, Tier.SMALL), key_field="as_of", key_value=DAY)
    replace_partition(
        TierResult,
        tier_frame(ids[:1], DAY + dt.timedelta(days=1), Tier.VIP),
        key_field="as_of",
        key_value=DAY + dt.timedelta(days=1),
    )
    published = []
    replace_partition(
        TierResult,
        tier_frame(ids[:2], DAY, Tier.MAJOR),
        key_field="as_of",
        key_value=DAY,
        in_swap=lambda: published.append(stored(DAY)),
    )
    assert stored(DAY) == [
        (ids[0], Tier.MAJOR, Decimal("1234.56"), None),
        (ids[1], Tier.MAJOR, Decimal("1234.56"), None),
    ]
    assert published == [stored(DAY)]  # in_swap ran inside the swap and saw the new rows
    assert len(stored(DAY + dt.timedelta(days=1))) == 1
    drop_partition(TierResult, key_field="as_of", key_value=DAY)
    assert stored(DAY) == []
    assert len(stored(DAY + dt.timedelta(days=1))) == 1


def test_a_failure_during_the_swap_keeps_the_old_rows() -> None:
    clients = make_clients(2)
    ids = [client.pk for client in clients]
    replace_partition(TierResult, tier_frame(ids, DAY, Tier.SMALL), key_field="as_of", key_value=DAY)
    before = stored(DAY)

    def publish() -> None:
        raise RuntimeError("publish failed")

    with pytest.raises(RuntimeError, match="publish failed"):
        replace_partition(
            TierResult, tier_frame(ids[:1], DAY, Tier.VIP), key_field="as_of", key_value=DAY, in_swap=publish
        )
    assert stored(DAY) == before
    assert drop_orphan_partitions(TierResult) == 0  # the side table went with the failure


@pytest.mark.postgres
def test_on_postgres_each_date_is_its_own_partition() -> None:
    clients = make_clients(2)
    replace_partition(TierResult, tier_frame([clients[0].pk], DAY, Tier.VIP), key_field="as_of", key_value=DAY)
    replace_partition(TierResult, tier_frame([clients[1].pk], DAY, Tier.VIP), key_field="as_of", key_value=DAY)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'segmentation_tierresult'::regclass"
        )
        partitions = [row[0] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN SELECT * FROM segmentation_tierresult WHERE as_of = %s", [DAY])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert partitions == [partition_name(TierResult, DAY)]
    assert partition_name(TierResult, DAY) in plan
    assert stored(DAY) == [(clients[1].pk, Tier.VIP, Decimal("1234.56"), None)]


@pytest.mark.postgres
def test_orphans_of_a_crashed_load_are_dropped() -> None:
    assert is_postgres()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {partition_name(TierResult, DAY)}_ndeadbeef (LIKE segmentation_tierresult)")
    assert drop_orphan_partitions(TierResult) == 1
    assert drop_orphan_partitions(TierResult) == 0


def test_rows_with_and_without_nulls_round_trip() -> None:
    clients = make_clients(4)
    frame = tier_frame([client.pk for client in clients], DAY, Tier.ORDINARY)
    frame["previous_tier"] = pd.array([None, Tier.VIP, None, Tier.SMALL], dtype="Int64")
    frame["value"] = [0.0, -12.34, 99999999.99, 0.01]
    frame["percentile"] = [0.0, 12.5, 99.999, 50.0]
    replace_partition(TierResult, frame, key_field="as_of", key_value=DAY)
    stored_rows = {
        row.client_id: (row.previous_tier, row.value, row.percentile, row.rank)
        for row in TierResult.objects.filter(as_of=DAY)
    }
    assert stored_rows == {
        clients[0].pk: (None, Decimal("0.00"), 0.0, 1),
        clients[1].pk: (Tier.VIP, Decimal("-12.34"), 12.5, 2),
        clients[2].pk: (None, Decimal("99999999.99"), 99.999, 3),
        clients[3].pk: (Tier.SMALL, Decimal("0.01"), 50.0, 4),
    }
