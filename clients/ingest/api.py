"""Ingestion over the API: `POST /api/v1/ingest/<kind>/`, and the record of every import.

The same service as `manage.py import_ledger`, for the `api_system` role (and ops):

- a JSON array of objects, one per row, keys as the file's columns (at most MAX_JSON_ROWS
  rows per request; numbers are read as their exact text, so send amounts as strings or
  plain JSON numbers, never floats computed on the way);
- or a multipart upload of a CSV / .xlsx file in the field `file` (up to MAX_UPLOAD_BYTES;
  larger files go through the command, which streams from disk).

Query parameters: `skip_invalid=true`, `update=true` (reference data only), `encoding=gbk`,
`sheet=` (.xlsx). The answer is the batch: 201 when it was written (fully or, with
skip_invalid, partly), 400 when it was rejected as a whole (nothing written), 500 when it
failed (nothing written); the body always carries the counts and the errors found (row,
column, value, what was expected), the first 1,000 of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokercrm.api.filters import StableOrderingFilter, StrictFilterBackend
from brokercrm.api.pagination import PageNumberPagination
from brokercrm.api.schema import NOT_FOUND_PATH, THROTTLED, list_responses, lookup_responses
from brokercrm.roles import API_SYSTEM, OPS, has_role
from clients.ingest import reading
from clients.ingest.kinds import KINDS
from clients.ingest.services import ImportOptions, Requester, ingest_file, ingest_records
from clients.models import ImportBatch, ImportBatchError

MAX_JSON_ROWS = 50_000
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

TOO_MANY_ROWS = f"At most {MAX_JSON_ROWS:,} rows per JSON request; upload a file or use manage.py import_ledger."
TOO_LARGE = f"At most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB per upload; use manage.py import_ledger for larger files."
NO_FILE = "Send a JSON array of rows, or a multipart upload with the file in the field 'file'."
NOT_UPDATABLE = "update=true applies to reference data only; correct the ledger with reversing rows."
BAD_FLAG = "Use true or false."


class CanIngest(BasePermission):
    """Other systems (api_system) and ops staff may import; nobody else."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or has_role(user, API_SYSTEM, OPS)))


class CanReadBatches(BasePermission):
    """The record of imports: staff, ops and the systems that import."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and (user.is_staff or user.is_superuser or has_role(user, API_SYSTEM, OPS))
        )


@dataclass(frozen=True)
class JsonPayload:
    records: Any
    sha256: str
    size: int


class ExactJSONParser(BaseParser):
    """JSON whose numbers stay text ('10.50' stays '10.50'), with the body's hash for the record."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> JsonPayload:
        body = stream.read() if stream is not None else b""
        try:
            records = reading.loads(body)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return JsonPayload(records, hashlib.sha256(body).hexdigest(), len(body))


class ImportBatchErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportBatchError
        fields = ("row", "column", "value", "code", "expected")


def _values(choices: type) -> str:
    return ", ".join(choices.values)


class ImportBatchSerializer(serializers.ModelSerializer):
    # Plain strings in the schema: an enum named "kind" / "status" would collide with the
    # clients' own enums of the same field names.
    kind = serializers.CharField(read_only=True, help_text=f"One of {_values(ImportBatch.Kind)}.")
    status = serializers.CharField(read_only=True, help_text=f"One of {_values(ImportBatch.Status)}.")
    source = serializers.CharField(read_only=True, help_text=f"One of {_values(ImportBatch.Source)}.")
    requested_by = serializers.CharField(source="requested_by_name", read_only=True)

    class Meta:
        model = ImportBatch
        fields = (
            "id",
            "kind",
            "status",
            "source",
            "requested_by",
            "file_name",
            "file_sha256",
            "file_size",
            "encoding",
            "skip_invalid",
            "allow_updates",
            "started_at",
            "finished_at",
            "rows_read",
            "rows_written",
            "rows_updated",
            "rows_duplicate",
            "rows_conflict",
            "rows_rejected",
            "error_count",
            "failure",
        )
        read_only_fields = fields


class ImportBatchDetailSerializer(ImportBatchSerializer):
    errors = ImportBatchErrorSerializer(many=True, read_only=True)

    class Meta(ImportBatchSerializer.Meta):
        fields = (*ImportBatchSerializer.Meta.fields, "duplicate_sample", "errors")
        read_only_fields = fields


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").strip().lower()
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no", ""}:
        return False
    raise ValidationError({name: BAD_FLAG})


