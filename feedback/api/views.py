"""Feedback API: complaints (list, open, respond, escalate, resolve, the annual register) and
survey answers (list, record), survey questions.

Thin views: selectors scope (brokercrm.policy: a client outside the user's scope is 404),
serializers check shape, services check rules.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.filters import StrictFilterBackend
from brokercrm.api.pagination import KeysetPagination, PageNumberPagination
from brokercrm.api.schema import BAD_REQUEST, NOT_AUTHENTICATED, NOT_FOUND, list_responses, lookup_responses
from brokercrm.policy import get_visible_or_404, sees_all_clients
from clients.models import Client
from feedback import exports, selectors, services
from feedback.api import filters, serializers
from feedback.models import Complaint, SurveyCampaign, SurveyQuestion, SurveyResponse

COMPLAINT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Complaint id.")


def _client(request: Request, client_no: str) -> Client:
    return get_visible_or_404(request.user, Client.objects.select_related("account_manager"), client_no=client_no)


def _bad(exc: services.FeedbackError) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class ComplaintPagination(KeysetPagination):
    page_size = 100
    ordering = ("-opened_at", "-id")


@extend_schema_view(
    get=extend_schema(responses=list_responses(serializers.ComplaintSerializer)),
    post=extend_schema(
        request=serializers.ComplaintCreateSerializer,
        responses={
            201: serializers.ComplaintDetailSerializer,
            400: BAD_REQUEST,
            403: NOT_AUTHENTICATED,
            404: NOT_FOUND,
        },
    ),
)
class ComplaintListView(generics.ListAPIView):
    """Complaints of the clients in the user's scope, newest first, with SLA breach flags as
    of now. POST opens a ticket (its SLA due times come from the severity)."""

    serializer_class = serializers.ComplaintSerializer
    filterset_class = filters.ComplaintFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = ComplaintPagination
    ordering = ("-opened_at", "-id")

    def get_queryset(self) -> QuerySet[Complaint]:
        return selectors.complaint_list(user=self.request.user)

    def post(self, request: Request) -> Response:
        payload = serializers.ComplaintCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        client = _client(request, data.pop("client_no"))
        try:
            complaint = services.complaint_open(client=client, by=request.user, **data)
        except services.FeedbackError as exc:
            return _bad(exc)
        complaint = selectors.complaint_get(user=request.user, pk=complaint.pk)
        return Response(serializers.ComplaintDetailSerializer(complaint).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(parameters=[COMPLAINT_ID], responses=lookup_responses(serializers.ComplaintDetailSerializer))
)
class ComplaintDetailView(APIView):
    """One complaint with its audit trail; 404 outside the user's scope."""

    def get(self, request: Request, pk: int) -> Response:
        return Response(serializers.ComplaintDetailSerializer(selectors.complaint_get(user=request.user, pk=pk)).data)


class _ComplaintActionView(APIView):
    input_serializer: type = serializers.ComplaintRespondSerializer

    def act(self, request: Request, complaint: Complaint, data: dict) -> Complaint:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        complaint = selectors.complaint_get(user=request.user, pk=pk)
        payload = self.input_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            self.act(request, complaint, dict(payload.validated_data))
        except services.FeedbackError as exc:
            return _bad(exc)
        return Response(serializers.ComplaintDetailSerializer(selectors.complaint_get(user=request.user, pk=pk)).data)


def _action_schema(serializer: type) -> dict:
    return {
        "parameters": [COMPLAINT_ID],
        "request": serializer,
        "responses": {**lookup_responses(serializers.ComplaintDetailSerializer), 400: BAD_REQUEST},
    }


class ComplaintRespondView(_ComplaintActionView):
    """Record the first response to the client."""

    input_serializer = serializers.ComplaintRespondSerializer

    @extend_schema(**_action_schema(serializers.ComplaintRespondSerializer))
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, complaint: Complaint, data: dict) -> Complaint:
        return services.complaint_respond(complaint=complaint, by=request.user, **data)


class ComplaintEscalateView(_ComplaintActionView):
    """Escalate an unresolved complaint, with a reason."""

    input_serializer = serializers.ComplaintEscalateSerializer

    @extend_schema(**_action_schema(serializers.ComplaintEscalateSerializer))
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, complaint: Complaint, data: dict) -> Complaint:
        return services.complaint_escalate(complaint=complaint, by=request.user, **data)


