"""ensure_roles: the role groups exist on any deployment, and ops can work in admin."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from brokercrm import roles
from tests import factories

pytestmark = pytest.mark.django_db


def _codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_creates_the_five_groups_and_is_idempotent() -> None:
    call_command("ensure_roles", stdout=StringIO())
    first = _codenames(roles.OPS)
    call_command("ensure_roles", stdout=StringIO())
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ALL_ROLES)
    assert _codenames(roles.OPS) == first


def test_ops_edits_reference_data_but_only_views_the_ledger() -> None:
    call_command("ensure_roles", stdout=StringIO())
    ops = _codenames(roles.OPS)
    assert {"change_client", "add_instrument", "change_tieroverride", "view_nightlyrun"} <= ops
    assert {"view_trade", "view_cashflow", "view_assetsnapshot"} <= ops
    assert not {"change_trade", "add_trade", "delete_trade", "delete_client", "change_user"} & ops


def test_an_ops_user_can_open_the_client_changelist(client) -> None:
    call_command("ensure_roles", stdout=StringIO())
    olga = factories.UserFactory(username="ops_olga", is_staff=True, roles=[roles.OPS])
    client.force_login(olga)
    assert client.get("/admin/clients/client/").status_code == 200
    assert client.get("/admin/clients/trade/add/").status_code == 403
