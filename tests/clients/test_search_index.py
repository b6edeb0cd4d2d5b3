"""The client search is served by indexes on PostgreSQL: the plan of the book search uses the
name trigram index and the client number's pattern index, not a scan of the client table."""

import pytest
from django.db import connection

from clients.models import Client
from clients.views import book_search
from tests import factories

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Left to itself on a tiny table the planner may read the client-number B-tree in
        # order (for ORDER BY) and filter; the question is whether the search conditions can
        # be served by an index at all, so only bitmap scans are allowed.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_book_search_uses_the_trigram_indexes():
    factories.ClientFactory.create_batch(5)

    shown = plan(book_search(book=Client.objects.all(), query="zhou").order_by())

    assert "client_name_upper_trgm" in shown
    assert "client_no_b355e298_like" in shown  # the unique column's pattern index (varchar_pattern_ops)
    assert "Seq Scan on clients_client" not in shown
