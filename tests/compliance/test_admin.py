"""Compliance admin: every changelist works, everything is view-only, rows are scoped, and the
flag list's query count does not grow with the page."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from brokercrm.services import roles_ensure
from compliance import audit
from compliance.models import (
    AuditEntry,
    ComplianceMark,
    Flag,
    FlagKind,
    ScreeningMatch,
    ScreeningWhitelist,
    Severity,
    SuitabilityRecord,
    WatchList,
    WatchListEntry,
)
from compliance.screening import watch_list_load
from tests import factories
from tests.compliance.conftest import AS_OF
from tests.pages.perms import grant

pytestmark = pytest.mark.django_db

MODELS = [
    Flag,
    ScreeningMatch,
    ScreeningWhitelist,
    SuitabilityRecord,
    WatchList,
    WatchListEntry,
    AuditEntry,
    ComplianceMark,
]


def make_flag(client, subject="kyc"):
    now = timezone.now()
    return Flag.objects.create(
        client=client,
        kind=FlagKind.PEP,
        subject=subject,
        severity=Severity.MEDIUM,
        first_seen_on=AS_OF,
        last_seen_on=AS_OF,
        raised_at=now,
        updated_at=now,
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_compliance_changelist_works_and_is_view_only(client, cast, model):
    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    make_flag(cast.alice_client)
    watch_list_load(data=b"entry_id,name\nE1,Zhang San\n", list_name="L", kind="sanctions", by="test")
    audit.record(actor=superuser, action="test", object_type="x")
    ComplianceMark.objects.create(name="screening")
    client.force_login(superuser)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[model]

    listing = client.get(reverse(f"admin:compliance_{model._meta.model_name}_changelist"))

    assert listing.status_code == 200
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_ops_sees_flags_in_admin_through_ensure_roles_and_a_staff_manager_only_her_book(client, cast):
    roles_ensure()
    own, other = make_flag(cast.alice_client), make_flag(cast.bob_client)
    client.force_login(cast.olga)
    assert client.get(reverse("admin:compliance_flag_changelist")).status_code == 200

    alice = cast.alice.user
    alice.is_staff = True
    alice.save()
    grant(alice, "compliance.view_flag")
    client.force_login(alice)
    listing = client.get(reverse("admin:compliance_flag_changelist"))

    assert [flag.pk for flag in listing.context["cl"].result_list] == [own.pk]
    assert client.get(reverse("admin:compliance_flag_change", args=[other.pk])).status_code == 404


@pytest.mark.parametrize("size", [3, 30])
def test_flag_changelist_query_count_is_flat(client, cast, django_assert_max_num_queries, size):
    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(size):
        make_flag(factories.ClientFactory(account_manager=cast.alice))
    client.force_login(superuser)

    # session, user, roles, branch filter choices, count, page rows (+ savepoints)
    with django_assert_max_num_queries(9):
        response = client.get(reverse("admin:compliance_flag_changelist"))

    assert len(response.context["cl"].result_list) == size
