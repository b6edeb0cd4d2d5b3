"""Database facts the bulk paths branch on (COPY on PostgreSQL, executemany on SQLite)."""

from django.db import connection


def is_postgres() -> bool:
    """True when the default database is PostgreSQL."""
    return connection.vendor == "postgresql"
