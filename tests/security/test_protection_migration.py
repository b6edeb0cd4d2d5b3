"""The data migration that encrypted the KYC ID numbers already stored (clients 0003), on
SQLite and on PostgreSQL: plaintext rows written under 0002 come out encrypted with their
lookup hash, a second pass changes nothing, and going back restores the plaintext."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from brokercrm.lib import crypto
from clients.models import KYCProfile

BEFORE = ("clients", "0002_import_batch")
AFTER = ("clients", "0003_kyc_id_number_encrypted")
NUMBERS = ["110105198005171234", "E12345678", "91310000MA1FL0000X", ""]

migration = importlib.import_module("clients.migrations.0003_kyc_id_number_encrypted")


def _migrate(target: tuple[str, str]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection)  # a fresh loader sees the new state


def _raw() -> dict[int, tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, id_number, id_number_hash FROM clients_kycprofile ORDER BY id")
        return {pk: (number, digest) for pk, number, digest in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_encrypts_existing_plaintext_and_fills_the_hash() -> None:
    executor = _migrate(BEFORE)
    try:
        old = executor.loader.project_state([BEFORE]).apps
        branch = old.get_model("clients", "Branch").objects.create(code="MIG1", name="Migration branch")
        client_model = old.get_model("clients", "Client")
        kyc_model = old.get_model("clients", "KYCProfile")
        ids = []
        for i, number in enumerate(NUMBERS):
            client = client_model.objects.create(
                client_no=f"MIG{i}", name=f"Client {i}", branch=branch, opened_on=dt.date(2020, 1, 1)
            )
            ids.append(kyc_model.objects.create(client=client, id_type="resident_id", id_number=number).pk)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id_number FROM clients_kycprofile ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == NUMBERS  # plaintext before

        executor = _migrate(AFTER)

        stored = _raw()
        for pk, number in zip(ids, NUMBERS, strict=True):
            token, digest = stored[pk]
            if not number:
                assert (token, digest) == ("", "")
                continue
            assert number not in token
            assert token.startswith(crypto.TOKEN_PREFIX)
            assert crypto.decrypt(token) == number
            assert digest == crypto.blind_index(number)
            assert KYCProfile.objects.get(pk=pk).id_number == number
        assert KYCProfile.objects.with_id_number("e12345678").get().pk == ids[1]

        # Idempotent: a second pass leaves the tokens alone.
        migration.encrypt_id_numbers(None, SimpleNamespace(connection=connection))
        assert _raw() == stored

        # Backwards: the plaintext comes back before the column shrinks to varchar(64).
        executor = _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id_number FROM clients_kycprofile ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == NUMBERS
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
