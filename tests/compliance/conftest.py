"""Fixtures of the compliance tests: the nightly fixtures, a clean cache, book helpers."""

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from brokercrm.models import RunStatus
from clients.models import Client, Instrument
from compliance.models import Flag
from tests import factories
from tests.nightly.conftest import eager_celery, run_nightly

__all__ = ["eager_celery", "run_nightly"]

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()  # throttle histories
    yield
    cache.clear()


@pytest.fixture
def api_as() -> Callable[[object], APIClient]:
    def make(user: object) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def comply(run_nightly: Callable) -> Callable[[dt.date], object]:
    """comply(as_of) runs the compliance stage for `as_of` through the pipeline; asserts success."""

    def run(as_of: dt.date = AS_OF) -> object:
        result = run_nightly(as_of, ["compliance"])
        assert result.status == RunStatus.SUCCEEDED, result.error
        return result

    return run


def local(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def instrument(risk: int, symbol: str | None = None) -> Instrument:
    return factories.InstrumentFactory(symbol=symbol or f"R{risk}.TEST", risk_level=risk)


def assess(client: Client, level: int, on: dt.date = dt.date(2025, 6, 1)) -> None:
    factories.RiskAssessmentFactory(
        client=client, risk_level=level, assessed_on=on, expires_on=on + dt.timedelta(days=730)
    )


def buy(client: Client, instrument: Instrument, when: dt.datetime, amount: str = "10000") -> object:
    value = Decimal(amount)
    return factories.TradeFactory(
        client=client,
        instrument=instrument,
        executed_at=when,
        quantity=Decimal("100"),
        price=value / 100,
        amount=value,
        commission=(value * Decimal("0.0003")).quantize(Decimal("0.01")),
    )


def flags_of(client: Client, kind: str | None = None) -> list[Flag]:
    flags = Flag.objects.filter(client=client)
    if kind:
        flags = flags.filter(kind=kind)
    return list(flags.order_by("id"))
