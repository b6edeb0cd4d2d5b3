"""Retention tasks keep the facts their reason was written from (RetentionTask.reason_facts), so
the pages show the reason in the reader's language (retention/work/task_reasons.py).

The tasks the system opened before this migration get their facts read back from what they
stored: the reason code says which message it is, and the reason text was written from a
fixed English pattern. A text that does not follow its pattern exactly keeps no facts (the
page shows it as it is). Backwards the column goes; reason_text never changed."""

from __future__ import annotations

import json
import re

from django.db import migrations, models

BATCH = 5000
PLAYBOOK_CODES = {
    "churn_risk",
    "about_to_go_dormant",
    "high_assets_low_activity",
    "activity_segment",
    "rule",
    "tier_up",
    "tier_down",
}
TIERS = {"vip": 1, "major": 2, "ordinary": 3, "small": 4}
CALLBACK_KINDS = {"new_account", "annual_sample"}
FINDINGS = {
    "identity not confirmed": "identity",
    "client reports trading by staff without authorisation": "staff_trading",
    "risk disclosure not understood": "risk_disclosure",
}
SERVICE_CHANNELS = {
    "Website": "website",
    "Trading software": "trading_software",
    "Email": "email",
    "SMS": "sms",
    "Phone": "phone",
    "On site": "on_site",
}
_PLAYBOOK_FACT = re.compile(
    r"tier (?P<tier>vip|major|ordinary|small)|churn risk (?P<risk>\d+)|segment (?P<segment>[a-z_]+)"
    r"|tier (?P<change>up|down) on (?P<on>\d{4}-\d{2}-\d{2})"
)
_SERVICE = re.compile(
    r"Deliver (?P<product>.+) \((?P<channel>[A-Za-z ]+)\), due (?P<due>\d{4}-\d{2}-\d{2}) "
    r"under the (?P<tier>(?i:vip|major|ordinary|small)|\?) service level\.",
    re.DOTALL,
)
_NPS = re.compile(
    r'NPS answer (?P<score>\d+)/10 on (?P<on>\d{4}-\d{2}-\d{2})\.(?: Comment: "(?P<comment>.*)")?', re.DOTALL
)


def _playbook(text: str) -> dict | None:
    facts = {"tier": None, "risk": None, "segment": None, "tier_change": None, "tier_change_on": None}
    base = text
    if text.endswith(")") and " (" in text:
        head, _, tail = text[:-1].rpartition(" (")
        parts = [_PLAYBOOK_FACT.fullmatch(part) for part in tail.split("; ")]
        if all(parts):
            base = head
            for match in parts:
                if match["tier"]:
                    facts["tier"] = TIERS[match["tier"]]
                elif match["risk"]:
                    facts["risk"] = int(match["risk"])
                elif match["segment"]:
                    facts["segment"] = match["segment"]
                else:
                    facts["tier_change"], facts["tier_change_on"] = match["change"], match["on"]
    return {"message": "playbook", "text": base, **facts}


def _finding(text: str) -> dict | None:
    prefix = "Regulatory callback finding: "
    if not (text.startswith(prefix) and text.endswith(".")):
        return None
    findings, satisfaction = [], None
    for part in text[len(prefix) : -1].split("; "):
        score = re.fullmatch(r"satisfaction (\d)/5", part)
        if score:
            satisfaction = int(score[1])
        elif part in FINDINGS:
            findings.append(FINDINGS[part])
        else:
            return None
    return {"message": "callback_finding", "findings": findings, "satisfaction": satisfaction}


def facts_of(reason_code: str, reason_text: str, *, playbook: bool, campaign_name: str | None) -> dict | None:
    """The reason_facts of a task stored before this migration, or None (keep none)."""
    if playbook and reason_code in PLAYBOOK_CODES:
        return _playbook(reason_text)
    kind = reason_code.removeprefix("callback_")
    if kind in CALLBACK_KINDS and reason_text.startswith("Regulatory callback: "):
        return {"message": "callback", "kind": kind}
    if reason_code == "callback_finding":
        return _finding(reason_text)
    if reason_code.startswith("campaign:") and campaign_name is not None:
        prefix = f"Campaign '{campaign_name}': "
        if reason_text.startswith(prefix):
            return {"message": "campaign", "name": campaign_name, "reason": reason_text[len(prefix) :]}
        return None
    if reason_code.startswith("service:"):
        match = _SERVICE.fullmatch(reason_text)
        if match is None or match["channel"] not in SERVICE_CHANNELS:
            return None
        return {
            "message": "service",
            "product": match["product"],
            "channel": SERVICE_CHANNELS[match["channel"]],
            "due": match["due"],
            "tier": TIERS.get(match["tier"].lower()),
        }
    if reason_code == "nps_detractor":
        match = _NPS.fullmatch(reason_text)
        if match is None:
            return None
        return {
            "message": "nps_detractor",
            "score": int(match["score"]),
            "on": match["on"],
            "comment": match["comment"] or "",
        }
    return None


def fill_facts(apps, schema_editor) -> None:
    """Each distinct stored reason is read once; its tasks are updated together, by id (many tasks
    share a reason: the 196,047 tasks of a 1M-client book had 1,037 distinct ones, 14 s)."""
    task_model = apps.get_model("retention", "RetentionTask")
    tasks = task_model.objects.using(schema_editor.connection.alias)
    rows = tasks.order_by().values_list("pk", "reason_code", "reason_text", "playbook_id", "campaign__name")
    groups: dict[str, tuple[dict, list[int]]] = {}
    known: dict[tuple, dict | None] = {}
    for pk, code, text, playbook_id, campaign_name in rows.iterator(chunk_size=BATCH):
        key = (code, text, playbook_id is not None, campaign_name)
        if key not in known:
            known[key] = facts_of(code, text, playbook=playbook_id is not None, campaign_name=campaign_name)
        facts = known[key]
        if facts is not None:
            groups.setdefault(json.dumps(facts, sort_keys=True), (facts, []))[1].append(pk)
    for facts, ids in groups.values():
        for start in range(0, len(ids), BATCH):
            tasks.filter(pk__in=ids[start : start + BATCH]).update(reason_facts=facts)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0006_churn_reasons_as_columns"),
    ]

    operations = [
        migrations.AddField(
            model_name="retentiontask",
            name="reason_facts",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What the reason was written from (retention/work/task_reasons.py): pages show the reason "
                "in the reader's language. Empty: the reason text is shown as it is.",
            ),
        ),
        migrations.RunPython(fill_facts, migrations.RunPython.noop, elidable=True),
    ]
