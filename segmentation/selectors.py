"""Reads of segmentation results for the API, admin and pages.

Client-level reads take the requesting user and apply brokercrm.policy: rows of clients
outside the user's scope are never returned and a lookup outside it raises Http404.
Aggregates (runs, Pareto, migration) are firm-wide figures, for the roles that read
dashboards (see `sees_aggregates`). Everything here reads stored results.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from brokercrm.models import NightlyRun
from brokercrm.policy import get_visible_or_404, scope_queryset, sees_all_clients
from brokercrm.roles import TEAM_LEAD, has_role
from clients.models import Client
from segmentation.analytics import migration_matrix
from segmentation.models import (
    NeedsProfile,
    ReactivationCandidate,
    ResultSet,
    TierHistory,
    TierOverride,
    TierResult,
    TierRun,
)
from segmentation.tiering import tiers_at

User = AbstractBaseUser | AnonymousUser


class NoTiers(Http404):
    MESSAGE = "No published tiers for {as_of}."


def sees_aggregates(user: User) -> bool:
    """Firm-wide figures: compliance, ops, API systems, superusers and team leads."""
    return sees_all_clients(user) or (user.is_authenticated and has_role(user, TEAM_LEAD))


def tier_current_as_of() -> dt.date | None:
    """The as-of date whose tiers are current: the latest published one still stored."""
    return TierRun.objects.retained().order_by("-as_of").values_list("as_of", flat=True).first()


def tier_run_get(*, as_of: dt.date | None = None) -> TierRun:
    """The summary of `as_of` (default: the current date); Http404 when not published."""
    day = as_of or tier_current_as_of()
    run = TierRun.objects.published().filter(as_of=day).first() if day else None
    if run is None:
        raise NoTiers(NoTiers.MESSAGE.format(as_of=as_of or "any date"))
    return run


def _active_overrides(today: dt.date) -> QuerySet[TierOverride]:
    return TierOverride.objects.active_on(today).filter(client_id=OuterRef("client_id"))


def tier_list(*, user: User, as_of: dt.date | None = None) -> QuerySet[TierResult]:
    """Tiers of the clients `user` may see on `as_of` (default: current), with client,
    branch and account manager joined and the override in force annotated:
    `override_tier`, `override_expires_on` (None without one) and `effective_tier`.
    Raises NoTiers (404) when the date has no stored tiers."""
    if as_of is None:
        day = tier_current_as_of()  # the current date is retained by definition
    else:
        day = as_of if TierRun.objects.retained().filter(as_of=as_of).exists() else None
    if day is None:
        raise NoTiers(NoTiers.MESSAGE.format(as_of=as_of or "any date"))
    active = _active_overrides(timezone.localdate())
    queryset = (
        TierResult.objects.filter(as_of=day)
        .select_related("client__branch", "client__account_manager")
        .only(
            "as_of",
            "client",
            "tier",
            "value",
            "rank",
            "percentile",
            "previous_tier",
            "change",
            "client__client_no",
            "client__name",
            "client__branch__code",
            "client__account_manager__employee_no",
        )
        .annotate(
            override_tier=Subquery(active.values("tier")[:1]),
            override_expires_on=Subquery(active.values("expires_on")[:1]),
        )
        .annotate(effective_tier=Coalesce("override_tier", "tier"))
    )
    return scope_queryset(user, queryset, prefix="client__")


def client_tier_history(*, user: User, client_no: str) -> dict:
    """A client's tier record: current computed tier (None if not tiered), every change, and
    every override with its audit trail. Http404 outside the user's scope."""
    client = get_visible_or_404(user, Client.objects.only("pk", "client_no", "name"), client_no=client_no)
    day = tier_current_as_of()
    current = TierResult.objects.filter(as_of=day, client_id=client.pk).first() if day else None
    return {
        "client": client,
        "as_of": day,
        "current": current,
        "changes": list(TierHistory.objects.filter(client_id=client.pk).order_by("-as_of")),
        "overrides": list(
            TierOverride.objects.filter(client=client)
            .select_related("created_by", "ended_by")
            .prefetch_related("audit__by")
            .order_by("-created_at", "-id")
        ),
    }


