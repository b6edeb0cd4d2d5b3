"""Playbooks: turn the nightly results into retention tasks, set-wise.

For an as-of date D (the tasks are for the working day D + 1):
1. read the client facts once (retention.work.facts: one DataFrame, one row per open client);
2. per active playbook (highest priority first), the matching clients are a boolean mask over
   that frame;
3. diff against the playbook's open tasks (a few queries per playbook): matching clients without
   an open task, outside the cool-down and without an open task of the same kind from another
   playbook get one (COPY on PostgreSQL; the partial unique index on the dedupe key refuses a
   duplicate even if a second run raced past the diff); open tasks of clients that no longer
   match expire with the reason;
4. open tasks of switched-off playbooks expire; open tasks long past due expire.

Running D twice creates nothing the second time. A playbook whose condition needs a result that
has not been published (no churn scores yet, ...) is skipped: it neither opens nor expires tasks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from brokercrm.nightly import StageContext, StageResult
from retention.services import tasks_expire
from retention.work import conf, task_reasons
from retention.work.facts import Sources, client_facts, insert_frame, queryset_frame, sources_on
from retention.work.models import AssigneeRole, Playbook, RetentionTask, TaskSource, TaskStatus

BATCH = 5000


class PlaybookError(ValueError):
    BAD_TIERS = "tiers: expected a list of tiers 1 (VIP) to 4 (Small), not {value!r}."
    BAD_SEGMENTS = "segments: expected a list of {choices}, not {value!r}."


def playbook_validate(playbook: Playbook) -> None:
    """Check the JSON conditions (the admin form and the stage both call this)."""
    from retention.models import ActivitySegment

    tiers = playbook.tiers
    if not isinstance(tiers, list) or any(isinstance(t, bool) or t not in (1, 2, 3, 4) for t in tiers):
        raise PlaybookError(PlaybookError.BAD_TIERS.format(value=tiers))
    segments = playbook.segments
    if not isinstance(segments, list) or any(s not in ActivitySegment.values for s in segments):
        raise PlaybookError(
            PlaybookError.BAD_SEGMENTS.format(choices=", ".join(ActivitySegment.values), value=segments)
        )


def _needs(playbook: Playbook) -> set[str]:
    """The published results a playbook's conditions read."""
    needs = set()
    if playbook.tiers:
        needs.add("tiers")
    if playbook.min_churn_risk is not None:
        needs.add("churn")
    if playbook.segments or playbook.about_to_go_dormant is not None:
        needs.add("activity")
    if playbook.high_assets_low_activity is not None:
        needs.add("reactivation")
    if playbook.tier_change:
        needs.add("tiers")
    return needs


def _missing(needs: set[str], sources: Sources) -> list[str]:
    available = {
        "tiers": sources.tiers_as_of is not None,
        "churn": sources.churn_generation is not None,
        "activity": sources.activity_generation is not None or sources.churn_generation is not None,
        "reactivation": sources.reactivation_as_of is not None,
    }
    return sorted(name for name in needs if not available[name])


def playbook_mask(playbook: Playbook, facts: pd.DataFrame, as_of: dt.date) -> np.ndarray:
    """Boolean array over `facts`: the clients the playbook applies to on `as_of` (all set conditions hold)."""
    mask = np.ones(len(facts), dtype=bool)
    if playbook.tiers:
        mask &= facts["tier"].isin([float(t) for t in playbook.tiers]).to_numpy()
    if playbook.min_churn_risk is not None:
        risk = pd.to_numeric(facts["risk"], errors="coerce")
        mask &= (risk >= playbook.min_churn_risk).fillna(False).to_numpy(dtype=bool)
    if playbook.segments:
        mask &= facts["segment"].isin(playbook.segments).to_numpy()
    if playbook.about_to_go_dormant is not None:
        known = facts["about_to_go_dormant"].notna().to_numpy()
        value = facts["about_to_go_dormant"].fillna(False).astype(bool).to_numpy()
        mask &= known & (value == playbook.about_to_go_dormant)
    if playbook.high_assets_low_activity is not None:
        mask &= facts["high_assets_low_activity"].to_numpy(dtype=bool) == playbook.high_assets_low_activity
    if playbook.tier_change:
        since = as_of - dt.timedelta(days=playbook.tier_change_within_days)
        recent = pd.to_datetime(facts["tier_change_on"]) > pd.Timestamp(since)
        mask &= ((facts["tier_change"] == playbook.tier_change) & recent).to_numpy(dtype=bool)
    return mask


