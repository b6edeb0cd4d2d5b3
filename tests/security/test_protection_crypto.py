"""Encryption at rest of ID numbers: the field type (brokercrm.lib.fields.EncryptedTextField
on MultiFernet), the lookup hash, key rotation (`rotate_field_keys`) and what the database
column really holds."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection

from brokercrm.lib import crypto
from clients.models import KYCProfile
from tests import factories

ID_NUMBER = "110105198005171234"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_row(kyc: KYCProfile) -> tuple[str, str]:
    """(id_number, id_number_hash) as stored, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, id_number_hash FROM clients_kycprofile WHERE id = %s", [kyc.pk])
        return cursor.fetchone()


def test_round_trip_and_the_column_never_holds_the_plaintext(db: None) -> None:
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)

    assert KYCProfile.objects.get(pk=kyc.pk).id_number == ID_NUMBER
    assert KYCProfile.objects.values_list("id_number", flat=True).get(pk=kyc.pk) == ID_NUMBER
    token, digest = raw_row(kyc)
    assert ID_NUMBER not in token
    assert "1234" not in token
    assert "110105" not in token
    assert token.startswith(crypto.TOKEN_PREFIX)
    assert digest == crypto.blind_index(ID_NUMBER)
    assert len(digest) == 64
    assert ID_NUMBER not in digest
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM clients_kycprofile WHERE id_number LIKE %s", [f"%{ID_NUMBER[-6:]}%"])
        assert cursor.fetchone()[0] == 0


def test_dumpdata_writes_the_ciphertext_and_loaddata_reads_it_back(db: None, tmp_path) -> None:
    """A fixture file is as protected as the table: ops moving data with dumpdata/loaddata
    never write an ID number in clear."""
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    out = io.StringIO()
    call_command("dumpdata", "clients.kycprofile", format="json", stdout=out)
    dumped = out.getvalue()
    assert ID_NUMBER not in dumped
    assert ID_NUMBER[-6:] not in dumped
    assert crypto.TOKEN_PREFIX in dumped

    path = tmp_path / "kyc.json"
    path.write_text(dumped, encoding="utf-8")
    KYCProfile.objects.filter(pk=kyc.pk).update(id_number="", id_number_hash="")
    call_command("loaddata", str(path), verbosity=0)
    loaded = KYCProfile.objects.get(pk=kyc.pk)
    assert loaded.id_number == ID_NUMBER
    token, digest = raw_row(loaded)
    assert token.startswith(crypto.TOKEN_PREFIX)
    assert ID_NUMBER not in token
    assert digest == crypto.blind_index(ID_NUMBER)


def test_each_write_gives_a_different_token(db: None) -> None:
    first = factories.KYCProfileFactory(id_number=ID_NUMBER)
    second = factories.KYCProfileFactory(id_number=ID_NUMBER)
    token_before, _ = raw_row(first)
    first.save()
    token_after, _ = raw_row(first)

    assert len({token_before, token_after, raw_row(second)[0]}) == 3  # no deterministic ciphertext
    assert raw_row(first)[1] == raw_row(second)[1]  # the same lookup hash
    assert crypto.encrypt(ID_NUMBER) != crypto.encrypt(ID_NUMBER)


def test_lookup_by_the_hash_is_exact_after_normalisation(db: None) -> None:
    kyc = factories.KYCProfileFactory(id_number="11010519800517123X")
    factories.KYCProfileFactory(id_number="110105198005171239")

    assert list(KYCProfile.objects.with_id_number("11010519800517123X")) == [kyc]
    assert list(KYCProfile.objects.with_id_number(" 11010519800517123x ")) == [kyc]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "11010519800517123X")
    assert list(KYCProfile.objects.with_id_number(full_width)) == [kyc]
    assert not KYCProfile.objects.with_id_number("1101051980051712").exists()
    assert not KYCProfile.objects.with_id_number("").exists()


def test_update_fields_and_queryset_saves_keep_the_hash_in_step(db: None) -> None:
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    kyc.id_number = "E12345678"
    kyc.save(update_fields=["id_number"])
    assert raw_row(kyc)[1] == crypto.blind_index("E12345678")
    assert KYCProfile.objects.with_id_number("E12345678").get() == kyc


def test_the_field_refuses_lookups_on_ciphertext(db: None) -> None:
    factories.KYCProfileFactory(id_number=ID_NUMBER)
    with pytest.raises(FieldError, match="Unsupported lookup"):
        list(KYCProfile.objects.filter(id_number=ID_NUMBER))
    with pytest.raises(FieldError):
        list(KYCProfile.objects.filter(id_number__startswith="110"))
    assert KYCProfile.objects.filter(id_number__isnull=False).count() == 1


def test_a_value_written_under_an_old_key_reads_after_a_new_primary_key(db: None, settings) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert KYCProfile.objects.get(pk=kyc.pk).id_number == ID_NUMBER
    # New writes use the newest key: readable with it alone.
    kyc.save()
    assert Fernet(NEW_KEY.encode()).decrypt(raw_row(kyc)[0].encode()).decode() == ID_NUMBER


def test_a_wrong_key_gives_a_clear_error(db: None, settings) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(crypto.DecryptionError, match=r"FIELD_ENCRYPTION_KEYS.*rotate_field_keys"):
        KYCProfile.objects.get(pk=kyc.pk)


