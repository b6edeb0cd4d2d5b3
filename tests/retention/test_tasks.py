"""Retention tasks: open_task (defaults, dedupe, validation), completing records an interaction,
the API scoped by brokercrm.policy, pinned query counts."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from clients.models import Interaction
from retention.services import TaskError, open_task, task_cancel, task_complete, task_update
from retention.work.models import RetentionTask, TaskStatus
from tests import factories
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()  # throttle histories
    yield
    cache.clear()


def api_as(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def outreach(client, **kwargs) -> RetentionTask:
    params = {
        "client": client,
        "kind": "at_risk_outreach",
        "reason_code": "churn_risk",
        "reason_text": "Churn risk 82",
        "due": DUE,
    }
    return open_task(**{**params, **kwargs})


def test_open_task_defaults_to_the_account_manager_and_dedupes_open_tasks(cast: Cast) -> None:
    first = outreach(cast.alice_client, dedupe_key="nps-detractor:1")
    again = outreach(cast.alice_client, dedupe_key="nps-detractor:1", priority=90)

    assert first.assignee == cast.alice.user
    assert first.priority == 50
    assert first.source == "rule"
    assert again.pk == first.pk
    assert again.priority == 50  # the existing task is returned unchanged
    assert RetentionTask.objects.count() == 1

    # once closed, the same key opens a new task
    task_cancel(task=first, by=cast.alice.user, reason="Client called us first")
    third = outreach(cast.alice_client, dedupe_key="nps-detractor:1")
    assert third.pk != first.pk
    assert RetentionTask.objects.filter(dedupe_key="nps-detractor:1").count() == 2


def test_the_database_refuses_a_second_open_task_with_the_same_key(cast: Cast) -> None:
    outreach(cast.alice_client, dedupe_key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionTask.objects.create(
            client=cast.alice_client, kind="other", reason_code="x", reason_text="x", due=DUE, dedupe_key="k"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "lunch"}, "kind: expected one of callback, reactivation"),
        ({"priority": 101}, "priority: expected a whole number from 0 to 100, not 101."),
        ({"priority": True}, "priority: expected a whole number from 0 to 100"),
        ({"due": "2026-12-01"}, "due: expected a date (YYYY-MM-DD), not '2026-12-01'."),
        ({"reason_code": " "}, TaskError.REASON_CODE_REQUIRED),
        ({"reason_text": ""}, TaskError.REASON_TEXT_REQUIRED),
        ({"source": "gut"}, "source: expected one of rule, score, tier_change, person"),
    ],
)
def test_open_task_validates_its_input_naming_the_field(cast: Cast, kwargs: dict, message: str) -> None:
    with pytest.raises(TaskError) as error:
        outreach(cast.alice_client, **kwargs)
    assert str(error.value).startswith(message)


def test_completing_a_task_records_an_interaction(cast: Cast) -> None:
    task = outreach(cast.alice_client)

    task_complete(task=task, by=cast.alice.user, channel="phone", outcome="Will keep trading", notes="Fee question")

    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    assert task.closed_by == cast.alice.user
    interaction = Interaction.objects.get()
    assert task.interaction == interaction
    assert interaction.client == cast.alice_client
    assert interaction.channel == "phone"
    assert interaction.direction == "outbound"
    assert interaction.outcome == "Will keep trading"
    assert interaction.summary == "At-risk outreach: Churn risk 82\nFee question"
    assert interaction.by == cast.alice.user
    # a second completion loses
    with pytest.raises(TaskError, match="status: the task is done"):
        task_complete(task=task, by=cast.alice.user, channel="phone", outcome="again")
    assert Interaction.objects.count() == 1


def test_reassigning_needs_someone_who_sees_the_client(cast: Cast) -> None:
    task = outreach(cast.alice_client)
    with pytest.raises(TaskError, match=r"assignee: am_mike may not see this client\."):
        task_update(task=task, by=cast.tina, assignee=cast.mike.user)
    task_update(task=task, by=cast.tina, assignee=cast.tina)
    assert task.assignee == cast.tina


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def tasks(cast: Cast) -> Cast:
    for client in (cast.alice_client, cast.bob_client, cast.mike_client):
        outreach(client)
    return cast


def listed(user: object, query: str = "") -> list[dict]:
    response = api_as(user).get(f"/api/v1/retention/tasks/{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_each_role_sees_the_tasks_of_its_scope(tasks: Cast) -> None:
    assert [row["client_no"] for row in listed(tasks.alice.user)] == [tasks.alice_client.client_no]
    assert {row["client_no"] for row in listed(tasks.tina)} == {
        tasks.alice_client.client_no,
        tasks.bob_client.client_no,
    }
    assert len(listed(tasks.carol)) == 3
    assert listed(factories.UserFactory(username="nobody")) == []


def test_a_task_outside_the_scope_is_404_for_reading_and_working(tasks: Cast) -> None:
    bobs = RetentionTask.objects.get(client=tasks.bob_client)
    alice = api_as(tasks.alice.user)
    assert alice.get(f"/api/v1/retention/tasks/{bobs.pk}/").status_code == 404
    done = alice.post(
        f"/api/v1/retention/tasks/{bobs.pk}/complete/", {"channel": "phone", "outcome": "x"}, format="json"
    )
    assert done.status_code == 404
    assert RetentionTask.objects.get(pk=bobs.pk).status == "open"


def test_completing_through_the_api(tasks: Cast) -> None:
    own = RetentionTask.objects.get(client=tasks.alice_client)
    api = api_as(tasks.alice.user)
    bad = api.post(f"/api/v1/retention/tasks/{own.pk}/complete/", {"channel": "pigeon", "outcome": "x"}, format="json")
    assert bad.status_code == 400
    assert "channel" in bad.json()
    response = api.post(
        f"/api/v1/retention/tasks/{own.pk}/complete/", {"channel": "visit", "outcome": "Renewed"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done"
    assert body["interaction"] == Interaction.objects.get(client=tasks.alice_client).pk
    again = api.post(f"/api/v1/retention/tasks/{own.pk}/complete/", {"channel": "visit", "outcome": "x"}, format="json")
    assert again.json() == {"detail": "status: the task is done; only open tasks can be changed."}


def test_a_task_done_in_chinese_records_its_reason_in_chinese(cast: Cast) -> None:
    from django.utils import translation

    from retention.work import task_reasons

    facts = task_reasons.playbook_facts("About to go dormant: offer a reactivation incentive", risk=40)
    task = outreach(cast.alice_client)
    RetentionTask.objects.filter(pk=task.pk).update(reason_facts=facts)
    task.refresh_from_db()
    with translation.override("zh-hans"):
        task_complete(task=task, by=cast.alice.user, channel="phone", outcome="Called")
    assert Interaction.objects.get().summary == "流失风险挽留：即将休眠：提供激活优惠（流失风险 40）"  # noqa: RUF001


def test_the_api_gives_a_reasons_facts_and_its_text_in_the_requests_language(tasks: Cast) -> None:
    from retention.work import task_reasons

    facts = task_reasons.callback_facts("new_account")
    task = RetentionTask.objects.get(client=tasks.alice_client)
    RetentionTask.objects.filter(pk=task.pk).update(reason_facts=facts, reason_text=task_reasons.stored_text(facts))
    api = api_as(tasks.alice.user)
    english = api.get(f"/api/v1/retention/tasks/{task.pk}/").json()
    assert english["reason_facts"] == {"message": "callback", "kind": "new_account"}
    assert english["reason_display"] == english["reason_text"]
    assert english["reason_text"].startswith("Regulatory callback: New account (within one month of opening).")
    chinese = api.get(f"/api/v1/retention/tasks/{task.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert chinese["reason_text"] == english["reason_text"]
    assert chinese["reason_display"].startswith("监管回访：新开户（开户一个月内）。")  # noqa: RUF001
    team = api_as(tasks.tina).get("/api/v1/retention/tasks/").json()["results"]  # alice's and bob's
    by_hand = [row for row in team if row["id"] != task.pk]
    assert by_hand
    assert all(row["reason_facts"] == {} for row in by_hand)


def test_creating_and_cancelling_through_the_api(tasks: Cast) -> None:
    api = api_as(tasks.tina)
    payload = {
        "client_no": tasks.bob_client.client_no,
        "kind": "greeting",
        "reason_text": "Birthday",
        "due": "2026-12-24",
    }
    created = api.post("/api/v1/retention/tasks/", payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["assignee"] == "am_bob"
    assert created.json()["source"] == "person"
    # mike's client does not exist for tina
    other = api.post("/api/v1/retention/tasks/", {**payload, "client_no": tasks.mike_client.client_no}, format="json")
    assert other.status_code == 404
    assert api.post("/api/v1/retention/tasks/", {**payload, "due": "soon"}, format="json").status_code == 400
    task_id = created.json()["id"]
    assert api.post(f"/api/v1/retention/tasks/{task_id}/cancel/", {}, format="json").status_code == 400
    cancelled = api.post(f"/api/v1/retention/tasks/{task_id}/cancel/", {"reason": "Duplicate"}, format="json")
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["close_reason"] == "Duplicate"


def test_filters(tasks: Cast) -> None:
    extra = outreach(tasks.alice_client, kind="greeting", due=DUE + dt.timedelta(days=5), assignee=tasks.tina)
    assert [row["id"] for row in listed(tasks.tina, "?kind=greeting")] == [extra.pk]
    assert [row["id"] for row in listed(tasks.tina, "?mine=true")] == [extra.pk]
    assert len(listed(tasks.tina, f"?due_before={DUE}")) == 2
    assert len(listed(tasks.olga, f"?manager={tasks.mike.employee_no}")) == 1
    for query in ("?kind=lunch", "?status=later", "?due_before=tomorrow", "?playbook=1.5", "?page_size=0"):
        assert api_as(tasks.olga).get(f"/api/v1/retention/tasks/{query}").status_code == 400, query


def test_the_task_list_costs_the_same_queries_for_3_and_30_rows(cast: Cast, django_assert_num_queries) -> None:
    api = api_as(cast.tina)
    for _ in range(3):
        outreach(cast.alice_client)
    api.get("/api/v1/retention/tasks/")  # session and roles warmed up alike below
    with django_assert_num_queries(4) as few:  # session, user, roles, page
        assert len(api.get("/api/v1/retention/tasks/").json()["results"]) == 3
    for _ in range(27):
        outreach(cast.bob_client)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/retention/tasks/").json()["results"]) == 30


def test_an_account_manager_works_only_the_tasks_assigned_to_her(tasks: Cast) -> None:
    escalated = outreach(tasks.alice_client, assignee=tasks.tina)
    alice = api_as(tasks.alice.user)
    assert alice.get(f"/api/v1/retention/tasks/{escalated.pk}/").status_code == 200
    refused = alice.post(
        f"/api/v1/retention/tasks/{escalated.pk}/complete/", {"channel": "phone", "outcome": "x"}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This task is assigned to lead_tina; ask your team lead to reassign it."}
    done = api_as(tasks.tina).post(
        f"/api/v1/retention/tasks/{escalated.pk}/complete/", {"channel": "phone", "outcome": "ok"}, format="json"
    )
    assert done.status_code == 200


def test_rescheduling_and_reassigning_through_the_api(tasks: Cast) -> None:
    own = RetentionTask.objects.get(client=tasks.alice_client)
    api = api_as(tasks.tina)
    url = f"/api/v1/retention/tasks/{own.pk}/"
    assert api.patch(url, {"priority": 101}, format="json").status_code == 400
    assert api.patch(url, {"assignee": "am_mike"}, format="json").json() == {
        "detail": "assignee: am_mike may not see this client."
    }
    assert api.patch(url, {"assignee": "ghost"}, format="json").json() == {
        "assignee": ["No active user named 'ghost'."]
    }
    # bob is in the same team, but alice's client is not in his book
    assert api.patch(url, {"assignee": "am_bob"}, format="json").status_code == 400
    moved = api.patch(
        url, {"due": "2026-12-09", "priority": 90, "assignee": "lead_tina", "notes": "I call"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    assert {key: moved.json()[key] for key in ("due", "priority", "assignee", "notes")} == {
        "due": "2026-12-09",
        "priority": 90,
        "assignee": "lead_tina",
        "notes": "I call",
    }


def test_the_workload_per_assignee_and_kind_is_scoped(tasks: Cast) -> None:
    outreach(tasks.alice_client, kind="greeting", due=DUE + dt.timedelta(days=30))
    outreach(tasks.bob_client, due=dt.date(2020, 1, 1))  # long overdue
    rows = api_as(tasks.tina).get("/api/v1/retention/tasks/workload/").json()
    assert rows == [
        {"assignee": "am_alice", "kind": "at_risk_outreach", "tasks": 1, "overdue": 0},
        {"assignee": "am_alice", "kind": "greeting", "tasks": 1, "overdue": 0},
        {"assignee": "am_bob", "kind": "at_risk_outreach", "tasks": 2, "overdue": 1},
    ]
    mine = api_as(tasks.alice.user).get(f"/api/v1/retention/tasks/workload/?due_by={DUE}").json()
    assert mine == [{"assignee": "am_alice", "kind": "at_risk_outreach", "tasks": 1, "overdue": 0}]
    assert api_as(tasks.alice.user).get("/api/v1/retention/tasks/workload/?due_by=soon").status_code == 400
