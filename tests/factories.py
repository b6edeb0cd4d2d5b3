"""factory_boy factories for the client data."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from clients import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pw-for-tests-1")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            for role in extracted:
                self.groups.add(Group.objects.get_or_create(name=role)[0])


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Branch
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"B{n:03d}")
    name = factory.Sequence(lambda n: f"Branch {n}")
    city = "Shanghai"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Team

    branch = factory.SubFactory(BranchFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class AccountManagerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AccountManager

    user = factory.SubFactory(UserFactory, roles=["account_manager"])
    employee_no = factory.Sequence(lambda n: f"E{n:05d}")
    team = factory.SubFactory(TeamFactory)


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Client

    client_no = factory.Sequence(lambda n: f"C{n:08d}")
    name = factory.Faker("name")
    branch = factory.SelfAttribute("account_manager.team.branch")
    account_manager = factory.SubFactory(AccountManagerFactory)
    opened_on = dt.date(2020, 1, 2)
    birthday = dt.date(1980, 5, 17)


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Instrument
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"{600000 + n}.SH")
    name = factory.Sequence(lambda n: f"Stock {n}")
    asset_class = models.Instrument.AssetClass.STOCK
    board = "Main board"
    industry = "Banking"
    cap_class = models.Instrument.CapClass.LARGE
    risk_level = 3


class TradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Trade

    trade_id = factory.Sequence(lambda n: f"T{n:012d}")
    client = factory.SubFactory(ClientFactory)
    executed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    instrument = factory.SubFactory(InstrumentFactory)
    side = models.Trade.Side.BUY
    quantity = Decimal("100")
    price = Decimal("10.50")
    amount = factory.LazyAttribute(lambda o: (o.quantity * o.price).quantize(Decimal("0.01")))
    commission = factory.LazyAttribute(lambda o: (o.amount * Decimal("0.0003")).quantize(Decimal("0.01")))
    channel = models.Channel.MOBILE


class CashFlowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.CashFlow

    flow_id = factory.Sequence(lambda n: f"F{n:012d}")
    client = factory.SubFactory(ClientFactory)
    kind = models.CashFlow.Kind.DEPOSIT
    amount = Decimal("10000.00")
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=2))


class AssetSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AssetSnapshot

    client = factory.SubFactory(ClientFactory)
    as_of = dt.date(2026, 10, 31)
    cash = Decimal("5000.00")
    market_value = Decimal("20000.00")


class KYCProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.KYCProfile

    client = factory.SubFactory(ClientFactory)
    id_type = models.KYCProfile.IdType.RESIDENT_ID
    id_number = factory.Sequence(lambda n: f"11010519800517{n:04d}")
    id_expiry = dt.date(2035, 1, 1)


class RiskAssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.RiskAssessment

    client = factory.SubFactory(ClientFactory)
    risk_level = 3
    score = 55
    assessed_on = dt.date(2025, 6, 1)
    expires_on = dt.date(2027, 6, 1)


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Interaction

    client = factory.SubFactory(ClientFactory)
    channel = models.Interaction.Channel.PHONE
    direction = models.Interaction.Direction.OUTBOUND
    summary = "Quarterly portfolio review call."
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))


# --- feedback (surveys, complaints) ---------------------------------------------------------


class SurveyQuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "feedback.SurveyQuestion"

    kind = "nps"
    text = factory.LazyAttribute(
        lambda o: (
            "How likely are you to recommend us to a friend?"
            if o.kind == "nps"
            else "How satisfied are you with our service?"
        )
    )


class SurveyResponseFactory(factory.django.DjangoModelFactory):
    """An answer; `kind` follows the question's kind."""

    class Meta:
        model = "feedback.SurveyResponse"

    client = factory.SubFactory(ClientFactory)
    question = factory.SubFactory(SurveyQuestionFactory)
    kind = factory.SelfAttribute("question.kind")
    score = 8
    answered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    source = "api"


class ComplaintFactory(factory.django.DjangoModelFactory):
    """An open ticket with the default SLA due times of its severity (low: 48 h / 336 h)."""

    class Meta:
        model = "feedback.Complaint"

    client = factory.SubFactory(ClientFactory)
    channel = "phone"
    category = "service"
    severity = "low"
    description = "The branch did not call back about a transfer."
    opened_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    first_response_due_at = factory.LazyAttribute(lambda o: o.opened_at + dt.timedelta(hours=48))
    resolution_due_at = factory.LazyAttribute(lambda o: o.opened_at + dt.timedelta(hours=336))
