"""Metrics' nightly stage (autodiscovered by brokercrm.nightly.registry)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from brokercrm.nightly import Stage, register_stage
from metrics.snapshot import metrics_stage

register_stage(
    Stage(
        name="metrics",
        position=600,
        description=_("KPI snapshot of the as-of date: overall and by tier, account manager and branch."),
        run=metrics_stage,
    )
)
