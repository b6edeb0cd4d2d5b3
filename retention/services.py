"""Writes of retention work that people and other apps make: open, complete, cancel and
update retention tasks.

`open_task` is the one way to open a task outside the nightly bulk writes (the feedback app
calls it for a detractor answer). Rules are checked here and raise TaskError, whose messages
name the field and what was expected; the API answers them with 400.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from brokercrm.policy import sees_all_clients, visible_clients
from brokercrm.roles import TEAM_LEAD, has_role
from clients.models import Client, Interaction
from retention.work.models import RetentionTask, TaskKind, TaskSource, TaskStatus


class TaskError(ValueError):
    BAD_KIND = "kind: expected one of {choices}, not {value!r}."
    BAD_SOURCE = "source: expected one of {choices}, not {value!r}."
    BAD_PRIORITY = "priority: expected a whole number from 0 to 100, not {value!r}."
    BAD_DUE = "due: expected a date (YYYY-MM-DD), not {value!r}."
    REASON_CODE_REQUIRED = "reason_code: a short machine-readable reason is required."
    REASON_TEXT_REQUIRED = "reason_text: say why the task exists."
    DEDUPE_TOO_LONG = "dedupe_key: at most 200 characters."
    BAD_CHANNEL = "channel: expected one of {choices}, not {value!r}."
    OUTCOME_REQUIRED = "outcome: say what came of the contact."
    CANCEL_REASON_REQUIRED = "reason: say why the task is cancelled."
    NOT_OPEN = "status: the task is {status}; only open tasks can be changed."
    ASSIGNEE_OUT_OF_SCOPE = "assignee: {username} may not see this client."
    CALLBACK_TASK = "This is a regulatory callback task: record the callback (with its checklist) instead."
    NOT_YOURS = "This task is assigned to {username}; ask your team lead to reassign it."


def _check_choice(value: str, choices: list[str], message: str) -> None:
    if value not in choices:
        raise TaskError(message.format(choices=", ".join(choices), value=value))


def default_assignee(client: Client) -> AbstractBaseUser | None:
    """The user of the client's account manager, or None when the client has none."""
    manager = client.account_manager
    return manager.user if manager is not None else None


def open_task(
    *,
    client: Client,
    kind: str,
    reason_code: str,
    reason_text: str,
    due: dt.date,
    priority: int = 50,
    source: str = "rule",
    assignee: AbstractBaseUser | None = None,
    dedupe_key: str | None = None,
    created_by: AbstractBaseUser | None = None,
    playbook_id: int | None = None,
    campaign_id: int | None = None,
    reason_facts: dict | None = None,
) -> RetentionTask:
    """Open a retention task for `client` and return it.

    The assignee defaults to the client's account manager's user. When an open task with the
    same `dedupe_key` exists, that task is returned unchanged instead of a duplicate (a partial
    unique index enforces it, so two concurrent callers still get one task). Raises TaskError.
    """
    _check_choice(kind, TaskKind.values, TaskError.BAD_KIND)
    _check_choice(source, TaskSource.values, TaskError.BAD_SOURCE)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise TaskError(TaskError.BAD_PRIORITY.format(value=priority))
    if not isinstance(due, dt.date) or isinstance(due, dt.datetime):
        raise TaskError(TaskError.BAD_DUE.format(value=due))
    reason_code = (reason_code or "").strip()
    reason_text = (reason_text or "").strip()
    if not reason_code:
        raise TaskError(TaskError.REASON_CODE_REQUIRED)
    if not reason_text:
        raise TaskError(TaskError.REASON_TEXT_REQUIRED)
    if dedupe_key is not None and len(dedupe_key) > 200:
        raise TaskError(TaskError.DEDUPE_TOO_LONG)
    if assignee is None:
        assignee = default_assignee(client)
    if dedupe_key:
        existing = RetentionTask.objects.open().filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing
    task = RetentionTask(
        client=client,
        kind=kind,
        reason_code=reason_code[:60],
        reason_text=reason_text,
        due=due,
        priority=priority,
        source=source,
        assignee=assignee,
        dedupe_key=dedupe_key or None,
        created_by=created_by,
        created_on=timezone.localdate(),
        playbook_id=playbook_id,
        campaign_id=campaign_id,
        reason_facts=reason_facts or {},
    )
    try:
        with transaction.atomic():
            task.save()
    except IntegrityError:
        # Another caller opened the same key between our read and our insert.
        existing = RetentionTask.objects.open().filter(dedupe_key=dedupe_key).first() if dedupe_key else None
        if existing is None:
            raise
        return existing
    return task


def task_can_work(user: AbstractBaseUser, task: RetentionTask) -> bool:
    """Who may complete, cancel or change a task they can see: an account manager only their own
    (assigned to them, or to nobody); team leads, compliance, ops, API systems any in their scope."""
    if user.is_superuser or sees_all_clients(user) or has_role(user, TEAM_LEAD):
        return True
    return task.assignee_id is None or task.assignee_id == user.pk


