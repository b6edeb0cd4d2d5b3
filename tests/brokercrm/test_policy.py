"""The one permission policy: who sees which clients, and what a related queryset keeps."""

import pytest
from django.contrib.auth.models import Group
from django.http import Http404

from brokercrm import policy, roles
from clients.models import Client, Trade
from tests import factories

pytestmark = pytest.mark.django_db


def _names(user: object) -> set[str]:
    return set(policy.visible_clients(user).values_list("name", flat=True))


def test_account_manager_sees_only_own_book(cast) -> None:
    assert _names(cast.alice.user) == {"Alice's client"}
    assert _names(cast.bob.user) == {"Bob's client"}


def test_team_lead_sees_the_team_books_only(cast) -> None:
    assert _names(cast.tina) == {"Alice's client", "Bob's client"}


@pytest.mark.parametrize("who", ["carol", "dave", "olga", "system"])
def test_firm_wide_roles_see_every_client(cast, who: str) -> None:
    assert _names(getattr(cast, who)) == {"Alice's client", "Bob's client", "Mike's client"}


def test_user_without_a_role_sees_nothing(cast) -> None:
    nobody = factories.UserFactory(username="nobody")
    assert _names(nobody) == set()


def test_superuser_sees_every_client(cast) -> None:
    root = factories.UserFactory(username="root", is_superuser=True)
    assert policy.visible_clients(root).count() == 3


def test_related_rows_follow_the_client_scope(cast) -> None:
    mine = factories.TradeFactory(client=cast.alice_client)
    factories.TradeFactory(client=cast.bob_client)
    visible = policy.scope_queryset(cast.alice.user, Trade.objects.all(), prefix="client__")
    assert list(visible) == [mine]


def test_out_of_scope_lookup_is_a_404_not_a_403(cast) -> None:
    with pytest.raises(Http404):
        policy.get_visible_or_404(cast.alice.user, Client.objects.all(), pk=cast.bob_client.pk)
    found = policy.get_visible_or_404(cast.alice.user, Client.objects.all(), pk=cast.alice_client.pk)
    assert found == cast.alice_client


def test_manager_who_is_also_a_lead_sees_both(cast) -> None:
    cast.mike.team.lead = cast.alice.user
    cast.mike.team.save()
    cast.alice.user.groups.add(Group.objects.get(name=roles.TEAM_LEAD))
    fresh = type(cast.alice.user).objects.get(pk=cast.alice.user.pk)  # roles are cached per user object
    assert _names(fresh) == {"Alice's client", "Mike's client"}
