"""Scores API: churn risk with reasons, activity segments and dormancy warnings, per client and as
filterable lists (e.g. VIP and Major clients with risk >= 70, by value at risk), and the
lifetime-model fits. Reads the published nightly results only."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.filters import StableOrderingFilter, StrictFilterBackend
from brokercrm.api.pagination import KeysetPagination, PageNumberPagination
from brokercrm.api.schema import list_responses, lookup_responses
from retention import reasons, selectors
from retention.models import ActivitySegment, ChurnScore, ClientActivity, LifetimeFit
from retention.scoring import reason_text
from segmentation.models import TIER_BY_CODE, TIER_CODES
from segmentation.selectors import sees_aggregates

CLIENT_NO = OpenApiParameter("client_no", OpenApiTypes.STR, OpenApiParameter.PATH, description="Client number.")


# --- serializers -------------------------------------------------------------------------------


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Signal: model, dormant, overdue, decline, outflow, complaints, ...")
    points = serializers.IntegerField(help_text="The signal's share of the risk score.")
    text = serializers.CharField(help_text="The reason in words, in the request's language.")
    facts = serializers.DictField(help_text="The figures behind the reason.")


def _reasons(reasons: list[dict]) -> list[dict]:
    return [{**reason, "text": reason_text(reason)} for reason in reasons or []]


class ChurnScoreSerializer(serializers.ModelSerializer):
    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", default=None, allow_null=True)
    branch = serializers.CharField(source="client.branch.code", default=None, allow_null=True)
    tier = serializers.SerializerMethodField()
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = ChurnScore
        fields = [
            "client_no",
            "client_name",
            "account_manager",
            "branch",
            "as_of",
            "tier",
            "segment",
            "risk",
            "p_alive",
            "expected_trading_days",
            "clv",
            "clv_simple",
            "value_at_risk",
            "model_used",
            "reasons",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=list(TIER_BY_CODE), allow_null=True))
    def get_tier(self, score: ChurnScore) -> str | None:
        return TIER_CODES.get(score.tier)

    @extend_schema_field(ReasonSerializer(many=True))
    def get_reasons(self, score: ChurnScore) -> list[dict]:
        return _reasons(score.reasons)


class ActivitySerializer(serializers.ModelSerializer):
    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", default=None, allow_null=True)
    branch = serializers.CharField(source="client.branch.code", default=None, allow_null=True)

    class Meta:
        model = ClientActivity
        fields = [
            "client_no",
            "client_name",
            "account_manager",
            "branch",
            "as_of",
            "segment",
            "first_trade_on",
            "last_trade_on",
            "days_since_last_trade",
            "trading_days",
            "recent_trading_days",
            "baseline_trading_days",
            "typical_gap_days",
            "overdue_ratio",
            "about_to_go_dormant",
            "regulatory_dormant",
            "cash",
            "market_value",
        ]


class ClientActivityDetailSerializer(ActivitySerializer):
    class Meta(ActivitySerializer.Meta):
        fields = [f for f in ActivitySerializer.Meta.fields if f not in ("client_no", "client_name")]


class ClientChurnDetailSerializer(ChurnScoreSerializer):
    signals = serializers.SerializerMethodField()

    class Meta(ChurnScoreSerializer.Meta):
        fields = [
            f for f in ChurnScoreSerializer.Meta.fields if f not in ("client_no", "client_name", "account_manager")
        ] + ["signals"]

    @extend_schema_field(serializers.DictField(child=serializers.FloatField()))
    def get_signals(self, score: ChurnScore) -> dict[str, float]:
        """{signal: strength 0-1} of the signals present."""
        return score.signals


class ClientScoresSerializer(serializers.Serializer):
    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    activity = ClientActivityDetailSerializer(allow_null=True)
    churn = ClientChurnDetailSerializer(allow_null=True)


class LifetimeFitSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifetimeFit
        fields = [
            "as_of",
            "status",
            "message",
            "time_unit",
            "customers",
            "distinct_rows",
            "r",
            "alpha",
            "a",
            "b",
            "log_likelihood",
            "gg_status",
            "p",
            "q",
            "v",
            "gg_log_likelihood",
            "fit_seconds",
        ]


# --- filters -----------------------------------------------------------------------------------

TIER_CHOICES = [(code, code) for code in TIER_BY_CODE]


class ChurnScoreFilter(django_filters.FilterSet):
    tier = django_filters.MultipleChoiceFilter(
        choices=TIER_CHOICES, method="filter_tier", help_text="Tiers, e.g. ?tier=vip&tier=major."
    )
    segment = django_filters.MultipleChoiceFilter(choices=ActivitySegment.choices, help_text="Activity segments.")
    min_risk = django_filters.NumberFilter(field_name="risk", lookup_expr="gte", min_value=0, max_value=100)
    max_risk = django_filters.NumberFilter(field_name="risk", lookup_expr="lte", min_value=0, max_value=100)
    manager = django_filters.CharFilter(
        field_name="client__account_manager__employee_no", help_text="Employee number of the account manager."
    )
    branch = django_filters.CharFilter(field_name="client__branch__code", help_text="Branch code, e.g. SH01.")
    model_used = django_filters.BooleanFilter()
    reason = django_filters.MultipleChoiceFilter(
        choices=[(name, name) for name in reasons.CODES],
        method="filter_reason",
        help_text="The strongest reason, e.g. ?reason=outflow&reason=losses.",
    )
    min_outflow_share = django_filters.NumberFilter(
        field_name="outflow_share",
        lookup_expr="gte",
        min_value=0,
        max_value=1,
        help_text="Net assets moved out over 30 or 90 days, as a share of the assets before (0-1).",
    )

    class Meta:
        model = ChurnScore
        fields = [
            "tier",
            "segment",
            "min_risk",
            "max_risk",
            "manager",
            "branch",
            "model_used",
            "reason",
            "min_outflow_share",
        ]

    def filter_tier(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(tier__in=[TIER_BY_CODE[code] for code in value]) if value else queryset

    def filter_reason(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(reason_1__in=[reasons.CODES[code] for code in value]) if value else queryset


class ActivityFilter(django_filters.FilterSet):
    segment = django_filters.MultipleChoiceFilter(choices=ActivitySegment.choices)
    about_to_go_dormant = django_filters.BooleanFilter()
    regulatory_dormant = django_filters.BooleanFilter()
    manager = django_filters.CharFilter(field_name="client__account_manager__employee_no")
    branch = django_filters.CharFilter(field_name="client__branch__code")

    class Meta:
        model = ClientActivity
        fields = ["segment", "about_to_go_dormant", "regulatory_dormant", "manager", "branch"]


# --- views -------------------------------------------------------------------------------------


class ScorePagination(KeysetPagination):
    page_size = 100
    ordering = ("-value_at_risk", "-id")


@extend_schema_view(get=extend_schema(responses=list_responses(ChurnScoreSerializer)))
class ChurnScoreListView(generics.ListAPIView):
    """Current churn scores in the user's scope, by value at risk (or `?ordering=-risk`), with
    the reasons in words. E.g. `?tier=vip&tier=major&min_risk=70`."""

    serializer_class = ChurnScoreSerializer
    filterset_class = ChurnScoreFilter
    filter_backends = (StrictFilterBackend, StableOrderingFilter)
    pagination_class = ScorePagination
    ordering_fields = ("value_at_risk", "risk")
    ordering = ("-value_at_risk", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return ChurnScore.objects.none()
        return selectors.churn_scores(user=self.request.user)


class ActivityPagination(KeysetPagination):
    page_size = 100
    ordering = ("-days_since_last_trade", "-id")


@extend_schema_view(get=extend_schema(responses=list_responses(ActivitySerializer)))
class ActivityListView(generics.ListAPIView):
    """Current activity segments in the user's scope: e.g. `?about_to_go_dormant=true`,
    `?segment=dormant`, `?regulatory_dormant=true`; longest idle first."""

    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    filter_backends = (StrictFilterBackend, StableOrderingFilter)
    pagination_class = ActivityPagination
    ordering_fields = ("days_since_last_trade", "trading_days")
    ordering = ("-days_since_last_trade", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return ClientActivity.objects.none()
        return selectors.client_activity_list(user=self.request.user)


@extend_schema_view(get=extend_schema(parameters=[CLIENT_NO], responses=lookup_responses(ClientScoresSerializer)))
class ClientScoresView(APIView):
    """A client's current activity segment, dormancy warnings, churn risk with reasons and CLV."""

    def get(self, request: Request, client_no: str) -> Response:
        record = selectors.client_scores_get(user=request.user, client_no=client_no)
        return Response(ClientScoresSerializer(record).data)


class SeesAggregates(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return sees_aggregates(request.user)


@extend_schema_view(get=extend_schema(responses=list_responses(LifetimeFitSerializer)))
class LifetimeFitListView(generics.ListAPIView):
    """The nightly lifetime-model fits, newest first (parameters, status, fit time)."""

    serializer_class = LifetimeFitSerializer
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return selectors.lifetime_fits()
