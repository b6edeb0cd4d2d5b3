"""The segment history's diffs (retention/segment_log.py): the diff of two states, and the
SQL diff of two activity generations (PostgreSQL: one FULL JOIN; elsewhere two joins) store the
same changes: the clients whose segment changed, appeared (their segment) or are gone (0)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from retention import segment_log
from retention.models import ClientActivity, SegmentChange

DAY = dt.date(2026, 11, 22)


def state(pairs: dict[int, int]) -> pd.DataFrame:
    return pd.DataFrame({"client_id": list(pairs), "code": list(pairs.values())}, dtype="int64")


def test_diff_states_gives_changed_new_and_gone_clients_in_client_order() -> None:
    base = state({9: 1, 3: 2, 5: 3, 7: 0, 1: 4, 11: 2})  # unsorted, like a side table read
    new = state({3: 2, 5: 1, 1: 4, 12: 3, 2: 0, 9: 1, 13: 1})
    changes = segment_log.diff_states(new, base)
    # 5 changed, 11 gone, 12 and 13 new; 7 (0 in base) and 2 (0 in new) count as absent.
    assert list(zip(changes["client_id"], changes["code"], strict=True)) == [(5, 1), (11, 0), (12, 3), (13, 1)]


def test_diff_states_of_empty_states() -> None:
    empty = state({})
    assert segment_log.diff_states(empty, empty).empty
    assert segment_log.diff_states(state({4: 2}), empty).to_numpy().tolist() == [[4, 2]]
    assert segment_log.diff_states(empty, state({4: 2})).to_numpy().tolist() == [[4, 0]]


def activity(generation: int, segments: dict[int, str]) -> None:
    ClientActivity.objects.bulk_create(
        ClientActivity(
            generation=generation,
            as_of=DAY,
            client_id=client_id,
            segment=segment,
            trading_days=0,
            recent_trading_days=0,
        )
        for client_id, segment in segments.items()
    )


def stored_changes() -> list[tuple[int, int]]:
    return sorted(SegmentChange.objects.filter(as_of=DAY).order_by().values_list("client_id", "segment"))


@pytest.mark.django_db
def test_the_sql_diff_of_two_generations_equals_the_diff_of_their_states() -> None:
    old = {client_id: segment_log.SEGMENTS[client_id % 4] for client_id in range(1, 400)}
    new = {client_id: segment for client_id, segment in old.items() if client_id % 10 != 3}  # gone
    for client_id in range(1, 400, 7):
        new[client_id] = segment_log.SEGMENTS[(client_id + 1) % 4]  # changed
    new.update({client_id: segment_log.SEGMENTS[client_id % 4] for client_id in range(500, 520)})  # new
    activity(1, old)
    activity(2, new)
    expected = sorted(
        [(client_id, segment_log.CODES[segment]) for client_id, segment in new.items() if old.get(client_id) != segment]
        + [(client_id, 0) for client_id in old if client_id not in new]
    )
    table = ClientActivity._meta.db_table
    assert segment_log._insert_changes(DAY, 2, 1, table) == len(expected)
    assert stored_changes() == expected
    SegmentChange.objects.filter(as_of=DAY).delete()
    base_state = state({client_id: segment_log.CODES[segment] for client_id, segment in old.items()})
    assert segment_log._insert_changes_from_state(DAY, 2, base_state, table) == len(expected)
    assert stored_changes() == expected
