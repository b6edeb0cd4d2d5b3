"""Reads of retention work for the API and admin, always through brokercrm.policy.

An account manager sees the tasks, callbacks, entitlements and campaign members of their own
book; a team lead those of their teams; compliance, ops and API systems everything. A row of a
client outside the scope does not exist for the user (404).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from brokercrm.policy import get_visible_or_404, scope_queryset
from clients.models import Client
from retention.work.models import Callback, ClientEntitlement, RetentionTask, TaskStatus

User = AbstractBaseUser | AnonymousUser

TASK_FIELDS = (
    "id",
    "client__client_no",
    "client__name",
    "client__account_manager__employee_no",
    "assignee__username",
)


def task_list(*, user: User) -> QuerySet[RetentionTask]:
    """Tasks of the clients `user` may see, with client, manager and assignee joined."""
    queryset = RetentionTask.objects.select_related(
        "client__account_manager", "assignee", "playbook", "campaign"
    ).defer("client__address", "client__email", "client__phone")
    return scope_queryset(user, queryset, prefix="client__")


def task_get(*, user: User, pk: int, for_update: bool = False) -> RetentionTask:
    """One task in the user's scope, or Http404."""
    queryset = RetentionTask.objects.select_related("client__account_manager", "assignee", "playbook", "campaign")
    return get_visible_or_404(user, queryset, prefix="client__", pk=pk)


def task_workload(*, user: User, due_by: dt.date | None = None) -> list[dict]:
    """Open tasks in the user's scope per assignee and kind (due by `due_by` when given), one
    aggregate query: rows of assignee (username or None), kind, tasks, overdue (due before today)."""
    today = timezone.localdate()
    queryset = task_list(user=user).filter(status=TaskStatus.OPEN)
    if due_by is not None:
        queryset = queryset.filter(due__lte=due_by)
    rows = (
        queryset.values("assignee__username", "kind")
        .annotate(tasks=Count("id"), overdue=Count("id", filter=Q(due__lt=today)))
        .order_by("assignee__username", "kind")
    )
    return [
        {"assignee": row["assignee__username"], "kind": row["kind"], "tasks": row["tasks"], "overdue": row["overdue"]}
        for row in rows
    ]


def client_get(*, user: User, client_no: str) -> Client:
    return get_visible_or_404(user, Client.objects.select_related("account_manager__user"), client_no=client_no)


def callback_list(*, user: User) -> QuerySet[Callback]:
    queryset = Callback.objects.select_related("client__account_manager", "task__assignee", "completed_by")
    return scope_queryset(user, queryset, prefix="client__")


def callback_get(*, user: User, pk: int) -> Callback:
    queryset = Callback.objects.select_related("client__account_manager__user", "task", "sample")
    return get_visible_or_404(user, queryset, prefix="client__", pk=pk)


def entitlement_list(*, user: User, client_no: str) -> QuerySet[ClientEntitlement]:
    client = get_visible_or_404(user, Client.objects.only("pk"), client_no=client_no)
    return ClientEntitlement.objects.filter(client=client).select_related("product", "client")


def entitlement_get(*, user: User, pk: int) -> ClientEntitlement:
    queryset = ClientEntitlement.objects.select_related("product", "client")
    return get_visible_or_404(user, queryset, prefix="client__", pk=pk)
