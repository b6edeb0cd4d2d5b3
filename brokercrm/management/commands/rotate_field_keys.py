"""Re-encrypt every encrypted column under the newest key and recompute its lookup hash.

    python manage.py rotate_field_keys               # every EncryptedTextField of every model
    python manage.py rotate_field_keys --dry-run     # count what would change
    python manage.py rotate_field_keys --chunk-size 5000

Key rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it),
deploy, run this command, then remove the old keys. Changing FIELD_HASH_KEY: deploy the new
key, run this command (exact lookups miss the rows not yet rehashed until it has finished).

Idempotent: a row already under the newest key with the current hash is left alone, so a
second run changes nothing and an interrupted run can simply be started again. Works in
chunks of rows by primary key, one short transaction each; a row changed by someone else
between the read and the write (its token differs) is skipped and counted, and picked up by
the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction

from brokercrm.lib import crypto
from brokercrm.lib.fields import EncryptedTextField


@dataclass
class RotationCounts:
    rows: int = 0
    rotated: int = 0
    rehashed: int = 0
    unchanged: int = 0
    raced: int = 0


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model, field))
    return found


def rotate_field(
    model: type[models.Model], field: EncryptedTextField, *, chunk_size: int = 2000, dry_run: bool = False
) -> RotationCounts:
    """Re-encrypt `field` of every row of `model` under the newest key (see the module doc)."""
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    pk = qn(model._meta.pk.column)
    column = qn(field.column)
    hash_field = model._meta.get_field(field.hash_field) if field.hash_field else None
    hash_column = qn(hash_field.column) if hash_field else None
    counts = RotationCounts()
    last: Any = None
    while True:
        where = f"WHERE {pk} > %s " if last is not None else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk}, {column}{', ' + hash_column if hash_column else ''} FROM {table} "  # noqa: S608
                f"{where}ORDER BY {pk} LIMIT %s",
                [*([last] if last is not None else []), chunk_size],
            )
            rows = cursor.fetchall()
        if not rows:
            return counts
        last = rows[-1][0]
        updates = []
        for row in rows:
            key, token = row[0], row[1]
            stored_hash = row[2] if hash_column else None
            counts.rows += 1
            if not token:
                counts.unchanged += 1
                continue
            plain = crypto.decrypt_with_primary(token)
            new_token = token
            if plain is None:
                plain = crypto.decrypt(token)  # DecryptionError names the remedy
                new_token = crypto.encrypt(plain)
                counts.rotated += 1
            new_hash = crypto.blind_index(plain) if hash_column else None
            if hash_column and new_hash != stored_hash:
                counts.rehashed += 1
            if new_token == token and new_hash == stored_hash:
                counts.unchanged += 1
                continue
            updates.append((new_token, new_hash, key, token) if hash_column else (new_token, key, token))
        if dry_run or not updates:
            continue
        assignments = f"{column} = %s" + (f", {hash_column} = %s" if hash_column else "")
        # Only if the row still holds the token read: a concurrent edit is never overwritten.
        sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s AND {column} = %s"  # noqa: S608
        with transaction.atomic(), connection.cursor() as cursor:
            for params in updates:
                cursor.execute(sql, params)
                if cursor.rowcount == 0:
                    counts.raced += 1


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column under the newest FIELD_ENCRYPTION_KEYS key and recompute its hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="rows per transaction (default 2000)")
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            for model, field in encrypted_fields():
                counts = rotate_field(model, field, chunk_size=options["chunk_size"], dry_run=options["dry_run"])
                verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
                self.stdout.write(
                    f"{model._meta.label}.{field.name}: {counts.rows} rows, {verb} {counts.rotated}, "
                    f"rehashed {counts.rehashed}, unchanged {counts.unchanged}"
                    + (f", {counts.raced} changed meanwhile (run again)" if counts.raced else "")
                )
        except crypto.DecryptionError as exc:
            raise CommandError(str(exc)) from None
