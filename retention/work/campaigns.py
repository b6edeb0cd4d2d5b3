"""Campaigns measured against a held-out control group.

- The target is a saved segment: a filter over the client facts (tiers, activity segments,
  churn risk range, account managers, branches, needs preferences), evaluated at launch.
- Launch draws the control group with numpy default_rng(seed) over the sorted target ids:
  round(control% x N) clients, without replacement, reproducible for the seed. The treated
  group gets tasks (dedupe key campaign:<id>:client:<id>), the control group gets nothing.
- Measurement: per member whether the outcome happened within `outcome_days` after the launch
  (traded again; or net inflow > 0), then the rates of both groups, their difference (the
  uplift) and its 95% confidence interval by the normal approximation for the difference of two
  independent proportions: se = sqrt(p1(1-p1)/n1 + p0(1-p0)/n0), CI = d +- z(0.975) se.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from dataclasses import asdict, dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from scipy.stats import norm

from clients.models import CashFlow, Client, Trade
from retention.work import conf, task_reasons
from retention.work.facts import client_facts, queryset_frame
from retention.work.models import (
    Campaign,
    CampaignMember,
    CampaignOutcome,
    CampaignStatus,
    RetentionTask,
    TaskSource,
)
from segmentation.models import TIER_BY_CODE, NeedsProfile, ResultSet

SEGMENT_KEYS = {"tiers", "segments", "min_churn_risk", "max_churn_risk", "managers", "branches", "preferences"}


class CampaignError(ValueError):
    UNKNOWN_KEY = "segment: unknown key {key!r}; expected any of {keys}."
    BAD_LIST = "segment.{key}: expected a list of {what}."
    BAD_RISK = "segment.{key}: expected a whole number from 0 to 100."
    BAD_PREFERENCES = "segment.preferences: expected an object of dimension -> category (strings)."
    NOT_DRAFT = "status: the campaign is {status}; only a draft can be launched."
    NOT_LAUNCHED = "status: launch the campaign before measuring it."
    EMPTY_TARGET = "segment: no open client matches this segment."


@dataclass(frozen=True)
class Uplift:
    treated_n: int
    treated_converted: int
    treated_rate: float | None
    control_n: int
    control_converted: int
    control_rate: float | None
    uplift: float | None
    standard_error: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float


def uplift_interval(
    *, treated_n: int, treated_converted: int, control_n: int, control_converted: int, confidence: float = 0.95
) -> Uplift:
    """Difference of the treated and control outcome rates with its normal-approximation interval."""
    if treated_n == 0 or control_n == 0:
        p1 = treated_converted / treated_n if treated_n else None
        p0 = control_converted / control_n if control_n else None
        return Uplift(
            treated_n, treated_converted, p1, control_n, control_converted, p0, None, None, None, None, confidence
        )
    p1 = treated_converted / treated_n
    p0 = control_converted / control_n
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / treated_n + p0 * (1 - p0) / control_n)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return Uplift(
        treated_n,
        treated_converted,
        p1,
        control_n,
        control_converted,
        p0,
        diff,
        se,
        diff - z * se,
        diff + z * se,
        confidence,
    )


def segment_validate(segment: object) -> dict:
    """The segment filter, checked; tiers given as codes ("vip") come back as numbers."""
    from retention.models import ActivitySegment

    if not isinstance(segment, dict):
        raise CampaignError(CampaignError.UNKNOWN_KEY.format(key=segment, keys=", ".join(sorted(SEGMENT_KEYS))))
    clean: dict = {}
    for key, value in segment.items():
        if key not in SEGMENT_KEYS:
            raise CampaignError(CampaignError.UNKNOWN_KEY.format(key=key, keys=", ".join(sorted(SEGMENT_KEYS))))
        if key == "tiers":
            if not isinstance(value, list) or any(v not in TIER_BY_CODE for v in value):
                raise CampaignError(CampaignError.BAD_LIST.format(key=key, what=", ".join(TIER_BY_CODE)))
            clean[key] = sorted(TIER_BY_CODE[v] for v in value)
        elif key == "segments":
            if not isinstance(value, list) or any(v not in ActivitySegment.values for v in value):
                raise CampaignError(CampaignError.BAD_LIST.format(key=key, what=", ".join(ActivitySegment.values)))
            clean[key] = list(value)
        elif key in ("min_churn_risk", "max_churn_risk"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise CampaignError(CampaignError.BAD_RISK.format(key=key))
            clean[key] = value
        elif key in ("managers", "branches"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise CampaignError(CampaignError.BAD_LIST.format(key=key, what="codes (strings)"))
            clean[key] = list(value)
        else:
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise CampaignError(CampaignError.BAD_PREFERENCES)
            clean[key] = dict(value)
    return clean


def segment_client_ids(segment: dict, *, as_of: dt.date) -> np.ndarray:
    """Sorted ids of the open clients matching the (validated) segment on `as_of`."""
    facts = client_facts(as_of)
    mask = np.ones(len(facts), dtype=bool)
    if segment.get("tiers"):
        mask &= facts["tier"].isin([float(t) for t in segment["tiers"]]).to_numpy()
    if segment.get("segments"):
        mask &= facts["segment"].isin(segment["segments"]).to_numpy()
    risk = pd.to_numeric(facts["risk"], errors="coerce")
    if "min_churn_risk" in segment:
        mask &= (risk >= segment["min_churn_risk"]).fillna(False).to_numpy(dtype=bool)
    if "max_churn_risk" in segment:
        mask &= (risk <= segment["max_churn_risk"]).fillna(False).to_numpy(dtype=bool)
    if segment.get("managers"):
        mask &= facts["manager_no"].isin(segment["managers"]).to_numpy()
    if segment.get("branches"):
        mask &= facts["branch"].isin(segment["branches"]).to_numpy()
    ids = facts.loc[mask, "client_id"].to_numpy(dtype="int64")
    if segment.get("preferences"):
        generation = (
            ResultSet.objects.filter(kind=ResultSet.Kind.NEEDS, is_published=True, as_of__lte=as_of)
            .order_by("-as_of")
            .values_list("generation", flat=True)
            .first()
        )
        lookup = {f"preferences__{dim}": category for dim, category in segment["preferences"].items()}
        matching = (
            queryset_frame(NeedsProfile.objects.filter(generation=generation, **lookup), ["client_id"])["client_id"]
            if generation is not None
            else pd.Series(dtype="int64")
        )
        ids = ids[np.isin(ids, matching.to_numpy(dtype="int64"))]
    return np.sort(ids)


def control_split(client_ids: np.ndarray, *, control_percent: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(treated, control) ids: round(control% x N) drawn by default_rng(seed) over the sorted ids."""
    ids = np.sort(np.asarray(client_ids, dtype="int64"))
    size = round(len(ids) * control_percent / 100)
    chosen = np.zeros(len(ids), dtype=bool)
    if size:
        chosen[np.random.default_rng(seed).choice(len(ids), size=size, replace=False)] = True
    return ids[~chosen], ids[chosen]


