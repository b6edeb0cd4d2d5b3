"""A flag's stored evidence in words a compliance officer reads: each key the rules and the
screening write gets a translated label, and values are shown as people expect them (local
times, grouped amounts, translated codes). A key or value this module does not know is shown
as stored, so new evidence never disappears from the page."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from clients.models import KYCProfile

LABELS = {
    # KYC and ID documents
    "state": _("State"),
    "id_type": _("ID type"),
    "id_expiry": _("ID expiry"),
    "days_to_expiry": _("Days to expiry"),
    "due_on": _("Review due"),
    "aml_risk": _("AML risk"),
    "days_overdue": _("Days overdue"),
    "last_review_on": _("Last review"),
    "age_days": _("Age in days"),
    "assessed_on": _("Assessed on"),
    "is_pep": _("Politically exposed person"),
    "source": _("Source"),
    "sanctions_status": _("Sanctions status"),
    "nationality": _("Nationality"),
    # suitability
    "amount": _("Amount"),
    "trades": _("Trades"),
    "instrument": _("Instrument"),
    "first_trade_at": _("First trade"),
    "first_trade_id": _("First trade id"),
    "last_trade_at": _("Last trade"),
    "last_trade_id": _("Last trade id"),
    "last_trade": _("Last trade"),
    "client_risk_level": _("Client risk level"),
    "product_risk_level": _("Product risk level"),
    # AML
    "deposit": _("Deposit"),
    "deposited_at": _("Deposited at"),
    "deposit_flow_id": _("Deposit flow id"),
    "window_days": _("Window in days"),
    "traded_within_window": _("Traded within the window"),
    "withdrawn_within_window": _("Withdrawn within the window"),
    "total": _("Total"),
    "deposits": _("Deposits"),
    "threshold": _("Threshold"),
    "first_deposit_at": _("First deposit"),
    "last_deposit_at": _("Last deposit"),
    "last_at": _("Last event"),
    # screening
    "watch_list": _("Watch list"),
    "entry_id": _("Entry"),
    "entry_external_id": _("Entry id on the list"),
    "score": _("Match score"),
    "name_score": _("Name score"),
    "matched_fields": _("Matched fields"),
    "matched_name": _("Matched name"),
    "client_name": _("Client name"),
}

VALUES = {
    "expired": _("Expired"),
    "expiring": _("Expiring"),
    "kyc": _("KYC record"),
    "screening": _("Watch-list screening"),
    "name": pgettext_lazy("matched field", "Name"),
    "dob": _("Date of birth"),
    "nationality": _("Nationality"),
    "id_number": _("ID number"),
    **dict(KYCProfile.IdType.choices),
    **dict(KYCProfile.Screening.choices),
    **dict(KYCProfile.AmlRisk.choices),
}

ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DECIMAL = re.compile(r"^-?\d+\.\d+$")


def label(key: object) -> str:
    return str(LABELS.get(str(key), str(key).replace("_", " ").capitalize()))


def display(value: object) -> str:
    """One evidence value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, list):
        return ", ".join(display(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, int | float):
        return intcomma(value)
    text = str(value)
    if text in VALUES:
        return str(VALUES[text])
    if ISO_DATETIME.match(text):
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment)
        return formats.date_format(moment, "Y-m-d H:i")
    if ISO_DATE.match(text):
        return text
    if DECIMAL.match(text):
        try:
            return intcomma(Decimal(text))
        except InvalidOperation:
            return text
    return text


def rows(evidence: object) -> list[tuple[str, str]]:
    """(label, value) pairs of a flag's evidence, in the stored order."""
    if not isinstance(evidence, dict):
        return [("", display(evidence))] if evidence else []
    return [(label(key), display(value)) for key, value in evidence.items()]
