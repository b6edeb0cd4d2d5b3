"""Writes of feedback: survey answers, campaigns, and the life of a complaint ticket.

Every function checks the business rules and raises `FeedbackError` with a constant message
(the API answers 400 with it). Callers have already checked that the client is in the user's
scope (brokercrm.policy); who may record an answer is checked here.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from brokercrm.policy import visible_clients
from brokercrm.roles import ACCOUNT_MANAGER, API_SYSTEM, has_role
from clients.models import Client
from feedback import conf
from feedback.models import (
    NPS_DETRACTOR_MAX,
    SCORE_RANGES,
    Complaint,
    ComplaintEvent,
    QuestionKind,
    SurveyCampaign,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
)


class FeedbackError(ValueError):
    NOT_ALLOWED_TO_ANSWER = "Only the survey system (API) or the client's account manager may record an answer."
    QUESTION_INACTIVE = "This question is no longer active."
    SCORE_OUT_OF_RANGE = "score: a {kind} answer is a whole number from {low} to {high}, got {score}."
    IN_FUTURE = "{field}: must not be in the future."
    NOT_INVITED = "campaign: the client was not invited to this campaign."
    CAMPAIGN_QUESTION = "campaign: the campaign asks question {expected}, not {given}."
    ALREADY_ANSWERED = "campaign: the client has already answered this campaign."
    CAMPAIGN_SENT = "This campaign has already been sent."
    ALREADY_RESPONDED = "This complaint already has its first response."
    ALREADY_RESOLVED = "This complaint is already resolved."
    ALREADY_ESCALATED = "This complaint is already escalated."
    BEFORE = "{field}: must not be before {other} ({value})."
    REQUIRED = "{field}: required."


def _not_future(value: dt.datetime, field: str, now: dt.datetime) -> None:
    if value > now:
        raise FeedbackError(FeedbackError.IN_FUTURE.format(field=field))


# --- Surveys ------------------------------------------------------------------------------


def can_record_answer(user: AbstractBaseUser, client: Client) -> bool:
    """The survey system (API role) for any client; an account manager for their own clients."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or has_role(user, API_SYSTEM):
        return True
    return (
        has_role(user, ACCOUNT_MANAGER)
        and client.account_manager_id is not None
        and (Client.objects.filter(pk=client.pk, account_manager__user=user).exists())
    )


def survey_response_record(
    *,
    client: Client,
    question: SurveyQuestion,
    score: int,
    by: AbstractBaseUser,
    comment: str = "",
    answered_at: dt.datetime | None = None,
    campaign: SurveyCampaign | None = None,
    source: str | None = None,
) -> SurveyResponse:
    """Record one answer. A detractor NPS answer (0-6) opens a follow-up task for the client's
    account manager in the same transaction. Raises FeedbackError."""
    if not can_record_answer(by, client):
        raise FeedbackError(FeedbackError.NOT_ALLOWED_TO_ANSWER)
    if not question.is_active:
        raise FeedbackError(FeedbackError.QUESTION_INACTIVE)
    low, high = SCORE_RANGES[question.kind]
    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
        raise FeedbackError(
            FeedbackError.SCORE_OUT_OF_RANGE.format(kind=question.kind.upper(), low=low, high=high, score=score)
        )
    now = timezone.now()
    answered_at = answered_at or now
    _not_future(answered_at, "answered_at", now)
    if source is None:
        source = SurveyResponse.Source.API if has_role(by, API_SYSTEM) else SurveyResponse.Source.ACCOUNT_MANAGER
    with transaction.atomic():
        if campaign is not None:
            if campaign.question_id != question.pk:
                raise FeedbackError(
                    FeedbackError.CAMPAIGN_QUESTION.format(expected=campaign.question_id, given=question.pk)
                )
            if not SurveyInvitation.objects.filter(campaign=campaign, client=client).exists():
                raise FeedbackError(FeedbackError.NOT_INVITED)
            if SurveyResponse.objects.filter(campaign=campaign, client=client).exists():
                raise FeedbackError(FeedbackError.ALREADY_ANSWERED)
        response = SurveyResponse.objects.create(
            client=client,
            question=question,
            campaign=campaign,
            kind=question.kind,
            score=score,
            comment=comment.strip(),
            answered_at=answered_at,
            source=source,
            recorded_by=by,
        )
        if response.kind == QuestionKind.NPS and response.score <= NPS_DETRACTOR_MAX:
            detractor_followup_open(response=response)
    return response


