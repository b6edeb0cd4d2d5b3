"""The "act" stages of retention work (registered through retention/stages.py).

Run after the scoring stages (300-310) and compliance (400), for the same as-of date D; the
tasks they open are for the working day D + 1. Each is safe to run twice for a date.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from brokercrm.nightly import Stage, register_stage
from retention.work.callbacks import callbacks_stage
from retention.work.entitlements import entitlements_stage
from retention.work.playbooks import playbooks_stage

register_stage(
    Stage(
        name="playbooks",
        position=500,
        description=_("Playbooks -> retention tasks (new ones opened, stale ones expired, overdue ones expired)."),
        run=playbooks_stage,
    )
)
register_stage(
    Stage(
        name="callbacks",
        position=510,
        description=_("Regulatory callbacks for new accounts; records past their retention period purged."),
        run=callbacks_stage,
    )
)
register_stage(
    Stage(
        name="entitlements",
        position=520,
        description=_("Service entitlements granted/withdrawn by tier; due deliveries recorded or tasked."),
        run=entitlements_stage,
    )
)
