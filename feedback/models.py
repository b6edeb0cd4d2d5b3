"""Feedback: satisfaction surveys (CSAT 1-5, NPS 0-10) and complaints as tickets with SLAs.

- `SurveyQuestion` is a CSAT or NPS question; a `SurveyCampaign` sends one question to a
  segment of the book (tier, branch, account manager), one `SurveyInvitation` per client.
- `SurveyResponse` is one answer (score and comment), from the API or by the account manager.
  Its `kind` copies the question's kind, so the score range is a database CHECK and the
  signals and metrics read one table.
- `Complaint` is a ticket: channel, category, severity, opened / first response / resolved
  times, escalation, root cause and resolution. The SLA due times are fixed when the ticket is
  opened (FEEDBACK_SLA by severity), so a later settings change never rewrites history; a
  breach is derived from them (`ComplaintQuerySet.with_sla`). `ComplaintEvent` is the ticket's
  append-only audit trail. Complaints are never deleted (regulator: kept at least 3 years).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from clients.models import AccountManager, Branch, Client


class QuestionKind(models.TextChoices):
    CSAT = "csat", _("CSAT (1-5)")
    NPS = "nps", _("NPS (0-10)")


SCORE_RANGES: dict[str, tuple[int, int]] = {QuestionKind.CSAT: (1, 5), QuestionKind.NPS: (0, 10)}
# NPS: 9-10 promoters, 0-6 detractors; CSAT: 4-5 satisfied, 1-2 dissatisfied (DOMAIN.md).
NPS_DETRACTOR_MAX = 6
NPS_PROMOTER_MIN = 9
CSAT_SATISFIED_MIN = 4
CSAT_LOW_MAX = 2


class SurveyQuestion(models.Model):
    kind = models.CharField(max_length=4, choices=QuestionKind.choices)
    text = models.CharField(max_length=500)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("survey question")
        verbose_name_plural = _("survey questions")
        ordering = ["kind", "id"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=QuestionKind.values), name="surveyquestion_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text[:60]}"


class SurveyCampaign(models.Model):
    """One question sent to a segment: the clients open on the day it is sent that match every
    filter given (computed tier on the current tier date, branch, account manager)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent")

    class TierFilter(models.TextChoices):
        ALL = "", _("All tiers")
        VIP = "vip", _("VIP")
        MAJOR = "major", _("Major")
        ORDINARY = "ordinary", _("Ordinary")
        SMALL = "small", _("Small")

    name = models.CharField(max_length=120)
    question = models.ForeignKey(SurveyQuestion, on_delete=models.PROTECT, related_name="campaigns")
    tier = models.CharField(max_length=8, choices=TierFilter.choices, blank=True, default="")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    account_manager = models.ForeignKey(
        AccountManager, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    sent_at = models.DateTimeField(null=True, blank=True)
    invited = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("survey campaign")
        verbose_name_plural = _("survey campaigns")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="draft") & Q(sent_at__isnull=True)) | (Q(status="sent") & Q(sent_at__isnull=False)),
                name="surveycampaign_sent_has_time",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SurveyInvitation(models.Model):
    campaign = models.ForeignKey(SurveyCampaign, on_delete=models.PROTECT, related_name="invitations")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="survey_invitations", db_index=False)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["campaign_id", "client_id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "client"], name="surveyinvitation_one_per_client"),
        ]
        indexes = [models.Index(fields=["client"], name="surveyinvitation_client")]

    def __str__(self) -> str:
        return f"{self.campaign_id} -> {self.client_id}"


class SurveyResponse(models.Model):
    """One answer. Append-only: a client who changes their mind answers again."""

    class Source(models.TextChoices):
        API = "api", _("API (survey system)")
        ACCOUNT_MANAGER = "account_manager", _("Recorded by the account manager")
        CALLBACK = "callback", _("Phone callback")

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="survey_responses", db_index=False)
    question = models.ForeignKey(SurveyQuestion, on_delete=models.PROTECT, related_name="responses")
    campaign = models.ForeignKey(
        SurveyCampaign, on_delete=models.PROTECT, null=True, blank=True, related_name="responses"
    )
    kind = models.CharField(max_length=4, choices=QuestionKind.choices, help_text="The question's kind.")
    score = models.SmallIntegerField(help_text="CSAT 1-5, NPS 0-10.")
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        ordering = ["-answered_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="csat") & Q(score__gte=1) & Q(score__lte=5))
                | (Q(kind="nps") & Q(score__gte=0) & Q(score__lte=10)),
                name="surveyresponse_score_in_range",
            ),
            models.UniqueConstraint(
                fields=["campaign", "client"],
                condition=Q(campaign__isnull=False),
                name="surveyresponse_one_per_campaign_client",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "answered_at"], name="surveyresponse_client_answered"),
            models.Index(fields=["answered_at"], name="surveyresponse_answered"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.kind} {self.score}"

    @property
    def is_detractor(self) -> bool:
        return self.kind == QuestionKind.NPS and self.score <= NPS_DETRACTOR_MAX


