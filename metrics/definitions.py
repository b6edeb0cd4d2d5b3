"""The metric catalogue: every metric's code, version, unit, parameters and formula in words.

Rules (see README, "Metrics: nightly KPI snapshots"):
- A (code, version) once stored never changes. Changing a formula or a parameter means adding
  a new version with a later `effective_from`; `definitions_sync` refuses anything else.
- A new version must take effect after every as-of date already stored for that code, so a
  stored snapshot is never recomputed with a different definition (no silent rewrite).
- Every metric of as-of date D reads only data dated on or before D.

Shared terms of version 1:
- D: the as-of date; days are exchange-calendar days (TIME_ZONE).
- period: the PERIOD_DAYS days ending on D, i.e. (S, D] with S = D - PERIOD_DAYS.
- open on a day X: opened_on <= X and (closed_on is empty or closed_on > X).
- population: clients open on D.
- dimension rows: overall; tier = the client's computed tier on D (segmentation TierResult /
  TierHistory; "none" for clients not in D's tier population); account manager and branch =
  the client's assignment at the end of D (clients.ClientAssignment, kept by database
  triggers; a client assigned before the history began counts with that assignment).
- activity segment (retention.selectors.activity_segments): active, potentially_active,
  dormant, closed. "Lost" = a client whose segment was active or potentially_active on S and
  is dormant or closed on D.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

PERIOD_DAYS = 30
VALUE_WINDOW_DAYS = 365
SURVEY_WINDOW_DAYS = 90
CAC_MONTHS = 12
REPUTATION_FACTOR = 0.10
ICEBERG_MULTIPLIER = 10
TOP_SHARE_PERCENT = 20
CSAT_SATISFIED_MIN = 4
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6

V1_FROM = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class Definition:
    code: str
    version: int
    name: str
    unit: str
    formula: str
    params: dict = field(default_factory=dict)
    effective_from: dt.date = V1_FROM


CATALOGUE: tuple[Definition, ...] = (
    Definition("clients", 1, "Clients", "count", "Number of clients open on D (the population).", {}),
    Definition(
        "churn_rate",
        1,
        "Churn rate",
        "percent",
        "100 x lost / clients at period start. Clients at period start: clients open on S whose activity segment "
        "on S is active or potentially_active. Lost: those of them whose segment on D is dormant or closed. "
        "Tier rows group the clients at period start by their tier on S (the start cohort). Needs activity segments.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "retention_rate",
        1,
        "Retention rate",
        "percent",
        "100 x (clients at end - new clients) / clients at start. Clients at start: open on S; clients at end: "
        "open on D; new clients: opened_on in (S, D]; so the numerator is the start clients still open on D. "
        "Counted on accounts (open / closed), not activity. Tier rows group the start clients by their tier on S.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "dormancy_rate",
        1,
        "Dormancy rate",
        "percent",
        "100 x clients whose activity segment on D is dormant / population. Needs activity segments.",
        {},
    ),
    Definition(
        "loss_rate",
        1,
        "Loss rate",
        "percent",
        "100 x clients of the population whose realised P&L summed over trades executed in the period is "
        "below zero / population. Trades without a realised P&L count as 0.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "cltv_simple",
        1,
        "CLTV (simple)",
        "currency",
        "Average trade value x average trade frequency x average retention duration, over the population: "
        "average trade value = commission / trades in the VALUE_WINDOW (365 days ending on D); "
        "average trade frequency = trades in the window / population (trades per client per year); "
        "average retention duration = mean account lifetime in years, (min(closed_on, D) - opened_on) / 365.25, "
        "over every client opened on or before D (closed ones included). Commission is the firm's value of a trade.",
        {"value_window_days": VALUE_WINDOW_DAYS},
    ),
    Definition(
        "cltv_model",
        1,
        "CLTV (model)",
        "currency",
        "Mean of the model CLV (retention.selectors.model_clv: BG/NBD x Gamma-Gamma fitted for D) over the "
        "population clients it scores. Left out when no model was fitted for D.",
        {},
    ),
    Definition(
        "csat",
        1,
        "CSAT",
        "percent",
        "100 x satisfied clients / surveyed clients. Surveyed: clients with a CSAT answer answered in the "
        "SURVEY_WINDOW (90 days ending on D), among the population; satisfied: their latest such answer is 4 or 5.",
        {"survey_window_days": SURVEY_WINDOW_DAYS, "satisfied_min": CSAT_SATISFIED_MIN},
    ),
    Definition(
        "nps",
        1,
        "NPS",
        "score",
        "Promoters % - detractors % over the clients with an NPS answer in the SURVEY_WINDOW (90 days ending "
        "on D) among the population, each client counted once by their latest answer: 9-10 promoter, 0-6 "
        "detractor. -100..100.",
        {
            "survey_window_days": SURVEY_WINDOW_DAYS,
            "promoter_min": NPS_PROMOTER_MIN,
            "detractor_max": NPS_DETRACTOR_MAX,
        },
    ),
    Definition(
        "complaint_rate",
        1,
        "Complaint rate",
        "percent",
        "100 x complaints of population clients opened in the period (opened_at in (S, D], exchange time) / "
        "population.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "first_response_hours",
        1,
        "First-response time",
        "hours",
        "Mean hours from opened_at to first_response_at over the complaints (of any client opened by D) whose "
        "first response was given in the period.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "resolution_hours",
        1,
        "Resolution time",
        "hours",
        "Mean hours from opened_at to resolved_at over the complaints (of any client opened by D) resolved in "
        "the period.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "trade_frequency",
        1,
        "Trading frequency",
        "per_client",
        "Trades executed in the period (executions minus reversals, from the daily activity rollup) / "
        "population: trades per client per 30 days. (No client login data is held, so login frequency is not "
        "measured.)",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "login_frequency",
        1,
        "Login frequency",
        "per_client",
        "Sign-ins in the period (the daily counts the trading platform exports, every channel, "
        "clients.ClientLogin) / population: sign-ins per client per 30 days. Measured where login data is "
        "provided: a date whose period holds no login row at all has no rows for this metric.",
        {"period_days": PERIOD_DAYS},
    ),
    Definition(
        "top20_commission_share",
        1,
        "Commission share of the top 20%",
        "percent",
        "100 x commission of the top ceil(20% x n) population clients of the row by commission over the "
        "VALUE_WINDOW (365 days ending on D) / commission of all n; ties broken by client id.",
        {"value_window_days": VALUE_WINDOW_DAYS, "top_percent": TOP_SHARE_PERCENT},
    ),
    Definition(
        "commission_share",
        1,
        "Commission share",
        "percent",
        "100 x the row's commission over the VALUE_WINDOW / the population's (overall: 100). By tier this is "
        "the per-tier share of the Pareto view.",
        {"value_window_days": VALUE_WINDOW_DAYS},
    ),
    Definition(
        "cac",
        1,
        "Client acquisition cost",
        "currency",
        "Marketing spend of the CAC_MONTHS (12) calendar months ending with the last month that ended on or "
        "before D / clients opened in those months. Overall: all spend; branch rows: that branch's own spend "
        "and new clients (firm-wide spend is not split).",
        {"months": CAC_MONTHS},
    ),
    Definition(
        "cltv_cac_ratio",
        1,
        "CLTV / CAC",
        "ratio",
        "cltv_simple / cac of the same row.",
        {},
    ),
    Definition(
        "cost_of_churn",
        1,
        "Cost of churn",
        "currency",
        "(1 + 10% reputation damage) x the commission over the VALUE_WINDOW (365 days ending on D) of the lost "
        "clients (see churn_rate; tier rows by the tier on S). Needs activity segments.",
        {"value_window_days": VALUE_WINDOW_DAYS, "reputation_factor": REPUTATION_FACTOR},
    ),
    Definition(
        "complaint_iceberg",
        1,
        "Unhappy clients (complaint iceberg)",
        "count",
        "10 x complaints of population clients opened in the period: only about 1 in 10 unhappy clients complains.",
        {"period_days": PERIOD_DAYS, "multiplier": ICEBERG_MULTIPLIER},
    ),
)

CODES = tuple(definition.code for definition in CATALOGUE)
