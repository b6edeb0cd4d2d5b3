"""A retention task's reason in the reader's language.

The tasks the system opens (playbooks, regulatory callbacks and their findings, campaigns,
service deliveries, NPS detractor follow-ups) keep, beside `reason_text`, the facts the reason
was written from, in `reason_facts`: {"message": <one of MESSAGES>, ...its fields}. Pages show
`reason_display(task)`: the message written out in the active language, so an account manager
working in Chinese reads "流失风险 82" and "潜在活跃" where the stored text says "churn risk 82;
segment potentially_active".

`reason_text` stays what it was: the reason in the site's default language (settings.LANGUAGE_CODE),
written once when the task is opened, for the API, admin search and exports. For every message
but the playbook's it is `render(facts)` in that language; a playbook task's text keeps its
machine-readable facts ("... (tier vip; churn risk 82; segment dormant)", playbook_stored_text),
the form migration 0007 reads back.

Texts that people wrote (a playbook's, a campaign's, a product's name, a survey comment) are shown
as written; the default playbooks' texts (retention/work/defaults.py) are translated, since they
are in the message catalogue. Tasks with no facts (opened by hand, or before the facts were kept)
show their reason_text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

PLAYBOOK = "playbook"
CALLBACK = "callback"
CALLBACK_FINDING = "callback_finding"
CAMPAIGN = "campaign"
SERVICE = "service"
NPS_DETRACTOR = "nps_detractor"
MESSAGES = (PLAYBOOK, CALLBACK, CALLBACK_FINDING, CAMPAIGN, SERVICE, NPS_DETRACTOR)

# What a regulatory callback found, by code, in the order they are listed.
FINDINGS = ("identity", "staff_trading", "risk_disclosure")


def _day(value: dt.date | str | None) -> str | None:
    return None if value is None else str(value)[:10]


def playbook_facts(
    text: str,
    *,
    tier: int | None = None,
    risk: int | None = None,
    segment: str | None = None,
    tier_change: str | None = None,
    tier_change_on: dt.date | str | None = None,
) -> dict[str, Any]:
    """A playbook task: the playbook's text and what matched (the client's tier, churn risk,
    activity segment, recent tier change); None: not known."""
    return {
        "message": PLAYBOOK,
        "text": text,
        "tier": None if tier is None else int(tier),
        "risk": None if risk is None else int(risk),
        "segment": segment or None,
        "tier_change": tier_change or None,
        "tier_change_on": _day(tier_change_on) if tier_change else None,
    }


def playbook_stored_text(facts: dict) -> str:
    """A playbook task's reason_text: the playbook's text and, in brackets, the facts as codes
    ("High-value client at risk: call within 2 days (tier vip; churn risk 80; segment active)")."""
    from segmentation.models import TIER_CODES

    parts = []
    if facts.get("tier") is not None:
        parts.append(f"tier {TIER_CODES.get(facts['tier'], '?')}")
    if facts.get("risk") is not None:
        parts.append(f"churn risk {facts['risk']}")
    if facts.get("segment"):
        parts.append(f"segment {facts['segment']}")
    if facts.get("tier_change"):
        parts.append(f"tier {facts['tier_change']} on {facts['tier_change_on']}")
    return f"{facts['text']} ({'; '.join(parts)})" if parts else facts["text"]


def callback_facts(kind: str) -> dict[str, Any]:
    return {"message": CALLBACK, "kind": kind}


def finding_facts(findings: list[str], satisfaction: int | None = None) -> dict[str, Any]:
    """A callback's findings: codes of FINDINGS, and a low satisfaction score (1-5) if any."""
    unknown = set(findings) - set(FINDINGS)
    if unknown:
        raise ValueError(f"findings: unknown {sorted(unknown)}; expected some of {list(FINDINGS)}")
    return {"message": CALLBACK_FINDING, "findings": list(findings), "satisfaction": satisfaction}


def campaign_facts(name: str, reason: str) -> dict[str, Any]:
    return {"message": CAMPAIGN, "name": name, "reason": reason}


def service_facts(product: str, channel: str, due: dt.date | str, tier: int | None) -> dict[str, Any]:
    """A service delivery: the product's name, its channel (a ServiceChannel code), when it is
    due and the tier whose service level grants it."""
    return {
        "message": SERVICE,
        "product": product,
        "channel": channel,
        "due": _day(due),
        "tier": None if tier is None else int(tier),
    }


