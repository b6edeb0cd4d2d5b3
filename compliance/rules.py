"""The flag rules: each one a SQL query (the database filters, joins and aggregates) whose
few matching rows are shaped here into flag candidates.

No rule loops over clients or the ledger in Python: each returns only the rows that match,
a few percent of the book at most. The suitability rule reads only the trades added since
the previous run (a trade-id watermark, like the activity rollup); the AML rules read a
bounded window of cash flows.

A candidate's identity is (client, kind, subject). The subject names the fact, so a new
fact is a new flag: an ID document by its expiry date, a KYC review by the last review date,
a risk assessment by its date, a screening match by its watch-list entry, a suitability
breach by its instrument, a large deposit by its flow id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from clients.models import CashFlow, Client, KYCProfile, RiskAssessment, Trade
from compliance import conf
from compliance.models import FlagKind, ScreeningMatch, ScreeningWhitelist, Severity, SuitabilityRecord, WatchList

MONEY = DecimalField(max_digits=24, decimal_places=2)
CENT = Decimal("0.01")


def money(value: Decimal | int | float | None) -> str | None:
    """Money as a string with two decimals (SQLite sums come back without their scale)."""
    return None if value is None else str(Decimal(str(value)).quantize(CENT))


@dataclass
class CandidateRow:
    client_id: int
    kind: str
    subject: str
    severity: int
    evidence: dict[str, Any]
    evidence_at: dt.datetime | None = None
    events: int = 0


@dataclass
class Window:
    """What the rules look at: the as-of date, and the trade ids the suitability check reads."""

    as_of: dt.date
    trade_id_from: int  # exclusive
    trade_id_to: int  # inclusive
    first_run: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


def _end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in the exchange time zone."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def _kyc_of_open_clients(as_of: dt.date) -> Any:
    return KYCProfile.objects.filter(client__opened_on__lte=as_of).filter(
        Q(client__closed_on__isnull=True) | Q(client__closed_on__gt=as_of)
    )


def id_document(window: Window) -> list[CandidateRow]:
    """ID document expired, or expiring within COMPLIANCE_ID_EXPIRY_WARNING_DAYS (valid through
    its expiry date). Expiring: low; expired: medium; expired longer than
    COMPLIANCE_ID_EXPIRED_HIGH_DAYS: high."""
    as_of = window.as_of
    horizon = as_of + dt.timedelta(days=conf.id_expiry_warning_days())
    high_after = conf.id_expired_high_days()
    rows = (
        _kyc_of_open_clients(as_of)
        .filter(id_expiry__isnull=False, id_expiry__lte=horizon)
        .values_list("client_id", "id_type", "id_expiry")
    )
    out = []
    for client_id, id_type, expiry in rows.iterator(chunk_size=5000):
        days = (expiry - as_of).days
        if days >= 0:
            severity, state = Severity.LOW, "expiring"
        else:
            severity = Severity.HIGH if -days > high_after else Severity.MEDIUM
            state = "expired"
        out.append(
            CandidateRow(
                client_id,
                FlagKind.ID_DOCUMENT,
                f"expiry:{expiry.isoformat()}",
                severity,
                {"state": state, "id_type": id_type, "id_expiry": expiry.isoformat(), "days_to_expiry": days},
            )
        )
    return out


def kyc_review_overdue(window: Window) -> list[CandidateRow]:
    """KYC review overdue: no review for longer than COMPLIANCE_KYC_REVIEW_DAYS of the client's
    AML risk (high yearly, medium every 2 years, low every 3), never reviewed, or past its
    recorded next-review date. Medium; high when the AML risk is high or the review is more
    than COMPLIANCE_KYC_OVERDUE_HIGH_DAYS late."""
    as_of = window.as_of
    intervals = conf.kyc_review_days()
    late_high = conf.kyc_overdue_high_days()
    overdue = Q(last_review_on__isnull=True) | Q(next_review_due__lt=as_of)
    for risk, days in intervals.items():
        overdue |= Q(aml_risk=risk, last_review_on__lt=as_of - dt.timedelta(days=days))
    rows = (
        _kyc_of_open_clients(as_of)
        .filter(overdue)
        .values_list("client_id", "aml_risk", "last_review_on", "next_review_due", "client__opened_on")
    )
    out = []
    for client_id, aml_risk, last_review, next_due, opened_on in rows.iterator(chunk_size=5000):
        interval = dt.timedelta(days=intervals.get(aml_risk, intervals["low"]))
        dues = [day for day in (next_due, (last_review or opened_on) + interval) if day is not None]
        due = min(dues)
        if due >= as_of:
            continue  # never reviewed, but a new client still inside the first interval
        late = (as_of - due).days
        severity = Severity.HIGH if aml_risk == KYCProfile.AmlRisk.HIGH or late > late_high else Severity.MEDIUM
        out.append(
            CandidateRow(
                client_id,
                FlagKind.KYC_REVIEW_OVERDUE,
                f"review:{last_review.isoformat() if last_review else 'never'}",
                severity,
                {
                    "aml_risk": aml_risk,
                    "last_review_on": last_review.isoformat() if last_review else None,
                    "due_on": due.isoformat(),
                    "days_overdue": late,
                },
            )
        )
    return out


def risk_assessment_stale(window: Window) -> list[CandidateRow]:
    """Latest risk (suitability) assessment older than COMPLIANCE_RISK_ASSESSMENT_MAX_AGE_DAYS,
    or none at all. Low; medium with no assessment."""
    as_of = window.as_of
    cutoff = as_of - dt.timedelta(days=conf.risk_assessment_max_age_days())
    rows = (
        Client.objects.open_on(as_of)
        .annotate(latest=Max("risk_assessments__assessed_on", filter=Q(risk_assessments__assessed_on__lte=as_of)))
        .filter(Q(latest__lt=cutoff) | Q(latest__isnull=True))
        .values_list("pk", "latest")
    )
    out = []
    for client_id, latest in rows.iterator(chunk_size=5000):
        out.append(
            CandidateRow(
                client_id,
                FlagKind.RISK_ASSESSMENT_STALE,
                f"assessment:{latest.isoformat() if latest else 'none'}",
                Severity.LOW if latest else Severity.MEDIUM,
                {
                    "assessed_on": latest.isoformat() if latest else None,
                    "age_days": (as_of - latest).days if latest else None,
                },
            )
        )
    return out


def declared_pep_and_sanctions(window: Window) -> list[CandidateRow]:
    """From the KYC profile: a declared PEP (medium), a sanctions screening result of potential
    or confirmed match from the back office (high), and a nationality in
    COMPLIANCE_HIGH_RISK_COUNTRIES (high)."""
    countries = conf.high_risk_countries()
    rows = (
        _kyc_of_open_clients(window.as_of)
        .filter(
            Q(is_pep=True)
            | Q(sanctions_status__in=[KYCProfile.Screening.POTENTIAL_MATCH, KYCProfile.Screening.CONFIRMED_MATCH])
            | Q(nationality__in=countries)
        )
        .values_list("client_id", "is_pep", "sanctions_status", "nationality")
    )
    out = []
    for client_id, is_pep, sanctions_status, nationality in rows.iterator(chunk_size=5000):
        if is_pep:
            out.append(CandidateRow(client_id, FlagKind.PEP, "kyc", Severity.MEDIUM, {"source": "kyc", "is_pep": True}))
        if sanctions_status in (KYCProfile.Screening.POTENTIAL_MATCH, KYCProfile.Screening.CONFIRMED_MATCH):
            out.append(
                CandidateRow(
                    client_id,
                    FlagKind.SANCTIONS,
                    f"kyc:{sanctions_status}",
                    Severity.HIGH,
                    {"source": "kyc", "sanctions_status": sanctions_status},
                )
            )
        if nationality in countries:
            out.append(
                CandidateRow(
                    client_id,
                    FlagKind.HIGH_RISK_JURISDICTION,
                    f"country:{nationality}",
                    Severity.HIGH,
                    {"nationality": nationality},
                )
            )
    return out


def screening_matches(window: Window) -> list[CandidateRow]:
    """Current screening matches of clients not closed, less the whitelisted ones: a sanctions
    list match is high, a PEP list match medium (high when the date of birth agrees too)."""
    whitelisted = ScreeningWhitelist.objects.filter(client_id=OuterRef("client_id"), entry_id=OuterRef("entry_id"))
    rows = (
        ScreeningMatch.objects.filter(client__opened_on__lte=window.as_of)
        .filter(Q(client__closed_on__isnull=True) | Q(client__closed_on__gt=window.as_of))
        .exclude(Exists(whitelisted))
        .values_list(
            "client_id",
            "entry_id",
            "score",
            "name_score",
            "matched_fields",
            "matched_name",
            "client_name",
            "entry__watch_list__name",
            "entry__watch_list__kind",
            "entry__external_id",
        )
    )
    out = []
    for client_id, entry_id, score, name_score, fields, matched, client_name, list_name, list_kind, ext in rows:
        is_sanctions = list_kind == WatchList.Kind.SANCTIONS
        severity = Severity.HIGH if is_sanctions or "dob" in fields else Severity.MEDIUM
        out.append(
            CandidateRow(
                client_id,
                FlagKind.SANCTIONS if is_sanctions else FlagKind.PEP,
                f"entry:{entry_id}",
                severity,
                {
                    "source": "screening",
                    "watch_list": list_name,
                    "entry_id": entry_id,
                    "entry_external_id": ext,
                    "score": score,
                    "name_score": name_score,
                    "matched_fields": fields,
                    "matched_name": matched,
                    "client_name": client_name,
                },
            )
        )
    return out


def _trades_in_window(window: Window) -> Any:
    """Buy executions (not reversals, not reversed) the suitability check reads this run."""
    trades = Trade.objects.filter(
        id__gt=window.trade_id_from,
        id__lte=window.trade_id_to,
        side=Trade.Side.BUY,
        reverses__isnull=True,
        reversed_by__isnull=True,
    )
    if window.first_run:
        start = _end_of_day(window.as_of - dt.timedelta(days=conf.suitability_first_run_days()))
        trades = trades.filter(executed_at__gte=start)
    return trades


def suitability(window: Window) -> list[CandidateRow]:
    """Buys of a product whose risk level R is above the client's level C (from the latest
    assessment on or before the trade day; the client's earliest one if the trade predates
    every assessment), per (client, instrument):

    - C1 ("lowest") clients above R1: kind c1_above_r1, high, whatever was acknowledged
      (a warning cannot waive it);
    - others without a recorded warning acknowledged before the trade: suitability_mismatch,
      medium, high when R is two or more levels above C.
    """
    day = TruncDate("executed_at", tzinfo=timezone.get_default_timezone())
    on_or_before = (
        RiskAssessment.objects.filter(client_id=OuterRef("client_id"), assessed_on__lte=OuterRef("day"))
        .order_by("-assessed_on")
        .values("risk_level")[:1]
    )
    earliest = (
        RiskAssessment.objects.filter(client_id=OuterRef("client_id")).order_by("assessed_on").values("risk_level")[:1]
    )
    acknowledged = SuitabilityRecord.objects.filter(
        client_id=OuterRef("client_id"),
        instrument_id=OuterRef("instrument_id"),
        acknowledged_at__isnull=False,
        acknowledged_at__lte=OuterRef("executed_at"),
    )
    trades = (
        _trades_in_window(window)
        .annotate(day=day)
        .annotate(client_level=Coalesce(Subquery(on_or_before), Subquery(earliest)))
        .filter(client_level__isnull=False, instrument__risk_level__gt=F("client_level"))
        .annotate(acknowledged=Exists(acknowledged))
        .filter(Q(client_level=1) | Q(acknowledged=False))
    )
    groups = (
        trades.values("client_id", "instrument_id", "instrument__symbol", "instrument__risk_level", "client_level")
        .annotate(
            trades=Count("id"),
            amount=Sum("amount"),
            first_at=Min("executed_at"),
            last_at=Max("executed_at"),
            first_trade=Min("trade_id"),
            last_trade=Max("trade_id"),
        )
        .order_by()
    )
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    for row in groups:
        key = (row["client_id"], row["instrument_id"])
        current = merged.get(key)
        if current is None:
            merged[key] = dict(row)
            continue
        # The same client and product under two assessments: one flag, the lower (worse) level.
        current["client_level"] = min(current["client_level"], row["client_level"])
        current["trades"] += row["trades"]
        current["amount"] += row["amount"]
        current["first_at"] = min(current["first_at"], row["first_at"])
        current["last_at"] = max(current["last_at"], row["last_at"])
        current["first_trade"] = min(current["first_trade"], row["first_trade"])
        current["last_trade"] = max(current["last_trade"], row["last_trade"])
    out = []
    for row in merged.values():
        client_level, product_level = int(row["client_level"]), int(row["instrument__risk_level"])
        if client_level == 1:
            kind, severity = FlagKind.LOWEST_RISK_ABOVE_R1, Severity.HIGH
        else:
            kind = FlagKind.SUITABILITY_MISMATCH
            severity = Severity.HIGH if product_level - client_level >= 2 else Severity.MEDIUM
        out.append(
            CandidateRow(
                row["client_id"],
                kind,
                f"instrument:{row['instrument__symbol']}",
                severity,
                {
                    "instrument": row["instrument__symbol"],
                    "product_risk_level": f"R{product_level}",
                    "client_risk_level": f"C{client_level}",
                    "trades": row["trades"],
                    "amount": money(row["amount"]),
                    "first_trade_at": row["first_at"].isoformat(),
                    "last_trade_at": row["last_at"].isoformat(),
                    "first_trade_id": row["first_trade"],
                    "last_trade_id": row["last_trade"],
                },
                evidence_at=row["last_at"],
                events=row["trades"],
            )
        )
    return out


def _not_reversed_deposits() -> Any:
    return CashFlow.objects.filter(kind=CashFlow.Kind.DEPOSIT, reverses__isnull=True, reversed_by__isnull=True)


def aml_rapid_withdrawal(window: Window) -> list[CandidateRow]:
    """A deposit of at least COMPLIANCE_AML_LARGE_DEPOSIT (in the last COMPLIANCE_AML_LOOKBACK_DAYS)
    of which at least COMPLIANCE_AML_WITHDRAWN_SHARE was withdrawn within
    COMPLIANCE_AML_WITHDRAWAL_DAYS, while the client traded less than
    COMPLIANCE_AML_MAX_TRADED_SHARE of it in between. High."""
    as_of_end = _end_of_day(window.as_of)
    lookback_start = _end_of_day(window.as_of - dt.timedelta(days=conf.aml_lookback_days()))
    days = dt.timedelta(days=conf.aml_withdrawal_days())
    large = conf.aml_large_deposit()
    withdrawn = (
        CashFlow.objects.filter(
            client_id=OuterRef("client_id"),
            kind=CashFlow.Kind.WITHDRAWAL,
            occurred_at__gt=OuterRef("occurred_at"),
            occurred_at__lte=OuterRef("window_end"),
            occurred_at__lt=as_of_end,
        )
        .order_by()
        .values("client_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    traded = (
        Trade.objects.filter(
            client_id=OuterRef("client_id"),
            executed_at__gt=OuterRef("occurred_at"),
            executed_at__lte=OuterRef("window_end"),
            executed_at__lt=as_of_end,
        )
        .order_by()
        .values("client_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        _not_reversed_deposits()
        .filter(amount__gte=large, occurred_at__gte=lookback_start, occurred_at__lt=as_of_end)
        .annotate(window_end=ExpressionWrapper(F("occurred_at") + Value(days), output_field=DateTimeField()))
        .annotate(
            withdrawn=Coalesce(Subquery(withdrawn, output_field=MONEY), Value(Decimal(0)), output_field=MONEY),
            traded=Coalesce(Subquery(traded, output_field=MONEY), Value(Decimal(0)), output_field=MONEY),
        )
        .filter(
            withdrawn__gte=F("amount") * Value(conf.aml_withdrawn_share(), output_field=MONEY),
            traded__lt=F("amount") * Value(conf.aml_max_traded_share(), output_field=MONEY),
        )
        .values_list("client_id", "flow_id", "amount", "occurred_at", "withdrawn", "traded")
    )
    out = []
    for client_id, flow_id, amount, occurred_at, withdrawn_sum, traded_sum in rows:
        out.append(
            CandidateRow(
                client_id,
                FlagKind.AML_RAPID_WITHDRAWAL,
                f"deposit:{flow_id}",
                Severity.HIGH,
                {
                    "deposit_flow_id": flow_id,
                    "deposit": money(amount),
                    "deposited_at": occurred_at.isoformat(),
                    "withdrawn_within_window": money(withdrawn_sum),
                    "traded_within_window": money(traded_sum),
                    "window_days": days.days,
                },
            )
        )
    return out


def aml_structuring(window: Window) -> list[CandidateRow]:
    """At least COMPLIANCE_AML_STRUCTURING_COUNT deposits just under the reporting threshold
    (within COMPLIANCE_AML_STRUCTURING_MARGIN below it) in the last
    COMPLIANCE_AML_STRUCTURING_DAYS days. High. One flag per client while open; a series
    after the flag was closed raises a new one."""
    threshold = conf.aml_reporting_threshold()
    floor = threshold * (1 - conf.aml_structuring_margin())
    as_of_end = _end_of_day(window.as_of)
    start = _end_of_day(window.as_of - dt.timedelta(days=conf.aml_structuring_days()))
    rows = (
        _not_reversed_deposits()
        .filter(amount__gte=floor, amount__lt=threshold, occurred_at__gte=start, occurred_at__lt=as_of_end)
        .values("client_id")
        .annotate(
            deposits=Count("id"),
            total=Sum("amount"),
            first_at=Min("occurred_at"),
            last_at=Max("occurred_at"),
        )
        .filter(deposits__gte=conf.aml_structuring_count())
        .order_by()
    )
    out = []
    for row in rows:
        out.append(
            CandidateRow(
                row["client_id"],
                FlagKind.AML_STRUCTURING,
                "structuring",
                Severity.HIGH,
                {
                    "deposits": row["deposits"],
                    "total": money(row["total"]),
                    "threshold": money(threshold),
                    "first_deposit_at": row["first_at"].isoformat(),
                    "last_deposit_at": row["last_at"].isoformat(),
                    "window_days": conf.aml_structuring_days(),
                },
                evidence_at=row["last_at"],
            )
        )
    return out


RULES = (
    id_document,
    kyc_review_overdue,
    risk_assessment_stale,
    declared_pep_and_sanctions,
    screening_matches,
    suitability,
    aml_rapid_withdrawal,
    aml_structuring,
)
