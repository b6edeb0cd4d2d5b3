"""Acting from the pages: today's work on the home page (with its Done form) and the client
360's forms (log an interaction, add a task, record a callback, record a complaint).

Every write goes through a service; a bad value is a field error next to the field and writes
nothing; a client outside the scope is 404; a role that does not act on clients is 403."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Interaction
from feedback.models import Complaint
from retention.services import open_task
from retention.work.callbacks import retain_until
from retention.work.models import Callback, CallbackAttempt, RetentionTask, TaskStatus
from tests import factories
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

HOME = reverse("home")


def signed_in(user: object) -> Browser:
    browser = Browser()
    browser.force_login(user)
    return browser


def detail(client: Client) -> str:
    return reverse("client-detail", args=[client.client_no])


def task_for(client: Client, *, due: dt.date | None = None, priority: int = 50, assignee: object = None, **kw):
    return open_task(
        client=client,
        kind=kw.pop("kind", "reactivation"),
        reason_code="test",
        reason_text=kw.pop("reason_text", f"Call {client.name} back."),
        due=due or timezone.localdate(),
        priority=priority,
        assignee=assignee,
        **kw,
    )


def callback_for(client: Client, *, due: dt.date | None = None) -> Callback:
    today = timezone.localdate()
    task = task_for(
        client,
        kind="callback",
        source="callback",
        due=due or today,
        priority=70,
        reason_text="Regulatory callback: new account. Confirm identity.",
    )
    return Callback.objects.create(
        client=client,
        kind="new_account",
        year=today.year,
        due=due or today,
        task=task,
        created_on=today,
        retain_until=retain_until(today),
    )


# --- log an interaction ---------------------------------------------------------------------


def test_log_an_interaction(cast: Cast) -> None:
    url = reverse("client-interaction-log", args=[cast.alice_client.client_no])
    browser = signed_in(cast.alice.user)

    response = browser.post(
        url,
        {
            "interaction-channel": "phone",
            "interaction-direction": "inbound",
            "interaction-summary": "Asked about margin rates.",
            "interaction-outcome": "Sent the rate card",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"{detail(cast.alice_client)}#contacts-heading"
    contact = Interaction.objects.get(client=cast.alice_client)
    assert (contact.channel, contact.direction, contact.by) == ("phone", "inbound", cast.alice.user)
    assert contact.summary == "Asked about margin rates."
    page = browser.get(response["Location"])
    assert "Interaction logged." in page.text
    assert "Asked about margin rates." in page.text


def test_interaction_with_a_bad_value_is_a_field_error_and_writes_nothing(cast: Cast) -> None:
    url = reverse("client-interaction-log", args=[cast.alice_client.client_no])

    response = signed_in(cast.alice.user).post(
        url, {"interaction-channel": "pigeon", "interaction-direction": "inbound", "interaction-summary": " "}
    )

    assert response.status_code == 400
    assert 'id="id_interaction-channel_error"' in response.text
    assert 'id="id_interaction-summary_error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert not Interaction.objects.exists()


def test_interaction_outside_the_scope_is_404_and_for_compliance_403(cast: Cast) -> None:
    data = {"interaction-channel": "phone", "interaction-direction": "outbound", "interaction-summary": "Hi"}
    assert (
        signed_in(cast.alice.user)
        .post(reverse("client-interaction-log", args=[cast.mike_client.client_no]), data)
        .status_code
        == 404
    )
    for user in (cast.carol, cast.olga, cast.system):
        response = signed_in(user).post(reverse("client-interaction-log", args=[cast.alice_client.client_no]), data)
        assert response.status_code == 403
    assert not Interaction.objects.exists()


def test_the_forms_need_the_csrf_token(cast: Cast) -> None:
    browser = Browser(enforce_csrf_checks=True)
    browser.force_login(cast.alice.user)
    data = {"interaction-channel": "phone", "interaction-direction": "outbound", "interaction-summary": "Hi"}

    response = browser.post(reverse("client-interaction-log", args=[cast.alice_client.client_no]), data)

    assert response.status_code == 403
    assert not Interaction.objects.exists()


# --- add a task ---------------------------------------------------------------------------


def test_add_a_task(cast: Cast) -> None:
    due = timezone.localdate() + dt.timedelta(days=3)
    url = reverse("client-task-add", args=[cast.alice_client.client_no])
    browser = signed_in(cast.tina)  # the team lead adds it; it goes to the account manager

    response = browser.post(
        url, {"task-kind": "at_risk_outreach", "task-due": due.isoformat(), "task-priority": "80", "task-note": "Rates"}
    )

    assert response.status_code == 302
    task = RetentionTask.objects.get(client=cast.alice_client)
    assert (task.kind, task.due, task.priority, task.source) == ("at_risk_outreach", due, 80, "person")
    assert (task.reason_text, task.assignee, task.created_by) == ("Rates", cast.alice.user, cast.tina)
    page = browser.get(detail(cast.alice_client))
    assert "Task added." in page.text
    assert "Rates" in page.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("due", "2001-01-01"), ("priority", "101"), ("kind", "callback"), ("note", "")],
)
def test_a_task_with_a_bad_value_is_a_field_error_and_writes_nothing(cast: Cast, field: str, value: str) -> None:
    data = {
        "task-kind": "other",
        "task-due": timezone.localdate().isoformat(),
        "task-priority": "50",
        "task-note": "Check in",
        f"task-{field}": value,
    }

    response = signed_in(cast.alice.user).post(reverse("client-task-add", args=[cast.alice_client.client_no]), data)

    assert response.status_code == 400
    assert f'id="id_task-{field}_error"' in response.text
    assert not RetentionTask.objects.exists()


def test_add_task_scope_and_role(cast: Cast) -> None:
    data = {"task-kind": "other", "task-due": timezone.localdate().isoformat(), "task-priority": "5", "task-note": "x"}
    assert (
        signed_in(cast.alice.user).post(reverse("client-task-add", args=[cast.bob_client.client_no]), data).status_code
        == 404
    )
    assert (
        signed_in(cast.olga).post(reverse("client-task-add", args=[cast.alice_client.client_no]), data).status_code
        == 403
    )
    assert not RetentionTask.objects.exists()


# --- regulatory callback ----------------------------------------------------------------------

CHECKLIST = {
    "identity_confirmed": "yes",
    "no_unauthorised_staff_trading": "yes",
    "risk_disclosure_understood": "yes",
    "satisfaction": "4",
}


def callback_data(callback: Callback, **values: str) -> dict[str, str]:
    data = {"result": "completed", "channel": "phone", **CHECKLIST, "notes": "", **values}
    return {f"callback-{callback.pk}-{name}": value for name, value in data.items()}


def callback_url(client: Client, callback: Callback) -> str:
    return reverse("client-callback-record", args=[client.client_no, callback.pk])


def test_complete_a_callback_with_its_checklist(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)
    browser = signed_in(cast.alice.user)

    response = browser.post(callback_url(cast.alice_client, callback), callback_data(callback, notes="All fine"))

    assert response.status_code == 302
    callback.refresh_from_db()
    assert callback.status == "done"
    assert (callback.identity_confirmed, callback.satisfaction, callback.completed_by) == (True, 4, cast.alice.user)
    task = RetentionTask.objects.get(pk=callback.task_id)
    assert task.status == TaskStatus.DONE
    assert task.interaction.outcome == "Callback completed"
    page = browser.get(detail(cast.alice_client))
    assert "Callback completed with its checklist; its task is done." in page.text
    assert 'action="' + callback_url(cast.alice_client, callback) not in page.text  # no form on a done callback


def test_an_incomplete_checklist_is_a_field_error_and_writes_nothing(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)

    response = signed_in(cast.alice.user).post(
        callback_url(cast.alice_client, callback),
        callback_data(callback, risk_disclosure_understood="", satisfaction="9"),
    )

    assert response.status_code == 400
    assert f'id="id_callback-{callback.pk}-risk_disclosure_understood_error"' in response.text
    assert f'id="id_callback-{callback.pk}-satisfaction_error"' in response.text
    callback.refresh_from_db()
    assert (callback.status, callback.attempts) == ("pending", 0)
    assert not CallbackAttempt.objects.exists()
    assert not Interaction.objects.exists()


def test_an_unreachable_call_is_retried(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)
    data = callback_data(callback, result="unreachable", identity_confirmed="", satisfaction="")

    response = signed_in(cast.alice.user).post(callback_url(cast.alice_client, callback), data)

    assert response.status_code == 302
    callback.refresh_from_db()
    assert (callback.status, callback.attempts) == ("retry", 1)
    assert RetentionTask.objects.get(pk=callback.task_id).status == TaskStatus.OPEN


def test_callback_scope_and_role(cast: Cast) -> None:
    mikes = callback_for(cast.mike_client)
    alices = callback_for(cast.alice_client)
    alice = signed_in(cast.alice.user)
    # another manager's client, and a callback of another client under this client's address
    assert alice.post(callback_url(cast.mike_client, mikes), callback_data(mikes)).status_code == 404
    assert alice.post(callback_url(cast.alice_client, mikes), callback_data(mikes)).status_code == 404
    bobs = callback_for(cast.bob_client)
    assert signed_in(cast.tina).post(callback_url(cast.alice_client, bobs), callback_data(bobs)).status_code == 404
    assert (
        signed_in(cast.system).post(callback_url(cast.alice_client, alices), callback_data(alices)).status_code == 403
    )
    # escalated to the team lead: the account manager may no longer record it
    RetentionTask.objects.filter(pk=alices.task_id).update(assignee=cast.tina)
    Callback.objects.filter(pk=alices.pk).update(status="escalated", escalated_to=cast.tina)
    assert alice.post(callback_url(cast.alice_client, alices), callback_data(alices)).status_code == 403
    assert not CallbackAttempt.objects.exists()
    assert signed_in(cast.tina).post(callback_url(cast.alice_client, alices), callback_data(alices)).status_code == 302


# --- record a complaint -------------------------------------------------------------------------


def test_record_a_complaint(cast: Cast) -> None:
    browser = signed_in(cast.alice.user)
    data = {
        "complaint-channel": "phone",
        "complaint-category": "fees",
        "complaint-severity": "high",
        "complaint-description": "Charged twice for one trade.",
    }

    response = browser.post(reverse("client-complaint-open", args=[cast.alice_client.client_no]), data)

    assert response.status_code == 302
    complaint = Complaint.objects.get(client=cast.alice_client)
    assert (complaint.category, complaint.severity, complaint.opened_by) == ("fees", "high", cast.alice.user)
    assert complaint.first_response_due_at == complaint.opened_at + dt.timedelta(hours=8)  # the service's SLA
    page = browser.get(detail(cast.alice_client))
    assert f"Complaint {complaint.reference} recorded." in page.text


def test_a_complaint_with_a_bad_value_is_a_field_error_and_writes_nothing(cast: Cast) -> None:
    data = {
        "complaint-channel": "phone",
        "complaint-category": "fees",
        "complaint-severity": "apocalyptic",
        "complaint-description": "Charged twice.",
    }

    response = signed_in(cast.alice.user).post(
        reverse("client-complaint-open", args=[cast.alice_client.client_no]), data
    )

    assert response.status_code == 400
    assert 'id="id_complaint-severity_error"' in response.text
    assert not Complaint.objects.exists()


def test_complaint_scope_and_role(cast: Cast) -> None:
    data = {
        "complaint-channel": "phone",
        "complaint-category": "fees",
        "complaint-severity": "low",
        "complaint-description": "x",
    }
    url = reverse("client-complaint-open", args=[cast.mike_client.client_no])
    assert signed_in(cast.tina).post(url, data).status_code == 404
    assert signed_in(cast.carol).post(url, data).status_code == 403
    assert not Complaint.objects.exists()


# --- what the 360 shows -------------------------------------------------------------------------


def test_the_360_shows_tasks_callbacks_complaints_with_breach_and_survey_answers(cast: Cast) -> None:
    client = cast.alice_client
    task_for(client, reason_text="Offer the new fee plan.")
    callback_for(client)
    factories.ComplaintFactory(client=client, opened_at=timezone.now() - dt.timedelta(days=5))  # 48 h passed
    factories.SurveyResponseFactory(client=client, score=3, comment="Slow app")

    page = signed_in(cast.alice.user).get(detail(client))

    assert "Offer the new fee plan." in page.text
    assert "New account (within one month of opening)" in page.text
    assert 'data-testid="sla-breached"' in page.text
    assert "Slow app" in page.text
    assert 'for="id_interaction-channel"' in page.text  # labelled forms
    assert "csrfmiddlewaretoken" in page.text


def test_the_360_is_read_only_for_compliance(cast: Cast) -> None:
    callback_for(cast.alice_client)

    page = signed_in(cast.carol).get(detail(cast.alice_client))

    assert page.status_code == 200
    assert 'data-testid="read-only"' in page.text
    assert '<form method="post" action="/clients/' not in page.text


# --- today's work on the home page -------------------------------------------------------------


def test_home_lists_the_users_own_tasks_due_today_or_overdue(cast: Cast) -> None:
    today = timezone.localdate()
    mine = task_for(cast.alice_client, reason_text="Alice today", priority=60)
    overdue = task_for(cast.alice_client, reason_text="Alice overdue", due=today - dt.timedelta(days=3), priority=90)
    task_for(cast.alice_client, reason_text="Alice next week", due=today + dt.timedelta(days=7))
    task_for(cast.bob_client, reason_text="Bob today")
    task_for(cast.mike_client, reason_text="Mike today")

    alice = signed_in(cast.alice.user).get(HOME)
    tina = signed_in(cast.tina).get(HOME)
    carol = signed_in(cast.carol).get(HOME)

    assert [t.pk for t in alice.context["today_tasks"]] == [overdue.pk, mine.pk]  # priority first
    assert "Alice overdue" in alice.text
    assert "Bob today" not in alice.text
    assert "Alice next week" not in alice.text
    assert {t.reason_text for t in tina.context["today_tasks"]} == {"Alice today", "Alice overdue", "Bob today"}
    assert "Mike today" not in tina.text
    assert carol.context["today_panel"] is False
    assert "Today&#x27;s work" not in carol.text


def test_done_from_the_home_page_records_an_interaction(cast: Cast) -> None:
    task = task_for(cast.alice_client)
    browser = signed_in(cast.alice.user)
    data = {f"done-{task.pk}-channel": "phone", f"done-{task.pk}-outcome": "Will deposit", f"done-{task.pk}-notes": ""}

    response = browser.post(reverse("task-done", args=[task.pk]), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.closed_by, task.outcome) == ("done", cast.alice.user, "Will deposit")
    assert task.interaction.client == cast.alice_client
    assert "Done: Reactivation" in browser.get(HOME).text


def test_done_without_an_outcome_is_a_field_error(cast: Cast) -> None:
    task = task_for(cast.alice_client)

    response = signed_in(cast.alice.user).post(
        reverse("task-done", args=[task.pk]), {f"done-{task.pk}-channel": "phone", f"done-{task.pk}-outcome": ""}
    )

    assert response.status_code == 400
    assert f'id="id_done-{task.pk}-outcome_error"' in response.text
    task.refresh_from_db()
    assert task.status == "open"
    assert not Interaction.objects.exists()


def test_done_scope_and_role(cast: Cast) -> None:
    mikes = task_for(cast.mike_client)
    alices = task_for(cast.alice_client)
    leads = task_for(cast.alice_client, assignee=cast.tina)

    def done(user: object, task: RetentionTask) -> int:
        data = {f"done-{task.pk}-channel": "phone", f"done-{task.pk}-outcome": "ok"}
        return signed_in(user).post(reverse("task-done", args=[task.pk]), data).status_code

    assert done(cast.alice.user, mikes) == 404
    assert done(cast.carol, alices) == 403
    assert done(cast.alice.user, leads) == 403  # assigned to the team lead
    assert RetentionTask.objects.filter(status="open").count() == 3
    assert done(cast.tina, alices) == 302  # a team lead works the team's tasks


def test_a_callback_task_is_done_through_its_callback(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)
    data = {f"done-{callback.task_id}-channel": "phone", f"done-{callback.task_id}-outcome": "ok"}

    response = signed_in(cast.alice.user).post(reverse("task-done", args=[callback.task_id]), data)

    assert response.status_code == 302
    assert response["Location"].endswith("#callbacks-heading")
    assert RetentionTask.objects.get(pk=callback.task_id).status == "open"


# --- fixed query counts -------------------------------------------------------------------------


@pytest.mark.parametrize("tasks", [3, 30])
def test_home_query_count_does_not_grow_with_the_tasks(cast: Cast, django_assert_num_queries, tasks: int) -> None:
    for n in range(tasks):
        task_for(cast.alice_client, priority=n % 100)
    browser = signed_in(cast.alice.user)

    # session, user, roles, counts, page count, page rows, published generations, today's tasks,
    # the book panels (tier date, reactivation date and list, birthdays, KYC x2, complaints)
    with django_assert_num_queries(14):
        response = browser.get(HOME)

    assert len(response.context["today_tasks"]) == min(tasks, 20)


@pytest.mark.parametrize("tasks", [3, 30])
def test_the_360_query_count_does_not_grow_with_the_work(cast: Cast, tasks: int) -> None:
    client = cast.alice_client
    for n in range(tasks):
        task_for(client, priority=n % 100)
        factories.ComplaintFactory(client=client)
        factories.SurveyResponseFactory(client=client)
    callback_for(client)
    browser = signed_in(cast.alice.user)

    with CaptureQueriesContext(connection) as queries:
        assert browser.get(detail(client)).status_code == 200

    # base 13 (session, user, roles, client, risk assessment, scores, tier, needs, tier history, trades,
    # cash flows, assets, interactions) + open tasks, callbacks, complaints, survey answers
    assert len(queries) == 17, [q["sql"][:90] for q in queries.captured_queries]


def test_a_task_closed_meanwhile_is_a_message_not_a_second_interaction(cast: Cast) -> None:
    task = task_for(cast.alice_client)
    browser = signed_in(cast.alice.user)
    data = {f"done-{task.pk}-channel": "phone", f"done-{task.pk}-outcome": "ok"}
    assert browser.post(reverse("task-done", args=[task.pk]), data).status_code == 302

    again = browser.post(reverse("task-done", args=[task.pk]), data, follow=True)

    assert again.redirect_chain[-1][0] == f"{HOME}#today-heading"
    assert "only open tasks can be changed" in again.text
    assert Interaction.objects.count() == 1


def test_a_callback_done_meanwhile_is_a_message(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)
    browser = signed_in(cast.alice.user)
    assert browser.post(callback_url(cast.alice_client, callback), callback_data(callback)).status_code == 302

    again = browser.post(callback_url(cast.alice_client, callback), callback_data(callback), follow=True)

    assert "this callback is already done." in again.text
    assert CallbackAttempt.objects.count() == 1
