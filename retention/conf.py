"""Business settings of the scoring stages, read at call time with their defaults (README "Settings")."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNALS = (
    "model",
    "dormant",
    "overdue",
    "decline",
    "outflow",
    "complaints",
    "detractor",
    "low_csat",
    "losses",
    "downgrade",
)

# A churn score stores at most this many reasons (ChurnScore's reason slots, retention/reasons.py).
REASONS_STORED = 3


@dataclass(frozen=True)
class ActivityParams:
    active_days: int = 30
    dormant_days: int = 180
    recent_days: int = 90
    baseline_days: int = 365
    slowing_ratio: float = 0.5
    min_baseline_days: int = 3
    overdue_multiple: float = 3.0
    regulatory_years: int = 3
    regulatory_max_cash: float = 100.0

    def __post_init__(self) -> None:
        if not 0 < self.active_days < self.dormant_days:
            raise ImproperlyConfigured("ACTIVITY_ACTIVE_DAYS must be at least 1 and below ACTIVITY_DORMANT_DAYS.")
        if self.recent_days < 1 or self.baseline_days < 1 or self.regulatory_years < 1:
            raise ImproperlyConfigured("Activity windows and REGULATORY_DORMANT_YEARS must be at least 1.")
        if not 0 < self.slowing_ratio < 1:
            raise ImproperlyConfigured("ACTIVITY_SLOWING_RATIO must be between 0 and 1.")
        if self.overdue_multiple <= 1:
            raise ImproperlyConfigured("ACTIVITY_OVERDUE_MULTIPLE must be above 1.")


@dataclass(frozen=True)
class ChurnParams:
    weights: dict
    outflow_full_share: float = 0.5
    loss_full_share: float = 0.2
    loss_min_trades: int = 3
    reasons_kept: int = 3
    signal_min: float = 0.05
    clv_horizon_days: int = 365
    clv_annual_discount: float = 0.08
    simple_retention_years: float = 3.0

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise ImproperlyConfigured(f"CHURN_WEIGHTS has unknown signals {sorted(unknown)}; known: {list(SIGNALS)}.")
        for name, weight in self.weights.items():
            if not 0 <= float(weight) <= 1:
                raise ImproperlyConfigured(f"CHURN_WEIGHTS[{name!r}] must be between 0 and 1, not {weight!r}.")
        if self.outflow_full_share <= 0 or self.loss_full_share <= 0:
            raise ImproperlyConfigured("CHURN_OUTFLOW_FULL_SHARE and CHURN_LOSS_FULL_SHARE must be above 0.")
        if self.clv_horizon_days < 1:
            raise ImproperlyConfigured("CLV_HORIZON_DAYS must be at least 1.")
        if not 1 <= self.reasons_kept <= REASONS_STORED:
            raise ImproperlyConfigured(f"CHURN_REASONS_KEPT must be between 1 and {REASONS_STORED}.")

    @property
    def daily_discount(self) -> float:
        return (1.0 + self.clv_annual_discount) ** (1.0 / 365.0) - 1.0


def activity_params() -> ActivityParams:
    return ActivityParams(
        active_days=int(getattr(settings, "ACTIVITY_ACTIVE_DAYS", 30)),
        dormant_days=int(getattr(settings, "ACTIVITY_DORMANT_DAYS", 180)),
        recent_days=int(getattr(settings, "ACTIVITY_RECENT_DAYS", 90)),
        baseline_days=int(getattr(settings, "ACTIVITY_BASELINE_DAYS", 365)),
        slowing_ratio=float(getattr(settings, "ACTIVITY_SLOWING_RATIO", 0.5)),
        min_baseline_days=int(getattr(settings, "ACTIVITY_MIN_BASELINE_DAYS", 3)),
        overdue_multiple=float(getattr(settings, "ACTIVITY_OVERDUE_MULTIPLE", 3.0)),
        regulatory_years=int(getattr(settings, "REGULATORY_DORMANT_YEARS", 3)),
        regulatory_max_cash=float(getattr(settings, "REGULATORY_DORMANT_MAX_CASH", 100)),
    )


def churn_params() -> ChurnParams:
    weights = dict.fromkeys(SIGNALS, 0.0)
    weights.update(getattr(settings, "CHURN_WEIGHTS", {}))
    return ChurnParams(
        weights=weights,
        outflow_full_share=float(getattr(settings, "CHURN_OUTFLOW_FULL_SHARE", 0.5)),
        loss_full_share=float(getattr(settings, "CHURN_LOSS_FULL_SHARE", 0.2)),
        loss_min_trades=int(getattr(settings, "CHURN_LOSS_MIN_TRADES", 3)),
        reasons_kept=int(getattr(settings, "CHURN_REASONS_KEPT", 3)),
        signal_min=float(getattr(settings, "CHURN_SIGNAL_MIN", 0.05)),
        clv_horizon_days=int(getattr(settings, "CLV_HORIZON_DAYS", 365)),
        clv_annual_discount=float(getattr(settings, "CLV_ANNUAL_DISCOUNT_RATE", 0.08)),
        simple_retention_years=float(getattr(settings, "CLV_SIMPLE_RETENTION_YEARS", 3)),
    )


def lifetime_time_unit() -> str:
    unit = getattr(settings, "LIFETIME_TIME_UNIT", "weeks")
    if unit not in ("days", "weeks"):
        raise ImproperlyConfigured(f"LIFETIME_TIME_UNIT must be 'days' or 'weeks', not {unit!r}.")
    return unit
