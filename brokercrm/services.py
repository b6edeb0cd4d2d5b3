"""Writes that belong to the project as a whole: the role groups and their permissions."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from brokercrm import roles

# Ops work in Django admin: they view everything of these apps ...
OPS_VIEW_APPS = ("clients", "segmentation", "brokercrm", "compliance", "feedback", "metrics", "retention")
# ... and add or change reference data and tier overrides. The ledger stays view-only: it is
# append-only and corrected by reversing rows through ingestion, never by an edit.
OPS_EDITABLE = {
    ("clients", "branch"),
    ("clients", "team"),
    ("clients", "accountmanager"),
    ("clients", "client"),
    ("clients", "instrument"),
    ("clients", "kycprofile"),
    ("clients", "riskassessment"),
    ("clients", "interaction"),
    ("segmentation", "tieroverride"),
    ("feedback", "surveyquestion"),
    ("feedback", "surveycampaign"),
    ("feedback", "complaint"),
    ("metrics", "marketingspend"),
    ("retention", "playbook"),
    ("retention", "serviceproduct"),
    ("retention", "tierentitlement"),
    ("retention", "retentiontask"),
}


def roles_ensure() -> dict[str, Group]:
    """Create the five role groups and give ops its admin permissions.

    Idempotent; permissions are only added, never removed, so a grant made by hand in
    admin survives. Returns the groups by name.
    """
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in roles.ALL_ROLES}
    for label in OPS_VIEW_APPS:
        create_permissions(apps.get_app_config(label), verbosity=0)
    wanted = []
    permissions = Permission.objects.filter(content_type__app_label__in=OPS_VIEW_APPS).select_related("content_type")
    for permission in permissions:
        action = permission.codename.split("_", 1)[0]
        key = (permission.content_type.app_label, permission.content_type.model)
        if action == "view" or (action in ("add", "change") and key in OPS_EDITABLE):
            wanted.append(permission)
    groups[roles.OPS].permissions.add(*wanted)
    return groups
