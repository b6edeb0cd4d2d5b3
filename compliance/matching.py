"""Fuzzy name matching for sanctions and PEP screening (pure functions: no ORM).

A name becomes a `NameForm`: its Chinese characters (if any) and its words, each word a
tuple of tokens. Chinese characters are transliterated to pinyin (pypinyin), surname first
(compound surnames such as 欧阳 kept together); Latin text is folded (case, accents,
punctuation, spacing) and each word is split into pinyin syllables when it is pinyin
("xiaoming" -> xiao ming). So 王小明, "Wang Xiaoming", "XIAOMING WANG" and
"wang xiao ming" all reduce to the syllables wang xiao ming.

Scores (0-100, rapidfuzz), the best over every word order of the first name:
- both names in Chinese characters: similarity of the characters (homophones such as
  汪小明 / 王小明 are different people);
- both names fully pinyin: similarity of the syllable sequences, so one different syllable
  in a three-syllable name (Xiaomin / Xiaoming) scores 67, not the 96 that letters give;
- otherwise: letter similarity of the names without spaces (typos, other spellings).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from pypinyin import lazy_pinyin
from pypinyin.constants import PINYIN_DICT
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "夏侯",
        "长孙",
        "宇文",
        "司徒",
        "西门",
        "端木",
        "独孤",
        "南宫",
        "闻人",
        "轩辕",
    ]
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SEPARATORS = re.compile(r"[^0-9a-z]+")
# Passport spellings of ü, folded like pypinyin's "v".
_U_SPELLINGS = {"lyu": "lu", "nyu": "nu", "lv": "lu", "nv": "nu", "lue": "lue", "nue": "nue"}
_MAX_PERMUTED_WORDS = 5


@cache
def pinyin_syllables() -> frozenset[str]:
    """Every toneless pinyin syllable pypinyin knows (~400), without the vowel-less
    interjections (m, n, ng, hm ...) that would split ordinary Latin words."""
    syllables = set()
    for readings in PINYIN_DICT.values():
        for reading in readings.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFKD", reading) if not unicodedata.combining(c))
            plain = plain.lower()
            if plain.isalpha() and re.search(r"[aeiouv]", plain):
                syllables.add(plain.replace("v", "u"))
    return frozenset(syllables)


@cache
def segment(token: str) -> tuple[str, ...] | None:
    """`token` split into the fewest pinyin syllables ("xiaoming" -> ("xiao", "ming")), or None."""
    token = _U_SPELLINGS.get(token, token)
    syllables = pinyin_syllables()
    n = len(token)
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[0] = ()
    for end in range(1, n + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            piece = token[start:end]
            if head is not None and piece in syllables:
                candidate = (*head, piece)
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    return best[n]


@dataclass(frozen=True)
class NameForm:
    raw: str
    hanzi: str  # the Chinese characters of the name, "" if none
    words: tuple[tuple[str, ...], ...]  # each word as tokens (pinyin syllables where possible)
    pinyin: bool  # every word is pinyin

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(itertools.chain.from_iterable(self.words))

    @property
    def keys(self) -> frozenset[str]:
        """Blocking keys: a candidate must share one (tokens and Chinese characters)."""
        return frozenset(self.tokens) | frozenset(self.hanzi)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_form(raw: str) -> NameForm:
    """The comparable form of a person's name (see the module docstring)."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    hanzi = "".join(_CJK.findall(text))
    if hanzi:
        surname_length = 2 if hanzi[:2] in COMPOUND_SURNAMES and len(hanzi) > 2 else 1
        syllables = tuple(s.replace("v", "u") for s in lazy_pinyin(hanzi))
        words = tuple(w for w in (syllables[:surname_length], syllables[surname_length:]) if w)
        return NameForm(raw=raw, hanzi=hanzi, words=words, pinyin=True)
    tokens = [token for token in _SEPARATORS.split(_fold(text)) if token]
    words = []
    pinyin = bool(tokens)
    for token in tokens:
        syllables = None if token.isdigit() else segment(token)
        if syllables is None:
            pinyin = False
            words.append((token,))
        else:
            words.append(syllables)
    return NameForm(raw=raw, hanzi="", words=tuple(words), pinyin=pinyin)


