"""Two indexes fewer to maintain on every ledger insert; the same rules (issue #3).

- `trade_id`: unique by a named constraint instead of `unique=True`. The constraint is the one
  the column already has on PostgreSQL (`clients_trade_trade_id_key`, kept as it is); what goes
  is the second index `unique=True` gave a CharField there, `(trade_id varchar_pattern_ops)`,
  which serves only LIKE 'prefix%' and which nothing uses (trade ids are looked up whole:
  admin `trade_id__exact`, the importer's ON CONFLICT, `Trade.objects.get(trade_id=...)`).
- `reverses`: a ForeignKey with the partial unique constraint `trade_reversed_at_most_once`
  (`WHERE reverses_id IS NOT NULL`) instead of a OneToOneField. A trade is still reversed at
  most once, enforced by the database; the full unique index of the OneToOneField also held a
  NULL entry for every original trade (nearly every row) and every insert paid for it. The
  partial index serves every lookup by `reverses_id = x` (the `reversed_by` join, the
  importer's "already reversed" check, the PROTECT check when a trade would be deleted). The
  foreign key constraint itself is not touched.

PostgreSQL, safe on a 20M-row ledger (this migration is not atomic): the partial unique index
is built with CREATE INDEX CONCURRENTLY (no lock on writes; a leftover invalid index from an
interrupted run is dropped first, and the build is checked valid), and only then is the old
unique constraint dropped (a catalog change: a brief ACCESS EXCLUSIVE lock, bounded by
lock_timeout), so the rule is enforced at every moment; the pattern index goes by DROP INDEX
CONCURRENTLY. Backwards: the same in reverse. Other databases (SQLite: development, the demo,
the fast tests) get the plain schema operations (a table rebuild; their ledgers are small).
"""

from django.db import migrations, models
from django.db.models import deletion

from brokercrm.lib.migration_ops import UnlessPostgres, build_index_concurrently

PARTIAL = "trade_reversed_at_most_once"
FULL = "clients_trade_reverses_id_key"
LIKE = "clients_trade_trade_id_936dc440_like"
LOCK_TIMEOUT = "10s"


def _pattern_indexes(cursor) -> list[str]:
    """The varchar_pattern_ops index(es) on clients_trade.trade_id (Django names it by a hash)."""
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'clients_trade' "
        "AND indexdef LIKE %s",
        ["%(trade_id varchar_pattern_ops)%"],
    )
    return [row[0] for row in cursor.fetchall()]


def _with_lock_timeout(cursor, sql: str) -> None:
    cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        cursor.execute(sql)
    finally:
        cursor.execute("RESET lock_timeout")


def postgres_forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    build_index_concurrently(
        schema_editor,
        PARTIAL,
        f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{PARTIAL}" ON clients_trade (reverses_id) '
        "WHERE reverses_id IS NOT NULL",
    )
    with schema_editor.connection.cursor() as cursor:
        _with_lock_timeout(cursor, f'ALTER TABLE clients_trade DROP CONSTRAINT IF EXISTS "{FULL}"')
        for name in _pattern_indexes(cursor):
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def postgres_backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    like = f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{LIKE}" ON clients_trade (trade_id varchar_pattern_ops)'
    build_index_concurrently(schema_editor, LIKE, like)
    full = f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{FULL}" ON clients_trade (reverses_id)'
    build_index_concurrently(schema_editor, FULL, full)
    with schema_editor.connection.cursor() as cursor:
        _with_lock_timeout(cursor, f'ALTER TABLE clients_trade ADD CONSTRAINT "{FULL}" UNIQUE USING INDEX "{FULL}"')
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{PARTIAL}"')


# Each rule's constraint is added before the field loses its own, so that a database rebuilt
# operation by operation (SQLite) never goes without it.
STATE = [
    migrations.AddConstraint(
        model_name="trade",
        constraint=models.UniqueConstraint(fields=("trade_id",), name="clients_trade_trade_id_key"),
    ),
    migrations.AlterField(
        model_name="trade",
        name="trade_id",
        field=models.CharField(help_text="External trade id: the idempotency key.", max_length=40),
    ),
    migrations.AddConstraint(
        model_name="trade",
        constraint=models.UniqueConstraint(
            condition=models.Q(("reverses__isnull", False)), fields=("reverses",), name=PARTIAL
        ),
    ),
    migrations.AlterField(
        model_name="trade",
        name="reverses",
        field=models.ForeignKey(
            blank=True,
            db_index=False,
            help_text="The trade this row cancels.",
            null=True,
            on_delete=deletion.PROTECT,
            related_name="reversed_by",
            to="clients.trade",
        ),
    ),
]


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY

    dependencies = [
        ("clients", "0005_client_name_trigram_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=STATE,
            database_operations=[
                migrations.RunPython(postgres_forward, postgres_backward, elidable=False),
                *(UnlessPostgres(operation) for operation in STATE),
            ],
        ),
    ]
