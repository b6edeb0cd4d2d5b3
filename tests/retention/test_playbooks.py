"""Playbooks turn the published nightly results into tasks: the right clients, idempotent across
two runs of a night and across nights, stale tasks expired with a reason, cool-down, switch-off."""

import datetime as dt
from collections.abc import Callable

import pytest

from brokercrm.models import RunStatus
from retention.services import task_complete
from retention.work.models import Playbook, RetentionTask, TaskStatus
from retention.work.playbooks import playbooks_run
from segmentation.models import Tier
from tests.conftest import Cast
from tests.nightly.conftest import eager_celery, run_nightly
from tests.retention.work_books import publish_activity, publish_churn, publish_reactivation, publish_tiers
from tests.segmentation.books import make_clients

__all__ = ["eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

D1 = dt.date(2026, 11, 20)
D2 = dt.date(2026, 11, 21)


def at_risk_rule(**kwargs) -> Playbook:
    params = {
        "name": "VIP/Major at risk",
        "tiers": [Tier.VIP, Tier.MAJOR],
        "min_churn_risk": 70,
        "task_kind": "at_risk_outreach",
        "due_in_days": 2,
        "priority": 80,
        "reason_text": "High-value client at risk: call within 2 days",
    }
    return Playbook.objects.create(**{**params, **kwargs})


@pytest.fixture
def book(cast: Cast) -> dict:
    """Seven clients of alice's with hand-built results on D1."""
    vip_risky, major_safe, small_risky, drifting, rich_idle, upgraded, quiet = make_clients(7, manager=cast.alice)
    clients = {
        "vip_risky": vip_risky,
        "major_safe": major_safe,
        "small_risky": small_risky,
        "drifting": drifting,
        "rich_idle": rich_idle,
        "upgraded": upgraded,
        "quiet": quiet,
    }
    tiers = {
        vip_risky: Tier.VIP,
        major_safe: Tier.MAJOR,
        small_risky: Tier.SMALL,
        drifting: Tier.ORDINARY,
        rich_idle: Tier.SMALL,
        upgraded: Tier.MAJOR,
        quiet: Tier.SMALL,
    }
    publish_tiers(D1, tiers, previous={**tiers, upgraded: Tier.ORDINARY})
    publish_churn(D1, {vip_risky: 80, major_safe: 69, small_risky: 95, drifting: 40, rich_idle: 20, upgraded: 10})
    publish_activity(D1, {drifting: {"about_to_go_dormant": True, "segment": "potentially_active"}, quiet: {}})
    publish_reactivation(D1, [rich_idle])
    return clients


def open_tasks() -> set[tuple[str, str]]:
    return {
        (task.playbook.name, task.client.name)
        for task in RetentionTask.objects.filter(status=TaskStatus.OPEN).select_related("playbook", "client")
    }


def names(book: dict) -> dict:
    return {client: key for key, client in book.items()}


def test_each_playbook_opens_tasks_for_exactly_the_matching_clients(book: dict, cast: Cast) -> None:
    at_risk_rule()
    Playbook.objects.create(
        name="About to go dormant",
        about_to_go_dormant=True,
        task_kind="reactivation",
        reason_text="Offer a reactivation incentive",
    )
    Playbook.objects.create(
        name="High assets, low activity",
        high_assets_low_activity=True,
        task_kind="other",
        reason_text="Personal call",
    )
    Playbook.objects.create(
        name="Welcome upgrade", tier_change="up", task_kind="greeting", reason_text="Welcome to the new service level"
    )

    run = playbooks_run(as_of=D1)

    by_client = {
        (task.playbook.name, names(book)[task.client]): task
        for task in RetentionTask.objects.select_related("playbook", "client")
    }
    assert set(by_client) == {
        ("VIP/Major at risk", "vip_risky"),
        ("About to go dormant", "drifting"),
        ("High assets, low activity", "rich_idle"),
        ("Welcome upgrade", "upgraded"),
    }
    outreach = by_client[("VIP/Major at risk", "vip_risky")]
    assert outreach.kind == "at_risk_outreach"
    assert outreach.assignee == cast.alice.user
    assert outreach.due == D1 + dt.timedelta(days=1 + 2)
    assert outreach.priority == 80
    assert outreach.source == "score"
    assert outreach.reason_code == "churn_risk"
    assert (
        outreach.reason_text
        == "High-value client at risk: call within 2 days (tier vip; churn risk 80; segment active)"
    )
    welcome = by_client[("Welcome upgrade", "upgraded")]
    assert welcome.source == "tier_change"
    assert welcome.reason_code == "tier_up"
    assert f"tier up on {D1}" in welcome.reason_text
    assert run.opened == 4
    assert run.as_detail()["playbooks"]["VIP/Major at risk"]["matched"] == 1


def test_running_a_night_twice_and_the_next_night_expires_what_no_longer_applies(book: dict) -> None:
    rule = at_risk_rule()
    first = playbooks_run(as_of=D1)
    second = playbooks_run(as_of=D1)
    assert (first.opened, second.opened, second.expired) == (1, 0, 0)
    assert RetentionTask.objects.count() == 1

    # D2: the VIP client is safe again, the Major one crossed the line
    publish_churn(D2, {book["vip_risky"]: 50, book["major_safe"]: 75})
    night2 = playbooks_run(as_of=D2)
    night2_again = playbooks_run(as_of=D2)

    assert (night2.opened, night2.expired) == (1, 1)
    assert (night2_again.opened, night2_again.expired) == (0, 0)
    stale = RetentionTask.objects.get(client=book["vip_risky"])
    assert stale.status == TaskStatus.EXPIRED
    assert stale.close_reason == (
        f"No longer applies on {D2}: the conditions of playbook '{rule.name}' stopped matching."
    )
    assert stale.closed_at is not None
    fresh = RetentionTask.objects.get(client=book["major_safe"])
    assert fresh.status == TaskStatus.OPEN
    assert fresh.due == D2 + dt.timedelta(days=3)


def test_the_nightly_stage_runs_the_playbooks_idempotently(book: dict, run_nightly: Callable) -> None:
    at_risk_rule()
    assert run_nightly(D1, ["playbooks"]).status == RunStatus.SUCCEEDED
    assert run_nightly(D1, ["playbooks"]).status == RunStatus.SUCCEEDED
    assert open_tasks() == {("VIP/Major at risk", book["vip_risky"].name)}
    assert RetentionTask.objects.count() == 1


def test_a_failure_after_the_first_playbook_leaves_none_of_the_nights_tasks(
    book: dict, run_nightly: Callable, monkeypatch
) -> None:
    at_risk_rule()
    Playbook.objects.create(
        name="About to go dormant", about_to_go_dormant=True, task_kind="reactivation", reason_text="Offer an incentive"
    )
    from retention.work import playbooks

    applied = []
    real_apply = playbooks._apply

    def apply_then_die(playbook, *args, **kwargs):
        if applied:
            raise RuntimeError("worker lost between two playbooks")
        applied.append(playbook.name)
        return real_apply(playbook, *args, **kwargs)

    monkeypatch.setattr(playbooks, "_apply", apply_then_die)

    assert run_nightly(D1, ["playbooks"]).status == RunStatus.FAILED
    assert applied == ["VIP/Major at risk"]  # the first playbook's tasks were written ...
    assert RetentionTask.objects.count() == 0  # ... and rolled back with the stage


def test_a_closed_task_is_not_reopened_during_the_cooldown(book: dict, cast: Cast) -> None:
    at_risk_rule(cooldown_days=30)
    playbooks_run(as_of=D1)
    task = RetentionTask.objects.get()
    task_complete(task=task, by=cast.alice.user, channel="phone", outcome="Stays")

    playbooks_run(as_of=D2)  # still at risk on the D1 scores

    assert RetentionTask.objects.count() == 1


def test_team_lead_assignment_and_switching_a_playbook_off(book: dict, cast: Cast) -> None:
    rule = at_risk_rule(assignee_role="team_lead")
    playbooks_run(as_of=D1)
    assert RetentionTask.objects.get().assignee == cast.tina

    rule.is_active = False
    rule.save()
    run = playbooks_run(as_of=D1)

    task = RetentionTask.objects.get()
    assert (task.status, task.close_reason) == (TaskStatus.EXPIRED, "The playbook was switched off.")
    assert run.expired_switched_off == 1


def test_a_rule_whose_results_are_not_published_is_skipped_not_expired(book: dict) -> None:
    at_risk_rule()
    playbooks_run(as_of=D1)
    rule = Playbook.objects.create(
        name="Dormant, via churn", min_churn_risk=10, task_kind="reactivation", reason_text="x"
    )

    run = playbooks_run(as_of=D1 - dt.timedelta(days=5))  # nothing was published that early

    assert run.playbooks[rule.name].skipped == "not published yet: churn"
    assert RetentionTask.objects.get().status == TaskStatus.OPEN


def test_overdue_tasks_expire(book: dict, settings) -> None:
    settings.RETENTION_TASK_EXPIRE_OVERDUE_DAYS = 10
    at_risk_rule(due_in_days=0)
    playbooks_run(as_of=D1)
    later = D1 + dt.timedelta(days=11)

    playbooks_run(as_of=later)

    task = RetentionTask.objects.get(client=book["vip_risky"])
    assert task.status == TaskStatus.EXPIRED
    assert task.close_reason == "Not done within 10 days of its due date."


def test_two_rules_asking_for_the_same_kind_give_one_task_from_the_higher_priority(book: dict) -> None:
    Playbook.objects.create(
        name="About to go dormant", about_to_go_dormant=True, task_kind="reactivation", priority=60, reason_text="a"
    )
    Playbook.objects.create(
        name="Potentially active",
        segments=["potentially_active"],
        task_kind="reactivation",
        priority=40,
        reason_text="b",
    )

    playbooks_run(as_of=D1)
    playbooks_run(as_of=D1)

    assert open_tasks() == {("About to go dormant", book["drifting"].name)}


def test_the_playbook_list_costs_the_same_queries_for_3_and_30_rows(cast: Cast, django_assert_num_queries) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(cast.tina)
    for index in range(3):
        at_risk_rule(name=f"rule {index:02d}")
    api.get("/api/v1/retention/playbooks/")
    with django_assert_num_queries(5) as few:  # session, user, roles, count, page (open tasks counted)
        assert len(api.get("/api/v1/retention/playbooks/").json()["results"]) == 3
    for index in range(3, 30):
        at_risk_rule(name=f"rule {index:02d}")
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/retention/playbooks/").json()["results"]) == 30
    assert api.get("/api/v1/retention/playbooks/").json()["results"][0]["tiers"] == ["vip", "major"]
    alice = APIClient()
    alice.force_login(cast.alice.user)
    assert alice.get("/api/v1/retention/playbooks/").status_code == 403


def test_the_default_playbooks_and_catalogue_are_created_once_and_edits_are_kept(db: None) -> None:
    from io import StringIO

    from django.core.management import call_command

    from retention.work.defaults import DEFAULT_PLAYBOOKS, DEFAULT_PRODUCTS
    from retention.work.models import ServiceProduct, TierEntitlement

    out = StringIO()
    call_command("retention_defaults", stdout=out)
    assert (
        out.getvalue().strip()
        == f"Created {len(DEFAULT_PLAYBOOKS)} playbooks and {len(DEFAULT_PRODUCTS)} service products."
    )
    Playbook.objects.filter(name="VIP/Major at risk").update(min_churn_risk=75)
    call_command("retention_defaults", stdout=StringIO())

    assert Playbook.objects.get(name="VIP/Major at risk").min_churn_risk == 75
    assert ServiceProduct.objects.count() == len(DEFAULT_PRODUCTS)
    assert set(TierEntitlement.objects.filter(product__code="risk_plan").values_list("tier", flat=True)) == {1, 2}


def test_the_act_stages_run_after_scoring_in_order() -> None:
    from brokercrm.nightly.registry import all_stages

    positions = {stage.name: stage.position for stage in all_stages()}
    assert (positions["playbooks"], positions["callbacks"], positions["entitlements"]) == (500, 510, 520)
    assert positions["churn"] < positions["playbooks"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tiers": [0]}, "tiers: expected a list of tiers 1 (VIP) to 4 (Small), not [0]."),
        ({"tiers": "vip"}, "tiers: expected a list of tiers 1 (VIP) to 4 (Small), not 'vip'."),
        ({"segments": ["sleepy"]}, "segments: expected a list of active, potentially_active, dormant"),
    ],
)
def test_playbook_conditions_are_checked(fields: dict, message: str) -> None:
    from retention.work.playbooks import PlaybookError, playbook_validate

    with pytest.raises(PlaybookError) as error:
        playbook_validate(Playbook(**fields))
    assert str(error.value).startswith(message)