def nps_facts(score: int, on: dt.date | str, comment: str = "") -> dict[str, Any]:
    return {"message": NPS_DETRACTOR, "score": int(score), "on": _day(on), "comment": comment}


def _tier(value: int | None) -> str:
    from segmentation.models import Tier

    return str(Tier(value).label) if value in Tier.values else "?"


def _segment(value: str) -> str:
    from retention.models import ActivitySegment

    return str(ActivitySegment(value).label) if value in ActivitySegment.values else value


def _channel(value: str) -> str:
    from retention.work.models import ServiceChannel

    return str(ServiceChannel(value).label) if value in ServiceChannel.values else value


def _callback_kind(value: str) -> str:
    from retention.work.models import CallbackKind

    return str(CallbackKind(value).label) if value in CallbackKind.values else value


def _listed(parts: list[str]) -> str:
    return pgettext("list separator", "; ").join(parts)


def _playbook(facts: dict) -> str:
    text = _(facts["text"]) if facts.get("text") else ""  # the default playbooks' texts are translated
    parts = []
    if facts.get("tier") is not None:
        parts.append(_("tier %(tier)s") % {"tier": _tier(facts["tier"])})
    if facts.get("risk") is not None:
        parts.append(_("churn risk %(risk)s") % {"risk": facts["risk"]})
    if facts.get("segment"):
        parts.append(_("activity: %(segment)s") % {"segment": _segment(facts["segment"])})
    if facts.get("tier_change") == "up":
        parts.append(_("tier raised on %(day)s") % {"day": facts.get("tier_change_on")})
    elif facts.get("tier_change") == "down":
        parts.append(_("tier lowered on %(day)s") % {"day": facts.get("tier_change_on")})
    if not parts:
        return text
    return _("%(reason)s (%(facts)s)") % {"reason": text, "facts": _listed(parts)}


def _finding(code: str) -> str:
    return {
        "identity": _("identity not confirmed"),
        "staff_trading": _("client reports trading by staff without authorisation"),
        "risk_disclosure": _("risk disclosure not understood"),
    }[code]


def _callback_finding(facts: dict) -> str:
    parts = [_finding(code) for code in facts.get("findings") or []]
    if facts.get("satisfaction") is not None:
        parts.append(_("satisfaction %(score)s/5") % {"score": facts["satisfaction"]})
    return _("Regulatory callback finding: %(findings)s.") % {"findings": _listed(parts)}


def render(facts: dict | None) -> str | None:
    """The reason written out from its facts in the active language; None when `facts` holds no
    known message (the task's reason_text stands)."""
    message = (facts or {}).get("message")
    if message == PLAYBOOK:
        return _playbook(facts)
    if message == CALLBACK:
        return _(
            "Regulatory callback: %(kind)s. Confirm identity, no unauthorised trading by staff, "
            "risk disclosure understood; ask for satisfaction."
        ) % {"kind": _callback_kind(facts["kind"])}
    if message == CALLBACK_FINDING:
        return _callback_finding(facts)
    if message == CAMPAIGN:
        return _("Campaign '%(name)s': %(reason)s") % {"name": facts["name"], "reason": facts["reason"]}
    if message == SERVICE:
        return _("Deliver %(product)s (%(channel)s), due %(due)s under the %(tier)s service level.") % {
            "product": _(facts["product"]) if facts.get("product") else "",
            "channel": _channel(facts["channel"]),
            "due": facts["due"],
            "tier": _tier(facts.get("tier")),
        }
    if message == NPS_DETRACTOR:
        values = {"score": facts["score"], "on": facts["on"], "comment": facts.get("comment")}
        if values["comment"]:
            return _('NPS answer %(score)s/10 on %(on)s. Comment: "%(comment)s"') % values
        return _("NPS answer %(score)s/10 on %(on)s.") % values
    return None


def stored_text(facts: dict) -> str:
    """`render(facts)` in the site's default language: the task's reason_text."""
    with translation.override(settings.LANGUAGE_CODE):
        text = render(facts)
    if text is None:
        raise ValueError(f"reason_facts: unknown message {facts.get('message')!r}; expected one of {list(MESSAGES)}")
    return text


def reason_display(task: Any) -> str:
    """The task's reason in the active language (its reason_text when it has no known facts)."""
    return render(getattr(task, "reason_facts", None)) or task.reason_text
