"""Models of retention work: tasks, playbooks, regulatory callbacks, service products and
tier entitlements, campaigns with control groups.

Part of the `retention` app (imported at the end of retention/models.py). Rules that a bulk
write could otherwise skip are database constraints: one open task per dedupe key, one open
entitlement per client and product, one callback per client, kind and year, one campaign
membership per client.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clients.models import Client, Interaction
from segmentation.models import Tier

__all__ = [
    "Callback",
    "CallbackAttempt",
    "CallbackSample",
    "Campaign",
    "CampaignMember",
    "ClientEntitlement",
    "Playbook",
    "RetentionTask",
    "ServiceDelivery",
    "ServiceProduct",
    "TierEntitlement",
]


# --- Tasks ------------------------------------------------------------------------------


class TaskKind(models.TextChoices):
    CALLBACK = "callback", _("Callback")
    REACTIVATION = "reactivation", _("Reactivation")
    AT_RISK_OUTREACH = "at_risk_outreach", _("At-risk outreach")
    SERVICE_DELIVERY = "service_delivery", _("Service delivery")
    GREETING = "greeting", _("Greeting")
    KYC_RENEWAL = "kyc_renewal", _("KYC renewal reminder")
    OTHER = "other", _("Other")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


class TaskSource(models.TextChoices):
    """What created the task: the reason's origin."""

    RULE = "rule", _("A rule")
    SCORE = "score", _("A score")
    TIER_CHANGE = "tier_change", _("A tier change")
    PERSON = "person", _("A person")
    PLAYBOOK = "playbook", _("A playbook")
    CALLBACK = "callback", _("A regulatory callback")
    SERVICE = "service", _("A service entitlement")
    CAMPAIGN = "campaign", _("A campaign")
    FEEDBACK = "feedback", _("Client feedback")


class RetentionTaskQuerySet(models.QuerySet):
    def open(self) -> RetentionTaskQuerySet:
        return self.filter(status=TaskStatus.OPEN)

    def overdue(self, today: dt.date) -> RetentionTaskQuerySet:
        return self.filter(status=TaskStatus.OPEN, due__lt=today)


