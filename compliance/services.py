"""Writes people make in compliance: taking flags from the queue, decisions with four eyes,
and suitability records (the gate). Every one is audited in the same transaction.

Severity only ever rises: `_raise_severity` is the one place that changes it here, and the
database refuses a lower value (trigger, migration 0001).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from brokercrm.roles import COMPLIANCE_OFFICER, has_role
from clients.models import Client, Instrument, RiskAssessment
from compliance import audit
from compliance.audit import AuditAction
from compliance.models import (
    ACTIVE_STATUSES,
    Decision,
    Flag,
    FlagDecision,
    FlagStatus,
    ScreeningWhitelist,
    Severity,
    SuitabilityRecord,
)


class ComplianceError(ValueError):
    """A rule of the review process was broken; the message is one of the constants."""

    NOT_OFFICER = "Only compliance officers may decide flags."
    NOTE_REQUIRED = "A decision needs a note."
    NOT_ACTIVE = "This flag is closed."
    TAKEN_BY_OTHER = "This flag is in review by another officer."
    PENDING_APPROVAL = "This flag has a decision waiting for a second officer."
    NO_PENDING = "This flag has no decision waiting for approval."
    SAME_OFFICER = "The decision must be approved by a second, different compliance officer."
    BAD_DECISION = "Unknown decision: use clear, escalate or restrict."
    WHITELIST_NOT_SCREENING = "Only a watch-list match can be whitelisted as a false match."
    WHITELIST_ONLY_ON_CLEAR = "A false match is whitelisted by clearing the flag."
    SEVERITY_FALLS = "A flag's severity may rise but never fall."


def _officer(user: AbstractBaseUser) -> None:
    if not (user.is_authenticated and has_role(user, COMPLIANCE_OFFICER)):
        raise ComplianceError(ComplianceError.NOT_OFFICER)


def _flag_state(flag: Flag) -> dict:
    return {
        "status": flag.status,
        "severity": flag.severity,
        "assigned_to": flag.assigned_to_id,
    }


def _raise_severity(flag: Flag, severity: int) -> None:
    if severity < flag.severity:
        raise ComplianceError(ComplianceError.SEVERITY_FALLS)
    flag.severity = severity


def queue(*, kind: str | None = None, severity: int | None = None, branch: str | None = None) -> QuerySet[Flag]:
    """Flags waiting for an officer: open or escalated, unassigned, in queue order."""
    flags = Flag.objects.filter(status__in=[FlagStatus.OPEN, FlagStatus.ESCALATED], assigned_to__isnull=True)
    if kind:
        flags = flags.filter(kind=kind)
    if severity:
        flags = flags.filter(severity=severity)
    if branch:
        flags = flags.filter(client__branch__code=branch)
    return flags.queue_order()


def flag_take_next(
    *, officer: AbstractBaseUser, kind: str | None = None, severity: int | None = None, branch: str | None = None
) -> Flag | None:
    """Assign the oldest flag of the highest severity in the queue to `officer` (status
    in_review); None when the queue is empty.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so two officers taking at the same time get
    different flags without waiting on each other. SQLite: the transaction takes the write lock
    when it begins (transaction_mode IMMEDIATE), so takers run one after the other. Either way
    the UPDATE is a compare-and-set on assigned_to IS NULL, checked by its row count.
    """
    _officer(officer)
    for _attempt in range(5):
        with transaction.atomic():
            flags = queue(kind=kind, severity=severity, branch=branch)
            if connection.features.has_select_for_update_skip_locked:
                flags = flags.select_for_update(skip_locked=True, of=("self",))
            flag = flags.first()
            if flag is None:
                return None
            now = timezone.now()
            taken = Flag.objects.filter(
                pk=flag.pk, assigned_to__isnull=True, status__in=[FlagStatus.OPEN, FlagStatus.ESCALATED]
            ).update(assigned_to=officer, assigned_at=now, status=FlagStatus.IN_REVIEW, updated_at=now)
            if not taken:
                continue  # someone else got it between the read and the write: try the next one
            previous_status = flag.status
            flag.refresh_from_db()
            audit.record(
                actor=officer,
                action=AuditAction.FLAG_TAKEN,
                object_type="flag",
                object_id=flag.pk,
                client=flag.client,
                old={"status": previous_status, "assigned_to": None},
                new=_flag_state(flag),
            )
            return flag
    return None


@dataclass(frozen=True)
class DecisionResult:
    flag: Flag
    decision: FlagDecision
    applied: bool  # False: waits for a second officer (four eyes)


def _needs_second_officer(flag: Flag, decision: str) -> bool:
    """Four eyes: clearing or restricting a high-severity flag. Escalating only adds scrutiny
    and applies at once."""
    return flag.severity >= Severity.HIGH and decision in (Decision.CLEAR, Decision.RESTRICT)


def flag_decide(
    *, flag: Flag, officer: AbstractBaseUser, decision: str, note: str, whitelist: bool = False
) -> DecisionResult:
    """Decide a flag: clear, escalate or restrict the account, with a mandatory note.

    High severity (clear / restrict): the decision is recorded as pending and the flag stays
    open (in review) until a second, different officer approves it (`flag_decision_approve`).
    `whitelist` (with clear, on a watch-list match) records the match as a confirmed false match
    for this client and entry when the decision is applied. Raises ComplianceError.
    """
    _officer(officer)
    note = (note or "").strip()
    if not note:
        raise ComplianceError(ComplianceError.NOTE_REQUIRED)
    if decision not in Decision.values:
        raise ComplianceError(ComplianceError.BAD_DECISION)
    if whitelist and decision != Decision.CLEAR:
        raise ComplianceError(ComplianceError.WHITELIST_ONLY_ON_CLEAR)
    with transaction.atomic():
        flag = Flag.objects.select_for_update().select_related("client").get(pk=flag.pk)
        if whitelist and not flag.subject.startswith("entry:"):
            raise ComplianceError(ComplianceError.WHITELIST_NOT_SCREENING)
        if flag.status not in ACTIVE_STATUSES:
            raise ComplianceError(ComplianceError.NOT_ACTIVE)
        if flag.assigned_to_id not in (None, officer.pk):
            raise ComplianceError(ComplianceError.TAKEN_BY_OTHER)
        if flag.decisions.filter(status=FlagDecision.Status.PENDING).exists():
            raise ComplianceError(ComplianceError.PENDING_APPROVAL)
        now = timezone.now()
        pending = _needs_second_officer(flag, decision)
        record = FlagDecision.objects.create(
            flag=flag,
            decision=decision,
            note=note,
            whitelist=whitelist,
            severity=flag.severity,
            status=FlagDecision.Status.PENDING if pending else FlagDecision.Status.APPLIED,
            decided_by=officer,
            decided_at=now,
        )
        old = _flag_state(flag)
        if pending:
            flag.status, flag.assigned_to, flag.assigned_at = FlagStatus.IN_REVIEW, officer, flag.assigned_at or now
            flag.updated_at = now
            flag.save(update_fields=["status", "assigned_to", "assigned_at", "updated_at"])
        audit.record(
            actor=officer,
            action=AuditAction.FLAG_DECIDED,
            object_type="flag_decision",
            object_id=record.pk,
            client=flag.client,
            old=old,
            new={"flag": flag.pk, "decision": decision, "whitelist": whitelist, "status": record.status},
            note=note,
        )
        if not pending:
            _apply(flag, record, by=officer, now=now)
    flag.refresh_from_db()
    return DecisionResult(flag=flag, decision=record, applied=not pending)


def _apply(flag: Flag, record: FlagDecision, *, by: AbstractBaseUser, now: dt.datetime) -> None:
    """Carry out a decision (already approved if it needed to be)."""
    old = _flag_state(flag)
    if record.decision == Decision.ESCALATE:
        _raise_severity(flag, min(Severity.HIGH, flag.severity + 1))
        flag.status, flag.assigned_to, flag.assigned_at = FlagStatus.ESCALATED, None, None
        action = AuditAction.FLAG_ESCALATED
    elif record.decision == Decision.CLEAR:
        flag.status, flag.closed_at, flag.closed_by = FlagStatus.CLEARED, now, by
        action = AuditAction.FLAG_CLEARED
    else:
        flag.status, flag.closed_at, flag.closed_by = FlagStatus.RESTRICTED, now, by
        action = AuditAction.FLAG_RESTRICTED
        client = Client.objects.select_for_update().get(pk=flag.client_id)
        if client.status == Client.Status.OPEN:
            client.status = Client.Status.RESTRICTED
            client.save(update_fields=["status", "updated_at"])
            audit.record(
                actor=by,
                action=AuditAction.CLIENT_RESTRICTED,
                object_type="client",
                object_id=client.pk,
                client=client,
                old={"status": Client.Status.OPEN},
                new={"status": Client.Status.RESTRICTED},
                note=f"Flag {flag.pk} ({flag.kind}): {record.note}",
            )
    flag.updated_at = now
    flag.save(
        update_fields=["severity", "status", "assigned_to", "assigned_at", "closed_at", "closed_by", "updated_at"]
    )
    if record.whitelist and record.decision == Decision.CLEAR:
        entry_id = int(flag.subject.split(":", 1)[1])
        whitelisted, created = ScreeningWhitelist.objects.get_or_create(
            client_id=flag.client_id,
            entry_id=entry_id,
            defaults={"reason": record.note, "decision": record, "created_by": record.decided_by},
        )
        if created:
            audit.record(
                actor=by,
                action=AuditAction.WHITELIST_ADDED,
                object_type="screening_whitelist",
                object_id=whitelisted.pk,
                client=flag.client,
                new={"entry": entry_id, "decision": record.pk},
                note=record.note,
            )
    audit.record(
        actor=by,
        action=action,
        object_type="flag",
        object_id=flag.pk,
        client=flag.client,
        old=old,
        new=_flag_state(flag),
        note=record.note,
    )


def _pending(flag: Flag) -> FlagDecision:
    record = flag.decisions.select_for_update().filter(status=FlagDecision.Status.PENDING).first()
    if record is None:
        raise ComplianceError(ComplianceError.NO_PENDING)
    return record


def flag_decision_approve(*, flag: Flag, officer: AbstractBaseUser, note: str = "") -> DecisionResult:
    """The second officer approves the pending decision, which is then applied. The officer who
    made the decision cannot approve it (also a database constraint). Raises ComplianceError."""
    _officer(officer)
    with transaction.atomic():
        flag = Flag.objects.select_for_update().select_related("client").get(pk=flag.pk)
        record = _pending(flag)
        if record.decided_by_id == officer.pk:
            raise ComplianceError(ComplianceError.SAME_OFFICER)
        now = timezone.now()
        record.status, record.reviewed_by, record.reviewed_at = FlagDecision.Status.APPLIED, officer, now
        record.review_note = (note or "").strip()
        try:
            with transaction.atomic():
                record.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        except IntegrityError:
            raise ComplianceError(ComplianceError.SAME_OFFICER) from None
        audit.record(
            actor=officer,
            action=AuditAction.FLAG_APPROVED,
            object_type="flag_decision",
            object_id=record.pk,
            client=flag.client,
            old={"status": FlagDecision.Status.PENDING},
            new={"status": record.status, "decided_by": record.decided_by_id},
            note=record.review_note,
        )
        _apply(flag, record, by=officer, now=now)
    flag.refresh_from_db()
    return DecisionResult(flag=flag, decision=record, applied=True)


def flag_decision_reject(*, flag: Flag, officer: AbstractBaseUser, note: str) -> DecisionResult:
    """The second officer rejects the pending decision: the flag stays open and goes back to the
    queue. Needs a note; the deciding officer cannot reject their own decision."""
    _officer(officer)
    note = (note or "").strip()
    if not note:
        raise ComplianceError(ComplianceError.NOTE_REQUIRED)
    with transaction.atomic():
        flag = Flag.objects.select_for_update().select_related("client").get(pk=flag.pk)
        record = _pending(flag)
        if record.decided_by_id == officer.pk:
            raise ComplianceError(ComplianceError.SAME_OFFICER)
        now = timezone.now()
        record.status, record.reviewed_by, record.reviewed_at, record.review_note = (
            FlagDecision.Status.REJECTED,
            officer,
            now,
            note,
        )
        record.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        old = _flag_state(flag)
        flag.status, flag.assigned_to, flag.assigned_at, flag.updated_at = FlagStatus.OPEN, None, None, now
        flag.save(update_fields=["status", "assigned_to", "assigned_at", "updated_at"])
        audit.record(
            actor=officer,
            action=AuditAction.FLAG_REJECTED,
            object_type="flag_decision",
            object_id=record.pk,
            client=flag.client,
            old=old,
            new={"decision_status": record.status, **_flag_state(flag)},
            note=note,
        )
    flag.refresh_from_db()
    return DecisionResult(flag=flag, decision=record, applied=False)


# --- Suitability gate ---------------------------------------------------------------------


class SuitabilityError(ValueError):
    """The record breaks the suitability rules; `field` names the offending input."""

    NO_ASSESSMENT = "The client has no risk assessment: assess the client before recommending or ordering."
    ASSESSMENT_EXPIRED = "The client's risk assessment expired on {expires_on}: reassess first."
    LOWEST_ABOVE_R1 = "A C1 (lowest risk tolerance) client may only be offered R1 products; a warning cannot waive it."
    WARNING_REQUIRED = "R{product} is above the client's C{client}: record the warning given to the client."
    ACK_REQUIRED = "R{product} is above the client's C{client}: record the client's acknowledgement (time and method)."
    ACK_BEFORE_WARNING = "The acknowledgement cannot be in the future."

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SuitabilityCheck:
    client_risk_level: int | None
    product_risk_level: int
    mismatch: bool
    allowed: bool  # False: C1 above R1, or no valid assessment
    reason: str


def suitability_check(*, client: Client, instrument: Instrument, on: dt.date | None = None) -> SuitabilityCheck:
    """Compare the client's C level (latest assessment on `on`, default today) with the
    product's R level."""
    day = on or timezone.localdate()
    latest = (
        RiskAssessment.objects.filter(client=client, assessed_on__lte=day)
        .order_by("-assessed_on")
        .values_list("risk_level", "expires_on")
        .first()
    )
    product = instrument.risk_level
    if latest is None:
        return SuitabilityCheck(None, product, True, False, SuitabilityError.NO_ASSESSMENT)
    level, expires_on = latest
    if expires_on < day:
        return SuitabilityCheck(
            level, product, product > level, False, SuitabilityError.ASSESSMENT_EXPIRED.format(expires_on=expires_on)
        )
    if level == 1 and product > 1:
        return SuitabilityCheck(level, product, True, False, SuitabilityError.LOWEST_ABOVE_R1)
    mismatch = product > level
    reason = (
        SuitabilityError.WARNING_REQUIRED.format(product=product, client=level) if mismatch else "Within the level."
    )
    return SuitabilityCheck(level, product, mismatch, True, reason)


