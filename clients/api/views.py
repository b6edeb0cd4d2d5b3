"""Read-only API over clients, the ledger and instruments.

Thin views: the selectors apply the permission policy and the joins, the FilterSets
parse the query string, the serializers shape the output. Every role may read; what a
user sees is decided by brokercrm.policy (a user without a role sees no client).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics

from brokercrm.api.filters import StableOrderingFilter, StrictFilterBackend
from brokercrm.api.pagination import KeysetPagination, LedgerPagination, PageNumberPagination
from brokercrm.api.schema import list_responses, lookup_responses
from brokercrm.roles import COMPLIANCE_OFFICER, has_role
from clients import selectors
from clients.api import filters, serializers
from clients.models import AssetSnapshot, CashFlow, Client, Instrument, Interaction, Trade

FILTER_BACKENDS = (StrictFilterBackend, StableOrderingFilter)

CLIENT_NO = OpenApiParameter(
    "client_no", OpenApiTypes.STR, OpenApiParameter.PATH, description="The back-office client number."
)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.ClientSerializer)))
class ClientListView(generics.ListAPIView):
    """Clients in the user's scope, by client number unless `?ordering=` says otherwise."""

    serializer_class = serializers.ClientSerializer
    filterset_class = filters.ClientFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = PageNumberPagination
    ordering_fields = ("client_no", "name", "opened_on", "status")
    ordering = ("client_no",)
    ordering_tiebreak = "client_no"

    def get_queryset(self) -> QuerySet[Client]:
        return selectors.client_list(user=self.request.user)


@extend_schema_view(
    get=extend_schema(parameters=[CLIENT_NO], responses=lookup_responses(serializers.ClientDetailSerializer))
)
class ClientDetailView(generics.RetrieveAPIView):
    """One client with KYC summary and current risk level; 404 outside the user's scope.

    The ID number is masked except for compliance officers.
    """

    serializer_class = serializers.ClientDetailSerializer

    def get_queryset(self) -> QuerySet[Client]:
        # Only the schema generator asks for it (to learn the model); get_object does the lookup.
        return selectors.client_list(user=self.request.user)

    def get_object(self) -> Client:
        client = selectors.client_get(user=self.request.user, client_no=self.kwargs["client_no"])
        if self._reveals() and getattr(client, "kyc", None) is not None:
            # Every view of an unmasked ID number is in the audit trail (who, when, which client).
            from compliance.services import id_number_view_audit

            id_number_view_audit(by=self.request.user, clients=[client], where="api client detail")
        return client

    def _reveals(self) -> bool:
        return has_role(self.request.user, COMPLIANCE_OFFICER)

    def get_serializer_context(self) -> dict[str, object]:
        return {**super().get_serializer_context(), "reveal_identifiers": self._reveals()}


@extend_schema_view(
    get=extend_schema(
        parameters=[CLIENT_NO], responses=lookup_responses(serializers.InteractionSerializer, is_list=True)
    )
)
class ClientInteractionListView(generics.ListAPIView):
    """Contacts with one client, newest first; 404 when the client is outside the user's scope."""

    serializer_class = serializers.InteractionSerializer
    filterset_class = filters.InteractionFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = KeysetPagination
    ordering_fields = ("occurred_at",)
    ordering = ("-occurred_at", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet[Interaction]:
        if getattr(self, "swagger_fake_view", False):
            return Interaction.objects.none()
        return selectors.interaction_list(user=self.request.user, client_no=self.kwargs["client_no"])


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.TradeSerializer)))
class TradeListView(generics.ListAPIView):
    """Executions of the clients in the user's scope, newest first, keyset-paginated."""

    serializer_class = serializers.TradeSerializer
    filterset_class = filters.TradeFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = LedgerPagination
    ordering_fields = ("executed_at",)
    ordering = ("-executed_at", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet[Trade]:
        return selectors.trade_list(user=self.request.user)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.CashFlowSerializer)))
class CashFlowListView(generics.ListAPIView):
    """Deposits and withdrawals of the clients in the user's scope, newest first."""

    serializer_class = serializers.CashFlowSerializer
    filterset_class = filters.CashFlowFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = LedgerPagination
    ordering_fields = ("occurred_at",)
    ordering = ("-occurred_at", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet[CashFlow]:
        return selectors.cash_flow_list(user=self.request.user)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.AssetSnapshotSerializer)))
class AssetSnapshotListView(generics.ListAPIView):
    """End-of-day custody snapshots of the clients in the user's scope, latest day first."""

    serializer_class = serializers.AssetSnapshotSerializer
    filterset_class = filters.AssetSnapshotFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = LedgerPagination
    ordering_fields = ("as_of",)
    ordering = ("-as_of", "-id")
    ordering_tiebreak = "id"

    def get_queryset(self) -> QuerySet[AssetSnapshot]:
        return selectors.asset_snapshot_list(user=self.request.user)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.InstrumentSerializer)))
class InstrumentListView(generics.ListAPIView):
    """Instruments: reference data, the same for every signed-in user."""

    serializer_class = serializers.InstrumentSerializer
    filterset_class = filters.InstrumentFilter
    filter_backends = FILTER_BACKENDS
    pagination_class = PageNumberPagination
    ordering_fields = ("symbol", "name", "risk_level")
    ordering = ("symbol",)
    ordering_tiebreak = "symbol"

    def get_queryset(self) -> QuerySet[Instrument]:
        return selectors.instrument_list()