class ComplaintResolveView(_ComplaintActionView):
    """Resolve a complaint with its root cause and resolution."""

    input_serializer = serializers.ComplaintResolveSerializer

    @extend_schema(**_action_schema(serializers.ComplaintResolveSerializer))
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, request: Request, complaint: Complaint, data: dict) -> Complaint:
        return services.complaint_resolve(complaint=complaint, by=request.user, **data)


class SeesAllClients(permissions.BasePermission):
    """The firm-wide roles (compliance, ops, API systems): the register covers every client."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return sees_all_clients(request.user)


class ComplaintRegisterView(APIView):
    """The complaints register of a calendar year (every complaint opened that year, exchange
    time), for the regulator: CSV (UTF-8 with BOM) or XLSX. Firm-wide roles only."""

    permission_classes = (permissions.IsAuthenticated, SeesAllClients)

    @extend_schema(
        parameters=[
            OpenApiParameter("year", OpenApiTypes.INT, OpenApiParameter.QUERY, required=True, description="e.g. 2026"),
            OpenApiParameter(
                "file_format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=["csv", "xlsx"],
                description="Default csv.",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The register."),
            (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The register."
            ),
            400: BAD_REQUEST,
            403: NOT_AUTHENTICATED,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        year = register_year(request.query_params.get("year"))
        file_format = request.query_params.get("file_format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise ValidationError({"file_format": ["Expected csv or xlsx."]})
        rows = selectors.register_rows(year=year)
        if file_format == "csv":
            body, content_type = exports.register_csv(rows), "text/csv; charset=utf-8"
        else:
            body = exports.register_xlsx(rows, year=year)
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="complaints-register-{year}.{file_format}"'
        return response


def register_year(raw: str | None) -> int:
    this_year = timezone.localdate().year
    try:
        year = int(raw or "")
    except ValueError:
        raise ValidationError({"year": [f"Expected a year from 2000 to {this_year}, e.g. {this_year}."]}) from None
    if not 2000 <= year <= this_year:
        raise ValidationError({"year": [f"Expected a year from 2000 to {this_year}, e.g. {this_year}."]})
    return year


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.SurveyQuestionSerializer)))
class SurveyQuestionListView(generics.ListAPIView):
    """Active survey questions (CSAT 1-5, NPS 0-10)."""

    serializer_class = serializers.SurveyQuestionSerializer
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet[SurveyQuestion]:
        return selectors.survey_questions()


class SurveyResponsePagination(KeysetPagination):
    page_size = 100
    ordering = ("-answered_at", "-id")


@extend_schema_view(
    get=extend_schema(responses=list_responses(serializers.SurveyResponseSerializer)),
    post=extend_schema(
        request=serializers.SurveyResponseCreateSerializer,
        responses={201: serializers.SurveyResponseSerializer, 400: BAD_REQUEST, 403: NOT_AUTHENTICATED, 404: NOT_FOUND},
    ),
)
class SurveyResponseListView(generics.ListAPIView):
    """Survey answers of the clients in the user's scope, newest first. POST records an
    answer: the survey system (API role) for any client, an account manager for their own
    clients. An NPS answer of 0-6 opens a follow-up task for the account manager."""

    serializer_class = serializers.SurveyResponseSerializer
    filterset_class = filters.SurveyResponseFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = SurveyResponsePagination
    ordering = ("-answered_at", "-id")

    def get_queryset(self) -> QuerySet[SurveyResponse]:
        return selectors.survey_response_list(user=self.request.user)

    def post(self, request: Request) -> Response:
        payload = serializers.SurveyResponseCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        client = _client(request, data.pop("client_no"))
        question = SurveyQuestion.objects.filter(pk=data.pop("question")).first()
        if question is None:
            raise ValidationError({"question": ["Expected the id of a survey question."]})
        campaign_id = data.pop("campaign", None)
        campaign = SurveyCampaign.objects.filter(pk=campaign_id).first() if campaign_id else None
        if campaign_id and campaign is None:
            raise ValidationError({"campaign": ["Expected the id of a survey campaign."]})
        if not services.can_record_answer(request.user, client):
            return Response({"detail": services.FeedbackError.NOT_ALLOWED_TO_ANSWER}, status=status.HTTP_403_FORBIDDEN)
        try:
            response = services.survey_response_record(
                client=client, question=question, campaign=campaign, by=request.user, **data
            )
        except services.FeedbackError as exc:
            return _bad(exc)
        return Response(serializers.SurveyResponseSerializer(response).data, status=status.HTTP_201_CREATED)
