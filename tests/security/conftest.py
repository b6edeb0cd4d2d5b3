"""Fixtures of the security tests: a small world of every per-client object for the cast.

Every client of the cast gets a distinctive client number and name (`ZQ-ALICE-7301`,
"Zebulon Alicequist" ...) so that a response can be scanned for clients outside the
caller's scope by plain substring search, and one object of every kind the API and the
pages address by id: trade, cash flow, snapshot, KYC, risk assessment, interaction, tier
result, tier override, needs profile, activity and churn score, compliance flag,
suitability record, retention task, callback, entitlement, complaint, survey answer.
Most of them come from one real nightly run (tiers, scores, flags, callbacks, tasks,
entitlements), the rest from the factories.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from tests import factories
from tests.conftest import Cast
from tests.nightly.conftest import run_nightly

__all__ = ["run_nightly"]

AS_OF = dt.date(2026, 11, 20)
OWNERS = ("alice", "bob", "mike")

# Distinctive numbers and names: a substring scan for them is reliable.
CLIENT_NOS = {"alice": "ZQ-ALICE-7301", "bob": "ZQ-BOBBY-7302", "mike": "ZQ-MIKEO-7303"}
CLIENT_NAMES = {"alice": "Zebulon Alicequist", "bob": "Zebulon Bobrowsky", "mike": "Zebulon Mikeldorf"}


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # Throttle histories live in the cache; one test's requests must not count in the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery eager for the nightly run of a fixture (not autouse: the other security tests do not need it)."""
    from brokercrm.celery import app as celery_app

    saved = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


@dataclass
class World:
    cast: Cast
    nina: object
    clients: dict[str, object]
    # kind -> owner -> id of one object of that kind belonging to the owner's client
    ids: dict[str, dict[str, int | str]] = field(default_factory=dict)


def _local(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


@pytest.fixture
def world(cast: Cast, eager: None, run_nightly: Callable) -> World:
    from clients.models import ImportBatch
    from compliance.models import Flag
    from feedback.models import Complaint, SurveyResponse
    from retention.work.campaigns import campaign_create
    from retention.work.models import Callback, ClientEntitlement, RetentionTask
    from segmentation import services as segmentation_services
    from segmentation.models import TierOverride

    call_command("retention_defaults", stdout=StringIO())
    nina = factories.UserFactory(username="no_role_nina")
    owners = {"alice": cast.alice_client, "bob": cast.bob_client, "mike": cast.mike_client}
    for owner, client in owners.items():
        client.client_no = CLIENT_NOS[owner]
        client.name = CLIENT_NAMES[owner]
        client.opened_on = AS_OF - dt.timedelta(days=20)
        client.save()
    risky = factories.InstrumentFactory(symbol="ZQ-R5.SH", risk_level=5)
    calm = factories.InstrumentFactory(symbol="ZQ-R1.SH", risk_level=1)
    for n, client in enumerate(owners.values()):
        for day in range(40, 0, -3):
            factories.TradeFactory(
                client=client,
                instrument=risky if day % 2 else calm,
                executed_at=_local(AS_OF - dt.timedelta(days=day)),
                quantity=Decimal(100 * (n + 1)),
            )
        factories.CashFlowFactory(client=client, occurred_at=_local(AS_OF - dt.timedelta(days=30)))
        factories.AssetSnapshotFactory(client=client, as_of=AS_OF, cash=Decimal(1000 * (n + 1)))
        factories.InteractionFactory(client=client)
        factories.KYCProfileFactory(client=client)
        factories.RiskAssessmentFactory(client=client, risk_level=1, assessed_on=AS_OF - dt.timedelta(days=60))
        factories.ComplaintFactory(client=client)
        factories.SurveyResponseFactory(client=client)
    run = run_nightly(AS_OF)
    assert run.status == "succeeded", run
    for client in owners.values():
        segmentation_services.tier_override_create(
            client=client, by=cast.olga, tier=1, reason="Security fixture", expires_on=AS_OF + dt.timedelta(days=30)
        )
    world = World(cast=cast, nina=nina, clients=owners)
    models = {
        "flag": Flag,
        "task": RetentionTask,
        "callback": Callback,
        "entitlement": ClientEntitlement,
        "complaint": Complaint,
        "survey_response": SurveyResponse,
        "tier_override": TierOverride,
    }
    for kind, model in models.items():
        world.ids[kind] = {}
        for owner, client in owners.items():
            row = model.objects.filter(client=client).order_by("pk").first()
            if row is not None:
                world.ids[kind][owner] = row.pk
    world.ids["client_no"] = dict(CLIENT_NOS)
    world.ids["question"] = {
        owner: SurveyResponse.objects.filter(client=client).values_list("question_id", flat=True).first()
        for owner, client in owners.items()
    }
    # Objects that belong to no client: one of each, addressed the same for every owner.
    campaign = campaign_create(by=cast.carol, name="Security fixture", segment={"tiers": ["vip"]}, task_reason="Call")
    batch = ImportBatch.objects.create(
        kind=ImportBatch.Kind.TRADES,
        status=ImportBatch.Status.SUCCEEDED,
        source=ImportBatch.Source.API,
        file_name="fixture.json",
        file_sha256="0" * 64,
    )
    world.ids["campaign"] = dict.fromkeys(OWNERS, campaign.pk)
    world.ids["batch"] = dict.fromkeys(OWNERS, batch.pk)
    return world