def _reason_code(playbook: Playbook) -> str:
    if playbook.tier_change:
        return f"tier_{playbook.tier_change}"
    if playbook.min_churn_risk is not None:
        return "churn_risk"
    if playbook.about_to_go_dormant:
        return "about_to_go_dormant"
    if playbook.high_assets_low_activity:
        return "high_assets_low_activity"
    if playbook.segments:
        return "activity_segment"
    return "rule"


def _source(playbook: Playbook) -> str:
    if playbook.tier_change:
        return TaskSource.TIER_CHANGE
    if playbook.min_churn_risk is not None:
        return TaskSource.SCORE
    return TaskSource.PLAYBOOK


def fact_dicts(frame: pd.DataFrame, text: str) -> list[dict]:
    """Per row, the task's reason_facts (task_reasons.playbook_facts): the playbook's text and the
    row's tier, churn risk, activity segment and recent tier change, shown in the reader's
    language on the pages."""
    columns = ("tier", "risk", "segment", "tier_change", "tier_change_on")
    rows = zip(*(frame[column] for column in columns), strict=True)
    return [
        task_reasons.playbook_facts(
            text,
            tier=int(tier) if pd.notna(tier) else None,
            risk=int(risk) if pd.notna(risk) else None,
            segment=segment if isinstance(segment, str) else None,
            tier_change=change if isinstance(change, str) else None,
            tier_change_on=day if isinstance(change, str) else None,
        )
        for tier, risk, segment, change, day in rows
    ]


@dataclass
class PlaybookOutcome:
    opened: int = 0
    expired: int = 0
    matched: int = 0
    skipped: str = ""


@dataclass
class PlaybookRun:
    as_of: dt.date
    sources: dict
    playbooks: dict[str, PlaybookOutcome] = field(default_factory=dict)
    expired_switched_off: int = 0
    expired_overdue: int = 0

    @property
    def opened(self) -> int:
        return sum(outcome.opened for outcome in self.playbooks.values())

    @property
    def expired(self) -> int:
        return sum(o.expired for o in self.playbooks.values()) + self.expired_switched_off + self.expired_overdue

    def as_detail(self) -> dict:
        return {
            "sources": self.sources,
            "opened": self.opened,
            "expired": self.expired,
            "expired_switched_off": self.expired_switched_off,
            "expired_overdue": self.expired_overdue,
            "playbooks": {name: vars(outcome) for name, outcome in self.playbooks.items()},
        }