def detractor_followup_open(*, response: SurveyResponse) -> object:
    """Open the follow-up task (retention.services.open_task, kind at_risk_outreach) for the
    account manager of a detractor; one task per answer (dedupe key)."""
    from retention.services import open_task  # retention imports clients only: no cycle
    from retention.work import task_reasons

    client = response.client
    due = timezone.localdate(response.answered_at) + dt.timedelta(days=conf.followup_due_days())
    facts = task_reasons.nps_facts(response.score, timezone.localdate(response.answered_at), response.comment[:300])
    return open_task(
        client=client,
        kind="at_risk_outreach",
        reason_code="nps_detractor",
        reason_text=task_reasons.stored_text(facts),
        reason_facts=facts,
        due=due,
        priority=80,
        source="feedback",
        assignee=client.account_manager.user if client.account_manager_id else None,
        dedupe_key=f"nps-detractor:{response.pk}",
    )


def survey_campaign_send(*, campaign: SurveyCampaign, by: AbstractBaseUser) -> int:
    """Invite the campaign's segment (clients open today that `by` may see and that match the
    campaign's tier, branch and account manager); returns the number invited. Set-based: one
    INSERT ... SELECT-sized bulk insert."""
    from segmentation.models import TIER_BY_CODE, TierResult
    from segmentation.selectors import tier_current_as_of

    today = timezone.localdate()
    with transaction.atomic():
        locked = SurveyCampaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != SurveyCampaign.Status.DRAFT:
            raise FeedbackError(FeedbackError.CAMPAIGN_SENT)
        clients = visible_clients(by).open_on(today)
        if locked.branch_id:
            clients = clients.filter(branch_id=locked.branch_id)
        if locked.account_manager_id:
            clients = clients.filter(account_manager_id=locked.account_manager_id)
        if locked.tier:
            day = tier_current_as_of()
            tiered = TierResult.objects.filter(as_of=day, tier=TIER_BY_CODE[locked.tier]).values("client_id")
            clients = clients.filter(pk__in=tiered) if day else clients.none()
        now = timezone.now()
        ids = list(clients.values_list("pk", flat=True))
        SurveyInvitation.objects.bulk_create(
            [SurveyInvitation(campaign=locked, client_id=pk, sent_at=now) for pk in ids], batch_size=5000
        )
        locked.status = SurveyCampaign.Status.SENT
        locked.sent_at = now
        locked.invited = len(ids)
        locked.save(update_fields=["status", "sent_at", "invited"])
    campaign.refresh_from_db()
    return len(ids)


# --- Complaints -----------------------------------------------------------------------------


def complaint_open(
    *,
    client: Client,
    channel: str,
    category: str,
    severity: str,
    description: str,
    by: AbstractBaseUser | None,
    opened_at: dt.datetime | None = None,
) -> Complaint:
    """Open a ticket; its SLA due times come from FEEDBACK_SLA for the severity, now."""
    description = (description or "").strip()
    if not description:
        raise FeedbackError(FeedbackError.REQUIRED.format(field="description"))
    now = timezone.now()
    opened_at = opened_at or now
    _not_future(opened_at, "opened_at", now)
    first_target, resolution_target = conf.sla_targets(severity)
    with transaction.atomic():
        complaint = Complaint.objects.create(
            client=client,
            channel=channel,
            category=category,
            severity=severity,
            description=description,
            opened_at=opened_at,
            first_response_due_at=opened_at + first_target,
            resolution_due_at=opened_at + resolution_target,
            opened_by=by if by is not None and by.is_authenticated else None,
        )
        ComplaintEvent.objects.create(complaint=complaint, action=ComplaintEvent.Action.OPENED, at=opened_at, by=by)
    return complaint


