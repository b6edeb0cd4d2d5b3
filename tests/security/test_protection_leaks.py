"""Masked by default everywhere: after a client's ID number went through every path that
touches it (admin edit by compliance, a KYC import with a conflict and with an update, the
pages, the API for every role, the compliance exports), the plaintext is in no database
column, no log line and no response except the compliance officer's own unmasked views."""

from __future__ import annotations

import csv
import io
import logging

from django.apps import apps
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clients.ingest.services import ImportOptions, Requester, ingest_file
from compliance.models import Flag, FlagKind, Severity
from tests import factories
from tests.conftest import Cast

ID_NUMBER = "310115199912319876"
NEW_NUMBER = "310115199912315555"
FILE_NUMBER = "310115199912314444"
MASKS = {"310***********9876", "310***********5555"}


def columns_holding(text: str) -> list[str]:
    """Every text or JSON column of every table where `text` occurs, read with raw SQL."""
    found = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            if not model._meta.managed or model._meta.proxy:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            for field in model._meta.concrete_fields:
                if not isinstance(field, models.CharField | models.TextField | models.JSONField):
                    continue
                column = connection.ops.quote_name(field.column)
                cast = f"CAST({column} AS text)" if connection.vendor == "postgresql" else column
                cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {cast} LIKE %s", [f"%{text}%"])  # noqa: S608
                if cursor.fetchone()[0]:
                    found.append(f"{model._meta.db_table}.{field.column}")
    return found


def kyc_import(rows: list[str], *, by: object, tmp_path, allow_updates: bool = False) -> object:
    path = tmp_path / "kyc.csv"
    path.write_text("\n".join(["client_no,id_type,id_number,nationality,is_pep", *rows]) + "\n", encoding="utf-8")
    with path.open("rb") as stream:
        return ingest_file(
            kind="kyc",
            stream=stream,
            name=path.name,
            requester=Requester(user=by),
            options=ImportOptions(allow_updates=allow_updates, skip_invalid=True, rejects_path=None),
        )


def test_the_plaintext_is_nowhere_but_in_the_officers_own_views(cast: Cast, client, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    kyc = factories.KYCProfileFactory(client=cast.alice_client, id_number=ID_NUMBER)
    now = timezone.now()
    Flag.objects.create(
        client=cast.alice_client, kind=FlagKind.PEP, subject="kyc", severity=Severity.MEDIUM,
        first_seen_on=now.date(), last_seen_on=now.date(), raised_at=now, updated_at=now,
    )  # fmt: skip

    # A compliance officer corrects the number in admin (audited, masked).
    carol = cast.carol
    carol.is_staff = True
    carol.save()
    from django.contrib.auth.models import Permission

    carol.user_permissions.add(*Permission.objects.filter(codename__in=["view_kycprofile", "change_kycprofile"]))
    client.force_login(carol)
    url = reverse("admin:clients_kycprofile_change", args=[kyc.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    assert client.post(url, {**data, "client": kyc.client_id, "id_number": NEW_NUMBER}).status_code == 302
    # A KYC import: first a conflict (reported masked), then an update (audited masked).
    row = f"{cast.alice_client.client_no},resident_id,{FILE_NUMBER},CN,no"
    conflict = kyc_import([row], by=cast.olga, tmp_path=tmp_path)
    assert conflict.rows_conflict == 1
    assert "310***********4444" in conflict.errors.get().expected
    updated = kyc_import([row], by=cast.olga, tmp_path=tmp_path, allow_updates=True)
    assert updated.rows_updated == 1
    kyc.refresh_from_db()
    assert kyc.id_number == FILE_NUMBER

    # Every reader outside compliance sees the mask only.
    responses = []
    for user in (cast.alice.user, cast.tina, cast.olga, cast.system):
        api = APIClient()
        api.force_login(user)
        responses.append(api.get(f"/api/v1/clients/{cast.alice_client.client_no}/"))
    for user in (cast.alice.user, cast.tina):
        client.force_login(user)
        responses.append(client.get(reverse("client-detail", args=[cast.alice_client.client_no])))
    client.force_login(cast.olga)
    cast.olga.user_permissions.add(*Permission.objects.filter(codename="view_kycprofile"))
    responses.append(client.get(reverse("admin:clients_kycprofile_changelist")))
    responses.append(client.get(reverse("admin:clients_kycprofile_change", args=[kyc.pk])))
    officer = APIClient()
    officer.force_login(carol)
    today = timezone.localdate().isoformat()
    export = officer.get(reverse("compliance_api:export", args=["flags"]), {"from": today, "to": today})
    export_xlsx = officer.get(
        reverse("compliance_api:export", args=["flags"]), {"from": today, "to": today, "file_format": "xlsx"}
    )
    responses += [export, export_xlsx]
    for response in responses:
        assert response.status_code == 200, response
        body = response.content.decode("utf-8", "replace") if response is not export_xlsx else ""
        for number in (ID_NUMBER, NEW_NUMBER, FILE_NUMBER):
            assert number not in body, response.request["PATH_INFO"]
    exported = csv.DictReader(io.StringIO(export.content.decode("utf-8-sig")))
    assert "310***********4444" in {row["id_number_masked"] for row in exported}
    assert FILE_NUMBER.encode() not in export_xlsx.content

    # The officer's own API view is unmasked (and audited) ...
    assert officer.get(f"/api/v1/clients/{cast.alice_client.client_no}/").json()["kyc"]["id_number"] == FILE_NUMBER

    # ... and yet no column of any table, and no log line, holds any of the numbers.
    for number in (ID_NUMBER, NEW_NUMBER, FILE_NUMBER):
        assert columns_holding(number) == [], number
        assert columns_holding(number[-8:]) == [], number
        assert number not in caplog.text
    from compliance.models import AuditEntry

    trail = " ".join(str(e.old) + str(e.new) for e in AuditEntry.objects.filter(action="kyc.changed"))
    assert all(mask in trail for mask in MASKS)  # the trail says what changed, masked
    assert columns_holding(cast.alice_client.client_no)  # the scan does find what is there
