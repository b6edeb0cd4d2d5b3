"""Campaigns: uplift and its 95% interval on a hand-computed example, a reproducible control
group, tasks for the treated group only, the measurement end to end, input validation."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from retention.work.campaigns import CampaignError, control_split, segment_validate, uplift_interval
from retention.work.models import CampaignMember, RetentionTask
from tests import factories
from tests.conftest import Cast
from tests.segmentation.books import make_clients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def test_uplift_and_interval_on_a_hand_computed_example() -> None:
    # treated 50/200 = 0.25, control 15/100 = 0.15, difference 0.10
    # se = sqrt(0.25 x 0.75 / 200 + 0.15 x 0.85 / 100) = sqrt(0.0009375 + 0.001275) = sqrt(0.0022125) = 0.0470372
    # 95%: z = 1.959964; half-width = 0.0921913; interval [0.0078087, 0.1921913]
    result = uplift_interval(treated_n=200, treated_converted=50, control_n=100, control_converted=15)

    assert result.treated_rate == 0.25
    assert result.control_rate == 0.15
    assert result.uplift == pytest.approx(0.10)
    assert result.standard_error == pytest.approx(0.0470372, abs=1e-7)
    assert result.ci_low == pytest.approx(0.0078087, abs=1e-6)
    assert result.ci_high == pytest.approx(0.1921913, abs=1e-6)


def test_an_empty_group_gives_no_uplift() -> None:
    result = uplift_interval(treated_n=10, treated_converted=3, control_n=0, control_converted=0)
    assert (result.treated_rate, result.control_rate, result.uplift, result.ci_low) == (0.3, None, None, None)


def test_the_control_group_is_reproducible_for_a_seed() -> None:
    ids = np.arange(100, 150)
    treated, control = control_split(ids, control_percent=20, seed=99)
    treated_again, control_again = control_split(ids[::-1].copy(), control_percent=20, seed=99)
    _, other = control_split(ids, control_percent=20, seed=100)

    assert len(control) == 10
    assert len(treated) == 40
    assert sorted([*treated, *control]) == list(ids)
    assert list(control) == list(control_again)
    assert list(treated) == list(treated_again)
    assert list(control) != list(other)


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ({"tier": ["vip"]}, "segment: unknown key 'tier'"),
        ({"tiers": ["gold"]}, "segment.tiers: expected a list of vip, major, ordinary, small."),
        ({"min_churn_risk": 101}, "segment.min_churn_risk: expected a whole number from 0 to 100."),
        ({"segments": ["sleepy"]}, "segment.segments: expected a list of active"),
        ({"branches": "SH01"}, "segment.branches: expected a list of codes (strings)."),
        ({"preferences": {"channel": 3}}, "segment.preferences: expected an object"),
    ],
)
def test_segment_validation_names_the_key(segment: dict, message: str) -> None:
    with pytest.raises(CampaignError) as error:
        segment_validate(segment)
    assert str(error.value).startswith(message)


def test_a_campaign_end_to_end_through_the_api(cast: Cast) -> None:
    make_clients(19, manager=cast.alice)  # alice's book: 20 clients
    api = APIClient()
    api.force_login(cast.olga)
    payload = {
        "name": "Autumn reactivation",
        "segment": {"managers": [cast.alice.employee_no]},
        "control_percent": 25,
        "seed": 2026,
        "task_kind": "reactivation",
        "task_reason": "Offer the fee rebate",
        "outcome": "traded",
        "outcome_days": 30,
    }
    created = api.post("/api/v1/retention/campaigns/", payload, format="json")
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    bad = api.post("/api/v1/retention/campaigns/", {**payload, "name": "x", "segment": {"tier": 1}}, format="json")
    assert bad.status_code == 400
    alice = APIClient()
    alice.force_login(cast.alice.user)
    assert alice.post("/api/v1/retention/campaigns/", payload, format="json").status_code == 403

    launched = api.post(f"/api/v1/retention/campaigns/{campaign_id}/launch/")
    assert launched.status_code == 200, launched.content
    assert launched.json()["status"] == "launched"
    assert api.post(f"/api/v1/retention/campaigns/{campaign_id}/launch/").status_code == 400

    members = CampaignMember.objects.filter(campaign_id=campaign_id)
    treated = list(members.filter(group="treated").select_related("client"))
    control = list(members.filter(group="control").select_related("client"))
    assert (len(treated), len(control)) == (15, 5)
    expected_treated, expected_control = control_split(
        np.array(sorted(member.client_id for member in members)), control_percent=25, seed=2026
    )
    assert sorted(m.client_id for m in control) == list(expected_control)
    tasks = RetentionTask.objects.filter(campaign_id=campaign_id)
    assert sorted(tasks.values_list("client_id", flat=True)) == list(expected_treated)
    assert set(tasks.values_list("kind", "assignee__username", "source")) == {("reactivation", "am_alice", "campaign")}

    # 6 of 15 treated and 1 of 5 control trade after the launch; one treated trade is before it
    now = timezone.now()
    for member in treated[:6]:
        factories.TradeFactory(client=member.client, executed_at=now)
    factories.TradeFactory(client=control[0].client, executed_at=now)
    factories.TradeFactory(client=treated[10].client, executed_at=now - dt.timedelta(days=2))

    measured = api.post(f"/api/v1/retention/campaigns/{campaign_id}/measure/")
    assert measured.status_code == 200, measured.content
    report = measured.json()["report"]
    expected = uplift_interval(treated_n=15, treated_converted=6, control_n=5, control_converted=1)
    assert (report["treated_converted"], report["control_converted"]) == (6, 1)
    assert report["treated_rate"] == pytest.approx(0.4)
    assert report["control_rate"] == pytest.approx(0.2)
    assert report["uplift"] == pytest.approx(0.2)
    assert (report["ci_low"], report["ci_high"]) == (pytest.approx(expected.ci_low), pytest.approx(expected.ci_high))
    assert report["treated_value"] == str(Decimal("1050.00") * 6)
    assert members.filter(converted=True).count() == 7


def test_the_campaign_list_costs_the_same_queries_for_3_and_30_rows(cast: Cast, django_assert_num_queries) -> None:
    from retention.work.campaigns import campaign_create

    api = APIClient()
    api.force_login(cast.tina)
    for index in range(3):
        campaign_create(by=cast.olga, name=f"c{index}", segment={}, task_reason="x")
    api.get("/api/v1/retention/campaigns/")
    with django_assert_num_queries(5) as few:  # session, user, roles, count, page (creator joined)
        assert len(api.get("/api/v1/retention/campaigns/").json()["results"]) == 3
    for index in range(3, 30):
        campaign_create(by=cast.carol, name=f"c{index}", segment={}, task_reason="x")
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/retention/campaigns/").json()["results"]) == 30


def test_net_inflow_outcome_counts_deposits_minus_withdrawals_in_the_window(cast: Cast) -> None:
    from retention.work.campaigns import campaign_create, campaign_launch, campaign_measure

    make_clients(9, manager=cast.bob)  # bob's book: 10 clients
    campaign = campaign_create(
        by=cast.olga,
        name="Top up",
        segment={"managers": [cast.bob.employee_no]},
        control_percent=50,
        seed=11,
        task_reason="Suggest a top-up",
        outcome="net_inflow",
        outcome_days=10,
    )
    campaign = campaign_launch(campaign=campaign, by=cast.olga)
    treated = list(CampaignMember.objects.filter(campaign=campaign, group="treated").select_related("client"))
    control = list(CampaignMember.objects.filter(campaign=campaign, group="control").select_related("client"))
    assert (len(treated), len(control)) == (5, 5)
    now = timezone.now()
    factories.CashFlowFactory(client=treated[0].client, amount=Decimal("1000.00"), occurred_at=now)
    factories.CashFlowFactory(client=treated[1].client, amount=Decimal("1000.00"), occurred_at=now)
    factories.CashFlowFactory(client=treated[1].client, kind="withdrawal", amount=Decimal("1500.00"), occurred_at=now)
    factories.CashFlowFactory(
        client=control[0].client, amount=Decimal("10.00"), occurred_at=now + dt.timedelta(days=11)
    )

    report = campaign_measure(campaign=campaign).report

    assert (report["treated_converted"], report["control_converted"]) == (1, 0)
    assert report["treated_value"] == "500.00"  # 1000 + (1000 - 1500)
    assert report["control_value"] == "0.00"  # the deposit on day 11 is outside the window
    assert report["uplift"] == pytest.approx(0.2)


def test_a_segment_filters_on_tier_churn_risk_branch_and_needs_preference(cast: Cast) -> None:
    from retention.work.campaigns import segment_client_ids
    from segmentation.models import NeedsProfile, ResultSet
    from tests.retention.work_books import filled, publish_churn, publish_tiers

    as_of = dt.date(2026, 11, 20)
    a, b, c, d = make_clients(4, manager=cast.alice)
    publish_tiers(as_of, {a: 1, b: 2, c: 2, d: 4})
    publish_churn(as_of, {a: 80, b: 75, c: 30, d: 90})
    NeedsProfile.objects.bulk_create(
        [
            filled(NeedsProfile, generation=7, as_of=as_of, client=client, preferences=preferences)
            for client, preferences in (
                (a, {"channel": "mobile"}),
                (b, {"channel": "phone"}),
                (d, {"channel": "mobile"}),
            )
        ]
    )
    ResultSet.objects.create(kind="needs", as_of=as_of, generation=7, is_published=True)

    def ids(segment: dict) -> list[int]:
        return list(segment_client_ids(segment_validate(segment), as_of=as_of))

    assert ids({"tiers": ["vip", "major"]}) == [a.pk, b.pk, c.pk]
    assert ids({"tiers": ["vip", "major"], "min_churn_risk": 70}) == [a.pk, b.pk]
    assert ids({"min_churn_risk": 70, "preferences": {"channel": "mobile"}}) == [a.pk, d.pk]
    assert ids({"branches": ["SH01"], "max_churn_risk": 50}) == [c.pk]
    assert ids({"managers": [cast.mike.employee_no]}) == [cast.mike_client.pk]