def suitability_record(
    *,
    client: Client,
    instrument: Instrument,
    kind: str,
    by: AbstractBaseUser,
    warning_text: str = "",
    acknowledged_at: dt.datetime | None = None,
    acknowledgement_method: str = "",
    reference: str = "",
) -> SuitabilityRecord:
    """Record a recommendation or an order warning through the gate: a product above the
    client's level needs the warning text and the client's acknowledgement (both kept); a C1
    client above R1, or a client without a valid assessment, is refused. Audited.
    Raises SuitabilityError naming the field."""
    check = suitability_check(client=client, instrument=instrument)
    if not check.allowed:
        field = "instrument" if check.client_risk_level == 1 else "client_no"
        raise SuitabilityError(check.reason, field=field)
    warning_text = (warning_text or "").strip()
    levels = {"product": check.product_risk_level, "client": check.client_risk_level}
    if check.mismatch:
        if not warning_text:
            raise SuitabilityError(SuitabilityError.WARNING_REQUIRED.format(**levels), field="warning_text")
        if acknowledged_at is None or not acknowledgement_method:
            raise SuitabilityError(
                SuitabilityError.ACK_REQUIRED.format(**levels),
                field="acknowledged_at" if acknowledged_at is None else "acknowledgement_method",
            )
    now = timezone.now()
    if acknowledged_at is not None and acknowledged_at > now + dt.timedelta(minutes=5):
        raise SuitabilityError(SuitabilityError.ACK_BEFORE_WARNING, field="acknowledged_at")
    with transaction.atomic():
        record = SuitabilityRecord.objects.create(
            kind=kind,
            client=client,
            instrument=instrument,
            client_risk_level=check.client_risk_level,
            product_risk_level=check.product_risk_level,
            mismatch=check.mismatch,
            warning_text=warning_text,
            acknowledged_at=acknowledged_at if check.mismatch or acknowledged_at else None,
            acknowledgement_method=acknowledgement_method if (check.mismatch or acknowledged_at) else "",
            reference=reference,
            recorded_by=by,
            recorded_at=now,
        )
        audit.record(
            actor=by,
            action=AuditAction.SUITABILITY_RECORDED,
            object_type="suitability_record",
            object_id=record.pk,
            client=client,
            new={
                "kind": kind,
                "instrument": instrument.symbol,
                "client_risk_level": check.client_risk_level,
                "product_risk_level": check.product_risk_level,
                "mismatch": check.mismatch,
                "acknowledged_at": record.acknowledged_at,
                "acknowledgement_method": record.acknowledgement_method,
                "reference": reference,
            },
            note=warning_text,
        )
    return record