class ComplaintQuerySet(models.QuerySet):
    def open_at(self, moment: dt.datetime) -> ComplaintQuerySet:
        """Opened at or before `moment` and not resolved by then."""
        return self.filter(opened_at__lte=moment).filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=moment))

    def with_sla(self, now: dt.datetime) -> ComplaintQuerySet:
        """Annotate `first_response_breached` and `resolution_breached`: the response (or the
        resolution) came after its due time, or has not come and `now` is past the due time."""
        return self.annotate(
            first_response_breached=Case(
                When(first_response_due_at__lt=Coalesce(F("first_response_at"), Value(now)), then=Value(True)),
                default=Value(False),
                output_field=models.BooleanField(),
            ),
            resolution_breached=Case(
                When(resolution_due_at__lt=Coalesce(F("resolved_at"), Value(now)), then=Value(True)),
                default=Value(False),
                output_field=models.BooleanField(),
            ),
        )

    def breached(self, now: dt.datetime, which: str = "any") -> ComplaintQuerySet:
        """Tickets in breach of the first-response SLA, the resolution SLA, or either."""
        first = Q(first_response_due_at__lt=Coalesce(F("first_response_at"), Value(now)))
        resolution = Q(resolution_due_at__lt=Coalesce(F("resolved_at"), Value(now)))
        condition = {"first_response": first, "resolution": resolution, "any": first | resolution}[which]
        return self.filter(condition)


class ComplaintChannel(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    BRANCH = "branch", _("Branch visit")
    ONLINE = "online", _("Online / app")
    LETTER = "letter", _("Letter")
    REGULATOR = "regulator", _("Via the regulator")
    OTHER = "other", _("Other")


class ComplaintCategory(models.TextChoices):
    SERVICE = "service", _("Service quality")
    TRADING = "trading", _("Trade execution")
    FEES = "fees", _("Fees and commission")
    SYSTEM = "system", _("Systems and apps")
    ADVICE = "advice", _("Advice and suitability")
    ACCOUNT = "account", _("Account and funds")
    OTHER = "other", _("Other")


class ComplaintSeverity(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class ComplaintStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress (responded)")
    RESOLVED = "resolved", _("Resolved")


class Complaint(models.Model):
    Channel = ComplaintChannel
    Category = ComplaintCategory
    Severity = ComplaintSeverity
    Status = ComplaintStatus

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="complaints", db_index=False)
    channel = models.CharField(max_length=10, choices=ComplaintChannel.choices)
    category = models.CharField(max_length=10, choices=Category.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    description = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(help_text="opened_at + the severity's first-response target.")
    resolution_due_at = models.DateTimeField(help_text="opened_at + the severity's resolution target.")
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    resolution = models.TextField(blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ComplaintQuerySet.as_manager()

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=ComplaintChannel.values), name="complaint_channel_valid"),
            models.CheckConstraint(condition=Q(category__in=ComplaintCategory.values), name="complaint_category_valid"),
            models.CheckConstraint(condition=Q(severity__in=ComplaintSeverity.values), name="complaint_severity_valid"),
            models.CheckConstraint(condition=~Q(description=""), name="complaint_description_required"),
            models.CheckConstraint(
                condition=Q(first_response_at__isnull=True) | Q(first_response_at__gte=F("opened_at")),
                name="complaint_response_after_opened",
            ),
            models.CheckConstraint(
                condition=Q(escalated_at__isnull=True) | Q(escalated_at__gte=F("opened_at")),
                name="complaint_escalated_after_opened",
            ),
            # Resolved <=> a resolution time, a root cause and a resolution; responded before.
            models.CheckConstraint(
                condition=(
                    Q(status="resolved")
                    & Q(resolved_at__isnull=False)
                    & Q(first_response_at__isnull=False)
                    & Q(resolved_at__gte=F("first_response_at"))
                    & ~Q(root_cause="")
                    & ~Q(resolution="")
                )
                | (Q(status="in_progress") & Q(resolved_at__isnull=True) & Q(first_response_at__isnull=False))
                | (Q(status="open") & Q(resolved_at__isnull=True) & Q(first_response_at__isnull=True)),
                name="complaint_status_consistent",
            ),
            models.CheckConstraint(
                condition=Q(first_response_due_at__gte=F("opened_at")) & Q(resolution_due_at__gte=F("opened_at")),
                name="complaint_due_after_opened",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "opened_at"], name="complaint_client_opened"),
            models.Index(fields=["opened_at"], name="complaint_opened"),
            models.Index(fields=["status", "opened_at"], name="complaint_status_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.client_id} ({self.status})"

    @property
    def reference(self) -> str:
        """The register's reference, e.g. CMP-2026-0000042."""
        return f"CMP-{self.opened_at:%Y}-{self.pk or 0:07d}"


class ComplaintEvent(models.Model):
    """Who did what to a ticket, when (append-only; written by feedback.services)."""

    class Action(models.TextChoices):
        OPENED = "opened", _("Opened")
        RESPONDED = "responded", _("First response")
        ESCALATED = "escalated", _("Escalated")
        RESOLVED = "resolved", _("Resolved")

    complaint = models.ForeignKey(Complaint, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField()
    note = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["complaint_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.complaint_id} {self.action} {self.at:%Y-%m-%d %H:%M}"
