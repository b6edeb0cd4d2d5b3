"""The tier stage against the database: population, window, history, re-runs, failures."""

import datetime as dt
from decimal import Decimal

import pytest

from brokercrm.models import PipelineLock, RunStatus
from clients.models import Client
from segmentation import tiering
from segmentation.models import (
    ClientDailyActivity,
    NeedsProfile,
    ReactivationCandidate,
    ResultSet,
    Tier,
    TierHistory,
    TierResult,
    TierRun,
)
from segmentation.tiering import retained_dates, tiers_at
from tests.segmentation.books import add_assets, add_trade, local_noon, make_book, make_clients

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
SEGMENT = ["rollup", "tiers"]


def tier_counts(as_of: dt.date) -> dict[int, int]:
    rows = TierResult.objects.filter(as_of=as_of).values_list("tier", flat=True)
    return {tier: list(rows).count(tier) for tier in Tier.values}


def current_as_of() -> dt.date | None:
    return TierRun.objects.retained().order_by("-as_of").values_list("as_of", flat=True).first()


def test_a_thousand_clients_with_distinct_commission(run_nightly) -> None:
    make_book([Decimal(index) / 4 + 1 for index in range(1000)], as_of=AS_OF)
    run = run_nightly(AS_OF, SEGMENT)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert tier_counts(AS_OF) == {Tier.VIP: 30, Tier.MAJOR: 70, Tier.ORDINARY: 100, Tier.SMALL: 800}
    summary = TierRun.objects.get(as_of=AS_OF)
    assert summary.tier_counts == {"vip": 30, "major": 70, "ordinary": 100, "small": 800}
    assert summary.population == 1000
    assert summary.is_published
    assert summary.window_start == dt.date(2025, 7, 1)


def test_ties_zeros_and_closed_clients_on_a_small_book(run_nightly) -> None:
    # given 30 open clients: 2 tied at the top, 3 tied next, then distinct values, 10 zeros
    values = [900, 900, 800, 800, 800] + list(range(700, 685, -1)) + [0] * 10
    book = make_book(values, as_of=AS_OF)
    # and clients outside the population: closed on/before the as-of date, opened after it
    closed = make_clients(3, closed_on=AS_OF)
    make_clients(2, opened_on=AS_OF + dt.timedelta(days=1))
    for client in closed:
        add_trade(client, commission="5000", when=local_noon(AS_OF - dt.timedelta(days=40)))
    # a client closing the day after the as-of date was still open on it
    closing_later = make_clients(1, closed_on=AS_OF + dt.timedelta(days=1))[0]
    add_trade(closing_later, commission="1", when=local_noon(AS_OF - dt.timedelta(days=3)))

    # when
    run = run_nightly(AS_OF, SEGMENT)

    # then: n = 31. VIP: s < 3% -> fewer than 0.93 higher -> the two tied at 900.
    # Major: s < 10% -> at most 3 higher -> the three tied at 800 (2 higher each).
    # Ordinary: s < 20% -> at most 6 higher: 700 (5 higher), 699 (6 higher).
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert tier_counts(AS_OF) == {Tier.VIP: 2, Tier.MAJOR: 3, Tier.ORDINARY: 2, Tier.SMALL: 24}
    tiered = set(TierResult.objects.filter(as_of=AS_OF).values_list("client_id", flat=True))
    assert tiered == {client.pk for client in book} | {closing_later.pk}
    by_client = {row.client_id: row for row in TierResult.objects.filter(as_of=AS_OF)}
    assert by_client[book[0].pk].rank == by_client[book[1].pk].rank == 1
    assert by_client[book[2].pk].rank == 3
    assert by_client[book[2].pk].value == Decimal("800.00")
    assert by_client[book[-1].pk].tier == Tier.SMALL
    assert by_client[book[-1].pk].value == Decimal("0.00")


def test_an_all_zero_book(run_nightly) -> None:
    make_book([0] * 12, as_of=AS_OF)
    assert run_nightly(AS_OF, SEGMENT).status == RunStatus.SUCCEEDED
    assert tier_counts(AS_OF) == {Tier.VIP: 0, Tier.MAJOR: 0, Tier.ORDINARY: 0, Tier.SMALL: 12}
    assert TierRun.objects.get(as_of=AS_OF).top20_share is None


