"""Admin of compliance: view-only for everyone, superusers included.

Flags are decided through the review queue (API), where the four-eyes rule and the audit
trail apply; watch lists are loaded with `import_watchlist`; suitability records and audit
entries are append-only. Rows of a client go through the permission policy (ScopedAdmin).
"""

from __future__ import annotations

from django.contrib import admin

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from compliance.models import (
    AuditEntry,
    ComplianceMark,
    Flag,
    FlagDecision,
    ScreeningMatch,
    ScreeningWhitelist,
    SuitabilityRecord,
    WatchList,
    WatchListEntry,
)


class FlagDecisionInline(admin.TabularInline):
    model = FlagDecision
    extra = 0
    can_delete = False
    fields = ["decision", "status", "note", "whitelist", "decided_by", "decided_at", "reviewed_by", "reviewed_at"]
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ["id", "client", "kind", "severity", "status", "first_seen_on", "last_seen_on", "assigned_to"]
    list_filter = ["status", "kind", "severity", "client__branch"]
    list_select_related = ["client", "assigned_to"]
    search_fields = ["client__client_no__exact", "client__name"]
    show_full_result_count = False
    inlines = [FlagDecisionInline]


@admin.register(ScreeningMatch)
class ScreeningMatchAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ["client", "entry", "score", "name_score", "matched_fields", "matched_name", "screened_at"]
    list_select_related = ["client", "entry"]
    search_fields = ["client__client_no__exact", "client__name", "entry__name"]


@admin.register(ScreeningWhitelist)
class ScreeningWhitelistAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ["client", "entry", "created_by", "created_at"]
    list_select_related = ["client", "entry", "created_by"]
    search_fields = ["client__client_no__exact"]


@admin.register(SuitabilityRecord)
class SuitabilityRecordAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = [
        "recorded_at",
        "kind",
        "client",
        "instrument",
        "client_risk_level",
        "product_risk_level",
        "mismatch",
        "acknowledged_at",
        "recorded_by",
    ]
    list_filter = ["kind", "mismatch", "recorded_at"]
    list_select_related = ["client", "instrument", "recorded_by"]
    search_fields = ["client__client_no__exact", "instrument__symbol__exact"]
    show_full_result_count = False


@admin.register(WatchList)
class WatchListAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "version", "loaded_at", "loaded_by", "source"]


@admin.register(WatchListEntry)
class WatchListEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["watch_list", "external_id", "name", "birth_date", "birth_year", "countries", "is_active"]
    list_filter = ["watch_list", "is_active"]
    list_select_related = ["watch_list"]
    search_fields = ["name", "external_id__exact"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: no add, change or delete for anyone, no bulk actions."""

    list_display = ["seq", "at", "actor_name", "action", "object_type", "object_id", "client_no"]
    list_filter = ["action", "object_type", "at"]
    search_fields = ["client_no__exact", "actor_name__exact", "object_id__exact"]
    show_full_result_count = False

    def get_actions(self, request: object) -> dict:
        return {}


@admin.register(ComplianceMark)
class ComplianceMarkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "value", "at"]
