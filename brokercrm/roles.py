"""The five roles of the CRM, as Django groups."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ACCOUNT_MANAGER = "account_manager"
TEAM_LEAD = "team_lead"
COMPLIANCE_OFFICER = "compliance_officer"
OPS = "ops"
API_SYSTEM = "api_system"

ALL_ROLES = (ACCOUNT_MANAGER, TEAM_LEAD, COMPLIANCE_OFFICER, OPS, API_SYSTEM)

# Roles whose work spans the whole client base.
FIRM_WIDE_ROLES = frozenset({COMPLIANCE_OFFICER, OPS, API_SYSTEM})


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The role names (group names) of `user`, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_brokercrm_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._brokercrm_roles = cached  # type: ignore[union-attr]
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
