"""Master rows for a chunk of clients: Client, KYCProfile, RiskAssessment, Interaction.

Strings are built with numpy's vectorised string functions; nothing loops per client.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from brokercrm.lib import crypto
from clients.demo import reference
from clients.demo.calendar import local_to_utc_us
from clients.demo.ledger import fixed_code
from clients.demo.population import AML_RISKS, SANCTIONS, VERIFICATIONS, Population
from clients.demo.writers import Nullable
from clients.models import Client, Interaction, KYCProfile, RiskAssessment

_EPOCH = dt.date(1970, 1, 1)
_US_PER_HOUR = 3_600_000_000
_REVIEW_YEARS = np.array([3, 2, 1])  # by AML risk: low, medium, high
_SCORE_BANDS = np.array([[0, 20], [21, 36], [37, 53], [54, 82], [83, 100]])
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_FOREIGN = np.array(["US", "SG", "CA", "AU", "GB", "JP", "CN"])
_BANDS = np.array(["low", "medium", "high", "very_high"])
_INTERACTION_CHANNELS = np.array(["phone", "sms", "email", "chat", "visit", "seminar", "other"])
_INTERACTION_MIX = np.array([0.42, 0.16, 0.1, 0.17, 0.08, 0.05, 0.02])
_SUMMARIES = np.array(
    [
        "Callback: reviewed recent trades and the client's plans.",
        "Sent the monthly trade review and market hot-spot alert.",
        "Emailed the quarterly research report.",
        "Answered questions on margin and fees in the app chat.",
        "Branch visit: portfolio review and risk plan.",
        "Invited to the investment strategy seminar.",
        "Birthday greeting and service reminder.",
    ]
)
_OUTCOMES = np.array(["Reached, satisfied", "Reached, follow-up needed", "No answer", "Left message", ""])


@dataclass
class RowIds:
    """Next primary keys of the per-client tables."""

    kyc: int
    risk_assessment: int
    interaction: int
    login: int = 1


@dataclass(frozen=True)
class BookRefs:
    """Database ids the client rows point to."""

    branch_ids: np.ndarray  # by index into reference.BRANCHES
    manager_ids: np.ndarray  # by manager index
    manager_user_ids: np.ndarray  # by manager index
    as_of: dt.date


def _dates(day_numbers: np.ndarray) -> np.ndarray:
    return np.asarray(day_numbers, dtype=np.int64).astype("datetime64[D]")


def _pick(rng: np.random.Generator, choices: np.ndarray, size: int, p: np.ndarray | None = None) -> np.ndarray:
    return choices[rng.choice(len(choices), size=size, p=p)]


def _digits(rng: np.random.Generator, size: int, width: int) -> np.ndarray:
    """Random decimal strings of `width` digits as a (size, width) uint8 ASCII matrix."""
    return rng.integers(48, 58, (size, width), dtype=np.uint8)


def _as_bytes(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix).view(f"S{matrix.shape[1]}").ravel()


def client_rows(
    rng: np.random.Generator, population: Population, rows: slice, refs: BookRefs, ids: RowIds
) -> dict[type, dict]:
    """The rows of clients `rows` (a slice of the population) for each model."""
    index = np.arange(len(population))[rows]
    n = len(index)
    as_of = (refs.as_of - _EPOCH).days
    institution = population.institution[index]
    branch = population.branch[index]
    client_ids = population.ids[index]
    opened = population.opened[index]
    closed = population.closed[index]
    birthday = population.birthday[index]

    # Names: surname + one or two given characters; institutions get a company name.
    surnames = reference.SURNAMES[
        rng.choice(len(reference.SURNAMES), n, p=reference.SURNAME_WEIGHTS / reference.SURNAME_WEIGHTS.sum())
    ]
    given = np.strings.add(
        _pick(rng, reference.GIVEN_CHARS, n),
        np.where(rng.random(n) < 0.75, _pick(rng, reference.GIVEN_CHARS, n), ""),
    )
    cities = np.array([reference.CITY_ZH[b.city] for b in reference.BRANCHES])[branch]
    company = np.strings.add(
        np.strings.add(
            np.strings.add(cities, _pick(rng, reference.COMPANY_WORDS, n)), _pick(rng, reference.COMPANY_KINDS, n)
        ),
        "有限公司",
    )
    name = np.where(institution, company, np.strings.add(surnames, given))
    client_no = fixed_code(b"DM", client_ids, 10)
    mobile_prefix = np.frombuffer(b"35789", dtype=np.uint8)[rng.integers(0, 5, n)]
    phone = _as_bytes(np.hstack([np.full((n, 1), ord("1"), np.uint8), mobile_prefix[:, None], _digits(rng, n, 9)]))
    email = np.where(rng.random(n) < 0.35, np.strings.add(np.strings.lower(client_no.astype(str)), "@example.com"), "")
    address = np.strings.add(
        np.strings.add(np.strings.add(cities, _pick(rng, reference.ROADS, n)), rng.integers(1, 999, n).astype(str)),
        "号",
    )
    status = np.where(closed >= 0, "closed", np.where(population.restricted[index], "restricted", "open"))
    manager = population.manager[index]
    created = local_to_utc_us(opened, 9 * _US_PER_HOUR).astype("datetime64[us]")
    clients = {
        "id": client_ids,
        "client_no": client_no,
        "name": name,
        "kind": np.where(institution, "institution", "individual"),
        "phone": phone,
        "email": email,
        "address": address,
        "branch_id": refs.branch_ids[branch],
        "account_manager_id": Nullable(refs.manager_ids[np.maximum(manager, 0)], manager < 0),
        "status": status,
        "opened_on": _dates(opened),
        "closed_on": Nullable(_dates(np.maximum(closed, 0)), closed < 0),
        "birthday": Nullable(_dates(np.maximum(birthday, 0)), birthday < 0),
        "created_at": created,
        "updated_at": created,
    }
    kyc = _kyc(rng, population, index, ids, as_of)
    risk = _risk_assessments(rng, population, index, ids, as_of)
    interactions = _interactions(rng, population, index, refs, ids, as_of)
    return {Client: clients, KYCProfile: kyc, RiskAssessment: risk, Interaction: interactions}


def _kyc(rng: np.random.Generator, population: Population, index: np.ndarray, ids: RowIds, as_of: int) -> dict:
    n = len(index)
    institution = population.institution[index]
    open_now = population.closed[index] < 0
    id_type = np.where(
        institution, 4, rng.choice(4, size=n, p=[0.95, 0.02, 0.02, 0.01])
    )  # resident, passport, HK/Macau, Taiwan, licence
    region = np.array([b.region_code for b in reference.BRANCHES])[population.branch[index]]
    other_region = np.array([b.region_code for b in reference.BRANCHES])[rng.integers(0, len(reference.BRANCHES), n)]
    region = np.where(rng.random(n) < 0.85, region, other_region)
    region_digits = np.ascontiguousarray(np.strings.encode(region, "ascii")).view(np.uint8).reshape(n, 6)
    birth = np.strings.replace(
        np.datetime_as_string(_dates(np.maximum(population.birthday[index], 0)), unit="D"), "-", ""
    )
    birth_digits = np.ascontiguousarray(np.strings.encode(birth, "ascii")).view(np.uint8).reshape(n, 8)
    body = np.hstack([region_digits, birth_digits, _digits(rng, n, 3)])
    check = _ID_CHECK[((body.astype(np.int64) - 48) @ _ID_WEIGHTS) % 11]
    resident = _as_bytes(np.hstack([body, check[:, None]]))
    letters = np.frombuffer(b"EEHTP", dtype=np.uint8)
    document = _as_bytes(np.hstack([np.full((n, 1), 0, np.uint8) + letters[id_type][:, None], _digits(rng, n, 8)]))
    licence = _as_bytes(np.hstack([np.full((n, 2), ord("9"), np.uint8), region_digits, _digits(rng, n, 10)]))
    id_number = np.where(id_type == 0, resident, np.where(id_type == 4, licence, document))
    # Stored encrypted with its lookup hash, as the model would store it (the writers bypass it).
    plain_ids = np.strings.decode(id_number, "ascii").tolist()
    id_tokens = np.array(crypto.encrypt_many(plain_ids), dtype="S")
    id_hashes = np.array(crypto.blind_index_many(plain_ids), dtype="S")

    # Expiry: resident cards of the over-46s are valid for life; a few documents have
    # expired or expire within 30 days.
    age = (as_of - population.birthday[index]) / 365.25
    lifetime = institution | ((id_type == 0) & (age >= 46) & (rng.random(n) < 0.7))
    expiry = as_of + 31 + (rng.random(n) * 15 * 365).astype(np.int64)
    candidates = np.flatnonzero(open_now & ~lifetime)
    chosen = rng.permutation(candidates)
    n_expired = min(len(chosen), max(3, round(0.03 * n)))
    n_expiring = min(len(chosen) - n_expired, max(3, round(0.02 * n)))
    expired, expiring = chosen[:n_expired], chosen[n_expired : n_expired + n_expiring]
    expiry[expired] = as_of - 1 - (rng.random(len(expired)) * 400).astype(np.int64)
    expiry[expiring] = as_of + (rng.random(len(expiring)) * 30).astype(np.int64)

    nationality = np.select(
        [id_type == 2, id_type == 3, id_type == 1], ["HK", "TW", _pick(rng, _FOREIGN, n)], default="CN"
    )
    occupation = np.where(
        institution, "", np.where((age >= 62) & (rng.random(n) < 0.8), "Retired", _pick(rng, reference.OCCUPATIONS, n))
    )
    wealth = population.assets[index] * np.exp(rng.normal(0, 0.3, n))
    net_worth = np.digitize(wealth, [300_000, 3_000_000, 15_000_000])
    income = np.clip(net_worth + rng.choice([-1, 0, 0, 1], size=n), 0, 3)
    source = np.where(institution, "Business income", _pick(rng, reference.SOURCES_OF_FUNDS, n))

    aml = population.aml_risk[index]
    years = _REVIEW_YEARS[aml]
    overdue = rng.random(n) < 0.06
    since = np.where(overdue, years * 365 + 1 + (rng.random(n) * 240), rng.random(n) * (years * 365 - 1)).astype(
        np.int64
    )
    last_review = np.maximum(as_of - since, population.opened[index])
    next_due = last_review + years * 365
    kyc_ids = ids.kyc + np.arange(n, dtype=np.int64)
    ids.kyc += n
    return {
        "id": kyc_ids,
        "client_id": population.ids[index],
        "id_type": np.array(["resident_id", "passport", "hk_macau_permit", "taiwan_permit", "business_licence"])[
            id_type
        ],
        "id_number": id_tokens,
        "id_number_hash": id_hashes,
        "id_expiry": Nullable(_dates(expiry), lifetime),
        "nationality": nationality,
        "occupation": occupation,
        "income_band": _BANDS[income],
        "net_worth_band": _BANDS[net_worth],
        "source_of_funds": source,
        "is_pep": population.pep[index],
        "sanctions_status": np.array(SANCTIONS)[population.sanctions[index]],
        "aml_risk": np.array(AML_RISKS)[aml],
        "verification_status": np.array(VERIFICATIONS)[population.verification[index]],
        "last_review_on": Nullable(_dates(last_review), np.zeros(n, dtype=bool)),
        "next_review_due": Nullable(_dates(next_due), np.zeros(n, dtype=bool)),
        "updated_at": local_to_utc_us(last_review, 10 * _US_PER_HOUR).astype("datetime64[us]"),
    }


def _risk_assessments(
    rng: np.random.Generator, population: Population, index: np.ndarray, ids: RowIds, as_of: int
) -> dict:
    """The latest assessment of every client (about one in ten older than two years, so
    expired) and up to two earlier ones a year or more apart."""
    n = len(index)
    opened = population.opened[index]
    closed = population.closed[index]
    level = population.risk_level[index].astype(np.int64)
    history = np.maximum(as_of - opened, 1)
    stale = (rng.random(n) < 0.1) & (history > 800)
    eligible = np.flatnonzero(history > 800)
    if len(eligible) and stale.sum() < 3:
        stale[rng.choice(eligible, size=min(3, len(eligible)), replace=False)] = True
    back = np.where(
        stale,
        731 + rng.random(n) * np.minimum(history - 731, 1100),
        1 + rng.random(n) * np.minimum(history - 1, 700),
    ).astype(np.int64)
    latest = np.maximum(as_of - back, opened)
    latest = np.where(closed >= 0, np.minimum(latest, np.maximum(closed, opened)), latest)

    first = latest - 400 - (rng.random(n) * 500).astype(np.int64)
    has_first = (first >= opened) & (rng.random(n) < 0.6)
    second = first - 400 - (rng.random(n) * 500).astype(np.int64)
    has_second = has_first & (second >= opened) & (rng.random(n) < 0.4)

    client = np.concatenate([np.flatnonzero(has_second), np.flatnonzero(has_first), np.arange(n)])
    assessed = np.concatenate([second[has_second], first[has_first], latest])
    earlier = np.concatenate(
        [np.ones(int(has_second.sum()), bool), np.ones(int(has_first.sum()), bool), np.zeros(n, bool)]
    )
    levels = level[client] + np.where(earlier, rng.choice([-1, 0, 0, 1], size=len(client)), 0)
    levels = np.clip(levels, 1, 5)
    order = np.lexsort((assessed, client))
    client, assessed, levels = client[order], assessed[order], levels[order]
    total = len(client)
    low, high = _SCORE_BANDS[levels - 1, 0], _SCORE_BANDS[levels - 1, 1]
    score = low + (rng.random(total) * (high - low + 1)).astype(np.int64)
    horizon = np.where(levels <= 2, "short", np.where(levels == 3, "medium", "long"))
    horizon = np.where(rng.random(total) < 0.2, "medium", horizon)
    experience = np.clip((assessed - opened[client]) // 365 + rng.integers(0, 6, total), 0, 40)
    answers = np.strings.add(
        np.strings.add(
            '{"questionnaire": "2024-v3", "loss_tolerance": "', np.array(["5%", "10%", "20%", "30%", "50%"])[levels - 1]
        ),
        np.strings.add('", "experience_years": ', np.strings.add(experience.astype(str), "}")),
    )
    ra_ids = ids.risk_assessment + np.arange(total, dtype=np.int64)
    ids.risk_assessment += total
    return {
        "id": ra_ids,
        "client_id": population.ids[index][client],
        "risk_level": levels,
        "score": score,
        "answers": answers,
        "objectives": reference.OBJECTIVES[levels - 1],
        "horizon": horizon,
        "experience_years": experience,
        "assessed_on": _dates(assessed),
        "expires_on": _dates(assessed + 730),
    }


def _interactions(
    rng: np.random.Generator, population: Population, index: np.ndarray, refs: BookRefs, ids: RowIds, as_of: int
) -> dict:
    """About one contact a year per managed client, more for the wealthier ones."""
    manager = population.manager[index]
    assets = population.assets[index]
    expected = np.where(manager >= 0, 0.8 + (assets > 1_000_000) * 2.0, 0.0)
    counts = rng.poisson(expected)
    client = np.repeat(np.arange(len(index)), counts)
    day = as_of - 1 - (rng.random(len(client)) * 365).astype(np.int64)
    opened, closed = population.opened[index][client], population.closed[index][client]
    keep = (day >= opened) & ((closed < 0) | (day < closed))
    client, day = client[keep], day[keep]
    total = len(client)
    kind = rng.choice(len(_INTERACTION_CHANNELS), size=total, p=_INTERACTION_MIX)
    occurred = local_to_utc_us(day, (9 * 3600 + rng.random(total) * 9 * 3600).astype(np.int64) * 1_000_000)
    order = np.lexsort((occurred, client))
    client, kind, occurred = client[order], kind[order], occurred[order]
    outbound = (kind != 3) | (rng.random(total) < 0.3)
    outcome = np.where(np.isin(kind, [0, 4]), _pick(rng, _OUTCOMES, total), "")
    interaction_ids = ids.interaction + np.arange(total, dtype=np.int64)
    ids.interaction += total
    when = occurred.astype("datetime64[us]")
    return {
        "id": interaction_ids,
        "client_id": population.ids[index][client],
        "channel": _INTERACTION_CHANNELS[kind],
        "direction": np.where(outbound, "outbound", "inbound"),
        "summary": _SUMMARIES[kind],
        "outcome": outcome,
        "occurred_at": when,
        "by_id": Nullable(refs.manager_user_ids[manager[client]], np.zeros(total, dtype=bool)),
        "created_at": when,
    }


LOGIN_DAYS = 90
_LOGIN_CHANNELS = np.array(["mobile", "online", "desktop"])
_LOGIN_MIX = np.array([0.72, 0.2, 0.08])


def login_rows(rng: np.random.Generator, population: Population, part: slice, refs: BookRefs, ids: RowIds) -> dict:
    """ClientLogin rows of a chunk of clients: the daily sign-in counts of the last LOGIN_DAYS
    days, as the trading platform exports them. Clients who trade often sign in on most days;
    after their activity fades or stops they sign in rarely; none before opening or after
    closing. One channel a day per client (the app, mostly)."""
    index = np.arange(part.start, part.stop)
    as_of = (refs.as_of - _EPOCH).days
    days = as_of - LOGIN_DAYS + 1 + np.arange(LOGIN_DAYS, dtype=np.int64)
    day = days[None, :]
    chance = np.clip(0.08 + population.rate[index] / 250 * 0.8, 0.05, 0.9)[:, None]
    chance = np.where(day >= population.fade_start[index][:, None], chance * 0.4, chance)
    chance = np.where(day >= population.active_until[index][:, None], 0.01, chance)
    closed = population.closed[index][:, None]
    is_open = (day >= population.opened[index][:, None]) & ((closed < 0) | (day < closed))
    client, when = np.nonzero((rng.random(chance.shape) < chance) & is_open)
    total = len(client)
    channel = rng.choice(len(_LOGIN_CHANNELS), size=total, p=_LOGIN_MIX)
    login_ids = ids.login + np.arange(total, dtype=np.int64)
    ids.login += total
    return {
        "id": login_ids,
        "client_id": population.ids[index][client],
        "day": _dates(days[when]),
        "channel": _LOGIN_CHANNELS[channel],
        "logins": 1 + rng.poisson(0.8, size=total),
    }
