"""Compliance data for the demo book (called once by `seed_demo`).

The demo generator already gives the book declared PEPs, back-office sanctions results,
expired and expiring ID documents, overdue KYC reviews, stale risk assessments and clients
trading above their risk level. This adds what it has no notion of:
- the sample watch lists (samples/watchlist_*.csv), and a demo list per kind naming a few
  book clients in another spelling (pinyin, given name first) with their dates of birth,
  each beside a near-miss entry of a different person that must not match;
- a few AML patterns in the cash flows: large deposits withdrawn within days, and series of
  deposits just under the reporting threshold;
- two clients with a high-risk nationality;
- acknowledged order warnings for most trades above a client's risk level (the demo ledger
  has no suitability records of its own), so the suitability flags are the exceptions.
Deterministic for a seed; safe to run again (lists are reloaded, flows are not duplicated).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from pypinyin import lazy_pinyin

from clients.models import CashFlow, Client, Instrument, KYCProfile, Trade
from compliance import conf
from compliance.matching import COMPOUND_SURNAMES
from compliance.models import ComplianceMark, SuitabilityRecord, WatchListEntry
from compliance.rules import Window, suitability
from compliance.screening import watch_list_load

SAMPLES = Path(settings.BASE_DIR) / "samples"
BY = "seed_demo"


@dataclass(frozen=True)
class DemoCompliance:
    watch_list_entries: int
    aml_flows: int
    high_risk_nationals: int
    acknowledged_warnings: int


def _pinyin_given_first(name: str) -> str:
    """王小明 -> 'XIAOMING WANG' (a passport-style spelling in Western order)."""
    surname_length = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
    syllables = lazy_pinyin(name)
    surname = "".join(syllables[:surname_length])
    given = "".join(syllables[surname_length:])
    return f"{given} {surname}".upper().strip()


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry_id", "name", "aliases", "date_of_birth", "countries", "remarks"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _at(day: dt.date, hour: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def seed_compliance_demo(*, as_of: dt.date, seed: int, reset: bool = False) -> DemoCompliance:
    """Load the watch lists and add the AML patterns and high-risk nationals (see module doc).
    After a reset of the book (ids start again) the nightly watermarks start afresh too."""
    if reset:
        ComplianceMark.objects.all().delete()
    rng = random.Random(seed)  # noqa: S311 - demo data, not a secret
    for path, name, kind in (
        (SAMPLES / "watchlist_sanctions.csv", "Sample sanctions list", "sanctions"),
        (SAMPLES / "watchlist_pep.csv", "Sample PEP list", "pep"),
    ):
        if path.is_file():
            watch_list_load(data=path.read_bytes(), list_name=name, kind=kind, by=BY)
    people = list(
        Client.objects.filter(kind=Client.Kind.INDIVIDUAL, status=Client.Status.OPEN, birthday__isnull=False)
        .filter(kyc__isnull=False)
        .order_by("pk")
        .values_list("pk", "name", "birthday")
    )
    if len(people) < 20:
        return DemoCompliance(WatchListEntry.objects.filter(is_active=True).count(), 0, 0, 0)
    chosen = rng.sample(people, 14)
    listed, aml, nationals = chosen[:6], chosen[6:12], chosen[12:]

    sanctions_rows, pep_rows = [], []
    for index, (_, name, birthday) in enumerate(listed):
        spelled = _pinyin_given_first(name)
        surname = spelled.split()[-1] if spelled else "WANG"
        near_miss = f"ZHIQIANG {surname}" if not spelled.startswith("ZHIQIANG") else f"JIANJUN {surname}"
        if index < 2:
            sanctions_rows.append([f"DS-{index + 1:03d}", spelled, name, birthday.isoformat(), "CN", "Demo entry"])
            sanctions_rows.append([f"DS-{index + 101:03d}", near_miss, "", "1950-01-01", "CN", "Demo near miss"])
        else:
            pep_rows.append([f"DP-{index + 1:03d}", name, spelled, str(birthday.year), "CN", "Demo entry"])
    watch_list_load(data=_csv(sanctions_rows), list_name="Demo sanctions (book)", kind="sanctions", by=BY)
    watch_list_load(data=_csv(pep_rows), list_name="Demo PEP (book)", kind="pep", by=BY)
    entries = WatchListEntry.objects.filter(is_active=True).count()

    last = as_of - dt.timedelta(days=1)  # the book's ledger ends the day before its as-of date
    large = conf.aml_large_deposit()
    threshold = conf.aml_reporting_threshold()
    flows = []
    for index, (client_id, _, _) in enumerate(aml):
        if index < 3:  # a large deposit, nearly all withdrawn three days later
            amount = (large * Decimal(str(1.2 + 0.3 * index))).quantize(Decimal("0.01"))
            day = last - dt.timedelta(days=5 + index)
            flows.append((f"DMAML{client_id:010d}D", client_id, CashFlow.Kind.DEPOSIT, amount, _at(day, 10)))
            flows.append(
                (
                    f"DMAML{client_id:010d}W",
                    client_id,
                    CashFlow.Kind.WITHDRAWAL,
                    (amount * Decimal("0.95")).quantize(Decimal("0.01")),
                    _at(day + dt.timedelta(days=3), 14),
                )
            )
        else:  # three or four deposits just under the reporting threshold
            for n in range(3 + index % 2):
                amount = threshold - Decimal(100 + 350 * n)
                day = last - dt.timedelta(days=n * 2)
                flows.append((f"DMAML{client_id:010d}S{n}", client_id, CashFlow.Kind.DEPOSIT, amount, _at(day, 11)))
    with transaction.atomic():
        created = CashFlow.objects.bulk_create(
            [
                CashFlow(flow_id=flow_id, client_id=client_id, kind=kind, amount=amount, occurred_at=when)
                for flow_id, client_id, kind, amount, when in flows
            ],
            ignore_conflicts=True,
        )
        countries = ["IR", "MM"]
        for (client_id, _, _), country in zip(nationals, countries, strict=True):
            KYCProfile.objects.filter(client_id=client_id).update(nationality=country)
    warnings = _acknowledged_warnings(rng, last)
    return DemoCompliance(entries, len(created), len(nationals), warnings)


def _acknowledged_warnings(rng: random.Random, last: dt.date) -> int:
    """Most trades above a client's level went through the order warning and the client's
    acknowledgement: record that for about 90% of the (client, product) pairs the suitability
    rule would flag over its first-run window (never for C1 clients, whom no warning covers)."""

    top = Trade.objects.order_by("-id").values_list("id", flat=True).first() or 0
    recorder = get_user_model().objects.filter(username="system_api").first()
    if recorder is None:
        return 0
    pairs = [
        row
        for row in suitability(Window(as_of=last, trade_id_from=0, trade_id_to=top, first_run=True))
        if row.evidence["client_risk_level"] != "C1"
    ]
    instruments = dict(Instrument.objects.values_list("symbol", "pk"))
    records = []
    for row in pairs:
        if rng.random() >= 0.9:
            continue
        first_trade = dt.datetime.fromisoformat(row.evidence["first_trade_at"])
        client_level = int(row.evidence["client_risk_level"][1:])
        product_level = int(row.evidence["product_risk_level"][1:])
        records.append(
            SuitabilityRecord(
                kind=SuitabilityRecord.Kind.ORDER_WARNING,
                client_id=row.client_id,
                instrument_id=instruments[row.evidence["instrument"]],
                client_risk_level=client_level,
                product_risk_level=product_level,
                mismatch=True,
                warning_text=f"R{product_level} product above your C{client_level} risk tolerance.",
                acknowledged_at=first_trade - dt.timedelta(minutes=5),
                acknowledgement_method=rng.choice(["online", "recorded_call", "signed_form"]),
                reference=row.evidence["first_trade_id"],
                recorded_by=recorder,
                recorded_at=first_trade - dt.timedelta(minutes=5),
            )
        )
    SuitabilityRecord.objects.bulk_create(records, batch_size=2000)
    return len(records)
