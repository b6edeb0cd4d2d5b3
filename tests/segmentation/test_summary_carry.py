"""Moving the running activity summary (segmentation/summary.py) on PostgreSQL carries a client's
lifetime values forward from its stored row when its history up to the summary's date has not
changed, and reads only the rollup rows of the windows (summary._moved_rows). Each move must
give exactly the rows computed from the whole rollup (summary.compute_rows, what a build
writes): on a hand-built rollup with multi-channel days, fee-only and reversed days, negative
and float-inexact commissions, days on the window edges and after the date, a commission too
large to carry exactly, and new trades both after and before the summary's date. The plain SQL
path (SQLite) must give the same rows too."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from clients.models import Client
from segmentation import summary
from segmentation.models import ActivitySummaryState, ClientActivitySummary, ClientDailyActivity
from segmentation.rollup import activity_rollup
from tests.segmentation.books import add_trade, local_noon, make_clients

pytestmark = pytest.mark.django_db

START = dt.date(2026, 6, 30)
RECENT, BASELINE = 90, 365
CHANNELS = ["mobile", "online", "phone"]
FIELDS = [field.attname for field in ClientActivitySummary._meta.fields]
# Days after START the summary is moved to, one after the other: the next days (rows expiring
# on the window edges), a week, out of the recent window, past the baseline and year windows.
MOVES = [1, 2, 9, 92, 93, 400, 800]


def _row(
    client_id: int, day: dt.date, trades: int, commission: str, channel: str = "mobile", amount: str | None = None
) -> ClientDailyActivity:
    return ClientDailyActivity(
        client_id=client_id,
        day=day,
        channel=channel,
        trades=trades,
        amount=Decimal(amount) if amount is not None else Decimal(commission) * 1000,
        commission=Decimal(commission),
    )


def _book() -> tuple[list[int], int]:
    """Rollup rows (no ledger: nothing here is a new trade) for hand-picked and random clients;
    returns the client ids and the one whose commission is too large to carry exactly."""
    clients = [client.pk for client in make_clients(49)]
    back = lambda days: START - dt.timedelta(days=days)  # noqa: E731
    rows = [
        # Multi-channel days: two trading channels count one day; a fee-only row (0 trades) on
        # a trading day; commissions whose float sum is inexact (0.1 + 0.2).
        _row(clients[0], back(3), 2, "0.10", "mobile"),
        _row(clients[0], back(3), 1, "0.20", "online"),
        _row(clients[0], back(89), 1, "0.70", "mobile"),  # leaves the recent window the next day
        _row(clients[0], back(89), 0, "1.50", "phone"),
        _row(clients[0], back(454), 1, "3.33", "mobile"),  # leaves the baseline window next
        _row(clients[0], back(364), 0, "0.01", "online"),  # leaves the year next (not a trading day)
        # Reversals: a day netted to 0 trades (not a trading day), a reversal booked on a later
        # day (negative trades and money), a lifetime commission below zero.
        _row(clients[1], back(500), 1, "5.55"),
        _row(clients[1], back(500), 0, "0.00", "online"),
        _row(clients[1], back(120), 0, "0.00"),
        _row(clients[1], back(30), -1, "-5.65"),
        _row(clients[1], START, 1, "0.05"),
        # Days after START (the next rollup day bounds valid_until), and only such days.
        _row(clients[2], back(10), 1, "1.00"),
        _row(clients[2], START + dt.timedelta(days=1), 1, "2.00"),
        _row(clients[2], START + dt.timedelta(days=1), 2, "2.01", "online"),
        _row(clients[2], START + dt.timedelta(days=95), 1, "0.30"),
        _row(clients[3], START + dt.timedelta(days=2), 3, "9.99"),
        _row(clients[3], START + dt.timedelta(days=93), 0, "0.40"),
        # Only old days (valid forever), only fee rows (no trading day at all).
        _row(clients[4], back(700), 2, "7.00"),
        _row(clients[5], back(40), 0, "0.25"),
        _row(clients[5], back(2), 0, "0.35", "online"),
        # A commission beyond the exactly carried range (cents >= 2^50): computed in full; its
        # row expires the next day.
        _row(clients[6], back(1), 1, "20000000000000.07"),
        _row(clients[6], back(89), 1, "0.11"),
        # A day on each of the first dates moved to: on the summary's date when moved again.
        _row(clients[7], START, 1, "0.03"),
        _row(clients[7], START + dt.timedelta(days=1), 1, "0.05"),
        _row(clients[7], START + dt.timedelta(days=1), 0, "0.02", "online"),
        _row(clients[7], START + dt.timedelta(days=2), 2, "0.07"),
        _row(clients[7], START + dt.timedelta(days=9), 1, "0.13"),
    ]
    rng = np.random.default_rng(11)
    for client in clients[8:]:
        for offset in rng.choice(np.arange(-120, 820), size=int(rng.integers(1, 30)), replace=False):
            for channel in rng.choice(CHANNELS, size=int(rng.integers(1, 3)), replace=False):
                trades = int(rng.choice([-1, 0, 1, 1, 2, 5]))
                cents = int(rng.integers(1, 100_000)) * (-1 if trades < 0 else 1)
                rows.append(_row(client, back(int(offset)), trades, f"{cents / 100:.2f}", str(channel)))
    ClientDailyActivity.objects.bulk_create(rows)
    return clients, clients[6]


def _stored() -> list[tuple]:
    return sorted(ClientActivitySummary.objects.values_list(*FIELDS))


def _computed(day: dt.date) -> list[tuple]:
    """Every client's row on `day` from the whole rollup."""
    frame = summary.compute_rows(day, RECENT, BASELINE)[FIELDS]
    return sorted(
        tuple(None if pd.isna(value) else value for value in record)
        for record in frame.astype(object).itertuples(index=False)
    )


