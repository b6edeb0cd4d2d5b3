"""Flags raised at once when an import brings in data a rule can check (not the next morning)."""

from __future__ import annotations

import io

import pytest

from clients.ingest.services import ImportOptions, ingest_file
from compliance.models import Flag

pytestmark = pytest.mark.django_db


def kyc_import(text: str):
    return ingest_file(kind="kyc", stream=io.BytesIO(text.encode()), name="kyc.csv", options=ImportOptions())


def test_a_declared_pep_in_a_kyc_import_is_flagged_once_the_import_commits(
    cast, django_capture_on_commit_callbacks
) -> None:
    header = "client_no,id_type,id_number,nationality,is_pep\n"
    with django_capture_on_commit_callbacks(execute=True):
        batch = kyc_import(header + f"{cast.alice_client.client_no},resident_id,110105198005170011,CN,yes\n")
    assert batch.rows_written == 1
    flags = Flag.objects.filter(client=cast.alice_client, kind="pep")
    assert flags.count() == 1
    # Importing the same file again writes nothing and raises nothing new.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        kyc_import(header + f"{cast.alice_client.client_no},resident_id,110105198005170011,CN,yes\n")
    assert callbacks == []
    assert flags.count() == 1


def test_a_rejected_import_checks_nothing(cast, django_capture_on_commit_callbacks) -> None:
    header = "client_no,id_type,id_number,nationality,is_pep\n"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batch = kyc_import(header + "NOBODY,resident_id,110105198005170011,CN,yes\n")
    assert batch.status == "rejected"
    assert callbacks == []
    assert not Flag.objects.exists()
