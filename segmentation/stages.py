"""Segmentation's nightly stages (autodiscovered by brokercrm.nightly.registry)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from brokercrm.nightly import Stage, StageContext, StageResult, register_stage
from segmentation.needs import needs_chunk, needs_cleanup, needs_finalize, needs_is_due, needs_prepare
from segmentation.rollup import activity_rollup
from segmentation.tiering import reactivation_stage, tiers_stage


def rollup_stage(ctx: StageContext) -> StageResult:
    result = activity_rollup()
    return StageResult(
        rows=result.rows,
        detail={"batches": result.batches, "from_trade_id": result.from_trade_id, "to_trade_id": result.to_trade_id},
    )


register_stage(
    Stage(
        name="rollup",
        position=100,
        description=_("Trades since the watermark -> per-client daily activity (incremental)."),
        run=rollup_stage,
    )
)
register_stage(
    Stage(
        name="tiers",
        position=200,
        description=_("Tiers (VIP/Major/Ordinary/Small) over the look-back window, history, Pareto."),
        run=tiers_stage,
    )
)
register_stage(
    Stage(
        name="reactivation",
        position=210,
        description=_("High assets, low activity: the reactivation list."),
        run=reactivation_stage,
    )
)
register_stage(
    Stage(
        name="needs",
        position=220,
        description=_("Needs profiles (behaviour, products, channels), per client chunk."),
        prepare=needs_prepare,
        chunk=needs_chunk,
        finalize=needs_finalize,
        cleanup=needs_cleanup,
        is_due=needs_is_due,
    )
)
