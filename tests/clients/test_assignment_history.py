"""Assignment history: database triggers record every client's manager and branch over time,
whatever writes the client (ORM save, queryset update, raw SQL)."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from clients.models import Client, ClientAssignment
from tests import factories

pytestmark = pytest.mark.django_db


def history(client: Client) -> list[tuple]:
    return list(
        ClientAssignment.objects.filter(client=client)
        .order_by("id")
        .values_list("account_manager_id", "branch_id", "valid_from", "valid_to")
    )


def test_a_new_client_gets_one_current_row_since_before_the_history():
    client = factories.ClientFactory()

    assert history(client) == [(client.account_manager_id, client.branch_id, None, None)]


def test_a_reassignment_closes_the_current_row_and_opens_a_new_one():
    client = factories.ClientFactory()
    old_manager, old_branch = client.account_manager_id, client.branch_id
    other = factories.AccountManagerFactory()
    before = timezone.now() - dt.timedelta(seconds=1)

    client.account_manager = other
    client.branch = other.team.branch
    client.save()

    rows = history(client)
    assert len(rows) == 2
    assert rows[0][:3] == (old_manager, old_branch, None)
    assert rows[1][:2] == (other.pk, other.team.branch_id)
    assert rows[1][3] is None
    assert rows[0][3] == rows[1][2]  # closed when the new one opens
    assert rows[1][2] >= before


def test_saving_without_a_change_and_other_fields_add_nothing():
    client = factories.ClientFactory()

    client.name = "Renamed"
    client.save()
    Client.objects.filter(pk=client.pk).update(phone="13800000000")

    assert len(history(client)) == 1


def test_a_queryset_update_and_raw_sql_are_recorded_too():
    client = factories.ClientFactory()
    a, b = factories.AccountManagerFactory(), factories.AccountManagerFactory()

    Client.objects.filter(pk=client.pk).update(account_manager=a)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clients_client SET account_manager_id = %s WHERE id = %s", [b.pk, client.pk])
    Client.objects.filter(pk=client.pk).update(account_manager=None)

    managers = [row[0] for row in history(client)]
    assert managers == [client.account_manager_id, a.pk, b.pk, None]
    assert ClientAssignment.objects.filter(client=client, valid_to__isnull=True).count() == 1


def test_the_rows_are_deleted_with_the_client():
    client = factories.ClientFactory()
    pk = client.pk

    client.delete()

    assert not ClientAssignment.objects.filter(client_id=pk).exists()
