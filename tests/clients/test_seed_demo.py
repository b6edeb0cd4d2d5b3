"""seed_demo: a deterministic, realistic demo book and the demo users."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zoneinfo
from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.db.models import Count, Exists, Max, Min, OuterRef, Subquery, Sum
from django.db.models.functions import Length
from rest_framework.authtoken.models import Token

from brokercrm import roles
from clients.demo import writers
from clients.demo.book import DEMO_MODELS
from clients.demo.report import commission_concentration
from clients.demo.users import DEFAULT_DEMO_PASSWORD
from clients.models import (
    AccountManager,
    AssetSnapshot,
    Branch,
    CashFlow,
    Client,
    Instrument,
    KYCProfile,
    RiskAssessment,
    Trade,
)

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 15)
ZONE = zoneinfo.ZoneInfo(settings.TIME_ZONE)


def seed(*, clients: int = 300, months: int = 12, seed: int = 7, reset: bool = True) -> str:
    out = io.StringIO()
    args = ["--clients", str(clients), "--months", str(months), "--seed", str(seed), "--as-of", AS_OF.isoformat()]
    call_command("seed_demo", *args, *(["--reset"] if reset else []), "--no-progress", stdout=out)
    return out.getvalue()


def fingerprint() -> str:
    """A hash of every generated row that matters (ids included)."""
    digest = hashlib.sha256()
    tables = [
        Client.objects.values_list("id", "client_no", "name", "branch_id", "account_manager_id", "status", "opened_on"),
        KYCProfile.objects.values_list("client_id", "id_number", "id_expiry", "is_pep", "aml_risk", "next_review_due"),
        RiskAssessment.objects.values_list("client_id", "risk_level", "score", "assessed_on"),
        Trade.objects.values_list(
            "trade_id", "client_id", "executed_at", "instrument_id", "side", "quantity", "price", "amount", "commission"
        ),
        CashFlow.objects.values_list("flow_id", "client_id", "kind", "amount", "occurred_at"),
        AssetSnapshot.objects.values_list("client_id", "as_of", "cash", "market_value"),
    ]
    for rows in tables:
        for row in rows.order_by("pk").iterator():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def counts() -> dict[str, int]:
    found = {model.__name__: model.objects.count() for model in DEMO_MODELS}
    found["users"] = get_user_model().objects.count()
    found["groups"] = Group.objects.count()
    found["tokens"] = Token.objects.count()
    return found


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=ZONE)


def test_same_seed_gives_the_same_book_and_another_seed_a_different_one() -> None:
    seed(seed=7)
    first = fingerprint()
    first_trade_ids = list(Trade.objects.order_by("id").values_list("trade_id", "amount")[:50])

    seed(seed=7)
    assert fingerprint() == first
    assert list(Trade.objects.order_by("id").values_list("trade_id", "amount")[:50]) == first_trade_ids

    seed(seed=8)
    assert fingerprint() != first


def test_rerunning_with_reset_is_idempotent() -> None:
    seed()
    before = counts()
    seed()
    assert counts() == before
    assert before["Client"] == 300
    assert before["KYCProfile"] == 300
    assert before["Trade"] > 1000


def test_without_reset_a_second_book_is_appended_without_collisions() -> None:
    seed(clients=200, seed=1)
    trades = Trade.objects.count()
    seed(clients=200, seed=2, reset=False)
    assert Client.objects.count() == 400
    assert Trade.objects.count() > trades
    assert Branch.objects.count() == 9  # reference data is found again, not duplicated
    assert Instrument.objects.values("symbol").distinct().count() == Instrument.objects.count()


def test_commission_is_concentrated_like_a_real_brokerage() -> None:
    output = seed(clients=2000, months=12, seed=11)
    measured = commission_concentration(as_of=AS_OF)

    # The same figure computed independently with the ORM.
    start = local_midnight(dt.date(AS_OF.year - 1, AS_OF.month, AS_OF.day))
    per_client = sorted(
        (
            row["total"]
            for row in Trade.objects.filter(executed_at__gte=start, executed_at__lt=local_midnight(AS_OF))
            .values("client_id")
            .annotate(total=Sum("commission"))
        ),
        reverse=True,
    )
    top = per_client[: measured.top_clients]
    assert measured.share == pytest.approx(float(sum(top) / sum(per_client)), rel=1e-6)
    assert 0.70 <= measured.share <= 0.90
    assert f"{measured.share:.1%}" in output


def test_every_archetype_is_present() -> None:
    seed(clients=300, months=24, seed=5)
    year_ago = local_midnight(AS_OF - dt.timedelta(days=365))
    half_year_ago = local_midnight(AS_OF - dt.timedelta(days=182))
    last_trade = Trade.objects.values("client_id").annotate(last=Max("executed_at"), first=Min("executed_at"))

    # Dormant: traded in the history, nothing for more than a year.
    assert any(row["last"] < year_ago for row in last_trade)

    # Regulatory dormant: no trade in the whole history, a few yuan of cash, no securities.
    latest = AssetSnapshot.objects.filter(as_of=AssetSnapshot.objects.aggregate(m=Max("as_of"))["m"])
    traded = Trade.objects.filter(client_id=OuterRef("client_id"))
    tiny = latest.filter(cash__lt=100, market_value=0, client__opened_on__lt=AS_OF - dt.timedelta(days=730))
    assert tiny.exclude(Exists(traded)).exists()

    # High assets, low activity.
    recent_trades = Trade.objects.filter(client_id=OuterRef("client_id"), executed_at__gte=year_ago)
    big = latest.filter(total__gte=1_000_000).annotate(
        recent=Subquery(recent_trades.values("client_id").annotate(n=Count("id")).values("n")[:1])
    )
    assert any((row.recent or 0) <= 2 for row in big)

    # Fading: was trading, stopped, took money out, assets fell.
    fading = []
    for client_id in {row["client_id"] for row in last_trade if half_year_ago <= row["last"] < local_midnight(AS_OF)}:
        flows = CashFlow.objects.filter(client_id=client_id, occurred_at__gte=half_year_ago)
        out = flows.filter(kind="withdrawal").aggregate(s=Sum("amount"))["s"] or Decimal(0)
        deposits = flows.filter(kind="deposit").aggregate(s=Sum("amount"))["s"] or Decimal(0)
        snapshots = list(
            AssetSnapshot.objects.filter(client_id=client_id).order_by("as_of").values_list("total", flat=True)
        )
        recent = Trade.objects.filter(
            client_id=client_id, executed_at__gte=local_midnight(AS_OF - dt.timedelta(days=14))
        )
        if out > 2 * deposits and len(snapshots) > 6 and snapshots[-1] < snapshots[-7] / 2 and not recent.exists():
            fading.append(client_id)
    assert fading

    # KYC: expired and expiring documents, PEPs, overdue reviews; stale risk assessments.
    kyc = KYCProfile.objects.all()
    assert kyc.count() == Client.objects.count()
    assert kyc.filter(id_expiry__lt=AS_OF).exists()
    assert kyc.filter(id_expiry__gte=AS_OF, id_expiry__lte=AS_OF + dt.timedelta(days=30)).exists()
    assert kyc.filter(is_pep=True).exists()
    assert kyc.filter(next_review_due__lt=AS_OF).exists()
    assert set(kyc.values_list("aml_risk", flat=True)) == {"low", "medium", "high"}
    latest_assessment = RiskAssessment.objects.values("client_id").annotate(latest=Max("assessed_on"))
    assert any(row["latest"] < AS_OF - dt.timedelta(days=730) for row in latest_assessment)

    # Suitability: someone traded above their current risk level.
    level = RiskAssessment.objects.filter(client_id=OuterRef("client_id")).order_by("-assessed_on").values("risk_level")
    assert (
        Trade.objects.annotate(level=Subquery(level[:1])).filter(instrument__risk_level__gt=models.F("level")).exists()
    )

    statuses = set(Client.objects.values_list("status", flat=True))
    assert {"open", "closed", "restricted"} <= statuses


def test_reference_data_is_rich_enough() -> None:
    seed()
    instruments = Instrument.objects.all()
    assert instruments.count() >= 300
    assert {"stock", "bond", "fund", "futures", "option", "repo"} <= set(
        instruments.values_list("asset_class", flat=True)
    )
    assert {"Main board", "ChiNext", "STAR", "BSE"} <= set(instruments.values_list("board", flat=True))
    assert instruments.filter(market="primary").exists()
    assert instruments.filter(is_st=True).exists()
    assert instruments.filter(is_blue_chip=True).exists()
    assert set(instruments.values_list("risk_level", flat=True)) == {1, 2, 3, 4, 5}
    assert set(instruments.values_list("cap_class", flat=True)) >= {"large", "mid", "small"}
    assert 6 <= Branch.objects.count() <= 10
    channels = dict(Trade.objects.values_list("channel").annotate(n=Count("id")))
    assert set(channels) == {"mobile", "online", "phone", "self_service", "counter", "other"}
    assert max(channels, key=channels.get) == "mobile"


def test_rows_respect_choices_and_lengths() -> None:
    """SQLite does not enforce varchar lengths or choices: check them here."""
    seed()
    for model in DEMO_MODELS:
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField) and field.max_length:
                longest = model.objects.aggregate(m=Max(Length(field.name)))["m"] or 0
                assert longest <= field.max_length, (model.__name__, field.name, longest)
            if field.choices and not field.is_relation:
                allowed = {value for value, _label in field.flatchoices}
                found = set(model.objects.values_list(field.name, flat=True).distinct())
                assert found <= allowed, (model.__name__, field.name, found - allowed)


def test_trades_are_consistent_in_time_order_and_never_in_the_future() -> None:
    seed()
    rows = list(
        Trade.objects.order_by("id").values_list(
            "executed_at", "quantity", "price", "amount", "commission", "instrument__asset_class", "instrument__market"
        )
    )
    assert rows
    executed = [row[0] for row in rows]
    assert executed == sorted(executed), "trades must be stored in execution-time order"
    assert max(executed) < local_midnight(AS_OF)
    for executed_at, quantity, price, amount, commission, asset_class, market in rows:
        local = executed_at.astimezone(ZONE)
        assert local.weekday() < 5
        assert dt.time(9, 30) <= local.time() < dt.time(11, 30) or dt.time(13, 0) <= local.time() < dt.time(15, 0)
        assert quantity > 0
        assert abs(amount - quantity * price) <= Decimal("0.005") * quantity * price + Decimal("0.01")
        if market == "primary":
            assert commission == 0
        elif asset_class == "stock":
            assert commission >= Decimal("5.00")
        if commission > Decimal("5.01"):
            assert Decimal("0.00014") <= commission / amount <= Decimal("0.00081")
    assert not CashFlow.objects.filter(occurred_at__gte=local_midnight(AS_OF)).exists()
    assert not AssetSnapshot.objects.filter(as_of__gte=AS_OF).exists()
    assert not CashFlow.objects.filter(amount__lte=0).exists()


def test_demo_users_roles_and_books() -> None:
    output = seed()
    user_model = get_user_model()
    for role in roles.ALL_ROLES:
        assert Group.objects.filter(name=role).exists()
    expected = {
        "am_alice": roles.ACCOUNT_MANAGER,
        "am_bob": roles.ACCOUNT_MANAGER,
        "lead_tina": roles.TEAM_LEAD,
        "compliance_carol": roles.COMPLIANCE_OFFICER,
        "compliance_dave": roles.COMPLIANCE_OFFICER,
        "ops_olga": roles.OPS,
        "system_api": roles.API_SYSTEM,
    }
    for username, role in expected.items():
        user = user_model.objects.get(username=username)
        assert user.groups.filter(name=role).exists(), username
        assert user.check_password(DEFAULT_DEMO_PASSWORD)
        assert username in output
    assert DEFAULT_DEMO_PASSWORD in output

    alice = AccountManager.objects.get(user__username="am_alice")
    bob = AccountManager.objects.get(user__username="am_bob")
    assert alice.team_id == bob.team_id
    assert alice.team.lead.username == "lead_tina"
    alice_book = set(Client.objects.filter(account_manager=alice).values_list("id", flat=True))
    bob_book = set(Client.objects.filter(account_manager=bob).values_list("id", flat=True))
    assert alice_book
    assert bob_book
    assert not alice_book & bob_book
    assert AccountManager.objects.filter(user__username="am_0003").exists()

    olga = user_model.objects.get(username="ops_olga")
    assert olga.is_staff
    assert not olga.is_superuser
    for permission in ("view_trade", "view_cashflow", "view_assetsnapshot", "change_client", "add_instrument"):
        assert olga.has_perm(f"clients.{permission}"), permission
    for permission in ("change_trade", "add_trade", "delete_client", "change_assetsnapshot"):
        assert not olga.has_perm(f"clients.{permission}"), permission

    token = Token.objects.get(user__username="system_api")
    assert token.key in output
    seed()
    assert Token.objects.get(user__username="system_api").key == token.key


def test_demo_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-pass-9")
    seed(clients=50)
    assert get_user_model().objects.get(username="am_alice").check_password("another-demo-pass-9")


def test_writer_is_chosen_by_the_database() -> None:
    writer = writers.bulk_writer(connection)
    expected = writers.PostgresCopyWriter if connection.vendor == "postgresql" else writers.SqliteWriter
    assert isinstance(writer, expected)


def test_frames_missing_a_column_are_refused() -> None:
    writer = writers.bulk_writer(connection)
    with pytest.raises(ValueError, match="missing"):
        writer.insert(Branch, {"id": np.array([1]), "code": np.array(["X"])})


@pytest.mark.postgres
def test_postgres_copy_path_restores_indexes_constraints_and_sequences() -> None:
    def structure() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'clients_%%' "
                "UNION ALL SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid::regclass::text LIKE 'clients_%%' ORDER BY 1, 2, 3"
            )
            return cursor.fetchall()

    before = structure()
    assert isinstance(writers.bulk_writer(connection), writers.PostgresCopyWriter)
    seed()
    assert structure() == before
    assert Trade.objects.count() > 1000
    first = fingerprint()

    # Sequences were moved past the ids the seeder assigned: the ORM can insert again.
    trade = Trade.objects.create(
        trade_id="T-after-seed",
        client=Client.objects.first(),
        executed_at=local_midnight(AS_OF),
        instrument=Instrument.objects.first(),
        side="buy",
        quantity=Decimal(100),
        price=Decimal("10.00"),
        amount=Decimal("1000.00"),
        commission=Decimal("5.00"),
        channel="mobile",
    )
    assert trade.pk > Trade.objects.exclude(pk=trade.pk).aggregate(m=Max("pk"))["m"]
    assert (
        Branch.objects.create(code="NEW1", name="New").pk
        > Branch.objects.exclude(code="NEW1").aggregate(m=Max("pk"))["m"]
    )

    # A reset on PostgreSQL truncates (the extra rows go) and reloads the same book.
    seed()
    assert fingerprint() == first
    assert structure() == before


def test_demo_logins_prints_the_cast_password_and_token() -> None:
    call_command("seed_demo", clients=60, months=2, seed=3, no_progress=True, stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo_logins", url="http://127.0.0.1:9000/", stdout=out)
    text = out.getvalue()
    for username in ("am_alice", "am_bob", "lead_tina", "compliance_carol", "compliance_dave", "ops_olga"):
        assert username in text
    assert "http://127.0.0.1:9000/" in text
    assert Token.objects.get(user__username="system_api").key in text


def test_demo_logins_without_a_demo_says_what_to_do() -> None:
    with pytest.raises(CommandError, match=r"run `python manage\.py seed_demo` first"):
        call_command("demo_logins", stdout=io.StringIO())
