"""Filter building blocks shared by the apps' APIs.

Strict by design: a malformed value answers 400 naming the parameter, never a silently
ignored filter (which would hand a system the whole ledger when it asked for one day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.views import APIView

from brokercrm.api.pagination import KeysetPagination
from brokercrm.lib.exchange_time import day_start

INVALID_DATE_OR_DATETIME = (
    "Enter an ISO 8601 date (2025-01-31) or date-time (2025-01-31T09:30:00, 2025-01-31T01:30:00Z, "
    "2025-01-31T09:30:00+08:00)."
)


class DateOrDateTimeField(forms.Field):
    """An ISO 8601 date, or a date-time; a naive date-time is in the exchange time zone."""

    default_error_messages = {"invalid": INVALID_DATE_OR_DATETIME}

    def to_python(self, value: Any) -> dt.date | dt.datetime | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed


@extend_schema_field(
    {
        "type": "string",
        "example": "2025-01-31",
        "description": "Inclusive lower bound: an ISO 8601 date (from the start of that day, exchange time) "
        "or date-time (naive means exchange time).",
    }
)
class DateTimeFromFilter(django_filters.Filter):
    """`field >= value`; a date means the start of that day in the exchange time zone."""

    field_class = DateOrDateTimeField

    def filter(self, qs: QuerySet, value: dt.date | dt.datetime | None) -> QuerySet:
        if value is None:
            return qs
        if not isinstance(value, dt.datetime):
            value = day_start(value)
        return qs.filter(**{f"{self.field_name}__gte": value})


@extend_schema_field(
    {
        "type": "string",
        "example": "2025-01-31",
        "description": "Upper bound: an ISO 8601 date includes that whole day (exchange time); a date-time "
        "is exclusive (naive means exchange time).",
    }
)
class DateTimeBeforeFilter(django_filters.Filter):
    """`field < value` for a date-time; a date includes that whole day (`< start of the next`)."""

    field_class = DateOrDateTimeField

    def filter(self, qs: QuerySet, value: dt.date | dt.datetime | None) -> QuerySet:
        if value is None:
            return qs
        if not isinstance(value, dt.datetime):
            value = day_start(value + dt.timedelta(days=1))
        return qs.filter(**{f"{self.field_name}__lt": value})


class StableOrderingFilter(OrderingFilter):
    """`?ordering=` that answers 400 on an unknown field and always ends in a unique key.

    Without the unique tail, rows tied on the sort field may swap between two page
    queries, so page-number paging would repeat or drop them. The key is the view's
    `ordering_tiebreak` (default "pk"), in the direction of the last term.
    """

    def get_ordering(self, request: Request, queryset: QuerySet, view: APIView) -> list[str]:
        params = request.query_params.get(self.ordering_param)
        if params is not None:  # given but empty is malformed too, not "the default order"
            terms = [term.strip() for term in params.split(",") if term.strip()]
            valid = self.remove_invalid_fields(queryset, terms, view, request)
            if len(valid) != len(terms) or not terms:
                allowed = ", ".join(name for name, _ in self.get_valid_fields(queryset, view, {"request": request}))
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering {params!r}; use fields from: {allowed} (prefix - for descending)."
                        ]
                    }
                )
        else:
            terms = list(self.get_default_ordering(view) or ())
        return self._with_tiebreak(terms, getattr(view, "ordering_tiebreak", "pk"))

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        fields = list(getattr(view, "ordering_fields", None) or ())
        choices = [*fields, *(f"-{field}" for field in fields)]
        default = ",".join(self.get_default_ordering(view) or ())
        if issubclass(getattr(view, "pagination_class", None) or object, KeysetPagination):
            description = f"Sort by this field; prefix - for descending. Default: {default}."
            schema: dict[str, Any] = {"type": "string", "enum": choices}
            style: dict[str, Any] = {}
        else:
            description = f"Sort by these fields, comma-separated; prefix - for descending. Default: {default}."
            schema = {"type": "array", "items": {"type": "string", "enum": choices}}
            style = {"style": "form", "explode": False}
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": description,
                "schema": schema,
                **style,
            }
        ]

    @staticmethod
    def _with_tiebreak(terms: Sequence[str], tiebreak: str) -> list[str]:
        ordering = list(terms)
        if any(term.lstrip("-") == tiebreak for term in ordering):
            return ordering
        descending = bool(ordering) and ordering[-1].startswith("-")
        return [*ordering, f"-{tiebreak}" if descending else tiebreak]


TRUE_VALUES = frozenset({"true", "True"})
FALSE_VALUES = frozenset({"false", "False"})


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter's backend, strict about the query string before the FilterSet reads it.

    django-filter forgives what a browser form sends: an empty value means "no filter", a
    yes/no filter ignores anything but its few spellings of true and false (`?escalated=junk`
    lists everything) and a single-valued filter given twice silently keeps the last value.
    For an API that is a filter silently dropped, so each of these answers 400 naming the
    parameter: an empty value, a value given more than once (except for filters that take a
    list, e.g. `?tier=vip&tier=major`), and a yes/no filter that is not `true` or `false`.
    """

    def get_filterset(self, request: Request, queryset: QuerySet, view: APIView) -> django_filters.FilterSet | None:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            self.check_query(request, filterset)
        return filterset

    @staticmethod
    def check_query(request: Request, filterset: django_filters.FilterSet) -> None:
        errors: dict[str, list[str]] = {}
        for name, flt in filterset.filters.items():
            values = request.query_params.getlist(name)
            if not values:
                continue
            if any(value.strip() == "" for value in values):
                errors[name] = ["Give a value, or leave the parameter out."]
            elif len(values) > 1 and not isinstance(flt, django_filters.MultipleChoiceFilter):
                errors[name] = ["Give this parameter once."]
            elif isinstance(flt, django_filters.BooleanFilter) and values[0] not in TRUE_VALUES | FALSE_VALUES:
                errors[name] = ["Enter true or false."]
        if errors:
            raise ValidationError(errors)
