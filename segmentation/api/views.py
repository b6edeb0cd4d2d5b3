"""Segmentation API: current tiers, a client's tier history and overrides, tier runs, Pareto,
migration, the reactivation list, needs profiles and the nightly run records.

Thin views: selectors scope and join, FilterSets parse, serializers shape.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.filters import StrictFilterBackend
from brokercrm.api.pagination import KeysetPagination, PageNumberPagination
from brokercrm.api.schema import BAD_REQUEST, NOT_FOUND, THROTTLED, list_responses, lookup_responses
from brokercrm.policy import get_visible_or_404
from clients.models import Client
from segmentation import selectors, services
from segmentation.api import filters, serializers
from segmentation.models import ReactivationCandidate, TierOverride, TierResult

CLIENT_NO = OpenApiParameter("client_no", OpenApiTypes.STR, OpenApiParameter.PATH, description="Client number.")
AS_OF = OpenApiParameter(
    "as_of", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="As-of date (default: the current one)."
)


def _date_param(request: Request, name: str, *, required: bool = False) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        if required:
            raise ValidationError({name: ["This parameter is required (YYYY-MM-DD)."]})
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: ["Enter a date as YYYY-MM-DD."]}) from None


TIERS_NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No tiers stored for the as-of date.")


class SeesAggregates(permissions.BasePermission):
    """Firm-wide figures: team leads, compliance, ops, API systems."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return selectors.sees_aggregates(request.user)


class TierPagination(KeysetPagination):
    """Best first: (rank, client id); the client id makes the order total."""

    page_size = 100
    ordering = ("rank", "client_id")


@extend_schema_view(
    get=extend_schema(
        parameters=[AS_OF],
        responses={**list_responses(serializers.TierRowSerializer), 404: TIERS_NOT_FOUND},
    )
)
class TierListView(generics.ListAPIView):
    """Tiers of the clients in the user's scope on the current (or given) as-of date, best first."""

    serializer_class = serializers.TierRowSerializer
    filterset_class = filters.TierFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = TierPagination
    ordering = ("rank", "client_id")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request data
            return TierResult.objects.none()
        return selectors.tier_list(user=self.request.user, as_of=_date_param(self.request, "as_of"))


@extend_schema_view(
    get=extend_schema(parameters=[CLIENT_NO], responses=lookup_responses(serializers.ClientTierHistorySerializer))
)
class ClientTierHistoryView(APIView):
    """A client's current computed tier, every tier change and every override (with audit)."""

    def get(self, request: Request, client_no: str) -> Response:
        record = selectors.client_tier_history(user=request.user, client_no=client_no)
        return Response(serializers.ClientTierHistorySerializer(record).data)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.TierRunSerializer)))
class TierRunListView(generics.ListAPIView):
    """Published tier runs, newest first: counts per tier, changes, retention."""

    serializer_class = serializers.TierRunSerializer
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return selectors.tier_runs()


class ParetoView(APIView):
    """The Pareto staircase of an as-of date: per tier its clients and commission, and the
    commission share of the top 20% of clients."""

    permission_classes = (permissions.IsAuthenticated, SeesAggregates)

    @extend_schema(parameters=[AS_OF], responses={**lookup_responses(serializers.ParetoSerializer), 400: BAD_REQUEST})
    def get(self, request: Request) -> Response:
        run = selectors.tier_run_get(as_of=_date_param(request, "as_of"))
        return Response(serializers.ParetoSerializer(run).data)


class MigrationView(APIView):
    """Clients by tier on one date (rows) and another (columns); default: the previous run
    against the current one."""

    permission_classes = (permissions.IsAuthenticated, SeesAggregates)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Earlier date."),
            OpenApiParameter("to", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Later date."),
        ],
        responses={**lookup_responses(serializers.MigrationSerializer), 400: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        to_as_of = _date_param(request, "to")
        from_as_of = _date_param(request, "from")
        if from_as_of is None:
            run = selectors.tier_run_get(as_of=to_as_of)
            to_as_of, from_as_of = run.as_of, run.previous_as_of
            if from_as_of is None:
                raise ValidationError({"from": ["The current run has no previous run: give `from`."]})
        elif to_as_of is None:
            to_as_of = selectors.tier_run_get().as_of
        matrix = selectors.tier_migration(from_as_of=from_as_of, to_as_of=to_as_of)
        data = {"from_as_of": from_as_of, "to_as_of": to_as_of, "matrix": matrix}
        return Response(serializers.MigrationSerializer(data).data)


class ReactivationPagination(KeysetPagination):
    page_size = 100
    ordering = ("-assets", "-id")


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.ReactivationSerializer)))
class ReactivationListView(generics.ListAPIView):
    """High assets, low activity: clients in the top asset decile with commission in the bottom
    half (the user's scope), richest first. A list for reactivation calls, not a tier."""

    serializer_class = serializers.ReactivationSerializer
    filterset_class = filters.ReactivationFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = ReactivationPagination
    ordering = ("-assets", "-id")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no database reads
            return ReactivationCandidate.objects.none()
        return selectors.reactivation_list(user=self.request.user)


