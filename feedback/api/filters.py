"""FilterSets of the feedback API. Strict: an unknown choice or malformed date answers 400."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from brokercrm.api.filters import DateTimeBeforeFilter, DateTimeFromFilter
from feedback.models import (
    Complaint,
    ComplaintCategory,
    ComplaintChannel,
    ComplaintSeverity,
    ComplaintStatus,
    QuestionKind,
    SurveyResponse,
)


class IntegerFilter(django_filters.Filter):
    """An exact whole number: `?campaign=0.5` answers 400 (NumberFilter would accept it)."""

    field_class = forms.IntegerField


BREACH_CHOICES = [("any", "any"), ("first_response", "first_response"), ("resolution", "resolution"), ("none", "none")]


class ComplaintFilter(django_filters.FilterSet):
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    status = django_filters.ChoiceFilter(choices=ComplaintStatus.choices)
    severity = django_filters.ChoiceFilter(choices=ComplaintSeverity.choices)
    category = django_filters.ChoiceFilter(choices=ComplaintCategory.choices)
    channel = django_filters.ChoiceFilter(choices=ComplaintChannel.choices)
    escalated = django_filters.BooleanFilter(field_name="escalated_at", lookup_expr="isnull", exclude=True)
    breached = django_filters.ChoiceFilter(
        choices=BREACH_CHOICES,
        method="filter_breached",
        help_text="SLA breach as of now: any, first_response, resolution, or none (no breach).",
    )
    opened_after = DateTimeFromFilter(field_name="opened_at")
    opened_before = DateTimeBeforeFilter(field_name="opened_at")

    class Meta:
        model = Complaint
        fields = ["client", "status", "severity", "category", "channel", "escalated", "breached"]

    def filter_breached(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        first, resolution = Q(first_response_breached=True), Q(resolution_breached=True)
        condition = {"any": first | resolution, "first_response": first, "resolution": resolution}.get(value)
        return queryset.exclude(first | resolution) if condition is None else queryset.filter(condition)


class SurveyResponseFilter(django_filters.FilterSet):
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    kind = django_filters.ChoiceFilter(choices=QuestionKind.choices)
    campaign = IntegerFilter(field_name="campaign_id", help_text="Campaign id.")
    answered_after = DateTimeFromFilter(field_name="answered_at")
    answered_before = DateTimeBeforeFilter(field_name="answered_at")

    class Meta:
        model = SurveyResponse
        fields = ["client", "kind", "campaign"]
