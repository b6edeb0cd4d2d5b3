"""The fuzzy name matcher: true matches across case, spacing, word order and transliteration;
a list of near-miss names of different people is not matched."""

import pytest

from compliance.matching import Candidate, CandidateIndex, assess, name_form, name_score, segment

THRESHOLD = 88

ENTRY = Candidate(
    entry_id=1,
    forms=(("name", name_form("王小明")), ("alias", name_form("Wang Xiaoming"))),
    birth_date="1975-03-14",
    birth_year=1975,
    countries=frozenset({"CN", "HK"}),
)


@pytest.mark.parametrize(
    "name",
    [
        "王小明",
        "Wang Xiaoming",
        "XIAOMING WANG",
        "wang xiao ming",
        "Wang Xiao-Ming",
        "  wang   XIAOMING ",
        "WANG, Xiaoming",
        "Wáng Xiǎomíng",
        "Wang Xiaomng",  # a typo
    ],
)
def test_true_matches_are_found(name):
    match = assess(name_form(name), birthday=None, nationality=None, candidate=ENTRY, threshold=THRESHOLD)

    assert match is not None, name
    assert match.name_score >= THRESHOLD


@pytest.mark.parametrize(
    "name",
    [
        "Wang Xiaomin",  # one letter, but a different given name
        "Wang Xiaoping",
        "Wang Ming",
        "Wang Xiao",
        "Li Xiaoming",
        "Huang Xiaoming",
        "Zhang Wei",
        "汪小明",  # a homophone written with another surname: another person
        "王晓明",
        "王小",
        "Xiaoming Li",
        "Wang Daming",
    ],
)
def test_near_misses_of_different_people_are_not_matched(name):
    match = assess(name_form(name), birthday=None, nationality=None, candidate=ENTRY, threshold=THRESHOLD)

    assert match is None, (name, name_score(name_form(name), name_form("王小明")))


def test_scores_are_real_similarities():
    assert name_score(name_form("XIAOMING WANG"), name_form("王小明")) == 100
    # one syllable of three differs: 2/3
    assert name_score(name_form("Wang Xiaomin"), name_form("王小明")) == pytest.approx(66.7)
    # both in characters: compared as characters (one of three differs)
    assert name_score(name_form("汪小明"), name_form("王小明")) == pytest.approx(66.7)
    assert name_score(name_form("Vladimir Putin"), name_form("PUTIN, Vladimir")) == 100
    assert 85 < name_score(name_form("Vladimir Poutine"), name_form("Vladimir Putin")) < 100


def test_pinyin_segmentation_and_compound_surnames():
    assert segment("xiaoming") == ("xiao", "ming")
    assert segment("zhangweidong") == ("zhang", "wei", "dong")
    assert segment("smith") is None
    assert name_form("欧阳娜娜").words == (("ou", "yang"), ("na", "na"))
    assert name_score(name_form("Nana Ouyang"), name_form("欧阳娜娜")) == 100
    assert name_score(name_form("Lyu Bu"), name_form("吕布")) == 100


def test_date_of_birth_and_country_are_matched_fields_and_a_different_dob_rules_out():
    same = assess(
        name_form("Wang Xiaoming"), birthday="1975-03-14", nationality="CN", candidate=ENTRY, threshold=THRESHOLD
    )
    other_dob = assess(
        name_form("Wang Xiaoming"), birthday="1990-01-01", nationality="CN", candidate=ENTRY, threshold=THRESHOLD
    )
    unknown = assess(name_form("王小明"), birthday=None, nationality="US", candidate=ENTRY, threshold=THRESHOLD)

    assert same.matched_fields == ("name", "dob", "country")  # the transliterated name scores first
    assert same.score == 100
    assert other_dob is None
    assert unknown.matched_fields == ("name",)
    assert unknown.score == unknown.name_score == 100


def test_year_only_birth_dates_match_on_the_year():
    entry = Candidate(2, (("name", name_form("Li Jianguo")),), None, 1962, frozenset({"CN"}))

    assert assess(name_form("李建国"), birthday="1962-08-01", nationality="CN", candidate=entry, threshold=88)
    assert assess(name_form("李建国"), birthday="1963-08-01", nationality="CN", candidate=entry, threshold=88) is None


def test_the_index_only_compares_entries_sharing_a_name_key():
    index = CandidateIndex(
        [
            ENTRY,
            Candidate(2, (("name", name_form("Zhang Weidong")),), None, None, frozenset()),
            Candidate(3, (("name", name_form("Maria Gonzalez")),), None, None, frozenset()),
        ]
    )

    assert [c.entry_id for c in index.candidates(name_form("王伟"))] == [1, 2]  # wang; wei
    matches = index.matches(name_form("张伟东"), birthday=None, nationality=None, threshold=88)
    assert [m.entry_id for m in matches] == [2]
