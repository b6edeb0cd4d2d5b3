"""Demo users, role groups and the ops group's admin permissions. Idempotent.

The named cast (the same names the test suite uses):
  am_alice, am_bob      account managers with separate books in one team
  lead_tina             that team's lead (Team.lead)
  compliance_carol/dave compliance officers
  ops_olga              ops staff (is_staff, Django admin)
  system_api            the back-office integration (API token)
The other account managers and team leads get generated usernames (am_0003, lead_002 ...).
Everyone gets the demo password from DEMO_PASSWORD (default "brokercrm-demo").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from brokercrm import roles
from brokercrm.services import roles_ensure
from clients.demo import reference

DEFAULT_DEMO_PASSWORD = "brokercrm-demo"  # noqa: S105 - the documented demo password; set DEMO_PASSWORD


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: str
    first_name: str
    last_name: str
    is_staff: bool = False


NAMED_USERS = (
    UserSpec("am_alice", roles.ACCOUNT_MANAGER, "Alice", "Wang"),
    UserSpec("am_bob", roles.ACCOUNT_MANAGER, "Bob", "Li"),
    UserSpec("lead_tina", roles.TEAM_LEAD, "Tina", "Zhang"),
    UserSpec("compliance_carol", roles.COMPLIANCE_OFFICER, "Carol", "Chen"),
    UserSpec("compliance_dave", roles.COMPLIANCE_OFFICER, "Dave", "Zhou"),
    UserSpec("ops_olga", roles.OPS, "Olga", "Sun", is_staff=True),
    UserSpec("system_api", roles.API_SYSTEM, "System", "API"),
)


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "").strip() or DEFAULT_DEMO_PASSWORD


def manager_username(index: int) -> str:
    """Account manager number `index` (0-based): alice, bob, then am_0003, am_0004 ..."""
    return ("am_alice", "am_bob")[index] if index < 2 else f"am_{index + 1:04d}"


def team_lead_username(index: int) -> str:
    return "lead_tina" if index == 0 else f"lead_{index + 1:03d}"


def _generated_names(count: int, salt: int) -> list[tuple[str, str]]:
    """Chinese (given, family) names, the same on every run."""
    rng = np.random.Generator(np.random.PCG64([reference.UNIVERSE_SEED, salt]))
    weights = reference.SURNAME_WEIGHTS / reference.SURNAME_WEIGHTS.sum()
    family = reference.SURNAMES[rng.choice(len(reference.SURNAMES), count, p=weights)]
    given = reference.GIVEN_CHARS[rng.integers(0, len(reference.GIVEN_CHARS), (count, 2))]
    return [(str(a) + str(b), str(f)) for (a, b), f in zip(given.tolist(), family.tolist(), strict=True)]


def ensure_groups() -> dict[str, Group]:
    """The five role groups with their permissions (see brokercrm.services.roles_ensure)."""
    return roles_ensure()


def ensure_users(*, manager_count: int, team_count: int, password: str) -> dict[str, int]:
    """Create or update the named cast, `manager_count` account managers and `team_count`
    team leads; every one gets `password` and their role group. Returns username -> id."""
    specs = list(NAMED_USERS)
    manager_names = _generated_names(manager_count, 1)
    for index in range(2, manager_count):
        first, last = manager_names[index]
        specs.append(UserSpec(manager_username(index), roles.ACCOUNT_MANAGER, first, last))
    lead_names = _generated_names(team_count, 2)
    for index in range(1, team_count):
        first, last = lead_names[index]
        specs.append(UserSpec(team_lead_username(index), roles.TEAM_LEAD, first, last))

    user_model = get_user_model()
    hashed = make_password(password)  # one hash for all: hashing thousands would take minutes
    usernames = [spec.username for spec in specs]
    existing = set(user_model.objects.filter(username__in=usernames).values_list("username", flat=True))
    user_model.objects.bulk_create(
        [
            user_model(
                username=spec.username,
                first_name=spec.first_name,
                last_name=spec.last_name,
                is_staff=spec.is_staff,
                password=hashed,
            )
            for spec in specs
            if spec.username not in existing
        ],
        batch_size=1000,
    )
    user_model.objects.filter(username__in=usernames).update(password=hashed, is_active=True)
    user_model.objects.filter(username__in=[s.username for s in NAMED_USERS if s.is_staff]).update(is_staff=True)
    ids = dict(user_model.objects.filter(username__in=usernames).values_list("username", "id"))

    groups = ensure_groups()
    membership = user_model.groups.through
    membership.objects.bulk_create(
        [membership(user_id=ids[spec.username], group_id=groups[spec.role].id) for spec in specs],
        batch_size=1000,
        ignore_conflicts=True,
    )
    return ids


def ensure_api_token(username: str = "system_api") -> str:
    """The DRF token of the API system user (created once, then kept)."""
    user = get_user_model().objects.get(username=username)
    return Token.objects.get_or_create(user=user)[0].key


def named_logins() -> list[tuple[str, str]]:
    """(username, role) of the named cast, for printing."""
    return [(spec.username, spec.role) for spec in NAMED_USERS]


def login_lines(*, password: str, api_token: str, url: str = "http://127.0.0.1:8000/") -> list[str]:
    """The demo logins as printable lines: who to sign in as, with which password, where."""
    lines = [f"Demo logins at {url} (password for all: {password}):"]
    lines += [f"  {username:<18} {role}" for username, role in named_logins()]
    lines.append(f"API token of system_api: {api_token}  (header 'Authorization: Token <token>')")
    return lines
