"""A trigram index for the client search by name (PostgreSQL only).

The book search and the admin search match part of a name (`name__icontains`, which Django
writes as `UPPER(name) LIKE UPPER('%...%')`). A B-tree cannot serve that, so a firm-wide user's
search read the whole client table; a GIN trigram index on exactly that expression can (for
three characters or more). The client number is searched by prefix (`client_no__startswith`),
which the unique column's `varchar_pattern_ops` index already serves: a trigram index on client
numbers that all share a prefix ("DM000...") made the planner read it whole instead of the
manager's 300 clients (1M-client book: 42 ms against 2 ms). pg_trgm is a trusted extension: the
database owner may create it. SQLite (development) gets nothing: its books are small.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS client_name_upper_trgm ON clients_client USING gin (UPPER(name::text) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS client_name_upper_trgm",
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
