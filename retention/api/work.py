"""Retention-work API: tasks, playbooks, regulatory callbacks, service entitlements, campaigns.

Thin views: selectors scope (brokercrm.policy: out of scope = 404), serializers check shape,
services check rules (their errors answer 400 with the message naming the field).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.filters import StrictFilterBackend
from brokercrm.api.pagination import KeysetPagination, PageNumberPagination
from brokercrm.api.schema import BAD_REQUEST, FORBIDDEN, THROTTLED, list_responses, lookup_responses
from brokercrm.policy import sees_all_clients, visible_clients
from brokercrm.roles import COMPLIANCE_OFFICER, OPS, TEAM_LEAD, has_role
from retention import services
from retention.api import work_filters as filters
from retention.api import work_serializers as serializers
from retention.work import callbacks, campaigns, entitlements, selectors
from retention.work.models import (
    Campaign,
    Playbook,
    RetentionTask,
    ServiceProduct,
    TaskSource,
    TaskStatus,
)

ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
CLIENT_NO = OpenApiParameter("client_no", OpenApiTypes.STR, OpenApiParameter.PATH, description="Client number.")


def _bad_request(exc: Exception) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


def _user_by_username(field: str, username: str) -> object:
    try:
        return get_user_model().objects.get(username=username, is_active=True)
    except get_user_model().DoesNotExist:
        raise ValidationError({field: [f"No active user named {username!r}."]}) from None


def _workable(request: Request, pk: int) -> RetentionTask:
    """The task, if the user sees it (else 404) and may work it (else 403)."""
    task = selectors.task_get(user=request.user, pk=pk)
    try:
        services.task_check_can_work(request.user, task)
    except services.TaskError as exc:
        raise PermissionDenied(str(exc)) from exc
    return task


class SeesAggregates(permissions.BasePermission):
    """Firm-wide figures and set-up: team leads, compliance, ops, API systems."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return sees_all_clients(user) or (user.is_authenticated and has_role(user, TEAM_LEAD))


class ComplianceOrOps(permissions.BasePermission):
    """Drawing the callback sample and running campaigns: compliance officers and ops."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user.is_authenticated and (user.is_superuser or has_role(user, COMPLIANCE_OFFICER, OPS)))


# --- tasks -------------------------------------------------------------------------------


class TaskPagination(KeysetPagination):
    """Soonest due first: (due, id)."""

    page_size = 50
    ordering = ("due", "id")


class TaskListView(generics.ListAPIView):
    """Retention tasks of the clients in the user's scope, soonest due first; `?mine=true` for
    the tasks assigned to me, `?status=open` for the day's work."""

    serializer_class = serializers.TaskSerializer
    filterset_class = filters.TaskFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = TaskPagination
    ordering = ("due", "id")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return RetentionTask.objects.none()
        return selectors.task_list(user=self.request.user)

    @extend_schema(responses=list_responses(serializers.TaskSerializer))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=serializers.TaskCreateSerializer,
        responses={201: serializers.TaskSerializer, 400: BAD_REQUEST, **lookup_responses(serializers.TaskSerializer)},
    )
    def post(self, request: Request) -> Response:
        """Open a task by hand (source: a person) for a client in the user's scope."""
        payload = serializers.TaskCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        client = selectors.client_get(user=request.user, client_no=data["client_no"])
        assignee = _user_by_username("assignee", data["assignee"]) if "assignee" in data else None
        if assignee is not None and not visible_clients(assignee).filter(pk=client.pk).exists():
            raise ValidationError({"assignee": [f"{assignee.get_username()} may not see this client."]})
        try:
            task = services.open_task(
                client=client,
                kind=data["kind"],
                reason_code="manual",
                reason_text=data["reason_text"],
                due=data["due"],
                priority=data["priority"],
                source=TaskSource.PERSON,
                assignee=assignee,
                created_by=request.user,
            )
        except services.TaskError as exc:
            return _bad_request(exc)
        task = selectors.task_get(user=request.user, pk=task.pk)
        return Response(serializers.TaskSerializer(task).data, status=status.HTTP_201_CREATED)