def _status_code(batch: ImportBatch) -> int:
    if batch.status in {ImportBatch.Status.SUCCEEDED, ImportBatch.Status.PARTIALLY_SUCCEEDED}:
        return status.HTTP_201_CREATED
    if batch.status == ImportBatch.Status.REJECTED:
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_500_INTERNAL_SERVER_ERROR


KIND_PARAMETER = OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(KINDS))


class IngestView(APIView):
    permission_classes = (CanIngest,)
    parser_classes = (ExactJSONParser, MultiPartParser)

    @extend_schema(
        operation_id="ingest_create",
        tags=["ingest"],
        summary="Import rows of one kind (JSON array or uploaded CSV/.xlsx)",
        parameters=[
            KIND_PARAMETER,
            OpenApiParameter("skip_invalid", OpenApiTypes.BOOL, description="Write the valid rows, report the others."),
            OpenApiParameter("update", OpenApiTypes.BOOL, description="Reference data: update changed rows."),
            OpenApiParameter("encoding", OpenApiTypes.STR, description="Encoding of an uploaded CSV, e.g. gbk."),
            OpenApiParameter("sheet", OpenApiTypes.STR, description="Sheet of an uploaded .xlsx."),
        ],
        request={"application/json": OpenApiTypes.OBJECT, "multipart/form-data": OpenApiTypes.OBJECT},
        responses={
            201: ImportBatchDetailSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Rejected: nothing written (the batch, as for 201), or a request malformed in itself "
                "(not JSON, too many rows, no file, a bad flag): `detail` or the parameter's errors, and no batch.",
            ),
            403: OpenApiResponse(description="Only api_system and ops may import."),
            404: NOT_FOUND_PATH,
            415: OpenApiResponse(OpenApiTypes.OBJECT, description="Neither JSON nor a multipart upload."),
            429: THROTTLED,
            500: OpenApiResponse(ImportBatchDetailSerializer, description="Failed: nothing written."),
        },
    )
    def post(self, request: Request, kind: str) -> Response:
        spec = KINDS.get(kind)
        if spec is None:
            raise Http404("No such kind of import.")
        allow_updates = _flag(request, "update")
        if allow_updates and not spec.updatable:
            raise ValidationError({"update": NOT_UPDATABLE})
        options = ImportOptions(
            skip_invalid=_flag(request, "skip_invalid"),
            allow_updates=allow_updates,
            encoding=request.query_params.get("encoding") or None,
            sheet=request.query_params.get("sheet") or None,
        )
        requester = Requester(user=request.user)
        payload = request.data
        if isinstance(payload, JsonPayload):
            if isinstance(payload.records, list) and len(payload.records) > MAX_JSON_ROWS:
                raise ValidationError({"rows": TOO_MANY_ROWS})
            batch = ingest_records(
                kind=kind,
                records=payload.records,
                body_sha256=payload.sha256,
                body_size=payload.size,
                requester=requester,
                options=options,
            )
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise ValidationError({"file": NO_FILE})
            if upload.size > MAX_UPLOAD_BYTES:
                raise ValidationError({"file": TOO_LARGE})
            batch = ingest_file(
                kind=kind,
                stream=upload.file,
                name=upload.name or "upload.csv",
                source=ImportBatch.Source.API,
                requester=requester,
                options=options,
            )
        batch = ImportBatch.objects.prefetch_related("errors").get(pk=batch.pk)
        return Response(ImportBatchDetailSerializer(batch).data, status=_status_code(batch))


@extend_schema_view(get=extend_schema(responses=list_responses(ImportBatchSerializer)))
class ImportBatchListView(generics.ListAPIView):
    """Imports, newest first; `?kind=trades&status=rejected` to filter."""

    permission_classes = (CanReadBatches,)
    serializer_class = ImportBatchSerializer
    pagination_class = PageNumberPagination
    filter_backends = (StrictFilterBackend, StableOrderingFilter)
    filterset_fields = ("kind", "status", "source")
    ordering_fields = ("started_at", "id")
    ordering = ("-started_at", "-id")

    def get_queryset(self) -> QuerySet[ImportBatch]:
        return ImportBatch.objects.order_by("-started_at", "-id")


@extend_schema_view(get=extend_schema(responses=lookup_responses(ImportBatchDetailSerializer)))
class ImportBatchDetailView(generics.RetrieveAPIView):
    """One import with its stored errors (the first 1,000) and a sample of its duplicates."""

    permission_classes = (CanReadBatches,)
    serializer_class = ImportBatchDetailSerializer

    def get_queryset(self) -> QuerySet[ImportBatch]:
        return ImportBatch.objects.prefetch_related("errors")
