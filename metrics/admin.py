"""Admin for metrics: definitions and snapshots are view-only (the catalogue and the nightly
stage write them); ops enter the monthly marketing spend."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from brokercrm.admin import ReadOnlyAdminMixin
from metrics.models import KpiSnapshot, MarketingSpend, MetricDefinition, MetricValue


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "version", "name", "unit", "effective_from", "created_at")
    list_filter = ("unit",)
    search_fields = ("code", "name")


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("as_of", "population", "rows", "computed_at")
    date_hierarchy = "as_of"


@admin.register(MetricValue)
class MetricValueAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Firm-wide aggregates: for staff with the view permission (ops)."""

    list_display = ("as_of", "definition", "dimension", "key", "value", "numerator", "denominator")
    list_filter = ("dimension", "definition__code")
    list_select_related = ("definition",)
    date_hierarchy = "as_of"
    show_full_result_count = False


class MarketingSpendForm(forms.ModelForm):
    class Meta:
        model = MarketingSpend
        fields = ("month", "branch", "amount", "note")

    def clean_month(self) -> object:
        month = self.cleaned_data["month"]
        if month.day != 1:
            raise forms.ValidationError("Enter the first day of the month (e.g. 2026-06-01).")
        return month


@admin.register(MarketingSpend)
class MarketingSpendAdmin(admin.ModelAdmin):
    form = MarketingSpendForm
    list_display = ("month", "branch", "amount", "note", "entered_by", "entered_at")
    list_filter = ("branch",)

    def save_model(self, request: HttpRequest, obj: MarketingSpend, form: forms.ModelForm, change: bool) -> None:
        obj.entered_by = request.user
        super().save_model(request, obj, form, change)
