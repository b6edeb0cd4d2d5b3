"""Compliance's nightly stage (autodiscovered by brokercrm.nightly.registry)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from brokercrm.nightly import Stage, register_stage
from compliance.nightly import compliance_stage

register_stage(
    Stage(
        name="compliance",
        position=400,
        description=_("Screening, KYC / suitability / AML rules -> flags (open once, evidence updated)."),
        run=compliance_stage,
    )
)
