"""Admin of retention work: ops edits playbooks (conditions checked), tasks and callbacks go through
the permission policy, pinned changelist queries, no deletes."""

import datetime as dt

import pytest
from django.urls import reverse

from brokercrm.services import roles_ensure
from retention.services import open_task
from retention.work.models import Playbook, RetentionTask
from tests.conftest import Cast
from tests.pages.perms import grant

pytestmark = pytest.mark.django_db

TASKS = reverse("admin:retention_retentiontask_changelist")
ADMIN_PAGES = [
    "admin:retention_retentiontask_changelist",
    "admin:retention_playbook_changelist",
    "admin:retention_playbook_add",
    "admin:retention_callback_changelist",
    "admin:retention_callbacksample_changelist",
    "admin:retention_serviceproduct_changelist",
    "admin:retention_serviceproduct_add",
    "admin:retention_cliententitlement_changelist",
    "admin:retention_servicedelivery_changelist",
    "admin:retention_campaign_changelist",
]


def task_for(client) -> RetentionTask:
    return open_task(client=client, kind="other", reason_code="x", reason_text="Call", due=dt.date(2026, 12, 1))


@pytest.fixture
def ops(cast: Cast, client):
    roles_ensure()  # ops' admin permissions, as on every deployment
    client.force_login(cast.olga)
    return client


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_ops_opens_every_retention_page(ops, cast: Cast, name: str) -> None:
    task_for(cast.alice_client)
    assert ops.get(reverse(name)).status_code == 200


def test_ops_creates_a_playbook_and_a_playbook_needs_a_condition(ops) -> None:
    data = {
        "name": "Dormant soon",
        "description": "",
        "is_active": "on",
        "tier_change": "",
        "tier_change_within_days": 7,
        "task_kind": "reactivation",
        "due_in_days": 3,
        "priority": 60,
        "assignee_role": "account_manager",
        "reason_text": "Offer a reactivation incentive",
        "cooldown_days": 30,
        "about_to_go_dormant": "unknown",
        "high_assets_low_activity": "unknown",
    }
    refused = ops.post(reverse("admin:retention_playbook_add"), data)
    assert refused.status_code == 200
    assert "Set at least one condition" in refused.text
    assert not Playbook.objects.exists()

    created = ops.post(reverse("admin:retention_playbook_add"), {**data, "tiers": ["1", "2"], "segments": ["dormant"]})
    assert created.status_code == 302, created.context["adminform"].form.errors if created.context else created
    playbook = Playbook.objects.get()
    assert (playbook.tiers, playbook.segments) == ([1, 2], ["dormant"])


def test_a_staff_account_manager_sees_only_her_tasks(client, cast: Cast) -> None:
    own, other = task_for(cast.alice_client), task_for(cast.bob_client)
    alice = cast.alice.user
    alice.is_staff = True
    alice.save()
    grant(alice, "retention.view_retentiontask")
    client.force_login(alice)

    listing = client.get(TASKS)

    assert [task.pk for task in listing.context["cl"].result_list] == [own.pk]
    assert client.get(reverse("admin:retention_retentiontask_change", args=[other.pk])).status_code == 404


def test_the_task_changelist_costs_the_same_queries_for_3_and_30_rows(
    ops, cast: Cast, django_assert_num_queries
) -> None:
    for _ in range(3):
        task_for(cast.alice_client)
    ops.get(TASKS)
    # session, user, user and group permissions, roles (policy), playbook filter choices, date
    # hierarchy, count, page rows (client and assignee joined), ...: 10, at any page length
    with django_assert_num_queries(10) as few:
        assert len(ops.get(TASKS).context["cl"].result_list) == 3
    for _ in range(27):
        task_for(cast.mike_client)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(ops.get(TASKS).context["cl"].result_list) == 30


def test_ops_reschedules_and_reassigns_within_the_clients_scope(ops, cast: Cast) -> None:
    task = task_for(cast.alice_client)
    url = reverse("admin:retention_retentiontask_change", args=[task.pk])
    form = {"due": "2026-12-05", "priority": 70, "assignee": cast.mike.user.pk, "notes": ""}

    refused = ops.post(url, form)
    assert refused.status_code == 200
    assert "am_mike may not see this client." in refused.text

    saved = ops.post(url, {**form, "assignee": cast.tina.pk})
    assert saved.status_code == 302
    task.refresh_from_db()
    assert (task.due, task.priority, task.assignee) == (dt.date(2026, 12, 5), 70, cast.tina)
