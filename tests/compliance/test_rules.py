"""Each flag rule: raised once, evidence updated, severity only rising, cleared by decision,
and the stage idempotent for a date."""

import datetime as dt
from decimal import Decimal

import pytest

from clients.models import CashFlow, KYCProfile
from compliance import services
from compliance.models import Flag, FlagKind, FlagStatus, Severity
from tests import factories
from tests.compliance.conftest import AS_OF, assess, buy, flags_of, instrument, local

pytestmark = pytest.mark.django_db


def kyc(client, **fields):
    defaults = {"last_review_on": AS_OF - dt.timedelta(days=30), "next_review_due": AS_OF + dt.timedelta(days=300)}
    return factories.KYCProfileFactory(client=client, **{**defaults, **fields})


def deposit(client, amount, when, kind=CashFlow.Kind.DEPOSIT):
    return factories.CashFlowFactory(client=client, kind=kind, amount=Decimal(amount), occurred_at=when)


# --- ID document -------------------------------------------------------------------------


def test_id_document_expiring_is_raised_once_and_severity_rises_when_it_expires(cast, comply):
    client = cast.alice_client
    assess(client, 3)
    kyc(client, id_expiry=AS_OF + dt.timedelta(days=10))
    factories.KYCProfileFactory(client=cast.bob_client, id_expiry=AS_OF + dt.timedelta(days=31))  # outside 30 days
    assess(cast.bob_client, 3)

    comply(AS_OF)
    comply(AS_OF)  # the same date again: nothing new

    (flag,) = flags_of(client, FlagKind.ID_DOCUMENT)
    assert flag.severity == Severity.LOW
    assert flag.evidence["state"] == "expiring"
    assert flag.evidence["days_to_expiry"] == 10
    assert flag.subject == f"expiry:{AS_OF + dt.timedelta(days=10)}"
    assert not flags_of(cast.bob_client, FlagKind.ID_DOCUMENT)

    later = AS_OF + dt.timedelta(days=15)  # expired 5 days ago
    comply(later)
    (flag,) = flags_of(client, FlagKind.ID_DOCUMENT)
    assert flag.severity == Severity.MEDIUM
    assert flag.evidence == {
        "state": "expired",
        "id_type": "resident_id",
        "id_expiry": str(AS_OF + dt.timedelta(days=10)),
        "days_to_expiry": -5,
    }
    assert flag.first_seen_on == AS_OF
    assert flag.last_seen_on == later
    comply(AS_OF + dt.timedelta(days=120))
    assert flags_of(client, FlagKind.ID_DOCUMENT)[0].severity == Severity.HIGH


def test_a_cleared_flag_is_not_raised_again_for_the_same_fact_but_a_new_fact_is(cast, comply):
    client = cast.alice_client
    assess(client, 3)
    profile = kyc(client, id_expiry=AS_OF - dt.timedelta(days=3))
    comply(AS_OF)
    (flag,) = flags_of(client, FlagKind.ID_DOCUMENT)
    services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="Renewal in progress.")

    comply(AS_OF + dt.timedelta(days=1))
    assert [f.status for f in flags_of(client, FlagKind.ID_DOCUMENT)] == [FlagStatus.CLEARED]

    # The client renews, and the new document expires in its turn: a new fact, a new flag.
    KYCProfile.objects.filter(pk=profile.pk).update(id_expiry=AS_OF + dt.timedelta(days=5))
    comply(AS_OF + dt.timedelta(days=2))
    flags = flags_of(client, FlagKind.ID_DOCUMENT)
    assert [f.status for f in flags] == [FlagStatus.CLEARED, FlagStatus.OPEN]
    assert flags[1].subject == f"expiry:{AS_OF + dt.timedelta(days=5)}"


# --- KYC review and risk assessment -----------------------------------------------------------


@pytest.mark.parametrize(
    ("aml_risk", "days_since_review", "flagged", "severity"),
    [
        ("high", 364, False, None),
        ("high", 367, True, Severity.HIGH),
        ("medium", 729, False, None),
        ("medium", 740, True, Severity.MEDIUM),
        ("low", 1094, False, None),
        ("low", 1095 + 200, True, Severity.HIGH),  # more than 180 days late
    ],
)
def test_kyc_review_is_overdue_by_risk_rating(cast, comply, aml_risk, days_since_review, flagged, severity):
    client = cast.alice_client
    assess(client, 3)
    last = AS_OF - dt.timedelta(days=days_since_review)
    kyc(client, aml_risk=aml_risk, last_review_on=last, next_review_due=None)

    comply(AS_OF)

    flags = flags_of(client, FlagKind.KYC_REVIEW_OVERDUE)
    assert bool(flags) == flagged
    if flagged:
        assert flags[0].severity == severity
        assert flags[0].subject == f"review:{last}"
        interval = {"high": 365, "medium": 730, "low": 1095}[aml_risk]
        assert flags[0].evidence["days_overdue"] == days_since_review - interval


