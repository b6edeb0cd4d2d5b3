"""KYC ID numbers encrypted at rest (brokercrm.lib.crypto), with a keyed hash for lookup.

The column becomes text (a Fernet token of an 18-character ID number is 120 characters);
existing plaintext rows are encrypted in chunks and their hash filled, then the hash is
indexed. Idempotent: a row already holding a token is left alone. Backwards: the tokens are
decrypted again before the column shrinks back to varchar(64).

Raw SQL, not the historical model: its field would try to decrypt the plaintext it reads.
"""

from django.db import migrations, models

import brokercrm.lib.fields

CHUNK = 2000
TABLE = "clients_kycprofile"


def _rows(connection, after):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, id_number FROM {TABLE} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608 - constant table
            [after, CHUNK],
        )
        return cursor.fetchall()


def _is_token(value):
    from brokercrm.lib import crypto

    if not crypto.looks_encrypted(value):
        return False
    try:
        crypto.decrypt(value)
    except crypto.DecryptionError:
        return False
    return True


def encrypt_id_numbers(apps, schema_editor):
    from brokercrm.lib import crypto

    connection = schema_editor.connection
    last = 0
    while rows := _rows(connection, last):
        last = rows[-1][0]
        updates = []
        for pk, value in rows:
            if not value:
                updates.append(("", "", pk))
            elif _is_token(value):
                updates.append((value, crypto.blind_index(crypto.decrypt(value)), pk))
            else:
                updates.append((crypto.encrypt(value), crypto.blind_index(value), pk))
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {TABLE} SET id_number = %s, id_number_hash = %s WHERE id = %s", updates)  # noqa: S608


def decrypt_id_numbers(apps, schema_editor):
    from brokercrm.lib import crypto

    connection = schema_editor.connection
    last = 0
    while rows := _rows(connection, last):
        last = rows[-1][0]
        updates = [(crypto.decrypt(value), pk) for pk, value in rows if value and _is_token(value)]
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {TABLE} SET id_number = %s WHERE id = %s", updates)  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_import_batch"),
    ]

    operations = [
        migrations.AddField(
            model_name="kycprofile",
            name="id_number_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="kycprofile",
            name="id_number",
            field=brokercrm.lib.fields.EncryptedTextField(
                hash_field="id_number_hash",
                help_text="Sensitive: encrypted at rest, shown masked to everyone but compliance.",
                max_length=64,
            ),
        ),
        migrations.RunPython(encrypt_id_numbers, decrypt_id_numbers, elidable=False),
        migrations.AddIndex(
            model_name="kycprofile",
            index=models.Index(fields=["id_number_hash"], name="kyc_id_number_hash"),
        ),
    ]
