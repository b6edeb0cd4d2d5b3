"""Retention's nightly stages (autodiscovered by brokercrm.nightly.registry): score 300-399."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from brokercrm.nightly import Stage, register_stage
from retention.churn import churn_chunk, churn_cleanup, churn_finalize, churn_prepare
from retention.dormancy import dormancy_chunk, dormancy_cleanup, dormancy_finalize, dormancy_prepare

register_stage(
    Stage(
        name="dormancy",
        position=300,
        description=_("Activity segments, about-to-go-dormant warnings, regulatory dormant accounts."),
        prepare=dormancy_prepare,
        chunk=dormancy_chunk,
        finalize=dormancy_finalize,
        cleanup=dormancy_cleanup,
    )
)
register_stage(
    Stage(
        name="churn",
        position=310,
        description=_("Lifetime model fit; churn risk with reasons, P(alive) and CLV per client."),
        prepare=churn_prepare,
        chunk=churn_chunk,
        finalize=churn_finalize,
        cleanup=churn_cleanup,
    )
)

import retention.work.stages  # noqa: E402,F401 - retention work: playbooks 500, callbacks 510, entitlements 520