def test_risk_assessment_older_than_two_years_or_missing(cast, comply):
    assess(cast.alice_client, 3, on=AS_OF - dt.timedelta(days=731))
    assess(cast.bob_client, 3, on=AS_OF - dt.timedelta(days=700))
    # mike's client has no assessment at all

    comply(AS_OF)

    (stale,) = flags_of(cast.alice_client, FlagKind.RISK_ASSESSMENT_STALE)
    assert (stale.severity, stale.evidence["age_days"]) == (Severity.LOW, 731)
    assert not flags_of(cast.bob_client, FlagKind.RISK_ASSESSMENT_STALE)
    (missing,) = flags_of(cast.mike_client, FlagKind.RISK_ASSESSMENT_STALE)
    assert (missing.severity, missing.subject) == (Severity.MEDIUM, "assessment:none")


# --- PEP, sanctions, jurisdiction from KYC -----------------------------------------------------


def test_declared_pep_sanctions_status_and_high_risk_country(cast, comply):
    for c in (cast.alice_client, cast.bob_client, cast.mike_client):
        assess(c, 3)
    kyc(cast.alice_client, is_pep=True)
    kyc(cast.bob_client, sanctions_status=KYCProfile.Screening.POTENTIAL_MATCH)
    kyc(cast.mike_client, nationality="IR")

    comply(AS_OF)
    comply(AS_OF + dt.timedelta(days=1))

    assert [(f.kind, f.severity) for f in flags_of(cast.alice_client)] == [(FlagKind.PEP, Severity.MEDIUM)]
    assert [(f.kind, f.subject) for f in flags_of(cast.bob_client)] == [(FlagKind.SANCTIONS, "kyc:potential_match")]
    assert [(f.kind, f.subject) for f in flags_of(cast.mike_client)] == [
        (FlagKind.HIGH_RISK_JURISDICTION, "country:IR")
    ]


# --- Suitability -------------------------------------------------------------------------------


def test_suitability_mismatch_reads_new_trades_only_and_counts_them(cast, comply):
    client = cast.alice_client
    assess(client, 2)
    r3, r5, r2 = instrument(3), instrument(5), instrument(2)
    buy(client, r3, local(AS_OF - dt.timedelta(days=1)))
    buy(client, r2, local(AS_OF - dt.timedelta(days=1)))  # within the level
    buy(client, r5, local(AS_OF - dt.timedelta(days=1)), amount="2000")

    comply(AS_OF)
    comply(AS_OF)  # re-run: the watermark has moved, no trade is counted twice

    flags = {f.subject: f for f in flags_of(client, FlagKind.SUITABILITY_MISMATCH)}
    assert set(flags) == {"instrument:R3.TEST", "instrument:R5.TEST"}
    assert flags["instrument:R3.TEST"].severity == Severity.MEDIUM
    assert flags["instrument:R5.TEST"].severity == Severity.HIGH  # three levels above
    assert flags["instrument:R3.TEST"].events == 1
    assert flags["instrument:R5.TEST"].evidence["amount"] == "2000.00"

    # The next day two more trades in R3: the open flag's evidence is updated, not a new flag.
    buy(client, r3, local(AS_OF + dt.timedelta(days=1)), amount="500")
    buy(client, r3, local(AS_OF + dt.timedelta(days=1), 11), amount="700")
    comply(AS_OF + dt.timedelta(days=1))
    (r3_flag,) = [f for f in flags_of(client, FlagKind.SUITABILITY_MISMATCH) if f.subject == "instrument:R3.TEST"]
    assert r3_flag.events == 3
    assert r3_flag.evidence["trades"] == 2
    assert r3_flag.evidence["amount"] == "1200.00"
    assert r3_flag.last_seen_on == AS_OF + dt.timedelta(days=1)


def test_an_acknowledged_warning_before_the_trade_covers_it(cast, comply):
    client = cast.alice_client
    assess(client, 2, on=dt.date(2026, 1, 5))
    r4 = instrument(4)
    services.suitability_record(
        client=client,
        instrument=r4,
        kind="order_warning",
        by=cast.alice.user,
        warning_text="R4 is above your C2 tolerance.",
        acknowledged_at=local(AS_OF - dt.timedelta(days=2)),
        acknowledgement_method="online",
    )
    buy(client, r4, local(AS_OF - dt.timedelta(days=1)))  # after the acknowledgement: covered
    buy(cast.bob_client, r4, local(AS_OF - dt.timedelta(days=1)))  # no assessment of bob's: earliest is none
    comply(AS_OF)

    assert not flags_of(client, FlagKind.SUITABILITY_MISMATCH)


def test_c1_client_above_r1_is_flagged_even_with_a_warning(cast, comply):
    client = cast.alice_client
    assess(client, 1)
    buy(client, instrument(2), local(AS_OF))
    buy(client, instrument(1, "R1.TEST"), local(AS_OF))

    comply(AS_OF)

    (flag,) = flags_of(client)[-1:]
    assert [f.kind for f in flags_of(client)] == [FlagKind.LOWEST_RISK_ABOVE_R1]
    assert flag.severity == Severity.HIGH
    assert flag.evidence["client_risk_level"] == "C1"