def campaign_create(
    *,
    by: AbstractBaseUser,
    name: str,
    segment: dict,
    task_reason: str,
    description: str = "",
    control_percent: int | None = None,
    seed: int | None = None,
    task_kind: str = "other",
    due_in_days: int = 7,
    priority: int = 50,
    outcome: str = CampaignOutcome.TRADED,
    outcome_days: int = 30,
) -> Campaign:
    """A draft campaign; the seed is drawn now when not given, and kept (the split is reproducible)."""
    return Campaign.objects.create(
        name=name,
        description=description,
        segment=segment_validate(segment),
        control_percent=control_percent if control_percent is not None else conf.campaign_control_percent(),
        seed=seed if seed is not None else secrets.randbelow(2**62),
        task_kind=task_kind,
        task_reason=task_reason,
        due_in_days=due_in_days,
        priority=priority,
        outcome=outcome,
        outcome_days=outcome_days,
        created_by=by,
    )


def campaign_launch(*, campaign: Campaign, by: AbstractBaseUser, as_of: dt.date | None = None) -> Campaign:
    """Split the target into treated and control and open the treated group's tasks."""
    today = timezone.localdate()
    as_of = as_of or today - dt.timedelta(days=1)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            raise CampaignError(CampaignError.NOT_DRAFT.format(status=campaign.status))
        target = segment_client_ids(campaign.segment, as_of=as_of)
        if len(target) == 0:
            raise CampaignError(CampaignError.EMPTY_TARGET)
        treated, control = control_split(target, control_percent=campaign.control_percent, seed=campaign.seed)
        managers: dict[int, int | None] = {}
        for start in range(0, len(treated), 10_000):
            chunk = [int(cid) for cid in treated[start : start + 10_000]]
            managers.update(Client.objects.filter(pk__in=chunk).values_list("pk", "account_manager__user_id"))
        now = timezone.now()
        facts = task_reasons.campaign_facts(campaign.name, campaign.task_reason)
        reason_text = task_reasons.stored_text(facts)
        tasks = RetentionTask.objects.bulk_create(
            [
                RetentionTask(
                    client_id=int(cid),
                    kind=campaign.task_kind,
                    assignee_id=managers.get(int(cid)),
                    due=today + dt.timedelta(days=campaign.due_in_days),
                    priority=campaign.priority,
                    source=TaskSource.CAMPAIGN,
                    reason_code=f"campaign:{campaign.pk}",
                    reason_text=reason_text,
                    reason_facts=facts,
                    dedupe_key=f"campaign:{campaign.pk}:client:{int(cid)}",
                    campaign=campaign,
                    created_on=today,
                    created_at=now,
                    created_by=by,
                )
                for cid in treated
            ],
            batch_size=5000,
        )
        task_by_client = {task.client_id: task.pk for task in tasks}
        CampaignMember.objects.bulk_create(
            [
                CampaignMember(
                    campaign=campaign,
                    client_id=int(cid),
                    group=CampaignMember.Group.TREATED,
                    task_id=task_by_client.get(int(cid)),
                )
                for cid in treated
            ]
            + [
                CampaignMember(campaign=campaign, client_id=int(cid), group=CampaignMember.Group.CONTROL)
                for cid in control
            ],
            batch_size=5000,
        )
        campaign.status = CampaignStatus.LAUNCHED
        campaign.launched_on = today
        campaign.save(update_fields=["status", "launched_on"])
    return Campaign.objects.select_related("created_by").get(pk=campaign.pk)


