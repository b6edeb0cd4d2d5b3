"""Split the client base into contiguous client-id ranges of about equal size."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from clients.models import Client


def default_chunk_size() -> int:
    return int(getattr(settings, "NIGHTLY_CHUNK_SIZE", 50_000))


def client_id_ranges(chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Inclusive (first id, last id) ranges covering every client, each holding at most
    `chunk_size` clients (gaps in the id sequence do not make chunks uneven).

    Ranges cover all clients, closed ones included: each stage filters its own population
    inside its range. One pass over the primary-key index: every chunk_size-th id starts a range.
    """
    size = chunk_size or default_chunk_size()
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    table = connection.ops.quote_name(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {table}) numbered "  # noqa: S608
            "WHERE (n - 1) %% %s = 0 ORDER BY id",
            [size],
        )
        starts = [row[0] for row in cursor.fetchall()]
        if not starts:
            return []
        cursor.execute(f"SELECT MAX(id) FROM {table}")  # noqa: S608
        last = cursor.fetchone()[0]
    ends = [start - 1 for start in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))
