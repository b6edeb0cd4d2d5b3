"""The ledger of the demo book, one month slice at a time: trades, cash flows, snapshots.

Everything is vectorised over the clients of the book: a slice draws each client's
trade count (Poisson around its rate, the market's mood and its archetype), repeats the
client index that many times and draws the trades' day, time, instrument, size, side
and channel as arrays. Trades come out sorted by execution time, so writing slice after
slice stores the ledger in time order.

Amounts are exact: price in micro-yuan times quantity, rounded to the cent; commission
is the client's rate on the amount (minimum 5 CNY on secondary-market stock trades, none
on IPO subscriptions, as brokers charge).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from clients.demo import population as pop_mod
from clients.demo.calendar import SESSION_SECONDS, Calendar, Slice
from clients.demo.population import Population
from clients.demo.reference import Universe
from clients.demo.writers import Nullable

TRADING_DAYS_A_YEAR = 245
MIN_STOCK_COMMISSION_CENTS = 500

# Instrument groups a trading style draws from.
GROUPS = (
    "blue",
    "main",
    "chinext",
    "star",
    "bse",
    "st",
    "ipo",
    "gov_bond",
    "corp_bond",
    "convertible",
    "equity_etf",
    "money_etf",
    "lof",
    "repo",
    "futures",
    "options",
)
_STYLE_GROUP_WEIGHTS = {
    "blue_chip": {"blue": 45, "main": 20, "equity_etf": 15, "ipo": 5, "convertible": 5, "gov_bond": 5, "lof": 5},
    "growth": {"chinext": 30, "star": 25, "main": 20, "blue": 10, "equity_etf": 7, "ipo": 8},
    "small_cap": {"main": 42, "chinext": 18, "st": 12, "bse": 8, "star": 10, "ipo": 6, "convertible": 4},
    "conservative": {"gov_bond": 18, "corp_bond": 17, "money_etf": 25, "repo": 22, "lof": 10, "blue": 5, "ipo": 3},
    "fund": {"equity_etf": 40, "lof": 25, "money_etf": 12, "blue": 10, "main": 8, "repo": 5},
    "futures": {"futures": 72, "options": 8, "equity_etf": 10, "main": 10},
    "options": {"options": 50, "futures": 20, "equity_etf": 20, "blue": 10},
    "diversified": {
        "blue": 20,
        "main": 22,
        "chinext": 10,
        "star": 5,
        "equity_etf": 10,
        "convertible": 10,
        "ipo": 5,
        "lof": 5,
        "gov_bond": 5,
        "repo": 4,
        "money_etf": 4,
    },
}
# Trade size relative to the client's usual ticket, by asset class.
_SIZE_FACTOR = {"stock": 1.0, "bond": 1.0, "fund": 1.0, "repo": 1.5, "futures": 2.5, "option": 0.15, "warrant": 0.3}
_CHANNEL_MIX = np.array([0.70, 0.15, 0.05, 0.04, 0.03, 0.03])
SIDES = np.array([b"buy", b"sell"])
_EPOCH = dt.date(1970, 1, 1)
CHANNEL_BYTES = np.array([c.encode() for c in pop_mod.CHANNELS])


def _groups(universe: Universe) -> np.ndarray:
    """Group index (into GROUPS) of every instrument."""
    ac, board = universe.asset_class, universe.board
    stock_secondary = (ac == "stock") & (universe.market == "secondary")
    conditions = {
        "blue": stock_secondary & universe.is_blue_chip,
        "st": stock_secondary & universe.is_st,
        "main": stock_secondary & (board == "Main board") & ~universe.is_blue_chip & ~universe.is_st,
        "chinext": stock_secondary & (board == "ChiNext") & ~universe.is_blue_chip,
        "star": stock_secondary & (board == "STAR") & ~universe.is_blue_chip,
        "bse": stock_secondary & (board == "BSE"),
        "ipo": universe.market == "primary",
        "gov_bond": board == "Government bond",
        "corp_bond": board == "Corporate bond",
        "convertible": board == "Convertible bond",
        "equity_etf": (ac == "fund") & (board == "ETF") & (universe.risk_level > 1),
        "money_etf": (ac == "fund") & (board == "ETF") & (universe.risk_level == 1),
        "lof": board == "LOF",
        "repo": ac == "repo",
        "futures": ac == "futures",
        "options": ac == "option",
    }
    group = np.full(len(universe), -1)
    for index, name in enumerate(GROUPS):
        group[conditions[name] & (group < 0)] = index
    if (group < 0).any():
        raise ValueError(f"instruments without a group: {universe.symbol[group < 0]}")
    return group


@dataclass(frozen=True)
class Market:
    """The instruments' prices over the history and what each trading style buys."""

    universe: Universe
    style_cdf: np.ndarray  # styles x instruments
    prices: np.ndarray  # instruments x trading days, CNY
    activity: np.ndarray  # per slice: market-wide trading mood (mean ~1)
    returns: np.ndarray  # per slice: equity market return
    is_primary: np.ndarray
    is_stock: np.ndarray
    is_repo: np.ndarray
    size_factor: np.ndarray