def _move(day: dt.date) -> None:
    assert summary.move_summary(day, RECENT, BASELINE)
    assert ActivitySummaryState.objects.get(name=summary.STATE).as_of == day


def _full_computations(monkeypatch) -> list[set[int] | None]:
    """Record the clients each computation from the whole history covers (None: every client)."""
    calls: list[set[int] | None] = []
    compute = summary.compute_rows

    def recorded(as_of, recent_days, baseline_days, client_ids=None):
        calls.append(None if client_ids is None else {int(client) for client in client_ids})
        return compute(as_of, recent_days, baseline_days, client_ids)

    monkeypatch.setattr(summary, "compute_rows", recorded)
    return calls


def test_moves_night_by_night_equal_the_computation_from_the_whole_rollup(monkeypatch) -> None:
    clients, too_large = _book()
    _move(START)  # built from the whole rollup
    assert _stored() == _computed(START)
    calls = _full_computations(monkeypatch)
    carried = 0
    for offset in MOVES:
        day = START + dt.timedelta(days=offset)
        calls.clear()
        _move(day)
        moved = list(calls)
        assert _stored() == _computed(day), f"moved to {day}"
        assert ActivitySummaryState.objects.get(name=summary.STATE).recomputed > 0
        if connection.vendor == "postgresql" and None not in moved:  # None: one pass over everything
            # The moved clients were carried forward: only the client whose commission is too
            # large to carry exactly went through its whole history.
            assert all(call <= {too_large} for call in moved), (day, moved)
            carried += 1
        if offset == 1 and connection.vendor == "postgresql":
            assert moved == [{too_large}]
    assert carried >= 3 or connection.vendor != "postgresql"
    assert ClientActivitySummary.objects.filter(client_id__in=clients).count() > 40


def test_new_trades_after_and_before_the_summary_date(monkeypatch) -> None:
    clients, _too_large = _book()
    _move(START)
    by_id = Client.objects.in_bulk(clients)
    day = START + dt.timedelta(days=1)
    calls = _full_computations(monkeypatch)
    # After the summary's date: carried forward with the new days added.
    add_trade(by_id[clients[0]], commission="0.10", when=local_noon(day))
    add_trade(by_id[clients[0]], commission="0.20", when=local_noon(day), channel="online")
    add_trade(by_id[clients[4]], commission="1.00", when=local_noon(day))
    new_client = make_clients(1)[0]  # no rollup row before: its first trade
    add_trade(new_client, commission="3.00", when=local_noon(day))
    # Up to the summary's date: a late trade, and a reversal booked on the day it reverses (it
    # removes that trading day): computed from the whole history.
    add_trade(by_id[clients[8]], commission="4.44", when=local_noon(START - dt.timedelta(days=200)), channel="phone")
    original = add_trade(by_id[clients[9]], commission="2.50", when=local_noon(START - dt.timedelta(days=20)))
    activity_rollup()
    _move(START)  # the same date, a newer rollup
    assert _stored() == _computed(START)
    add_trade(by_id[clients[9]], commission="2.50", when=original.executed_at, reverses=original)
    add_trade(by_id[clients[10]], commission="0.01", when=local_noon(day + dt.timedelta(days=3)))  # after the date
    add_trade(by_id[clients[7]], commission="0.04", when=local_noon(day))  # a new trade, and its row expires
    activity_rollup()
    _move(day)
    assert _stored() == _computed(day)
    if connection.vendor == "postgresql":
        whole = set().union(*[call for call in calls if call is not None])
        assert {clients[8], clients[9]} <= whole
        assert not whole & {clients[0], clients[4], clients[7], clients[10], new_client.pk}


def test_a_sum_beyond_bigint_cents_is_computed_from_the_whole_history(monkeypatch) -> None:
    clients, _too_large = _book()
    day = START + dt.timedelta(days=1)
    ClientDailyActivity.objects.bulk_create(
        [_row(clients[8], day, 1, "99999999999999999.99", "counter", amount="1.00")]
    )
    _move(START)
    calls = _full_computations(monkeypatch)
    _move(day)
    moved = list(calls)
    assert _stored() == _computed(day)
    if connection.vendor == "postgresql":
        assert len(moved) == 1
        assert clients[8] in moved[0]
        assert len(moved[0]) > 1


@pytest.mark.postgres
def test_a_late_trade_rolled_up_during_the_move_is_not_carried(monkeypatch) -> None:
    clients, too_large = _book()
    _move(START)
    late_client = Client.objects.get(pk=clients[7])  # its row expires on the next day: carried
    moved_sql = summary._moved_sql

    def rollup_meanwhile(*args, **kwargs):
        # Another rollup commits a late trade for an earlier day just before the move reads.
        add_trade(late_client, commission="6.66", when=local_noon(START - dt.timedelta(days=50)))
        activity_rollup()
        return moved_sql(*args, **kwargs)

    monkeypatch.setattr(summary, "_moved_sql", rollup_meanwhile)
    calls = _full_computations(monkeypatch)
    day = START + dt.timedelta(days=1)
    _move(day)
    moved = list(calls)
    assert _stored() == _computed(day)
    assert moved == [{clients[7], too_large}]  # (and the one whose cents are too large)
