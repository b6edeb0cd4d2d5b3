"""The annual complaints register for the regulator, as CSV (UTF-8 with BOM, so Excel shows
Chinese text) or XLSX.

Every text cell that a spreadsheet would read as a formula (starting with =, +, -, @, or a
tab / carriage return) is prefixed with an apostrophe: a complaint description is client
text and must never run as a formula in the regulator's spreadsheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator

from django.utils import timezone
from openpyxl import Workbook

from brokercrm.lib.exports import FORMULA_PREFIXES, safe_cell
from feedback.models import Complaint

FORMULA_LEADS = FORMULA_PREFIXES

COLUMNS = [
    ("reference", "Reference"),
    ("client_no", "Client number"),
    ("client_name", "Client name"),
    ("branch", "Branch"),
    ("account_manager", "Account manager"),
    ("channel", "Channel"),
    ("category", "Category"),
    ("severity", "Severity"),
    ("description", "Description"),
    ("opened_at", "Opened"),
    ("first_response_at", "First response"),
    ("resolved_at", "Resolved"),
    ("status", "Status"),
    ("first_response_hours", "Hours to first response"),
    ("resolution_hours", "Hours to resolution"),
    ("first_response_breached", "First-response SLA breached"),
    ("resolution_breached", "Resolution SLA breached"),
    ("escalated_at", "Escalated"),
    ("escalation_reason", "Escalation reason"),
    ("root_cause", "Root cause"),
    ("resolution", "Resolution"),
]


def escape_cell(value: object) -> object:
    """Text starting like a formula gets a leading apostrophe; other values are unchanged."""
    return safe_cell(value)


def _local(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _hours(start: dt.datetime, end: dt.datetime | None) -> str:
    return f"{(end - start).total_seconds() / 3600:.2f}" if end else ""


def register_records(complaints: Iterable[Complaint]) -> Iterator[dict[str, object]]:
    """One dict per complaint (annotated with breach flags), times in exchange time."""
    for complaint in complaints:
        client = complaint.client
        manager = client.account_manager
        yield {
            "reference": complaint.reference,
            "client_no": client.client_no,
            "client_name": client.name,
            "branch": client.branch.code,
            "account_manager": manager.employee_no if manager else "",
            "channel": complaint.get_channel_display(),
            "category": complaint.get_category_display(),
            "severity": complaint.get_severity_display(),
            "description": complaint.description,
            "opened_at": _local(complaint.opened_at),
            "first_response_at": _local(complaint.first_response_at),
            "resolved_at": _local(complaint.resolved_at),
            "status": complaint.get_status_display(),
            "first_response_hours": _hours(complaint.opened_at, complaint.first_response_at),
            "resolution_hours": _hours(complaint.opened_at, complaint.resolved_at),
            "first_response_breached": "yes" if complaint.first_response_breached else "no",
            "resolution_breached": "yes" if complaint.resolution_breached else "no",
            "escalated_at": _local(complaint.escalated_at),
            "escalation_reason": complaint.escalation_reason,
            "root_cause": complaint.root_cause,
            "resolution": complaint.resolution,
        }


def register_csv(complaints: Iterable[Complaint]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([title for _, title in COLUMNS])
    for record in register_records(complaints):
        writer.writerow([escape_cell(record[key]) for key, _ in COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def register_xlsx(complaints: Iterable[Complaint], *, year: int) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=f"Complaints {year}")
    sheet.append([title for _, title in COLUMNS])
    for record in register_records(complaints):
        sheet.append([escape_cell(record[key]) for key, _ in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