def test_the_window_is_365_exchange_days_ending_on_the_as_of_date(run_nightly) -> None:
    zone = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai
    inside_last = dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=zone)  # 15:59 UTC on the 30th
    after = dt.datetime(2026, 7, 1, 0, 0, 0, tzinfo=zone)  # still 30 June in UTC
    inside_first = dt.datetime(2025, 7, 1, 0, 0, 0, tzinfo=zone)  # as_of - 364 days, 00:00
    before = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=zone)
    clients = make_clients(4)
    for client, when in zip(clients, [inside_last, after, inside_first, before], strict=True):
        add_trade(client, commission="10", when=when)
    run_nightly(AS_OF, SEGMENT)
    values = dict(TierResult.objects.filter(as_of=AS_OF).values_list("client_id", "value"))
    assert [values[client.pk] for client in clients] == [Decimal(10), Decimal(0), Decimal(10), Decimal(0)]


def test_the_window_is_a_setting(run_nightly, settings) -> None:
    settings.TIER_WINDOW_DAYS = 30
    old, recent = make_clients(2)
    add_trade(old, commission="100", when=local_noon(AS_OF - dt.timedelta(days=30)))
    add_trade(recent, commission="1", when=local_noon(AS_OF - dt.timedelta(days=29)))
    run_nightly(AS_OF, SEGMENT)
    values = dict(TierResult.objects.filter(as_of=AS_OF).values_list("client_id", "value"))
    assert values == {old.pk: Decimal(0), recent.pk: Decimal(1)}


def test_reversals_cancel_their_trade(run_nightly) -> None:
    first, second = make_clients(2)
    original = add_trade(first, commission="500", when=local_noon(AS_OF - dt.timedelta(days=5)))
    add_trade(first, commission="500", when=local_noon(AS_OF - dt.timedelta(days=4)), reverses=original)
    add_trade(second, commission="1", when=local_noon(AS_OF - dt.timedelta(days=5)))
    run_nightly(AS_OF, SEGMENT)
    by_client = {row.client_id: row for row in TierResult.objects.filter(as_of=AS_OF)}
    assert by_client[first.pk].value == 0
    assert by_client[first.pk].tier == Tier.SMALL
    assert by_client[second.pk].tier == Tier.VIP


def test_assets_basis_tiers_by_custody(run_nightly, settings) -> None:
    settings.TIER_BASIS = "assets"
    clients = make_book([1, 2, 3], as_of=AS_OF)
    add_assets(clients[0], as_of=AS_OF - dt.timedelta(days=2), total=1_000_000)
    add_assets(clients[0], as_of=AS_OF - dt.timedelta(days=90), total=1)  # older snapshot ignored
    add_assets(clients[1], as_of=AS_OF - dt.timedelta(days=40), total=9_000_000)  # too old
    add_assets(clients[2], as_of=AS_OF, total=10)
    run_nightly(AS_OF, SEGMENT)
    by_client = {row.client_id: row for row in TierResult.objects.filter(as_of=AS_OF)}
    assert by_client[clients[0].pk].tier == Tier.VIP
    assert by_client[clients[0].pk].value == Decimal("1000000.00")
    assert by_client[clients[1].pk].value == 0
    assert TierRun.objects.get(as_of=AS_OF).basis == "assets"


def result_tables() -> dict:
    """Everything the segmentation stages wrote, without timestamps."""
    return {
        "activity": sorted(ClientDailyActivity.objects.values_list("client_id", "day", "channel", "trades", "amount")),
        "tiers": sorted(
            TierResult.objects.values_list("as_of", "client_id", "tier", "value", "rank", "percentile", "change")
        ),
        "history": sorted(TierHistory.objects.values_list("as_of", "client_id", "tier", "previous_tier", "value")),
        "runs": sorted(
            TierRun.objects.values_list(
                "as_of", "population", "tier_counts", "pareto", "migration", "changes", "previous_as_of", "retained"
            )
        ),
        "reactivation": sorted(ReactivationCandidate.objects.values_list("as_of", "client_id", "assets", "commission")),
        "needs": sorted(
            NeedsProfile.objects.values_list(
                "as_of", "client_id", "trades", "holding_style", "channel_mix", "product_mix", "preferences"
            )
        ),
        "result_sets": sorted(ResultSet.objects.values_list("kind", "as_of", "is_published", "rows")),
    }


