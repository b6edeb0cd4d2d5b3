"""Publishing a per-client result generation: the rows of a stage run become the date's rows at once
(the needs profiles here, the activity and churn scores in retention).

Chunks write rows under `generation = stage run id`; finalize points segmentation's ResultSet
at that generation in one transaction and drops every other generation; a failure (cleanup
without a publication) drops only the unpublished rows, so the previous night stays visible.

A table LIST-partitioned by generation (PostgreSQL: the activity and churn scores) holds the
generation's rows in a side table until then (brokercrm.nightly.bulk.create_side_table): the
publication attaches it as the only partition and drops the others, so it neither copies nor
deletes rows; a failure drops the side table.
"""

from __future__ import annotations

from django.db import connection, models, transaction
from django.utils import timezone

from brokercrm.nightly import StageContext, bulk
from segmentation.models import ResultSet


def published(kind: str) -> ResultSet | None:
    """The published result set of `kind` (the latest date), or None."""
    return ResultSet.objects.filter(kind=kind, is_published=True).order_by("-as_of").first()


def publish(kind: str, model: type[models.Model], ctx: StageContext, detail: dict | None = None) -> int:
    """Publish generation `ctx.stage_run_id` of `model` as the `kind` results of the date and drop
    every other generation, in one transaction; returns the generation's rows."""
    if bulk.partitioned(model):
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(bulk.load_table(model, ctx.stage_run_id))
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            rows = cursor.fetchone()[0]
        bulk.swap_in_side_table(
            model, key_value=ctx.stage_run_id, in_swap=lambda: _mark_published(kind, ctx, rows, detail)
        )
        return rows
    with transaction.atomic():
        rows = model.objects.filter(generation=ctx.stage_run_id).count()
        _mark_published(kind, ctx, rows, detail)
        model.objects.exclude(generation=ctx.stage_run_id).delete()
    return rows


def _mark_published(kind: str, ctx: StageContext, rows: int, detail: dict | None) -> None:
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


def discard_unpublished(kind: str, model: type[models.Model], ctx: StageContext) -> None:
    if ResultSet.objects.filter(kind=kind, generation=ctx.stage_run_id, is_published=True).exists():
        return
    if bulk.partitioned(model):
        bulk.drop_side_table(model, key_value=ctx.stage_run_id)
    else:
        model.objects.filter(generation=ctx.stage_run_id).delete()
