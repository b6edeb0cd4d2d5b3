"""Pagination for the API.

Lists of reference data (clients, instruments) use page numbers; the ledger (trades, cash
flows, asset snapshots, interactions) uses a keyset cursor, whose cost stays flat at any
depth (see PERFORMANCE.md).

Why not DRF's `CursorPagination`: it positions on the first ordering field only and skips
ties with an OFFSET capped at 1,000 rows. Back-office files stamp many executions with the
same second, so past that cap pages repeat or skip trades, and below it every page pays
for the OFFSET. `KeysetPagination` positions on the pair (field, unique key) with one SQL
row-value comparison, `(executed_at, id) < (x, y)`, which an index range scan serves.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, Expression, F, Model, QuerySet, Value
from django.utils.encoding import force_str
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

INVALID_CURSOR = "Invalid cursor: use the `next` or `previous` link of an earlier page."


def strict_page_size(request: Request, *, param: str, default: int, maximum: int) -> int:
    """`?<param>=` as a whole number from 1 to `maximum` (what the schema says); 400 on anything else."""
    raw = request.query_params.get(param)
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise ValidationError({param: [f"Enter a whole number from 1 to {maximum}."]})
    return size


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        return strict_page_size(
            request, param=self.page_size_query_param, default=self.page_size, maximum=self.max_page_size
        )

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: APIView | None = None) -> list | None:
        # DRF answers 404 for `?page=abc` or a page past the last; like every other malformed
        # parameter, it is a 400 naming the parameter (404 is for objects that do not exist).
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise ValidationError({self.page_query_param: [str(exc.detail)]}) from None


class RowValueCompare(Expression):
    """SQL `(col_a, col_b) <op> (%s, %s)`: a row-value comparison usable in `.filter()`.

    Supported by PostgreSQL and SQLite >= 3.15. Unlike the OR-expanded
    `a < x OR (a = x AND b < y)` it is one range condition for a composite index.
    """

    output_field = BooleanField()

    def __init__(self, columns: Sequence[str], op: str, values: Sequence[Expression]) -> None:
        if op not in ("<", ">"):
            raise ValueError(f"Unsupported row-value operator {op!r}")
        if len(columns) != len(values):
            raise ValueError("A row-value comparison needs as many values as columns")
        super().__init__(output_field=BooleanField())
        self.op = op
        self.lhs: list[Any] = [F(name) for name in columns]
        self.rhs: list[Any] = list(values)

    def get_source_expressions(self) -> list[Any]:
        return [*self.lhs, *self.rhs]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        half = len(exprs) // 2
        self.lhs, self.rhs = list(exprs[:half]), list(exprs[half:])

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        params: list[Any] = []
        sides = []
        for side in (self.lhs, self.rhs):
            parts = []
            for expr in side:
                sql, expr_params = compiler.compile(expr)
                parts.append(sql)
                params.extend(expr_params)
            sides.append(f"({', '.join(parts)})")
        return f"{sides[0]} {self.op} {sides[1]}", params


@dataclass(frozen=True)
class KeysetCursor:
    """A position between two rows: the (field, key) of the row on its near side."""

    value: Any
    key: Any
    backwards: bool


class KeysetPagination(pagination.BasePagination):
    """Keyset ("seek") pagination on (a non-null field, a unique key), newest first by default.

    The ordering is the view's `ordering` (e.g. `("-executed_at", "-id")`), or what the
    view's `OrderingFilter` returns for `?ordering=`; it must be exactly two terms in the
    same direction, the second unique. Responses carry `next` / `previous` links and no
    count (a count over the ledger would cost more than the page).
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    cursor_query_param = "cursor"
    ordering: tuple[str, str] = ("-executed_at", "-id")
    # Find the page's keys first, then read those rows (see page_rows): for the ledgers.
    keys_first = False

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: APIView | None = None) -> list[Model]:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        field, key, descending = self.get_ordering(request, queryset, view)
        cursor = self.decode_cursor(request, queryset.model, field, key)

        # Walking backwards (towards `previous`) reads the rows before the cursor in the
        # opposite order, then flips them back.
        reverse = cursor is not None and cursor.backwards
        query_descending = descending != reverse
        prefix = "-" if query_descending else ""
        queryset = queryset.order_by(f"{prefix}{field}", f"{prefix}{key}")
        if cursor is not None:
            model_fields = queryset.model._meta
            values = [
                Value(cursor.value, output_field=model_fields.get_field(field)),
                Value(cursor.key, output_field=model_fields.get_field(key)),
            ]
            op = "<" if query_descending else ">"
            # The plain bound repeats the row comparison's first column, so a planner that
            # does not derive it from the row comparison (PostgreSQL does) still starts an
            # index range scan on `field` alone at the cursor.
            bound = {f"{field}__lte" if query_descending else f"{field}__gte": cursor.value}
            queryset = queryset.filter(RowValueCompare((field, key), op, values), **bound)

        limited = self.page_rows(queryset, self.page_size + 1) if self.keys_first else queryset[: self.page_size + 1]
        rows = list(limited)
        has_more = len(rows) > self.page_size
        page = rows[: self.page_size]
        if reverse:
            page.reverse()

        self.next_cursor: KeysetCursor | None = None
        self.previous_cursor: KeysetCursor | None = None
        if page:
            # Coming backwards from a cursor, rows follow the page (at least the cursor's own);
            # going forwards, rows precede it whenever a cursor was given.
            has_next, has_previous = (True, has_more) if reverse else (has_more, cursor is not None)
            first, last = page[0], page[-1]
            if has_next:
                self.next_cursor = KeysetCursor(getattr(last, field), getattr(last, key), backwards=False)
            if has_previous:
                self.previous_cursor = KeysetCursor(getattr(first, field), getattr(first, key), backwards=True)
        elif cursor is not None:
            # Ran off one end: offer the way back from the same position.
            flipped = KeysetCursor(cursor.value, cursor.key, backwards=not cursor.backwards)
            if reverse:
                self.next_cursor = flipped
            else:
                self.previous_cursor = flipped
        return page

    @staticmethod
    def page_rows(queryset: QuerySet, limit: int) -> QuerySet:
        """The first `limit` rows of the ordered, filtered `queryset`, keys first: the sub-select
        finds the page's primary keys (on the ledger, an index-only scan of (client, time, id)
        over the user's clients), and only those rows are read with their joins. Reading whole
        rows before the sort made a book's trade list read every trade of the book (5,000 rows
        for 300 clients on the 1M book) to keep 100. Still one statement. Querysets with
        annotations are sliced as they are (the outer query would not carry them)."""
        if queryset.query.annotations:
            return queryset[:limit]
        keys = queryset.values("pk")[:limit]
        rows = queryset.model._base_manager.filter(pk__in=keys)
        rows.query.select_related = queryset.query.select_related
        rows.query.deferred_loading = queryset.query.deferred_loading
        return rows.order_by(*queryset.query.order_by)

    def get_page_size(self, request: Request) -> int:
        return strict_page_size(
            request, param=self.page_size_query_param, default=self.page_size, maximum=self.max_page_size
        )

    def get_ordering(self, request: Request, queryset: QuerySet, view: APIView | None) -> tuple[str, str, bool]:
        """(field, key, descending) from the view's OrderingFilter, its `ordering`, or ours."""
        terms: Sequence[str] | None = None
        for backend in getattr(view, "filter_backends", ()):
            if issubclass(backend, OrderingFilter):
                terms = backend().get_ordering(request, queryset, view)
                break
        if not terms:
            terms = getattr(view, "ordering", None) or self.ordering
        if len(terms) != 2 or terms[0].startswith("-") != terms[1].startswith("-"):
            # Only an `?ordering=` naming several fields gets here; a view is configured
            # with exactly (field, unique key).
            raise ValidationError({"ordering": ["This list sorts by one field only, ascending or descending."]})
        descending = terms[0].startswith("-")
        return terms[0].lstrip("-"), terms[1].lstrip("-"), descending

    # --- cursors --------------------------------------------------------------------

    def encode_cursor(self, cursor: KeysetCursor) -> str:
        value = cursor.value.isoformat() if hasattr(cursor.value, "isoformat") else str(cursor.value)
        payload = json.dumps([value, str(cursor.key), int(cursor.backwards)], separators=(",", ":"))
        token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def decode_cursor(self, request: Request, model: type[Model], field: str, key: str) -> KeysetCursor | None:
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        try:
            padded = token + "=" * (-len(token) % 4)
            raw_value, raw_key, backwards = json.loads(base64.urlsafe_b64decode(padded.encode()))
            # clean() also range-checks: a forged id beyond the column's range is a 400, not a 500.
            value = model._meta.get_field(field).clean(raw_value, None)
            key_value = model._meta.get_field(key).clean(raw_key, None)
            if value is None or key_value is None or backwards not in (0, 1):
                raise ValueError(token)
        except (ValueError, TypeError, binascii.Error, DjangoValidationError) as exc:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from exc
        return KeysetCursor(value, key_value, backwards=bool(backwards))

    def get_next_link(self) -> str | None:
        return self.encode_cursor(self.next_cursor) if self.next_cursor else None

    def get_previous_link(self) -> str | None:
        return self.encode_cursor(self.previous_cursor) if self.previous_cursor else None

    # --- response and schema ----------------------------------------------------------

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": force_str("Opaque position from the `next` or `previous` link of an earlier page."),
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.page_size}, at most {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


class LedgerPagination(KeysetPagination):
    """Keyset pages of a ledger (trades, cash flows, snapshots): the page's keys first."""

    keys_first = True