@extend_schema_view(
    get=extend_schema(parameters=[CLIENT_NO], responses=lookup_responses(serializers.NeedsProfileSerializer))
)
class ClientNeedsView(APIView):
    """The client's needs profile: behaviour, product and channel preferences."""

    def get(self, request: Request, client_no: str) -> Response:
        profile = selectors.needs_profile_get(user=request.user, client_no=client_no)
        return Response(serializers.NeedsProfileSerializer(profile).data)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.NightlyRunSerializer)))
class NightlyRunListView(generics.ListAPIView):
    """Nightly run records, newest as-of date first, with the stages of the latest attempt."""

    serializer_class = serializers.NightlyRunSerializer
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return selectors.nightly_runs()


class NightlyRunDetailView(APIView):
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE, OpenApiParameter.PATH)],
        responses={**lookup_responses(serializers.NightlyRunSerializer), 400: BAD_REQUEST},
    )
    def get(self, request: Request, as_of: str) -> Response:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise ValidationError({"as_of": ["Enter a date as YYYY-MM-DD."]}) from None
        run = get_object_or_404(selectors.nightly_runs(), as_of=day)
        return Response(serializers.NightlyRunSerializer(run).data)


OVERRIDE_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="400: a malformed body (fields mapped to their errors) or a broken rule (`detail`); 403: not signed "
    "in, or neither ops nor the client's team lead (`detail`).",
)


def _override_error(exc: services.OverrideError) -> Response:
    code = status.HTTP_403_FORBIDDEN if str(exc) == services.OverrideError.NOT_ALLOWED else status.HTTP_400_BAD_REQUEST
    return Response({"detail": str(exc)}, status=code)


class ClientTierOverrideView(APIView):
    """Set a manual tier (ops, or the client's team lead) with a reason and an expiry."""

    @extend_schema(
        parameters=[CLIENT_NO],
        request=serializers.OverrideCreateSerializer,
        responses={
            201: serializers.OverrideSerializer,
            400: OVERRIDE_ERROR,
            403: OVERRIDE_ERROR,
            404: NOT_FOUND,
            429: THROTTLED,
        },
    )
    def post(self, request: Request, client_no: str) -> Response:
        client = get_visible_or_404(request.user, Client.objects.all(), client_no=client_no)
        if not services.can_override_tier(request.user, client):
            # Refused before the body is read: a role that may not override learns nothing from a 400.
            return _override_error(services.OverrideError(services.OverrideError.NOT_ALLOWED))
        payload = serializers.OverrideCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            override = services.tier_override_create(client=client, by=request.user, **payload.validated_data)
        except services.OverrideError as exc:
            return _override_error(exc)
        return Response(serializers.OverrideSerializer(override).data, status=status.HTTP_201_CREATED)


class TierOverrideEndView(APIView):
    """End an override now (with a reason); the computed tier applies again."""

    @extend_schema(
        request=serializers.OverrideEndSerializer,
        responses={**lookup_responses(serializers.OverrideSerializer), 400: OVERRIDE_ERROR, 403: OVERRIDE_ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        override = get_visible_or_404(
            request.user, TierOverride.objects.select_related("client"), prefix="client__", pk=pk
        )
        if not services.can_override_tier(request.user, override.client):
            return _override_error(services.OverrideError(services.OverrideError.NOT_ALLOWED))
        payload = serializers.OverrideEndSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            override = services.tier_override_end(override=override, by=request.user, **payload.validated_data)
        except services.OverrideError as exc:
            return _override_error(exc)
        return Response(serializers.OverrideSerializer(override).data)
