"""Service products by tier: a tier change grants and withdraws the right entitlements, due
deliveries are recorded (system channels) or become tasks (people), idempotently."""

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from rest_framework.test import APIClient

from brokercrm.models import RunStatus
from retention.services import task_complete
from retention.work.entitlements import entitlements_sync, following_due, next_birthday
from retention.work.models import (
    ClientEntitlement,
    RetentionTask,
    ServiceDelivery,
    ServiceProduct,
    TierEntitlement,
)
from segmentation.models import Tier, TierOverride
from tests.conftest import Cast
from tests.nightly.conftest import eager_celery, run_nightly
from tests.retention.work_books import publish_tiers
from tests.segmentation.books import make_clients

__all__ = ["eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

D1 = dt.date(2026, 11, 20)
D2 = dt.date(2026, 11, 21)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def product(code: str, tiers: list[int], **kwargs) -> ServiceProduct:
    item = ServiceProduct.objects.create(code=code, name=code.replace("_", " ").title(), **kwargs)
    TierEntitlement.objects.bulk_create([TierEntitlement(product=item, tier=tier) for tier in tiers])
    return item


@pytest.fixture
def catalogue(db: None) -> dict:
    return {
        "research": product("research", [Tier.VIP, Tier.MAJOR], channel="email", frequency="monthly"),
        "risk_plan": product(
            "risk_plan", [Tier.VIP, Tier.MAJOR], channel="phone", frequency="quarterly", needs_person=True
        ),
        "hotspot": product("hotspot", [Tier.VIP, Tier.MAJOR, Tier.ORDINARY], channel="sms", frequency="weekly"),
        "birthday": product(
            "birthday",
            [Tier.VIP, Tier.MAJOR, Tier.ORDINARY, Tier.SMALL],
            channel="phone",
            frequency="birthday",
            needs_person=True,
            task_kind="greeting",
        ),
        "financing": product("financing", [Tier.VIP], channel="on_site", frequency="on_demand", needs_person=True),
    }


@pytest.fixture
def pair(cast: Cast, catalogue: dict, settings) -> tuple:
    settings.RETENTION_ENTITLEMENT_SPREAD_FIRST_DELIVERY = False  # first deliveries on the grant's working day
    rising, falling = make_clients(2, manager=cast.alice)
    rising.birthday = dt.date(1980, 11, 22)  # the working day after D2
    rising.save()
    publish_tiers(D1, {rising: Tier.ORDINARY, falling: Tier.MAJOR})
    publish_tiers(D2, {rising: Tier.VIP, falling: Tier.SMALL}, previous={rising: Tier.ORDINARY, falling: Tier.MAJOR})
    return rising, falling


def current(client) -> set[str]:
    return set(
        ClientEntitlement.objects.filter(client=client, withdrawn_on__isnull=True).values_list(
            "product__code", flat=True
        )
    )


def test_a_tier_change_grants_and_withdraws_the_right_entitlements(pair: tuple, catalogue: dict) -> None:
    rising, falling = pair

    first = entitlements_sync(as_of=D1)
    assert current(rising) == {"hotspot", "birthday"}
    assert current(falling) == {"research", "risk_plan", "hotspot", "birthday"}
    assert (first["granted"], first["withdrawn"]) == (6, 0)

    second = entitlements_sync(as_of=D2)
    assert current(rising) == {"hotspot", "birthday", "research", "risk_plan", "financing"}
    assert current(falling) == {"birthday"}
    assert (second["granted"], second["withdrawn"]) == (3, 3)
    withdrawn = ClientEntitlement.objects.filter(client=falling, withdrawn_on__isnull=False)
    assert set(withdrawn.values_list("product__code", "withdrawn_on", "withdrawn_reason")) == {
        (code, D2, f"Tier small on {D2} does not include this service.")
        for code in ("research", "risk_plan", "hotspot")
    }
    assert set(withdrawn.values_list("granted_tier", flat=True)) == {Tier.MAJOR}

    again = entitlements_sync(as_of=D2)
    assert again == {"granted": 0, "withdrawn": 0, "delivered": 0, "delivery_tasks": 0}


def test_an_override_in_force_is_the_tier_that_counts(pair: tuple, cast: Cast) -> None:
    _, falling = pair
    TierOverride.objects.create(
        client=falling, tier=Tier.VIP, reason="Key account", starts_on=D1, expires_on=D2, created_by=cast.olga
    )
    entitlements_sync(as_of=D2)
    assert "financing" in current(falling)


def test_due_deliveries_are_recorded_or_become_tasks(pair: tuple, cast: Cast, catalogue: dict) -> None:
    rising, falling = pair
    workday = D1 + dt.timedelta(days=1)

    first = entitlements_sync(as_of=D1)

    # system channels: recorded as delivered on the working day; people: a task each
    assert first["delivered"] == 3  # falling: research (email), hotspot (sms); rising: hotspot (sms)
    assert first["delivery_tasks"] == 1  # falling: risk plan by phone (rising has no birthday due yet)
    delivered = set(ServiceDelivery.objects.values_list("client_id", "product__code", "delivered_on", "by"))
    assert delivered == {
        (falling.pk, "research", workday, None),
        (falling.pk, "hotspot", workday, None),
        (rising.pk, "hotspot", workday, None),
    }
    task = RetentionTask.objects.get()
    assert (task.client, task.kind, task.source, task.assignee, task.due) == (
        falling,
        "service_delivery",
        "service",
        cast.alice.user,
        workday,
    )
    research = ClientEntitlement.objects.get(client=falling, product=catalogue["research"])
    assert research.next_due == dt.date(2026, 12, 21)
    risk_plan = ClientEntitlement.objects.get(client=falling, product=catalogue["risk_plan"])
    assert risk_plan.next_due == dt.date(2027, 2, 21)

    # the next night: rising's birthday greeting is due on its working day
    second = entitlements_sync(as_of=D2)
    greeting = RetentionTask.objects.get(kind="greeting")
    assert (greeting.client, greeting.due) == (rising, dt.date(2026, 11, 22))
    assert second["delivery_tasks"] == 2  # the greeting and rising's new risk plan
    assert ClientEntitlement.objects.get(client=rising, product=catalogue["birthday"]).next_due == dt.date(2027, 11, 22)

    # doing the task records the delivery it stands for
    task_complete(task=task, by=cast.alice.user, channel="phone", outcome="Plan agreed")
    delivery = ServiceDelivery.objects.get(task=task)
    assert (delivery.product, delivery.scheduled_for, delivery.by) == (catalogue["risk_plan"], workday, cast.alice.user)


def test_the_nightly_stage_is_idempotent(pair: tuple, run_nightly: Callable) -> None:
    assert run_nightly(D1, ["entitlements"]).status == RunStatus.SUCCEEDED
    counts = (ClientEntitlement.objects.count(), ServiceDelivery.objects.count(), RetentionTask.objects.count())
    assert run_nightly(D1, ["entitlements"]).status == RunStatus.SUCCEEDED
    assert (ClientEntitlement.objects.count(), ServiceDelivery.objects.count(), RetentionTask.objects.count()) == counts


def test_a_whole_book_granted_at_once_is_served_over_the_first_period(cast: Cast, catalogue: dict) -> None:
    clients = make_clients(60, manager=cast.bob)
    publish_tiers(D1, dict.fromkeys(clients, Tier.MAJOR))

    entitlements_sync(as_of=D1)

    workday = D1 + dt.timedelta(days=1)
    research = ClientEntitlement.objects.filter(product=catalogue["research"])
    assert {(e.client_id, e.next_due) for e in research if e.next_due} == {
        (
            client.pk,
            workday
            + dt.timedelta(days=client.pk % 30)
            + (relativedelta(months=1) if client.pk % 30 == 0 else relativedelta()),
        )
        for client in clients
    }
    # only the clients whose offset is 0 got their first report on the working day
    assert ServiceDelivery.objects.filter(product=catalogue["research"]).count() == sum(
        1 for client in clients if client.pk % 30 == 0
    )


def test_schedules() -> None:
    assert next_birthday(dt.date(1984, 2, 29), dt.date(2026, 3, 1)) == dt.date(2027, 2, 28)
    assert next_birthday(None, dt.date(2026, 3, 1)) is None
    assert following_due("monthly", after=dt.date(2026, 1, 31), birthday=None) == dt.date(2026, 2, 28)
    assert following_due("once", after=dt.date(2026, 1, 31), birthday=None) is None


def test_the_api(pair: tuple, cast: Cast) -> None:
    _, falling = pair
    entitlements_sync(as_of=D1)
    catalogue = APIClient()
    catalogue.force_login(cast.alice.user)
    products = {row["code"]: row for row in catalogue.get("/api/v1/retention/service-products/").json()["results"]}
    assert products["research"]["tiers"] == ["vip", "major"]
    rows = catalogue.get(f"/api/v1/retention/clients/{falling.client_no}/entitlements/").json()["results"]
    assert {row["product"] for row in rows} == {"research", "risk_plan", "hotspot", "birthday"}
    assert catalogue.get(f"/api/v1/retention/clients/{cast.mike_client.client_no}/entitlements/").status_code == 404
    research = ClientEntitlement.objects.get(client=falling, product__code="research")
    recorded = catalogue.post(
        f"/api/v1/retention/entitlements/{research.pk}/deliveries/", {"notes": "Extra report"}, format="json"
    )
    assert recorded.status_code == 201, recorded.content
    assert recorded.json()["by"] == "am_alice"
    mike = APIClient()
    mike.force_login(cast.mike.user)
    assert mike.post(f"/api/v1/retention/entitlements/{research.pk}/deliveries/", {}, format="json").status_code == 404


def test_catalogue_and_entitlement_lists_cost_the_same_queries_for_3_and_30_rows(
    cast: Cast, settings, django_assert_num_queries
) -> None:
    settings.RETENTION_ENTITLEMENT_SPREAD_FIRST_DELIVERY = False
    client = make_clients(1, manager=cast.alice)[0]
    publish_tiers(D1, {client: Tier.VIP})
    for index in range(3):
        product(f"p{index:02d}", [Tier.VIP, Tier.MAJOR], channel="email", frequency="monthly")
    entitlements_sync(as_of=D1)
    api = APIClient()
    api.force_login(cast.alice.user)
    urls = ["/api/v1/retention/service-products/", f"/api/v1/retention/clients/{client.client_no}/entitlements/"]
    # catalogue: session, user, count, page, matrix (prefetched); a client's entitlements: session,
    # user, roles (policy), the client, count, page (product joined)
    counts = dict(zip(urls, (5, 6), strict=True))
    for url in urls:
        api.get(url)
        with django_assert_num_queries(counts[url]):
            assert len(api.get(url).json()["results"]) == 3
    for index in range(3, 30):
        product(f"p{index:02d}", [Tier.VIP], channel="sms", frequency="weekly")
    entitlements_sync(as_of=D2)
    for url in urls:
        with django_assert_num_queries(counts[url]):
            assert len(api.get(url).json()["results"]) == 30


def test_birthdays_read_for_a_few_or_for_many_clients_agree(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    from retention.work import entitlements

    clients = make_clients(3, manager=cast.alice)
    clients[0].birthday = dt.date(1990, 2, 28)
    clients[0].save()
    ids = [client.pk for client in clients[:2]]
    few = entitlements._birthdays(ids)
    monkeypatch.setattr(entitlements, "BIRTHDAYS_READ_ALL", 0)
    many = entitlements._birthdays(ids)
    assert few == {clients[0].pk: dt.date(1990, 2, 28), clients[1].pk: None}
    assert {pk: day for pk, day in few.items() if day} == many
