"""Client 360 and the home page's work lists: scope, content, fixed query counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from clients.models import Client
from retention.models import ChurnScore, ClientActivity
from segmentation.models import ResultSet, Tier
from tests import factories
from tests.conftest import Cast
from tests.segmentation.books import add_trade, local_noon, make_clients

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
OUTFLOW = {"code": "outflow", "points": 40, "facts": {"share": 0.62, "window": 30, "amount": 62000.0}}


def signed_in(user: object) -> Browser:
    browser = Browser()
    browser.force_login(user)
    return browser


def scored(client: Client, *, risk: int = 80, value: str = "10000", about: bool = False) -> None:
    ChurnScore.objects.create(
        generation=7,
        as_of=AS_OF,
        client=client,
        tier=Tier.VIP,
        segment="potentially_active",
        risk=risk,
        p_alive=0.4,
        clv=Decimal(value),
        clv_simple=Decimal(value),
        value_at_risk=Decimal(value) * risk / 100,
        reasons=[OUTFLOW],
    )
    ClientActivity.objects.create(
        generation=7,
        as_of=AS_OF,
        client=client,
        segment="potentially_active",
        last_trade_on=AS_OF - dt.timedelta(days=20),
        days_since_last_trade=20,
        trading_days=40,
        recent_trading_days=3,
        typical_gap_days=2.8,
        overdue_ratio=7.1,
        about_to_go_dormant=about,
    )


@pytest.fixture
def published(cast: Cast) -> Cast:
    for kind in (ResultSet.Kind.CHURN, ResultSet.Kind.ACTIVITY):
        ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=7)
    scored(cast.alice_client, about=True)
    scored(cast.mike_client, risk=95, value="50000")
    return cast


def test_the_360_shows_scores_with_reasons_and_masked_id(published: Cast) -> None:
    client = published.alice_client
    factories.KYCProfileFactory(client=client, id_number="310101199001011234")
    add_trade(client, commission="12.50", when=local_noon(AS_OF - dt.timedelta(days=20)))
    page = signed_in(published.alice.user).get(f"/clients/{client.client_no}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Moved out 62% of assets in 30 days (net 62,000 withdrawn)" in text
    assert "About to go dormant" in text
    assert "310101199001011234" not in text
    assert "600000.SH" in text


def test_the_360_is_404_outside_the_scope(published: Cast) -> None:
    assert signed_in(published.alice.user).get(f"/clients/{published.mike_client.client_no}/").status_code == 404
    assert signed_in(published.tina).get(f"/clients/{published.bob_client.client_no}/").status_code == 200
    assert Browser().get(f"/clients/{published.alice_client.client_no}/").status_code == 302  # to the login


def test_the_360_costs_the_same_queries_with_more_history(published: Cast) -> None:
    client = published.alice_client

    def count() -> int:
        browser = signed_in(published.alice.user)
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(f"/clients/{client.client_no}/").status_code == 200
        return len(queries)

    few = count()
    for day in range(30):
        add_trade(client, commission="1.00", when=local_noon(AS_OF - dt.timedelta(days=day + 1)))
    assert count() == few <= 20


def test_home_lists_who_to_call_first_in_scope(published: Cast) -> None:
    for client in make_clients(10, manager=published.alice):
        scored(client, risk=60, value="100", about=True)
    browser = signed_in(published.alice.user)
    with CaptureQueriesContext(connection) as queries:
        page = browser.get("/")
    text = page.content.decode()
    assert "At risk: call first" in text
    assert escape(published.alice_client.name) in text
    assert escape(published.mike_client.name) not in text  # another team's client
    assert "Moved out 62% of assets" in text
    assert "no trade for 20 days, usually every 2.8 days" in text
    # The list says how it is ordered and shows what orders it: alice's client (risk 80 of a
    # value of 10,000) first, with 8,000 at risk, before the ten of risk 60 and 60 at risk.
    assert "Churn risk 40 or more, the most value at risk first." in text
    assert text.index("value at risk 8,000") < text.index("value at risk 60")
    assert "Overdue against their own trading rhythm, the most overdue first." in text
    # base 5 (the whole book listed: one count) + published generations + the two lists + today's
    # tasks + the book panels (tier date, dormant, reactivation date and list, birthdays, ID
    # documents, assessments, complaints)
    assert len(queries) == 17


@pytest.mark.parametrize("who", ["carol", "olga"])
def test_firm_wide_roles_get_no_call_lists(published: Cast, who: str) -> None:
    """Compliance and ops do not call clients: their home has the client search, not the
    account managers' call lists (over the whole firm those sorted every score of the night)."""
    browser = signed_in(getattr(published, who))
    with CaptureQueriesContext(connection) as queries:
        page = browser.get("/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "At risk: call first" not in text
    assert escape(published.mike_client.name) in text  # the firm's clients are still listed
    assert not [q for q in queries.captured_queries if "retention_churnscore" in q["sql"]]
    assert not [q for q in queries.captured_queries if "retention_clientactivity" in q["sql"]]