def _apply(playbook: Playbook, facts: pd.DataFrame, *, as_of: dt.date, workday: dt.date) -> PlaybookOutcome:
    outcome = PlaybookOutcome()
    matched = facts[playbook_mask(playbook, facts, as_of)]
    outcome.matched = len(matched)
    open_tasks = queryset_frame(
        RetentionTask.objects.filter(playbook=playbook, status=TaskStatus.OPEN), ["id", "client_id"]
    )
    open_clients = set(open_tasks["client_id"].astype("int64")) if len(open_tasks) else set()
    matched_ids = set(matched["client_id"].astype("int64"))

    stale = open_tasks[~open_tasks["client_id"].astype("int64").isin(matched_ids)] if len(open_tasks) else open_tasks
    if len(stale):
        outcome.expired = tasks_expire(
            task_ids=[int(pk) for pk in stale["id"]],
            reason=f"No longer applies on {as_of}: the conditions of playbook '{playbook.name}' stopped matching.",
        )

    cooled = queryset_frame(
        RetentionTask.objects.filter(
            playbook=playbook, closed_at__date__gt=as_of - dt.timedelta(days=playbook.cooldown_days)
        ).exclude(status=TaskStatus.OPEN),
        ["client_id"],
    )
    cooling = set(cooled["client_id"].astype("int64")) if len(cooled) else set()
    # One playbook task of a kind per client: a client matching two rules that both ask for a
    # reactivation call gets one call, from the rule of higher priority (run first).
    same_kind = queryset_frame(
        RetentionTask.objects.filter(status=TaskStatus.OPEN, kind=playbook.task_kind, playbook__isnull=False).exclude(
            playbook=playbook
        ),
        ["client_id"],
    )
    busy = set(same_kind["client_id"].astype("int64")) if len(same_kind) else set()
    new = matched[~matched["client_id"].isin(open_clients | cooling | busy)]
    if new.empty:
        return outcome
    by_lead = playbook.assignee_role == AssigneeRole.TEAM_LEAD
    due = workday + dt.timedelta(days=playbook.due_in_days)
    reason_code = _reason_code(playbook)
    source = _source(playbook)
    now = timezone.now()
    manager = new["manager_user_id"]
    assignees = new["lead_user_id"].where(new["lead_user_id"].notna(), manager) if by_lead else manager
    reason_facts = fact_dicts(new, playbook.reason_text)
    frame = pd.DataFrame(
        {
            "client_id": new["client_id"].astype("int64").to_numpy(),
            "kind": playbook.task_kind,
            "assignee_id": pd.to_numeric(assignees, errors="coerce").to_numpy(),
            "due": due,
            "priority": playbook.priority,
            "status": TaskStatus.OPEN.value,
            "channel": "",
            "outcome": "",
            "notes": "",
            "source": str(source),
            "reason_code": reason_code,
            "reason_text": [task_reasons.playbook_stored_text(facts) for facts in reason_facts],
            "reason_facts": reason_facts,
            "dedupe_key": [f"playbook:{playbook.pk}:client:{int(cid)}" for cid in new["client_id"]],
            "playbook_id": playbook.pk,
            "created_on": workday,
            "created_at": now,
            "close_reason": "",
        }
    )
    with transaction.atomic():
        outcome.opened = insert_frame(RetentionTask, frame)
    return outcome


def playbooks_run(*, as_of: dt.date) -> PlaybookRun:
    """Apply every active playbook for `as_of`; returns what was opened and expired, per playbook."""
    workday = as_of + dt.timedelta(days=1)
    sources = sources_on(as_of)
    active = list(Playbook.objects.filter(is_active=True).order_by("-priority", "name"))
    window = max([p.tier_change_within_days for p in active if p.tier_change] or [1])
    run = PlaybookRun(as_of=as_of, sources=sources.as_detail())
    facts = client_facts(as_of, sources=sources, change_window_days=window) if active else None
    for playbook in active:
        playbook_validate(playbook)
        missing = _missing(_needs(playbook), sources)
        if missing:
            run.playbooks[playbook.name] = PlaybookOutcome(skipped=f"not published yet: {', '.join(missing)}")
            continue
        run.playbooks[playbook.name] = _apply(playbook, facts, as_of=as_of, workday=workday)

    switched_off = list(
        RetentionTask.objects.filter(status=TaskStatus.OPEN, playbook__is_active=False).values_list("id", flat=True)
    )
    run.expired_switched_off = tasks_expire(task_ids=switched_off, reason="The playbook was switched off.")
    overdue_days = conf.task_expire_overdue_days()
    overdue = list(
        RetentionTask.objects.filter(status=TaskStatus.OPEN, due__lt=workday - dt.timedelta(days=overdue_days))
        .exclude(source=TaskSource.CALLBACK)
        .values_list("id", flat=True)
    )
    run.expired_overdue = tasks_expire(task_ids=overdue, reason=f"Not done within {overdue_days} days of its due date.")
    return run


def playbooks_stage(ctx: StageContext) -> StageResult:
    # One transaction for the whole night: a worker that dies between two playbooks leaves
    # none of the night's tasks (and none of its expiries), not the first playbooks' only.
    with transaction.atomic():
        run = playbooks_run(as_of=ctx.as_of)
    return StageResult(rows=run.opened, detail=run.as_detail())
