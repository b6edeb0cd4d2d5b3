"""Sign-in and the page header shared by every page.

Repeated failed sign-ins are locked out by django-axes (settings: AXES_*): its middleware
answers a locked-out attempt with templates/registration/locked_out.html, status 429.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.urls import reverse
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


# The main pages and the roles that use them (the pages check access themselves).
NAVIGATION: tuple[tuple[str, Promise, frozenset[str]], ...] = (
    ("home", _("Book"), frozenset(roles.ALL_ROLES) - {roles.API_SYSTEM}),
    (
        "compliance-queue",
        _("Compliance"),
        frozenset({roles.COMPLIANCE_OFFICER, roles.ACCOUNT_MANAGER, roles.TEAM_LEAD}),
    ),
    ("management-dashboard", _("Dashboards"), frozenset({roles.TEAM_LEAD, roles.COMPLIANCE_OFFICER, roles.OPS})),
)


def navigation(request: HttpRequest) -> list[dict[str, object]]:
    """The header's links for the user's roles, the current one marked."""
    held = roles.user_roles(request.user)
    links = []
    for name, label, allowed in NAVIGATION:
        if held & allowed or (name == "home" and request.user.is_superuser):
            url = reverse(name)
            current = request.path == url if name == "home" else request.path.startswith(url)
            links.append({"url": url, "label": label, "current": current})
    return links


def header_context(request: HttpRequest) -> dict[str, object]:
    """Context processor: what templates/base.html shows in its header besides the user's name.

    Costs no query beyond the roles lookup the permission policy makes anyway.
    """
    if not request.user.is_authenticated:
        return {"header_roles": [], "navigation": []}
    return {"header_roles": role_labels(request), "navigation": navigation(request)}


class LoginView(auth_views.LoginView):
    """Django's sign-in with our template; a signed-in user goes straight to their book."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True
