"""Compliance: flags raised on clients (KYC, suitability, AML, screening), the review queue's
decisions with four eyes, watch lists and their matches, suitability warnings and
acknowledgements, and the tamper-evident audit trail.

Rules the database enforces (migration 0001):
- one active flag per (client, kind, subject): a partial unique index over the active statuses,
  which the nightly upsert targets;
- a flag's severity never falls: a trigger on UPDATE (PostgreSQL and SQLite), besides the
  service code that only ever raises it;
- audit entries are never updated or deleted: a trigger on PostgreSQL (the model also refuses
  save() of an existing row and delete(), and its QuerySet refuses update() and delete());
- a decision's approver differs from its decider (four eyes), a decision has a note, a
  mismatched suitability record has a warning and an acknowledgement.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from clients.models import Client, Instrument


class Severity(models.IntegerChoices):
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")


SEVERITY_CODES: dict[str, int] = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH}
SEVERITY_NAMES: dict[int, str] = {value: name for name, value in SEVERITY_CODES.items()}


class FlagKind(models.TextChoices):
    ID_DOCUMENT = "id_document", _("ID document expired or expiring")
    KYC_REVIEW_OVERDUE = "kyc_review_overdue", _("KYC review overdue")
    RISK_ASSESSMENT_STALE = "risk_assessment_stale", _("Risk assessment out of date")
    PEP = "pep", _("Politically exposed person")
    SANCTIONS = "sanctions", _("Sanctions list match")
    HIGH_RISK_JURISDICTION = "high_risk_jurisdiction", _("High-risk jurisdiction")
    SUITABILITY_MISMATCH = "suitability_mismatch", _("Trade above the client's risk level without warning")
    LOWEST_RISK_ABOVE_R1 = "c1_above_r1", _("C1 (lowest) client trading above R1")
    AML_RAPID_WITHDRAWAL = "aml_rapid_withdrawal", _("Large deposit withdrawn within days, little trading")
    AML_STRUCTURING = "aml_structuring", _("Deposits just under the reporting threshold")


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_REVIEW = "in_review", _("In review")
    ESCALATED = "escalated", _("Escalated")
    CLEARED = "cleared", _("Cleared")
    RESTRICTED = "restricted", _("Account restricted")


# A flag in one of these is "open": never raised twice, its evidence updated by the nightly run.
ACTIVE_STATUSES = (FlagStatus.OPEN, FlagStatus.IN_REVIEW, FlagStatus.ESCALATED)
CLOSED_STATUSES = (FlagStatus.CLEARED, FlagStatus.RESTRICTED)


class FlagQuerySet(models.QuerySet):
    def active(self) -> FlagQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def closed(self) -> FlagQuerySet:
        return self.filter(status__in=CLOSED_STATUSES)

    def queue_order(self) -> FlagQuerySet:
        """The review queue's order: highest severity first, then oldest."""
        return self.order_by("-severity", "raised_at", "id")