def tier_migration(*, from_as_of: dt.date, to_as_of: dt.date) -> dict[str, dict[str, int]]:
    """Clients by tier on `from_as_of` (rows) and `to_as_of` (columns), "none" = not tiered.

    Stored dates are compared in one SQL aggregate; a pruned date is rebuilt from its last
    snapshot and the changes since. Cached until either date is re-run.
    """
    runs = {run.as_of: run for run in TierRun.objects.published().filter(as_of__in=[from_as_of, to_as_of])}
    missing = [day for day in (from_as_of, to_as_of) if day not in runs]
    if missing:
        raise NoTiers(NoTiers.MESSAGE.format(as_of=missing[0]))
    if runs[to_as_of].previous_as_of == from_as_of and runs[to_as_of].migration:
        return runs[to_as_of].migration
    stamps = [runs[day].published_at.timestamp() for day in (from_as_of, to_as_of)]
    key = f"tier-migration:{from_as_of}:{to_as_of}:{stamps[0]}:{stamps[1]}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    if runs[from_as_of].retained and runs[to_as_of].retained:
        matrix = _migration_sql(from_as_of, to_as_of)
    else:
        matrix = migration_matrix(tiers_at(from_as_of), tiers_at(to_as_of))
    cache.set(key, matrix, 24 * 3600)
    return matrix


def _migration_sql(from_as_of: dt.date, to_as_of: dt.date) -> dict[str, dict[str, int]]:
    from segmentation.analytics import NONE_CODE, TIER_CODES

    table = connection.ops.quote_name(TierResult._meta.db_table)
    matrix = {row: dict.fromkeys([*TIER_CODES.values(), NONE_CODE], 0) for row in [*TIER_CODES.values(), NONE_CODE]}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.tier, b.tier, COUNT(*) FROM (SELECT client_id, tier FROM {table} WHERE as_of = %s) a "  # noqa: S608
            f"FULL OUTER JOIN (SELECT client_id, tier FROM {table} WHERE as_of = %s) b "
            "ON a.client_id = b.client_id GROUP BY a.tier, b.tier",
            [from_as_of, to_as_of],
        )
        for before, after, count in cursor.fetchall():
            matrix[TIER_CODES.get(before, NONE_CODE)][TIER_CODES.get(after, NONE_CODE)] = int(count)
    return matrix


def tier_runs() -> QuerySet[TierRun]:
    return TierRun.objects.published().order_by("-as_of")


def reactivation_list(*, user: User) -> QuerySet[ReactivationCandidate]:
    """The current high-assets-low-activity list, restricted to the user's clients."""
    day = (
        ResultSet.objects.filter(kind=ResultSet.Kind.REACTIVATION, is_published=True)
        .order_by("-as_of")
        .values_list("as_of", flat=True)
        .first()
    )
    queryset = ReactivationCandidate.objects.filter(as_of=day).select_related(
        "client__branch", "client__account_manager"
    )
    return scope_queryset(user, queryset, prefix="client__")


def needs_profile_get(*, user: User, client_no: str) -> NeedsProfile:
    """The client's latest published needs profile; Http404 outside scope or when none."""
    client = get_visible_or_404(user, Client.objects.only("pk", "client_no"), client_no=client_no)
    generation = (
        ResultSet.objects.filter(kind=ResultSet.Kind.NEEDS, is_published=True)
        .order_by("-as_of")
        .values_list("generation", flat=True)
        .first()
    )
    profile = NeedsProfile.objects.filter(generation=generation, client_id=client.pk).first() if generation else None
    if profile is None:
        raise Http404("No needs profile for this client yet.")
    profile.client = client
    return profile


def nightly_runs() -> QuerySet[NightlyRun]:
    return NightlyRun.objects.order_by("-as_of").prefetch_related("stage_runs")