def _locked(complaint: Complaint) -> Complaint:
    return Complaint.objects.select_for_update().get(pk=complaint.pk)


def _at(at: dt.datetime | None, *, field: str, after: dt.datetime, after_name: str) -> dt.datetime:
    now = timezone.now()
    at = at or now
    _not_future(at, field, now)
    if at < after:
        raise FeedbackError(FeedbackError.BEFORE.format(field=field, other=after_name, value=after.isoformat()))
    return at


def complaint_respond(
    *, complaint: Complaint, by: AbstractBaseUser, note: str = "", at: dt.datetime | None = None
) -> Complaint:
    """Record the first response to the client (once)."""
    with transaction.atomic():
        ticket = _locked(complaint)
        if ticket.first_response_at is not None:
            raise FeedbackError(FeedbackError.ALREADY_RESPONDED)
        at = _at(at, field="first_response_at", after=ticket.opened_at, after_name="opened_at")
        ticket.first_response_at = at
        ticket.status = Complaint.Status.IN_PROGRESS
        ticket.save(update_fields=["first_response_at", "status", "updated_at"])
        ComplaintEvent.objects.create(
            complaint=ticket, action=ComplaintEvent.Action.RESPONDED, at=at, by=by, note=note.strip()
        )
    return ticket


def complaint_escalate(
    *, complaint: Complaint, by: AbstractBaseUser, reason: str, at: dt.datetime | None = None
) -> Complaint:
    """Escalate an unresolved ticket (to the branch manager / compliance), with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise FeedbackError(FeedbackError.REQUIRED.format(field="reason"))
    with transaction.atomic():
        ticket = _locked(complaint)
        if ticket.resolved_at is not None:
            raise FeedbackError(FeedbackError.ALREADY_RESOLVED)
        if ticket.escalated_at is not None:
            raise FeedbackError(FeedbackError.ALREADY_ESCALATED)
        at = _at(at, field="escalated_at", after=ticket.opened_at, after_name="opened_at")
        ticket.escalated_at = at
        ticket.escalation_reason = reason
        ticket.save(update_fields=["escalated_at", "escalation_reason", "updated_at"])
        ComplaintEvent.objects.create(
            complaint=ticket, action=ComplaintEvent.Action.ESCALATED, at=at, by=by, note=reason
        )
    return ticket


def complaint_resolve(
    *,
    complaint: Complaint,
    by: AbstractBaseUser,
    root_cause: str,
    resolution: str,
    at: dt.datetime | None = None,
) -> Complaint:
    """Resolve a ticket with its root cause and resolution. A ticket resolved without an
    earlier response gets its first response at the resolution time (the resolution is the
    first answer the client received)."""
    root_cause, resolution = (root_cause or "").strip(), (resolution or "").strip()
    for field, value in (("root_cause", root_cause), ("resolution", resolution)):
        if not value:
            raise FeedbackError(FeedbackError.REQUIRED.format(field=field))
    with transaction.atomic():
        ticket = _locked(complaint)
        if ticket.resolved_at is not None:
            raise FeedbackError(FeedbackError.ALREADY_RESOLVED)
        floor, floor_name = (
            (ticket.first_response_at, "first_response_at")
            if ticket.first_response_at
            else (
                ticket.opened_at,
                "opened_at",
            )
        )
        at = _at(at, field="resolved_at", after=floor, after_name=floor_name)
        if ticket.first_response_at is None:
            ticket.first_response_at = at
            ComplaintEvent.objects.create(complaint=ticket, action=ComplaintEvent.Action.RESPONDED, at=at, by=by)
        ticket.resolved_at = at
        ticket.root_cause = root_cause
        ticket.resolution = resolution
        ticket.status = Complaint.Status.RESOLVED
        ticket.save(
            update_fields=["first_response_at", "resolved_at", "root_cause", "resolution", "status", "updated_at"]
        )
        ComplaintEvent.objects.create(
            complaint=ticket, action=ComplaintEvent.Action.RESOLVED, at=at, by=by, note=resolution
        )
    return ticket
