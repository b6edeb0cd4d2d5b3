"""Business settings of compliance (COMPLIANCE_* in brokercrm/settings/base.py), read with
their defaults at call time, so tests can override them with pytest-django's `settings`."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_KYC_REVIEW_DAYS = {"high": 365, "medium": 730, "low": 1095}
# FATF "call for action" jurisdictions (high-risk, subject to countermeasures).
DEFAULT_HIGH_RISK_COUNTRIES = ("KP", "IR", "MM")


def _int(name: str, default: int, *, minimum: int = 1) -> int:
    value = getattr(settings, name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def _money(name: str, default: str) -> Decimal:
    value = getattr(settings, name, default)
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ImproperlyConfigured(f"{name} must be an amount of money, not {value!r}.") from None
    if not amount.is_finite() or amount <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive amount, not {value!r}.")
    return amount


def _share(name: str, default: str) -> Decimal:
    value = Decimal(str(getattr(settings, name, default)))
    if not (0 <= value <= 1):
        raise ImproperlyConfigured(f"{name} must be a share between 0 and 1, not {value}.")
    return value


def id_expiry_warning_days() -> int:
    """An ID document expiring within this many days is flagged (low severity)."""
    return _int("COMPLIANCE_ID_EXPIRY_WARNING_DAYS", 30)


def id_expired_high_days() -> int:
    """An ID document expired for more than this many days is high severity."""
    return _int("COMPLIANCE_ID_EXPIRED_HIGH_DAYS", 90)


def kyc_review_days() -> dict[str, int]:
    """Days between KYC reviews by AML risk rating (high yearly, medium 2 years, low 3 years)."""
    spec = dict(getattr(settings, "COMPLIANCE_KYC_REVIEW_DAYS", DEFAULT_KYC_REVIEW_DAYS))
    if set(spec) != set(DEFAULT_KYC_REVIEW_DAYS) or any(int(days) < 1 for days in spec.values()):
        raise ImproperlyConfigured("COMPLIANCE_KYC_REVIEW_DAYS needs whole numbers >= 1 for high, medium and low.")
    return {risk: int(days) for risk, days in spec.items()}


def kyc_overdue_high_days() -> int:
    """A KYC review overdue by more than this many days is high severity."""
    return _int("COMPLIANCE_KYC_OVERDUE_HIGH_DAYS", 180)


def risk_assessment_max_age_days() -> int:
    return _int("COMPLIANCE_RISK_ASSESSMENT_MAX_AGE_DAYS", 730)


def high_risk_countries() -> tuple[str, ...]:
    countries = tuple(getattr(settings, "COMPLIANCE_HIGH_RISK_COUNTRIES", DEFAULT_HIGH_RISK_COUNTRIES))
    for code in countries:
        if not (isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper()):
            raise ImproperlyConfigured(f"COMPLIANCE_HIGH_RISK_COUNTRIES: {code!r} is not an ISO 3166-1 alpha-2 code.")
    return countries


def suitability_first_run_days() -> int:
    """On the first run (no watermark yet) the suitability check reads this many days of trades."""
    return _int("COMPLIANCE_SUITABILITY_FIRST_RUN_DAYS", 90)


def aml_large_deposit() -> Decimal:
    return _money("COMPLIANCE_AML_LARGE_DEPOSIT", "500000")


def aml_withdrawal_days() -> int:
    """A large deposit withdrawn within this many days (with little trading) is flagged."""
    return _int("COMPLIANCE_AML_WITHDRAWAL_DAYS", 5)


def aml_withdrawn_share() -> Decimal:
    """Share of the deposit that must be withdrawn in the window."""
    return _share("COMPLIANCE_AML_WITHDRAWN_SHARE", "0.8")


def aml_max_traded_share() -> Decimal:
    """'Little or no trading': traded amount in the window below this share of the deposit."""
    return _share("COMPLIANCE_AML_MAX_TRADED_SHARE", "0.1")


def aml_lookback_days() -> int:
    """Deposits (and small-deposit series) of the last this many days are examined each night."""
    return _int("COMPLIANCE_AML_LOOKBACK_DAYS", 30)


def aml_reporting_threshold() -> Decimal:
    """The large-cash reporting threshold that structuring stays just under."""
    return _money("COMPLIANCE_AML_REPORTING_THRESHOLD", "50000")


def aml_structuring_margin() -> Decimal:
    """'Just under': at least threshold x (1 - margin) and below the threshold."""
    return _share("COMPLIANCE_AML_STRUCTURING_MARGIN", "0.1")


def aml_structuring_count() -> int:
    """This many just-under deposits within the structuring window are flagged."""
    return _int("COMPLIANCE_AML_STRUCTURING_COUNT", 3, minimum=2)


def aml_structuring_days() -> int:
    return _int("COMPLIANCE_AML_STRUCTURING_DAYS", 7)


def screening_threshold() -> float:
    """Name similarity (0-100) from which a watch-list entry counts as a match."""
    value = float(getattr(settings, "COMPLIANCE_SCREENING_THRESHOLD", 88))
    if not (50 <= value <= 100):
        raise ImproperlyConfigured(f"COMPLIANCE_SCREENING_THRESHOLD must be between 50 and 100, not {value}.")
    return value
