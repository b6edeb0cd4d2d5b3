"""Rescheduling and cancelling a task from the pages, and completing one from the client 360.

The user comes back to the page the form was on (a path on this site only) with a message;
a bad value names the field and changes nothing; scope and role rules are Done's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from clients.models import Interaction
from retention.work.models import RetentionTask, TaskStatus
from tests.conftest import Cast
from tests.pages.test_workspace_forms import callback_for, detail, signed_in, task_for

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_reschedule_moves_the_due_date_and_returns_home(cast: Cast) -> None:
    task = task_for(cast.alice_client, assignee=cast.alice.user)
    new_due = timezone.localdate() + dt.timedelta(days=5)

    response = signed_in(cast.alice.user).post(
        reverse("task-reschedule", args=[task.pk]), {f"resched-{task.pk}-due": new_due.isoformat()}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("home") + "#today-heading"
    task.refresh_from_db()
    assert (task.due, task.status) == (new_due, TaskStatus.OPEN)
    assert messages_of(response) == [f"Moved to {new_due.isoformat()}: Reactivation for {cast.alice_client}."]


def test_reschedule_into_the_past_names_the_field_and_changes_nothing(cast: Cast) -> None:
    task = task_for(cast.alice_client)
    before = task.due

    response = signed_in(cast.alice.user).post(
        reverse("task-reschedule", args=[task.pk]),
        {f"resched-{task.pk}-due": "2001-01-01", "next": detail(cast.alice_client) + "#tasks-heading"},
    )

    assert response["Location"] == detail(cast.alice_client) + "#tasks-heading"
    assert messages_of(response) == ["New due date: The due date cannot be in the past."]
    task.refresh_from_db()
    assert task.due == before


def test_cancel_needs_a_reason_then_closes_the_task(cast: Cast) -> None:
    task = task_for(cast.alice_client)
    browser = signed_in(cast.alice.user)
    url = reverse("task-cancel", args=[task.pk])

    refused = browser.post(url, {f"cancel-{task.pk}-reason": "  "})
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert messages_of(refused) == ["Why cancel: This field is required."]

    done = browser.post(url, {f"cancel-{task.pk}-reason": "Client moved abroad; account closing"})
    task.refresh_from_db()
    assert (task.status, task.close_reason) == (TaskStatus.CANCELLED, "Client moved abroad; account closing")
    assert messages_of(done)[-1] == f"Cancelled: Reactivation for {cast.alice_client}."


def test_a_regulatory_callback_cannot_be_cancelled(cast: Cast) -> None:
    callback = callback_for(cast.alice_client)

    response = signed_in(cast.alice.user).post(
        reverse("task-cancel", args=[callback.task_id]), {f"cancel-{callback.task_id}-reason": "No time"}
    )

    assert RetentionTask.objects.get(pk=callback.task_id).status == TaskStatus.OPEN
    assert "regulatory callback" in messages_of(response)[0]


def test_an_outside_next_is_ignored(cast: Cast) -> None:
    task = task_for(cast.alice_client)

    response = signed_in(cast.alice.user).post(
        reverse("task-reschedule", args=[task.pk]),
        {f"resched-{task.pk}-due": timezone.localdate().isoformat(), "next": "https://evil.example.com/"},
    )

    assert response["Location"] == reverse("home") + "#today-heading"


@pytest.mark.parametrize("action", ["task-reschedule", "task-cancel"])
def test_scope_and_role_rules_are_those_of_done(cast: Cast, action: str) -> None:
    bobs = task_for(cast.alice_client, assignee=cast.bob.user)  # on alice's client, assigned to bob
    mikes = task_for(cast.mike_client)
    data = {f"resched-{bobs.pk}-due": timezone.localdate().isoformat(), f"cancel-{bobs.pk}-reason": "x"}

    assert signed_in(cast.alice.user).post(reverse(action, args=[mikes.pk]), data).status_code == 404
    assert signed_in(cast.alice.user).post(reverse(action, args=[bobs.pk]), data).status_code == 403
    assert signed_in(cast.carol).post(reverse(action, args=[bobs.pk]), data).status_code == 403  # compliance reads
    assert signed_in(cast.alice.user).get(reverse(action, args=[bobs.pk])).status_code == 405
    bobs.refresh_from_db()
    assert bobs.status == TaskStatus.OPEN


def test_done_from_the_360_returns_to_the_360(cast: Cast) -> None:
    task = task_for(cast.alice_client)
    browser = signed_in(cast.alice.user)
    page = browser.get(detail(cast.alice_client))
    assert f'action="{reverse("task-done", args=[task.pk])}"' in page.text
    assert f'action="{reverse("task-cancel", args=[task.pk])}"' in page.text

    back = detail(cast.alice_client) + "#tasks-heading"
    missing = browser.post(reverse("task-done", args=[task.pk]), {f"done-{task.pk}-channel": "phone", "next": back})
    assert missing["Location"] == back
    assert messages_of(missing) == ["Outcome: This field is required."]
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN

    done = browser.post(
        reverse("task-done", args=[task.pk]),
        {f"done-{task.pk}-channel": "phone", f"done-{task.pk}-outcome": "Will trade again next week", "next": back},
    )
    assert done["Location"] == back
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    assert Interaction.objects.filter(client=cast.alice_client, outcome="Will trade again next week").exists()


def test_the_360_offers_no_task_forms_to_compliance(cast: Cast) -> None:
    task = task_for(cast.alice_client)

    page = signed_in(cast.carol).get(detail(cast.alice_client))

    assert page.status_code == 200
    assert reverse("task-done", args=[task.pk]) not in page.text
    assert reverse("task-cancel", args=[task.pk]) not in page.text