class Flag(models.Model):
    """Something about a client a compliance officer must look at.

    `subject` says what exactly (an ID document's expiry date, a watch-list entry, an
    instrument, a deposit ...); with client and kind it is the flag's identity: while a flag
    is active, the nightly run updates its evidence instead of raising another one.
    """

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="compliance_flags")
    kind = models.CharField(max_length=24, choices=FlagKind.choices)
    subject = models.CharField(max_length=120, blank=True, help_text="What the flag is about, within its kind.")
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    status = models.CharField(max_length=12, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    evidence = models.JSONField(default=dict, blank=True, help_text="The facts as of the last run that saw them.")
    events = models.PositiveIntegerField(default=0, help_text="Events (trades, deposits) counted so far.")
    first_seen_on = models.DateField(help_text="As-of date of the run that raised the flag.")
    last_seen_on = models.DateField(help_text="As-of date of the last run that still saw the condition.")
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = FlagQuerySet.as_manager()

    class Meta:
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        ordering = ["-severity", "raised_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "kind", "subject"],
                condition=Q(status__in=["open", "in_review", "escalated"]),
                name="flag_one_active_per_subject",
            ),
            models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=3), name="flag_severity_valid"),
            models.CheckConstraint(condition=Q(status__in=FlagStatus.values), name="flag_status_valid"),
            models.CheckConstraint(
                condition=(Q(status__in=["cleared", "restricted"]) & Q(closed_at__isnull=False))
                | (Q(status__in=["open", "in_review", "escalated"]) & Q(closed_at__isnull=True)),
                name="flag_closed_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-severity", "raised_at"], name="flag_queue"),
            # The queue page and take-next: waiting flags in queue order, read 50 at a time
            # without sorting every waiting flag (257,403 on the 1,000,000-client book).
            models.Index(
                fields=["-severity", "raised_at", "id"],
                condition=Q(status__in=["open", "escalated"], assigned_to__isnull=True),
                name="flag_waiting_queue",
            ),
            models.Index(fields=["client", "kind"], name="flag_client_kind"),
            models.Index(fields=["raised_at"], name="flag_raised_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.client_id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Decision(models.TextChoices):
    # "Clear" alone is a button (clear a search); as a decision it closes the flag.
    CLEAR = "clear", pgettext_lazy("compliance decision", "Clear")
    ESCALATE = "escalate", _("Escalate")
    RESTRICT = "restrict", _("Restrict account")


class FlagDecision(models.Model):
    """A compliance officer's decision on a flag. Clearing or restricting a high-severity flag
    waits (status pending) for a second, different officer's approval: four eyes."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a second officer")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected by the second officer")

    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    note = models.TextField()
    whitelist = models.BooleanField(
        default=False, help_text="Clearing a screening match as a false match whitelists it for this client."
    )
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, help_text="The flag's severity then.")
    status = models.CharField(max_length=10, choices=Status.choices)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["flag_id", "decided_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(note=""), name="flagdecision_note_required"),
            models.CheckConstraint(
                condition=Q(reviewed_by__isnull=True) | ~Q(reviewed_by=F("decided_by")),
                name="flagdecision_four_eyes",
            ),
            models.UniqueConstraint(
                fields=["flag"], condition=Q(status="pending"), name="flagdecision_one_pending_per_flag"
            ),
        ]
        indexes = [models.Index(fields=["decided_at"], name="flagdecision_decided_at")]

    def __str__(self) -> str:
        return f"{self.decision} on flag {self.flag_id} ({self.status})"


# --- Watch lists and screening -------------------------------------------------------------


class WatchList(models.Model):
    """A list the firm loads itself (CSV): sanctions or PEP. No outside service is called."""

    class Kind(models.TextChoices):
        SANCTIONS = "sanctions", _("Sanctions")
        PEP = "pep", _("Politically exposed persons")

    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.CharField(max_length=200, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)
    loaded_by = models.CharField(max_length=150, blank=True)
    file_sha256 = models.CharField("file SHA-256", max_length=64, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Loads so far.")

    class Meta:
        verbose_name = _("watch list")
        verbose_name_plural = _("watch lists")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WatchListEntry(models.Model):
    watch_list = models.ForeignKey(WatchList, on_delete=models.PROTECT, related_name="entries")
    external_id = models.CharField(max_length=64, help_text="The list's own id of the entry.")
    name = models.CharField(max_length=200)
    aliases = models.JSONField(default=list, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True, help_text="When only the year is known.")
    countries = models.JSONField(default=list, blank=True, help_text="ISO 3166-1 alpha-2 codes.")
    remarks = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True, help_text="False once a later load no longer has it.")

    class Meta:
        verbose_name = _("watch list entry")
        verbose_name_plural = _("watch list entries")
        ordering = ["watch_list_id", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["watch_list", "external_id"], name="watchlistentry_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.watch_list_id}:{self.external_id} {self.name}"


class ScreeningMatch(models.Model):
    """A client whose name matched a watch-list entry at the last screening."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="screening_matches")
    entry = models.ForeignKey(WatchListEntry, on_delete=models.PROTECT, related_name="matches")
    score = models.FloatField(help_text="Overall score 0-100.")
    name_score = models.FloatField(help_text="Best name similarity 0-100.")
    matched_fields = models.JSONField(default=list, help_text="Of name, alias, dob, country.")
    client_name = models.CharField(max_length=200, help_text="The client's name as screened.")
    matched_name = models.CharField(max_length=200, help_text="The entry's name or alias that matched best.")
    screened_at = models.DateTimeField()

    class Meta:
        verbose_name = _("screening match")
        verbose_name_plural = _("screening matches")
        ordering = ["-score", "id"]
        constraints = [models.UniqueConstraint(fields=["client", "entry"], name="screeningmatch_unique")]

    def __str__(self) -> str:
        return f"{self.client_id} ~ {self.entry_id} ({self.score:.0f})"


class ScreeningWhitelist(models.Model):
    """A confirmed false match: this entry is never flagged again for this client."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(WatchListEntry, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    decision = models.ForeignKey(FlagDecision, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("screening whitelist")
        verbose_name_plural = _("screening whitelists")
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "entry"], name="screeningwhitelist_unique"),
            models.CheckConstraint(condition=~Q(reason=""), name="screeningwhitelist_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} !~ {self.entry_id}"


# --- Suitability ---------------------------------------------------------------------------


class SuitabilityRecord(models.Model):
    """A product recommendation or an order warning, with the client's and the product's
    risk levels then; above the client's level it carries the warning given and the client's
    acknowledgement. Append-only: a new record, never an edit."""

    class Kind(models.TextChoices):
        RECOMMENDATION = "recommendation", _("Product recommendation")
        ORDER_WARNING = "order_warning", _("Order warning")

    class Method(models.TextChoices):
        SIGNED_FORM = "signed_form", _("Signed form")
        ONLINE = "online", _("Online confirmation")
        RECORDED_CALL = "recorded_call", _("Recorded phone call")
        COUNTER = "counter", _("At the branch counter")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="suitability_records")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    client_risk_level = models.PositiveSmallIntegerField(help_text="C level from the latest assessment then.")
    product_risk_level = models.PositiveSmallIntegerField(help_text="The instrument's R level then.")
    mismatch = models.BooleanField(help_text="The product is above the client's level.")
    warning_text = models.TextField(blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_method = models.CharField(max_length=16, choices=Method.choices, blank=True)
    reference = models.CharField(max_length=64, blank=True, help_text="Order or recommendation id upstream.")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("suitability record")
        verbose_name_plural = _("suitability records")
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(client_risk_level__gte=1, client_risk_level__lte=5)
                & Q(product_risk_level__gte=1, product_risk_level__lte=5),
                name="suitability_levels_valid",
            ),
            models.CheckConstraint(
                condition=Q(mismatch=False)
                | (~Q(warning_text="") & Q(acknowledged_at__isnull=False) & ~Q(acknowledgement_method="")),
                name="suitability_mismatch_warned_and_acknowledged",
            ),
            models.CheckConstraint(
                condition=Q(mismatch=True, product_risk_level__gt=F("client_risk_level"))
                | Q(mismatch=False, product_risk_level__lte=F("client_risk_level")),
                name="suitability_mismatch_matches_levels",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "instrument", "acknowledged_at"], name="suitability_client_instrument"),
            models.Index(fields=["recorded_at"], name="suitability_recorded_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.client_id} {self.instrument_id}"


# --- Audit trail -----------------------------------------------------------------------------


class ImmutableError(RuntimeError):
    MESSAGE = "Audit entries are append-only: they cannot be changed or deleted."


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise ImmutableError(ImmutableError.MESSAGE)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableError(ImmutableError.MESSAGE)


class AuditEntry(models.Model):
    """One audited act. `hash` = SHA-256 over the entry's content and the previous entry's hash
    (see compliance/audit.py); `verify_audit_chain` recomputes the chain."""

    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the chain, from 1.")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, help_text="Username then, or the process for nightly work.")
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64, blank=True)
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    client_no = models.CharField(max_length=32, blank=True, help_text="The client's number then.")
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["client", "seq"], name="audit_client_seq"),
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["at"], name="audit_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableError(ImmutableError.MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableError(ImmutableError.MESSAGE)


class AuditHead(models.Model):
    """The chain's head: one row, locked (SELECT ... FOR UPDATE) by every append so appends
    are serialised, and compared with the last entry by the verifier (a deleted tail shows)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="audithead_single_row")]

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


# --- Nightly bookkeeping -------------------------------------------------------------------


class ComplianceMark(models.Model):
    """Watermarks of the nightly stage: how far into the ledger the suitability check has read,
    and when the clients were last screened against which list versions."""

    name = models.CharField(max_length=40, primary_key=True)
    value = models.BigIntegerField(default=0)
    at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("compliance mark")
        verbose_name_plural = _("compliance marks")

    def __str__(self) -> str:
        return f"{self.name} @ {self.value}"


class FlagCandidate(models.Model):
    """Staging rows of one evaluation (generation = the stage run): upserted into Flag by one
    INSERT ... SELECT ... ON CONFLICT, then deleted."""

    generation = models.BigIntegerField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    kind = models.CharField(max_length=24)
    subject = models.CharField(max_length=120, blank=True)
    severity = models.PositiveSmallIntegerField()
    evidence = models.JSONField(default=dict)
    evidence_at = models.DateTimeField(
        null=True, blank=True, help_text="Newest fact; a flag closed before it does not suppress a new one."
    )
    events = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["generation"], name="flagcandidate_generation")]

    def __str__(self) -> str:
        return f"{self.generation} {self.client_id} {self.kind}"
