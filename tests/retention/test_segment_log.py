"""The activity-segment history (retention/segment_log.py): reading the segments of a recorded
date equals computing them, across several nights, with a gap in the nights (the read falls
back to computing), a re-run of a date, late trades and a back-dated closure; and the metrics
stage gives the same numbers from the history as from computing."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from brokercrm.models import RunStatus
from clients.models import Client, Trade
from retention import segment_log, selectors
from retention.models import SegmentChange, SegmentLogDate
from tests import factories
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import make_clients, trade_on

__all__ = ["eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

FIRST = dt.date(2026, 6, 20)
NIGHTS = [FIRST + dt.timedelta(days=n) for n in range(6)]  # 20 .. 25 June


@pytest.fixture
def book():
    """80 clients whose segments move over the nights: last trades around the 30- and 180-day
    thresholds, trades during the nights, a client opened and one closed during them."""
    manager = factories.AccountManagerFactory()
    instrument = factories.InstrumentFactory(symbol="600000.SH")
    clients = make_clients(80, manager=manager, opened_on=dt.date(2024, 1, 2))
    rng = np.random.default_rng(7)
    trades = []
    for index, client in enumerate(clients):
        # last trade 25..35 or 175..185 days before the first night: crosses a threshold meanwhile
        last = int(rng.integers(25, 36)) if index % 2 else int(rng.integers(175, 186))
        every = int(rng.integers(2, 15))
        first = last + int(rng.integers(30, 300))
        trades += [
            trade_on(client, FIRST - dt.timedelta(days=ago), instrument) for ago in range(first, last - 1, -every)
        ]
        if index % 7 == 0:  # trades again during the nights
            trades.append(trade_on(client, NIGHTS[int(rng.integers(1, len(NIGHTS)))], instrument))
    Trade.objects.bulk_create(trades)
    (newcomer,) = make_clients(1, manager=manager, opened_on=NIGHTS[2])
    leaver = clients[3]
    leaver.closed_on, leaver.status = NIGHTS[3], Client.Status.CLOSED
    leaver.save()
    return {"clients": clients, "newcomer": newcomer, "instrument": instrument}


def computed(day: dt.date) -> pd.DataFrame:
    frame = selectors.activity_frame(day)
    return (
        pd.DataFrame({"client_id": frame["client_id"].astype("int64").to_numpy(), "segment": frame["segment"]})
        .sort_values("client_id")
        .reset_index(drop=True)
    )


def same(left: pd.DataFrame | None, right: pd.DataFrame) -> bool:
    assert left is not None
    left = left.sort_values("client_id").reset_index(drop=True)
    return (
        left["client_id"].tolist() == right["client_id"].tolist()
        and left["segment"].tolist() == right["segment"].tolist()
    )


def night(run_nightly, day: dt.date) -> None:
    run = run_nightly(day, ["rollup", "dormancy"])
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_reading_each_recorded_night_equals_computing_it(book, run_nightly):
    for day in NIGHTS:
        night(run_nightly, day)
    entries = {entry.as_of: entry for entry in SegmentLogDate.objects.all()}
    assert sorted(entries) == NIGHTS
    assert entries[NIGHTS[0]].base is None  # the first night: a baseline (every client)
    assert entries[NIGHTS[0]].rows == len(computed(NIGHTS[0]))
    for before, day in itertools.pairwise(NIGHTS):
        assert entries[day].base == before  # the following nights: changes only
        assert entries[day].depth == entries[before].depth + 1
    changes = sum(entries[day].rows for day in NIGHTS[1:])
    assert 0 < changes < 5 * len(book["clients"])  # the segments moved, and far fewer rows than every client
    # the newcomer appears on the night it opens, the leaver turns closed
    assert SegmentChange.objects.filter(as_of=NIGHTS[2], client=book["newcomer"]).exists()
    assert SegmentChange.objects.get(as_of=NIGHTS[3], client=book["clients"][3]).segment == segment_log.CODES["closed"]
    for day in NIGHTS:
        assert same(segment_log.segments_on(day), computed(day)), day
        assert same(selectors.activity_segments(day), computed(day)), day


def test_a_gap_in_the_nights_falls_back_to_computing(book, run_nightly):
    night(run_nightly, NIGHTS[0])
    night(run_nightly, NIGHTS[1])
    night(run_nightly, NIGHTS[3])  # 22 June not run
    night(run_nightly, NIGHTS[4])
    # the night after the gap is diffed against the last recorded night: still exact
    assert SegmentLogDate.objects.get(as_of=NIGHTS[3]).base == NIGHTS[1]
    assert same(segment_log.segments_on(NIGHTS[3]), computed(NIGHTS[3]))
    # a date never recorded: no history, computed
    assert segment_log.segments_on(NIGHTS[2]) is None
    assert same(selectors.activity_segments(NIGHTS[2]), computed(NIGHTS[2]))
    # a chain with a missing link (a recorded date lost): no history for the dates after it
    SegmentChange.objects.filter(as_of=NIGHTS[1]).delete()
    SegmentLogDate.objects.filter(as_of=NIGHTS[1]).delete()
    assert segment_log.segments_on(NIGHTS[3]) is None
    assert segment_log.segments_on(NIGHTS[0]) is not None
    assert same(selectors.activity_segments(NIGHTS[3]), computed(NIGHTS[3]))
    # the next night starts a new chain with a baseline (the published rows are of NIGHTS[4])
    night(run_nightly, NIGHTS[5])
    assert SegmentLogDate.objects.get(as_of=NIGHTS[5]).base == NIGHTS[4]
    assert segment_log.segments_on(NIGHTS[5]) is None  # NIGHTS[4] is based on the broken chain
    assert same(selectors.activity_segments(NIGHTS[5]), computed(NIGHTS[5]))


def test_re_running_a_date_keeps_every_later_date_exact(book, run_nightly):
    for day in NIGHTS[:4]:
        night(run_nightly, day)
    # a late trade dated on the second night, then that night run again: its rows change and
    # the night based on it is re-based, so every date still reads as computed
    quiet = next(
        client
        for client in book["clients"]
        if computed(NIGHTS[1]).set_index("client_id").loc[client.pk, "segment"] == "dormant"
    )
    trade_on(quiet, NIGHTS[1], book["instrument"]).save()
    night(run_nightly, NIGHTS[1])
    # its base's activity rows are gone: diffed against the base's recorded state instead, the
    # same rows an undisturbed night records (a faulted night's re-run equals an undisturbed one)
    assert SegmentLogDate.objects.get(as_of=NIGHTS[1]).base == NIGHTS[0]
    assert SegmentLogDate.objects.get(as_of=NIGHTS[2]).base == NIGHTS[1]
    for day in NIGHTS[:4]:
        assert same(segment_log.segments_on(day), computed(day)), day
    assert computed(NIGHTS[2]).set_index("client_id").loc[quiet.pk, "segment"] != "dormant"
    # the same date run twice in a row gives the same history
    night(run_nightly, NIGHTS[3])
    night(run_nightly, NIGHTS[3])
    for day in NIGHTS[:4]:
        assert same(segment_log.segments_on(day), computed(day)), day


def test_late_data_after_a_night_is_recomputed_on_read(book, run_nightly):
    for day in NIGHTS[:3]:
        night(run_nightly, day)
    frame = computed(NIGHTS[1]).set_index("client_id")["segment"]
    quiet = next(client for client in book["clients"] if frame.loc[client.pk] == "dormant")
    other = next(client for client in book["clients"][4:] if frame.loc[client.pk] != "closed")
    # a trade dated on NIGHTS[1] arrives after it (rolled up the next night); a closure is
    # back-dated to NIGHTS[1]
    trade_on(quiet, NIGHTS[1], book["instrument"]).save()
    other.closed_on, other.status = NIGHTS[1], Client.Status.CLOSED
    other.save()
    night(run_nightly, NIGHTS[3])
    recorded = segment_log._state(NIGHTS[1]).set_index("client_id")["code"]
    assert recorded.loc[quiet.pk] == segment_log.CODES["dormant"]  # as recorded that night
    fresh = computed(NIGHTS[1])
    assert fresh.set_index("client_id").loc[quiet.pk, "segment"] != "dormant"
    assert fresh.set_index("client_id").loc[other.pk, "segment"] == "closed"
    assert set(segment_log.changed_clients(SegmentLogDate.objects.get(as_of=NIGHTS[1]))) >= {quiet.pk, other.pk}
    assert same(segment_log.segments_on(NIGHTS[1]), fresh)
    # too many changed clients: computed instead
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment_log, "MAX_RECOMPUTE", 1)
        assert segment_log.segments_on(NIGHTS[1]) is None
        assert same(selectors.activity_segments(NIGHTS[1]), fresh)


def test_other_activity_parameters_are_not_read_from_the_history(book, run_nightly):
    night(run_nightly, NIGHTS[0])
    night(run_nightly, NIGHTS[1])
    assert segment_log.segments_on(NIGHTS[0]) is not None
    with override_settings(ACTIVITY_ACTIVE_DAYS=20):
        assert segment_log.segments_on(NIGHTS[0]) is None
        assert same(selectors.activity_segments(NIGHTS[0]), computed(NIGHTS[0]))


def test_a_baseline_every_checkpoint_nights(book, run_nightly, monkeypatch):
    monkeypatch.setattr(segment_log, "CHECKPOINT_NIGHTS", 3)
    for day in NIGHTS:
        night(run_nightly, day)
    bases = dict(SegmentLogDate.objects.values_list("as_of", "base"))
    assert [day for day in NIGHTS if bases[day] is None] == [NIGHTS[0], NIGHTS[3]]
    for day in NIGHTS:
        assert same(segment_log.segments_on(day), computed(day)), day


def test_forget_drops_the_history(book, run_nightly):
    night(run_nightly, NIGHTS[0])
    night(run_nightly, NIGHTS[1])
    assert segment_log.forget(NIGHTS[1]) == 1
    assert segment_log.segments_on(NIGHTS[1]) is None
    assert segment_log.forget() == 1
    assert not SegmentChange.objects.exists()


def test_prune_keeps_what_the_kept_dates_need(book, run_nightly, monkeypatch):
    """Chains of 2 nights (baselines on nights 0, 2, 4); keeping 2 days back from night 5 keeps
    nights 3-5 and night 2, the baseline night 3 is diffed against; nights 0 and 1 go."""
    monkeypatch.setattr(segment_log, "CHECKPOINT_NIGHTS", 2)
    with override_settings(SEGMENT_HISTORY_KEEP_DAYS=10_000):
        for day in NIGHTS:
            night(run_nightly, day)
    assert sorted(SegmentLogDate.objects.values_list("as_of", flat=True)) == NIGHTS
    bases = dict(SegmentLogDate.objects.values_list("as_of", "base"))
    assert [day for day in NIGHTS if bases[day] is None] == [NIGHTS[0], NIGHTS[2], NIGHTS[4]]

    assert segment_log.prune(2) == [NIGHTS[0], NIGHTS[1]]
    assert sorted(SegmentLogDate.objects.values_list("as_of", flat=True)) == NIGHTS[2:]
    assert not SegmentChange.objects.filter(as_of__in=NIGHTS[:2]).exists()
    for day in NIGHTS[2:]:
        assert same(segment_log.segments_on(day), computed(day)), day
    assert segment_log.segments_on(NIGHTS[1]) is None  # computed instead by its readers
    assert same(selectors.activity_segments(NIGHTS[1]), computed(NIGHTS[1]))
    assert segment_log.prune(2) == []


def test_each_night_prunes_the_history(book, run_nightly, monkeypatch):
    monkeypatch.setattr(segment_log, "CHECKPOINT_NIGHTS", 2)  # baselines on nights 0 and 2
    with override_settings(SEGMENT_HISTORY_KEEP_DAYS=10_000):
        for day in NIGHTS[:3]:
            night(run_nightly, day)
    assert sorted(SegmentLogDate.objects.values_list("as_of", flat=True)) == NIGHTS[:3]
    with override_settings(SEGMENT_HISTORY_KEEP_DAYS=1):
        night(run_nightly, NIGHTS[3])  # keeps night 3 and the baseline it is diffed against
    assert sorted(SegmentLogDate.objects.values_list("as_of", flat=True)) == NIGHTS[2:4]
    assert same(segment_log.segments_on(NIGHTS[3]), computed(NIGHTS[3]))
    with override_settings(SEGMENT_HISTORY_KEEP_DAYS=0), pytest.raises(ImproperlyConfigured, match="at least 1"):
        segment_log.keep_days()
