"""The import record in Django admin: listed, readable, never editable."""

from __future__ import annotations

import pytest
from django.urls import reverse

from clients.models import ImportBatch
from tests.ingest.conftest import TRADES_HEADER, trade_line

pytestmark = pytest.mark.django_db


def test_batches_and_their_errors_are_shown_read_only(book, write_file, run_import, admin_client) -> None:
    batch = run_import("trades", write_file("bad.csv", [TRADES_HEADER, trade_line("T1", side="hold")]))
    listing = admin_client.get(reverse("admin:clients_importbatch_changelist") + "?status__exact=rejected")
    assert listing.status_code == 200
    assert "bad.csv" in listing.content.decode()
    detail = admin_client.get(reverse("admin:clients_importbatch_change", args=[batch.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200
    assert "invalid_choice" in page
    assert "one of buy, sell" in page
    assert batch.file_sha256 in page
    assert admin_client.get(reverse("admin:clients_importbatch_add")).status_code == 403
    response = admin_client.post(reverse("admin:clients_importbatch_delete", args=[batch.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert ImportBatch.objects.filter(pk=batch.pk).exists()


def test_search_by_file_hash(book, write_file, run_import, admin_client) -> None:
    batch = run_import("trades", write_file("t.csv", [TRADES_HEADER, trade_line("T1")]))
    other = run_import("trades", write_file("u.csv", [TRADES_HEADER, trade_line("T2")]))
    page = admin_client.get(reverse("admin:clients_importbatch_changelist") + f"?q={batch.file_sha256}")
    content = page.content.decode()
    assert "t.csv" in content
    assert "u.csv" not in content
    assert other.pk != batch.pk