def test_a_malformed_key_is_a_configuration_error(settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        crypto.encrypt("x")


def test_rotation_re_encrypts_every_row_so_the_old_key_can_be_dropped(db: None, settings) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    profiles = [factories.KYCProfileFactory(id_number=f"1101051980051700{i:02d}") for i in range(7)]
    empty = factories.KYCProfileFactory()
    KYCProfile.objects.filter(pk=empty.pk).update(id_number="", id_number_hash="")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    out = io.StringIO()
    call_command("rotate_field_keys", "--chunk-size", "3", stdout=out)
    assert "clients.KYCProfile.id_number: 8 rows, re-encrypted 7, rehashed 0, unchanged 1" in out.getvalue()

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # the old key dropped
    for profile in profiles:
        assert KYCProfile.objects.get(pk=profile.pk).id_number == profile.id_number
        assert Fernet(NEW_KEY.encode()).decrypt(raw_row(profile)[0].encode()).decode() == profile.id_number
    # Idempotent: a second run changes nothing.
    tokens = {p.pk: raw_row(p)[0] for p in profiles}
    again = io.StringIO()
    call_command("rotate_field_keys", stdout=again)
    assert "re-encrypted 0, rehashed 0, unchanged 8" in again.getvalue()
    assert tokens == {p.pk: raw_row(p)[0] for p in profiles}


def test_rotation_recomputes_the_hashes_after_a_new_hash_key(db: None, settings) -> None:
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    settings.FIELD_HASH_KEY = "another-hash-key-for-the-rotation-test-0123456789"
    assert not KYCProfile.objects.with_id_number(ID_NUMBER).exists()

    out = io.StringIO()
    call_command("rotate_field_keys", "--dry-run", stdout=out)
    assert "would re-encrypt 0, rehashed 1" in out.getvalue()
    assert not KYCProfile.objects.with_id_number(ID_NUMBER).exists()
    call_command("rotate_field_keys", stdout=io.StringIO())
    assert KYCProfile.objects.with_id_number(ID_NUMBER).get() == kyc


def test_rotation_without_the_old_key_stops_with_the_remedy(db: None, settings) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    factories.KYCProfileFactory(id_number=ID_NUMBER)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match="cannot decrypt"):
        call_command("rotate_field_keys", stdout=io.StringIO())


def test_rotation_never_overwrites_a_row_changed_meanwhile(db: None, settings) -> None:
    from brokercrm.management.commands.rotate_field_keys import rotate_field

    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    kyc = factories.KYCProfileFactory(id_number=ID_NUMBER)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    original = crypto.decrypt
    field = KYCProfile._meta.get_field("id_number")

    def edit_meanwhile(token: str) -> str:
        # Someone saves a new number between the command's read and its write.
        KYCProfile.objects.filter(pk=kyc.pk).update(id_number="E99999999", id_number_hash="x")
        return original(token)

    crypto.decrypt = edit_meanwhile
    try:
        counts = rotate_field(KYCProfile, field)
    finally:
        crypto.decrypt = original
    assert counts.raced == 1
    assert KYCProfile.objects.get(pk=kyc.pk).id_number == "E99999999"


# --- the KYC import: ciphertext and hash written, rows compared by the hash -------------------


def _kyc_file(tmp_path, name: str, rows: list[str]):
    path = tmp_path / name
    path.write_text("\n".join(["client_no,id_type,id_number,nationality,is_pep", *rows]) + "\n", encoding="utf-8")
    return path


def _import(path, **options: object):
    from clients.ingest.services import ImportOptions, ingest_file

    with path.open("rb") as stream:
        return ingest_file(kind="kyc", stream=stream, name=path.name, options=ImportOptions(**options))


def test_a_kyc_import_stores_ciphertext_and_hash_and_a_resent_file_is_all_duplicates(db: None, tmp_path) -> None:
    first, second = factories.ClientFactory(client_no="K1"), factories.ClientFactory(client_no="K2")
    rows = ["K1,resident_id,110105198005171234,CN,no", "K2,passport,E12345678,CN,no"]

    batch = _import(_kyc_file(tmp_path, "k.csv", rows))
    again = _import(_kyc_file(tmp_path, "k2.csv", rows))  # the same content: new ciphertexts, same hashes

    assert batch.rows_written == 2
    assert (again.rows_written, again.rows_duplicate, again.rows_conflict) == (0, 2, 0)
    for client, number in ((first, "110105198005171234"), (second, "E12345678")):
        kyc = KYCProfile.objects.get(client=client)
        token, digest = raw_row(kyc)
        assert kyc.id_number == number
        assert number not in token
        assert digest == crypto.blind_index(number)


def test_a_kyc_import_update_rewrites_ciphertext_and_hash(db: None, tmp_path) -> None:
    factories.ClientFactory(client_no="K1")
    _import(_kyc_file(tmp_path, "k.csv", ["K1,resident_id,110105198005171234,CN,no"]))
    repeated = ["K1,resident_id,110105198005179999,CN,no", "K1,resident_id,110105198005179999,CN,no"]

    refused = _import(_kyc_file(tmp_path, "k2.csv", repeated[:1]))
    updated = _import(_kyc_file(tmp_path, "k3.csv", repeated[:1]), allow_updates=True)
    within = _import(_kyc_file(tmp_path, "k4.csv", repeated), allow_updates=True)

    assert refused.rows_conflict == 1
    assert "110***********9999" in refused.errors.get().expected
    assert "110105198005179999" not in refused.errors.get().expected
    assert updated.rows_updated == 1
    assert (within.rows_duplicate, within.rows_conflict) == (2, 0)
    kyc = KYCProfile.objects.get()
    assert kyc.id_number == "110105198005179999"
    assert KYCProfile.objects.with_id_number("110105198005179999").get() == kyc
    assert not KYCProfile.objects.with_id_number("110105198005171234").exists()
