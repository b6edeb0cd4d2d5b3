"""Admin for segmentation: tier runs, tier assignments (current tiers), changes, overrides.

Results are written by the nightly pipeline only, so they are view-only here. Overrides are
created and ended through segmentation.services (the audit rows come from there), by ops
or the client's team lead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from segmentation import services
from segmentation.models import (
    ClientTier,
    ReactivationCandidate,
    ResultSet,
    RollupWatermark,
    Tier,
    TierHistory,
    TierMove,
    TierOverride,
    TierOverrideAudit,
    TierResult,
    TierRun,
)
from segmentation.selectors import tier_current_as_of


@admin.register(TierRun)
class TierRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("as_of", "basis", "population", "tier_counts", "top20_share", "changes", "retained", "published_at")
    list_filter = ("basis", "retained")
    date_hierarchy = "as_of"
    ordering = ("-as_of",)


class CurrentTierFilter(admin.SimpleListFilter):
    title = "computed tier"
    parameter_name = "tier"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(value), label) for value, label in Tier.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in {str(value) for value in Tier.values}:
            return queryset.filter(tier_now=int(self.value()))
        return queryset


@admin.register(ClientTier)
class ClientTierAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    """Tier assignments: each client's computed tier on the current date, with the override in force."""

    client_scope_prefix = ""
    scoped_client_fields = ()
    list_display = ("client_no", "name", "tier", "value", "rank", "change", "previous", "override")
    list_filter = (CurrentTierFilter,)
    search_fields = ("client_no", "name")
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        day = tier_current_as_of()
        current = TierResult.objects.filter(as_of=day, client_id=OuterRef("pk"))
        active = TierOverride.objects.active_on(timezone.localdate()).filter(client_id=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .filter(Exists(current))
            .annotate(
                tier_now=Subquery(current.values("tier")[:1]),
                value_now=Subquery(current.values("value")[:1]),
                rank_now=Subquery(current.values("rank")[:1]),
                change_now=Subquery(current.values("change")[:1]),
                previous_now=Subquery(current.values("previous_tier")[:1]),
                override_now=Subquery(active.values("tier")[:1]),
            )
            .order_by("rank_now", "pk")
        )

    @admin.display(description="tier", ordering="tier_now")
    def tier(self, obj: ClientTier) -> str:
        return Tier(obj.tier_now).label if obj.tier_now else ""

    @admin.display(description="value", ordering="value_now")
    def value(self, obj: ClientTier) -> object:
        return obj.value_now

    @admin.display(description="rank", ordering="rank_now")
    def rank(self, obj: ClientTier) -> object:
        return obj.rank_now

    @admin.display(description="change")
    def change(self, obj: ClientTier) -> str:
        return TierMove(obj.change_now).label if obj.change_now is not None else ""

    @admin.display(description="previous tier")
    def previous(self, obj: ClientTier) -> str:
        return Tier(obj.previous_now).label if obj.previous_now else ""

    @admin.display(description="override in force")
    def override(self, obj: ClientTier) -> str:
        return Tier(obj.override_now).label if obj.override_now else ""


@admin.register(TierHistory)
class TierHistoryAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("as_of", "client", "previous_tier", "tier", "value", "rank")
    list_filter = ("tier", "previous_tier")
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    date_hierarchy = "as_of"
    show_full_result_count = False


class TierOverrideForm(forms.ModelForm):
    """New overrides: client, tier, reason, dates. An open one can be ended with a reason."""

    end_reason_input = forms.CharField(
        label="End now, because", required=False, max_length=200, help_text="Fill in to end this override now."
    )

    class Meta:
        model = TierOverride
        fields = ("client", "tier", "reason", "starts_on", "expires_on")


@admin.register(TierOverride)
class TierOverrideAdmin(ScopedAdmin):
    form = TierOverrideForm
    list_display = ("client", "tier", "starts_on", "expires_on", "created_by", "created_at", "ended_at", "end_reason")
    list_filter = ("tier", ("ended_at", admin.EmptyFieldListFilter))
    list_select_related = ("client", "created_by")
    search_fields = ("client__client_no", "reason")
    raw_id_fields = ("client",)

    def get_fields(self, request: HttpRequest, obj: TierOverride | None = None) -> list[str]:
        if obj is None:
            return ["client", "tier", "reason", "starts_on", "expires_on"]
        fields = [
            "client",
            "tier",
            "reason",
            "starts_on",
            "expires_on",
            "created_by",
            "created_at",
            "ended_at",
            "ended_by",
            "end_reason",
        ]
        return [*fields, "end_reason_input"] if obj.ended_at is None else fields

    def get_readonly_fields(self, request: HttpRequest, obj: TierOverride | None = None) -> list[str]:
        if obj is None:
            return []
        return [
            "client",
            "tier",
            "reason",
            "starts_on",
            "expires_on",
            "created_by",
            "created_at",
            "ended_at",
            "ended_by",
            "end_reason",
        ]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"starts_on": timezone.localdate()}

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # overrides are ended, never deleted: the audit trail points at them

    def save_model(self, request: HttpRequest, obj: TierOverride, form: forms.ModelForm, change: bool) -> None:
        try:
            if not change:
                created = services.tier_override_create(
                    client=form.cleaned_data["client"],
                    tier=form.cleaned_data["tier"],
                    reason=form.cleaned_data["reason"],
                    starts_on=form.cleaned_data["starts_on"],
                    expires_on=form.cleaned_data["expires_on"],
                    by=request.user,
                )
                obj.pk = created.pk
            elif form.cleaned_data.get("end_reason_input"):
                services.tier_override_end(override=obj, by=request.user, reason=form.cleaned_data["end_reason_input"])
        except services.OverrideError as exc:
            if str(exc) == services.OverrideError.NOT_ALLOWED:
                raise PermissionDenied(str(exc)) from exc
            self.message_user(request, str(exc), messages.ERROR)
            raise ValidationError(str(exc)) from exc

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> TierOverride:
        # The service writes the row (and its audit); the form only carries the input.
        return form.save(commit=False)

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        obj.refresh_from_db()
        return super().log_addition(request, obj, message)


@admin.register(TierOverrideAudit)
class TierOverrideAuditAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("at", "client", "action", "tier", "computed_tier", "by", "reason")
    list_filter = ("action",)
    list_select_related = ("client", "by")
    search_fields = ("client__client_no",)


@admin.register(ReactivationCandidate)
class ReactivationCandidateAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("as_of", "client", "assets", "commission", "assets_percentile", "commission_percentile")
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    date_hierarchy = "as_of"
    show_full_result_count = False


@admin.register(ResultSet)
class ResultSetAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("kind", "as_of", "is_published", "published_at", "rows")
    list_filter = ("kind", "is_published")


@admin.register(RollupWatermark)
class RollupWatermarkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "last_trade_id", "rows_upserted", "updated_at")