class TaskWorkloadView(APIView):
    """Open tasks per assignee and kind in the user's scope (a team lead: the team's day of work)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "due_by", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Only tasks due on or before."
            )
        ],
        responses={
            200: serializers.TaskWorkloadSerializer(many=True),
            400: BAD_REQUEST,
            403: FORBIDDEN,
            429: THROTTLED,
        },
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("due_by")
        try:
            due_by = dt.date.fromisoformat(raw) if raw is not None else None
        except ValueError:
            raise ValidationError({"due_by": ["Enter a date as YYYY-MM-DD."]}) from None
        rows = selectors.task_workload(user=request.user, due_by=due_by)
        return Response(serializers.TaskWorkloadSerializer(rows, many=True).data)


class TaskDetailView(APIView):
    """One task; PATCH reschedules, reprioritises, reassigns or annotates an open task."""

    # JSON only: in a form or multipart body DRF reads a blank optional field as "not sent", so
    # `assignee=` would answer 200 and change nothing instead of 400.
    parser_classes = (JSONParser,)

    @extend_schema(parameters=[ID], responses=lookup_responses(serializers.TaskSerializer))
    def get(self, request: Request, id: int) -> Response:
        return Response(serializers.TaskSerializer(selectors.task_get(user=request.user, pk=id)).data)

    @extend_schema(
        parameters=[ID],
        request=serializers.TaskUpdateSerializer,
        responses={400: BAD_REQUEST, **lookup_responses(serializers.TaskSerializer)},
    )
    def patch(self, request: Request, id: int) -> Response:
        task = _workable(request, id)
        payload = serializers.TaskUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "assignee" in data:
            data["assignee"] = _user_by_username("assignee", data["assignee"])
        try:
            task = services.task_update(task=task, by=request.user, **data)
        except services.TaskError as exc:
            return _bad_request(exc)
        return Response(serializers.TaskSerializer(selectors.task_get(user=request.user, pk=id)).data)


class TaskCompleteView(APIView):
    """Mark a task done; the contact is recorded as an interaction with the client."""

    @extend_schema(
        parameters=[ID],
        request=serializers.TaskCompleteSerializer,
        responses={400: BAD_REQUEST, **lookup_responses(serializers.TaskSerializer)},
    )
    def post(self, request: Request, id: int) -> Response:
        task = _workable(request, id)
        payload = serializers.TaskCompleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            services.task_complete(task=task, by=request.user, **payload.validated_data)
        except services.TaskError as exc:
            return _bad_request(exc)
        return Response(serializers.TaskSerializer(selectors.task_get(user=request.user, pk=id)).data)


class TaskCancelView(APIView):
    """Cancel an open task with a reason."""

    @extend_schema(
        parameters=[ID],
        request=serializers.TaskCancelSerializer,
        responses={400: BAD_REQUEST, **lookup_responses(serializers.TaskSerializer)},
    )
    def post(self, request: Request, id: int) -> Response:
        task = _workable(request, id)
        payload = serializers.TaskCancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            services.task_cancel(task=task, by=request.user, reason=payload.validated_data["reason"])
        except services.TaskError as exc:
            return _bad_request(exc)
        return Response(serializers.TaskSerializer(selectors.task_get(user=request.user, pk=id)).data)


# --- playbooks ---------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.PlaybookSerializer)))
class PlaybookListView(generics.ListAPIView):
    """The playbooks (edited by ops in admin) with their open tasks: team leads and firm-wide roles."""

    serializer_class = serializers.PlaybookSerializer
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return Playbook.objects.annotate(open_tasks=Count("tasks", filter=Q(tasks__status=TaskStatus.OPEN))).order_by(
            "name"
        )


# --- regulatory callbacks -----------------------------------------------------------------


class CallbackPagination(KeysetPagination):
    page_size = 50
    ordering = ("due", "id")


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.CallbackSerializer)))
class CallbackListView(generics.ListAPIView):
    """Regulatory callbacks of the clients in the user's scope, soonest due first."""

    serializer_class = serializers.CallbackSerializer
    filterset_class = filters.CallbackFilter
    filter_backends = (StrictFilterBackend,)
    pagination_class = CallbackPagination
    ordering = ("due", "id")

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return callbacks.Callback.objects.none()
        return selectors.callback_list(user=self.request.user)


class CallbackAttemptView(APIView):
    """Record a call for a callback: completed (with the whole checklist), unreachable or failed.
    Failed and unreachable calls are retried; after the last attempt the callback is escalated."""

    @extend_schema(
        parameters=[ID],
        request=serializers.CallbackAttemptInputSerializer,
        responses={400: BAD_REQUEST, **lookup_responses(serializers.CallbackSerializer)},
    )
    def post(self, request: Request, id: int) -> Response:
        callback = selectors.callback_get(user=request.user, pk=id)
        if callback.task is not None:
            _workable(request, callback.task_id)  # escalated: the team lead's to call now
        payload = serializers.CallbackAttemptInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            callback = callbacks.callback_attempt_record(callback=callback, by=request.user, **payload.validated_data)
        except callbacks.CallbackError as exc:
            return _bad_request(exc)
        return Response(serializers.CallbackSerializer(selectors.callback_get(user=request.user, pk=id)).data)


class CallbackSampleView(APIView):
    """Draw the year's random callback sample (compliance or ops): at least the configured share
    of the clients open at the previous year-end, dormant accounts excluded, reproducible for a seed."""

    permission_classes = (permissions.IsAuthenticated, ComplianceOrOps)

    @extend_schema(
        request=serializers.CallbackSampleInputSerializer,
        responses={201: serializers.CallbackSampleSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 429: THROTTLED},
    )
    def post(self, request: Request) -> Response:
        payload = serializers.CallbackSampleInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            sample = callbacks.callback_sample_draw(by=request.user, **payload.validated_data)
        except callbacks.CallbackError as exc:
            return _bad_request(exc)
        return Response(serializers.CallbackSampleSerializer(sample).data, status=status.HTTP_201_CREATED)