def build_market(rng: np.random.Generator, universe: Universe, calendar: Calendar) -> Market:
    group = _groups(universe)
    probabilities = np.zeros((len(pop_mod.STYLES), len(universe)))
    for s, style in enumerate(pop_mod.STYLES):
        for name, weight in _STYLE_GROUP_WEIGHTS[style].items():
            members = group == GROUPS.index(name)
            probabilities[s, members] = weight * universe.popularity[members] / universe.popularity[members].sum()
    cdf = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0

    days = max(len(calendar.days), 1)
    market_shock = rng.normal(0.0003, 1.0, days)
    idiosyncratic = rng.normal(0.0, 1.0, (len(universe), days))
    equity_like = np.isin(universe.asset_class, ["stock", "fund", "option", "futures"]) | (
        universe.board == "Convertible bond"
    )
    loading = np.where(equity_like, 0.6, 0.1)[:, None]
    steps = universe.daily_vol[:, None] * (loading * market_shock[None, :] + 0.8 * idiosyncratic)
    steps[:, 0] = 0.0
    prices = universe.price[:, None] * np.exp(np.cumsum(steps, axis=1))
    prices = np.maximum(prices, universe.tick[:, None] * 5)

    slices = calendar.slices
    mood = np.zeros(len(slices))
    returns = np.zeros(len(slices))
    level = 0.0
    for index, part in enumerate(slices):
        level = 0.6 * level + rng.normal(0.0, 0.18)
        window = market_shock[part.first : max(part.stop, part.first)]
        returns[index] = 0.013 * window.sum() if len(window) else 0.0
        mood[index] = np.exp(level + 2.0 * returns[index])
    mood /= mood.mean() if len(mood) else 1.0
    return Market(
        universe=universe,
        style_cdf=cdf,
        prices=prices,
        activity=mood,
        returns=returns,
        is_primary=universe.market == "primary",
        is_stock=universe.asset_class == "stock",
        is_repo=universe.asset_class == "repo",
        size_factor=np.array([_SIZE_FACTOR[a] for a in universe.asset_class]),
    )


@dataclass
class LedgerState:
    """What carries from one slice to the next."""

    assets: np.ndarray  # each client's total assets now, CNY
    next_trade_id: int
    next_flow_id: int
    next_snapshot_id: int


def initial_state(population: Population, calendar: Calendar, *, first_ids: dict[str, int]) -> LedgerState:
    start = (calendar.start - _EPOCH).days
    assets = np.where(population.opened < start, population.assets, 0.0)
    assets[(population.closed >= 0) & (population.closed < start)] = 0.0
    return LedgerState(assets, first_ids["trade"], first_ids["flow"], first_ids["snapshot"])


@dataclass(frozen=True)
class SliceRows:
    trades: dict
    flows: dict
    snapshots: dict


def _first_index(calendar: Calendar, day_numbers: np.ndarray) -> np.ndarray:
    return calendar.index_of(np.minimum(day_numbers, pop_mod.NEVER))


def slice_rows(
    rng: np.random.Generator,
    *,
    population: Population,
    market: Market,
    calendar: Calendar,
    index: int,
    state: LedgerState,
    instrument_ids: np.ndarray,
) -> SliceRows:
    part = calendar.slices[index]
    opened_at = _first_index(calendar, population.opened)
    closed_at = np.where(population.closed >= 0, _first_index(calendar, population.closed), len(calendar.days))
    trades = _trades(rng, population, market, calendar, part, index, state, opened_at, closed_at, instrument_ids)
    flows, net = _flows(rng, population, calendar, part, state, opened_at, closed_at)
    snapshots = _snapshots(rng, population, market, part, index, state, net)
    return SliceRows(trades, flows, snapshots)


