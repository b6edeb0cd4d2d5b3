"""Pieces shared by migrations that change a large PostgreSQL table without blocking writes.

Migrations import them, so their behaviour must not change once a migration uses them.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation


def index_invalid(cursor: Any, name: str) -> bool:
    """Whether index `name` of the current schema exists and is invalid (an interrupted CREATE
    INDEX CONCURRENTLY leaves one behind)."""
    cursor.execute(
        "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        [name],
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def build_index_concurrently(schema_editor: Any, name: str, sql: str) -> None:
    """Run `sql` (CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS `name` ...), replacing an
    invalid leftover of an interrupted run first; raise if the new index is not valid."""
    with schema_editor.connection.cursor() as cursor:
        if index_invalid(cursor, name):
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        cursor.execute(sql)
        if index_invalid(cursor, name):
            raise RuntimeError(f"index {name} was built invalid (a duplicate?); nothing else was changed")


class UnlessPostgres(Operation):
    """`operation` on the model state everywhere, on the database except on PostgreSQL (where the
    migration's own RunPython makes the same change without blocking writes)."""

    reduces_to_sql = False

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"{self.operation.describe()} (not on PostgreSQL)"
