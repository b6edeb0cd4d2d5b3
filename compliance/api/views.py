"""Compliance API (/api/v1/compliance/): flags and the review queue, decisions with four eyes,
screening matches, watch lists, suitability records (the gate), the audit trail, exports.

Who may do what:
- compliance officers: everything; only they decide, see unmasked ID numbers (each view
  audited), read the audit trail and export;
- account managers and team leads: the flags of the clients in their scope (that a flag
  exists: kind, severity, status, dates), and suitability records of those clients, which
  they may also record;
- API systems: read flags with their evidence, record and read suitability records;
- ops: Django admin only (403 here).
Out of a user's scope, a flag or client answers 404.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.http import HttpResponse
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
from brokercrm.api.schema import list_responses, lookup_responses
from brokercrm.policy import get_visible_or_404
from brokercrm.roles import COMPLIANCE_OFFICER, has_role
from clients.models import Client, Instrument
from compliance import audit, exports, selectors, services
from compliance.api import filters, serializers
from compliance.models import SEVERITY_CODES, Flag

ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="The rule broken, as `detail` (and `field` if any).")


class HasRole(permissions.BasePermission):
    roles: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and has_role(request.user, *self.roles))


class IsOfficer(HasRole):
    roles = (COMPLIANCE_OFFICER,)


class ReadsFlags(HasRole):
    roles = selectors.FLAG_READERS


class RecordsSuitability(HasRole):
    roles = selectors.SUITABILITY_WRITERS


def _compliance_error(exc: services.ComplianceError) -> Response:
    message = str(exc)
    if message in (services.ComplianceError.NOT_OFFICER, services.ComplianceError.SAME_OFFICER):
        code = status.HTTP_403_FORBIDDEN
    elif message in (
        services.ComplianceError.TAKEN_BY_OTHER,
        services.ComplianceError.PENDING_APPROVAL,
        services.ComplianceError.NOT_ACTIVE,
        services.ComplianceError.NO_PENDING,
    ):
        code = status.HTTP_409_CONFLICT
    else:
        code = status.HTTP_400_BAD_REQUEST
    return Response({"detail": message}, status=code)


class FlagPagination(PageNumberPagination):
    page_size = 50


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.FlagSerializer)))
class FlagListView(generics.ListAPIView):
    """Flags of the clients in the user's scope, highest severity and oldest first (the queue's
    order). Filters: kind, status, severity, branch, client_no, age in days, unassigned,
    pending_approval."""

    serializer_class = serializers.FlagSerializer
    permission_classes = (permissions.IsAuthenticated, ReadsFlags)
    filterset_class = filters.FlagFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = FlagPagination

    def get_queryset(self) -> QuerySet[Flag]:
        return selectors.flag_list(self.request.user).order_by("-severity", "raised_at", "id")

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "full": selectors.sees_evidence(self.request.user)}


FLAG_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Flag id.")


class FlagDetailView(APIView):
    """One flag with its decisions and the client's ID number (unmasked for compliance
    officers only; every such view is recorded in the audit trail)."""

    permission_classes = (permissions.IsAuthenticated, ReadsFlags)

    @extend_schema(parameters=[FLAG_ID], responses=lookup_responses(serializers.FlagDetailSerializer))
    def get(self, request: Request, pk: int) -> Response:
        flag = get_visible_or_404(request.user, selectors.flag_detail_queryset(request.user), prefix="client__", pk=pk)
        full = selectors.sees_evidence(request.user)
        unmasked = selectors.is_officer(request.user)
        if unmasked and getattr(flag.client, "kyc", None) is not None:
            services.id_number_view_audit(by=request.user, clients=[flag.client], where=f"api flag {flag.pk}")
        context = {
            "full": full,
            "unmasked": unmasked,
            "decisions": list(selectors.flag_decisions(flag)) if full else [],
        }
        return Response(serializers.FlagDetailSerializer(flag, context=context).data)


class TakeNextView(APIView):
    """Assign the next flag of the queue (highest severity, oldest) to the calling officer;
    two officers never get the same flag. 204 when the queue is empty."""

    permission_classes = (permissions.IsAuthenticated, IsOfficer)

    @extend_schema(
        request=serializers.TakeNextSerializer,
        responses={
            200: serializers.FlagSerializer,
            204: OpenApiResponse(description="Nothing waiting."),
            **list_responses(serializers.FlagSerializer),
        },
    )
    def post(self, request: Request) -> Response:
        payload = serializers.TakeNextSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        flag = services.flag_take_next(
            officer=request.user,
            kind=data.get("kind"),
            severity=SEVERITY_CODES.get(data.get("severity", "")),
            branch=data.get("branch"),
        )
        if flag is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        flag = selectors.flag_list(request.user).get(pk=flag.pk)
        return Response(serializers.FlagSerializer(flag, context={"full": True}).data)


def _decision_response(request: Request, result: services.DecisionResult) -> Response:
    flag = selectors.flag_list(request.user).get(pk=result.flag.pk)
    data = {"applied": result.applied, "decision": result.decision, "flag": flag}
    return Response(serializers.DecisionResultSerializer(data, context={"full": True}).data)


DECISION_RESPONSES = {
    200: serializers.DecisionResultSerializer,
    400: ERROR,
    403: ERROR,
    404: lookup_responses(serializers.DecisionResultSerializer)[404],
    409: ERROR,
}


class DecideView(APIView):
    """Decide a flag: clear / escalate / restrict (sets the client to restricted), with a note.
    High severity clear/restrict waits for a second, different officer (four eyes)."""

    permission_classes = (permissions.IsAuthenticated, IsOfficer)

    @extend_schema(parameters=[FLAG_ID], request=serializers.DecideSerializer, responses=DECISION_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        flag = get_object_or_404(Flag, pk=pk)
        payload = serializers.DecideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            result = services.flag_decide(flag=flag, officer=request.user, **payload.validated_data)
        except services.ComplianceError as exc:
            return _compliance_error(exc)
        return _decision_response(request, result)


class ApproveView(APIView):
    """A second, different officer approves the pending decision, which is then applied."""

    permission_classes = (permissions.IsAuthenticated, IsOfficer)

    @extend_schema(parameters=[FLAG_ID], request=serializers.ApproveSerializer, responses=DECISION_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        flag = get_object_or_404(Flag, pk=pk)
        payload = serializers.ApproveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            result = services.flag_decision_approve(
                flag=flag, officer=request.user, note=payload.validated_data.get("note", "")
            )
        except services.ComplianceError as exc:
            return _compliance_error(exc)
        return _decision_response(request, result)


class RejectView(APIView):
    """A second officer rejects the pending decision: the flag goes back to the queue."""

    permission_classes = (permissions.IsAuthenticated, IsOfficer)

    @extend_schema(parameters=[FLAG_ID], request=serializers.RejectSerializer, responses=DECISION_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        flag = get_object_or_404(Flag, pk=pk)
        payload = serializers.RejectSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            result = services.flag_decision_reject(flag=flag, officer=request.user, **payload.validated_data)
        except services.ComplianceError as exc:
            return _compliance_error(exc)
        return _decision_response(request, result)


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.ScreeningMatchSerializer)))
class ScreeningMatchListView(generics.ListAPIView):
    """Current watch-list matches, best score first (compliance officers)."""

    serializer_class = serializers.ScreeningMatchSerializer
    permission_classes = (permissions.IsAuthenticated, IsOfficer)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return selectors.screening_match_list().order_by("-score", "id")


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.WatchListSerializer)))
class WatchListListView(generics.ListAPIView):
    """The watch lists loaded (compliance officers); load them with `manage.py import_watchlist`."""

    serializer_class = serializers.WatchListSerializer
    permission_classes = (permissions.IsAuthenticated, IsOfficer)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return selectors.watch_list_list().order_by("name")


class SuitabilityPagination(KeysetPagination):
    page_size = 100
    ordering = ("-recorded_at", "-id")


class SuitabilityListView(generics.ListCreateAPIView):
    """Suitability records of the clients in scope, newest first; POST records a product
    recommendation or an order warning through the gate: a product above the client's risk
    level needs the warning given and the client's acknowledgement; a C1 client above R1 or a
    client without a valid assessment is refused (400 naming the field)."""

    serializer_class = serializers.SuitabilityRecordSerializer
    permission_classes = (permissions.IsAuthenticated, RecordsSuitability)
    filterset_class = filters.SuitabilityFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = SuitabilityPagination
    ordering = ("-recorded_at", "-id")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return selectors.suitability_list(self.request.user).none()
        return selectors.suitability_list(self.request.user)

    @extend_schema(responses=list_responses(serializers.SuitabilityRecordSerializer))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=serializers.SuitabilityCreateSerializer,
        responses={201: serializers.SuitabilityRecordSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        payload = serializers.SuitabilityCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        client = get_visible_or_404(request.user, Client.objects.all(), client_no=data.pop("client_no"))
        symbol = data.pop("instrument")
        instrument = Instrument.objects.filter(symbol=symbol).first()
        if instrument is None:
            raise ValidationError({"instrument": [f"No instrument with symbol {symbol!r}."]})
        try:
            record = services.suitability_record(client=client, instrument=instrument, by=request.user, **data)
        except services.SuitabilityError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        record = selectors.suitability_list(request.user).get(pk=record.pk)
        return Response(serializers.SuitabilityRecordSerializer(record).data, status=status.HTTP_201_CREATED)


class SuitabilityCheckView(APIView):
    """The client's C level against the product's R level, before recommending or ordering."""

    permission_classes = (permissions.IsAuthenticated, RecordsSuitability)

    @extend_schema(
        parameters=[
            OpenApiParameter("client_no", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("instrument", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
        ],
        responses={**lookup_responses(serializers.SuitabilityCheckSerializer), 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        client_no, symbol = request.query_params.get("client_no"), request.query_params.get("instrument")
        params = {"client_no": client_no, "instrument": symbol}
        missing = {name: ["This parameter is required."] for name, value in params.items() if not value}
        if missing:
            raise ValidationError(missing)
        client = get_visible_or_404(request.user, Client.objects.all(), client_no=client_no)
        instrument = Instrument.objects.filter(symbol=symbol).first()
        if instrument is None:
            raise ValidationError({"instrument": [f"No instrument with symbol {symbol!r}."]})
        check = services.suitability_check(client=client, instrument=instrument)
        data = {"client_no": client.client_no, "instrument": instrument.symbol, **check.__dict__}
        return Response(serializers.SuitabilityCheckSerializer(data).data)


class AuditPagination(KeysetPagination):
    page_size = 100
    ordering = ("-seq", "-id")


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.AuditEntrySerializer)))
class AuditListView(generics.ListAPIView):
    """The audit trail, newest first (compliance officers). Read-only: there is no way to
    change or delete an entry."""

    serializer_class = serializers.AuditEntrySerializer
    permission_classes = (permissions.IsAuthenticated, IsOfficer)
    filterset_class = filters.AuditFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = AuditPagination
    ordering = ("-seq", "-id")

    def get_queryset(self) -> QuerySet:
        return selectors.audit_list()


def _date(request: Request, name: str) -> dt.date:
    raw = request.query_params.get(name)
    if not raw:
        raise ValidationError({name: ["This parameter is required (YYYY-MM-DD)."]})
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: ["Enter a date as YYYY-MM-DD."]}) from None


class ExportView(APIView):
    """A regulator's export for a period (inclusive dates, exchange time) as CSV or XLSX:
    flags raised, decisions made, or suitability records. Audited."""

    permission_classes = (permissions.IsAuthenticated, IsOfficer)

    @extend_schema(
        parameters=[
            OpenApiParameter("dataset", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(exports.DATASETS)),
            OpenApiParameter("from", OpenApiTypes.DATE, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("to", OpenApiTypes.DATE, OpenApiParameter.QUERY, required=True),
            OpenApiParameter(
                "file_format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=list(exports.FORMATS),
                description="csv (default) or xlsx.",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): OpenApiTypes.BINARY,
            400: ERROR,
            403: ERROR,
            404: ERROR,
        },
    )
    def get(self, request: Request, dataset: str) -> HttpResponse:
        if dataset not in exports.DATASETS:
            return Response({"detail": f"Unknown dataset; use one of {', '.join(exports.DATASETS)}."}, status=404)
        start, end = _date(request, "from"), _date(request, "to")
        if end < start:
            raise ValidationError({"to": ["Must not be before `from`."]})
        # Not `format`: DRF reads ?format= as a renderer override.
        fmt = request.query_params.get("file_format", "csv")
        if fmt not in exports.FORMATS:
            raise ValidationError({"file_format": [f"Use one of {', '.join(exports.FORMATS)}."]})
        content, content_type, name = exports.export(dataset, exports.Period(start, end), fmt)
        audit.record(
            actor=request.user,
            action=audit.AuditAction.EXPORTED,
            object_type="export",
            object_id=dataset,
            new={"from": start, "to": end, "format": fmt, "bytes": len(content)},
        )
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
