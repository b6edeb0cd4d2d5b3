"""FilterSets of the retention-work API. Strict: an unknown choice or a malformed date answers 400."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from retention.work.models import (
    Callback,
    CallbackKind,
    CallbackStatus,
    RetentionTask,
    TaskKind,
    TaskSource,
    TaskStatus,
)


class IntegerFilter(django_filters.Filter):
    """A whole number (NumberFilter would accept 2.5)."""

    field_class = forms.IntegerField


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    kind = django_filters.ChoiceFilter(choices=TaskKind.choices)
    source = django_filters.ChoiceFilter(choices=TaskSource.choices)
    mine = django_filters.BooleanFilter(method="filter_mine", help_text="true: only tasks assigned to me.")
    assignee = django_filters.CharFilter(field_name="assignee__username", help_text="Username of the assignee.")
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    manager = django_filters.CharFilter(
        field_name="client__account_manager__employee_no", help_text="Employee number of the account manager."
    )
    due_before = django_filters.DateFilter(field_name="due", lookup_expr="lte", help_text="Due on or before.")
    due_after = django_filters.DateFilter(field_name="due", lookup_expr="gte", help_text="Due on or after.")
    playbook = IntegerFilter(field_name="playbook_id", help_text="Playbook id.")

    class Meta:
        model = RetentionTask
        fields = ["status", "kind", "source", "mine", "assignee", "client", "manager", "due_before", "due_after"]

    def filter_mine(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        user = self.request.user
        return queryset.filter(assignee=user) if value else queryset.exclude(assignee=user)


class CallbackFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=CallbackKind.choices)
    status = django_filters.ChoiceFilter(choices=CallbackStatus.choices)
    year = IntegerFilter(field_name="year")
    client = django_filters.CharFilter(field_name="client__client_no")
    due_before = django_filters.DateFilter(field_name="due", lookup_expr="lte")

    class Meta:
        model = Callback
        fields = ["kind", "status", "year", "client", "due_before"]
