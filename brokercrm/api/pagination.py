"""Pagination for the API.

Lists of reference data (clients) use page numbers; the ledger uses a keyset cursor,
whose cost stays flat at any depth (see PERFORMANCE.md)."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class LedgerCursorPagination(pagination.CursorPagination):
    """Newest first; ordering ends in the unique id so ties never repeat or skip a row."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-executed_at", "-id")
