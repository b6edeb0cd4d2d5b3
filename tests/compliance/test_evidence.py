"""A flag's evidence in words: translated labels, local times, grouped amounts, translated codes;
unknown keys and values still shown as stored."""

from django.utils import translation

from compliance.evidence import rows

SUITABILITY = {
    "amount": "40320.00",
    "trades": 1,
    "last_trade_at": "2026-11-02T05:24:01.592349+00:00",
    "client_risk_level": "C3",
    "product_risk_level": "R4",
}


def test_suitability_evidence_reads_as_words_with_local_time_and_grouped_amount(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    with translation.override("en"):
        shown = dict(rows(SUITABILITY))
    assert shown == {
        "Amount": "40,320.00",
        "Trades": "1",
        "Last trade": "2026-11-02 13:24",
        "Client risk level": "C3",
        "Product risk level": "R4",
    }


def test_codes_and_lists_are_translated_in_chinese():
    evidence = {"state": "expired", "id_type": "resident_id", "is_pep": True, "matched_fields": ["name", "dob"]}
    with translation.override("zh-hans"):
        shown = rows(evidence)
    assert shown == [
        ("状态", "已过期"),
        ("证件类型", "居民身份证"),
        ("政治公众人物", "是"),
        ("匹配字段", "姓名, 出生日期"),
    ]


def test_an_unknown_key_or_value_is_shown_as_stored():
    assert rows({"new_rule_fact": "odd-value", "nested": {"b": 1, "a": 2}}) == [
        ("New rule fact", "odd-value"),
        ("Nested", '{"a": 2, "b": 1}'),
    ]
    assert rows("free text") == [("", "free text")]
    assert rows({}) == []
