"""Reads of the KPI snapshots for the API and admin, scoped by role:

- compliance, ops, API systems (and superusers): every row (overall, tier, manager, branch);
- a team lead: the account-manager rows of the managers in the teams they lead;
- an account manager: their own account-manager rows;
- anyone else: nothing.

Every read is a fixed number of queries whatever the book size: the rows are stored
aggregates, filtered by indexed columns and joined to their definition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from brokercrm.policy import sees_all_clients
from brokercrm.roles import ACCOUNT_MANAGER, TEAM_LEAD, user_roles
from metrics.models import KpiSnapshot, MetricDefinition, MetricValue

User = AbstractBaseUser | AnonymousUser


def row_scope(user: User) -> Q | None:
    """Filter on MetricValue for what `user` may read; None: everything."""
    if sees_all_clients(user):
        return None
    roles = user_roles(user)
    scope = Q(pk__in=[])
    if ACCOUNT_MANAGER in roles:
        scope |= Q(dimension="account_manager", account_manager__user=user)
    if TEAM_LEAD in roles:
        scope |= Q(dimension="account_manager", account_manager__team__lead=user)
    return scope


def _scoped(user: User, queryset: QuerySet[MetricValue]) -> QuerySet[MetricValue]:
    scope = row_scope(user)
    return queryset if scope is None else queryset.filter(scope)


def latest_snapshot() -> KpiSnapshot | None:
    return KpiSnapshot.objects.order_by("-as_of").first()


def dashboard(*, user: User) -> tuple[KpiSnapshot | None, list[MetricValue]]:
    """The latest snapshot and its rows in the user's scope (the definition versions it used)."""
    snapshot = latest_snapshot()
    if snapshot is None:
        return None, []
    rows = _scoped(
        user,
        MetricValue.objects.filter(as_of=snapshot.as_of, definition_id__in=list(snapshot.definitions.values())),
    ).select_related("definition", "account_manager", "branch")
    return snapshot, list(rows.order_by("definition__code", "dimension", "key"))


def series(
    *,
    user: User,
    code: str,
    dimension: str | None = None,
    key: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    version: int | None = None,
) -> QuerySet[MetricValue]:
    """A metric over time. Without `version`, each date's rows of the version in force on it
    (effective_from); with it, that version's rows only."""
    return series_of(
        user=user, codes=[code], dimension=dimension, key=key, date_from=date_from, date_to=date_to, version=version
    )


def series_of(
    *,
    user: User,
    codes: Sequence[str],
    dimension: str | None = None,
    key: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    version: int | None = None,
) -> QuerySet[MetricValue]:
    """Several metrics over time (see `series`), their definitions read in one query."""
    by_code: dict[str, list[MetricDefinition]] = {}
    for row in MetricDefinition.objects.filter(code__in=codes).order_by("code", "effective_from"):
        by_code.setdefault(row.code, []).append(row)
    condition = Q(pk__in=[])
    for definitions in by_code.values():
        if version is not None:
            condition |= Q(definition__in=[row for row in definitions if row.version == version])
            continue
        for index, row in enumerate(definitions):
            in_force = Q(definition=row, as_of__gte=row.effective_from)
            if index + 1 < len(definitions):
                in_force &= Q(as_of__lt=definitions[index + 1].effective_from)
            condition |= in_force
    queryset = MetricValue.objects.filter(condition).select_related("definition", "account_manager", "branch")
    if dimension:
        queryset = queryset.filter(dimension=dimension)
    if key is not None:
        queryset = queryset.filter(key=key)
    if date_from:
        queryset = queryset.filter(as_of__gte=date_from)
    if date_to:
        queryset = queryset.filter(as_of__lte=date_to)
    return _scoped(user, queryset)
