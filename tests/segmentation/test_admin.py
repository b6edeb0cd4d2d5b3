"""Admin pages for runs, tier assignments and overrides."""

import datetime as dt

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone

import brokercrm.nightly.admin  # noqa: F401 - registered by brokercrm/admin.py in the project
from brokercrm.models import RunStatus
from segmentation.models import Tier, TierOverride, TierOverrideAudit, TierResult
from tests import factories
from tests.segmentation.books import make_book

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def admin_browser() -> BrowserClient:
    browser = BrowserClient()
    browser.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    return browser


@pytest.fixture
def tiered(run_nightly) -> list:
    clients = make_book([index + 1 for index in range(40)], as_of=AS_OF)
    assert run_nightly(AS_OF, ["rollup", "tiers"]).status == RunStatus.SUCCEEDED
    return clients


@pytest.mark.parametrize(
    "url",
    [
        "/admin/brokercrm/nightlyrun/",
        "/admin/brokercrm/chunkrun/",
        "/admin/brokercrm/pipelinelock/",
        "/admin/segmentation/tierrun/",
        "/admin/segmentation/clienttier/",
        "/admin/segmentation/clienttier/?tier=1",
        "/admin/segmentation/tierhistory/",
        "/admin/segmentation/tieroverride/",
        "/admin/segmentation/tieroverrideaudit/",
        "/admin/segmentation/reactivationcandidate/",
        "/admin/segmentation/resultset/",
        "/admin/segmentation/rollupwatermark/",
    ],
)
def test_admin_lists_load(admin_browser: BrowserClient, tiered: list, url: str) -> None:
    assert admin_browser.get(url).status_code == 200


def test_the_run_page_shows_its_stages(admin_browser: BrowserClient, tiered: list) -> None:
    from brokercrm.models import NightlyRun

    run = NightlyRun.objects.get(as_of=AS_OF)
    page = admin_browser.get(f"/admin/brokercrm/nightlyrun/{run.pk}/change/").content.decode()
    assert "rollup" in page
    assert "tiers" in page
    assert "succeeded" in page


def test_tier_assignments_list_the_current_vips(admin_browser: BrowserClient, tiered: list) -> None:
    page = admin_browser.get("/admin/segmentation/clienttier/?tier=1").content.decode()
    vip = TierResult.objects.filter(as_of=AS_OF, tier=Tier.VIP).select_related("client")
    assert vip.count() == 2  # 3% of 40 is 1.2: s < 3% for the top two (0 and 1 above them)
    assert all(row.client.client_no in page for row in vip)
    assert tiered[0].client_no not in page  # the smallest client is not VIP


def test_an_override_made_in_admin_goes_through_the_service_and_is_audited(
    admin_browser: BrowserClient, tiered: list
) -> None:
    client = tiered[0]
    response = admin_browser.post(
        "/admin/segmentation/tieroverride/add/",
        {
            "client": client.pk,
            "tier": Tier.VIP,
            "reason": "Board member's family office",
            "starts_on": str(timezone.localdate()),
            "expires_on": str(timezone.localdate() + dt.timedelta(days=90)),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    override = TierOverride.objects.get(client=client)
    audit = TierOverrideAudit.objects.get(override=override)
    assert (audit.action, audit.tier, audit.computed_tier) == ("created", Tier.VIP, Tier.SMALL)

    response = admin_browser.post(
        f"/admin/segmentation/tieroverride/{override.pk}/change/", {"end_reason_input": "Client asked"}
    )
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.ended_at is not None
    assert override.end_reason == "Client asked"
    assert TierOverrideAudit.objects.filter(override=override).count() == 2
