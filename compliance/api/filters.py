"""Query-string filters of the compliance API: strict (a malformed value answers 400 naming
the parameter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from brokercrm.api.filters import DateTimeBeforeFilter, DateTimeFromFilter
from compliance.models import SEVERITY_CODES, AuditEntry, Flag, FlagKind, FlagStatus, SuitabilityRecord
from compliance.selectors import flag_age_bounds


class FlagFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=FlagKind.choices)
    status = django_filters.MultipleChoiceFilter(choices=FlagStatus.choices)
    severity = django_filters.ChoiceFilter(
        choices=[(code, code) for code in SEVERITY_CODES], method="filter_severity", help_text="low, medium or high."
    )
    branch = django_filters.CharFilter(field_name="client__branch__code", help_text="Branch code.")
    client_no = django_filters.CharFilter(field_name="client__client_no")
    min_age_days = django_filters.NumberFilter(
        method="filter_min_age", min_value=0, help_text="Raised at least this many days ago."
    )
    max_age_days = django_filters.NumberFilter(
        method="filter_max_age", min_value=0, help_text="Raised at most this many days ago."
    )
    unassigned = django_filters.BooleanFilter(field_name="assigned_to", lookup_expr="isnull")
    pending_approval = django_filters.BooleanFilter(help_text="A decision waits for a second officer.")

    class Meta:
        model = Flag
        fields = ["kind", "status", "severity", "branch", "client_no", "pending_approval"]

    def filter_severity(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(severity=SEVERITY_CODES[value]) if value else queryset

    def filter_min_age(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        if value is None:
            return queryset
        _, before = flag_age_bounds(min_days=int(value), max_days=None)
        return queryset.filter(raised_at__lt=before) if before else queryset

    def filter_max_age(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        if value is None:
            return queryset
        after, _ = flag_age_bounds(min_days=None, max_days=int(value))
        return queryset.filter(raised_at__gte=after)


class SuitabilityFilter(django_filters.FilterSet):
    client_no = django_filters.CharFilter(field_name="client__client_no")
    mismatch = django_filters.BooleanFilter()
    recorded_from = DateTimeFromFilter(field_name="recorded_at")
    recorded_before = DateTimeBeforeFilter(field_name="recorded_at")

    class Meta:
        model = SuitabilityRecord
        fields = ["kind", "mismatch"]


class AuditFilter(django_filters.FilterSet):
    client_no = django_filters.CharFilter(field_name="client_no")
    action = django_filters.CharFilter()
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    at_from = DateTimeFromFilter(field_name="at")
    at_before = DateTimeBeforeFilter(field_name="at")

    class Meta:
        model = AuditEntry
        fields = ["action", "object_type", "object_id", "client_no"]
