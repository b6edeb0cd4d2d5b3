"""Pure pandas functions of segmentation: frames in, frames (or plain dicts) out.

No ORM, no settings, no request: the stages in segmentation/tiering.py and needs.py fetch the
aggregates, call these, and write the results. Money arrives as int64 cents, so comparisons
(ties!) are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

VIP, MAJOR, ORDINARY, SMALL = 1, 2, 3, 4
TIER_CODES = {VIP: "vip", MAJOR: "major", ORDINARY: "ordinary", SMALL: "small"}
NONE_CODE = "none"  # "not in the population" in migration matrices

UP, DOWN, SAME, NEW = "up", "down", "same", "new"


class CutoffError(ValueError):
    MESSAGE = "Tier cut-offs must be increasing percentages in (0, 100] for vip, major and ordinary; got {spec!r}."


def tier_cutoffs(spec: Mapping[str, object]) -> list[tuple[int, Fraction]]:
    """Cumulative cut-offs in percent, e.g. {"vip": 3, "major": 10, "ordinary": 20}, as
    (tier, share of the population as an exact fraction), best tier first."""
    try:
        shares = [Fraction(str(spec[code])) / 100 for code in ("vip", "major", "ordinary")]
    except (KeyError, ValueError, ZeroDivisionError):
        raise CutoffError(CutoffError.MESSAGE.format(spec=spec)) from None
    if not (0 < shares[0] < shares[1] < shares[2] <= 1):
        raise CutoffError(CutoffError.MESSAGE.format(spec=spec))
    return list(zip((VIP, MAJOR, ORDINARY), shares, strict=True))


def assign_tiers(values: pd.DataFrame, cutoffs: Sequence[tuple[int, Fraction]]) -> pd.DataFrame:
    """Tier every client of the population.

    `values`: one row per client in the population, columns client_id and value (int64 cents);
    any other columns are carried along. Returns those columns plus rank, percentile and tier,
    sorted by rank, then client_id.

    The rule: s = share of the population with a strictly higher value; the first cut-off
    with s < cut-off gives the tier (VIP if s < 3%, Major if s < 10%, Ordinary if s < 20%),
    otherwise Small; a value <= 0 is always Small. Equal values get the same s, so ties never
    straddle a boundary. rank = 1 + the number of clients strictly higher; percentile = 100 s.
    The comparison is done in integers (higher * denominator < numerator * n): no rounding.
    """
    n = len(values)
    out = values.reset_index(drop=True).astype({"client_id": "int64", "value": "int64"})
    if n == 0:
        return out.assign(
            rank=pd.Series(dtype="int64"), percentile=pd.Series(dtype="float64"), tier=pd.Series(dtype="int64")
        )
    value = out["value"].to_numpy()
    # Clients strictly higher than each: those right of its last equal in ascending order.
    higher = n - np.searchsorted(np.sort(value), value, side="right")
    tier = np.full(n, SMALL, dtype="int64")
    for code, share in reversed(cutoffs):  # widest first, so the best tier is set last
        tier[higher * share.denominator < share.numerator * n] = code
    tier[value <= 0] = SMALL
    out["rank"] = higher + 1
    out["percentile"] = higher * 100.0 / n
    out["tier"] = tier
    order = np.lexsort((out["client_id"].to_numpy(), higher))
    return out.take(order).reset_index(drop=True)


HISTORY_COLUMNS = ["client_id", "tier", "previous_tier", "value", "rank", "percentile"]


def tier_changes(current: pd.DataFrame, previous: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare this run's tiers with the previous run's.

    `current`: output of assign_tiers; `previous`: client_id, tier of the previous run (None
    when there is none). Returns (current + previous_tier + change, history): see tier_moves.
    Without a previous run every change is "new" and history is empty (the first run is
    itself the base snapshot).
    """
    if previous is None:
        out = current.copy()
        out["previous_tier"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["change"] = NEW
        return out, _empty(HISTORY_COLUMNS)
    prev = previous[["client_id", "tier"]].rename(columns={"tier": "previous_tier"})
    out = current.merge(prev, on="client_id", how="left")
    exits = prev.loc[~prev["client_id"].isin(out["client_id"])]
    return tier_moves(out, exits)


def tier_moves(current: pd.DataFrame, exits: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`current`: assign_tiers output with previous_tier (NA or 0: not in the previous run);
    `exits`: client_id, previous_tier of previous-run clients no longer in the population.

    Returns (current with previous_tier as Int64 and change: up / down / same / new, history)
    where history has one row per client whose tier changed, who entered the population or
    who left it (tier NA): client_id, tier, previous_tier, value, rank, percentile.
    """
    out = current.copy()
    previous = out["previous_tier"].astype("Int64")
    out["previous_tier"] = previous.mask(previous == 0)
    before = out["previous_tier"].fillna(0).to_numpy(dtype="int64")
    tier = out["tier"].to_numpy(dtype="int64")
    out["change"] = np.select([before == 0, tier < before, tier > before], [NEW, UP, DOWN], default=SAME)
    moved = out.loc[out["change"] != SAME, HISTORY_COLUMNS]
    left = pd.DataFrame(
        {
            "client_id": exits["client_id"].to_numpy(dtype="int64"),
            "tier": pd.array([pd.NA] * len(exits), dtype="Int64"),
            "previous_tier": exits["previous_tier"].to_numpy(dtype="int64"),
            "value": np.nan,
            "rank": np.nan,
            "percentile": np.nan,
        }
    )
    history = pd.concat([moved, left], ignore_index=True) if len(left) else moved
    history = history.astype({"tier": "Int64", "previous_tier": "Int64"})
    return out, history.sort_values("client_id").reset_index(drop=True)


def migration_from_moves(current: pd.DataFrame, exits: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The migration matrix from tier_moves' inputs: current (tier, previous_tier) and exits."""
    before = np.concatenate(
        [current["previous_tier"].fillna(0).to_numpy(dtype="int64"), exits["previous_tier"].to_numpy(dtype="int64")]
    )
    after = np.concatenate([current["tier"].to_numpy(dtype="int64"), np.zeros(len(exits), dtype="int64")])
    return _matrix(before, after)


def _matrix(before: np.ndarray, after: np.ndarray) -> dict[str, dict[str, int]]:
    """Tier codes 1..4, 0 for "none": one bincount over before * 5 + after."""
    codes = [*TIER_CODES.values(), NONE_CODE]
    counts = np.bincount(before * 5 + after, minlength=25).reshape(5, 5)
    index = {code: position for position, code in enumerate([NONE_CODE, *TIER_CODES.values()])}
    return {row: {column: int(counts[index[row], index[column]]) for column in codes} for row in codes}


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})


