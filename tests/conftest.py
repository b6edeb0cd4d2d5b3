"""Shared fixtures: the named cast used by permission tests across the suite.

Two account managers in one team (alice, bob), their team lead (tina), a manager in
another team (mike), two compliance officers, an ops user and an API system user.
"""

from dataclasses import dataclass

import pytest
from django.conf import settings

from brokercrm import roles
from clients.models import AccountManager, Client, Team
from tests import factories


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@dataclass
class Cast:
    team: Team
    other_team: Team
    alice: AccountManager
    bob: AccountManager
    mike: AccountManager
    tina: object
    carol: object
    dave: object
    olga: object
    system: object
    alice_client: Client
    bob_client: Client
    mike_client: Client


@pytest.fixture
def cast(db: None) -> Cast:
    branch = factories.BranchFactory(code="SH01", name="Shanghai Lujiazui")
    tina = factories.UserFactory(username="lead_tina", roles=[roles.TEAM_LEAD])
    team = factories.TeamFactory(branch=branch, name="Lujiazui A", lead=tina)
    other_team = factories.TeamFactory(branch=branch, name="Lujiazui B")
    alice = factories.AccountManagerFactory(
        user=factories.UserFactory(username="am_alice", roles=[roles.ACCOUNT_MANAGER]), team=team
    )
    bob = factories.AccountManagerFactory(
        user=factories.UserFactory(username="am_bob", roles=[roles.ACCOUNT_MANAGER]), team=team
    )
    mike = factories.AccountManagerFactory(
        user=factories.UserFactory(username="am_mike", roles=[roles.ACCOUNT_MANAGER]), team=other_team
    )
    return Cast(
        team=team,
        other_team=other_team,
        alice=alice,
        bob=bob,
        mike=mike,
        tina=tina,
        carol=factories.UserFactory(username="compliance_carol", roles=[roles.COMPLIANCE_OFFICER]),
        dave=factories.UserFactory(username="compliance_dave", roles=[roles.COMPLIANCE_OFFICER]),
        olga=factories.UserFactory(username="ops_olga", roles=[roles.OPS], is_staff=True),
        system=factories.UserFactory(username="system_api", roles=[roles.API_SYSTEM]),
        alice_client=factories.ClientFactory(account_manager=alice, name="Alice's client"),
        bob_client=factories.ClientFactory(account_manager=bob, name="Bob's client"),
        mike_client=factories.ClientFactory(account_manager=mike, name="Mike's client"),
    )
