"""Build the demo book: reference data, users, clients and their ledger.

Deterministic: the same seed, size, months and as-of date on the same starting database
(a fresh one, or after --reset) give identical rows, ids included. Random streams are
derived from the seed per purpose (population, each chunk of client rows, each month of
the ledger), so the output does not depend on how the work is chunked in memory.

Memory stays bounded: the per-client state is a few numbers per client; client rows are
made and written per chunk of clients, the ledger per month (all clients at once, so the
trades reach the table in execution-time order, which later aggregations rely on).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, models, transaction
from django.db.models import Max
from tqdm import tqdm

from clients.demo import ledger, reference, rows, users
from clients.demo.calendar import build_calendar
from clients.demo.population import build_population
from clients.demo.report import Concentration, commission_concentration
from clients.demo.writers import bulk_writer
from clients.models import (
    AccountManager,
    AssetSnapshot,
    Branch,
    CashFlow,
    Client,
    ClientLogin,
    Instrument,
    Interaction,
    KYCProfile,
    RiskAssessment,
    Team,
    Trade,
)

CLIENT_CHUNK = 100_000
CLIENTS_PER_MANAGER = 330
MANAGERS_PER_TEAM = 6

# Every model of the demo book, in an order that inserts parents first.
DEMO_MODELS: tuple[type[models.Model], ...] = (
    Branch,
    Team,
    AccountManager,
    Instrument,
    Client,
    KYCProfile,
    RiskAssessment,
    Interaction,
    ClientLogin,
    Trade,
    CashFlow,
    AssetSnapshot,
)
_STREAM_CLIENT_ROWS = 1
_STREAM_LEDGER = 2
_STREAM_LOGINS = 3


@dataclass(frozen=True)
class Structure:
    """Branches -> teams -> account managers, sized to the book."""

    manager_branch: np.ndarray  # branch index of each manager
    manager_team: np.ndarray  # team index of each manager
    team_branch: np.ndarray  # branch index of each team
    team_names: list[str]


def plan_structure(clients: int) -> Structure:
    """About one account manager per 330 clients spread over the branches by size (at
    least one each, two in the head office), teams of up to six. Managers 0 and 1
    (alice and bob) are the first two of the head office's first team (tina's)."""
    weights = np.array([b.weight for b in reference.BRANCHES])
    total = max(len(weights) + 1, round(clients / CLIENTS_PER_MANAGER))
    exact = weights / weights.sum() * total
    per_branch = np.maximum(np.floor(exact).astype(int), 1)
    per_branch[0] = max(per_branch[0], 2)
    remainder = total - per_branch.sum()
    for b in np.argsort(-(exact - np.floor(exact)), kind="stable")[: max(remainder, 0)]:
        per_branch[b] += 1
    manager_branch, manager_team, team_branch, team_names = [], [], [], []
    for b, count in enumerate(per_branch.tolist()):
        teams = math.ceil(count / MANAGERS_PER_TEAM)
        for t in range(teams):
            team_branch.append(b)
            team_names.append(f"{reference.BRANCHES[b].district} {chr(ord('A') + t)}")
        first_team = len(team_branch) - teams
        for m in range(count):
            manager_branch.append(b)
            manager_team.append(first_team + m // MANAGERS_PER_TEAM)
    return Structure(np.array(manager_branch), np.array(manager_team), np.array(team_branch), team_names)


@dataclass
class BookSummary:
    counts: dict[str, int]
    concentration: Concentration
    seconds: float
    password: str
    api_token: str
    written: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1


def _upsert_reference(structure: Structure, user_ids: dict[str, int], universe: reference.Universe) -> dict:
    """Branches, teams, account managers and instruments, found by natural key or
    created with the next ids. Returns their database ids as arrays."""
    branch_ids = dict(Branch.objects.values_list("code", "id"))
    next_id = _next_id(Branch)
    new = []
    for spec in reference.BRANCHES:
        if spec.code not in branch_ids:
            new.append(Branch(id=next_id, code=spec.code, name=spec.name, city=spec.city))
            branch_ids[spec.code] = next_id
            next_id += 1
    Branch.objects.bulk_create(new)
    branch_array = np.array([branch_ids[b.code] for b in reference.BRANCHES], dtype=np.int64)

    team_ids = {(b, name): pk for pk, b, name in Team.objects.values_list("id", "branch_id", "name")}
    next_id = _next_id(Team)
    team_array = np.zeros(len(structure.team_names), dtype=np.int64)
    new = []
    for t, (b, name) in enumerate(zip(structure.team_branch.tolist(), structure.team_names, strict=True)):
        key = (int(branch_array[b]), name)
        lead = user_ids[users.team_lead_username(t)]
        if key in team_ids:
            Team.objects.filter(pk=team_ids[key]).update(lead_id=lead)
        else:
            new.append(Team(id=next_id, branch_id=key[0], name=name, lead_id=lead))
            team_ids[key] = next_id
            next_id += 1
        team_array[t] = team_ids[key]
    Team.objects.bulk_create(new)

    by_user = dict(AccountManager.objects.values_list("user_id", "id"))
    taken = set(AccountManager.objects.values_list("employee_no", flat=True))
    next_id = _next_id(AccountManager)
    manager_ids = np.zeros(len(structure.manager_team), dtype=np.int64)
    manager_user_ids = np.zeros(len(structure.manager_team), dtype=np.int64)
    new = []
    for m, t in enumerate(structure.manager_team.tolist()):
        user_id = user_ids[users.manager_username(m)]
        manager_user_ids[m] = user_id
        if user_id in by_user:
            AccountManager.objects.filter(pk=by_user[user_id]).update(team_id=team_array[t], is_active=True)
            manager_ids[m] = by_user[user_id]
            continue
        employee_no = f"E{m + 1:05d}" if f"E{m + 1:05d}" not in taken else f"E{next_id:07d}"
        new.append(AccountManager(id=next_id, user_id=user_id, employee_no=employee_no, team_id=team_array[t]))
        manager_ids[m] = next_id
        next_id += 1
    AccountManager.objects.bulk_create(new, batch_size=1000)

    symbol_ids = dict(Instrument.objects.filter(symbol__in=universe.symbol.tolist()).values_list("symbol", "id"))
    next_id = _next_id(Instrument)
    new = []
    for i, symbol in enumerate(universe.symbol.tolist()):
        if symbol in symbol_ids:
            continue
        new.append(
            Instrument(
                id=next_id,
                symbol=symbol,
                name=str(universe.name[i]),
                asset_class=str(universe.asset_class[i]),
                market=str(universe.market[i]),
                board=str(universe.board[i]),
                industry=str(universe.industry[i]),
                cap_class=str(universe.cap_class[i]),
                is_blue_chip=bool(universe.is_blue_chip[i]),
                is_st=bool(universe.is_st[i]),
                risk_level=int(universe.risk_level[i]),
            )
        )
        symbol_ids[symbol] = next_id
        next_id += 1
    Instrument.objects.bulk_create(new)
    return {
        "branch_ids": branch_array,
        "manager_ids": manager_ids,
        "manager_user_ids": manager_user_ids,
        "instrument_ids": np.array([symbol_ids[s] for s in universe.symbol.tolist()], dtype=np.int64),
    }


def _stream(seed: int, purpose: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, purpose, index])))


def seed_demo_book(
    *, clients: int, months: int, seed: int, as_of: dt.date, reset: bool, show_progress: bool | None = None
) -> BookSummary:
    """Write a demo book of `clients` clients with `months` months of ledger before `as_of`.

    With `reset`, the demo tables (and whatever references them) are emptied first.
    Runs in one transaction: a failure leaves the database as it was.
    """
    if clients < 1 or months < 1:
        raise ValueError("clients and months must be at least 1")
    started = time.monotonic()
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    password = users.demo_password()
    writer = bulk_writer(connection)
    calendar = build_calendar(as_of=as_of, months=months)
    structure = plan_structure(clients)
    universe = reference.build_universe()
    written: dict[str, int] = {}
    phases: dict[str, float] = {}
    mark = started

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = now - mark
        mark = now

    steps = math.ceil(clients / CLIENT_CHUNK) + len(calendar.slices)
    with transaction.atomic(), tqdm(total=steps, desc="seed_demo", unit="step", disable=not show_progress) as bar:
        if reset:
            writer.delete_all(list(DEMO_MODELS))
        user_ids = users.ensure_users(
            manager_count=len(structure.manager_team), team_count=len(structure.team_names), password=password
        )
        api_token = users.ensure_api_token()
        refs = _upsert_reference(structure, user_ids, universe)
        first_ids = {
            "client": _next_id(Client),
            "trade": _next_id(Trade),
            "flow": _next_id(CashFlow),
            "snapshot": _next_id(AssetSnapshot),
        }
        row_ids = rows.RowIds(
            _next_id(KYCProfile), _next_id(RiskAssessment), _next_id(Interaction), _next_id(ClientLogin)
        )
        rng = np.random.Generator(np.random.PCG64(seed))
        managers_by_branch = [np.flatnonzero(structure.manager_branch == b) for b in range(len(reference.BRANCHES))]
        population = build_population(
            rng, count=clients, first_id=first_ids["client"], calendar=calendar, managers_by_branch=managers_by_branch
        )
        market = ledger.build_market(rng, universe, calendar)
        book_refs = rows.BookRefs(refs["branch_ids"], refs["manager_ids"], refs["manager_user_ids"], as_of)
        phase("reset, users, reference data, population")

        def write(model: type[models.Model], frame: dict) -> None:
            count = writer.insert(model, frame)
            written[model.__name__] = written.get(model.__name__, 0) + count
            bar.set_postfix_str(f"{sum(written.values()):,} rows", refresh=False)

        # Reference tables are filled by now: the writer keeps their indexes and only
        # moves their id sequences past the ids assigned here.
        with writer.loading(list(DEMO_MODELS)):
            for chunk, start in enumerate(range(0, clients, CLIENT_CHUNK)):
                part = slice(start, min(start + CLIENT_CHUNK, clients))
                frames = rows.client_rows(
                    _stream(seed, _STREAM_CLIENT_ROWS, chunk), population, part, book_refs, row_ids
                )
                for model, frame in frames.items():
                    write(model, frame)
                # Its own stream: the other rows stay what they were before logins existed.
                write(
                    ClientLogin,
                    rows.login_rows(_stream(seed, _STREAM_LOGINS, chunk), population, part, book_refs, row_ids),
                )
                bar.update()
            phase("clients, KYC, risk assessments, interactions")
            state = ledger.initial_state(population, calendar, first_ids=first_ids)
            for index in range(len(calendar.slices)):
                month = ledger.slice_rows(
                    _stream(seed, _STREAM_LEDGER, index),
                    population=population,
                    market=market,
                    calendar=calendar,
                    index=index,
                    state=state,
                    instrument_ids=refs["instrument_ids"],
                )
                write(Trade, month.trades)
                write(CashFlow, month.flows)
                write(AssetSnapshot, month.snapshots)
                bar.update()
            phase("trades, cash flows, snapshots")
        phase("indexes, constraints, statistics")
    phase("commit")
    counts = {model.__name__: model.objects.count() for model in DEMO_MODELS}
    concentration = commission_concentration(as_of=as_of)
    phase("counting and measuring")
    return BookSummary(
        counts=counts,
        concentration=concentration,
        seconds=time.monotonic() - started,
        password=password,
        api_token=api_token,
        written=written,
        phases=phases,
    )
