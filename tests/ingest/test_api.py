"""POST /api/v1/ingest/<kind>/ and the record of imports over the API."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from clients.ingest import api, errors
from clients.models import ImportBatch, Trade
from tests.ingest.conftest import TRADES_HEADER, trade_line

pytestmark = pytest.mark.django_db


def client_for(user: object) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def trade(trade_id: str, **overrides: object) -> dict[str, object]:
    row = {
        "trade_id": trade_id,
        "client_no": "C1",
        "executed_at": "2025-03-03 10:00:00",
        "symbol": "600000.SH",
        "side": "buy",
        "quantity": 100,
        "price": 10.50,
        "amount": "1050.00",
        "commission": "5.00",
        "channel": "online",
    }
    row.update(overrides)
    return row


def post_json(client: APIClient, kind: str, rows: object, query: str = ""):
    url = reverse("ingest:ingest", kwargs={"kind": kind}) + query
    return client.post(url, data=json.dumps(rows), content_type="application/json")


def test_a_json_array_is_imported_by_the_api_system(book, cast) -> None:
    response = post_json(client_for(cast.system), "trades", [trade("T1"), trade("T2", price="10.5")])
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "succeeded"
    assert (body["rows_read"], body["rows_written"], body["rows_rejected"]) == (2, 2, 0)
    assert body["source"] == "api"
    assert body["requested_by"] == "system_api"
    assert body["errors"] == []
    assert Trade.objects.count() == 2


def test_a_rejected_batch_answers_400_with_every_error(book, cast) -> None:
    rows = [trade("T1"), trade("T2", side="hold", commission="-1"), trade("T3", client_no="NOBODY")]
    response = post_json(client_for(cast.system), "trades", rows)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "rejected"
    assert body["rows_written"] == 0
    assert body["errors"] == [
        {"row": 2, "column": "side", "value": "hold", "code": errors.INVALID_CHOICE, "expected": "one of buy, sell"},
        {
            "row": 2,
            "column": "commission",
            "value": "-1",
            "code": errors.WRONG_SIGN,
            "expected": "0 or more (a correction is a reversing row naming the original in reverses_trade_id)",
        },
        {
            "row": 3,
            "column": "client_no",
            "value": "NOBODY",
            "code": errors.UNKNOWN_CLIENT,
            "expected": "the number of a client already in the CRM",
        },
    ]
    assert Trade.objects.count() == 0


def test_skip_invalid_answers_201_with_the_rejected_rows(book, cast) -> None:
    response = post_json(
        client_for(cast.system), "trades", [trade("T1"), trade("T2", side="hold")], "?skip_invalid=true"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "partially_succeeded"
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(2, "side")]
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["T1"]


def test_resending_the_same_rows_is_idempotent(book, cast) -> None:
    client = client_for(cast.system)
    post_json(client, "trades", [trade("T1")])
    again = post_json(client, "trades", [trade("T1")])
    assert again.status_code == 201
    assert (again.json()["rows_written"], again.json()["rows_duplicate"]) == (0, 1)
    assert again.json()["duplicate_sample"] == [{"row": 1, "key": "T1", "note": "already held"}]


def test_an_uploaded_csv_and_a_gbk_upload(book, cast) -> None:
    client = client_for(cast.olga)
    url = reverse("ingest:ingest", kwargs={"kind": "trades"})
    content = ("\n".join([TRADES_HEADER, trade_line("T1"), trade_line("T2", side="卖出")]) + "\n").encode("gbk")
    response = client.post(url, {"file": SimpleUploadedFile("trades_gbk.csv", content)}, format="multipart")
    assert response.status_code == 201, response.json()
    assert (response.json()["encoding"], response.json()["file_name"]) == ("gb18030", "trades_gbk.csv")
    assert Trade.objects.get(trade_id="T2").side == "sell"
    forced = client.post(
        url + "?encoding=utf-8", {"file": SimpleUploadedFile("again.csv", content)}, format="multipart"
    )
    assert forced.status_code == 400
    assert forced.json()["errors"][0]["code"] == errors.ENCODING


@pytest.mark.parametrize("who", ["alice", "tina", "carol"])
def test_other_roles_may_not_import(book, cast, who: str) -> None:
    user = getattr(cast, who)
    user = user.user if hasattr(user, "user") else user
    response = post_json(client_for(user), "trades", [trade("T1")])
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def test_anonymous_may_not_import(book) -> None:
    response = post_json(APIClient(), "trades", [trade("T1")])
    assert response.status_code in {401, 403}
    assert ImportBatch.objects.count() == 0


def test_request_shape_errors(book, cast, monkeypatch) -> None:
    client = client_for(cast.system)
    monkeypatch.setattr(api, "MAX_JSON_ROWS", 2)
    too_many = post_json(client, "trades", [trade("T1"), trade("T2"), trade("T3")])
    assert too_many.status_code == 400
    assert "rows" in too_many.json()
    not_rows = post_json(client, "trades", {"trade_id": "T1"})
    assert not_rows.status_code == 400
    assert not_rows.json()["errors"][0]["code"] == errors.MALFORMED
    garbage = client.post(
        reverse("ingest:ingest", kwargs={"kind": "trades"}), data="[{", content_type="application/json"
    )
    assert garbage.status_code == 400
    no_file = client.post(reverse("ingest:ingest", kwargs={"kind": "trades"}), {}, format="multipart")
    assert no_file.status_code == 400
    assert "file" in no_file.json()
    ledger_update = post_json(client, "trades", [trade("T1")], "?update=true")
    assert ledger_update.status_code == 400
    assert "update" in ledger_update.json()
    bad_flag = post_json(client, "trades", [trade("T1")], "?skip_invalid=perhaps")
    assert bad_flag.status_code == 400
    assert client.post("/api/v1/ingest/bananas/", data="[]", content_type="application/json").status_code == 404
    assert Trade.objects.count() == 0


def test_reference_data_updates_over_the_api(book, cast) -> None:
    client = client_for(cast.system)
    row = {"symbol": "600000.SH", "name": "浦发银行", "asset_class": "stock", "risk_level": "R3"}
    assert post_json(client, "instruments", [row]).json()["rows_conflict"] == 1
    updated = post_json(client, "instruments", [row], "?update=true")
    assert (updated.status_code, updated.json()["rows_updated"]) == (201, 1)


def test_batches_are_listed_for_staff_ops_and_systems(book, cast, django_assert_max_num_queries) -> None:
    post_json(client_for(cast.system), "trades", [trade("T1")])
    post_json(client_for(cast.system), "trades", [trade("T2", side="hold")])
    client = client_for(cast.olga)
    with django_assert_max_num_queries(6):
        listing = client.get(reverse("ingest:batch-list"))
    assert listing.status_code == 200
    results = listing.json()["results"]
    assert [b["status"] for b in results] == ["rejected", "succeeded"]
    assert "errors" not in results[0]
    rejected = client.get(reverse("ingest:batch-list") + "?status=rejected").json()["results"]
    assert len(rejected) == 1
    detail = client.get(reverse("ingest:batch-detail", kwargs={"pk": rejected[0]["id"]}))
    assert detail.json()["errors"][0]["column"] == "side"
    assert client_for(cast.system).get(reverse("ingest:batch-list")).status_code == 200
    assert client_for(cast.alice.user).get(reverse("ingest:batch-list")).status_code == 403
    assert (
        client_for(cast.carol).get(reverse("ingest:batch-detail", kwargs={"pk": rejected[0]["id"]})).status_code == 403
    )
