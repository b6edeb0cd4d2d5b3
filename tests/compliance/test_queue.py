"""The review queue: take next, decisions with a note, severity only rising, four eyes,
restricting the account."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from clients.models import Client
from compliance import services
from compliance.models import AuditEntry, Flag, FlagDecision, FlagKind, FlagStatus, Severity
from compliance.services import ComplianceError
from tests.compliance.conftest import AS_OF

pytestmark = pytest.mark.django_db


def make_flag(client, kind=FlagKind.PEP, severity=Severity.MEDIUM, raised_days_ago=1, subject="kyc"):
    now = timezone.now() - dt.timedelta(days=raised_days_ago)
    return Flag.objects.create(
        client=client,
        kind=kind,
        subject=subject,
        severity=severity,
        first_seen_on=AS_OF,
        last_seen_on=AS_OF,
        raised_at=now,
        updated_at=now,
    )


def test_take_next_gives_the_highest_severity_then_the_oldest(cast):
    old_low = make_flag(cast.alice_client, severity=Severity.LOW, raised_days_ago=30, subject="a")
    new_high = make_flag(cast.bob_client, severity=Severity.HIGH, raised_days_ago=1, subject="b")
    old_high = make_flag(cast.mike_client, severity=Severity.HIGH, raised_days_ago=5, subject="c")

    taken = [services.flag_take_next(officer=cast.carol) for _ in range(4)]

    assert [flag.pk if flag else None for flag in taken] == [old_high.pk, new_high.pk, old_low.pk, None]
    assert all(flag.status == FlagStatus.IN_REVIEW and flag.assigned_to == cast.carol for flag in taken[:3])
    assert AuditEntry.objects.filter(action="flag.taken").count() == 3


def test_take_next_filters_by_kind_severity_and_branch(cast):
    make_flag(cast.alice_client, kind=FlagKind.PEP)
    sanction = make_flag(cast.bob_client, kind=FlagKind.SANCTIONS, severity=Severity.HIGH, subject="kyc:x")

    assert services.flag_take_next(officer=cast.carol, kind=FlagKind.SANCTIONS).pk == sanction.pk
    assert services.flag_take_next(officer=cast.carol, severity=Severity.HIGH) is None
    assert services.flag_take_next(officer=cast.carol, branch="NOPE") is None


def test_only_compliance_officers_take_and_decide(cast):
    flag = make_flag(cast.alice_client)

    for user in (cast.alice.user, cast.tina, cast.olga, cast.system):
        with pytest.raises(ComplianceError, match="Only compliance officers"):
            services.flag_take_next(officer=user)
        with pytest.raises(ComplianceError, match="Only compliance officers"):
            services.flag_decide(flag=flag, officer=user, decision="clear", note="x")


def test_a_decision_needs_a_note_and_a_flag_taken_by_another_officer_is_refused(cast):
    flag = make_flag(cast.alice_client)
    services.flag_take_next(officer=cast.carol)

    with pytest.raises(ComplianceError, match="needs a note"):
        services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="   ")
    with pytest.raises(ComplianceError, match="another officer"):
        services.flag_decide(flag=flag, officer=cast.dave, decision="clear", note="Fine.")


def test_medium_clear_applies_at_once_and_is_audited(cast):
    flag = make_flag(cast.alice_client)

    result = services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="EDD done, documented.")

    assert result.applied
    assert (result.flag.status, result.flag.closed_by) == (FlagStatus.CLEARED, cast.carol)
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["flag.decided", "flag.cleared"]
    with pytest.raises(ComplianceError, match="closed"):
        services.flag_decide(flag=flag, officer=cast.carol, decision="escalate", note="again")


def test_escalate_raises_severity_and_returns_the_flag_to_the_queue(cast):
    flag = make_flag(cast.alice_client, severity=Severity.MEDIUM)
    services.flag_take_next(officer=cast.carol)

    result = services.flag_decide(flag=flag, officer=cast.carol, decision="escalate", note="Needs the MLRO.")

    assert result.applied
    assert (result.flag.severity, result.flag.status, result.flag.assigned_to) == (
        Severity.HIGH,
        FlagStatus.ESCALATED,
        None,
    )
    assert services.flag_take_next(officer=cast.dave).pk == flag.pk


def test_four_eyes_high_severity_waits_for_a_second_different_officer(cast):
    flag = make_flag(cast.alice_client, kind=FlagKind.SANCTIONS, severity=Severity.HIGH, subject="kyc:confirmed")
    services.flag_take_next(officer=cast.carol)

    pending = services.flag_decide(flag=flag, officer=cast.carol, decision="restrict", note="Confirmed match.")

    assert not pending.applied
    assert pending.flag.status == FlagStatus.IN_REVIEW  # still open
    assert Client.objects.get(pk=cast.alice_client.pk).status == Client.Status.OPEN
    # the same officer cannot approve, nor decide again meanwhile
    with pytest.raises(ComplianceError, match="second, different"):
        services.flag_decision_approve(flag=flag, officer=cast.carol)
    with pytest.raises(ComplianceError, match="waiting for a second officer"):
        services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="changed my mind")

    approved = services.flag_decision_approve(flag=flag, officer=cast.dave, note="Agree.")

    assert approved.applied
    assert approved.flag.status == FlagStatus.RESTRICTED
    assert Client.objects.get(pk=cast.alice_client.pk).status == Client.Status.RESTRICTED
    decision = FlagDecision.objects.get(flag=flag)
    assert (decision.status, decision.decided_by, decision.reviewed_by) == ("applied", cast.carol, cast.dave)
    # approving twice: nothing is pending any more
    with pytest.raises(ComplianceError, match="no decision waiting"):
        services.flag_decision_approve(flag=flag, officer=cast.dave)
    assert "client.restricted" in set(AuditEntry.objects.values_list("action", flat=True))


def test_a_rejected_decision_returns_the_flag_to_the_queue(cast):
    flag = make_flag(cast.alice_client, severity=Severity.HIGH)
    services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="Looks fine.")

    with pytest.raises(ComplianceError, match="second, different"):
        services.flag_decision_reject(flag=flag, officer=cast.carol, note="no")
    result = services.flag_decision_reject(flag=flag, officer=cast.dave, note="Source of funds not documented.")

    assert (result.flag.status, result.flag.assigned_to) == (FlagStatus.OPEN, None)
    assert result.decision.status == FlagDecision.Status.REJECTED


def test_the_database_refuses_the_same_officer_as_approver(cast):
    flag = make_flag(cast.alice_client, severity=Severity.HIGH)
    result = services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="x")

    with pytest.raises(IntegrityError), transaction.atomic():
        FlagDecision.objects.filter(pk=result.decision.pk).update(reviewed_by=cast.carol)


def test_severity_never_falls_in_code_and_in_the_database(cast):
    flag = make_flag(cast.alice_client, severity=Severity.HIGH)

    with pytest.raises(ComplianceError, match="never fall"):
        services._raise_severity(flag, Severity.LOW)
    with pytest.raises(Exception, match="never fall") as caught, transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(severity=Severity.LOW)
    assert caught.type.__module__.startswith(("django.db", "psycopg", "sqlite3"))
    Flag.objects.filter(pk=flag.pk).update(severity=Severity.HIGH)  # the same value is fine
    assert Flag.objects.get(pk=flag.pk).severity == Severity.HIGH
    assert connection.vendor in ("sqlite", "postgresql")


def test_a_flag_is_never_active_twice_for_the_same_subject(cast):
    make_flag(cast.alice_client)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_flag(cast.alice_client)
