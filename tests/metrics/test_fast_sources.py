"""The metrics stage's fast sources give the numbers of computing everything again:

- the year's commission and trades from the published activity rows of D, the period's trades
  and losers from one range of the ledger (read_book / read_period_trades);
- the model CLV from the published churn scores of D (the same function, scoring.model_scores,
  on the same rows and fit);
- the activity segments of the period start S from the segment history.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from brokercrm.models import RunStatus
from clients.models import Client, Trade
from metrics import analytics, snapshot
from metrics.definitions import PERIOD_DAYS
from retention import segment_log, selectors
from retention.models import SegmentLogDate
from tests.retention.test_scoring_stages import book as scoring_book
from tests.segmentation.books import add_trade, local_noon, make_clients

pytestmark = pytest.mark.django_db
__all__ = ["scoring_book"]

D = dt.date(2026, 6, 30)
S = D - dt.timedelta(days=PERIOD_DAYS)


@pytest.fixture
def book(scoring_book):
    """The scoring stages' book (a lifetime model fits on it) plus trades with realised P&L in the
    period, a reversal, a client closed in the period and one opened in it."""
    clients = list(Client.objects.order_by("id"))
    rng = np.random.default_rng(5)
    recent = Trade.objects.filter(client__in=clients[5:40], executed_at__gte=local_noon(D - dt.timedelta(days=29)))
    for trade in recent:
        trade.realized_pnl = Decimal(f"{rng.normal(0, 50):.2f}")
    Trade.objects.bulk_update(recent, ["realized_pnl"])
    original = Trade.objects.filter(client=clients[6]).order_by("-executed_at").first()
    add_trade(clients[6], commission=original.commission, when=local_noon(D - dt.timedelta(days=2)), reverses=original)
    closing = clients[10]
    closing.closed_on, closing.status = D - dt.timedelta(days=10), Client.Status.CLOSED
    closing.save()
    make_clients(1, manager=closing.account_manager, opened_on=D - dt.timedelta(days=5))
    return clients


def slow(monkeypatch) -> None:
    """Every fast source off: read the rollup, compute segments and the model CLV."""
    monkeypatch.setattr("metrics.snapshot.published_activity", lambda as_of: None)
    monkeypatch.setattr("retention.selectors.published", lambda kind: None)
    monkeypatch.setattr("retention.segment_log.segments_on", lambda as_of: None)


def rounded(rows: list[dict]) -> dict:
    def money(value):
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else round(float(value), 4)

    return {
        (row["code"], row["dimension"], row["key"]): (
            money(row["value"]),
            money(row["numerator"]),
            money(row["denominator"]),
        )
        for row in rows
    }


def test_the_fast_sources_equal_computing(book, run_nightly, monkeypatch):
    run = run_nightly(S, ["rollup", "tiers", "dormancy"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    run = run_nightly(D, ["rollup", "tiers", "dormancy", "churn"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert SegmentLogDate.objects.get(as_of=D).base == S

    generation = snapshot.published_activity(D)
    assert generation is not None
    fast_book = snapshot.read_book(D, activity_generation=generation).merge(
        snapshot.read_period_trades(D), on="client_id", how="left"
    )
    slow_book = snapshot.read_book(D)
    merged = slow_book.merge(fast_book, on="client_id", how="outer", suffixes=("", "_fast")).fillna(0)
    assert len(merged) == len(slow_book) == len(fast_book)
    for column in snapshot.BOOK_COLUMNS[1:]:
        assert (merged[column] == merged[column + "_fast"]).all(), column
    assert merged["trades_period"].sum() > 0
    losers = set(snapshot.read_losers(D).tolist())
    assert losers
    assert losers == set(merged.loc[merged["loss"] == 1, "client_id"])

    fast_clv = selectors.model_clv(D)
    slow_clv = selectors.model_clv(D, published_scores=False)
    assert fast_clv is not None
    assert slow_clv is not None
    assert fast_clv["clv"].notna().sum() > 50
    pd.testing.assert_frame_equal(fast_clv.reset_index(drop=True), slow_clv.reset_index(drop=True))

    assert segment_log.segments_on(S) is not None
    # the tier codes are the analytics keys of their names (the book gives both)
    assert [analytics.TIER_KEYS[name] for name in snapshot.TIER_TEXT] == list(range(len(snapshot.TIER_TEXT)))
    fast_book, _, _ = snapshot.build_book(D, fast=True)
    assert {"segment_end", "clv"} <= set(fast_book.columns)  # read with the book, one query
    fast_rows, fast_notes = snapshot.compute(D)
    with monkeypatch.context() as patch:
        slow(patch)
        assert selectors.model_clv(D) is not None
        slow_rows, slow_notes = snapshot.compute(D)
    assert fast_notes == slow_notes
    assert "segments" not in fast_notes
    assert "cltv_model" not in fast_notes
    assert rounded(fast_rows) == rounded(slow_rows)


def test_model_clv_is_computed_when_the_scores_are_older_than_the_activity(book, run_nightly):
    run = run_nightly(D, ["rollup", "tiers", "dormancy", "churn"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    fit = selectors.LifetimeFit.objects.get(as_of=D)
    assert selectors.published_clv(D, fit) is not None
    run = run_nightly(D, ["dormancy"])  # the activity rows were rewritten after the scores
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert selectors.published_clv(D, fit) is None
    assert selectors.model_clv(D) is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_reads_in_parallel_give_the_same_rows(book, run_nightly, monkeypatch):
    """Outside a transaction (the nightly stage) the reads run at once on their own connections."""
    run = run_nightly(S, ["rollup", "tiers", "dormancy"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    run = run_nightly(D, ["rollup", "tiers", "dormancy", "churn"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    threads = []
    real = snapshot.run_reads

    def spy(tasks):
        from django.db import connection

        threads.append(not connection.in_atomic_block)
        return real(tasks)

    monkeypatch.setattr(snapshot, "run_reads", spy)
    parallel_rows, parallel_notes = snapshot.compute(D)
    assert threads == [True]
    monkeypatch.setattr(snapshot, "PARALLEL_READS", 0)
    serial_rows, serial_notes = snapshot.compute(D)
    assert parallel_notes == serial_notes
    assert rounded(parallel_rows) == rounded(serial_rows)


@pytest.mark.parametrize("high", [3, 500, 10**12])
def test_sums_by_key_equal_a_groupby(high):
    """analytics._sum_by_key bins small keys directly and sorts large ones: both as groupby().sum()."""
    rng = np.random.default_rng(high)
    n = 5_000
    frame = pd.DataFrame(
        {
            "account_manager_id": np.where(rng.random(n) < 0.1, -1, rng.integers(0, high, n)),
            "branch_id": rng.integers(1, high + 1, n),
            "tier_key": rng.integers(0, 5, n),
            "a": rng.integers(-(10**9), 10**9, n),
            "b": rng.integers(0, 3, n),
        }
    )
    for dimension, column in (("account_manager", "account_manager_id"), ("branch", "branch_id"), ("tier", "tier_key")):
        part = frame[frame[column] >= 0]
        expected = part[["a", "b"]].groupby(part[column].to_numpy(), sort=True).sum()
        result = analytics._sum_by_key(frame, dimension, ["a", "b"])
        assert list(result.index) == analytics._labels(dimension, expected.index)
        assert (result.to_numpy() == expected.to_numpy()).all()
