"""Admin for import batches (registered here; clients/admin.py imports this module).

View-only: a batch is the record of what happened to a file. Ops read who imported what,
when, the counts and the errors (row, column, value, what was expected) here.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from brokercrm.admin import ReadOnlyAdminMixin
from clients.models import ImportBatch, ImportBatchError


class ImportBatchErrorInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ImportBatchError
    fields = ("row", "column", "value", "code", "expected")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = _("errors (the first 1,000)")


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "file_name",
        "source",
        "requested_by_name",
        "started_at",
        "rows_read",
        "rows_written",
        "rows_duplicate",
        "rows_rejected",
    )
    list_filter = ("status", "kind", "source")
    search_fields = ("=file_sha256", "file_name", "requested_by_name")
    date_hierarchy = "started_at"
    ordering = ("-started_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    inlines = (ImportBatchErrorInline,)
    fieldsets = (
        (None, {"fields": ("kind", "status", "source", "requested_by_name", "started_at", "finished_at")}),
        (_("File"), {"fields": ("file_name", "file_sha256", "file_size", "encoding", "rejects_file")}),
        (_("Options"), {"fields": ("skip_invalid", "allow_updates")}),
        (
            _("Counts"),
            {
                "fields": (
                    "rows_read",
                    "rows_written",
                    "rows_updated",
                    "rows_duplicate",
                    "rows_conflict",
                    "rows_rejected",
                    "error_count",
                )
            },
        ),
        (_("Problems"), {"fields": ("failure", "duplicate_sample")}),
    )
    readonly_fields = tuple(f for _title, section in fieldsets for f in section["fields"])

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportBatch]:
        return super().get_queryset(request).defer("duplicate_sample")
