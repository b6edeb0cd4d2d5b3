"""A churn score's reasons and signals as typed columns of ChurnScore, and back as the dicts the
API, the pages and the admin show.

A score stores
- each signal's strength (0-1, 0: no signal) in a column of its own, `signal_<name>`;
- its top reasons, strongest first, in REASON_SLOTS slots: `reason_<k>` (the signal, as its
  number in CODES, 0 for an empty slot: like the tier, a small integer with choices) and
  `reason_<k>_points` (its share of the risk);
- the figures behind the reasons (FACT_FIELDS), measured for every client whether or not they
  made a reason: days since the last trade, the share of assets moved out, the losses, the tier
  downgrade, the open complaints, the survey scores ... (NULL: not measured).

A reason as a dict is {"code", "points", "facts"}; its facts are the figures its code speaks of
(FACTS), e.g. "outflow": {"share", "window", "amount"}.

Typed columns instead of two JSON documents per score: on the 1M-client book, COPYing a night's
scores took PostgreSQL 6.1 s with the JSON (jsonb parses and rebuilds each document) against
1.0 s without it, and building the JSON text in Python ~0.23 s per 50,000 clients. The figures
are also queryable now (e.g. clients who moved out more than half of their assets).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from retention.conf import REASONS_STORED, SIGNALS

REASON_SLOTS = REASONS_STORED

SIGNAL_FIELDS = {name: f"signal_{name}" for name in SIGNALS}
# A reason slot holds its signal's number (0: empty). Numbers, not the names: a varying-length
# text per slot multiplied the row layouts of the binary COPY (reason codes of 5 to 10 letters in
# three slots) past what it assembles cheaply.
CODES = {name: number for number, name in enumerate(SIGNALS, start=1)}
NAMES = {number: name for name, number in CODES.items()}
CODE_CHOICES = [(0, "-"), *((number, name) for name, number in CODES.items())]
REASON_FIELDS = [(f"reason_{k}", f"reason_{k}_points") for k in range(1, REASON_SLOTS + 1)]

# The facts of each reason code: (key in the reason's facts, ChurnScore field, kind). Kinds:
# "int"; a number of digits (a float rounded to them); "date" (an ISO date in the facts);
# "money" (a Decimal field, a float in the facts).
FACTS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "model": (("p_no_trade", "p_no_trade", 4), ("p_alive", "p_alive", 4), ("window", "window_days", "int")),
    "dormant": (("days", "days_since_last_trade", "int"),),
    "overdue": (("days", "days_since_last_trade", "int"), ("gap", "typical_gap_days", 1)),
    "decline": (
        ("recent", "recent_trading_days", "int"),
        ("window", "window_days", "int"),
        ("expected", "baseline_trading_days", 1),
    ),
    "outflow": (
        ("share", "outflow_share", 4),
        ("window", "outflow_window_days", "int"),
        ("amount", "outflow_amount", "money"),
    ),
    "complaints": (("count", "open_complaints", "int"),),
    "detractor": (("score", "nps_score", "int"),),
    "low_csat": (("score", "csat_score", "int"),),
    "losses": (
        ("amount", "loss_amount", "money"),
        ("closes", "losing_closes", "int"),
        ("window", "window_days", "int"),
        ("share", "loss_share", 4),
    ),
    "downgrade": (("from", "downgrade_from", "int"), ("to", "downgrade_to", "int"), ("on", "downgrade_on", "date")),
}

# Every fact field (p_alive is a column of the score already), in a stable order.
FACT_FIELDS = list(dict.fromkeys(field for layout in FACTS.values() for _, field, _ in layout if field != "p_alive"))


def _fact(value: Any, kind: Any) -> Any:
    if value is None or value != value:  # NULL, NaN or NaT: not measured
        return None
    if kind == "int":
        return int(value)
    if kind == "date":
        if isinstance(value, dt.datetime):  # a frame's datetime64 (pandas Timestamp)
            value = value.date()
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind == "money":
        return float(value)
    return round(float(value), kind)


def reasons_of(get: Callable[[str], Any]) -> list[dict]:
    """The stored reasons as dicts, strongest first; `get(field)` reads a ChurnScore field."""
    reasons = []
    for code_field, points_field in REASON_FIELDS:
        code = NAMES.get(int(get(code_field) or 0))
        if code is None:
            continue
        facts = {key: _fact(get(field), kind) for key, field, kind in FACTS.get(code, ())}
        reasons.append({"code": code, "points": int(get(points_field) or 0), "facts": facts})
    return reasons


def signals_of(get: Callable[[str], Any]) -> dict[str, float]:
    """{signal: strength} of the signals present (strength above 0)."""
    return {name: float(value) for name, field in SIGNAL_FIELDS.items() if (value := get(field) or 0.0) > 0}


def reason_fields(reasons: list[Mapping]) -> dict[str, Any]:
    """ChurnScore field values of `reasons` (dicts as reasons_of gives them): their slots and
    the facts they carry (a fact two reasons share, e.g. the window, is the same figure)."""
    if len(reasons) > REASON_SLOTS:
        raise ValueError(f"A churn score stores at most {REASON_SLOTS} reasons, not {len(reasons)}.")
    values: dict[str, Any] = {}
    for (code_field, points_field), reason in zip(REASON_FIELDS, [*reasons, *[None] * REASON_SLOTS], strict=False):
        values[code_field] = CODES[reason["code"]] if reason else 0
        values[points_field] = int(reason.get("points") or 0) if reason else 0
        if not reason:
            continue
        facts = reason.get("facts") or {}
        for key, field, kind in FACTS.get(reason["code"], ()):
            if key in facts and field != "p_alive":
                value = facts[key]
                values[field] = dt.date.fromisoformat(value) if kind == "date" and value is not None else value
    return values


def signal_fields(signals: Mapping[str, float]) -> dict[str, float]:
    """ChurnScore field values of {signal: strength} (absent signals: 0)."""
    unknown = set(signals) - set(SIGNAL_FIELDS)
    if unknown:
        raise ValueError(f"Unknown churn signals: {sorted(unknown)}; known: {list(SIGNAL_FIELDS)}.")
    return {field: float(signals.get(name, 0.0)) for name, field in SIGNAL_FIELDS.items()}
