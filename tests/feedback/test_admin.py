"""Admin of feedback and metrics: ops pages, scope for a staff account manager, no deletes."""

import datetime as dt

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from brokercrm.services import roles_ensure
from feedback.models import Complaint, SurveyCampaign
from metrics.models import MarketingSpend
from tests import factories
from tests.conftest import Cast
from tests.pages.perms import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(cast: Cast):
    roles_ensure()
    return cast.olga


@pytest.mark.parametrize(
    "name",
    [
        "feedback_complaint",
        "feedback_surveyresponse",
        "feedback_surveyquestion",
        "feedback_surveycampaign",
        "metrics_metricdefinition",
        "metrics_kpisnapshot",
        "metrics_metricvalue",
        "metrics_marketingspend",
    ],
)
def test_ops_open_every_list(client, ops, name: str) -> None:
    factories.ComplaintFactory(client=factories.ClientFactory())
    client.force_login(ops)
    assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_ops_open_a_complaint_through_the_service(client, ops, cast: Cast) -> None:
    client.force_login(ops)
    opened = timezone.localtime() - dt.timedelta(hours=1)
    response = client.post(
        reverse("admin:feedback_complaint_add"),
        {
            "client": cast.alice_client.pk,
            "channel": "branch",
            "category": "service",
            "severity": "critical",
            "description": "Waited an hour at the counter.",
            "opened_at_0": opened.strftime("%Y-%m-%d"),
            "opened_at_1": opened.strftime("%H:%M:%S"),
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    complaint = Complaint.objects.get()
    assert complaint.resolution_due_at - complaint.opened_at == dt.timedelta(hours=24)
    assert complaint.events.get().by == ops
    assert client.get(reverse("admin:feedback_complaint_change", args=[complaint.pk])).status_code == 200


def test_complaints_are_never_deleted_in_admin(cast: Cast) -> None:
    request = RequestFactory().get("/admin/")
    request.user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    assert not admin.site._registry[Complaint].has_delete_permission(request)


def test_a_staff_account_manager_sees_only_her_clients_complaints(client, cast: Cast) -> None:
    alice = cast.alice.user
    alice.is_staff = True
    alice.save()
    grant(alice, "feedback.view_complaint")
    own = factories.ComplaintFactory(client=cast.alice_client)
    other = factories.ComplaintFactory(client=cast.bob_client)
    client.force_login(alice)
    listing = client.get(reverse("admin:feedback_complaint_changelist"))
    assert [row.pk for row in listing.context["cl"].result_list] == [own.pk]
    assert client.get(reverse("admin:feedback_complaint_change", args=[other.pk])).status_code == 404


def test_campaign_send_action_invites_the_segment(client, ops, cast: Cast) -> None:
    question = factories.SurveyQuestionFactory(kind="csat")
    campaign = SurveyCampaign.objects.create(name="Mike's book", question=question, account_manager=cast.mike)
    client.force_login(ops)
    response = client.post(
        reverse("admin:feedback_surveycampaign_changelist"),
        {"action": "send", "_selected_action": [campaign.pk]},
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.invited) == ("sent", 1)


def test_marketing_spend_month_must_be_a_first_day(client, ops) -> None:
    client.force_login(ops)
    url = reverse("admin:metrics_marketingspend_add")
    refused = client.post(url, {"month": "2026-06-15", "amount": "1000", "note": ""})
    assert "month" in refused.context["adminform"].form.errors
    accepted = client.post(url, {"month": "2026-06-01", "amount": "1000.50", "note": "Search ads"})
    assert accepted.status_code == 302
    assert MarketingSpend.objects.get().entered_by == ops
