"""The dormancy and churn stages on a hand-built book: segments, warnings, reasons, publication,
idempotence and a failed night."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from brokercrm.models import RunStatus
from clients.models import AssetSnapshot, CashFlow, Client, Trade
from retention import selectors
from retention.models import ChurnScore, ClientActivity, LifetimeFit
from retention.reasons import FACT_FIELDS, REASON_FIELDS, SIGNAL_FIELDS
from segmentation.models import ResultSet
from tests import factories
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import local_noon, make_clients, trade_on

__all__ = ["eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)


def rhythm(
    client: Client, instrument, *, every: int, first_ago: int, last_ago: int, rng: np.random.Generator | None = None
) -> list[Trade]:
    def commission() -> str:
        return "5.00" if rng is None else f"{rng.gamma(2.0, 4.0) + 0.5:.2f}"

    return [
        trade_on(client, AS_OF - dt.timedelta(days=ago), instrument, commission())
        for ago in range(first_ago, last_ago - 1, -every)
    ]


@pytest.fixture
def book():
    """steady: every 3 days until 2 days ago; leaving: weekly until 1 day ago, then moved 80% of
    its assets out; idle: nothing for 300 days; forgotten: opened 4 years ago, never traded,
    5 yuan of cash; closed: closed last month. Plus 60 clients with mixed rhythms so the
    lifetime model has a population to fit."""
    manager = factories.AccountManagerFactory()
    instrument = factories.InstrumentFactory(symbol="600000.SH")
    steady, leaving, idle = make_clients(3, manager=manager, opened_on=dt.date(2024, 1, 2))
    (forgotten,) = make_clients(1, manager=manager, opened_on=AS_OF - dt.timedelta(days=4 * 365))
    (closed,) = make_clients(1, manager=manager, opened_on=dt.date(2024, 1, 2), closed_on=AS_OF - dt.timedelta(days=30))
    crowd = make_clients(60, manager=manager, opened_on=dt.date(2024, 1, 2))
    rng = np.random.default_rng(11)
    trades = rhythm(steady, instrument, every=3, first_ago=500, last_ago=2, rng=rng)
    trades += rhythm(leaving, instrument, every=7, first_ago=500, last_ago=1, rng=rng)
    trades += rhythm(idle, instrument, every=10, first_ago=600, last_ago=300, rng=rng)
    trades += rhythm(closed, instrument, every=5, first_ago=400, last_ago=40, rng=rng)
    for client in crowd:
        every = int(rng.integers(2, 40))
        last = int(rng.integers(1, 250))
        first = int(rng.integers(last + 30, 650))
        trades += rhythm(client, instrument, every=every, first_ago=first, last_ago=last, rng=rng)
    Trade.objects.bulk_create(trades)
    snapshot_day = AS_OF - dt.timedelta(days=1)
    AssetSnapshot.objects.bulk_create(
        [
            AssetSnapshot(client=steady, as_of=snapshot_day, cash=Decimal("20000"), market_value=Decimal("80000")),
            AssetSnapshot(client=leaving, as_of=snapshot_day, cash=Decimal("10000"), market_value=Decimal("10000")),
            AssetSnapshot(client=forgotten, as_of=snapshot_day, cash=Decimal("5.00"), market_value=Decimal("0")),
        ]
    )
    CashFlow.objects.create(
        flow_id="W1",
        client=leaving,
        kind=CashFlow.Kind.WITHDRAWAL,
        amount=Decimal("80000"),
        occurred_at=local_noon(AS_OF - dt.timedelta(days=10)),
    )
    return {"steady": steady, "leaving": leaving, "idle": idle, "forgotten": forgotten, "closed": closed}


# Every stored figure of a score's reasons and signals.
REASON_COLUMNS = [field for pair in REASON_FIELDS for field in pair] + list(SIGNAL_FIELDS.values()) + FACT_FIELDS


def published_rows(model, kind):
    generation = ResultSet.objects.get(kind=kind, is_published=True).generation
    return model.objects.filter(generation=generation)


def test_the_night_segments_warns_and_scores_with_reasons(book, run_nightly) -> None:
    run = run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=20)
    assert run.status == RunStatus.SUCCEEDED

    activity = {row.client_id: row for row in published_rows(ClientActivity, ResultSet.Kind.ACTIVITY)}
    assert len(activity) == Client.objects.count()
    assert activity[book["steady"].pk].segment == "active"
    assert activity[book["idle"].pk].segment == "dormant"
    assert activity[book["idle"].pk].days_since_last_trade == 300
    assert activity[book["closed"].pk].segment == "closed"
    assert activity[book["forgotten"].pk].regulatory_dormant
    assert not activity[book["steady"].pk].regulatory_dormant
    assert activity[book["steady"].pk].typical_gap_days == pytest.approx(3.0)

    fit = LifetimeFit.objects.get(as_of=AS_OF)
    assert fit.status == LifetimeFit.Status.OK, fit.message
    scores = {row.client_id: row for row in published_rows(ChurnScore, ResultSet.Kind.CHURN)}
    assert book["closed"].pk not in scores  # closed accounts are not scored
    leaving, steady = scores[book["leaving"].pk], scores[book["steady"].pk]
    assert leaving.reasons[0]["code"] == "outflow"
    assert leaving.reasons[0]["facts"]["share"] == pytest.approx(0.8)
    assert leaving.risk > steady.risk
    assert steady.p_alive > 0.9
    assert steady.model_used
    assert scores[book["idle"].pk].risk > steady.risk
    assert fit.gg_status == LifetimeFit.Status.OK
    assert leaving.clv > 0
    assert steady.clv > 0
    assert float(leaving.value_at_risk) == pytest.approx(float(leaving.clv) * leaving.risk / 100, abs=0.01)
    assert steady.tier is not None  # the tier of the same night


def test_running_a_date_twice_gives_identical_results(book, run_nightly) -> None:
    def snapshot():
        activity = sorted(
            published_rows(ClientActivity, ResultSet.Kind.ACTIVITY).values_list(
                "client_id", "segment", "days_since_last_trade", "overdue_ratio", "about_to_go_dormant"
            )
        )
        churn = sorted(
            published_rows(ChurnScore, ResultSet.Kind.CHURN).values_list(
                "client_id", "risk", "p_alive", "clv", "value_at_risk", *REASON_COLUMNS
            )
        )
        return activity, churn

    run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=20)
    first = snapshot()
    run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=7)
    assert snapshot() == first
    assert ClientActivity.objects.count() == len(first[0])  # the previous generation is gone
    assert ChurnScore.objects.count() == len(first[1])


def test_a_failed_churn_stage_keeps_the_previous_scores(book, run_nightly, monkeypatch) -> None:
    run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=20)
    before = sorted(published_rows(ChurnScore, ResultSet.Kind.CHURN).values_list("client_id", "risk"))

    from retention import scoring

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(scoring, "score_clients", broken)
    later = AS_OF + dt.timedelta(days=1)
    failed = run_nightly(later, ["dormancy", "churn"], chunk_size=20)
    assert failed.status == RunStatus.FAILED
    assert ResultSet.objects.get(kind=ResultSet.Kind.CHURN, is_published=True).as_of == AS_OF
    assert sorted(published_rows(ChurnScore, ResultSet.Kind.CHURN).values_list("client_id", "risk")) == before
    # No half-written rows of the failed run are left behind.
    generation = ResultSet.objects.get(kind=ResultSet.Kind.CHURN, is_published=True).generation
    assert not ChurnScore.objects.exclude(generation=generation).exists()


def test_churn_needs_the_dates_activity(book, run_nightly) -> None:
    run = run_nightly(AS_OF, ["rollup", "churn"])
    assert run.status == RunStatus.FAILED
    stage = run.stage_runs.get(name="churn")
    assert "Activity segments of 2026-06-30 are not published" in stage.error


def test_segments_for_any_past_date_use_only_what_was_known(book, run_nightly) -> None:
    run_nightly(AS_OF, ["rollup"])
    earlier = AS_OF - dt.timedelta(days=200)
    segments = selectors.activity_segments(earlier).set_index("client_id")["segment"]
    # 200 days ago the idle client had traded 100 days before: potentially active, not dormant.
    assert segments[book["idle"].pk] == "potentially_active"
    assert segments[book["closed"].pk] == "active"  # still open then
    assert book["forgotten"].pk in segments.index


def test_published_segments_are_read_back_as_computed(book, run_nightly) -> None:
    run_nightly(AS_OF, ["rollup", "dormancy"], chunk_size=20)
    stored = selectors.activity_segments(AS_OF)
    ResultSet.objects.filter(kind=ResultSet.Kind.ACTIVITY).update(is_published=False)
    computed = selectors.activity_segments(AS_OF)
    assert stored.equals(computed)
    assert len(stored) == Client.objects.count()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_churn_prepare_in_parallel_gives_what_it_gives_one_part_after_the_other(
    book, run_nightly, monkeypatch
) -> None:
    """Outside a transaction (the nightly run) the churn stage fits the lifetime models while
    another connection stages the ledger signals: the same fit and scores as one by one."""
    import threading

    from brokercrm.nightly import parallel
    from retention import churn

    staged_on = []
    real_stage = churn.stage_ledger_signals

    def spy(*args, **kwargs):
        staged_on.append(threading.get_ident())
        return real_stage(*args, **kwargs)

    monkeypatch.setattr(churn, "stage_ledger_signals", spy)

    def night() -> tuple[list, tuple]:
        run = run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=20)
        assert run.status == RunStatus.SUCCEEDED, run.error
        scores = sorted(
            published_rows(ChurnScore, ResultSet.Kind.CHURN).values_list(
                "client_id", "risk", "p_alive", "clv", "value_at_risk", *REASON_COLUMNS
            )
        )
        fit = LifetimeFit.objects.values_list("status", "r", "alpha", "a", "b", "p", "q", "v").get(as_of=AS_OF)
        return scores, fit

    in_parallel = night()
    assert len(staged_on) == 1
    assert staged_on[0] != threading.get_ident()
    monkeypatch.setattr(parallel, "parallel_possible", lambda: False)
    one_by_one = night()
    assert staged_on[1] == threading.get_ident()
    assert in_parallel == one_by_one
    assert any(row[5] for row in in_parallel[0] if row[1] >= 40)  # reason_1 of the risky clients