# --- Audit hooks used by other apps -----------------------------------------------------------

KYC_AUDITED_FIELDS = (
    "id_type",
    "id_number",
    "id_expiry",
    "nationality",
    "occupation",
    "income_band",
    "net_worth_band",
    "source_of_funds",
    "is_pep",
    "sanctions_status",
    "aml_risk",
    "verification_status",
    "last_review_on",
    "next_review_due",
)


def kyc_change(*, client: Client, kyc_id: int, old: dict, new: dict) -> audit.Change | None:
    """The audit entry of a KYC profile change (only the fields that changed; the ID number
    masked in the trail), or None when nothing audited changed."""
    from clients.models import mask_identifier

    changed = [name for name in KYC_AUDITED_FIELDS if old.get(name) != new.get(name)]
    if not changed:
        return None
    before = {name: old.get(name) for name in changed}
    after = {name: new.get(name) for name in changed}
    if "id_number" in changed:
        before["id_number"] = mask_identifier(before["id_number"] or "")
        after["id_number"] = mask_identifier(after["id_number"] or "")
    return audit.Change(
        action=AuditAction.KYC_CHANGED,
        object_type="kyc_profile",
        object_id=kyc_id,
        client=client,
        old=before,
        new=after,
    )


def kyc_change_audit(*, by: AbstractBaseUser, client: Client, kyc_id: int, old: dict, new: dict) -> None:
    """Audit one KYC profile change (see kyc_change)."""
    change = kyc_change(client=client, kyc_id=kyc_id, old=old, new=new)
    if change is not None:
        audit.record_many(actor=by, changes=[change])


def id_number_view_audit(*, by: AbstractBaseUser, clients: list[Client], where: str) -> None:
    """Audit that `by` was shown the unmasked ID numbers of `clients` (one entry per client)."""
    audit.record_many(
        actor=by,
        changes=[
            audit.Change(
                action=AuditAction.ID_NUMBER_VIEWED,
                object_type="client",
                object_id=client.pk,
                client=client,
                note=where,
            )
            for client in clients
        ],
    )
