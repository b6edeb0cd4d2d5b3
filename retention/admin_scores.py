"""Admin of the nightly scores: read-only lists of the published activity rows and churn scores
(scoped like every client list), and the lifetime-model fits."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from retention.models import ChurnScore, ClientActivity, LifetimeFit
from retention.scoring import reason_text
from segmentation.models import ResultSet
from segmentation.publish import published


class PublishedOnlyMixin:
    """Rows of the published generation only (older generations are dropped at publication;
    this hides a run's rows while it is being built)."""

    result_kind: str = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        result = published(self.result_kind)
        return queryset.filter(generation=result.generation) if result else queryset.none()


class RiskBandFilter(admin.SimpleListFilter):
    title = "risk"
    parameter_name = "risk_band"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("70", "70 and above"), ("40", "40 to 69"), ("0", "below 40")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        bands = {"70": (70, 100), "40": (40, 69), "0": (0, 39)}
        if self.value() in bands:
            low, high = bands[self.value()]
            return queryset.filter(risk__gte=low, risk__lte=high)
        return queryset


@admin.register(ChurnScore)
class ChurnScoreAdmin(PublishedOnlyMixin, ReadOnlyAdminMixin, ScopedAdmin):
    result_kind = ResultSet.Kind.CHURN
    list_display = ("client", "tier", "segment", "risk", "p_alive", "clv", "value_at_risk", "top_reason")
    list_filter = (RiskBandFilter, "tier", "segment", "reason_1", "model_used")
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    ordering = ("-value_at_risk", "-id")
    readonly_fields = ("reasons_in_words",)
    show_full_result_count = False

    @admin.display(description="top reason")
    def top_reason(self, score: ChurnScore) -> str:
        return reason_text(score.reasons[0]) if score.reasons else ""

    @admin.display(description="reasons")
    def reasons_in_words(self, score: ChurnScore) -> str:
        return format_html_join(
            "", "<p>{} ({} points)</p>", ((reason_text(r), r.get("points")) for r in score.reasons or [])
        )


@admin.register(ClientActivity)
class ClientActivityAdmin(PublishedOnlyMixin, ReadOnlyAdminMixin, ScopedAdmin):
    result_kind = ResultSet.Kind.ACTIVITY
    list_display = (
        "client",
        "segment",
        "last_trade_on",
        "days_since_last_trade",
        "typical_gap_days",
        "about_to_go_dormant",
        "regulatory_dormant",
    )
    list_filter = ("segment", "about_to_go_dormant", "regulatory_dormant")
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    ordering = ("-days_since_last_trade", "-id")
    show_full_result_count = False


@admin.register(LifetimeFit)
class LifetimeFitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("as_of", "status", "customers", "r", "alpha", "a", "b", "gg_status", "p", "q", "v", "fit_seconds")
    list_filter = ("status",)