def task_check_can_work(user: AbstractBaseUser, task: RetentionTask) -> None:
    """Raises TaskError(NOT_YOURS) when `user` may see but not work the task."""
    if not task_can_work(user, task):
        username = task.assignee.get_username() if task.assignee_id else "nobody"
        raise TaskError(TaskError.NOT_YOURS.format(username=username))


def _close(
    task: RetentionTask, *, status: str, by: AbstractBaseUser | None, reason: str = "", **fields: object
) -> None:
    """Compare-and-set: close the task only if it is still open (a second click loses)."""
    now = timezone.now()
    updated = RetentionTask.objects.filter(pk=task.pk, status=TaskStatus.OPEN).update(
        status=status, closed_at=now, closed_by=by, close_reason=reason, **fields
    )
    if updated != 1:
        task.refresh_from_db(fields=["status"])
        raise TaskError(TaskError.NOT_OPEN.format(status=task.status))
    task.refresh_from_db()


def task_complete(
    *,
    task: RetentionTask,
    by: AbstractBaseUser,
    channel: str,
    outcome: str,
    notes: str = "",
    occurred_at: dt.datetime | None = None,
    allow_callback: bool = False,
) -> RetentionTask:
    """Mark the task done and record the contact as a clients.Interaction (returned on the task).

    A service-delivery task also records the delivery of its entitlement. Callback tasks are
    completed through retention.work.callbacks (the checklist), not here.
    """
    if task.source == TaskSource.CALLBACK and not allow_callback:
        raise TaskError(TaskError.CALLBACK_TASK)
    _check_choice(channel, Interaction.Channel.values, TaskError.BAD_CHANNEL)
    outcome = (outcome or "").strip()
    if not outcome:
        raise TaskError(TaskError.OUTCOME_REQUIRED)
    if task.status != TaskStatus.OPEN:
        raise TaskError(TaskError.NOT_OPEN.format(status=task.status))
    with transaction.atomic():
        # In the language of whoever did the work, as the kind's name already was (the reason's
        # stored text is in the site's default language).
        summary = _("%(kind)s: %(reason)s") % {"kind": task.get_kind_display(), "reason": task.reason_display}
        if notes:
            summary = f"{summary}\n{notes}"
        interaction = Interaction.objects.create(
            client_id=task.client_id,
            channel=channel,
            direction=Interaction.Direction.OUTBOUND,
            summary=summary,
            outcome=outcome[:200],
            occurred_at=occurred_at or timezone.now(),
            by=by,
        )
        _close(
            task,
            status=TaskStatus.DONE,
            by=by,
            channel=channel,
            outcome=outcome[:200],
            notes=notes,
            interaction=interaction,
        )
        if task.source == TaskSource.SERVICE:
            from retention.work.entitlements import delivery_record_for_task

            delivery_record_for_task(task=task, by=by)
    return task


def task_cancel(*, task: RetentionTask, by: AbstractBaseUser, reason: str) -> RetentionTask:
    """Cancel an open task with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise TaskError(TaskError.CANCEL_REASON_REQUIRED)
    if task.source == TaskSource.CALLBACK:
        raise TaskError(TaskError.CALLBACK_TASK)
    _close(task, status=TaskStatus.CANCELLED, by=by, reason=reason[:300])
    return task


def task_update(
    *,
    task: RetentionTask,
    by: AbstractBaseUser,
    due: dt.date | None = None,
    priority: int | None = None,
    assignee: AbstractBaseUser | None = None,
    notes: str | None = None,
) -> RetentionTask:
    """Reschedule, reprioritise, reassign or annotate an open task. A new assignee must be
    someone who may see the client (brokercrm.policy)."""
    if task.status != TaskStatus.OPEN:
        raise TaskError(TaskError.NOT_OPEN.format(status=task.status))
    fields: dict[str, object] = {}
    if due is not None:
        fields["due"] = due
    if priority is not None:
        if not 0 <= priority <= 100:
            raise TaskError(TaskError.BAD_PRIORITY.format(value=priority))
        fields["priority"] = priority
    if assignee is not None:
        if not visible_clients(assignee).filter(pk=task.client_id).exists():
            raise TaskError(TaskError.ASSIGNEE_OUT_OF_SCOPE.format(username=assignee.get_username()))
        fields["assignee"] = assignee
    if notes is not None:
        fields["notes"] = notes
    if fields:
        updated = RetentionTask.objects.filter(pk=task.pk, status=TaskStatus.OPEN).update(**fields)
        if updated != 1:
            raise TaskError(TaskError.NOT_OPEN.format(status="closed"))
        task.refresh_from_db()
    return task


def tasks_expire(*, task_ids: list[int], reason: str) -> int:
    """Expire the given tasks that are still open (bulk, nightly); returns how many."""
    expired = 0
    now = timezone.now()
    for start in range(0, len(task_ids), 5000):
        expired += RetentionTask.objects.filter(pk__in=task_ids[start : start + 5000], status=TaskStatus.OPEN).update(
            status=TaskStatus.EXPIRED, closed_at=now, close_reason=reason[:300]
        )
    return expired