def test_every_stage_run_twice_gives_identical_results(run_nightly, settings) -> None:
    settings.NEEDS_REFRESH = "nightly"
    clients = make_book([Decimal(index) for index in range(1, 41)], as_of=AS_OF)
    for index, client in enumerate(clients[:10]):
        add_assets(client, as_of=AS_OF, total=10_000_000 - index)
    add_trade(clients[0], commission="3", when=local_noon(AS_OF - dt.timedelta(days=200)), side="sell")
    first = run_nightly(AS_OF - dt.timedelta(days=1))
    assert first.status == RunStatus.SUCCEEDED, first.error
    once = run_nightly(AS_OF)
    after_once = result_tables()
    twice = run_nightly(AS_OF)
    assert once.status == twice.status == RunStatus.SUCCEEDED
    assert twice.attempt == 2
    assert result_tables() == after_once
    # and each stage on its own, run again, changes nothing either
    for stage in ("rollup", "tiers", "reactivation", "needs"):
        assert run_nightly(AS_OF, [stage]).status == RunStatus.SUCCEEDED
        assert result_tables() == after_once, stage


def test_a_failure_mid_stage_leaves_the_previous_tiers_in_place(run_nightly, monkeypatch) -> None:
    # given tiers published for the day before
    previous_day = AS_OF - dt.timedelta(days=1)
    clients = make_book([10, 20, 30], as_of=AS_OF)
    assert run_nightly(previous_day, SEGMENT).status == RunStatus.SUCCEEDED
    before = sorted(TierResult.objects.values_list("as_of", "client_id", "tier", "value"))
    # and a trade that would change the tiers of the next day
    add_trade(clients[0], commission="1000", when=local_noon(AS_OF))

    # when the stage dies after computing and loading the new results, inside the swap
    def broken_bulk_replace(*args, **kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(tiering, "bulk_replace", broken_bulk_replace)
    failed = run_nightly(AS_OF, SEGMENT)

    # then the run says why, the previous date is still current with its rows, and nothing of
    # the new date is visible
    assert failed.status == RunStatus.FAILED
    assert "disk full (injected)" in failed.error
    assert failed.stage_runs.get(name="tiers").status == RunStatus.FAILED
    assert failed.stage_runs.get(name="rollup").status == RunStatus.SUCCEEDED
    assert current_as_of() == previous_day
    assert sorted(TierResult.objects.values_list("as_of", "client_id", "tier", "value")) == before
    assert not TierRun.objects.filter(as_of=AS_OF).exists()
    assert PipelineLock.objects.get(name="nightly").run is None

    # and the date can be re-run once the cause is fixed
    monkeypatch.undo()
    rerun = run_nightly(AS_OF, SEGMENT)
    assert rerun.status == RunStatus.SUCCEEDED
    assert current_as_of() == AS_OF
    assert TierResult.objects.get(as_of=AS_OF, client_id=clients[0].pk).tier == Tier.VIP


def test_a_failed_rerun_of_a_published_date_keeps_its_first_results(run_nightly, monkeypatch) -> None:
    make_book([10, 20, 30], as_of=AS_OF)
    run_nightly(AS_OF, SEGMENT)
    before = sorted(TierResult.objects.values_list("as_of", "client_id", "tier", "rank"))
    monkeypatch.setattr(tiering, "bulk_replace", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert run_nightly(AS_OF, SEGMENT).status == RunStatus.FAILED
    assert sorted(TierResult.objects.values_list("as_of", "client_id", "tier", "rank")) == before
    assert TierRun.objects.get(as_of=AS_OF).is_published


def test_history_keeps_changes_only_and_rebuilds_any_date(run_nightly, settings) -> None:
    settings.TIER_KEEP_DAILY = 2
    # 10 clients; on each following day one more client jumps to the top
    clients = make_book([Decimal(index) for index in range(1, 11)], as_of=AS_OF, days_before=30)
    days = [AS_OF + dt.timedelta(days=offset) for offset in range(4)]
    assert run_nightly(days[0], SEGMENT).status == RunStatus.SUCCEEDED
    assert TierHistory.objects.count() == 0  # the first run is the base snapshot
    expected = {days[0]: dict(TierResult.objects.filter(as_of=days[0]).values_list("client_id", "tier"))}
    for step, day in enumerate(days[1:], start=1):
        add_trade(clients[step - 1], commission=str(1000 * step), when=local_noon(day))
        assert run_nightly(day, SEGMENT).status == RunStatus.SUCCEEDED
        expected[day] = dict(TierResult.objects.filter(as_of=day).values_list("client_id", "tier"))
        changed = dict(TierHistory.objects.filter(as_of=day).values_list("client_id", "tier"))
        previous = expected[days[step - 1]]
        assert changed == {cid: tier for cid, tier in expected[day].items() if previous.get(cid) != tier}
        assert 0 < len(changed) < len(clients)

    # keep 2 daily + the first run + the month-end runs: 30 June (first, month-end) and 2, 3 July
    assert set(TierRun.objects.retained().values_list("as_of", flat=True)) == {days[0], days[2], days[3]}
    assert not TierResult.objects.filter(as_of=days[1]).exists()
    # a pruned date is rebuilt from the last snapshot plus the changes
    rebuilt = tiers_at(days[1]).set_index("client_id")["tier"].to_dict()
    assert rebuilt == expected[days[1]]
    assert tiers_at(AS_OF - dt.timedelta(days=1)) is None

    # re-running a date whose previous date was pruned rebuilds "previous" from the change log
    # and gives the same results as the night itself
    stored = sorted(TierResult.objects.filter(as_of=days[2]).values_list("client_id", "tier", "rank", "change"))
    changes = sorted(TierHistory.objects.filter(as_of=days[2]).values_list("client_id", "tier", "previous_tier"))
    assert run_nightly(days[2], SEGMENT).status == RunStatus.SUCCEEDED
    assert sorted(TierResult.objects.filter(as_of=days[2]).values_list("client_id", "tier", "rank", "change")) == stored
    assert (
        sorted(TierHistory.objects.filter(as_of=days[2]).values_list("client_id", "tier", "previous_tier")) == changes
    )


def test_a_client_who_closes_leaves_with_a_history_row(run_nightly) -> None:
    clients = make_book([5, 6, 7], as_of=AS_OF)
    run_nightly(AS_OF, SEGMENT)
    Client.objects.filter(pk=clients[2].pk).update(status=Client.Status.CLOSED, closed_on=AS_OF + dt.timedelta(days=1))
    run_nightly(AS_OF + dt.timedelta(days=1), SEGMENT)
    exit_row = TierHistory.objects.get(client_id=clients[2].pk)
    assert exit_row.tier is None
    assert exit_row.previous_tier == Tier.VIP
    summary = TierRun.objects.get(as_of=AS_OF + dt.timedelta(days=1))
    assert summary.migration["vip"]["none"] == 1
    assert summary.previous_as_of == AS_OF


def test_retained_dates_rule() -> None:
    days = [dt.date(2026, 1, 30), dt.date(2026, 1, 31), dt.date(2026, 2, 1), dt.date(2026, 2, 2), dt.date(2026, 2, 3)]
    assert retained_dates(days, keep_daily=2) == {dt.date(2026, 1, 30), dt.date(2026, 1, 31), days[3], days[4]}
    assert retained_dates([], keep_daily=2) == set()


def test_reactivation_list(run_nightly) -> None:
    # 20 clients; the richest two have assets, one of them trades nothing
    clients = make_book([0, 500, *list(range(1, 19))], as_of=AS_OF)
    add_assets(clients[0], as_of=AS_OF, total=5_000_000)
    add_assets(clients[1], as_of=AS_OF, total=4_000_000)
    run = run_nightly(AS_OF, ["rollup", "reactivation"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    listed = list(ReactivationCandidate.objects.filter(as_of=AS_OF).values_list("client_id", "assets"))
    assert listed == [(clients[0].pk, Decimal("5000000.00"))]
    assert ResultSet.objects.get(kind="reactivation", as_of=AS_OF).is_published
