"""Business settings of segmentation, read with their defaults (see README "Settings").

Read at call time, so tests can override them with pytest-django's `settings` fixture.
"""

from __future__ import annotations

from fractions import Fraction

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from segmentation.analytics import NeedsParams

DEFAULT_CUTOFFS = {"vip": 3, "major": 10, "ordinary": 20}


def tier_basis() -> str:
    basis = getattr(settings, "TIER_BASIS", "commission")
    if basis not in ("commission", "assets"):
        raise ImproperlyConfigured(f"TIER_BASIS must be 'commission' or 'assets', not {basis!r}.")
    return basis


def tier_window_days() -> int:
    return _positive("TIER_WINDOW_DAYS", 365)


def tier_cutoffs_spec() -> dict:
    return dict(getattr(settings, "TIER_CUTOFFS", DEFAULT_CUTOFFS))


def tier_keep_daily() -> int:
    return _positive("TIER_KEEP_DAILY", 7)


def asset_snapshot_max_age_days() -> int:
    return _positive("ASSET_SNAPSHOT_MAX_AGE_DAYS", 31)


def reactivation_asset_top() -> Fraction:
    return Fraction(str(getattr(settings, "REACTIVATION_ASSET_TOP_PERCENT", 10))) / 100


def reactivation_commission_bottom() -> Fraction:
    return Fraction(str(getattr(settings, "REACTIVATION_COMMISSION_BOTTOM_PERCENT", 50))) / 100


def reactivation_keep() -> int:
    return _positive("REACTIVATION_KEEP_DAYS", 35)


def tier_override_max_days() -> int:
    return _positive("TIER_OVERRIDE_MAX_DAYS", 366)


def needs_refresh() -> str:
    refresh = getattr(settings, "NEEDS_REFRESH", "weekly")
    if refresh not in ("nightly", "weekly"):
        raise ImproperlyConfigured(f"NEEDS_REFRESH must be 'nightly' or 'weekly', not {refresh!r}.")
    return refresh


def needs_refresh_weekday() -> int:
    """Weekday of the as-of date on which a weekly refresh runs (0 = Monday; default Friday)."""
    return int(getattr(settings, "NEEDS_REFRESH_WEEKDAY", 4))


def needs_params() -> NeedsParams:
    return NeedsParams(
        window_days=_positive("NEEDS_WINDOW_DAYS", 365),
        min_trades=_positive("NEEDS_MIN_TRADES", 3),
        min_days=_positive("NEEDS_MIN_DAYS", 2),
        swing_max_days=_positive("NEEDS_SWING_MAX_DAYS", 20),
        top_industries=_positive("NEEDS_TOP_INDUSTRIES", 3),
    )


def needs_high_price() -> str:
    """Trade price at or above which a trade counts as 'high price' (currency units)."""
    return str(getattr(settings, "NEEDS_HIGH_PRICE", 50))


def _positive(name: str, default: int) -> int:
    value = int(getattr(settings, name, default))
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, not {value}.")
    return value
