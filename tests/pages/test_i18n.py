# Chinese text is written with full-width punctuation on purpose.
# ruff: noqa: RUF001
"""Simplified Chinese: the catalogue is complete and compiled, a user switches language, and the
main pages, tier and segment names, and the churn reasons read in Chinese."""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client as Browser
from django.utils import timezone, translation

from clients.models import Client
from compliance.models import Decision, Flag, FlagKind, FlagStatus, Severity
from retention.models import ChurnScore, ClientActivity
from retention.scoring import reason_text
from segmentation.models import ResultSet, Tier
from tests.conftest import Cast
from tests.nightly.conftest import eager_celery, run_nightly
from tests.segmentation.books import make_book

__all__ = ["eager_celery", "run_nightly"]  # the nightly fixtures, shared

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
AS_OF = dt.date(2026, 6, 30)
OUTFLOW = {"code": "outflow", "points": 40, "facts": {"share": 0.62, "window": 30, "amount": 62000.0}}
DECLINE = {"code": "decline", "points": 20, "facts": {"recent": 1, "window": 90, "expected": 5.7}}


# --- the catalogue --------------------------------------------------------------------------------


def po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: flags, msgid, msgid_plural and msgstr (msgstr[n] as a list)."""
    entries: list[dict] = []
    entry: dict = {}
    field = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                entries.append(entry)
            entry, field = {}, ""
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line):
            field = match.group(1)
            entry[field] = ast.literal_eval(match.group(2))
        elif line.startswith('"') and field:
            entry[field] += ast.literal_eval(line)
    return entries


def translations(entry: dict) -> list[str]:
    return [value for key, value in entry.items() if key.startswith("msgstr")]


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    entries = po_entries(CATALOGUE / "django.po")
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == ""
    assert "Language: zh_Hans\n" in header["msgstr"]
    assert "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"]
    assert "charset=UTF-8" in header["msgstr"]
    assert len(messages) > 500
    untranslated = [e["msgid"] for e in messages if not all(translations(e))]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e.get("flags", ())]
    assert untranslated == []
    assert fuzzy == []
    plural = [e for e in messages if "msgid_plural" in e]
    assert plural
    assert all("msgstr[0]" in e and "msgstr[1]" not in e for e in plural)  # Chinese: one form


def test_placeholders_are_kept() -> None:
    named = re.compile(r"%\(\w+\)[sd]|%%")
    for entry in po_entries(CATALOGUE / "django.po")[1:]:
        if "python-format" not in entry.get("flags", ()):
            continue
        expected = sorted(set(named.findall(entry["msgid"])))
        for text in translations(entry):
            assert sorted(set(named.findall(text))) == expected, entry["msgid"]


def test_the_compiled_catalogue_matches_the_po_file() -> None:
    """The .mo is committed (machines without gettext cannot compile it): it must be current."""
    with (CATALOGUE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in po_entries(CATALOGUE / "django.po")[1:]:
        if "msgid_plural" in entry:
            assert compiled.ngettext(entry["msgid"], entry["msgid_plural"], 2) == entry["msgstr[0]"]
        elif "msgctxt" in entry:
            assert compiled.pgettext(entry["msgctxt"], entry["msgid"]) == entry["msgstr"]
        else:
            assert compiled.gettext(entry["msgid"]) == entry["msgstr"], entry["msgid"]


# --- reasons and names ----------------------------------------------------------------------------


def test_churn_reasons_read_in_chinese() -> None:
    with translation.override("zh-hans"):
        assert reason_text(OUTFLOW) == "30 天内转出 62% 的资产（净流出 62,000 元）"
        assert reason_text(DECLINE) == "近 90 天仅 1 天有交易，通常为 5.7 天"
        assert reason_text({"code": "complaints", "facts": {"count": 2}}) == "有 2 件未结投诉"
    with translation.override("en"):
        assert reason_text(OUTFLOW) == "Moved out 62% of assets in 30 days (net 62,000 withdrawn)"


def test_tier_and_segment_names_are_translated() -> None:
    with translation.override("zh-hans"):
        assert [str(label) for label in Tier.labels] == ["VIP客户", "主要客户", "普通客户", "小客户"]
        segments = {value: str(label) for value, label in ClientActivity._meta.get_field("segment").choices}
        assert segments["potentially_active"] == "潜在活跃"
        assert segments["dormant"] == "休眠"
        assert segments["active"] == "活跃"


def test_words_english_shares_get_their_own_chinese() -> None:
    """ "Open" is an account status (正常) and a flag status (待处理); "Clear" a screening result
    (未命中) and a decision (排除)."""
    with translation.override("zh-hans"):
        assert str(Client.Status.OPEN.label) == "正常"
        assert str(FlagStatus.OPEN.label) == "待处理"
        assert str(Decision.CLEAR.label) == "排除"
        assert str(FlagStatus.CLEARED.label) == "已排除"


# --- the pages ------------------------------------------------------------------------------------


def in_chinese(user: object) -> Browser:
    browser = Browser()
    browser.force_login(user)
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return browser


@pytest.fixture
def published(cast: Cast) -> Cast:
    for kind in (ResultSet.Kind.CHURN, ResultSet.Kind.ACTIVITY):
        ResultSet.objects.create(kind=kind, as_of=AS_OF, is_published=True, generation=7)
    ChurnScore.objects.create(
        generation=7, as_of=AS_OF, client=cast.alice_client, tier=Tier.VIP, segment="potentially_active",
        risk=80, p_alive=0.4, clv=Decimal("1234567"), clv_simple=Decimal("1234567"),
        value_at_risk=Decimal("987653.6"), reasons=[OUTFLOW, DECLINE],
    )  # fmt: skip
    ClientActivity.objects.create(
        generation=7, as_of=AS_OF, client=cast.alice_client, segment="potentially_active",
        last_trade_on=AS_OF - dt.timedelta(days=20), days_since_last_trade=20, trading_days=40,
        recent_trading_days=1, baseline_trading_days=5.7, typical_gap_days=2.8, overdue_ratio=7.1,
        about_to_go_dormant=True,
    )  # fmt: skip
    return cast


@pytest.mark.django_db
def test_the_language_switch_sets_chinese_for_the_user(cast: Cast) -> None:
    browser = Browser()
    browser.force_login(cast.alice.user)
    assert "My book" in browser.get("/").content.decode()
    switched = browser.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert switched.status_code == 302
    text = browser.get("/").content.decode()
    assert '<html lang="zh-hans">' in text
    assert "我的客户" in text
    assert "退出登录" in text
    assert "My book" not in text
    browser.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "My book" in browser.get("/").content.decode()


@pytest.mark.django_db
def test_the_home_page_in_chinese(published: Cast) -> None:
    page = in_chinese(published.alice.user).get("/")
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("我的客户", "正常客户", "客户总数", "流失风险：优先联系", "即将休眠", "按姓名或客户号搜索"):
        assert words in text, words
    assert "30 天内转出 62% 的资产（净流出 62,000 元）" in text
    assert "At risk: call first" not in text


@pytest.mark.django_db
def test_a_task_made_by_the_system_reads_in_chinese(published: Cast) -> None:
    """The reason of a task a playbook opened: stored in English with its facts, shown in the
    reader's language on the home page (today's work) and the 360 (open tasks)."""
    from retention.work import task_reasons
    from retention.work.models import RetentionTask

    facts = task_reasons.playbook_facts(
        "About to go dormant: offer a reactivation incentive", tier=Tier.VIP, risk=40, segment="potentially_active"
    )
    RetentionTask.objects.create(
        client=published.alice_client, kind="reactivation", assignee=published.alice.user,
        due=timezone.localdate(), reason_code="about_to_go_dormant", reason_facts=facts,
        reason_text="About to go dormant: offer a reactivation incentive (tier vip; churn risk 40; "
        "segment potentially_active)",
    )  # fmt: skip
    chinese = "即将休眠：提供激活优惠（级别 VIP客户；流失风险 40；活跃度：潜在活跃）"
    for url in ("/", f"/clients/{published.alice_client.client_no}/"):
        text = in_chinese(published.alice.user).get(url).content.decode()
        assert chinese in text, url
        assert "potentially_active" not in text, url
    english = Browser()
    english.force_login(published.alice.user)
    assert "(tier VIP; churn risk 40; activity: Potentially active)" in english.get("/").content.decode()


@pytest.mark.django_db
def test_the_client_360_in_chinese(published: Cast) -> None:
    page = in_chinese(published.alice.user).get(f"/clients/{published.alice_client.client_no}/")
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("客户可能流失的原因", "基本资料与适当性", "流失风险", "生命周期价值", "近期成交", "资金流水"):
        assert words in text, words
    assert "VIP客户" in text  # the tier
    assert "潜在活跃" in text  # the activity segment
    assert "即将休眠" in text
    assert "30 天内转出 62% 的资产（净流出 62,000 元）" in text
    assert "近 90 天仅 1 天有交易，通常为 5.7 天" in text
    assert "1,234,567" in text  # money grouped by three, as on a brokerage statement
    assert "Why this client may leave" not in text


@pytest.mark.django_db
def test_the_compliance_queue_in_chinese(cast: Cast) -> None:
    at = timezone.now() - dt.timedelta(days=2)
    Flag.objects.create(
        client=cast.alice_client, kind=FlagKind.PEP, subject="kyc", severity=Severity.HIGH,
        evidence={"source": "kyc", "declared_pep": True}, first_seen_on=AS_OF, last_seen_on=AS_OF,
        raised_at=at, updated_at=at,
    )  # fmt: skip
    page = in_chinese(cast.carol).get("/compliance/")
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("合规审核队列", "领取下一条预警", "待处理", "严重程度", "政治公众人物", "筛选预警", "高"):
        assert words in text, words
    assert "Compliance review queue" not in text


@pytest.mark.django_db
def test_the_dashboard_in_chinese(cast: Cast, run_nightly: object) -> None:
    make_book([100, 50, 20, 10, 5, 1, 0], as_of=AS_OF, manager=cast.alice)
    assert run_nightly(AS_OF, ["rollup", "tiers", "metrics"]).status == "succeeded"
    page = in_chinese(cast.tina).get("/dashboards/")
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("管理看板", "帕累托阶梯图", "客户分级分布", "级别迁移", "KPI 趋势", "客户经理排行榜", "营销活动效果"):
        assert words in text, words
    for tier in ("VIP客户", "主要客户", "普通客户", "小客户"):
        assert tier in text, tier
    assert "Management dashboard" not in text


@pytest.mark.django_db
def test_an_empty_dashboard_in_chinese(cast: Cast) -> None:
    text = in_chinese(cast.tina).get("/dashboards/").content.decode()
    assert "尚未运行夜间批处理。" in text
    assert "暂无营销活动。" in text


PROJECT_APPS = {"brokercrm", "clients", "segmentation", "retention", "feedback", "metrics", "compliance"}


def test_every_admin_model_and_app_has_a_chinese_name() -> None:
    """Ops staff working in Chinese find their way through the admin by its section and model
    names: each of the project's is in the catalogue (field names are not yet)."""
    from django.apps import apps
    from django.contrib import admin

    models = [model for model in admin.site._registry if model._meta.app_label in PROJECT_APPS]
    assert len(models) > 40
    untranslated = []
    with translation.override("zh-hans"):
        for model in models:
            for name in (model._meta.verbose_name, model._meta.verbose_name_plural):
                if not re.search(r"[\u4e00-\u9fff]", str(name)):
                    untranslated.append(f"{model.__name__}: {name}")
        for label in PROJECT_APPS:
            if not re.search(r"[\u4e00-\u9fff]", str(apps.get_app_config(label).verbose_name)):
                untranslated.append(f"app {label}")
    assert not untranslated


@pytest.mark.django_db
def test_the_admin_index_in_chinese() -> None:
    from tests import factories

    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    text = in_chinese(admin_user).get("/admin/").content.decode()
    for words in ("客户与交易流水", "成交记录", "流失风险评分", "留存任务", "夜间批处理记录", "合规预警"):
        assert words in text, words
    assert "Retention tasks" not in text
    assert "Churn scores" not in text
