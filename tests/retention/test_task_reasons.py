# ruff: noqa: RUF001
"""A retention task's reason in the reader's language (retention/work/task_reasons.py): the tasks the
system opens keep the facts their reason was written from; the pages render them in the active
language; reason_text stays the default-language text it always was; migration 0007 reads the
facts back from the tasks stored before it."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sqlite3

import pytest
from django.utils import translation

from retention.work import task_reasons
from retention.work.models import RetentionTask

RETENTION_0006 = ("retention", "0006_churn_reasons_as_columns")
RETENTION_0007 = ("retention", "0007_task_reason_facts")
migration_0007 = importlib.import_module("retention.migrations.0007_task_reason_facts")

# Each system message: its facts, the reason_text the code wrote before the facts were kept
# (the default-language text must not change), and the same reason in Chinese.
MESSAGES = {
    "callback": (
        task_reasons.callback_facts("new_account"),
        "Regulatory callback: New account (within one month of opening). Confirm identity, no unauthorised "
        "trading by staff, risk disclosure understood; ask for satisfaction.",
        "监管回访：新开户（开户一个月内）。核实身份，确认无员工未经授权代为交易，确认客户理解风险揭示；询问满意度。",
    ),
    "finding": (
        task_reasons.finding_facts(["identity", "staff_trading"], 2),
        "Regulatory callback finding: identity not confirmed; client reports trading by staff without "
        "authorisation; satisfaction 2/5.",
        "监管回访发现问题：身份未核实；客户反映员工未经授权代为交易；满意度 2/5。",
    ),
    "campaign": (
        task_reasons.campaign_facts("Spring margin offer", "Call about the margin rate"),
        "Campaign 'Spring margin offer': Call about the margin rate",
        "营销活动“Spring margin offer”：Call about the margin rate",
    ),
    "service": (
        task_reasons.service_facts("Quarterly portfolio review", "phone", dt.date(2026, 12, 1), 1),
        "Deliver Quarterly portfolio review (Phone), due 2026-12-01 under the VIP service level.",
        "提供服务：Quarterly portfolio review（电话），2026-12-01 到期，VIP客户服务标准。",
    ),
    "nps": (
        task_reasons.nps_facts(3, dt.date(2026, 11, 20), "Slow app"),
        'NPS answer 3/10 on 2026-11-20. Comment: "Slow app"',
        "NPS 评分 3/10（2026-11-20）。客户留言：“Slow app”",
    ),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_a_system_reason_is_stored_as_before_and_shown_in_the_readers_language(name: str) -> None:
    facts, english, chinese = MESSAGES[name]
    with translation.override("zh-hans"):
        assert task_reasons.stored_text(facts) == english  # the default language, whatever is active
        task = RetentionTask(reason_text=english, reason_facts=facts)
        assert task.reason_display == chinese
    with translation.override("en"):
        assert task.reason_display == english
    assert json.loads(json.dumps(facts)) == facts  # JSON as it is stored


def test_a_playbook_reason_shows_its_facts_with_their_names() -> None:
    facts = task_reasons.playbook_facts(
        "About to go dormant: offer a reactivation incentive", tier=1, risk=40, segment="potentially_active"
    )
    task = RetentionTask(reason_text="stored", reason_facts=facts)
    with translation.override("en"):
        assert task.reason_display == (
            "About to go dormant: offer a reactivation incentive "
            "(tier VIP; churn risk 40; activity: Potentially active)"
        )
    with translation.override("zh-hans"):
        # A default playbook's text is in the catalogue: it is translated too.
        assert task.reason_display == "即将休眠：提供激活优惠（级别 VIP客户；流失风险 40；活跃度：潜在活跃）"
    upgraded = task_reasons.playbook_facts(
        "Our own words", tier_change="up", tier_change_on=dt.date(2026, 11, 20), segment="dormant"
    )
    with translation.override("zh-hans"):
        # Text that ops wrote stays as written; the facts are still translated.
        assert (
            RetentionTask(reason_facts=upgraded).reason_display
            == "Our own words（活跃度：休眠；级别于 2026-11-20 上调）"
        )
    with translation.override("en"):
        bare = task_reasons.playbook_facts("Personal call")
        assert RetentionTask(reason_facts=bare).reason_display == "Personal call"


def test_a_task_without_known_facts_shows_its_reason_text() -> None:
    with translation.override("zh-hans"):
        assert RetentionTask(reason_text="Call about the birthday").reason_display == "Call about the birthday"
        assert RetentionTask(reason_text="x", reason_facts={"message": "moon"}).reason_display == "x"


def test_facts_that_cannot_be_written_are_refused() -> None:
    with pytest.raises(ValueError, match=r"findings: unknown \['moon'\]"):
        task_reasons.finding_facts(["identity", "moon"])
    with pytest.raises(ValueError, match="reason_facts: unknown message 'moon'"):
        task_reasons.stored_text({"message": "moon"})


# ----------------------------------------------------------------------------------- migration 0007

OLD_PLAYBOOK_TEXT = "High-value client at risk: call within 2 days (tier vip; churn risk 80; segment active)"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_migration_reads_the_facts_back_from_each_stored_text(name: str) -> None:
    facts, english, _ = MESSAGES[name]
    code = {
        "callback": "callback_new_account",
        "finding": "callback_finding",
        "campaign": "campaign:7",
        "service": "service:review",
        "nps": "nps_detractor",
    }[name]
    campaign = "Spring margin offer" if name == "campaign" else None
    assert migration_0007.facts_of(code, english, playbook=False, campaign_name=campaign) == facts


def test_a_playbook_tasks_stored_text_reads_back_as_its_facts() -> None:
    facts = task_reasons.playbook_facts(
        "Downgraded: check in", tier=2, risk=55, segment="dormant", tier_change="down", tier_change_on="2026-11-20"
    )
    text = task_reasons.playbook_stored_text(facts)
    assert text == "Downgraded: check in (tier major; churn risk 55; segment dormant; tier down on 2026-11-20)"
    assert migration_0007.facts_of("tier_down", text, playbook=True, campaign_name=None) == facts
    bare = task_reasons.playbook_facts("Personal call")
    assert task_reasons.playbook_stored_text(bare) == "Personal call"


def test_the_migration_reads_a_playbook_text_and_leaves_what_it_cannot_read() -> None:
    facts = migration_0007.facts_of("churn_risk", OLD_PLAYBOOK_TEXT, playbook=True, campaign_name=None)
    assert facts == task_reasons.playbook_facts(
        "High-value client at risk: call within 2 days", tier=1, risk=80, segment="active"
    )
    welcome = migration_0007.facts_of(
        "tier_up", "Welcome (see notes) (tier up on 2026-11-20)", playbook=True, campaign_name=None
    )
    assert welcome == task_reasons.playbook_facts("Welcome (see notes)", tier_change="up", tier_change_on="2026-11-20")
    # Parentheses that are not facts stay part of the text.
    odd = migration_0007.facts_of("rule", "Call (urgent)", playbook=True, campaign_name=None)
    assert odd == task_reasons.playbook_facts("Call (urgent)")
    assert migration_0007.facts_of("campaign:7", "Campaign 'Renamed': x", playbook=False, campaign_name="Old") is None
    assert (
        migration_0007.facts_of(
            "callback_finding", "Regulatory callback finding: moon.", playbook=False, campaign_name=None
        )
        is None
    )
    old_service = "Deliver Quarterly portfolio review (Phone), due 2026-12-01 under the vip service level."
    assert (
        migration_0007.facts_of("service:review", old_service, playbook=False, campaign_name=None)
        == (MESSAGES["service"][0])
    )
    assert migration_0007.facts_of("x", "Written by hand", playbook=False, campaign_name=None) is None


def test_retention_0007_fills_the_facts_of_stored_tasks(tmp_path) -> None:
    """("retention", "0007_task_reason_facts") on a database holding tasks of every kind."""
    from tests.upgrade import pg

    path = tmp_path / "tasks.sqlite3"

    def migrate(node: tuple[str, str]) -> None:
        pg.sqlite_migrate(path, node)

    now = "2026-11-20 00:00:00"
    migrate(RETENTION_0006)
    rows = [
        # (reason_code, reason_text, playbook_id, campaign_id)
        ("churn_risk", OLD_PLAYBOOK_TEXT, 1, None),
        ("callback_new_account", MESSAGES["callback"][1], None, None),
        ("callback_new_account", MESSAGES["callback"][1], None, None),  # the same reason: updated together
        ("campaign:1", MESSAGES["campaign"][1], None, 1),
        ("nps_detractor", MESSAGES["nps"][1], None, None),
        ("x", "Written by hand", None, None),
    ]
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO clients_branch (id, code, name, city) VALUES (1, 'SH', 'Shanghai', 'Shanghai')")
        conn.execute(
            "INSERT INTO clients_client (id, client_no, name, kind, phone, email, address, status, opened_on, "
            "created_at, updated_at, branch_id) VALUES (1, 'C1', 'Wang', 'individual', '', '', '', 'open', "
            "'2020-01-01', ?, ?, 1)",
            [now, now],
        )
        conn.execute(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, last_name, email, is_staff, "
            "is_active, date_joined, first_name) VALUES (1, '', ?, 0, 'ops', '', '', 1, 1, ?, '')",
            [now, now],
        )
        conn.execute(
            "INSERT INTO retention_playbook (id, name, description, is_active, tiers, segments, tier_change, "
            "tier_change_within_days, task_kind, due_in_days, priority, assignee_role, reason_text, cooldown_days, "
            "created_at, updated_at) VALUES (1, 'At risk', '', 1, '[]', '[]', '', 7, 'at_risk_outreach', 2, 80, "
            "'account_manager', 'High-value client at risk: call within 2 days', 0, ?, ?)",
            [now, now],
        )
        conn.execute(
            "INSERT INTO retention_campaign (id, name, description, segment, control_percent, seed, task_kind, "
            "task_reason, due_in_days, priority, outcome, outcome_days, status, report, created_at, created_by_id) "
            "VALUES (1, 'Spring margin offer', '', '{}', 10, 1, 'other', 'Call about the margin rate', 5, 50, "
            "'trades', 30, 'draft', '{}', ?, 1)",
            [now],
        )
        for code, text, playbook, campaign in rows:
            conn.execute(
                "INSERT INTO retention_retentiontask (kind, due, priority, status, channel, outcome, notes, source, "
                "reason_code, reason_text, created_on, created_at, close_reason, client_id, playbook_id, campaign_id) "
                "VALUES ('other', '2026-11-25', 50, 'open', '', '', '', 'rule', ?, ?, '2026-11-20', ?, '', 1, ?, ?)",
                [code, text, now, playbook, campaign],
            )
    migrate(RETENTION_0007)
    with sqlite3.connect(path) as conn:
        facts_by_id = conn.execute("SELECT reason_code, reason_facts FROM retention_retentiontask ORDER BY id")
        stored = [(code, json.loads(facts)) for code, facts in facts_by_id]
        assert stored[1] == stored[2] == ("callback_new_account", MESSAGES["callback"][0])
        stored = {code: json.dumps(facts) for code, facts in stored}
        texts = [row[0] for row in conn.execute("SELECT reason_text FROM retention_retentiontask ORDER BY id")]
    assert json.loads(stored["churn_risk"]) == task_reasons.playbook_facts(
        "High-value client at risk: call within 2 days", tier=1, risk=80, segment="active"
    )
    assert json.loads(stored["callback_new_account"]) == MESSAGES["callback"][0]
    assert json.loads(stored["campaign:1"]) == MESSAGES["campaign"][0]
    assert json.loads(stored["nps_detractor"]) == MESSAGES["nps"][0]
    assert json.loads(stored["x"]) == {}
    assert texts == [text for _, text, _, _ in rows]  # reason_text is untouched
