"""Exports a regulator asks for, for a period: flags, decisions, suitability warnings and
acknowledgements, as CSV or XLSX.

Spreadsheet formula injection: a text cell starting with = + - @ (or a tab / carriage
return) would be run as a formula by Excel or LibreOffice; such cells are written with a
leading apostrophe. Numbers and dates are written as values and never escaped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook

from brokercrm.lib.exports import FORMULA_PREFIXES, safe_cell  # noqa: F401 - re-exported
from clients.models import mask_identifier
from compliance.models import Flag, FlagDecision, SuitabilityRecord

DATASETS = ("flags", "decisions", "suitability")
FORMATS = ("csv", "xlsx")


def _plain(value: Any) -> Any:
    """Datetimes in exchange time without the offset (XLSX has none), None as empty."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    return value


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        start = timezone.make_aware(dt.datetime.combine(self.start, dt.time.min))
        end = timezone.make_aware(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min))
        return start, end


def _flags(period: Period) -> tuple[list[str], Iterator[list[Any]]]:
    start, end = period.bounds
    header = [
        "flag_id",
        "client_no",
        "client_name",
        "branch",
        "id_number_masked",
        "kind",
        "subject",
        "severity",
        "status",
        "raised_at",
        "first_seen_on",
        "last_seen_on",
        "closed_at",
        "closed_by",
        "events",
    ]
    flags: QuerySet = (
        Flag.objects.filter(raised_at__gte=start, raised_at__lt=end)
        .select_related("client__branch", "client__kyc", "closed_by")
        .order_by("raised_at", "id")
    )

    def rows() -> Iterator[list[Any]]:
        for flag in flags.iterator(chunk_size=2000):
            kyc = getattr(flag.client, "kyc", None)
            yield [
                flag.pk,
                flag.client.client_no,
                flag.client.name,
                flag.client.branch.code,
                mask_identifier(kyc.id_number) if kyc else "",
                flag.kind,
                flag.subject,
                flag.get_severity_display(),
                flag.status,
                flag.raised_at,
                flag.first_seen_on,
                flag.last_seen_on,
                flag.closed_at,
                flag.closed_by.get_username() if flag.closed_by else "",
                flag.events,
            ]

    return header, rows()


def _decisions(period: Period) -> tuple[list[str], Iterator[list[Any]]]:
    start, end = period.bounds
    header = [
        "decision_id",
        "flag_id",
        "client_no",
        "kind",
        "severity",
        "decision",
        "status",
        "note",
        "whitelist",
        "decided_by",
        "decided_at",
        "second_officer",
        "reviewed_at",
        "review_note",
    ]
    decisions: QuerySet = (
        FlagDecision.objects.filter(decided_at__gte=start, decided_at__lt=end)
        .select_related("flag__client", "decided_by", "reviewed_by")
        .order_by("decided_at", "id")
    )

    def rows() -> Iterator[list[Any]]:
        for decision in decisions.iterator(chunk_size=2000):
            yield [
                decision.pk,
                decision.flag_id,
                decision.flag.client.client_no,
                decision.flag.kind,
                decision.get_severity_display(),
                decision.decision,
                decision.status,
                decision.note,
                decision.whitelist,
                decision.decided_by.get_username(),
                decision.decided_at,
                decision.reviewed_by.get_username() if decision.reviewed_by else "",
                decision.reviewed_at,
                decision.review_note,
            ]

    return header, rows()


def _suitability(period: Period) -> tuple[list[str], Iterator[list[Any]]]:
    start, end = period.bounds
    header = [
        "record_id",
        "kind",
        "client_no",
        "instrument",
        "client_risk_level",
        "product_risk_level",
        "mismatch",
        "warning_text",
        "acknowledged_at",
        "acknowledgement_method",
        "reference",
        "recorded_by",
        "recorded_at",
    ]
    records: QuerySet = (
        SuitabilityRecord.objects.filter(recorded_at__gte=start, recorded_at__lt=end)
        .select_related("client", "instrument", "recorded_by")
        .order_by("recorded_at", "id")
    )

    def rows() -> Iterator[list[Any]]:
        for record in records.iterator(chunk_size=2000):
            yield [
                record.pk,
                record.kind,
                record.client.client_no,
                record.instrument.symbol,
                f"C{record.client_risk_level}",
                f"R{record.product_risk_level}",
                record.mismatch,
                record.warning_text,
                record.acknowledged_at,
                record.acknowledgement_method,
                record.reference,
                record.recorded_by.get_username(),
                record.recorded_at,
            ]

    return header, rows()


_BUILDERS = {"flags": _flags, "decisions": _decisions, "suitability": _suitability}


def export_rows(dataset: str, period: Period) -> tuple[list[str], Iterator[list[Any]]]:
    if dataset not in _BUILDERS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    return _BUILDERS[dataset](period)


def _cells(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(_plain(value)) for value in row]


def to_csv(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark (Excel then reads the Chinese names right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value for value in _cells(row)]
        )
    return ("\ufeff" + buffer.getvalue()).encode()


def to_xlsx(header: list[str], rows: Iterable[list[Any]], *, title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append([float(value) if isinstance(value, Decimal) else value for value in _cells(row)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def export(dataset: str, period: Period, fmt: str) -> tuple[bytes, str, str]:
    """(content, content type, file name) of `dataset` over `period` in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    header, rows = export_rows(dataset, period)
    name = f"compliance-{dataset}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.{fmt}"
    if fmt == "csv":
        return to_csv(header, rows), "text/csv; charset=utf-8", name
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return to_xlsx(header, rows, title=dataset), content_type, name