def _orders(words: Sequence[tuple[str, ...]]) -> Iterable[tuple[tuple[str, ...], ...]]:
    if len(words) <= _MAX_PERMUTED_WORDS:
        return itertools.permutations(words)
    return (tuple(words), tuple(reversed(words)))


def name_score(a: NameForm, b: NameForm) -> float:
    """Similarity 0-100 of two names, the best over the word orders of `a`."""
    if not a.words or not b.words:
        return 0.0
    if a.hanzi and b.hanzi:
        return round(float(fuzz.ratio(a.hanzi, b.hanzi)), 1)
    b_tokens = list(b.tokens)
    b_letters = "".join(b_tokens)
    best = 0.0
    for order in _orders(a.words):
        tokens = [token for word in order for token in word]
        if a.pinyin and b.pinyin:
            score = Levenshtein.normalized_similarity(tokens, b_tokens) * 100
        else:
            score = fuzz.ratio("".join(tokens), b_letters)
        best = max(best, score)
        if best >= 100:
            break
    return round(best, 1)


@dataclass(frozen=True)
class Candidate:
    """A watch-list entry prepared for matching."""

    entry_id: int
    forms: tuple[tuple[str, NameForm], ...]  # ("name" | "alias", form)
    birth_date: str | None  # ISO date
    birth_year: int | None
    countries: frozenset[str]


@dataclass(frozen=True)
class Match:
    entry_id: int
    score: float
    name_score: float
    matched_fields: tuple[str, ...]
    matched_name: str


def assess(
    client_form: NameForm,
    *,
    birthday: str | None,
    nationality: str | None,
    candidate: Candidate,
    threshold: float,
) -> Match | None:
    """The match of a client against one entry, or None.

    A match needs a name or alias scoring at least `threshold` (a client named in Chinese
    characters is compared with the entry's names in characters when it has any); a date of birth known on
    both sides that differs (or a different birth year) rules the entry out. Matched
    fields: "name" or "alias", "dob" when the birth date (or year) agrees, "country" when
    the client's nationality is one of the entry's countries. The score is the name score,
    raised by 5 points each for an agreeing date of birth and country (at most 100).
    """
    forms = candidate.forms
    if client_form.hanzi and any(form.hanzi for _, form in forms):
        # Written in characters on both sides: the entry's pinyin spellings only transliterate
        # its characters, and would equate homophones (汪小明 / 王小明, different people).
        forms = tuple((field, form) for field, form in forms if form.hanzi)
    best_score, best_field, best_name = 0.0, "", ""
    for field, form in forms:
        score = name_score(client_form, form)
        if score > best_score:
            best_score, best_field, best_name = score, field, form.raw
    if best_score < threshold:
        return None
    fields = [best_field]
    if birthday:
        if candidate.birth_date:
            if candidate.birth_date != birthday:
                return None
            fields.append("dob")
        elif candidate.birth_year:
            if int(birthday[:4]) != candidate.birth_year:
                return None
            fields.append("dob")
    if nationality and nationality in candidate.countries:
        fields.append("country")
    bonus = 5 * (("dob" in fields) + ("country" in fields))
    return Match(
        entry_id=candidate.entry_id,
        score=min(100.0, best_score + bonus),
        name_score=best_score,
        matched_fields=tuple(fields),
        matched_name=best_name,
    )


class CandidateIndex:
    """Entries by blocking key, so a client is compared only with entries sharing a syllable,
    a token or a Chinese character of its name."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.by_id: dict[int, Candidate] = {}
        self.by_key: dict[str, set[int]] = {}
        for candidate in candidates:
            self.by_id[candidate.entry_id] = candidate
            for _, form in candidate.forms:
                for key in form.keys:
                    self.by_key.setdefault(key, set()).add(candidate.entry_id)

    def __len__(self) -> int:
        return len(self.by_id)

    def candidates(self, form: NameForm) -> list[Candidate]:
        ids: set[int] = set()
        for key in form.keys:
            ids |= self.by_key.get(key, set())
        return [self.by_id[entry_id] for entry_id in sorted(ids)]

    def matches(
        self, form: NameForm, *, birthday: str | None, nationality: str | None, threshold: float
    ) -> list[Match]:
        found = []
        for candidate in self.candidates(form):
            match = assess(form, birthday=birthday, nationality=nationality, candidate=candidate, threshold=threshold)
            if match is not None:
                found.append(match)
        return found