class RetentionTask(models.Model):
    """One piece of retention work for one client, with the reason that created it."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="retention_tasks", db_index=False)
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="retention_tasks"
    )
    due = models.DateField()
    priority = models.PositiveSmallIntegerField(default=50, help_text="0 (lowest) to 100 (most urgent).")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    channel = models.CharField(max_length=8, choices=Interaction.Channel.choices, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    source = models.CharField(max_length=12, choices=TaskSource.choices, default=TaskSource.RULE)
    reason_code = models.CharField(max_length=60, help_text="Machine-readable reason, e.g. churn_risk.")
    reason_text = models.TextField(help_text="Why this task exists, for the person doing it.")
    reason_facts = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the reason was written from (retention/work/task_reasons.py): pages show the reason "
        "in the reader's language. Empty: the reason text is shown as it is.",
    )
    # NULL, not "": the partial unique index must not treat tasks without a key as duplicates.
    dedupe_key = models.CharField(  # noqa: DJ001
        max_length=200, null=True, blank=True, help_text="At most one open task per key (e.g. playbook:3:client:42)."
    )
    playbook = models.ForeignKey(
        "retention.Playbook", on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    campaign = models.ForeignKey(
        "retention.Campaign", on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    created_on = models.DateField(default=timezone.localdate, help_text="Working day the task was opened for.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    close_reason = models.CharField(max_length=300, blank=True)
    interaction = models.OneToOneField(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="retention_task"
    )

    objects = RetentionTaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("retention task")
        verbose_name_plural = _("retention tasks")
        ordering = ["due", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(status="open") & Q(dedupe_key__isnull=False),
                name="task_one_open_per_dedupe_key",
            ),
            models.CheckConstraint(condition=Q(priority__lte=100), name="task_priority_0_100"),
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="task_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=TaskStatus.values), name="task_status_valid"),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True) | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="task_closed_iff_not_open",
            ),
            models.CheckConstraint(condition=~Q(reason_code=""), name="task_reason_required"),
        ]
        indexes = [
            models.Index(fields=["assignee", "status", "due"], name="task_assignee_status_due"),
            models.Index(fields=["client", "status"], name="task_client_status"),
            models.Index(fields=["status", "due"], name="task_status_due"),
            models.Index(fields=["playbook", "status"], name="task_playbook_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.client_id} due {self.due} ({self.status})"

    @property
    def reason_display(self) -> str:
        """The reason in the active language (task_reasons.reason_display)."""
        from retention.work.task_reasons import reason_display

        return reason_display(self)


# --- Playbooks --------------------------------------------------------------------------


class TierChange(models.TextChoices):
    ANY = "", _("Any (no condition)")
    UP = "up", _("Upgraded")
    DOWN = "down", _("Downgraded")


class AssigneeRole(models.TextChoices):
    ACCOUNT_MANAGER = "account_manager", _("The client's account manager")
    TEAM_LEAD = "team_lead", _("The account manager's team lead")


class Playbook(models.Model):
    """A rule, edited by ops in admin, that turns the nightly results into tasks.

    Every condition that is set must hold (AND); an empty condition is no condition. A client
    matching the rule on the as-of date gets one open task (dedupe key playbook:<id>:client:<id>);
    when the rule stops matching the open task expires with the reason. After a task of the
    rule was closed, the client is left alone for `cooldown_days`.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    # conditions
    tiers = models.JSONField(
        default=list, blank=True, help_text="Effective tiers (1 VIP .. 4 Small) the client must be in; empty = any."
    )
    min_churn_risk = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Churn risk (0-100) at or above which the rule applies."
    )
    segments = models.JSONField(default=list, blank=True, help_text="Activity segments; empty = any.")
    about_to_go_dormant = models.BooleanField(
        null=True, blank=True, help_text="Yes: only clients about to go dormant; No: only those who are not."
    )
    high_assets_low_activity = models.BooleanField(
        null=True, blank=True, help_text="Yes: only clients on the high-assets-low-activity list."
    )
    tier_change = models.CharField(max_length=4, choices=TierChange.choices, blank=True)
    tier_change_within_days = models.PositiveSmallIntegerField(
        default=7, help_text="A tier change counts for this many days after it happened."
    )
    # action
    task_kind = models.CharField(max_length=20, choices=TaskKind.choices)
    due_in_days = models.PositiveSmallIntegerField(default=2, help_text="Due this many days after the working day.")
    priority = models.PositiveSmallIntegerField(default=50)
    assignee_role = models.CharField(max_length=16, choices=AssigneeRole.choices, default=AssigneeRole.ACCOUNT_MANAGER)
    reason_text = models.CharField(max_length=300, help_text="Shown on the task: why and what to do.")
    cooldown_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days after a task of this rule closes before the same client gets another."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("playbook")
        verbose_name_plural = _("playbooks")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(priority__lte=100), name="playbook_priority_0_100"),
            models.CheckConstraint(
                condition=Q(min_churn_risk__isnull=True) | Q(min_churn_risk__lte=100), name="playbook_risk_0_100"
            ),
            models.CheckConstraint(condition=Q(task_kind__in=TaskKind.values), name="playbook_task_kind_valid"),
            models.CheckConstraint(condition=Q(tier_change_within_days__gte=1), name="playbook_change_window_1"),
        ]

    def __str__(self) -> str:
        return self.name


# --- Regulatory callbacks (回访) ---------------------------------------------------------


class CallbackKind(models.TextChoices):
    NEW_ACCOUNT = "new_account", _("New account (within one month of opening)")
    ANNUAL_SAMPLE = "annual_sample", _("Annual random sample")


class CallbackStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRY = "retry", _("Retry due (failed or unreachable)")
    ESCALATED = "escalated", _("Escalated to the team lead")
    DONE = "done", _("Done")


class CallbackResult(models.TextChoices):
    COMPLETED = "completed", _("Completed with the checklist")
    UNREACHABLE = "unreachable", _("Unreachable")
    FAILED = "failed", _("Failed (checklist not completed)")


class CallbackSample(models.Model):
    """The yearly random draw: which seed, over which population, how many."""

    year = models.PositiveSmallIntegerField(
        unique=True, help_text="The sampling year (population: open on 31 Dec before)."
    )
    seed = models.BigIntegerField()
    percent = models.PositiveSmallIntegerField()
    population = models.PositiveIntegerField()
    sample_size = models.PositiveIntegerField()
    drawn_on = models.DateField()
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("callback sample")
        verbose_name_plural = _("callback samples")
        ordering = ["-year"]
        constraints = [models.CheckConstraint(condition=Q(percent__gte=10, percent__lte=100), name="sample_percent_10")]

    def __str__(self) -> str:
        return f"callback sample {self.year}: {self.sample_size} of {self.population}"


