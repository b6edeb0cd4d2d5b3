"""Audit hooks in other apps: KYC changes and unmasked ID views in admin, manual tier changes."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.audit import verify_chain
from compliance.models import AuditEntry
from segmentation import services as segmentation_services
from tests import factories
from tests.pages.perms import grant

pytestmark = pytest.mark.django_db

ID_NUMBER = "110105198005171234"


@pytest.fixture
def kyc(cast):
    return factories.KYCProfileFactory(client=cast.alice_client, id_number=ID_NUMBER)


def change_url(obj):
    return reverse("admin:clients_kycprofile_change", args=[obj.pk])


def staff(user, *perms):
    user.is_staff = True
    user.save()
    grant(user, *perms)
    return user


def test_every_admin_view_of_unmasked_id_numbers_is_audited(client, cast, kyc):
    client.force_login(staff(cast.carol, "clients.view_kycprofile", "clients.change_kycprofile"))

    client.get(reverse("admin:clients_kycprofile_changelist"))
    client.get(change_url(kyc))

    views = AuditEntry.objects.filter(action="kyc.id_number_viewed").order_by("seq")
    assert [(v.actor_name, v.client_no, v.note) for v in views] == [
        ("compliance_carol", cast.alice_client.client_no, "admin KYC list"),
        ("compliance_carol", cast.alice_client.client_no, "admin KYC profile"),
    ]


def test_masked_views_are_not_recorded_as_unmasked(client, cast, kyc):
    client.force_login(staff(cast.olga, "clients.view_kycprofile"))

    client.get(reverse("admin:clients_kycprofile_changelist"))
    client.get(change_url(kyc))

    assert not AuditEntry.objects.filter(action="kyc.id_number_viewed").exists()


def test_kyc_changes_are_audited_old_to_new_with_the_id_number_masked(client, cast, kyc):
    client.force_login(staff(cast.carol, "clients.view_kycprofile", "clients.change_kycprofile"))
    form = client.get(change_url(kyc)).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update({"is_pep": "on", "aml_risk": "high", "id_number": "110105198005179999"})

    response = client.post(change_url(kyc), data)

    assert response.status_code == 302
    change = AuditEntry.objects.get(action="kyc.changed")
    assert change.old == {"is_pep": False, "aml_risk": "low", "id_number": "110***********1234"}
    assert change.new == {"is_pep": True, "aml_risk": "high", "id_number": "110***********9999"}
    assert change.client_no == cast.alice_client.client_no
    assert verify_chain().ok


def test_manual_tier_changes_are_audited(cast):
    override = segmentation_services.tier_override_create(
        client=cast.alice_client,
        tier=1,
        reason="Strategic client.",
        expires_on=timezone.localdate() + dt.timedelta(days=30),
        by=cast.olga,
    )
    segmentation_services.tier_override_end(override=override, by=cast.olga, reason="Review done.")

    entries = list(AuditEntry.objects.order_by("seq").values_list("action", "actor_name", "note"))
    assert entries == [
        ("tier_override.created", "ops_olga", "Strategic client."),
        ("tier_override.ended", "ops_olga", "Review done."),
    ]
    assert AuditEntry.objects.get(action="tier_override.created").new["tier"] == 1