def _window(campaign: Campaign) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(campaign.launched_on, dt.time.min))
    return start, start + dt.timedelta(days=campaign.outcome_days)


def campaign_measure(*, campaign: Campaign) -> Campaign:
    """Outcome per member within the window after launch, and the uplift with its 95% CI (stored on the campaign)."""
    if campaign.status == CampaignStatus.DRAFT or campaign.launched_on is None:
        raise CampaignError(CampaignError.NOT_LAUNCHED)
    start, end = _window(campaign)
    members = list(CampaignMember.objects.filter(campaign=campaign).only("id", "client_id", "group"))
    client_ids = [m.client_id for m in members]
    values: dict[int, Decimal] = {}
    for part in range(0, len(client_ids), 10_000):
        chunk = client_ids[part : part + 10_000]
        if campaign.outcome == CampaignOutcome.TRADED:
            rows = (
                Trade.objects.filter(client_id__in=chunk, executed_at__gte=start, executed_at__lt=end)
                .values("client_id")
                .annotate(total=Sum("amount"))
                .values_list("client_id", "total")
            )
        else:
            rows = (
                CashFlow.objects.filter(client_id__in=chunk, occurred_at__gte=start, occurred_at__lt=end)
                .values("client_id")
                .annotate(
                    total=Sum("amount", filter=Q(kind=CashFlow.Kind.DEPOSIT), default=Decimal(0))
                    - Sum("amount", filter=Q(kind=CashFlow.Kind.WITHDRAWAL), default=Decimal(0))
                )
                .values_list("client_id", "total")
            )
        values.update(dict(rows))
    for member in members:
        value = values.get(member.client_id)
        member.outcome_value = value if value is not None else Decimal("0.00")
        member.converted = bool(value is not None and value > 0)
    CampaignMember.objects.bulk_update(members, ["converted", "outcome_value"], batch_size=5000)
    treated = [m for m in members if m.group == CampaignMember.Group.TREATED]
    control = [m for m in members if m.group == CampaignMember.Group.CONTROL]
    result = uplift_interval(
        treated_n=len(treated),
        treated_converted=sum(m.converted for m in treated),
        control_n=len(control),
        control_converted=sum(m.converted for m in control),
    )
    campaign.report = {
        **asdict(result),
        "outcome": campaign.outcome,
        "window_start": start.date().isoformat(),
        "window_days": campaign.outcome_days,
        "treated_value": str(sum((m.outcome_value for m in treated), Decimal("0.00"))),
        "control_value": str(sum((m.outcome_value for m in control), Decimal("0.00"))),
    }
    campaign.status = CampaignStatus.MEASURED
    campaign.measured_at = timezone.now()
    campaign.save(update_fields=["report", "status", "measured_at"])
    return Campaign.objects.select_related("created_by").get(pk=campaign.pk)
