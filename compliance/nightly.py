"""The nightly compliance stage: screen, evaluate every rule, upsert the flags.

1. Screening (compliance.screening) replaces the matches of the clients that need it.
2. In ONE transaction: the rules (compliance.rules) produce candidates; they are staged in
   FlagCandidate and merged into Flag by one INSERT ... SELECT ... ON CONFLICT on the
   partial unique index of active flags:
   - an active flag with the same (client, kind, subject) gets the new evidence, its severity
     raised if the new one is higher (never lowered), its event count increased and its
     last_seen_on moved; it is never raised twice;
   - a closed flag with the same identity suppresses the candidate, unless the candidate's
     newest fact (evidence_at) is later than the closure (new trades, a new deposit series);
   - anything else opens a new flag.
   The suitability watermark (last trade id read) moves in the same transaction, so a
   crash leaves flags and watermark consistent, and re-running a date adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from brokercrm.nightly import StageContext, StageResult
from brokercrm.nightly.bulk import session_work_mem
from clients.models import Trade
from compliance import audit
from compliance.models import ACTIVE_STATUSES, CLOSED_STATUSES, ComplianceMark, Flag, FlagCandidate
from compliance.rules import RULES, CandidateRow, Window
from compliance.screening import screen_clients

SUITABILITY_MARK = "suitability_trades"


def settled_max_trade_id() -> int:
    """The highest trade id below which every trade is committed (see segmentation/rollup.py:
    ids come from a sequence, so a transaction holding a lower id may commit later; a short
    SHARE lock on PostgreSQL waits for the writers in flight)."""
    table = connection.ops.quote_name(Trade._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            seconds = int(getattr(settings, "ROLLUP_LOCK_TIMEOUT_SECONDS", 60))
            cursor.execute(f"SET LOCAL lock_timeout = '{seconds}s'")
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        return int(cursor.fetchone()[0])


def _merge(rows: list[CandidateRow]) -> list[CandidateRow]:
    """One candidate per (client, kind, subject): the highest severity, events added."""
    merged: dict[tuple[int, str, str], CandidateRow] = {}
    for row in rows:
        key = (row.client_id, str(row.kind), row.subject)
        current = merged.get(key)
        if current is None:
            merged[key] = row
            continue
        if row.severity > current.severity:
            current.severity, current.evidence = row.severity, row.evidence
        current.events += row.events
        if row.evidence_at and (current.evidence_at is None or row.evidence_at > current.evidence_at):
            current.evidence_at = row.evidence_at
    return list(merged.values())


def _upsert_sql() -> str:
    q = connection.ops.quote_name
    flag, candidate = q(Flag._meta.db_table), q(FlagCandidate._meta.db_table)
    active = ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
    closed = ", ".join(f"'{status}'" for status in CLOSED_STATUSES)
    return (
        f"INSERT INTO {flag} (client_id, kind, subject, severity, status, evidence, events, "  # noqa: S608
        "first_seen_on, last_seen_on, raised_at, updated_at) "
        "SELECT c.client_id, c.kind, c.subject, c.severity, 'open', c.evidence, c.events, %s, %s, %s, %s "
        f"FROM {candidate} c WHERE c.generation = %s AND NOT EXISTS ("
        f"SELECT 1 FROM {flag} f WHERE f.client_id = c.client_id AND f.kind = c.kind "
        f"AND f.subject = c.subject AND f.status IN ({closed}) "
        "AND (c.evidence_at IS NULL OR f.closed_at >= c.evidence_at)) "
        f"ON CONFLICT (client_id, kind, subject) WHERE status IN ({active}) DO UPDATE SET "
        "evidence = excluded.evidence, "
        f"severity = CASE WHEN excluded.severity > {flag}.severity THEN excluded.severity ELSE {flag}.severity END, "
        f"events = {flag}.events + excluded.events, "
        "last_seen_on = excluded.last_seen_on, "
        "updated_at = excluded.updated_at"
    )


def flags_evaluate(*, as_of: dt.date, generation: int, screen: bool = True) -> StageResult:
    """Screen, run every rule for `as_of` and upsert the flags; returns counts per kind."""
    screening = screen_clients() if screen else None
    now = timezone.now()
    top = settled_max_trade_id()
    with session_work_mem(), transaction.atomic():
        ComplianceMark.objects.get_or_create(name=SUITABILITY_MARK)
        mark = ComplianceMark.objects.select_for_update().get(name=SUITABILITY_MARK)
        if mark.value > top:
            # The ledger was emptied and refilled (a demo reset): ids start again, read afresh.
            mark.value, mark.at = 0, None
        window = Window(as_of=as_of, trade_id_from=mark.value, trade_id_to=top)
        window.first_run = mark.at is None
        rows: list[CandidateRow] = []
        for rule in RULES:
            rows.extend(rule(window))
        rows = _merge(rows)
        FlagCandidate.objects.filter(generation=generation).delete()
        FlagCandidate.objects.bulk_create(
            (
                FlagCandidate(
                    generation=generation,
                    client_id=row.client_id,
                    kind=row.kind,
                    subject=row.subject,
                    severity=row.severity,
                    evidence=row.evidence,
                    evidence_at=row.evidence_at,
                    events=row.events,
                )
                for row in rows
            ),
            batch_size=2000,
        )
        last_id = Flag.objects.order_by("-id").values_list("id", flat=True).first() or 0
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(), [as_of, as_of, now, now, generation])
        FlagCandidate.objects.filter(generation=generation).delete()
        ComplianceMark.objects.filter(name=SUITABILITY_MARK).update(
            value=window.trade_id_to, at=now, detail={"as_of": as_of.isoformat()}
        )
        raised = dict(
            Flag.objects.filter(id__gt=last_id).values("kind").annotate(n=Count("id")).values_list("kind", "n")
        )
        active = dict(Flag.objects.active().values("kind").annotate(n=Count("id")).order_by().values_list("kind", "n"))
        detail = {
            "as_of": as_of.isoformat(),
            "candidates": dict(Counter(str(row.kind) for row in rows)),
            "raised": raised,
            "active": active,
            "trades_read": [window.trade_id_from, window.trade_id_to],
            "screening": None
            if screening is None
            else {"screened": screening.screened, "matches": screening.matches, "full": screening.full},
        }
        audit.record(
            actor="nightly",
            action=audit.AuditAction.NIGHTLY_FLAGS,
            object_type="nightly_run",
            object_id=as_of.isoformat(),
            new={"raised": raised, "candidates": detail["candidates"]},
        )
    return StageResult(rows=sum(raised.values()), detail=detail)


def compliance_stage(ctx: StageContext) -> StageResult:
    return flags_evaluate(as_of=ctx.as_of, generation=ctx.stage_run_id)
