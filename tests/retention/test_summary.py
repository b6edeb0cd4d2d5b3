"""The running per-client summary of the rollup (segmentation/summary.py) the dormancy stage reads:
moved from date to date it must give exactly what the full computation over the rollup gives,
with late trades for earlier days and reversals arriving between the nights; an earlier date
falls back to the full computation; a move that fails leaves the previous summary."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from clients.models import Client, Trade
from retention import conf
from retention.inputs import read_activity_inputs
from retention.models import ClientActivity
from segmentation import summary
from segmentation.models import ActivitySummaryState, ClientActivitySummary, ResultSet
from segmentation.rollup import activity_rollup
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import add_trade, local_noon

__all__ = ["eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

DEMO_AS_OF = dt.date(2026, 11, 21)  # the demo ledger holds everything before this day
START = dt.date(2026, 11, 12)


@pytest.fixture
def demo_book() -> list[int]:
    call_command("seed_demo", clients=300, months=24, seed=7, as_of=DEMO_AS_OF, no_progress=True, stdout=io.StringIO())
    activity_rollup()
    return list(Client.objects.order_by("id").values_list("id", flat=True))


def _ranges(ids: list[int]) -> list[tuple[int, int]]:
    """Three uneven client-id ranges covering every client (like the stage's chunks)."""
    cut1, cut2 = ids[len(ids) // 3], ids[2 * len(ids) // 3]
    return [(ids[0], cut1 - 1), (cut1, cut2), (cut2 + 1, ids[-1] + 10)]


def _assert_incremental_equals_full(day: dt.date, ids: list[int]) -> None:
    params = conf.activity_params()
    for low, high in _ranges(ids):
        days = summary.summary_days(day, params.recent_days, params.baseline_days, low, high)
        assert days is not None
        incremental = read_activity_inputs(day, low, high, params, days=days)
        full = read_activity_inputs(day, low, high, params)
        pd.testing.assert_frame_equal(incremental, full, check_exact=True)
        assert len(full) > 0


def _late_and_reversed(day: dt.date, ids: list[int], rng: np.random.Generator) -> None:
    """Trades arriving after `day`'s night: late ones for earlier days (on another channel too),
    reversals of old trades (one booked on the day it reverses, removing a trading day when
    the day had only that trade), and trades for clients that never traded."""
    clients = {client.pk: client for client in Client.objects.filter(pk__in=rng.choice(ids, 12, replace=False))}
    for offset, client in enumerate(clients.values()):
        when = local_noon(day - dt.timedelta(days=int(rng.integers(1, 400))))
        add_trade(
            client, commission=f"{rng.uniform(1, 30):.2f}", when=when, channel="online" if offset % 2 else "mobile"
        )
    originals = Trade.objects.filter(
        reverses__isnull=True, reversed_by__isnull=True, executed_at__lt=local_noon(day)
    ).order_by("?")[:8]
    for position, original in enumerate(originals):
        booked = original.executed_at if position % 2 == 0 else local_noon(day - dt.timedelta(days=1))
        add_trade(
            original.client,
            commission=original.commission,
            amount=original.amount,
            when=booked,
            channel=original.channel,
            reverses=original,
        )
    never = Client.objects.exclude(pk__in=Trade.objects.values("client_id")).order_by("id").first()
    if never is not None:
        add_trade(never, commission=Decimal("2.50"), when=local_noon(day - dt.timedelta(days=2)))
    activity_rollup()


def test_moving_the_summary_night_by_night_equals_the_full_computation(demo_book: list[int]) -> None:
    rng = np.random.default_rng(5)
    days = [START + dt.timedelta(days=offset) for offset in range(8)]  # 11-12 .. 11-19, then after the ledger
    days += [DEMO_AS_OF + dt.timedelta(days=offset) for offset in (0, 1, 30, 31)]
    recomputed = []
    for night, day in enumerate(days):
        _assert_incremental_equals_full(day, demo_book)
        state = ActivitySummaryState.objects.get(name=summary.STATE)
        assert state.as_of == day
        recomputed.append(state.recomputed)
        if night % 2 == 0:
            _late_and_reversed(day, demo_book, rng)
    rows = ClientActivitySummary.objects.count()
    # The first night built the summary; the next consecutive ones recomputed only part of it.
    assert recomputed[0] >= 0.9 * rows
    assert max(recomputed[1:8]) < 0.5 * rows
    # Re-running the last night changes nothing and recomputes nobody.
    _assert_incremental_equals_full(days[-1], demo_book)
    assert ActivitySummaryState.objects.get(name=summary.STATE).recomputed == recomputed[-1]


def test_late_trades_after_the_night_of_the_same_date_are_picked_up(demo_book: list[int]) -> None:
    day = DEMO_AS_OF
    _assert_incremental_equals_full(day, demo_book)
    _late_and_reversed(day, demo_book, np.random.default_rng(9))
    _assert_incremental_equals_full(day, demo_book)  # same date, newer rollup


def test_an_earlier_date_or_other_windows_fall_back_or_rebuild(demo_book: list[int], settings) -> None:
    params = conf.activity_params()
    assert summary.summary_days(DEMO_AS_OF, params.recent_days, params.baseline_days, 1, 10**9) is not None
    earlier = DEMO_AS_OF - dt.timedelta(days=100)
    assert summary.summary_days(earlier, params.recent_days, params.baseline_days, 1, 10**9) is None
    assert ActivitySummaryState.objects.get(name=summary.STATE).as_of == DEMO_AS_OF  # untouched

    settings.ACTIVITY_RECENT_DAYS = 60
    _assert_incremental_equals_full(DEMO_AS_OF + dt.timedelta(days=1), demo_book)
    assert ActivitySummaryState.objects.get(name=summary.STATE).recent_window == 60


def test_a_failed_move_leaves_the_previous_summary(demo_book: list[int], monkeypatch) -> None:
    params = conf.activity_params()
    summary.move_summary(START, params.recent_days, params.baseline_days)
    before = sorted(ClientActivitySummary.objects.values_list(*[f.attname for f in ClientActivitySummary._meta.fields]))
    state = ActivitySummaryState.objects.values().get(name=summary.STATE)

    def killed(rows):  # the rows of the expiring clients are already deleted when this fails
        raise RuntimeError("killed during the move")

    monkeypatch.setattr(summary, "_write", killed)
    with pytest.raises(RuntimeError, match="killed"):
        summary.move_summary(START + dt.timedelta(days=3), params.recent_days, params.baseline_days)
    after = sorted(ClientActivitySummary.objects.values_list(*[f.attname for f in ClientActivitySummary._meta.fields]))
    assert after == before
    assert ActivitySummaryState.objects.values().get(name=summary.STATE) == state


def _published_activity() -> list[tuple]:
    generation = ResultSet.objects.get(kind=ResultSet.Kind.ACTIVITY, is_published=True).generation
    fields = [f.attname for f in ClientActivity._meta.fields if f.attname not in ("id", "generation")]
    return sorted(ClientActivity.objects.filter(generation=generation).values_list(*fields))


def test_the_dormancy_stage_gives_the_same_rows_with_and_without_the_summary(demo_book: list[int], run_nightly) -> None:
    day = DEMO_AS_OF
    assert run_nightly(day - dt.timedelta(days=1), ["dormancy"], chunk_size=70).status == "succeeded"
    _late_and_reversed(day, demo_book, np.random.default_rng(3))
    assert run_nightly(day, ["dormancy"], chunk_size=70).status == "succeeded"  # the summary moves
    moved = _published_activity()
    summary.discard_summary()
    assert run_nightly(day, ["dormancy"], chunk_size=70).status == "succeeded"  # built from scratch
    assert _published_activity() == moved
    # An earlier date (the summary is on `day`): computed in full, the summary untouched.
    assert run_nightly(day - dt.timedelta(days=40), ["dormancy"], chunk_size=70).status == "succeeded"
    assert ActivitySummaryState.objects.get(name=summary.STATE).as_of == day
