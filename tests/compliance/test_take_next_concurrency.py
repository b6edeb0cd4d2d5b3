"""Two officers taking from the queue at the same moment, on two real PostgreSQL connections:
SKIP LOCKED hands them different flags, without one waiting for the other."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from compliance import services
from compliance.models import Flag, FlagKind, Severity
from tests.compliance.conftest import AS_OF

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _flags(client, n):
    now = timezone.now()
    return [
        Flag.objects.create(
            client=client,
            kind=FlagKind.SUITABILITY_MISMATCH,
            subject=f"instrument:{index}",
            severity=Severity.HIGH,
            first_seen_on=AS_OF,
            last_seen_on=AS_OF,
            raised_at=now - dt.timedelta(minutes=n - index),
            updated_at=now,
        )
        for index in range(n)
    ]


def test_two_officers_never_get_the_same_flag(cast):
    flags = _flags(cast.alice_client, 6)
    results: dict[str, list[int]] = {"carol": [], "dave": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def take(name, officer):
        try:
            barrier.wait(timeout=10)
            while (flag := services.flag_take_next(officer=officer)) is not None:
                results[name].append(flag.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=args) for args in (("carol", cast.carol), ("dave", cast.dave))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    taken = results["carol"] + results["dave"]
    assert sorted(taken) == sorted(flag.pk for flag in flags)  # every flag once, none twice
    assigned = dict(Flag.objects.values_list("pk", "assigned_to__username"))
    assert all(assigned[pk] == "compliance_carol" for pk in results["carol"])
    assert all(assigned[pk] == "compliance_dave" for pk in results["dave"])


def test_a_flag_locked_by_one_officer_is_skipped_not_waited_for(cast):
    first, second = _flags(cast.alice_client, 2)
    got: list[int | None] = []

    def other_officer():
        try:
            flag = services.flag_take_next(officer=cast.dave)
            got.append(flag.pk if flag else None)
        finally:
            connections.close_all()

    with transaction.atomic():
        # carol's transaction holds the oldest flag's row lock (as take-next does mid-way)
        Flag.objects.select_for_update().get(pk=first.pk)
        thread = threading.Thread(target=other_officer)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "take-next waited for the locked row instead of skipping it"

    assert got == [second.pk]
    assert connection.vendor == "postgresql"
