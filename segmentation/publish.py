"""Publishing a per-client result generation: the rows of a stage run become the date's rows at once
(the needs profiles here, the activity and churn scores in retention).

Chunks write rows under `generation = stage run id`; finalize points segmentation's ResultSet
at that generation in one transaction and drops every other generation; a failure (cleanup
without a publication) drops only the unpublished rows, so the previous night stays visible.
"""

from __future__ import annotations

from django.db import models, transaction
from django.utils import timezone

from brokercrm.nightly import StageContext
from segmentation.models import ResultSet


def published(kind: str) -> ResultSet | None:
    """The published result set of `kind` (the latest date), or None."""
    return ResultSet.objects.filter(kind=kind, is_published=True).order_by("-as_of").first()


def publish(kind: str, model: type[models.Model], ctx: StageContext, detail: dict | None = None) -> int:
    with transaction.atomic():
        rows = model.objects.filter(generation=ctx.stage_run_id).count()
        ResultSet.objects.filter(kind=kind).exclude(as_of=ctx.as_of).update(is_published=False)
        ResultSet.objects.update_or_create(
            kind=kind,
            as_of=ctx.as_of,
            defaults={
                "nightly_run_id": ctx.run_id,
                "is_published": True,
                "published_at": timezone.now(),
                "generation": ctx.stage_run_id,
                "rows": rows,
                "detail": detail or {},
            },
        )
        model.objects.exclude(generation=ctx.stage_run_id).delete()
    return rows


def discard_unpublished(kind: str, model: type[models.Model], ctx: StageContext) -> None:
    if not ResultSet.objects.filter(kind=kind, generation=ctx.stage_run_id, is_published=True).exists():
        model.objects.filter(generation=ctx.stage_run_id).delete()
