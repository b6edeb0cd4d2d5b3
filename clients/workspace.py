"""The account-manager home's panels: the book at a glance and the lists of who to look at.

Each panel is one query bounded by the size of the user's own book (an account manager's
clients, a team lead's team), never by the size of the firm; each reads stored results of the
last published night (tiers, activity rows, the daily activity rollup, the reactivation list)
or the client records themselves. Scope always comes from the permission policy.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from brokercrm.policy import User, scope_queryset
from clients.models import Client, KYCProfile, RiskAssessment
from feedback.models import Complaint
from retention.models import ActivitySegment, ClientActivity
from segmentation.models import ClientDailyActivity, Tier, TierResult

PANEL_SIZE = 8
BIRTHDAY_DAYS = 7
KYC_WARNING_DAYS = 30
ZERO = Decimal(0)
MONEY = DecimalField(max_digits=24, decimal_places=2)


@dataclass
class TierRow:
    tier: int
    label: str
    clients: int
    assets: Decimal


@dataclass
class Glance:
    as_of: dt.date
    tiers: list[TierRow]
    clients: int
    assets: Decimal
    commission_month: Decimal
    commission_last_month_to_date: Decimal
    commission_last_month: Decimal
    month_start: dt.date
    last_month_start: dt.date
    last_month_same_day: dt.date

    @property
    def change_percent(self) -> float | None:
        """This month to date against the same days of last month, in percent."""
        if not self.commission_last_month_to_date:
            return None
        return float((self.commission_month / self.commission_last_month_to_date - 1) * 100)


def _last_month_same_day(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of the month before `day`'s and the same day of that month (the month's
    last day when it is shorter)."""
    last_month_end = day.replace(day=1) - dt.timedelta(days=1)
    start = last_month_end.replace(day=1)
    return start, start.replace(day=min(day.day, calendar.monthrange(start.year, start.month)[1]))


def _with_assets(queryset: QuerySet[ClientActivity]) -> QuerySet[ClientActivity]:
    """Activity rows with `assets`: cash plus market value as of the night (NULL counts as 0)."""
    return queryset.annotate(
        assets=Coalesce("cash", ZERO, output_field=MONEY) + Coalesce("market_value", ZERO, output_field=MONEY)
    )


def book_glance(user: User, *, as_of: dt.date | None, activity_generation: int | None) -> Glance | None:
    """Clients and assets by tier (the night's tiers, assets from the night's activity rows)
    and commission this month to date against the same days of last month and the whole of
    last month (from the daily activity rollup), up to the night's date. Two queries."""
    if as_of is None:
        return None
    assets = _with_assets(
        ClientActivity.objects.filter(generation=activity_generation, client_id=OuterRef("client_id"))
    ).values("assets")[:1]
    rows = (
        scope_queryset(user, TierResult.objects.filter(as_of=as_of), prefix="client__")
        .values("tier")
        .annotate(
            clients=Count("client_id"),
            assets=Coalesce(Sum(Subquery(assets, output_field=MONEY)), ZERO, output_field=MONEY),
        )
        .order_by("tier")
    )
    by_tier = {row["tier"]: row for row in rows}
    tiers = [
        TierRow(
            tier=tier.value,
            label=tier.label,
            clients=by_tier.get(tier.value, {}).get("clients", 0),
            assets=by_tier.get(tier.value, {}).get("assets", ZERO),
        )
        for tier in Tier
    ]
    month_start = as_of.replace(day=1)
    last_start, last_same_day = _last_month_same_day(as_of)
    money = scope_queryset(
        user, ClientDailyActivity.objects.filter(day__gte=last_start, day__lte=as_of), prefix="client__"
    ).aggregate(
        month=Coalesce(Sum("commission", filter=Q(day__gte=month_start)), ZERO, output_field=MONEY),
        last_to_date=Coalesce(Sum("commission", filter=Q(day__lte=last_same_day)), ZERO, output_field=MONEY),
        last=Coalesce(Sum("commission", filter=Q(day__lt=month_start)), ZERO, output_field=MONEY),
    )
    return Glance(
        as_of=as_of,
        tiers=tiers,
        clients=sum(row.clients for row in tiers),
        assets=sum((row.assets for row in tiers), ZERO),
        commission_month=money["month"],
        commission_last_month_to_date=money["last_to_date"],
        commission_last_month=money["last"],
        month_start=month_start,
        last_month_start=last_start,
        last_month_same_day=last_same_day,
    )


