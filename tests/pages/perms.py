"""Granting model permissions in tests (the role groups carry none yet)."""

from django.contrib.auth.models import Permission


def grant(user: object, *perms: str) -> None:
    """Give `user` the model permissions named "app_label.codename", e.g. "clients.view_client"."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
