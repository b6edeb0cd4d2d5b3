"""The one permission policy: which clients a user may see.

Admin, pages and the API all ask this module; none of them filters clients by itself.

- account manager: the clients they manage (their book);
- team lead: the books of the teams they lead;
- compliance officer, ops, API system (and superusers): every client;
- anyone else: no client.

A client outside a user's scope does not exist for that user: lookups answer 404,
never 403, so the API does not confirm that another manager's client number is real.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, Q, QuerySet
from django.http import Http404

from brokercrm.roles import ACCOUNT_MANAGER, FIRM_WIDE_ROLES, TEAM_LEAD, user_roles

User = AbstractBaseUser | AnonymousUser

_NOTHING = Q(pk__in=[])


def sees_all_clients(user: User) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user_roles(user) & FIRM_WIDE_ROLES))


def client_scope(user: User, *, prefix: str = "") -> Q | None:
    """A filter restricting a queryset to the clients `user` may see.

    `prefix` is the path from the queried model to the client ("" for Client itself,
    "client__" for trades, cash flows ...). Returns None when the user sees every client,
    so callers add no join at all for firm-wide roles.
    """
    if sees_all_clients(user):
        return None
    roles = user_roles(user)
    scope = _NOTHING
    if ACCOUNT_MANAGER in roles:
        scope |= Q(**{f"{prefix}account_manager__user": user})
    if TEAM_LEAD in roles:
        scope |= Q(**{f"{prefix}account_manager__team__lead": user})
    return scope


def scope_queryset(user: User, queryset: QuerySet, *, prefix: str = "") -> QuerySet:
    """`queryset` limited to rows whose client `user` may see."""
    scope = client_scope(user, prefix=prefix)
    if scope is None:
        return queryset
    if scope == _NOTHING:
        return queryset.none()
    return queryset.filter(scope)


def visible_clients(user: User) -> QuerySet:
    """The clients `user` may see."""
    from clients.models import Client

    return scope_queryset(user, Client.objects.all())


def get_visible_or_404(user: User, queryset: QuerySet, *, prefix: str = "", **lookup: object) -> Model:
    """The one object matching `lookup` within the user's scope, or Http404."""
    try:
        return scope_queryset(user, queryset, prefix=prefix).get(**lookup)
    except queryset.model.DoesNotExist:
        if client_scope(user, prefix=prefix) is not None and queryset.filter(**lookup).exists():
            # Answered 404 like a missing object, but logged: someone asked for a row outside
            # their scope (one more query, on this path only).
            from brokercrm.security import log_out_of_scope

            log_out_of_scope(user, model=queryset.model._meta.label, lookup=lookup)
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from None
