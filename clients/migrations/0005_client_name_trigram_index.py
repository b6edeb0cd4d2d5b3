"""Trigram indexes for the client search (PostgreSQL only).

The book search and the admin search match part of a name (`name__icontains`, which Django
writes as `UPPER(name) LIKE UPPER('%...%')`) or the start of a client number
(`client_no__istartswith`: `UPPER(client_no) LIKE UPPER('...%')`). A B-tree serves neither, so
a firm-wide user's search read the whole client table. GIN trigram indexes on exactly those
expressions serve both (a BitmapOr of the two). pg_trgm is a trusted extension: the database
owner may create it. SQLite (development) gets nothing: its books are small.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS client_name_upper_trgm ON clients_client USING gin (UPPER(name::text) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS client_no_upper_trgm ON clients_client USING gin (UPPER(client_no::text) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS client_name_upper_trgm",
    "DROP INDEX IF EXISTS client_no_upper_trgm",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0004_client_assignment_history"),
    ]

    operations = [migrations.RunPython(forward, backward)]