def dormant_clients(user: User, *, activity_generation: int | None) -> list[ClientActivity]:
    """Open clients the night found dormant, the most assets first: money still with us that
    no longer trades."""
    if activity_generation is None:
        return []
    rows = scope_queryset(
        user,
        ClientActivity.objects.filter(
            generation=activity_generation, segment=ActivitySegment.DORMANT, client__status=Client.Status.OPEN
        ),
        prefix="client__",
    )
    return list(_with_assets(rows).select_related("client").order_by("-assets", "-id")[:PANEL_SIZE])


def birthday_days(today: dt.date, days: int = BIRTHDAY_DAYS) -> list[tuple[int, int, dt.date]]:
    """(month, day, the date it falls on) for the next `days` days from today; a 29 February
    birthday falls on 28 February in other years."""
    out = []
    for offset in range(days):
        date = today + dt.timedelta(days=offset)
        out.append((date.month, date.day, date))
        if date.month == 2 and date.day == 28 and not calendar.isleap(date.year):
            out.append((2, 29, date))
    return out


def birthdays_this_week(user: User, *, today: dt.date) -> list[Client]:
    """Open clients whose birthday falls in the next seven days, soonest first; each gets
    `birthday_on`, the date it falls on this year."""
    days = birthday_days(today)
    match = Q(pk__in=[])
    order = []
    for month, day, date in days:
        match |= Q(birthday__month=month, birthday__day=day)
        order.append(When(birthday__month=month, birthday__day=day, then=Value((date - today).days)))
    rows = list(
        scope_queryset(user, Client.objects.filter(status=Client.Status.OPEN))
        .filter(match)
        .annotate(days_to=Case(*order, output_field=IntegerField()))
        .order_by("days_to", "client_no")[:PANEL_SIZE]
    )
    for client in rows:
        client.birthday_on = today + dt.timedelta(days=client.days_to)
    return rows


def kyc_expiring(user: User, *, today: dt.date) -> list[dict]:
    """ID documents and suitability assessments (the client's current one) of open clients that
    have expired or expire within KYC_WARNING_DAYS, the earliest first. Two queries."""
    horizon = today + dt.timedelta(days=KYC_WARNING_DAYS)
    documents = (
        scope_queryset(
            user,
            KYCProfile.objects.filter(id_expiry__lte=horizon, client__status=Client.Status.OPEN),
            prefix="client__",
        )
        .select_related("client")
        .only("id_expiry", "client__client_no", "client__name")
        .order_by("id_expiry", "id")[:PANEL_SIZE]
    )
    newer = RiskAssessment.objects.filter(client_id=OuterRef("client_id"), assessed_on__gt=OuterRef("assessed_on"))
    assessments = (
        scope_queryset(
            user,
            RiskAssessment.objects.filter(expires_on__lte=horizon, client__status=Client.Status.OPEN),
            prefix="client__",
        )
        .filter(~Exists(newer))
        .select_related("client")
        .only("expires_on", "client__client_no", "client__name")
        .order_by("expires_on", "id")[:PANEL_SIZE]
    )
    items = [{"client": row.client, "kind": "id_document", "due": row.id_expiry} for row in documents]
    items += [{"client": row.client, "kind": "risk_assessment", "due": row.expires_on} for row in assessments]
    items.sort(key=lambda item: (item["due"], item["client"].client_no))
    for item in items:
        item["expired"] = item["due"] < today
    return items[:PANEL_SIZE]


def open_complaints(user: User, *, now: dt.datetime) -> list[Complaint]:
    """The book's unresolved complaints, those in breach of an SLA first, then the oldest."""
    return list(
        scope_queryset(
            user,
            Complaint.objects.with_sla(now).exclude(status=Complaint.Status.RESOLVED),
            prefix="client__",
        )
        .select_related("client")
        .order_by("-resolution_breached", "-first_response_breached", "opened_at", "id")[:PANEL_SIZE]
    )
