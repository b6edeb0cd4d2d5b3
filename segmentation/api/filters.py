"""FilterSets of the segmentation API. Strict: an unknown tier or change answers 400."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from segmentation.models import MOVE_CODES, TIER_BY_CODE, ReactivationCandidate, TierResult


class TierFilter(django_filters.FilterSet):
    tier = django_filters.ChoiceFilter(
        choices=[(code, code) for code in TIER_BY_CODE],
        method="filter_tier",
        help_text="Effective tier (an override in force wins over the computed tier).",
    )
    computed_tier = django_filters.ChoiceFilter(
        choices=[(code, code) for code in TIER_BY_CODE], method="filter_computed_tier", help_text="Computed tier."
    )
    manager = django_filters.CharFilter(
        field_name="client__account_manager__employee_no", help_text="Employee number of the account manager."
    )
    branch = django_filters.CharFilter(field_name="client__branch__code", help_text="Branch code, e.g. SH01.")
    change = django_filters.ChoiceFilter(
        choices=[(name, name) for name in MOVE_CODES],
        method="filter_change",
        help_text="Change against the previous run: up, down, same or new.",
    )

    class Meta:
        model = TierResult
        fields = ["tier", "computed_tier", "manager", "branch", "change"]

    def filter_tier(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_tier=TIER_BY_CODE[value])

    def filter_computed_tier(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tier=TIER_BY_CODE[value])

    def filter_change(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(change=MOVE_CODES[value])


class ReactivationFilter(django_filters.FilterSet):
    manager = django_filters.CharFilter(field_name="client__account_manager__employee_no")
    branch = django_filters.CharFilter(field_name="client__branch__code")

    class Meta:
        model = ReactivationCandidate
        fields = ["manager", "branch"]
