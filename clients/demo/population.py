"""The clients of the demo book as per-client numpy arrays, and their master rows.

`build_population()` draws every client's attributes and behaviour at once (a few
numbers per client: ~200 MB at a million clients). The text-heavy rows (clients, KYC,
risk assessments, interactions) are made per chunk of clients by `client_rows()`.

Behavioural archetypes (exact counts, so even a small book has each of them):
- normal: trades at its own rate, deposits and withdraws now and then;
- dormant: stopped trading 1-4 years ago; part of them hold a tiny cash balance and no
  securities (the regulator's "dormant account");
- fading: slowed down over a few months and stopped 2-14 weeks ago while withdrawing
  most of the money (the brokerage way of leaving: no formal closing);
- high assets, low activity: millions in custody, a trade or two a year;
- closed: stopped trading, withdrew everything and closed the account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from clients.demo import reference
from clients.demo.calendar import Calendar

NORMAL, DORMANT, FADING, HIGH_ASSETS_LOW_ACTIVITY, CLOSED = 0, 1, 2, 3, 4
NEVER = np.iinfo(np.int64).max // 4  # a day number later than any real day

# Trading styles: weights over instrument groups (see ledger.instrument_groups).
STYLES = (
    "blue_chip",
    "growth",
    "small_cap",
    "conservative",
    "fund",
    "futures",
    "options",
    "diversified",
)
# P(style | client risk level C1..C5)
_STYLE_BY_LEVEL = np.array(
    [
        [0.10, 0.00, 0.00, 0.70, 0.20, 0.00, 0.00, 0.00],
        [0.25, 0.00, 0.00, 0.30, 0.35, 0.00, 0.00, 0.10],
        [0.25, 0.20, 0.10, 0.00, 0.15, 0.00, 0.00, 0.30],
        [0.10, 0.25, 0.30, 0.00, 0.00, 0.10, 0.05, 0.20],
        [0.00, 0.20, 0.25, 0.00, 0.00, 0.30, 0.15, 0.10],
    ]
)
# Channels of a trade, in the order of clients.models.Channel.
CHANNELS = ("mobile", "online", "self_service", "phone", "counter", "other")
_CHANNEL_MIX_YOUNGER = np.array([0.72, 0.15, 0.04, 0.04, 0.02, 0.03])
_CHANNEL_MIX_OLDER = np.array([0.45, 0.10, 0.13, 0.14, 0.14, 0.04])
SANCTIONS = ("not_screened", "clear", "potential_match", "confirmed_match")
AML_RISKS = ("low", "medium", "high")
VERIFICATIONS = ("pending", "verified", "rejected")


@dataclass
class Population:
    ids: np.ndarray
    institution: np.ndarray
    branch: np.ndarray  # index into reference.BRANCHES
    manager: np.ndarray  # index into the account managers, -1 for none
    opened: np.ndarray  # day numbers (days since 1970-01-01)
    closed: np.ndarray  # day number, or -1
    restricted: np.ndarray
    birthday: np.ndarray  # day number, or -1 (institutions)
    archetype: np.ndarray
    active_until: np.ndarray  # first day without trading (NEVER for normal clients)
    fade_start: np.ndarray  # fading clients: the day activity starts to fall
    tiny_balance: np.ndarray  # regulatory dormant: a few yuan of cash, no securities
    rate: np.ndarray  # trades a year while active
    ticket: np.ndarray  # typical trade amount, CNY
    commission_rate: np.ndarray
    assets: np.ndarray  # assets at the start of the history (or at opening), CNY
    cash_share: np.ndarray
    beta: np.ndarray
    deposit_rate: np.ndarray  # deposits a month
    withdrawal_rate: np.ndarray  # withdrawals a month
    style: np.ndarray
    channel: np.ndarray  # preferred channel, index into CHANNELS
    risk_level: np.ndarray  # current suitability level 1..5 (C1..C5)
    pep: np.ndarray
    sanctions: np.ndarray  # index into SANCTIONS
    aml_risk: np.ndarray  # index into AML_RISKS
    verification: np.ndarray  # index into VERIFICATIONS

    def __len__(self) -> int:
        return len(self.ids)


def _day(value: dt.date) -> int:
    return (value - dt.date(1970, 1, 1)).days


def _exact(rng: np.random.Generator, candidates: np.ndarray, share: float, minimum: int) -> np.ndarray:
    """A random subset of `candidates` of size max(minimum, share x len), as far as possible."""
    size = min(len(candidates), max(minimum, round(share * len(candidates))))
    return rng.choice(candidates, size=size, replace=False) if size else candidates[:0]


def build_population(
    rng: np.random.Generator, *, count: int, first_id: int, calendar: Calendar, managers_by_branch: list[np.ndarray]
) -> Population:
    """Draw `count` clients with ids from `first_id`. `managers_by_branch[b]` holds the
    indexes of branch b's account managers."""
    n = count
    as_of = _day(calendar.as_of)
    start = _day(calendar.start)
    institution = rng.random(n) < 0.02
    weights = np.array([b.weight for b in reference.BRANCHES])
    branch = rng.choice(len(weights), size=n, p=weights / weights.sum())

    # Opening dates: most accounts predate the history (ages spread over many years),
    # and the book grows by ~9% a year.
    months = max(1, round((as_of - start) / 30.44))
    new = rng.random(n) < min(0.35, 0.09 * months / 12)
    age_at_start = np.minimum(rng.exponential(4.5 * 365, n), 16 * 365).astype(np.int64) + 1
    opened = np.where(new, start + (rng.random(n) * max(as_of - start - 1, 1)).astype(np.int64), start - age_at_start)
    opened = np.minimum(opened, as_of - 1)

    # Ages: individuals 18-88, adult at opening.
    years_open = (as_of - opened) / 365.25
    age = np.clip(rng.normal(45, 12, n), years_open + 18.5, 88)
    birthday = np.where(institution, -1, as_of - (age * 365.25).astype(np.int64))

    # Closed accounts: closed some time after opening.
    closable = np.flatnonzero(~institution & (opened < as_of - 120))
    closed_idx = _exact(rng, closable, 0.04, 2)
    closed = np.full(n, -1, dtype=np.int64)
    span = as_of - 1 - (opened[closed_idx] + 90)
    closed[closed_idx] = opened[closed_idx] + 90 + (rng.random(len(closed_idx)) * span).astype(np.int64)

    # Archetypes, drawn without overlap among long-standing open accounts.
    archetype = np.full(n, NORMAL, dtype=np.int8)
    archetype[closed_idx] = CLOSED
    seasoned = np.flatnonzero((archetype == NORMAL) & (opened < as_of - 420))
    seasoned = rng.permutation(seasoned)
    n_dormant = min(len(seasoned), max(4, round(0.17 * len(seasoned))))
    n_fading = min(len(seasoned) - n_dormant, max(4, round(0.05 * len(seasoned))))
    n_hala = min(len(seasoned) - n_dormant - n_fading, max(4, round(0.025 * len(seasoned))))
    dormant_idx = seasoned[:n_dormant]
    fading_idx = seasoned[n_dormant : n_dormant + n_fading]
    hala_idx = seasoned[n_dormant + n_fading : n_dormant + n_fading + n_hala]
    archetype[dormant_idx] = DORMANT
    archetype[fading_idx] = FADING
    archetype[hala_idx] = HIGH_ASSETS_LOW_ACTIVITY

    active_until = np.full(n, NEVER, dtype=np.int64)
    fade_start = np.full(n, NEVER, dtype=np.int64)
    idle = 366 + (rng.random(len(dormant_idx)) * 3 * 365).astype(np.int64)
    active_until[dormant_idx] = np.maximum(as_of - idle, opened[dormant_idx])
    stop = as_of - 14 - (rng.random(len(fading_idx)) * 85).astype(np.int64)
    active_until[fading_idx] = stop
    fade_start[fading_idx] = stop - 60 - (rng.random(len(fading_idx)) * 90).astype(np.int64)
    active_until[closed_idx] = closed[closed_idx] - 5 - (rng.random(len(closed_idx)) * 55).astype(np.int64)
    tiny_balance = np.zeros(n, dtype=bool)
    long_idle = dormant_idx[active_until[dormant_idx] < as_of - 730]
    tiny_balance[long_idle[rng.random(len(long_idle)) < 0.6]] = True
    if not tiny_balance.any() and len(dormant_idx):
        tiny_balance[dormant_idx[np.argmin(active_until[dormant_idx])]] = True

    # Money: custody assets lognormal with a heavy tail; institutions larger.
    assets = np.exp(rng.normal(np.log(60_000), 0.95, n))
    assets[institution] = np.exp(rng.normal(np.log(1_200_000), 0.9, int(institution.sum())))
    assets[hala_idx] = np.maximum(np.exp(rng.normal(np.log(4_000_000), 0.7, len(hala_idx))), 1_200_000)
    assets[tiny_balance] = rng.uniform(0.5, 95, int(tiny_balance.sum()))
    assets = np.round(assets, 2)
    cash_share = np.clip(rng.beta(2.0, 5.0, n), 0.02, 0.98)
    cash_share[hala_idx] = np.clip(rng.beta(2.0, 4.0, len(hala_idx)), 0.05, 0.9)
    beta = np.clip(rng.normal(1.0, 0.3, n), 0.2, 1.8)

    # Activity: trades a year (lognormal, very skewed) and trade size relative to assets.
    rate = np.exp(rng.normal(np.log(8.3), 1.0, n))
    rate[institution] *= 1.5
    rate[hala_idx] = rng.uniform(0.2, 1.2, len(hala_idx))
    ticket = np.clip(assets * np.exp(rng.normal(np.log(0.28), 0.45, n)), 1_500, 80_000_000)
    ticket[institution] *= 0.5
    ticket[hala_idx] = assets[hala_idx] * rng.uniform(0.01, 0.04, len(hala_idx))
    ticket[tiny_balance] = np.exp(rng.normal(np.log(8_000), 0.6, int(tiny_balance.sum())))
    legacy = (as_of - opened) > 8 * 365
    commission_rate = np.exp(rng.normal(np.log(0.00028), 0.3, n)) * (np.maximum(assets, 1e4) / 2e5) ** -0.05
    commission_rate = np.clip(np.where(legacy, commission_rate * 1.3, commission_rate), 0.00015, 0.0008)

    deposit_rate = 0.22 * np.exp(rng.normal(0, 0.5, n))
    withdrawal_rate = 0.16 * np.exp(rng.normal(0, 0.5, n))
    deposit_rate[hala_idx] *= 0.4
    withdrawal_rate[hala_idx] *= 0.3

    risk_level = rng.choice(5, size=n, p=[0.08, 0.2, 0.4, 0.22, 0.1]) + 1
    risk_level[hala_idx] = rng.choice([2, 3, 4], size=len(hala_idx), p=[0.3, 0.5, 0.2])
    style = _draw(rng, _STYLE_BY_LEVEL[risk_level - 1])
    # A few clients trade against their profile: the suitability flags have work to do.
    off_profile = rng.random(n) < 0.04
    style[off_profile] = rng.integers(0, len(STYLES), int(off_profile.sum()))
    # Older clients use the phone, the counter and the branch terminals more.
    channel = _draw(rng, np.where((age >= 60)[:, None], _CHANNEL_MIX_OLDER, _CHANNEL_MIX_YOUNGER))

    manager = np.full(n, -1, dtype=np.int64)
    # About 8% of small retail accounts are self-directed, with no account manager.
    has_manager = ~((assets < 50_000) & (rng.random(n) < 0.16))
    for b, managers in enumerate(managers_by_branch):
        members = np.flatnonzero((branch == b) & has_manager)
        if len(managers):
            manager[members] = managers[rng.integers(0, len(managers), len(members))]

    # Compliance flags. A rejected verification or a confirmed sanctions match restricts
    # the account, and trading stops some time before the as-of date.
    pep = np.zeros(n, dtype=bool)
    pep[_exact(rng, np.flatnonzero(~institution), 0.003, 3)] = True
    sanctions = np.where(rng.random(n) < 0.02, 0, 1)
    sanctions[_exact(rng, np.flatnonzero(sanctions == 1), 0.004, 2)] = 2
    sanctions[_exact(rng, np.flatnonzero(sanctions == 1), 0.0003, 1)] = 3
    aml_risk = rng.choice(3, size=n, p=[0.78, 0.18, 0.04])
    aml_risk[institution] = np.maximum(aml_risk[institution], 1)
    aml_risk[pep | (sanctions >= 2)] = 2
    verification = rng.choice(3, size=n, p=[0.025, 0.97, 0.005])
    verification[_exact(rng, np.flatnonzero(verification == 1), 0.0, 1)] = 2
    restricted = (closed < 0) & ((verification == 2) | (sanctions == 3))
    restricted_idx = np.flatnonzero(restricted)
    stop_restricted = as_of - 10 - (rng.random(len(restricted_idx)) * 170).astype(np.int64)
    active_until[restricted_idx] = np.minimum(active_until[restricted_idx], stop_restricted)
    return Population(
        ids=first_id + np.arange(n, dtype=np.int64),
        institution=institution,
        branch=branch,
        manager=manager,
        opened=opened,
        closed=closed,
        restricted=restricted,
        birthday=birthday,
        archetype=archetype,
        active_until=active_until,
        fade_start=fade_start,
        tiny_balance=tiny_balance,
        rate=rate,
        ticket=ticket,
        commission_rate=commission_rate,
        assets=assets,
        cash_share=cash_share,
        beta=beta,
        deposit_rate=deposit_rate,
        withdrawal_rate=withdrawal_rate,
        style=style.astype(np.int8),
        channel=channel.astype(np.int8),
        risk_level=risk_level.astype(np.int16),
        pep=pep,
        sanctions=sanctions.astype(np.int8),
        aml_risk=aml_risk.astype(np.int8),
        verification=verification.astype(np.int8),
    )


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of `probabilities` (rows sum to 1)."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative[:, -1] = 1.0
    u = rng.random(len(probabilities))[:, None]
    return (u > cumulative).sum(axis=1)
