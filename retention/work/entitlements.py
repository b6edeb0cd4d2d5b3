"""Service products by tier: grant and withdraw entitlements as tiers change, schedule deliveries.

Nightly for an as-of date D (working day W = D + 1), set-wise:
1. wanted = (open client, product) pairs whose effective tier is in the product's row of the
   matrix (TierEntitlement, active products only);
2. grant the wanted pairs without an open entitlement (next delivery due W, a birthday
   greeting on the next birthday), withdraw open entitlements no longer wanted (with the reason);
3. deliveries due by W: a product delivered by the system (email, SMS, website) is recorded as
   delivered; one delivered by a person (phone, on site) becomes a task for the account
   manager, recorded as a delivery when the task is done. Either way the schedule moves on to
   the next date, so running D again does nothing new.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from brokercrm.nightly import StageContext, StageResult
from clients.models import Client
from retention.work import conf, task_reasons
from retention.work.facts import effective_tiers, insert_frame, queryset_frame, sources_on
from retention.work.models import (
    ClientEntitlement,
    Frequency,
    RetentionTask,
    ServiceDelivery,
    ServiceProduct,
    TaskSource,
    TierEntitlement,
)
from segmentation.models import TIER_CODES

BATCH = 5000
BIRTHDAYS_READ_ALL = 20_000  # above this many clients, one read of every birthday beats IN lists
STEP = {
    Frequency.WEEKLY: relativedelta(weeks=1),
    Frequency.MONTHLY: relativedelta(months=1),
    Frequency.QUARTERLY: relativedelta(months=3),
    Frequency.YEARLY: relativedelta(years=1),
}


class EntitlementError(ValueError):
    WITHDRAWN = "This entitlement was withdrawn on {day}; nothing can be delivered under it."


def next_birthday(birthday: dt.date | None, on_or_after: dt.date) -> dt.date | None:
    if birthday is None:
        return None
    for year in (on_or_after.year, on_or_after.year + 1):
        try:
            day = birthday.replace(year=year)
        except ValueError:  # 29 February
            day = dt.date(year, 2, 28)
        if day >= on_or_after:
            return day
    return None


PERIOD_DAYS = {Frequency.WEEKLY: 7, Frequency.MONTHLY: 30, Frequency.QUARTERLY: 91, Frequency.YEARLY: 365}


def first_due(
    frequency: str, *, granted: dt.date, birthday: dt.date | None, client_id: int = 0, spread: bool = False
) -> dt.date | None:
    """When a new entitlement's first delivery is due. With `spread`, a recurring service's first
    delivery is put (client id mod period) days later, so a whole book granted at once (the first
    night, a big tier re-shuffle) is served evenly over the first period, not all on one day."""
    if frequency == Frequency.ON_DEMAND:
        return None
    if frequency == Frequency.BIRTHDAY:
        return next_birthday(birthday, granted)
    if spread and frequency in PERIOD_DAYS:
        return granted + dt.timedelta(days=client_id % PERIOD_DAYS[frequency])
    return granted


def following_due(frequency: str, *, after: dt.date, birthday: dt.date | None) -> dt.date | None:
    """The delivery date after the one due on `after` (None: no further scheduled delivery)."""
    if frequency in STEP:
        return after + STEP[frequency]
    if frequency == Frequency.BIRTHDAY:
        return next_birthday(birthday, after + dt.timedelta(days=1))
    return None


def wanted_pairs(as_of: dt.date) -> pd.DataFrame:
    """client_id, product_id, tier: what the matrix gives each open client on `as_of`."""
    sources = sources_on(as_of)
    tiers = effective_tiers(as_of, sources.tiers_as_of).dropna(subset=["tier"])
    open_ids = queryset_frame(Client.objects.open_on(as_of).exclude(status=Client.Status.CLOSED), ["id"])
    tiers = tiers[tiers["client_id"].isin(open_ids["id"])]
    matrix = queryset_frame(TierEntitlement.objects.filter(product__is_active=True), ["tier", "product_id"])
    tiers = tiers.assign(tier=tiers["tier"].astype("int64"), client_id=tiers["client_id"].astype("int64"))
    matrix = matrix.assign(tier=matrix["tier"].astype("int64"))
    return tiers.merge(matrix, on="tier", how="inner")[["client_id", "product_id", "tier"]]


def entitlements_sync(*, as_of: dt.date) -> dict:
    """Grant and withdraw entitlements for `as_of`, then record or task the deliveries due."""
    workday = as_of + dt.timedelta(days=1)
    wanted = wanted_pairs(as_of)
    current = queryset_frame(
        ClientEntitlement.objects.filter(withdrawn_on__isnull=True), ["id", "client_id", "product_id"]
    )
    key = ["client_id", "product_id"]
    wanted = wanted.astype({"client_id": "int64", "product_id": "int64"})
    current = current.astype({"id": "int64", "client_id": "int64", "product_id": "int64"})
    joined = current.merge(wanted, on=key, how="outer", indicator=True)
    to_withdraw = joined[joined["_merge"] == "left_only"]
    to_grant = joined[joined["_merge"] == "right_only"]

    tiers_now = dict(zip(wanted["client_id"], wanted["tier"], strict=True))
    withdrawn = 0
    by_reason: dict[str, list[int]] = {}
    for entitlement_id, client_id in zip(to_withdraw["id"], to_withdraw["client_id"], strict=True):
        tier = tiers_now.get(int(client_id))
        reason = (
            f"Tier {TIER_CODES[int(tier)]} on {as_of} does not include this service."
            if tier is not None
            else f"No tier on {as_of} (closed or not tiered)."
        )
        by_reason.setdefault(reason, []).append(int(entitlement_id))
    with transaction.atomic():
        for reason, ids in by_reason.items():
            for start in range(0, len(ids), BATCH):
                withdrawn += ClientEntitlement.objects.filter(
                    pk__in=ids[start : start + BATCH], withdrawn_on__isnull=True
                ).update(withdrawn_on=as_of, withdrawn_reason=reason, next_due=None)

    products = {p.pk: p for p in ServiceProduct.objects.all()}
    spread = conf.entitlement_spread_first_delivery()
    on_birthdays = [pk for pk, product in products.items() if product.frequency == Frequency.BIRTHDAY]
    birthdays = _birthdays(
        [int(c) for c, p in zip(to_grant["client_id"], to_grant["product_id"], strict=True) if int(p) in on_birthdays]
    )
    grants = pd.DataFrame(
        {
            "client_id": to_grant["client_id"].astype("int64").to_numpy(),
            "product_id": to_grant["product_id"].astype("int64").to_numpy(),
            "granted_on": as_of,
            "granted_tier": to_grant["tier"].astype("int64").to_numpy(),
            "next_due": [
                first_due(
                    products[int(product_id)].frequency,
                    granted=workday,
                    birthday=birthdays.get(int(client_id)),
                    client_id=int(client_id),
                    spread=spread,
                )
                for client_id, product_id in zip(to_grant["client_id"], to_grant["product_id"], strict=True)
            ],
            "withdrawn_reason": "",
        }
    )
    with transaction.atomic():
        insert_frame(ClientEntitlement, grants)
    delivered, tasked = deliveries_due(as_of=as_of, products=products)
    return {"granted": len(grants), "withdrawn": withdrawn, "delivered": delivered, "delivery_tasks": tasked}


def _birthdays(client_ids: list[int]) -> dict[int, dt.date | None]:
    """Birthdays of the given clients: a few IN queries for a handful, one read of all for many."""
    if len(client_ids) > BIRTHDAYS_READ_ALL:
        frame = queryset_frame(Client.objects.filter(birthday__isnull=False), ["id", "birthday"])
        wanted = set(client_ids)
        return {
            int(pk): pd.Timestamp(day).date()
            for pk, day in zip(frame["id"], frame["birthday"], strict=True)
            if int(pk) in wanted
        }
    found: dict[int, dt.date | None] = {}
    for start in range(0, len(client_ids), 10_000):
        found.update(Client.objects.filter(pk__in=client_ids[start : start + 10_000]).values_list("pk", "birthday"))
    return found


def deliveries_due(*, as_of: dt.date, products: dict[int, ServiceProduct] | None = None) -> tuple[int, int]:
    """Deliveries due by the working day: record the system's, open tasks for the people's.
    Returns (recorded deliveries, opened tasks)."""
    workday = as_of + dt.timedelta(days=1)
    products = products or {p.pk: p for p in ServiceProduct.objects.all()}
    due = list(
        ClientEntitlement.objects.filter(withdrawn_on__isnull=True, next_due__lte=workday)
        .select_related("client__account_manager")
        .only(
            "id",
            "client_id",
            "product_id",
            "next_due",
            "granted_tier",
            "client__birthday",
            "client__account_manager__user_id",
        )
    )
    deliveries, tasks, moved = [], [], []
    now = timezone.now()
    for entitlement in due:
        product = products[entitlement.product_id]
        scheduled = entitlement.next_due
        if product.needs_person:
            manager = entitlement.client.account_manager
            facts = task_reasons.service_facts(product.name, product.channel, scheduled, entitlement.granted_tier)
            tasks.append(
                RetentionTask(
                    client_id=entitlement.client_id,
                    kind=product.task_kind,
                    assignee_id=manager.user_id if manager is not None else None,
                    due=max(scheduled, workday),
                    priority=40,
                    source=TaskSource.SERVICE,
                    reason_code=f"service:{product.code}",
                    reason_text=task_reasons.stored_text(facts),
                    reason_facts=facts,
                    dedupe_key=f"delivery:{entitlement.pk}:{scheduled.isoformat()}",
                    created_on=workday,
                    created_at=now,
                )
            )
        else:
            deliveries.append(
                ServiceDelivery(
                    entitlement_id=entitlement.pk,
                    client_id=entitlement.client_id,
                    product_id=product.pk,
                    scheduled_for=scheduled,
                    delivered_on=max(scheduled, workday),
                    channel=product.channel,
                    notes="Sent by the system.",
                )
            )
        # Missed slots (the pipeline did not run) are not caught up one by one: one delivery now,
        # then the first slot after the working day, so a re-run of the date finds nothing due.
        following = following_due(product.frequency, after=scheduled, birthday=entitlement.client.birthday)
        while following is not None and following <= workday:
            following = following_due(product.frequency, after=following, birthday=entitlement.client.birthday)
        entitlement.next_due = following
        moved.append(entitlement)
    with transaction.atomic():
        ServiceDelivery.objects.bulk_create(deliveries, batch_size=BATCH, ignore_conflicts=True)
        RetentionTask.objects.bulk_create(tasks, batch_size=BATCH, ignore_conflicts=True)
        # One UPDATE per new date (a handful: the same period after the same day), not a CASE per row.
        by_date: dict[dt.date | None, list[int]] = {}
        for entitlement in moved:
            by_date.setdefault(entitlement.next_due, []).append(entitlement.pk)
        for next_due, ids in by_date.items():
            for start in range(0, len(ids), BATCH):
                ClientEntitlement.objects.filter(pk__in=ids[start : start + BATCH]).update(next_due=next_due)
    return len(deliveries), len(tasks)


def delivery_record(
    *, entitlement: ClientEntitlement, by: AbstractBaseUser, delivered_on: dt.date | None = None, notes: str = ""
) -> ServiceDelivery:
    """Record an unscheduled delivery (on demand, or an extra one) made by `by`."""
    if entitlement.withdrawn_on is not None:
        raise EntitlementError(EntitlementError.WITHDRAWN.format(day=entitlement.withdrawn_on))
    return ServiceDelivery.objects.create(
        entitlement=entitlement,
        client_id=entitlement.client_id,
        product_id=entitlement.product_id,
        delivered_on=delivered_on or timezone.localdate(),
        channel=entitlement.product.channel,
        by=by,
        notes=notes,
    )


def delivery_record_for_task(*, task: RetentionTask, by: AbstractBaseUser) -> ServiceDelivery | None:
    """The delivery a done service task stands for (its dedupe key names the entitlement and date)."""
    parts = (task.dedupe_key or "").split(":")
    if len(parts) != 3 or parts[0] != "delivery":
        return None
    entitlement = ClientEntitlement.objects.select_related("product").filter(pk=int(parts[1])).first()
    if entitlement is None:
        return None
    scheduled = dt.date.fromisoformat(parts[2])
    delivery, _ = ServiceDelivery.objects.get_or_create(
        entitlement=entitlement,
        scheduled_for=scheduled,
        defaults={
            "client_id": entitlement.client_id,
            "product_id": entitlement.product_id,
            "delivered_on": timezone.localdate(),
            "channel": entitlement.product.channel,
            "by": by,
            "task": task,
            "notes": task.notes,
        },
    )
    return delivery


def entitlements_stage(ctx: StageContext) -> StageResult:
    detail = entitlements_sync(as_of=ctx.as_of)
    return StageResult(rows=detail["granted"] + detail["withdrawn"], detail=detail)