def _fade(population: Population, day: np.ndarray) -> np.ndarray:
    """Activity multiplier of fading clients on `day` (1 for everyone else)."""
    start, stop = population.fade_start, population.active_until
    fading = population.archetype == pop_mod.FADING
    progress = np.clip((day - start) / np.maximum(stop - start, 1), 0.0, 1.0)
    return np.where(fading, 1.0 - 0.85 * progress, 1.0)


def _trades(
    rng: np.random.Generator,
    population: Population,
    market: Market,
    calendar: Calendar,
    part: Slice,
    index: int,
    state: LedgerState,
    opened_at: np.ndarray,
    closed_at: np.ndarray,
    instrument_ids: np.ndarray,
) -> dict:
    day_numbers = calendar.day_numbers
    lo = np.maximum(part.first, opened_at)
    hi = np.minimum.reduce(
        [np.full(len(population), part.stop), closed_at, _first_index(calendar, population.active_until)]
    )
    open_days = np.maximum(hi - lo, 0)
    middle = day_numbers[np.clip((lo + hi) // 2, 0, max(len(day_numbers) - 1, 0))] if len(day_numbers) else lo
    fade = _fade(population, middle)
    noise = rng.gamma(2.0, 0.5, len(population))
    expected = population.rate / TRADING_DAYS_A_YEAR * open_days * market.activity[index] * fade * noise
    counts = rng.poisson(expected)
    client = np.repeat(np.arange(len(population)), counts)
    total = len(client)

    day = lo[client] + (rng.random(total) * open_days[client]).astype(np.int64)
    executed_us = calendar.midnight_us[day] + calendar.session_time_us(rng.random(total) * SESSION_SECONDS)

    style = population.style[client]
    u = rng.random(total)
    instrument = np.empty(total, dtype=np.int64)
    for s in range(len(pop_mod.STYLES)):
        members = style == s
        instrument[members] = np.searchsorted(market.style_cdf[s], u[members], side="right")
    instrument = np.minimum(instrument, len(market.universe) - 1)

    universe = market.universe
    target = population.ticket[client] * np.exp(rng.normal(0.0, 0.6, total)) * fade[client]
    target *= market.size_factor[instrument]
    # Someone with a 10,000 yuan ticket does not buy 155,000 yuan lots: redraw once.
    lot_value = market.prices[instrument, day] * universe.lot[instrument]
    too_big = lot_value > 3 * target
    if too_big.any():
        redraw = np.empty(int(too_big.sum()), dtype=np.int64)
        u2 = rng.random(len(redraw))
        for s in range(len(pop_mod.STYLES)):
            members = style[too_big] == s
            redraw[members] = np.searchsorted(market.style_cdf[s], u2[members], side="right")
        instrument[too_big] = np.minimum(redraw, len(universe) - 1)

    tick = universe.tick[instrument]
    price = market.prices[instrument, day] * np.exp(rng.normal(0.0, 0.004, total))
    primary = market.is_primary[instrument]
    price = np.where(primary, universe.price[instrument], price)
    price = np.maximum(np.round(price / tick) * tick, tick)
    price_micro = np.round(price * 1_000_000).astype(np.int64)
    lot = universe.lot[instrument]
    lots = np.clip(np.round(target / (price * lot)), 1, 1_000_000).astype(np.int64)
    lots = np.where(primary, rng.integers(1, 5, total), lots)
    quantity = lots * lot
    amount_cents = (quantity * price_micro + 5_000) // 10_000

    rate = population.commission_rate[client]
    commission = np.round(amount_cents * rate).astype(np.int64)
    secondary_stock = market.is_stock[instrument] & ~primary
    commission = np.where(secondary_stock, np.maximum(commission, MIN_STOCK_COMMISSION_CENTS), commission)
    commission = np.where(primary, 0, commission)

    fading_now = fade[client] < 1.0
    sell = (rng.random(total) < np.where(fading_now, 0.75, 0.48)) & ~primary
    pnl_mean = np.where(fading_now, -0.05, 0.01)
    pnl = np.round(amount_cents * rng.normal(pnl_mean, 0.09, total)).astype(np.int64)
    pnl_unknown = ~sell | market.is_repo[instrument]

    preferred = rng.random(total) < 0.85
    channel = np.where(preferred, population.channel[client], _draw_from(rng, _CHANNEL_MIX, total))

    order = np.argsort(executed_us, kind="stable")
    ids = state.next_trade_id + np.arange(total, dtype=np.int64)
    state.next_trade_id += total
    executed = executed_us[order]
    return {
        "id": ids,
        "trade_id": fixed_code(b"DT", ids, 12),
        "client_id": population.ids[client[order]],
        "executed_at": executed.astype("datetime64[us]"),
        "instrument_id": instrument_ids[instrument[order]],
        "side": SIDES[sell[order].astype(np.int64)],
        "quantity": quantity[order] * 10_000,
        "price": price_micro[order],
        "amount": amount_cents[order],
        "commission": commission[order],
        "channel": CHANNEL_BYTES[channel[order]],
        "realized_pnl": _nullable(pnl[order], pnl_unknown[order]),
        "reverses_id": _nullable(np.zeros(total, dtype=np.int64), np.ones(total, dtype=bool)),
        "created_at": (executed + rng.integers(1_000_000, 300_000_000, total)).astype("datetime64[us]"),
    }


def _flows(
    rng: np.random.Generator,
    population: Population,
    calendar: Calendar,
    part: Slice,
    state: LedgerState,
    opened_at: np.ndarray,
    closed_at: np.ndarray,
) -> tuple[dict, np.ndarray]:
    """Deposits and withdrawals of the slice, and each client's net flow."""
    n = len(population)
    day_numbers = calendar.day_numbers
    lo = np.maximum(part.first, opened_at)
    hi = np.minimum(part.stop, closed_at)
    days = np.maximum(hi - lo, 0)
    middle = day_numbers[np.clip((lo + hi) // 2, 0, max(len(day_numbers) - 1, 0))] if len(day_numbers) else lo
    idle = middle >= population.active_until
    fading = (population.archetype == pop_mod.FADING) & (middle >= population.fade_start)
    deposit_rate = population.deposit_rate * np.where(idle, 0.03, 1.0) * np.where(fading, 0.05, 1.0)
    withdrawal_rate = population.withdrawal_rate * np.where(idle, 0.05, 1.0)
    withdrawal_rate = np.where(fading, 1.2, withdrawal_rate)
    deposit_rate[population.tiny_balance] = 0.0
    withdrawal_rate[population.tiny_balance] = 0.0
    per_day = days / 21.0

    deposits = rng.poisson(deposit_rate * per_day)
    withdrawals = rng.poisson(withdrawal_rate * per_day)
    opening = (opened_at >= part.first) & (opened_at < part.stop) & (opened_at < closed_at)
    opening &= population.assets >= 100

    reference = np.maximum(np.maximum(state.assets, population.assets * 0.3), 10_000)
    dep_client = np.repeat(np.arange(n), deposits)
    dep_amount = np.maximum(
        np.round(reference[dep_client] * np.exp(rng.normal(np.log(0.12), 0.8, len(dep_client))), -2), 100
    )
    open_client = np.flatnonzero(opening)
    dep_client = np.concatenate([open_client, dep_client])
    dep_amount = np.concatenate([population.assets[open_client], dep_amount])
    dep_day = np.concatenate(
        [
            opened_at[open_client],
            lo[dep_client[len(open_client) :]]
            + (rng.random(len(dep_client) - len(open_client)) * days[dep_client[len(open_client) :]]).astype(np.int64),
        ]
    )
    deposited = np.bincount(dep_client, weights=dep_amount, minlength=n)

    available = state.assets + deposited
    wd_client = np.repeat(np.arange(n), withdrawals)
    share = np.where(fading[wd_client], rng.uniform(0.3, 0.7, len(wd_client)), rng.beta(1.3, 6.0, len(wd_client)))
    wd_amount = np.round(available[wd_client] * share, 2)
    wanted = np.bincount(wd_client, weights=wd_amount, minlength=n)
    scale = np.where(wanted > 0.95 * available, 0.95 * available / np.maximum(wanted, 1e-9), 1.0)
    wd_amount = np.floor(wd_amount * scale[wd_client] * 100) / 100
    wd_day = lo[wd_client] + (rng.random(len(wd_client)) * days[wd_client]).astype(np.int64)

    # Closing: whatever is left goes out on the closing day.
    opens_on, snapshot_on = (part.opens_on - _EPOCH).days, (part.snapshot_on - _EPOCH).days
    closing = (population.closed >= opens_on) & (population.closed <= snapshot_on) & (part.stop > part.first)
    closing_client = np.flatnonzero(closing)
    left = available[closing_client] - np.bincount(wd_client, weights=wd_amount, minlength=n)[closing_client]
    wd_client = np.concatenate([wd_client, closing_client])
    wd_amount = np.concatenate([wd_amount, np.floor(np.maximum(left, 0) * 100) / 100])
    wd_day = np.concatenate([wd_day, np.clip(closed_at[closing_client], part.first, part.stop - 1)])

    client = np.concatenate([dep_client, wd_client])
    amount_cents = np.round(np.concatenate([dep_amount, wd_amount]) * 100).astype(np.int64)
    kind = np.concatenate([np.zeros(len(dep_client), dtype=np.int64), np.ones(len(wd_client), dtype=np.int64)])
    day = np.concatenate([dep_day, wd_day])
    keep = (amount_cents >= 100) & (day < max(part.stop, part.first + 1)) & (day < len(calendar.days))
    client, amount_cents, kind, day = client[keep], amount_cents[keep], kind[keep], day[keep]
    # Bank transfers (银证转账) run from 09:00 to 16:00 on trading days.
    occurred = calendar.midnight_us[day] + ((9 * 3600 + rng.random(len(day)) * 7 * 3600) * 1_000_000).astype(np.int64)
    order = np.argsort(occurred, kind="stable")
    net = np.bincount(client, weights=np.where(kind == 0, amount_cents, -amount_cents) / 100, minlength=n)
    ids = state.next_flow_id + np.arange(len(client), dtype=np.int64)
    state.next_flow_id += len(client)
    occurred = occurred[order]
    frame = {
        "id": ids,
        "flow_id": fixed_code(b"DF", ids, 12),
        "client_id": population.ids[client[order]],
        "kind": np.array([b"deposit", b"withdrawal"])[kind[order]],
        "amount": amount_cents[order],
        "occurred_at": occurred.astype("datetime64[us]"),
        "reverses_id": _nullable(np.zeros(len(ids), dtype=np.int64), np.ones(len(ids), dtype=bool)),
        "created_at": (occurred + 60_000_000).astype("datetime64[us]"),
    }
    return frame, net


def _snapshots(
    rng: np.random.Generator,
    population: Population,
    market: Market,
    part: Slice,
    index: int,
    state: LedgerState,
    net: np.ndarray,
) -> dict:
    """Assets at the close of the slice's snapshot day, for the clients open that day."""
    n = len(population)
    day = (part.snapshot_on - _EPOCH).days
    invested = 1.0 - population.cash_share
    fading = (population.archetype == pop_mod.FADING) & (day >= population.fade_start)
    invested = np.where(fading, 0.15, invested)
    invested = np.where(population.tiny_balance, 0.0, invested)
    growth = 1.0 + invested * (population.beta * market.returns[index] + rng.normal(0.0, 0.04, n))
    assets = np.maximum((state.assets + net) * np.maximum(growth, 0.2), 0.0)
    closed = (population.closed >= 0) & (population.closed <= day)
    assets[closed] = 0.0
    state.assets = assets
    open_now = (population.opened <= day) & ~closed
    who = np.flatnonzero(open_now)
    total_cents = np.round(assets[who] * 100).astype(np.int64)
    cash_cents = np.round(total_cents * (1.0 - invested[who])).astype(np.int64)
    ids = state.next_snapshot_id + np.arange(len(who), dtype=np.int64)
    state.next_snapshot_id += len(who)
    return {
        "id": ids,
        "client_id": population.ids[who],
        "as_of": np.full(len(who), np.datetime64(part.snapshot_on, "D")),
        "cash": cash_cents,
        "market_value": total_cents - cash_cents,
    }


def fixed_code(prefix: bytes, numbers: np.ndarray, width: int) -> np.ndarray:
    """`prefix` + zero-padded `numbers` as an ``S`` array: (b"DT", 42, 6) -> b"DT000042"."""
    numbers = np.asarray(numbers, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((numbers[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (len(numbers), len(prefix)))
    matrix = np.ascontiguousarray(np.hstack([head, digits]))
    return matrix.view(f"S{len(prefix) + width}").ravel()


def _nullable(values: np.ndarray, is_null: np.ndarray) -> Nullable:
    return Nullable(values, is_null)


def _draw_from(rng: np.random.Generator, probabilities: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(probabilities), rng.random(size), side="right"), len(probabilities) - 1)
