"""The starting playbooks and service catalogue (DOMAIN.md "Retention work"), for ops to tune.

The playbooks' reason texts are stored in English and marked for the message catalogue: a task's
reason shows them in the reader's language (retention/work/task_reasons.py); text that ops write
instead is shown as written.

`retention_defaults_ensure()` creates the ones that do not exist yet (by name / code) and never
changes an existing row, so what ops edited in admin stays as they left it.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_noop

from retention.work.models import Playbook, ServiceProduct, TierEntitlement
from segmentation.models import Tier

VIP, MAJOR, ORDINARY, SMALL = Tier.VIP, Tier.MAJOR, Tier.ORDINARY, Tier.SMALL

DEFAULT_PLAYBOOKS: list[dict] = [
    {
        "name": "VIP/Major at risk",
        "description": "A high-value client whose churn risk reached 70: the account manager calls within 2 days.",
        "tiers": [VIP, MAJOR],
        "min_churn_risk": 70,
        "task_kind": "at_risk_outreach",
        "due_in_days": 2,
        "priority": 85,
        "reason_text": gettext_noop("High-value client at risk of leaving: call within 2 days"),
    },
    {
        "name": "About to go dormant",
        "description": "No trade for 3x the client's usual gap: offer a reactivation incentive.",
        "about_to_go_dormant": True,
        "task_kind": "reactivation",
        "due_in_days": 5,
        "priority": 60,
        "reason_text": gettext_noop("About to go dormant: offer a reactivation incentive"),
    },
    {
        "name": "High assets, low activity",
        "description": "Top asset decile, commission in the bottom half: a personal call.",
        "high_assets_low_activity": True,
        "task_kind": "reactivation",
        "due_in_days": 7,
        "priority": 65,
        "reason_text": gettext_noop("High assets, low activity: personal call about strategy and products"),
        "cooldown_days": 60,
    },
    {
        "name": "Welcome to the new service level",
        "description": "Tier upgrade: welcome the client and introduce the services of the new tier.",
        "tier_change": "up",
        "tier_change_within_days": 7,
        "task_kind": "greeting",
        "due_in_days": 7,
        "priority": 50,
        "reason_text": gettext_noop("Upgraded: welcome to the new service level and its services"),
        "cooldown_days": 90,
    },
    {
        "name": "Downgraded from VIP/Major",
        "description": "Tier downgrade of a former VIP or Major client: find out why.",
        "tiers": [MAJOR, ORDINARY],
        "tier_change": "down",
        "tier_change_within_days": 7,
        "task_kind": "at_risk_outreach",
        "due_in_days": 5,
        "priority": 70,
        "reason_text": gettext_noop("Downgraded: check in and find out what changed"),
        "cooldown_days": 90,
    },
]

# code, name, channel, frequency, needs a person, task kind, tiers
DEFAULT_PRODUCTS: list[tuple[str, str, str, str, bool, str, list[int]]] = [
    ("research_reports", "Research reports", "email", "monthly", False, "service_delivery", [VIP, MAJOR]),
    ("risk_plan", "Personalised risk plan", "phone", "yearly", True, "service_delivery", [VIP, MAJOR]),
    (
        "hotspot_alerts",
        "Market hot-spot alerts",
        "trading_software",
        "weekly",
        False,
        "service_delivery",
        [VIP, MAJOR, ORDINARY],
    ),
    (
        "portfolio_review",
        "Portfolio and company research review",
        "on_site",
        "quarterly",
        True,
        "service_delivery",
        [VIP],
    ),
    ("financing_help", "Help finding financing", "phone", "on_demand", True, "service_delivery", [VIP]),
    (
        "monthly_trade_review",
        "Monthly trade review",
        "email",
        "monthly",
        False,
        "service_delivery",
        [VIP, MAJOR, ORDINARY],
    ),
    ("training", "Training courses", "website", "quarterly", False, "service_delivery", [VIP, MAJOR, ORDINARY, SMALL]),
    ("seminars", "Seminar invitations", "email", "quarterly", False, "service_delivery", [VIP, MAJOR]),
    ("holiday_greetings", "Holiday greetings", "sms", "yearly", False, "greeting", [VIP, MAJOR, ORDINARY, SMALL]),
    ("birthday_call", "Birthday call", "phone", "birthday", True, "greeting", [VIP, MAJOR]),
    ("birthday_sms", "Birthday greeting", "sms", "birthday", False, "greeting", [ORDINARY, SMALL]),
]


@transaction.atomic
def retention_defaults_ensure() -> dict[str, int]:
    """Create the missing default playbooks, products and their tier cells; returns what was created."""
    created = {"playbooks": 0, "products": 0}
    for spec in DEFAULT_PLAYBOOKS:
        _, made = Playbook.objects.get_or_create(name=spec["name"], defaults=spec)
        created["playbooks"] += made
    for code, name, channel, frequency, needs_person, task_kind, tiers in DEFAULT_PRODUCTS:
        product, made = ServiceProduct.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "channel": channel,
                "frequency": frequency,
                "needs_person": needs_person,
                "task_kind": task_kind,
            },
        )
        if made:
            created["products"] += 1
            TierEntitlement.objects.bulk_create([TierEntitlement(product=product, tier=tier) for tier in tiers])
    return created
