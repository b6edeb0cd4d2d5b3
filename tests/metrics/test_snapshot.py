"""The KPI snapshot: every formula pinned on a hand-built book, edge cases, reproducibility,
idempotency and definition versions."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from brokercrm.models import RunStatus
from clients.models import ClientLogin
from metrics import definitions as catalogue
from metrics import services
from metrics.models import KpiSnapshot, MarketingSpend, MetricDefinition, MetricValue
from metrics.snapshot import snapshot_compute
from tests import factories
from tests.segmentation.books import add_trade

pytestmark = pytest.mark.django_db

D = dt.date(2026, 6, 30)  # a month end
S = D - dt.timedelta(days=30)
ZONE = timezone.get_default_timezone()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE)


def days_before(n: int, hour: int = 12) -> dt.datetime:
    return at(D - dt.timedelta(days=n), hour)


def values(as_of: dt.date = D, dimension: str = "overall", key: str = "") -> dict[str, Decimal | None]:
    rows = MetricValue.objects.filter(as_of=as_of, dimension=dimension, key=key).select_related("definition")
    return {row.definition.code: row.value for row in rows}


def close(value: Decimal | None, expected: float) -> bool:
    return value is not None and abs(float(value) - expected) < 0.0001


@pytest.fixture
def book():
    """Two managers in two branches; four clients opened on or before D, one after."""
    sh = factories.BranchFactory(code="SH01")
    bj = factories.BranchFactory(code="BJ01")
    a = factories.AccountManagerFactory(team=factories.TeamFactory(branch=sh))
    b = factories.AccountManagerFactory(team=factories.TeamFactory(branch=bj))
    c1 = factories.ClientFactory(account_manager=a, opened_on=dt.date(2020, 1, 2))
    c2 = factories.ClientFactory(account_manager=a, opened_on=dt.date(2026, 6, 10))  # new in the period
    c3 = factories.ClientFactory(
        account_manager=b, opened_on=dt.date(2020, 1, 2), closed_on=dt.date(2026, 6, 15), status="closed"
    )
    c4 = factories.ClientFactory(account_manager=b, opened_on=dt.date(2024, 6, 30))
    factories.ClientFactory(account_manager=b, opened_on=D + dt.timedelta(days=5))  # after D: not counted
    loser = add_trade(c1, commission="100", when=days_before(10))
    loser.realized_pnl = Decimal("-20")
    loser.save()
    winner = add_trade(c1, commission="50", when=days_before(100))
    winner.realized_pnl = Decimal("5")
    winner.save()
    add_trade(c2, commission="10", when=days_before(3))
    add_trade(c3, commission="30", when=days_before(200))
    # complaints: c1 in the period (answered in 1 h, resolved in 30 h); c4 opened before the
    # period, answered before it, resolved in it (38 days = 912 h)
    opened = days_before(5)
    factories.ComplaintFactory(
        client=c1,
        opened_at=opened,
        first_response_at=opened + dt.timedelta(hours=1),
        resolved_at=opened + dt.timedelta(hours=30),
        status="resolved",
        root_cause="x",
        resolution="y",
    )
    opened = days_before(40)
    factories.ComplaintFactory(
        client=c4,
        opened_at=opened,
        first_response_at=opened + dt.timedelta(days=1),
        resolved_at=opened + dt.timedelta(days=38),
        status="resolved",
        root_cause="x",
        resolution="y",
    )
    factories.ComplaintFactory(client=c4, opened_at=at(D + dt.timedelta(days=1)))  # after D
    # surveys
    csat = factories.SurveyQuestionFactory(kind="csat")
    nps = factories.SurveyQuestionFactory(kind="nps")
    factories.SurveyResponseFactory(client=c1, question=csat, score=2, answered_at=days_before(20))
    factories.SurveyResponseFactory(client=c1, question=csat, score=5, answered_at=days_before(2))  # latest
    factories.SurveyResponseFactory(client=c2, question=csat, score=3, answered_at=days_before(1))
    factories.SurveyResponseFactory(client=c2, question=csat, score=5, answered_at=at(D + dt.timedelta(days=1)))
    factories.SurveyResponseFactory(client=c1, question=nps, score=10, answered_at=days_before(4))
    factories.SurveyResponseFactory(client=c2, question=nps, score=4, answered_at=days_before(4))
    factories.SurveyResponseFactory(client=c4, question=nps, score=9, answered_at=days_before(4))
    factories.SurveyResponseFactory(client=c4, question=nps, score=0, answered_at=days_before(95))  # out of window
    # sign-ins (daily counts per channel): in the period (S, D] c1 5 + 1 and c2 3; c1's of S
    # itself, c4's after D and closed c3's (not in the population) do not count
    for client, day, channel, count in (
        (c1, D - dt.timedelta(days=3), "mobile", 5),
        (c1, D - dt.timedelta(days=3), "online", 1),
        (c1, S, "mobile", 7),
        (c2, D, "online", 3),
        (c3, D - dt.timedelta(days=20), "mobile", 4),
        (c4, D + dt.timedelta(days=1), "mobile", 9),
    ):
        ClientLogin.objects.create(client=client, day=day, channel=channel, logins=count)
    # marketing spend: July 2025 .. June 2026 count for D
    MarketingSpend.objects.create(month=dt.date(2026, 6, 1), amount=Decimal("3000"))
    MarketingSpend.objects.create(month=dt.date(2026, 1, 1), branch=sh, amount=Decimal("1000"))
    MarketingSpend.objects.create(month=dt.date(2025, 6, 1), amount=Decimal("999"))
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "a": a, "b": b, "sh": sh, "bj": bj}


def segments_and_clv(book):
    ids = {name: client.pk for name, client in book.items() if name.startswith("c")}

    def activity_segments(as_of):
        if as_of == S:
            mapping = {"c1": "active", "c3": "active", "c4": "dormant"}
        else:
            mapping = {"c1": "active", "c2": "active", "c4": "dormant"}
        return pd.DataFrame({"client_id": [ids[k] for k in mapping], "segment": list(mapping.values())})

    def model_clv(as_of):
        return pd.DataFrame({"client_id": [ids["c1"], ids["c2"]], "clv": [1000.0, 200.0]})

    return {"activity_segments": activity_segments, "model_clv": model_clv}


@pytest.fixture
def with_retention(book, monkeypatch):
    sources = segments_and_clv(book)
    monkeypatch.setattr("metrics.snapshot.optional_source", lambda name: sources.get(name))
    return book


def lifetime_years(book) -> float:
    days = [
        (D - book["c1"].opened_on).days,
        (D - book["c2"].opened_on).days,
        (book["c3"].closed_on - book["c3"].opened_on).days,
        (D - book["c4"].opened_on).days,
    ]
    return sum(days) / len(days) / 365.25


def test_every_formula_on_the_hand_built_book(with_retention, run_nightly):
    book = with_retention
    run = run_nightly(D, ["rollup", "tiers", "metrics"])
    assert run.status == RunStatus.SUCCEEDED, run.error

    overall = values()
    assert overall["clients"] == 3
    assert close(overall["retention_rate"], (3 - 1) / 3 * 100)  # c1 c3 c4 at start; c2 new; c1 c2 c4 at end
    assert close(overall["loss_rate"], 100 / 3)  # c1's period P&L is -20
    assert close(overall["trade_frequency"], 2 / 3)  # c1 and c2 traded in the period
    assert close(overall["login_frequency"], (5 + 1 + 3) / 3)  # sign-ins per client in the period
    assert close(overall["complaint_rate"], 100 / 3)  # one complaint opened in the period
    assert close(overall["complaint_iceberg"], 10)
    assert close(overall["first_response_hours"], 1)  # c4's response fell before the period
    assert close(overall["resolution_hours"], (30 + 912) / 2)
    assert close(overall["csat"], 50)  # c1 latest 5 (satisfied), c2 3
    assert close(overall["nps"], (2 - 1) / 3 * 100)  # c1 10, c4 9 promoters; c2 4 detractor
    cltv = (160 / 3) * (3 / 3) * lifetime_years(book)  # 160 commission over 3 trades; 3 trades / 3 clients
    assert close(overall["cltv_simple"], cltv)
    assert close(overall["top20_commission_share"], 150 / 160 * 100)  # top ceil(0.6) = 1 client
    assert close(overall["commission_share"], 100)
    assert close(overall["cac"], 4000 / 1)  # 3000 + 1000 over c2, the one client opened Jul 2025-Jun 2026
    assert close(overall["cltv_cac_ratio"], cltv / 4000)
    assert close(overall["churn_rate"], 50)  # c1 and c3 alive on S; c3 closed by D
    assert close(overall["dormancy_rate"], 100 / 3)  # c4
    assert close(overall["cost_of_churn"], 30 * 1.1)  # c3's commission over the year x 1.1
    assert close(overall["cltv_model"], 600)  # mean of 1000 and 200

    a, b = (
        values(dimension="account_manager", key=str(book["a"].pk)),
        values(dimension="account_manager", key=str(book["b"].pk)),
    )
    assert a["clients"] == 2
    assert b["clients"] == 1
    assert close(a["commission_share"], 100)
    assert close(b["commission_share"], 0)
    assert b["top20_commission_share"] is None  # no commission: undefined, not a division error
    assert close(b["churn_rate"], 100)  # c3
    assert close(a["churn_rate"], 0)  # c1 stayed active (close() is False for None)
    assert b["csat"] is None  # nobody surveyed
    assert close(a["login_frequency"], (5 + 1 + 3) / 2)
    assert close(b["login_frequency"], 0)  # c4 signed in only after D

    sh = values(dimension="branch", key=str(book["sh"].pk))
    assert close(sh["cac"], 1000)  # the branch's own spend over its one new client
    assert "cac" not in values(dimension="branch", key=str(book["bj"].pk))  # no spend of its own

    vip, small, untiered = (values(dimension="tier", key=key) for key in ("vip", "small", "none"))
    assert vip["clients"] == 1  # c1: 150 of commission
    assert small["clients"] == 2  # c2 (10) and c4 (0)
    assert untiered["clients"] == 0  # c3, closed: not in the tier population
    assert close(vip["commission_share"], 150 / 160 * 100)

    snapshot = KpiSnapshot.objects.get(as_of=D)
    assert snapshot.population == 3
    assert snapshot.detail["left_out"] == {}
    assert set(snapshot.definitions) == set(catalogue.CODES)


def test_without_the_retention_sources_those_metrics_are_left_out_with_a_note(book, monkeypatch, run_nightly):
    monkeypatch.setattr("metrics.snapshot.optional_source", lambda name: None)
    run_nightly(D, ["rollup", "metrics"])
    overall = values()
    assert "churn_rate" not in overall
    assert "cltv_model" not in overall
    assert overall["clients"] == 3
    notes = KpiSnapshot.objects.get(as_of=D).detail["left_out"]
    assert "segments" in notes
    assert "cltv_model" in notes
    assert "tiers" in notes  # no tier run yet: no tier rows
    assert not MetricValue.objects.filter(as_of=D, dimension="tier").exists()


def test_login_frequency_is_left_out_where_no_login_data_is_provided(with_retention, run_nightly):
    """No login row in the period: no login_frequency rows (not a misleading 0), and a note."""
    ClientLogin.objects.filter(day__gt=S, day__lte=D).delete()
    run_nightly(D, ["rollup", "tiers", "metrics"])
    assert "login_frequency" not in values()
    assert "trade_frequency" in values()
    assert "login data" in KpiSnapshot.objects.get(as_of=D).detail["left_out"]["login_frequency"]


def test_read_logins_sums_the_period_per_book_client(book):
    """Summed by position in the book: two channels of one day add up, days outside (S, D] and
    clients outside the given book do not count, a book client without sign-ins gets 0."""
    from metrics.snapshot import login_counts, read_logins

    ids = sorted([book["c1"].pk, book["c2"].pk, book["c4"].pk])
    rows = read_logins(D)
    counts = dict(zip(ids, login_counts(rows, np.array(ids, dtype="int64")).tolist(), strict=True))
    assert counts == {book["c1"].pk: 6, book["c2"].pk: 3, book["c4"].pk: 0}
    assert login_counts(rows, np.array([], dtype="int64")).tolist() == []
    assert login_counts(read_logins(S - dt.timedelta(days=100)), np.array(ids, dtype="int64")) is None


def test_an_empty_book_gives_undefined_values_not_errors(monkeypatch):
    monkeypatch.setattr("metrics.snapshot.optional_source", lambda name: None)
    result = snapshot_compute(as_of=D)
    overall = values()
    assert result.rows == len(overall)
    assert overall["clients"] == 0
    for code in ("retention_rate", "loss_rate", "csat", "nps", "cltv_simple", "complaint_rate", "trade_frequency"):
        assert overall[code] is None, code
    assert "cac" not in overall


def test_one_client_without_activity(monkeypatch):
    monkeypatch.setattr("metrics.snapshot.optional_source", lambda name: None)
    factories.ClientFactory(opened_on=dt.date(2026, 1, 1))
    snapshot_compute(as_of=D)
    overall = values()
    assert overall["clients"] == 1
    assert close(overall["retention_rate"], 100)
    assert close(overall["loss_rate"], 0)
    assert overall["cltv_simple"] is None  # no trades: no average trade value
    assert overall["top20_commission_share"] is None
    assert close(overall["complaint_rate"], 0)


def stored() -> list[tuple]:
    return sorted(
        MetricValue.objects.values_list(
            "as_of", "definition_id", "dimension", "key", "value", "numerator", "denominator"
        )
    )


def test_recomputing_a_past_date_after_new_data_gives_the_same_numbers(with_retention, run_nightly):
    book = with_retention
    run_nightly(D, ["rollup", "tiers", "metrics"])
    before = stored()
    # given: data dated after D
    later = at(D + dt.timedelta(days=2))
    add_trade(book["c4"], commission="500", when=later)
    factories.ComplaintFactory(client=book["c1"], opened_at=later)
    factories.SurveyResponseFactory(
        client=book["c4"], question=factories.SurveyQuestionFactory(kind="csat"), score=1, answered_at=later
    )
    factories.ClientFactory(account_manager=book["a"], opened_on=D + dt.timedelta(days=2))
    MarketingSpend.objects.create(month=dt.date(2026, 7, 1), amount=Decimal("5000"))
    ClientLogin.objects.create(client=book["c1"], day=D + dt.timedelta(days=2), channel="mobile", logins=30)
    run_nightly(D + dt.timedelta(days=2), ["rollup"])
    # when: D is computed again
    snapshot_compute(as_of=D)
    # then: the same rows, the same numbers, no duplicates
    assert stored() == before
    assert KpiSnapshot.objects.get(as_of=D).detail["recomputed"]["changed_values"] == 0


def test_a_reassignment_after_the_date_does_not_move_the_client_between_its_rows(with_retention, run_nightly):
    book = with_retention
    run_nightly(D, ["rollup", "tiers", "metrics"])
    before = stored()
    clients_of_a = values(dimension="account_manager", key=str(book["a"].pk))["clients"]
    # given: after D, c1 moves from manager a (Shanghai) to manager b (Beijing)
    c1 = book["c1"]
    c1.account_manager, c1.branch = book["b"], book["bj"]
    c1.save()
    # when: D is computed again
    snapshot_compute(as_of=D)
    # then: D's rows are unchanged: c1 still counts for a and Shanghai on D
    assert stored() == before
    assert values(dimension="account_manager", key=str(book["a"].pk))["clients"] == clients_of_a
    # and: a date after the move counts c1 for b
    later = timezone.localdate() + dt.timedelta(days=1)
    snapshot_compute(as_of=later)
    assert values(later, "account_manager", str(book["a"].pk))["clients"] == clients_of_a - 1


def test_changed_values_counts_changes_additions_drops_and_undefined(with_retention, run_nightly):
    from metrics.snapshot import _changed_values

    run_nightly(D, ["rollup", "tiers", "metrics"])
    rows = MetricValue.objects.filter(as_of=D).order_by("pk")
    frame = pd.DataFrame.from_records(
        rows.values_list("definition_id", "dimension", "key", "value"),
        columns=["definition_id", "dimension", "key", "value"],
    )
    frame["value"] = frame["value"].astype("float64")
    ids = sorted(set(frame["definition_id"]))
    defined = frame.index[frame["value"].notna()]
    assert _changed_values(D, ids, frame) == 0
    frame.loc[defined[0], "value"] += 0.00001  # below the threshold: the same value
    frame.loc[defined[1], "value"] += 0.001  # changed
    frame.loc[defined[2], "value"] = np.nan  # turned undefined
    frame = frame.drop(index=defined[3])  # dropped
    extra = frame.iloc[[0]].assign(key="no-such-key")  # added
    frame = pd.concat([frame, extra], ignore_index=True)
    assert _changed_values(D, ids, frame) == 4


def test_late_data_dated_before_the_date_is_recorded_when_recomputing(with_retention, run_nightly):
    book = with_retention
    run_nightly(D, ["rollup", "tiers", "metrics"])
    # given: a trade executed on D that reached the CRM only later
    add_trade(book["c4"], commission="40", when=days_before(0))
    run_nightly(D, ["rollup", "metrics"])
    snapshot = KpiSnapshot.objects.get(as_of=D)
    assert snapshot.detail["recomputed"]["changed_values"] > 0
    assert close(values()["trade_frequency"], 3 / 3)


def test_running_a_date_twice_is_idempotent(with_retention, run_nightly):
    run_nightly(D, ["rollup", "tiers", "metrics"])
    first = stored()
    run_nightly(D, ["metrics"])
    assert stored() == first
    assert KpiSnapshot.objects.count() == 1


def v2(**changes) -> tuple:
    churn = next(entry for entry in catalogue.CATALOGUE if entry.code == "churn_rate")
    fields = {**churn.__dict__, "version": 2, "formula": churn.formula + " (v2: clarified)", **changes}
    return (*catalogue.CATALOGUE, catalogue.Definition(**fields))


def test_a_changed_definition_must_be_a_new_version(with_retention, run_nightly):
    run_nightly(D, ["rollup", "metrics"])
    churn = MetricDefinition.objects.get(code="churn_rate", version=1)
    rewritten = [
        catalogue.Definition(**{**entry.__dict__, "formula": "lost / all"}) if entry.code == "churn_rate" else entry
        for entry in catalogue.CATALOGUE
    ]
    with pytest.raises(services.DefinitionConflict, match="churn_rate v1 is stored with a different formula"):
        services.definitions_sync(rewritten)
    with pytest.raises(services.DefinitionConflict, match="snapshots up to 2026-06-30 are stored"):
        services.definitions_sync(v2(effective_from=D))
    churn.refresh_from_db()
    assert churn.formula == next(e.formula for e in catalogue.CATALOGUE if e.code == "churn_rate")


def test_a_new_version_applies_from_its_date_and_never_rewrites_a_stored_snapshot(
    with_retention, run_nightly, monkeypatch
):
    run_nightly(D, ["rollup", "metrics"])
    before = stored()
    later = D + dt.timedelta(days=1)
    monkeypatch.setitem(services.IMPLEMENTED, "churn_rate", {1, 2})
    services.definitions_sync(v2(effective_from=later))
    # recomputing D keeps v1; the next date uses v2
    snapshot_compute(as_of=D)
    assert stored() == before
    snapshot_compute(as_of=later)
    new = MetricValue.objects.get(as_of=later, dimension="overall", definition__code="churn_rate")
    old = MetricValue.objects.get(as_of=D, dimension="overall", definition__code="churn_rate")
    assert (old.definition.version, new.definition.version) == (1, 2)
    assert KpiSnapshot.objects.get(as_of=later).definitions["churn_rate"] == new.definition_id


def test_with_the_real_retention_sources(book, run_nightly):
    """The stage reads retention.selectors.activity_segments / model_clv when they exist."""
    from retention import selectors as retention

    run = run_nightly(D, ["rollup", "tiers", "metrics"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    end, start = retention.activity_segments(D), retention.activity_segments(S)
    open_on_d = {book[name].pk for name in ("c1", "c2", "c4")}
    dormant = end[(end["segment"] == "dormant") & end["client_id"].isin(open_on_d)]
    alive = start[start["segment"].isin(["active", "potentially_active"])]
    alive_ids = set(alive["client_id"]) & {book[name].pk for name in ("c1", "c3", "c4")}
    gone = set(end.loc[end["segment"].isin(["dormant", "closed"]), "client_id"]) | {book["c3"].pk}
    rows = {
        row.definition.code: row
        for row in MetricValue.objects.filter(as_of=D, dimension="overall").select_related("definition")
    }
    assert rows["dormancy_rate"].numerator == len(dormant)
    assert rows["churn_rate"].denominator == len(alive_ids)
    assert rows["churn_rate"].numerator == len(alive_ids & gone)
    notes = KpiSnapshot.objects.get(as_of=D).detail["left_out"]
    assert "segments" not in notes
    assert ("cltv_model" in notes) == (retention.model_clv(D) is None)


def test_start_cohort_metrics_group_by_the_tier_on_the_period_start(with_retention, run_nightly):
    run_nightly(S, ["rollup", "tiers"])  # on S: c1 50 (VIP), c3 30 and c4 0 (Small); c2 not yet open
    run = run_nightly(D, ["rollup", "tiers", "metrics"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    vip, small = values(dimension="tier", key="vip"), values(dimension="tier", key="small")
    assert close(vip["retention_rate"], 100)  # c1 still open
    assert close(small["retention_rate"], 50)  # c3 closed, c4 open
    assert close(vip["churn_rate"], 0)
    assert close(small["churn_rate"], 100)  # c3 was active on S and is gone; c4 was already dormant
    assert close(small["cost_of_churn"], 33)
    # the other metrics group by the tier on D: c1 VIP, c2 and c4 Small
    assert vip["clients"] == 1
    assert small["clients"] == 2
