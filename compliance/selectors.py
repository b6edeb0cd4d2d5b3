"""Reads of compliance for one use case each; every one scoped by brokercrm.policy."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from brokercrm.policy import scope_queryset
from brokercrm.roles import ACCOUNT_MANAGER, API_SYSTEM, COMPLIANCE_OFFICER, TEAM_LEAD, has_role
from compliance.models import AuditEntry, Flag, FlagDecision, ScreeningMatch, SuitabilityRecord, WatchList

User = AbstractBaseUser | AnonymousUser

FLAG_READERS = (COMPLIANCE_OFFICER, ACCOUNT_MANAGER, TEAM_LEAD, API_SYSTEM)
SUITABILITY_WRITERS = (COMPLIANCE_OFFICER, ACCOUNT_MANAGER, TEAM_LEAD, API_SYSTEM)


def is_officer(user: User) -> bool:
    return bool(user.is_authenticated and has_role(user, COMPLIANCE_OFFICER))


def sees_evidence(user: User) -> bool:
    """Compliance officers and API systems read a flag's evidence and decisions; account
    managers and team leads see that a flag exists (kind, severity, status, dates)."""
    return bool(user.is_authenticated and has_role(user, COMPLIANCE_OFFICER, API_SYSTEM))


def flag_list(user: User) -> QuerySet[Flag]:
    """Flags of the clients in the user's scope, with what the list shows joined, and whether a
    decision waits for a second officer."""
    pending = FlagDecision.objects.filter(flag=OuterRef("pk"), status=FlagDecision.Status.PENDING)
    flags = Flag.objects.select_related("client__branch", "assigned_to").annotate(pending_approval=Exists(pending))
    return scope_queryset(user, flags, prefix="client__")


def flag_detail_queryset(user: User) -> QuerySet[Flag]:
    return flag_list(user).select_related("client__kyc", "closed_by")


def flag_decisions(flag: Flag) -> QuerySet[FlagDecision]:
    return flag.decisions.select_related("decided_by", "reviewed_by").order_by("decided_at", "id")


def flag_age_bounds(
    *, min_days: int | None, max_days: int | None, today: dt.date | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """raised_at bounds for flags at least `min_days` and at most `max_days` old."""
    today = today or timezone.localdate()

    def start_of(day: dt.date) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    before = start_of(today - dt.timedelta(days=min_days - 1)) if min_days else None
    after = start_of(today - dt.timedelta(days=max_days)) if max_days is not None else None
    return after, before


def screening_match_list() -> QuerySet[ScreeningMatch]:
    return ScreeningMatch.objects.select_related("client", "entry__watch_list")


def watch_list_list() -> QuerySet[WatchList]:
    return WatchList.objects.all()


def suitability_list(user: User) -> QuerySet[SuitabilityRecord]:
    records = SuitabilityRecord.objects.select_related("client", "instrument", "recorded_by")
    return scope_queryset(user, records, prefix="client__")


def audit_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()
