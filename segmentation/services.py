"""Writes of segmentation that people make: tier overrides (audited).

The nightly writes live with their stages (rollup.py, tiering.py, needs.py).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from brokercrm.roles import OPS, TEAM_LEAD, has_role
from clients.models import Client
from compliance import audit
from segmentation import conf
from segmentation.models import Tier, TierOverride, TierOverrideAudit, TierResult, TierRun


class OverrideError(ValueError):
    NOT_ALLOWED = "Only ops staff or the client's team lead may override a tier."
    REASON_REQUIRED = "An override needs a reason."
    BAD_TIER = "Unknown tier."
    EXPIRY_IN_PAST = "The expiry date must not be before the start date or today."
    EXPIRY_TOO_FAR = "An override may last at most {days} days."
    ALREADY_ENDED = "This override has already ended."


def can_override_tier(user: AbstractBaseUser, client: Client) -> bool:
    """Ops (and superusers) for any client; a team lead for the clients of the teams they lead."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or has_role(user, OPS):
        return True
    return has_role(user, TEAM_LEAD) and Client.objects.filter(pk=client.pk, account_manager__team__lead=user).exists()


def computed_tier(client_id: int) -> int | None:
    """The client's computed tier on the current as-of date, if it was tiered."""
    current = TierRun.objects.retained().order_by("-as_of").values_list("as_of", flat=True).first()
    if current is None:
        return None
    return TierResult.objects.filter(as_of=current, client_id=client_id).values_list("tier", flat=True).first()


def tier_override_create(
    *,
    client: Client,
    tier: int,
    reason: str,
    expires_on: dt.date,
    by: AbstractBaseUser,
    starts_on: dt.date | None = None,
) -> TierOverride:
    """Set a manual tier for `client` until `expires_on` (inclusive); replaces (ends) an open
    override of the same client. Raises OverrideError."""
    if not can_override_tier(by, client):
        raise OverrideError(OverrideError.NOT_ALLOWED)
    reason = (reason or "").strip()
    if not reason:
        raise OverrideError(OverrideError.REASON_REQUIRED)
    if tier not in Tier.values:
        raise OverrideError(OverrideError.BAD_TIER)
    today = timezone.localdate()
    start = starts_on or today
    if expires_on < max(start, today):
        raise OverrideError(OverrideError.EXPIRY_IN_PAST)
    max_days = conf.tier_override_max_days()
    if (expires_on - start).days > max_days:
        raise OverrideError(OverrideError.EXPIRY_TOO_FAR.format(days=max_days))
    computed = computed_tier(client.pk)
    with transaction.atomic():
        for previous in TierOverride.objects.select_for_update().filter(client=client, ended_at__isnull=True):
            _end(previous, by=by, reason="Replaced by a new override.", action=TierOverrideAudit.Action.ENDED)
        override = TierOverride.objects.create(
            client=client, tier=tier, reason=reason, starts_on=start, expires_on=expires_on, created_by=by
        )
        TierOverrideAudit.objects.create(
            override=override,
            client=client,
            action=TierOverrideAudit.Action.CREATED,
            tier=tier,
            computed_tier=computed,
            reason=reason,
            by=by,
        )
        # The firm's tamper-evident trail (compliance) records every manual tier change too.
        audit.record(
            actor=by,
            action=audit.AuditAction.TIER_OVERRIDE_CREATED,
            object_type="tier_override",
            object_id=override.pk,
            client=client,
            old={"tier": computed},
            new={"tier": tier, "starts_on": start, "expires_on": expires_on},
            note=reason,
        )
    return override


def _end(override: TierOverride, *, by: AbstractBaseUser | None, reason: str, action: str) -> None:
    TierOverride.objects.filter(pk=override.pk).update(ended_at=timezone.now(), ended_by=by, end_reason=reason[:200])
    TierOverrideAudit.objects.create(
        override=override,
        client_id=override.client_id,
        action=action,
        tier=override.tier,
        computed_tier=computed_tier(override.client_id),
        reason=reason,
        by=by,
    )
    audit.record(
        actor=by,
        action=audit.AuditAction.TIER_OVERRIDE_ENDED,
        object_type="tier_override",
        object_id=override.pk,
        client=override.client,
        old={"tier": override.tier, "expires_on": override.expires_on},
        new={"ended": action},
        note=reason,
    )


def tier_override_end(*, override: TierOverride, by: AbstractBaseUser, reason: str) -> TierOverride:
    """End an override now; the computed tier applies again. Raises OverrideError."""
    if not can_override_tier(by, override.client):
        raise OverrideError(OverrideError.NOT_ALLOWED)
    reason = (reason or "").strip()
    if not reason:
        raise OverrideError(OverrideError.REASON_REQUIRED)
    with transaction.atomic():
        locked = TierOverride.objects.select_for_update().get(pk=override.pk)
        if locked.ended_at is not None:
            raise OverrideError(OverrideError.ALREADY_ENDED)
        _end(locked, by=by, reason=reason, action=TierOverrideAudit.Action.ENDED)
    override.refresh_from_db()
    return override


def tier_overrides_expire(*, as_of: dt.date) -> int:
    """End the overrides whose last day is before `as_of` (audited as expired); returns how many.
    Safe to run twice: an ended override is not touched again."""
    expired = 0
    with transaction.atomic():
        for override in TierOverride.objects.select_for_update().filter(ended_at__isnull=True, expires_on__lt=as_of):
            _end(
                override,
                by=None,
                reason=f"Expired (last day {override.expires_on}).",
                action=TierOverrideAudit.Action.EXPIRED,
            )
            expired += 1
    return expired
