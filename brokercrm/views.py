"""Sign-in and the page header shared by every page.

Repeated failed sign-ins are locked out by django-axes (settings: AXES_*): its middleware
answers a locked-out attempt with templates/registration/locked_out.html, status 429.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from brokercrm import roles

ROLE_LABELS: dict[str, Promise] = {
    roles.ACCOUNT_MANAGER: _("Account manager"),
    roles.TEAM_LEAD: _("Team lead"),
    roles.COMPLIANCE_OFFICER: _("Compliance officer"),
    roles.OPS: _("Operations"),
    roles.API_SYSTEM: _("API system"),
}


def role_labels(request: HttpRequest) -> list[Promise]:
    """The signed-in user's roles, as labels in a stable order (ALL_ROLES order)."""
    held = roles.user_roles(request.user)
    return [ROLE_LABELS[role] for role in roles.ALL_ROLES if role in held]


def header_context(request: HttpRequest) -> dict[str, object]:
    """Context processor: what templates/base.html shows in its header besides the user's name.

    Costs no query beyond the roles lookup the permission policy makes anyway.
    """
    return {"header_roles": role_labels(request)}


class LoginView(auth_views.LoginView):
    """Django's sign-in with our template; a signed-in user goes straight to their book."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True