class CallbackProgressView(APIView):
    """The year's quota (annual sample; new accounts opened that year) and how much of it is done."""

    permission_classes = (permissions.IsAuthenticated, SeesAggregates)

    @extend_schema(
        parameters=[
            OpenApiParameter("year", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Default: this year.")
        ],
        responses={200: serializers.CallbackProgressSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 429: THROTTLED},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("year")
        today = timezone.localdate()
        try:
            year = int(raw) if raw is not None else today.year
        except ValueError:
            raise ValidationError({"year": ["Enter a year as a whole number, e.g. 2026."]}) from None
        if not 2000 <= year <= 2100:
            raise ValidationError({"year": ["Enter a year between 2000 and 2100."]})
        return Response(
            serializers.CallbackProgressSerializer(callbacks.callback_progress(year=year, today=today)).data
        )


# --- service products and entitlements ------------------------------------------------------


@extend_schema_view(get=extend_schema(responses=list_responses(serializers.ServiceProductSerializer)))
class ServiceProductListView(generics.ListAPIView):
    """The service catalogue with the tiers entitled to each product (the matrix)."""

    serializer_class = serializers.ServiceProductSerializer
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return ServiceProduct.objects.prefetch_related("tier_entitlements").order_by("code")

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        for product in page:
            product.tiers = sorted(cell.tier for cell in product.tier_entitlements.all())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema_view(
    get=extend_schema(
        parameters=[CLIENT_NO], responses=lookup_responses(serializers.EntitlementSerializer, is_list=True)
    )
)
class ClientEntitlementListView(generics.ListAPIView):
    """A client's service entitlements, current and withdrawn."""

    serializer_class = serializers.EntitlementSerializer
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return entitlements.ClientEntitlement.objects.none()
        return selectors.entitlement_list(user=self.request.user, client_no=self.kwargs["client_no"]).order_by(
            "withdrawn_on", "product__code", "-granted_on"
        )


class EntitlementDeliveryView(APIView):
    """Record a delivery of an entitlement's service (by the requesting user)."""

    @extend_schema(
        parameters=[ID],
        request=serializers.DeliveryInputSerializer,
        responses={
            201: serializers.DeliverySerializer,
            400: BAD_REQUEST,
            **lookup_responses(serializers.DeliverySerializer),
        },
    )
    def post(self, request: Request, id: int) -> Response:
        entitlement = selectors.entitlement_get(user=request.user, pk=id)
        payload = serializers.DeliveryInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            delivery = entitlements.delivery_record(entitlement=entitlement, by=request.user, **payload.validated_data)
        except entitlements.EntitlementError as exc:
            return _bad_request(exc)
        return Response(serializers.DeliverySerializer(delivery).data, status=status.HTTP_201_CREATED)


# --- campaigns --------------------------------------------------------------------------------


class CampaignListView(generics.ListAPIView):
    """Campaigns (team leads and firm-wide roles read; compliance and ops create)."""

    serializer_class = serializers.CampaignSerializer
    permission_classes = (permissions.IsAuthenticated, SeesAggregates)
    pagination_class = PageNumberPagination
    filter_backends = ()

    def get_queryset(self) -> QuerySet:
        return Campaign.objects.select_related("created_by").order_by("-created_at", "-id")

    @extend_schema(responses=list_responses(serializers.CampaignSerializer))
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=serializers.CampaignInputSerializer,
        responses={201: serializers.CampaignSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 429: THROTTLED},
    )
    def post(self, request: Request) -> Response:
        if not ComplianceOrOps().has_permission(request, self):
            self.permission_denied(request, message="Only compliance officers and ops create campaigns.")
        payload = serializers.CampaignInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            campaign = campaigns.campaign_create(by=request.user, **payload.validated_data)
        except campaigns.CampaignError as exc:
            return _bad_request(exc)
        return Response(serializers.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignActionView(APIView):
    """`launch`: draw the control group and open the treated group's tasks; `measure`: compute
    the outcome of treated vs control with the uplift and its 95% confidence interval."""

    permission_classes = (permissions.IsAuthenticated, ComplianceOrOps)

    @extend_schema(
        operation_id="retention_campaigns_action",
        parameters=[
            ID,
            OpenApiParameter("action", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["launch", "measure"]),
        ],
        request=None,
        responses={400: BAD_REQUEST, **lookup_responses(serializers.CampaignSerializer)},
    )
    def post(self, request: Request, id: int, action: str) -> Response:
        campaign = generics.get_object_or_404(Campaign.objects.select_related("created_by"), pk=id)
        try:
            if action == "launch":
                campaign = campaigns.campaign_launch(campaign=campaign, by=request.user)
            elif action == "measure":
                campaign = campaigns.campaign_measure(campaign=campaign)
            else:
                raise ValidationError({"action": ["Expected launch or measure."]})
        except campaigns.CampaignError as exc:
            return _bad_request(exc)
        return Response(serializers.CampaignSerializer(campaign).data)
