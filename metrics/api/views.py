"""Metrics API: the dashboard bundle of the latest snapshot, metric time series, definitions.

Rows are scoped by metrics.selectors.row_scope (an account manager: their own rows; a team
lead: their team's managers; compliance, ops, API systems: all).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.pagination import KeysetPagination, PageNumberPagination
from brokercrm.api.schema import list_responses, lookup_responses
from metrics import definitions as catalogue
from metrics import selectors
from metrics.api import serializers
from metrics.models import Dimension, MetricDefinition, MetricValue


class DashboardView(APIView):
    """The latest KPI snapshot's rows in the user's scope: a fixed number of queries."""

    @extend_schema(responses=lookup_responses(serializers.DashboardSerializer))
    def get(self, request: Request) -> Response:
        snapshot, rows = selectors.dashboard(user=request.user)
        data = {
            "as_of": snapshot.as_of if snapshot else None,
            "computed_at": snapshot.computed_at if snapshot else None,
            "left_out": snapshot.detail.get("left_out", {}) if snapshot else {},
            "rows": rows,
        }
        return Response(serializers.DashboardSerializer(data).data)


def _date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: ["Enter a date as YYYY-MM-DD."]}) from None


class SeriesPagination(KeysetPagination):
    page_size = 200
    ordering = ("as_of", "id")


SERIES_PARAMETERS = [
    OpenApiParameter("metric", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, enum=list(catalogue.CODES)),
    OpenApiParameter("dimension", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=list(Dimension.values)),
    OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.QUERY, description="Tier code, manager or branch id."),
    OpenApiParameter("from", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="First as-of date."),
    OpenApiParameter("to", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Last as-of date."),
    OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Default: the one in force."),
]


@extend_schema_view(
    get=extend_schema(parameters=SERIES_PARAMETERS, responses=list_responses(serializers.MetricValueSerializer))
)
class SeriesView(generics.ListAPIView):
    """One metric over time, oldest first, filtered by dimension, key and dates."""

    serializer_class = serializers.MetricValueSerializer
    pagination_class = SeriesPagination
    filter_backends = ()
    ordering = ("as_of", "id")

    def get_queryset(self) -> QuerySet[MetricValue]:
        if getattr(self, "swagger_fake_view", False):
            return MetricValue.objects.none()
        params = self.request.query_params
        code = params.get("metric")
        if code not in catalogue.CODES:
            raise ValidationError({"metric": [f"Expected one of {', '.join(catalogue.CODES)}."]})
        dimension = params.get("dimension")
        if dimension is not None and dimension not in Dimension.values:
            raise ValidationError({"dimension": [f"Expected one of {', '.join(Dimension.values)}."]})
        version = params.get("version")
        if version is not None and not version.isdigit():
            raise ValidationError({"version": ["Expected a whole number of at least 1."]})
        return selectors.series(
            user=self.request.user,
            code=code,
            dimension=dimension,
            key=params.get("key"),
            date_from=_date(self.request, "from"),
            date_to=_date(self.request, "to"),
            version=int(version) if version is not None else None,
        )


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.MetricDefinitionSerializer)))
class DefinitionListView(generics.ListAPIView):
    """Every metric definition version: what each number means."""

    serializer_class = serializers.MetricDefinitionSerializer
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet[MetricDefinition]:
        return MetricDefinition.objects.order_by("code", "version")