def apply_history(base: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Tiers on a later date from a full snapshot and the changes since.

    `base`: client_id, tier; `history`: as_of, client_id, tier (NA = left) for dates after
    the base, up to the wanted date. Returns client_id, tier.
    """
    if history.empty:
        return base[["client_id", "tier"]].reset_index(drop=True)
    last = history.sort_values(["as_of"], kind="stable").drop_duplicates("client_id", keep="last")
    kept = base.loc[~base["client_id"].isin(last["client_id"]), ["client_id", "tier"]]
    joined = last.loc[last["tier"].notna(), ["client_id", "tier"]]
    out = pd.concat([kept, joined], ignore_index=True)
    out["tier"] = out["tier"].astype("int64")
    return out.sort_values("client_id").reset_index(drop=True)


def migration_matrix(before: pd.DataFrame | None, after: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Clients by tier before (rows) and after (columns); "none" = not in that population.

    Both frames: client_id, tier. Every tier appears as a row and a column, so matrices of
    different dates line up.
    """
    prev = before if before is not None else pd.DataFrame({"client_id": [], "tier": []})
    merged = prev[["client_id", "tier"]].merge(
        after[["client_id", "tier"]], on="client_id", how="outer", suffixes=("_before", "_after")
    )
    return _matrix(
        merged["tier_before"].fillna(0).to_numpy(dtype="int64"), merged["tier_after"].fillna(0).to_numpy(dtype="int64")
    )


def pareto(frame: pd.DataFrame, *, top_share: Fraction = Fraction(1, 5)) -> tuple[list[dict], float | None]:
    """The Pareto staircase: per tier, its clients and commission.

    `frame`: client_id, tier, commission (int64 cents), one row per client in the population.
    Returns (steps best tier first: tier, clients, commission (cents), client_share,
    commission_share, cumulative shares), and the commission share of the top `top_share` of
    clients by commission (ties broken by client id; None when there is no commission).
    """
    n = len(frame)
    total = int(frame["commission"].sum()) if n else 0
    steps = []
    cumulative_clients = cumulative_commission = 0
    grouped = frame.groupby("tier")["commission"].agg(["size", "sum"]) if n else None
    for code, name in TIER_CODES.items():
        clients = int(grouped.loc[code, "size"]) if grouped is not None and code in grouped.index else 0
        commission = int(grouped.loc[code, "sum"]) if grouped is not None and code in grouped.index else 0
        cumulative_clients += clients
        cumulative_commission += commission
        steps.append(
            {
                "tier": name,
                "clients": clients,
                "commission_cents": commission,
                "client_share": clients / n if n else 0.0,
                "commission_share": commission / total if total else 0.0,
                "cumulative_client_share": cumulative_clients / n if n else 0.0,
                "cumulative_commission_share": cumulative_commission / total if total else 0.0,
            }
        )
    if not n or total <= 0:
        return steps, None
    top = math.ceil(top_share * n)
    ordered = frame.sort_values(["commission", "client_id"], ascending=[False, True], kind="stable")
    return steps, float(ordered["commission"].iloc[:top].sum() / total)


def reactivation_candidates(
    frame: pd.DataFrame, *, asset_top: Fraction = Fraction(1, 10), commission_bottom: Fraction = Fraction(1, 2)
) -> pd.DataFrame:
    """High assets, low activity.

    `frame`: client_id, assets, commission (int64 cents), one row per client in the population.
    A candidate has assets > 0 in the top decile (share with strictly more assets < 10%) and
    commission in the bottom half (share with strictly less commission < 50%; with ties the
    whole tie group is in or out). Returns client_id, assets, commission, assets_percentile,
    commission_percentile (percent strictly more assets / strictly less commission), by
    assets descending.
    """
    n = len(frame)
    columns = ["client_id", "assets", "commission", "assets_percentile", "commission_percentile"]
    if n == 0:
        return _empty(columns)
    assets = frame["assets"].astype("int64")
    commission = frame["commission"].astype("int64")
    more_assets = (assets.rank(method="min", ascending=False) - 1).astype("int64").to_numpy()
    less_commission = (commission.rank(method="min", ascending=True) - 1).astype("int64").to_numpy()
    top = (more_assets * asset_top.denominator < asset_top.numerator * n) & (assets.to_numpy() > 0)
    bottom = less_commission * commission_bottom.denominator < commission_bottom.numerator * n
    out = pd.DataFrame(
        {
            "client_id": frame["client_id"].astype("int64").to_numpy(),
            "assets": assets.to_numpy(),
            "commission": commission.to_numpy(),
            "assets_percentile": more_assets * 100.0 / n,
            "commission_percentile": less_commission * 100.0 / n,
        }
    )[top & bottom]
    return out.sort_values(["assets", "client_id"], ascending=[False, True]).reset_index(drop=True)


# --- Needs profiles --------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedsParams:
    window_days: int = 365
    min_trades: int = 3  # trades (and) ...
    min_days: int = 2  # ... distinct days before a category can be a preference
    swing_max_days: int = 20  # holding 0 days: day trade; 1..swing_max: swing; longer: long
    top_industries: int = 3


PRODUCT_DIMENSIONS = ("asset_class", "market", "cap", "quality", "price", "industry")
STYLES = ("day", "swing", "long")


def _product_long(trades: pd.DataFrame, instruments: pd.DataFrame) -> pd.DataFrame:
    """One row per (client, dimension, category, day) with trades and amount."""
    joined = trades.merge(instruments, on="instrument_id", how="left")
    stock = joined["asset_class"] == "stock"
    joined["quality"] = np.where(
        stock,
        np.where(
            joined["is_st"].fillna(False), "st", np.where(joined["is_blue_chip"].fillna(False), "blue_chip", "other")
        ),
        "",
    )
    joined["cap"] = np.where(stock, joined["cap_class"].fillna(""), "")
    parts = []
    for dimension in ("asset_class", "market", "cap", "quality", "industry"):
        part = joined[["client_id", "day", "trades", "amount"]].copy()
        part["dimension"] = dimension
        part["category"] = joined[dimension].fillna("").astype(str)
        parts.append(part[part["category"] != ""])
    high = joined[["client_id", "day"]].copy()
    high["trades"] = joined["high_price_trades"]
    high["amount"] = joined["high_price_amount"]
    high["dimension"] = "price"
    high["category"] = "high"
    low = joined[["client_id", "day"]].copy()
    low["trades"] = joined["trades"] - joined["high_price_trades"]
    low["amount"] = joined["amount"] - joined["high_price_amount"]
    low["dimension"] = "price"
    low["category"] = "low"
    parts.extend([high[high["trades"] != 0], low[low["trades"] != 0]])
    return pd.concat(parts, ignore_index=True)


def _holding(trades: pd.DataFrame, swing_max_days: int) -> pd.DataFrame:
    """Per client, the number of sell-days per holding style: the days between a sell and the
    latest buy of the same instrument on or before it (no buy in the window: held long)."""
    buys = trades.loc[(trades["side"] == "buy") & (trades["trades"] > 0), ["client_id", "instrument_id", "day"]]
    sells = trades.loc[(trades["side"] == "sell") & (trades["trades"] > 0), ["client_id", "instrument_id", "day"]]
    if sells.empty:
        return pd.DataFrame(columns=["client_id", *STYLES])
    buys = buys.drop_duplicates().rename(columns={"day": "buy_day"}).sort_values("buy_day")
    sells = sells.drop_duplicates().sort_values("day")
    matched = pd.merge_asof(
        sells, buys, left_on="day", right_on="buy_day", by=["client_id", "instrument_id"], direction="backward"
    )
    held = (matched["day"] - matched["buy_day"]).dt.days
    matched["style"] = np.where(
        held.isna(), "long", np.where(held <= 0, "day", np.where(held <= swing_max_days, "swing", "long"))
    )
    counts = matched.pivot_table(index="client_id", columns="style", values="day", aggfunc="size", fill_value=0)
    for style in STYLES:
        if style not in counts.columns:
            counts[style] = 0
    return counts[list(STYLES)].reset_index()


def needs_profiles(
    population: pd.Series,
    trades: pd.DataFrame,
    instruments: pd.DataFrame,
    channels: pd.DataFrame,
    assets: pd.DataFrame,
    params: NeedsParams,
) -> pd.DataFrame:
    """Needs profile per client of `population` (client ids).

    Inputs (money as float currency units):
    - trades: client_id, instrument_id, day (datetime64), side, trades (executions minus
      reversals), amount, high_price_trades, high_price_amount — one row per client,
      instrument, day and side in the window;
    - instruments: instrument_id, asset_class, market, cap_class, is_blue_chip, is_st, industry;
    - channels: client_id, channel, trades, amount over the window;
    - assets: client_id, avg_assets over the window.

    A category (an industry, "small cap", a channel...) becomes a preference only if the client
    traded it at least `min_trades` times on at least `min_days` distinct days: one-off trades
    describe the mix but do not define a preference. The holding style needs `min_trades`
    sell-days, else "unknown".
    """
    ids = pd.Series(population, dtype="int64").drop_duplicates().sort_values().to_numpy()
    base = pd.DataFrame({"client_id": ids})
    active = trades[trades["trades"] > 0]
    totals = trades.groupby("client_id").agg(trades=("trades", "sum"), amount=("amount", "sum"))
    days = active.groupby("client_id")["day"].nunique().rename("active_days")
    out = base.join(totals, on="client_id").join(days, on="client_id")
    out[["trades", "active_days"]] = out[["trades", "active_days"]].fillna(0).astype("int64")
    out["amount"] = out["amount"].fillna(0.0)
    out["trades_per_month"] = out["trades"] / (params.window_days / 30.4375)
    out["avg_ticket"] = np.where(out["trades"] > 0, out["amount"] / out["trades"].where(out["trades"] > 0, 1), np.nan)
    avg_assets = assets.set_index("client_id")["avg_assets"] if len(assets) else pd.Series(dtype="float64")
    out["turnover"] = out["client_id"].map(avg_assets)
    out["turnover"] = np.where(out["turnover"] > 0, out["amount"] / out["turnover"], np.nan)

    holding = _holding(trades, params.swing_max_days).set_index("client_id").reindex(ids, fill_value=0)
    counts = holding[list(STYLES)].to_numpy(dtype="int64")
    sells = counts.sum(axis=1)
    best = np.array(STYLES, dtype=object)[counts.argmax(axis=1)] if len(ids) else np.array([], dtype=object)
    styles = np.where(sells >= params.min_trades, best, "unknown").tolist()
    mixes = [
        {"day": round(day / total, 4), "swing": round(swing / total, 4), "long": round(long / total, 4)}
        if total
        else {}
        for (day, swing, long), total in zip(counts.tolist(), sells.tolist(), strict=True)
    ]
    out["holding_style"] = styles
    out["holding_mix"] = mixes

    out["channel_mix"], out["primary_channel"] = _channel_mix(ids, channels, params)
    out["product_mix"], out["preferences"], out["top_industries"] = _product_mix(ids, trades, instruments, params)
    return out


def _channel_mix(ids: np.ndarray, channels: pd.DataFrame, params: NeedsParams) -> tuple[list, list]:
    mixes: dict[int, dict] = {}
    primary: dict[int, str] = {}
    if len(channels):
        frame = channels[channels["trades"] > 0].copy()
        totals = frame.groupby("client_id")[["trades", "amount"]].transform("sum")
        frame["trade_share"] = frame["trades"] / totals["trades"]
        frame["amount_share"] = np.where(
            totals["amount"] != 0, frame["amount"] / totals["amount"].where(totals["amount"] != 0, 1), 0.0
        )
        frame = frame.sort_values(["client_id", "trades", "amount", "channel"], ascending=[True, False, False, True])
        columns = [frame[name].tolist() for name in ("client_id", "channel", "trades", "amount")]
        shares = [frame["trade_share"].round(4).tolist(), frame["amount_share"].round(4).tolist()]
        for client_id, channel, trades, amount, trade_share, amount_share in zip(*columns, *shares, strict=True):
            mixes.setdefault(client_id, {})[channel] = {
                "trades": int(trades),
                "amount": round(float(amount), 2),
                "trade_share": trade_share,
                "amount_share": amount_share,
            }
        per_client = frame.groupby("client_id")["trades"].sum()
        first = frame.drop_duplicates("client_id")
        enough = per_client.reindex(first["client_id"]).to_numpy() >= params.min_trades
        primary = dict(zip(first["client_id"][enough].tolist(), first["channel"][enough].tolist(), strict=True))
    return [mixes.get(client_id, {}) for client_id in ids], [primary.get(client_id, "") for client_id in ids]


def _product_mix(
    ids: np.ndarray, trades: pd.DataFrame, instruments: pd.DataFrame, params: NeedsParams
) -> tuple[list, list, list]:
    mixes: dict[int, dict] = {}
    preferences: dict[int, dict] = {}
    industries: dict[int, list] = {}
    if len(trades):
        long = _product_long(trades, instruments)
        positive_days = long[long["trades"] > 0].groupby(["client_id", "dimension", "category"])["day"].nunique()
        per = long.groupby(["client_id", "dimension", "category"]).agg(
            trades=("trades", "sum"), amount=("amount", "sum")
        )
        per["days"] = positive_days.reindex(per.index, fill_value=0)
        per = per.reset_index()
        dim_total = per.groupby(["client_id", "dimension"])["amount"].transform("sum")
        per["share"] = np.where(dim_total != 0, per["amount"] / dim_total.where(dim_total != 0, 1), 0.0)
        per["qualified"] = (per["trades"] >= params.min_trades) & (per["days"] >= params.min_days)
        per = per.sort_values(["client_id", "dimension", "amount", "category"], ascending=[True, True, False, True])
        rows = zip(
            per["client_id"].tolist(),
            per["dimension"].tolist(),
            per["category"].tolist(),
            per["share"].round(4).tolist(),
            per["qualified"].tolist(),
            strict=True,
        )
        for client_id, dimension, category, share, qualified in rows:
            mixes.setdefault(client_id, {}).setdefault(dimension, {})[category] = share
            if not qualified:
                continue
            if dimension == "industry":
                chosen = industries.setdefault(client_id, [])
                if len(chosen) < params.top_industries:
                    chosen.append(category)
            else:
                preferences.setdefault(client_id, {}).setdefault(dimension, category)
    return (
        [mixes.get(client_id, {}) for client_id in ids],
        [preferences.get(client_id, {}) for client_id in ids],
        [industries.get(client_id, []) for client_id in ids],
    )