class CallbackQuerySet(models.QuerySet):
    def retained_on(self, day: dt.date) -> CallbackQuerySet:
        return self.filter(retain_until__gte=day)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Refuses while any row is inside its retention period (records are kept >= 3 years)."""
        if self.filter(retain_until__gte=timezone.localdate()).exists():
            raise CallbackRetained(CallbackRetained.MESSAGE)
        return super().delete()


class CallbackRetained(Exception):
    MESSAGE = "Callback records are kept until their retention date and cannot be deleted before it."


class Callback(models.Model):
    """A regulatory callback: who, why, the checklist and the attempts."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="callbacks", db_index=False)
    kind = models.CharField(max_length=16, choices=CallbackKind.choices)
    year = models.PositiveSmallIntegerField(help_text="Opening year (new account) or sampling year.")
    sample = models.ForeignKey(
        CallbackSample, on_delete=models.PROTECT, null=True, blank=True, related_name="callbacks"
    )
    due = models.DateField()
    status = models.CharField(max_length=10, choices=CallbackStatus.choices, default=CallbackStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    task = models.ForeignKey(RetentionTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # the checklist (null: not asked yet)
    identity_confirmed = models.BooleanField(null=True, blank=True)
    no_unauthorised_staff_trading = models.BooleanField(
        null=True, blank=True, help_text="The client confirms no staff trades on their behalf without authorisation."
    )
    risk_disclosure_understood = models.BooleanField(null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 (very unhappy) to 5.")
    notes = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_on = models.DateField()
    retain_until = models.DateField(help_text="The record may not be deleted before this date.")

    objects = CallbackQuerySet.as_manager()

    class Meta:
        verbose_name = _("callback")
        verbose_name_plural = _("callbacks")
        ordering = ["due", "id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "kind", "year"], name="callback_one_per_client_kind_year"),
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="callback_satisfaction_1_5",
            ),
            models.CheckConstraint(
                condition=~Q(status="done")
                | (
                    Q(completed_at__isnull=False)
                    & Q(identity_confirmed__isnull=False)
                    & Q(no_unauthorised_staff_trading__isnull=False)
                    & Q(risk_disclosure_understood__isnull=False)
                    & Q(satisfaction__isnull=False)
                ),
                name="callback_done_has_checklist",
            ),
            models.CheckConstraint(
                condition=Q(retain_until__gte=models.F("created_on")), name="callback_retained_after_creation"
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "year", "status"], name="callback_kind_year_status"),
            models.Index(fields=["client", "kind"], name="callback_client_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} callback {self.client_id} ({self.status})"

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        if self.retain_until >= timezone.localdate():
            raise CallbackRetained(CallbackRetained.MESSAGE)
        return super().delete(*args, **kwargs)


class CallbackAttempt(models.Model):
    """One call made for a callback (append-only)."""

    callback = models.ForeignKey(Callback, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    result = models.CharField(max_length=12, choices=CallbackResult.choices)
    notes = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    interaction = models.ForeignKey(Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["callback_id", "number"]
        constraints = [models.UniqueConstraint(fields=["callback", "number"], name="callback_attempt_number_unique")]

    def __str__(self) -> str:
        return f"callback {self.callback_id} attempt {self.number}: {self.result}"


# --- Service products and tier entitlements ----------------------------------------------


class ServiceChannel(models.TextChoices):
    WEBSITE = "website", _("Website")
    TRADING_SOFTWARE = "trading_software", _("Trading software")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone")
    ON_SITE = "on_site", _("On site")


class Frequency(models.TextChoices):
    ONCE = "once", _("Once, on grant")
    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    YEARLY = "yearly", _("Yearly")
    BIRTHDAY = "birthday", _("On the client's birthday")
    ON_DEMAND = "on_demand", _("On demand (no schedule)")


class ServiceProduct(models.Model):
    """A service in the catalogue: how it is delivered and how often."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    channel = models.CharField(max_length=16, choices=ServiceChannel.choices)
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    needs_person = models.BooleanField(
        default=False, help_text="Delivered by a person (phone, on site): a due delivery becomes a task."
    )
    task_kind = models.CharField(max_length=20, choices=TaskKind.choices, default=TaskKind.SERVICE_DELIVERY)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("service product")
        verbose_name_plural = _("service products")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(task_kind__in=TaskKind.values), name="product_task_kind_valid")
        ]

    def __str__(self) -> str:
        return self.name


class TierEntitlement(models.Model):
    """One cell of the matrix: clients of `tier` get `product`."""

    product = models.ForeignKey(ServiceProduct, on_delete=models.CASCADE, related_name="tier_entitlements")
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)

    class Meta:
        ordering = ["tier", "product__code"]
        constraints = [
            models.UniqueConstraint(fields=["product", "tier"], name="tier_entitlement_unique"),
            models.CheckConstraint(condition=Q(tier__gte=1, tier__lte=4), name="tier_entitlement_tier_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_tier_display()}: {self.product}"


class ClientEntitlement(models.Model):
    """A client's right to a service while their tier gives it; withdrawn (kept) when it no longer does."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="entitlements", db_index=False)
    product = models.ForeignKey(ServiceProduct, on_delete=models.PROTECT, related_name="client_entitlements")
    granted_on = models.DateField()
    granted_tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    next_due = models.DateField(null=True, blank=True, help_text="Next scheduled delivery; empty: none scheduled.")
    withdrawn_on = models.DateField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("client entitlement")
        verbose_name_plural = _("client entitlements")
        ordering = ["client_id", "product_id", "-granted_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "product"], condition=Q(withdrawn_on__isnull=True), name="entitlement_one_open"
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gte=models.F("granted_on")),
                name="entitlement_withdrawn_after_grant",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "withdrawn_on"], name="entitlement_client_open"),
            models.Index(fields=["next_due"], name="entitlement_next_due"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.product_id} since {self.granted_on}"


class ServiceDelivery(models.Model):
    """One delivery of a service to a client (append-only)."""

    entitlement = models.ForeignKey(ClientEntitlement, on_delete=models.PROTECT, related_name="deliveries")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+", db_index=False)
    product = models.ForeignKey(ServiceProduct, on_delete=models.PROTECT, related_name="+")
    scheduled_for = models.DateField(null=True, blank=True)
    delivered_on = models.DateField()
    channel = models.CharField(max_length=16, choices=ServiceChannel.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: delivered by the system (email, SMS, website).",
    )
    task = models.ForeignKey(RetentionTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("service delivery")
        verbose_name_plural = _("service deliveries")
        ordering = ["-delivered_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["entitlement", "scheduled_for"],
                condition=Q(scheduled_for__isnull=False),
                name="delivery_one_per_schedule",
            ),
        ]
        indexes = [models.Index(fields=["client", "delivered_on"], name="delivery_client_day")]

    def __str__(self) -> str:
        return f"{self.product_id} to {self.client_id} on {self.delivered_on}"


# --- Campaigns ---------------------------------------------------------------------------


class CampaignOutcome(models.TextChoices):
    TRADED = "traded", _("Traded again within N days")
    NET_INFLOW = "net_inflow", _("Net inflow within N days")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LAUNCHED = "launched", _("Launched")
    MEASURED = "measured", _("Measured")


class Campaign(models.Model):
    """A campaign over a saved segment, with a reproducible held-out control group."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    segment = models.JSONField(
        default=dict,
        blank=True,
        help_text="Filter: tiers, segments, min_churn_risk, max_churn_risk, managers, branches, preferences.",
    )
    control_percent = models.PositiveSmallIntegerField(help_text="Share held out as the control group, 1-90.")
    seed = models.BigIntegerField()
    task_kind = models.CharField(max_length=20, choices=TaskKind.choices, default=TaskKind.OTHER)
    task_reason = models.CharField(max_length=300)
    due_in_days = models.PositiveSmallIntegerField(default=7)
    priority = models.PositiveSmallIntegerField(default=50)
    outcome = models.CharField(max_length=12, choices=CampaignOutcome.choices, default=CampaignOutcome.TRADED)
    outcome_days = models.PositiveSmallIntegerField(default=30)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    launched_on = models.DateField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True, help_text="Last measurement: rates, uplift, 95% interval.")
    measured_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(control_percent__gte=1, control_percent__lte=90), name="campaign_control_1_90"
            ),
            models.CheckConstraint(condition=Q(outcome_days__gte=1), name="campaign_outcome_days_1"),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(launched_on__isnull=False), name="campaign_launched_has_date"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """A client targeted by a campaign, in the treated or the control group."""

    class Group(models.TextChoices):
        TREATED = "treated", _("Treated")
        CONTROL = "control", _("Control (held out)")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+", db_index=False)
    group = models.CharField(max_length=8, choices=Group.choices)
    task = models.ForeignKey(RetentionTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    converted = models.BooleanField(null=True, blank=True, help_text="Outcome reached (set by the measurement).")
    outcome_value = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "client_id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "client"], name="campaign_member_unique"),
        ]
        indexes = [models.Index(fields=["campaign", "group"], name="campaign_member_group")]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.client_id} ({self.group})"
