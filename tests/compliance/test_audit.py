"""The audit trail: append-only (model, queryset, admin, PostgreSQL trigger) and
tamper-evident (verify_audit_chain names the first broken entry)."""

import itertools

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import RequestFactory

from compliance import audit
from compliance.models import AuditEntry, AuditHead, ImmutableError
from tests import factories

pytestmark = pytest.mark.django_db


def write_chain(cast, n=5):
    for index in range(n):
        audit.record(
            actor=cast.carol,
            action="test.action",
            object_type="thing",
            object_id=index,
            client=cast.alice_client,
            old={"amount": "1.50", "n": index},
            new={"amount": "2.50", "when": "2026-01-01"},
            note=f"entry {index}",
        )


def table() -> str:
    return connection.ops.quote_name(AuditEntry._meta.db_table)


def test_entries_link_into_a_chain_that_verifies(cast, capsys):
    write_chain(cast)

    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[0].actor_name == "compliance_carol"
    assert entries[0].client_no == cast.alice_client.client_no
    assert AuditHead.objects.get().hash == entries[-1].hash
    call_command("verify_audit_chain")
    assert "intact: 5 entries" in capsys.readouterr().out


def test_entries_cannot_be_changed_or_deleted_through_the_application(cast):
    write_chain(cast, 1)
    entry = AuditEntry.objects.get()

    entry.note = "edited"
    with pytest.raises(ImmutableError):
        entry.save()
    with pytest.raises(ImmutableError):
        entry.delete()
    with pytest.raises(ImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).update(note="edited")
    with pytest.raises(ImmutableError):
        AuditEntry.objects.all().delete()

    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[AuditEntry]
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert model_admin.get_actions(request) == {}


@pytest.mark.postgres
def test_postgresql_trigger_refuses_raw_update_and_delete(cast):
    write_chain(cast, 2)

    for statement in (f"UPDATE {table()} SET note = 'x'", f"DELETE FROM {table()}"):  # noqa: S608
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEntry.objects.count() == 2


def _tamper(sql: str, params: list) -> None:
    """Change entries behind the application's back (on PostgreSQL the trigger is disabled for
    the statement, as a superuser could)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table()} DISABLE TRIGGER compliance_auditentry_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table()} ENABLE TRIGGER compliance_auditentry_append_only")


def test_verify_names_the_first_changed_entry(cast):
    write_chain(cast)

    _tamper(f"UPDATE {table()} SET note = %s WHERE seq = %s", ["quietly edited", 3])  # noqa: S608

    report = audit.verify_chain()
    assert (report.ok, report.first_broken_seq) == (False, 3)
    assert "changed after it was written" in report.reason
    with pytest.raises(CommandError, match="BROKEN at entry #3"):
        call_command("verify_audit_chain")


def test_verify_detects_a_changed_json_value(cast):
    write_chain(cast)
    entry = AuditEntry.objects.get(seq=2)
    tampered = '{"amount": "9.99", "n": 1}'

    _tamper(f"UPDATE {table()} SET old = %s WHERE seq = %s", [tampered, entry.seq])  # noqa: S608

    assert audit.verify_chain().first_broken_seq == 2


def test_verify_detects_a_deleted_entry_and_a_cut_tail(cast):
    write_chain(cast)

    _tamper(f"DELETE FROM {table()} WHERE seq = %s", [5])  # noqa: S608
    tail = audit.verify_chain()
    _tamper(f"DELETE FROM {table()} WHERE seq = %s", [2])  # noqa: S608
    middle = audit.verify_chain()

    assert (tail.ok, tail.first_broken_seq) == (False, 5)
    assert (middle.ok, middle.first_broken_seq) == (False, 2)
    assert "missing" in middle.reason
