"""The tamper-evident audit trail.

`record(...)` appends one entry in the caller's transaction. Appends are serialised by a
row lock on the single AuditHead row (SELECT ... FOR UPDATE: PostgreSQL; SQLite has one
writer at a time anyway), so entries form one chain: entry n stores the hash of entry n-1
and its own hash = SHA-256(prev_hash + canonical JSON of its content). Changing any stored
field of any entry, deleting one, or cutting the tail off (the head keeps the last hash)
breaks the chain, and `verify_chain()` names the first entry that does not check out.

Values are stored as the same JSON that is hashed (dates as ISO strings, money as strings),
so what the database returns re-hashes to the same digest on any backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from compliance.models import AuditEntry, AuditHead

GENESIS = "0" * 64


class AuditAction:
    """The actions recorded, as constants the tests and readers can name."""

    FLAG_TAKEN = "flag.taken"
    FLAG_DECIDED = "flag.decided"
    FLAG_APPROVED = "flag.decision_approved"
    FLAG_REJECTED = "flag.decision_rejected"
    FLAG_ESCALATED = "flag.escalated"
    FLAG_CLEARED = "flag.cleared"
    FLAG_RESTRICTED = "flag.restricted"
    CLIENT_RESTRICTED = "client.restricted"
    WHITELIST_ADDED = "screening.whitelisted"
    WATCHLIST_LOADED = "watchlist.loaded"
    SUITABILITY_RECORDED = "suitability.recorded"
    NIGHTLY_FLAGS = "nightly.flags"
    TIER_OVERRIDE_CREATED = "tier_override.created"
    TIER_OVERRIDE_ENDED = "tier_override.ended"
    KYC_CHANGED = "kyc.changed"
    ID_NUMBER_VIEWED = "kyc.id_number_viewed"
    EXPORTED = "compliance.exported"


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: dates and datetimes as ISO strings, Decimals and floats as
    strings (a float read back from jsonb could print differently), models as their pk."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.astimezone(dt.UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "client_id": entry.client_id,
        "client_no": entry.client_no,
        "old": entry.old,
        "new": entry.new,
        "note": entry.note,
    }


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """SHA-256 (hex) of the previous hash and the entry's canonical JSON content."""
    payload = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One entry to append (see `record`)."""

    action: str
    object_type: str
    object_id: str | int = ""
    client: Any = None  # a Client, or None
    old: Any = None
    new: Any = None
    note: str = ""


def _actor(actor: AbstractBaseUser | AnonymousUser | str | None) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    if not actor.is_authenticated:
        return None, "anonymous"
    return actor.pk, actor.get_username()


def record(
    *,
    actor: AbstractBaseUser | AnonymousUser | str | None,
    action: str,
    object_type: str,
    object_id: str | int = "",
    client: Any = None,
    old: Any = None,
    new: Any = None,
    note: str = "",
) -> AuditEntry:
    """Append one entry (who, when, what, old -> new) to the chain; returns it.

    Runs in the caller's transaction (or its own): the entry commits or rolls back with the
    act it records. `actor` is a user, a process name, or None for "system".
    """
    change = Change(action, object_type, object_id, client, old, new, note)
    return record_many(actor=actor, changes=[change])[0]


def record_many(*, actor: AbstractBaseUser | AnonymousUser | str | None, changes: Iterable[Change]) -> list[AuditEntry]:
    """Append several entries by one actor in one go (one head lock, one bulk insert)."""
    actor_id, actor_name = _actor(actor)
    changes = list(changes)
    if not changes:
        return []
    with transaction.atomic():
        AuditHead.objects.get_or_create(id=1)
        head = AuditHead.objects.select_for_update().get(id=1)
        seq, prev = head.seq, head.hash
        now = timezone.now()
        entries = []
        for change in changes:
            seq += 1
            client = change.client
            entry = AuditEntry(
                seq=seq,
                at=now,
                actor_id=actor_id,
                actor_name=actor_name[:150],
                action=change.action,
                object_type=change.object_type,
                object_id=str(change.object_id)[:64],
                client_id=getattr(client, "pk", None),
                client_no=getattr(client, "client_no", "") or "",
                old=jsonable(change.old),
                new=jsonable(change.new),
                note=change.note or "",
            )
            entry.prev_hash = prev
            entry.hash = entry_hash(entry, prev)
            prev = entry.hash
            entries.append(entry)
        AuditEntry.objects.bulk_create(entries)
        AuditHead.objects.filter(id=1).update(seq=seq, hash=prev)
    return entries


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str = ""


def verify_chain(*, batch: int = 5000) -> ChainReport:
    """Recompute every entry's hash in order; the first entry whose sequence, link or hash is
    wrong is named. Also checks that the head points at the last entry (a cut tail)."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    queryset = AuditEntry.objects.order_by("seq")
    for entry in queryset.iterator(chunk_size=batch):
        count += 1
        if entry.seq != expected_seq:
            return ChainReport(False, count, expected_seq, f"entry #{expected_seq} is missing (found #{entry.seq})")
        if entry.prev_hash != prev:
            return ChainReport(False, count, entry.seq, f"entry #{entry.seq} does not link to the entry before it")
        if entry_hash(entry, prev) != entry.hash:
            return ChainReport(False, count, entry.seq, f"entry #{entry.seq} was changed after it was written")
        prev = entry.hash
        expected_seq += 1
        last_seq = entry.seq
    head = AuditHead.objects.filter(id=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != last_seq or head_hash != prev:
        return ChainReport(
            False, count, last_seq + 1, f"the head expects {head_seq} entries; entries after #{last_seq} are missing"
        )
    return ChainReport(True, count)