def test_the_level_at_the_trade_date_applies(cast, comply):
    client = cast.alice_client
    assess(client, 4, on=dt.date(2025, 1, 1))
    assess(client, 2, on=AS_OF)  # reassessed down after the trade
    buy(client, instrument(4), local(AS_OF - dt.timedelta(days=2)))

    comply(AS_OF)

    assert not flags_of(client, FlagKind.SUITABILITY_MISMATCH)


# --- AML ----------------------------------------------------------------------------------------


def test_large_deposit_withdrawn_within_days_with_little_trading(cast, comply):
    alice, bob, mike = cast.alice_client, cast.bob_client, cast.mike_client
    for c in (alice, bob, mike):
        assess(c, 3)
    day = AS_OF - dt.timedelta(days=6)
    # alice: 600k in, 550k out three days later, 10k traded: flagged
    deposit(alice, "600000", local(day))
    buy(alice, instrument(3), local(day + dt.timedelta(days=1)))
    deposit(alice, "550000", local(day + dt.timedelta(days=3)), kind=CashFlow.Kind.WITHDRAWAL)
    # bob: the same, but traded 200k in between: not flagged
    deposit(bob, "600000", local(day))
    buy(bob, instrument(3), local(day + dt.timedelta(days=1)), amount="200000")
    deposit(bob, "550000", local(day + dt.timedelta(days=3)), kind=CashFlow.Kind.WITHDRAWAL)
    # mike: withdrawn after the 5-day window: not flagged
    deposit(mike, "600000", local(day))
    deposit(mike, "550000", local(day + dt.timedelta(days=6)), kind=CashFlow.Kind.WITHDRAWAL)

    comply(AS_OF)
    comply(AS_OF + dt.timedelta(days=1))

    (flag,) = flags_of(alice, FlagKind.AML_RAPID_WITHDRAWAL)
    assert flag.severity == Severity.HIGH
    assert flag.evidence["deposit"] == "600000.00"
    assert flag.evidence["withdrawn_within_window"] == "550000.00"
    assert flag.evidence["traded_within_window"] == "10000.00"
    assert not flags_of(bob, FlagKind.AML_RAPID_WITHDRAWAL)
    assert not flags_of(mike, FlagKind.AML_RAPID_WITHDRAWAL)


def test_deposits_just_under_the_reporting_threshold(cast, comply):
    alice, bob = cast.alice_client, cast.bob_client
    assess(alice, 3)
    assess(bob, 3)
    for offset, amount in enumerate(["49500", "48000", "49990"]):
        deposit(alice, amount, local(AS_OF - dt.timedelta(days=offset)))
    for offset, amount in enumerate(["49500", "30000", "50000"]):  # only one just under
        deposit(bob, amount, local(AS_OF - dt.timedelta(days=offset)))

    comply(AS_OF)
    (flag,) = flags_of(alice, FlagKind.AML_STRUCTURING)
    assert (flag.evidence["deposits"], flag.evidence["total"]) == (3, "147490.00")
    assert not flags_of(bob, FlagKind.AML_STRUCTURING)

    # Cleared; a fourth deposit the next day is a new fact after the closure: a new flag.
    services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="Salary instalments, documented.")
    services.flag_decision_approve(flag=flag, officer=cast.dave, note="Agreed.")
    Flag.objects.filter(pk=flag.pk).update(closed_at=local(AS_OF + dt.timedelta(days=1)))  # closed back then
    comply(AS_OF + dt.timedelta(days=1))
    assert [f.status for f in flags_of(alice, FlagKind.AML_STRUCTURING)] == [FlagStatus.CLEARED]
    deposit(alice, "49000", local(AS_OF + dt.timedelta(days=2)))
    comply(AS_OF + dt.timedelta(days=2))
    flags = flags_of(alice, FlagKind.AML_STRUCTURING)
    assert [f.status for f in flags] == [FlagStatus.CLEARED, FlagStatus.OPEN]
    assert flags[1].evidence["deposits"] == 4


# --- The stage as a whole ------------------------------------------------------------------------


def test_the_stage_is_idempotent_for_a_date(cast, comply):
    assess(cast.alice_client, 2)
    kyc(cast.alice_client, is_pep=True, id_expiry=AS_OF + dt.timedelta(days=3))
    buy(cast.alice_client, instrument(4), local(AS_OF))

    first = comply(AS_OF)
    snapshot = list(Flag.objects.order_by("id").values("client", "kind", "subject", "severity", "evidence", "events"))
    comply(AS_OF)

    assert (
        list(Flag.objects.order_by("id").values("client", "kind", "subject", "severity", "evidence", "events"))
        == snapshot
    )
    assert len(snapshot) == 5  # pep, id document, suitability + bob's and mike's missing assessments
    stage = first.stage_runs.get(name="compliance", attempt=1)
    assert stage.detail["raised"] == {
        "pep": 1,
        "id_document": 1,
        "suitability_mismatch": 1,
        "risk_assessment_stale": 2,
    }
