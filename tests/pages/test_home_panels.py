"""The home page's book panels: the book at a glance (clients and assets by tier, commission
this month against last) and the lists (dormant with assets, high assets low activity,
birthdays this week, KYC expiring, open complaints), within the user's scope, from the
last published night, in a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone

from brokercrm.nightly.bulk import replace_partition
from clients import workspace
from clients.models import Client
from feedback.models import ComplaintStatus
from retention.models import ClientActivity
from segmentation.models import (
    ClientDailyActivity,
    ReactivationCandidate,
    ResultSet,
    Tier,
    TierMove,
    TierResult,
    TierRun,
)
from tests import factories
from tests.conftest import Cast

HOME = reverse("home")
AS_OF = dt.date(2026, 3, 20)


def activity(client: Client, *, segment: str = "active", cash: str = "0", market: str = "0", gen: int = 7) -> None:
    ClientActivity.objects.create(
        generation=gen,
        as_of=AS_OF,
        client=client,
        segment=segment,
        days_since_last_trade=400 if segment == "dormant" else 3,
        trading_days=40,
        recent_trading_days=0 if segment == "dormant" else 5,
        cash=Decimal(cash),
        market_value=Decimal(market),
    )


def tiers(as_of: dt.date, assigned: dict[Client, Tier]) -> None:
    """Store the tiers of `as_of` (on PostgreSQL, a partition of its own, as the stage does)."""
    frame = pd.DataFrame(
        [
            {
                "as_of": as_of,
                "client_id": client.pk,
                "tier": int(tier),
                "value": 1.0,
                "rank": 1,
                "percentile": 0.0,
                "previous_tier": None,
                "change": int(TierMove.SAME),
            }
            for client, tier in assigned.items()
        ]
    )
    replace_partition(TierResult, frame, key_field="as_of", key_value=as_of)


def day(client: Client, on: dt.date, commission: str) -> None:
    ClientDailyActivity.objects.create(
        client=client, day=on, channel="app", trades=1, amount=Decimal(1000), commission=Decimal(commission)
    )


@pytest.fixture
def night(cast: Cast) -> Cast:
    """A published night on AS_OF: alice has two clients (one VIP with assets, one dormant
    Small), bob and mike one each."""
    TierRun.objects.create(as_of=AS_OF, basis="commission", is_published=True, retained=True)
    for kind in (ResultSet.Kind.ACTIVITY, ResultSet.Kind.CHURN):
        ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=7)
    ResultSet.objects.create(kind=ResultSet.Kind.REACTIVATION, as_of=AS_OF, is_published=True)
    sleeper = factories.ClientFactory(account_manager=cast.alice, name="Sleeping Sun")
    cast.sleeper = sleeper
    cast.tiers = {cast.alice_client: Tier.VIP, sleeper: Tier.SMALL, cast.bob_client: Tier.MAJOR}
    cast.tiers[cast.mike_client] = Tier.VIP
    tiers(AS_OF, cast.tiers)
    # an older night's tier must not count
    tiers(AS_OF - dt.timedelta(days=1), {cast.alice_client: Tier.SMALL})
    activity(cast.alice_client, cash="1000.50", market="9000")
    activity(sleeper, segment="dormant", cash="250000", market="0")
    activity(cast.bob_client, segment="dormant", cash="999999")
    activity(cast.mike_client, segment="dormant", cash="5000000")
    activity(sleeper, segment="active", cash="1", gen=6)  # an unpublished generation
    # commission: March 1-20 against February 1-20 and the whole of February
    day(cast.alice_client, dt.date(2026, 3, 2), "100")
    day(sleeper, dt.date(2026, 3, 20), "50")
    day(cast.alice_client, dt.date(2026, 3, 21), "999")  # after the night: not counted
    day(cast.alice_client, dt.date(2026, 2, 10), "60")
    day(cast.alice_client, dt.date(2026, 2, 25), "40")  # last month, after the same day
    day(cast.alice_client, dt.date(2026, 1, 31), "777")  # before last month
    day(cast.bob_client, dt.date(2026, 3, 5), "5000")
    ReactivationCandidate.objects.create(
        as_of=AS_OF,
        client=sleeper,
        assets=Decimal(250000),
        commission=Decimal(0),
        assets_percentile=1.0,
        commission_percentile=10.0,
    )
    ReactivationCandidate.objects.create(
        as_of=AS_OF,
        client=cast.mike_client,
        assets=Decimal(5000000),
        commission=Decimal(0),
        assets_percentile=0.0,
        commission_percentile=5.0,
    )
    return cast


def test_glance_counts_clients_and_assets_by_tier_and_compares_commission(client, night):
    client.force_login(night.alice.user)

    glance = client.get(HOME).context["glance"]

    rows = {row.tier: (row.clients, row.assets) for row in glance.tiers}
    assert rows == {
        Tier.VIP: (1, Decimal("10000.50")),
        Tier.MAJOR: (0, Decimal(0)),
        Tier.ORDINARY: (0, Decimal(0)),
        Tier.SMALL: (1, Decimal("250000")),
    }
    assert (glance.clients, glance.assets) == (2, Decimal("260000.50"))
    assert glance.commission_month == Decimal(150)
    assert glance.commission_last_month_to_date == Decimal(60)
    assert glance.commission_last_month == Decimal(100)
    assert glance.change_percent == pytest.approx(150.0)


def test_team_lead_glance_covers_the_team(client, night):
    client.force_login(night.tina)

    glance = client.get(HOME).context["glance"]

    assert glance.clients == 3
    assert glance.commission_month == Decimal(5150)


def test_last_month_same_day_is_cut_to_a_shorter_month():
    assert workspace._last_month_same_day(dt.date(2026, 3, 31)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert workspace._last_month_same_day(dt.date(2026, 1, 15)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 15))


def test_dormant_and_reactivation_lists_stay_in_scope_and_put_assets_first(client, night):
    client.force_login(night.alice.user)

    response = client.get(HOME)

    assert [row.client for row in response.context["dormant"]] == [night.sleeper]
    assert [row.client for row in response.context["reactivation"]] == [night.sleeper]
    assert night.mike_client.name not in response.text
    assert "assets 250,000; no trade for 400 days" in response.text


def test_firm_wide_roles_get_no_book_panels(client, night):
    client.force_login(night.olga)

    response = client.get(HOME)

    assert response.context["book_panels"] is False
    assert 'data-testid="glance"' not in response.text


def test_birthdays_in_the_next_seven_days_soonest_first(client, cast):
    today = timezone.localdate()
    in_two = factories.ClientFactory(account_manager=cast.alice, birthday=(today + dt.timedelta(days=2)).replace(1990))
    on_day = factories.ClientFactory(account_manager=cast.alice, birthday=today.replace(year=1985))
    factories.ClientFactory(account_manager=cast.alice, birthday=(today + dt.timedelta(days=8)).replace(1990))
    factories.ClientFactory(account_manager=cast.bob, birthday=today.replace(year=1970))
    closed = factories.ClientFactory(
        account_manager=cast.alice, birthday=today.replace(year=1971), status=Client.Status.CLOSED, closed_on=today
    )
    client.force_login(cast.alice.user)

    rows = client.get(HOME).context["birthdays"]

    assert rows == [on_day, in_two]
    assert closed not in rows
    assert rows[1].birthday_on == today + dt.timedelta(days=2)


def test_a_leap_day_birthday_falls_on_28_february_in_other_years():
    days = workspace.birthday_days(dt.date(2027, 2, 25))
    assert (2, 29, dt.date(2027, 2, 28)) in days
    assert (2, 29, dt.date(2028, 2, 28)) not in workspace.birthday_days(dt.date(2028, 2, 25))


def test_kyc_expiring_lists_documents_and_current_assessments_only(client, cast):
    today = timezone.localdate()
    soon = factories.KYCProfileFactory(client=cast.alice_client, id_expiry=today + dt.timedelta(days=10))
    far = factories.ClientFactory(account_manager=cast.alice)
    factories.KYCProfileFactory(client=far, id_expiry=today + dt.timedelta(days=90))
    # an expired assessment replaced by a newer one is not an item; a current expired one is
    renewed = factories.ClientFactory(account_manager=cast.alice)
    factories.RiskAssessmentFactory(
        client=renewed, assessed_on=today - dt.timedelta(days=800), expires_on=today - dt.timedelta(days=70)
    )
    factories.RiskAssessmentFactory(
        client=renewed, assessed_on=today - dt.timedelta(days=60), expires_on=today + dt.timedelta(days=600)
    )
    lapsed = factories.ClientFactory(account_manager=cast.alice)
    factories.RiskAssessmentFactory(
        client=lapsed, assessed_on=today - dt.timedelta(days=800), expires_on=today - dt.timedelta(days=5)
    )
    factories.KYCProfileFactory(client=cast.bob_client, id_expiry=today + dt.timedelta(days=1))
    client.force_login(cast.alice.user)

    response = client.get(HOME)

    items = [(item["client"], item["kind"], item["expired"]) for item in response.context["kyc_items"]]
    assert items == [(lapsed, "risk_assessment", True), (soon.client, "id_document", False)]
    assert "Suitability assessment" in response.text


def test_open_complaints_breached_first_and_resolved_left_out(client, cast):
    now = timezone.now()
    fresh = factories.ComplaintFactory(client=cast.alice_client, opened_at=now - dt.timedelta(hours=1))
    late = factories.ComplaintFactory(client=cast.alice_client, opened_at=now - dt.timedelta(days=30))
    factories.ComplaintFactory(
        client=cast.alice_client,
        opened_at=now - dt.timedelta(days=3),
        first_response_at=now - dt.timedelta(days=2),
        resolved_at=now - dt.timedelta(days=1),
        status=ComplaintStatus.RESOLVED,
        root_cause="Transfer form lost",
        resolution="Transfer made, fee refunded",
    )
    factories.ComplaintFactory(client=cast.bob_client)
    client.force_login(cast.alice.user)

    response = client.get(HOME)

    assert response.context["complaints_open"] == [late, fresh]
    assert "SLA breached" in response.text


@pytest.mark.parametrize("extra", [0, 40])
def test_home_with_the_night_and_panels_has_a_fixed_query_count(client, night, django_assert_num_queries, extra):
    for _ in range(extra):
        other = factories.ClientFactory(account_manager=night.alice, birthday=timezone.localdate())
        night.tiers[other] = Tier.SMALL
        activity(other, segment="dormant", cash="10")
        factories.KYCProfileFactory(client=other, id_expiry=timezone.localdate())
        factories.ComplaintFactory(client=other)
    tiers(AS_OF, night.tiers)
    client.force_login(night.alice.user)

    # session, user, roles, counts, page count, page rows, published generations, at-risk,
    # today's tasks; the night's tier date, tiers and assets, commission, dormant, reactivation
    # date and list, birthdays, ID documents, assessments, complaints (about to go dormant is
    # empty here: its list is one more query when activity rows say so)
    with django_assert_num_queries(19):
        response = client.get(HOME)

    assert response.status_code == 200
