"""Admin for the nightly run records and the pipeline lock.

Imported by brokercrm/admin.py (`from brokercrm.nightly import admin as nightly_admin`). Run
records are written by the pipeline only: view-only here, plus two operator actions: start a
date again, and release a lock whose run is known to be dead.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from brokercrm.models import ChunkRun, NightlyRun, PipelineLock, StageRun
from brokercrm.nightly.lock import PipelineBusy, lock_release
from brokercrm.nightly.orchestration import nightly_run_start
from brokercrm.roles import OPS, has_role


class _ViewOnly:
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class StageRunInline(_ViewOnly, admin.TabularInline):
    model = StageRun
    fields = ("attempt", "position", "name", "status", "started_at", "finished_at", "rows", "chunks", "error_head")
    readonly_fields = fields
    ordering = ("-attempt", "position")
    extra = 0

    @admin.display(description="chunks")
    def chunks(self, obj: StageRun) -> str:
        return f"{obj.chunks_done}/{obj.chunks_total}" if obj.chunks_total else ""

    @admin.display(description="error")
    def error_head(self, obj: StageRun) -> str:
        return obj.error.splitlines()[0][:200] if obj.error else ""


@admin.register(NightlyRun)
class NightlyRunAdmin(_ViewOnly, admin.ModelAdmin):
    list_display = ("as_of", "status", "attempt", "trigger", "started_at", "finished_at", "duration", "stage_summary")
    list_filter = ("status", "trigger")
    date_hierarchy = "as_of"
    ordering = ("-as_of",)
    readonly_fields = (
        "as_of",
        "status",
        "attempt",
        "stages",
        "trigger",
        "options",
        "started_at",
        "finished_at",
        "error",
        "created_at",
        "updated_at",
    )
    inlines = (StageRunInline,)
    actions = ("run_again",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("stage_runs")

    @admin.display(description="seconds")
    def duration(self, obj: NightlyRun) -> str:
        seconds = obj.duration_seconds
        return f"{seconds:.1f}" if seconds is not None else ""

    @admin.display(description="stages (latest attempt)")
    def stage_summary(self, obj: NightlyRun) -> str:
        stages = sorted((s for s in obj.stage_runs.all() if s.attempt == obj.attempt), key=lambda s: s.position)
        return format_html_join(", ", "{} {}", ((stage.name, stage.status) for stage in stages))

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user, OPS)

    @admin.action(description="Run the selected dates again", permissions=["run"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[NightlyRun]) -> None:
        for run in queryset.order_by("as_of"):
            try:
                started = nightly_run_start(as_of=run.as_of, trigger=NightlyRun.Trigger.COMMAND)
            except PipelineBusy as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            self.message_user(request, f"{started.as_of}: attempt {started.attempt} {started.status}.")


@admin.register(ChunkRun)
class ChunkRunAdmin(_ViewOnly, admin.ModelAdmin):
    list_display = ("stage_run", "index", "client_id_from", "client_id_to", "status", "rows", "worker", "finished_at")
    list_filter = ("status", "stage_run__name")
    list_select_related = ("stage_run__run",)
    search_fields = ("stage_run__name", "worker")


@admin.register(PipelineLock)
class PipelineLockAdmin(_ViewOnly, admin.ModelAdmin):
    list_display = ("name", "run", "acquired_at", "heartbeat_at")
    actions = ("release",)

    def has_release_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user, OPS)

    @admin.action(description="Release the lock (only if its run is dead)", permissions=["release"])
    def release(self, request: HttpRequest, queryset: QuerySet[PipelineLock]) -> None:
        for lock in queryset.exclude(run=None):
            lock_release(run_id=lock.run_id, name=lock.name)
            NightlyRun.objects.filter(pk=lock.run_id, status="running").update(
                status="failed", error=f"Lock released by {request.user.get_username()} in admin."
            )
            self.message_user(request, f"Released {lock.name}.")
