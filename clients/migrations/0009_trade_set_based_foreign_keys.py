"""The ledger's references to its client and instrument are checked once per statement, set-based,
instead of once per row (issue #3).

PostgreSQL 15 checks a foreign key with one trigger event per inserted row (an SPI query that
finds and locks the parent row): per 1,000,000 trades, about 8.7 s for the client and 5.5 s for
the instrument, more than the COPY of the rows itself. The two constraints of
`clients_trade.client_id -> clients_client(id)` and `clients_trade.instrument_id ->
clients_instrument(id)` are replaced by triggers that do the same checks once per statement,
over the statement's transition tables:

- ledger side, AFTER INSERT / AFTER UPDATE ... FOR EACH STATEMENT (`clients_fk_child_check`):
  (1) lock the distinct referenced parent rows FOR KEY SHARE, exactly the lock the row-level
  check takes (so a concurrent DELETE of a parent, or a change of its id, waits for this
  transaction and then fails on the trade, instead of slipping in between), and (2) if fewer
  parent rows were locked than there are distinct keys, raise SQLSTATE 23503
  (foreign_key_violation) naming the constraint, the table and one missing key. An UPDATE checks
  only the rows whose key changed (as PostgreSQL's RI_FKey_fk_upd_check_required does);
- parent side, AFTER DELETE ... FOR EACH STATEMENT (`clients_fk_parent_check`): raise 23503 if a
  trade still references a removed id (a probe of `trade_client_time_id` / the instrument index
  per removed id, the referencing row locked FOR KEY SHARE as PostgreSQL's NO ACTION check
  does); AFTER UPDATE OF id ... FOR EACH ROW WHEN the id changed, the same for an id that no
  longer exists (row-level because a statement-level UPDATE trigger cannot have a column list
  with transition tables: it would copy every updated client into a transition table, while a
  row trigger with a column list and WHEN costs nothing when the id is not set, i.e. always);
  AFTER TRUNCATE, raise if the ledger still holds a row (a TRUNCATE of clients and trades
  together is allowed, as before; `TRUNCATE clients_client CASCADE` no longer empties the
  ledger along with it: it is refused while trades exist).

The functions are SECURITY DEFINER, as PostgreSQL runs its own checks as the table owner.

What changes: the checks are no longer DEFERRABLE INITIALLY DEFERRED. They run at the end of
each statement, as if `SET CONSTRAINTS ... IMMEDIATE` (which the importer set anyway). Nothing
in the project inserts trades before their client or instrument, or deletes a parent before its
trades, within a transaction (the demo loads clients and instruments first and truncates
clients and trades in one statement; the ORM's PROTECT refuses a delete before the database).
`SET CONSTRAINTS` and `session_replication_role = replica` behave as for a foreign key (the
latter disables these triggers as it does PostgreSQL's own).

Concurrency (READ COMMITTED, the project's isolation): the same as the foreign key, because the
same row locks are taken: an insert holds KEY SHARE on each referenced parent until commit; a
DELETE of the parent waits for it, then its statement-level check (a fresh snapshot) sees the
committed trade and fails. A parent deleted first makes the insert's lock wait; once it
commits the locked row is gone, fewer rows are locked than wanted, and the insert fails.
Under REPEATABLE READ the ledger side raises a serialization failure on a concurrently deleted
parent (as PostgreSQL's check does), but the parent side reads the ledger with the
transaction's snapshot: PostgreSQL's own check would also see trades committed after that
snapshot (and fail with a serialization error), this one cannot. Delete clients and
instruments at READ COMMITTED (Django's default; the project uses no other isolation level).

The migration is quick on a large ledger: triggers are created first, then the constraints are
dropped, in one transaction, so one check or the other holds at every moment; both are catalog
changes (brief locks, bounded by lock_timeout). Nothing is re-checked row by row: a constraint
PostgreSQL has validated is dropped as is; one left NOT VALID is checked once, set-based (an
anti-join), before it goes. Backwards: the constraints come back NOT VALID and are then
validated by one set-based scan (VALIDATE CONSTRAINT), and the triggers go.

SQLite (development, the demo, the fast tests) keeps the foreign keys its tables have (this
migration only changes Django's state there): SQLite checks them itself, deferred to commit as
before, and none of this is needed at its sizes. `tests/ingest/test_ledger_references.py` pins
that they are still there, since a future rebuild of clients_trade on SQLite from this state
would drop them.
"""

from django.db import migrations, models
from django.db.models import deletion

LOCK_TIMEOUT = "10s"

# (ledger column, parent table, logical constraint name: used in the error messages and as the
# triggers' prefix)
REFERENCES = [
    ("client_id", "clients_client", "clients_trade_client_id_fk"),
    ("instrument_id", "clients_instrument", "clients_trade_instrument_id_fk"),
]
CHILD = "clients_trade"

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION clients_fk_child_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
-- Statement-level check of one foreign key on the referencing table, over the transition
-- tables new_rows (and old_rows on UPDATE). TG_ARGV: column, parent table, parent column,
-- constraint name.
DECLARE
    fk_col  text := TG_ARGV[0];
    parent  text := format('%I.%I', TG_TABLE_SCHEMA, TG_ARGV[1]);
    pk_col  text := TG_ARGV[2];
    keys    text;
    wanted  bigint;
    locked  bigint;
    missing text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        keys := format('SELECT DISTINCT n.%1$I AS k FROM new_rows n WHERE n.%1$I IS NOT NULL', fk_col);
    ELSE
        -- Only rows whose key changed, as RI_FKey_fk_upd_check_required (the insert was checked).
        keys := format(
            'SELECT DISTINCT n.%1$I AS k FROM new_rows n WHERE n.%1$I IS NOT NULL'
            ' AND NOT EXISTS (SELECT 1 FROM old_rows o WHERE o.id = n.id AND o.%1$I = n.%1$I)', fk_col);
    END IF;
    -- The lock is the row-level check's: FOR KEY SHARE of each referenced parent row, once.
    EXECUTE format(
        'WITH keys AS MATERIALIZED (%1$s),'
        ' locked AS MATERIALIZED (SELECT p.%3$I FROM %2$s p WHERE p.%3$I IN (SELECT k FROM keys) FOR KEY SHARE OF p)'
        ' SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM locked)', keys, parent, pk_col)
        INTO wanted, locked;
    IF wanted = locked THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        'SELECT k::text FROM (%1$s) keys WHERE NOT EXISTS (SELECT 1 FROM %2$s p WHERE p.%3$I = keys.k)'
        ' ORDER BY k LIMIT 1', keys, parent, pk_col)
        INTO missing;
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[3]
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[3], SCHEMA = TG_TABLE_SCHEMA,
              TABLE = TG_TABLE_NAME, COLUMN = fk_col,
              DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                              fk_col, coalesce(missing, '?'), TG_ARGV[1]);
END
$fn$;

CREATE OR REPLACE FUNCTION clients_fk_parent_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
-- The referenced side of one foreign key: no referencing row may be left pointing at a
-- removed key. DELETE: statement-level over old_rows; UPDATE: row-level (OF the key, WHEN it
-- changed); TRUNCATE: statement-level. TG_ARGV: referencing table, its column, parent column,
-- constraint name.
DECLARE
    child   text := format('%I.%I', TG_TABLE_SCHEMA, TG_ARGV[0]);
    fk_col  text := TG_ARGV[1];
    pk_col  text := TG_ARGV[2];
    found   text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT c.%1$I::text FROM %2$s c LIMIT 1', fk_col, child) INTO found;
        IF found IS NOT NULL THEN
            RAISE EXCEPTION 'cannot truncate table "%": table "%" still references it (foreign key constraint "%")',
                TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[3]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[3], SCHEMA = TG_TABLE_SCHEMA,
                      TABLE = TG_ARGV[0], HINT = format('Truncate table "%s" at the same time.', TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END IF;
    -- As PostgreSQL's NO ACTION check: the first referencing row, locked FOR KEY SHARE.
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT c.%1$I::text FROM %2$s c WHERE c.%1$I IN (SELECT o.%3$I FROM old_rows o)'
                       ' LIMIT 1 FOR KEY SHARE OF c', fk_col, child, pk_col) INTO found;
    ELSE
        -- Row-level (see the migration): the old key, unless a row holds it again after the statement.
        EXECUTE format('SELECT 1 FROM %1$I.%2$I p WHERE p.%3$I = ($1).%3$I', TG_TABLE_SCHEMA, TG_TABLE_NAME, pk_col)
            INTO found USING OLD;
        IF found IS NOT NULL THEN
            RETURN NULL;
        END IF;
        EXECUTE format('SELECT c.%1$I::text FROM %2$s c WHERE c.%1$I = ($1).%3$I LIMIT 1 FOR KEY SHARE OF c',
                       fk_col, child, pk_col) INTO found USING OLD;
    END IF;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
            TG_TABLE_NAME, TG_ARGV[3], TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[3], SCHEMA = TG_TABLE_SCHEMA,
                  TABLE = TG_ARGV[0],
                  DETAIL = format('Key (%s)=(%s) is still referenced from table "%s".', pk_col, found, TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$fn$;
"""


def trigger_sql(column: str, parent: str, name: str) -> list[str]:
    """The five triggers of one reference: two on the ledger, three on the parent."""
    child_args = f"'{column}', '{parent}', 'id', '{name}'"
    parent_args = f"'{CHILD}', '{column}', 'id', '{name}'"
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {CHILD} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION clients_fk_child_check({child_args})",
        f"CREATE TRIGGER {name}_update AFTER UPDATE ON {CHILD} REFERENCING OLD TABLE AS old_rows "
        f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION clients_fk_child_check({child_args})",
        f"CREATE TRIGGER {name}_parent_delete AFTER DELETE ON {parent} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION clients_fk_parent_check({parent_args})",
        f"CREATE TRIGGER {name}_parent_update AFTER UPDATE OF id ON {parent} FOR EACH ROW "
        f"WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION clients_fk_parent_check({parent_args})",
        f"CREATE TRIGGER {name}_parent_truncate AFTER TRUNCATE ON {parent} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION clients_fk_parent_check({parent_args})",
    ]


def trigger_names(column: str, parent: str, name: str) -> list[tuple[str, str]]:
    """(trigger, table) of one reference."""
    return [
        (f"{name}_insert", CHILD),
        (f"{name}_update", CHILD),
        (f"{name}_parent_delete", parent),
        (f"{name}_parent_update", parent),
        (f"{name}_parent_truncate", parent),
    ]


def _foreign_keys(cursor, column: str, parent: str) -> list[tuple[str, bool]]:
    """(name, validated) of the foreign key constraints of clients_trade.<column> -> <parent>."""
    cursor.execute(
        "SELECT c.conname, c.convalidated FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
        "WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND c.confrelid = %s::regclass AND a.attname = %s",
        [CHILD, parent, column],
    )
    return cursor.fetchall()


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps its foreign keys (see the docstring)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(FUNCTIONS)
        for column, parent, name in REFERENCES:
            for statement in trigger_sql(column, parent, name):
                cursor.execute(statement)
        for column, parent, _name in REFERENCES:
            for constraint, validated in _foreign_keys(cursor, column, parent):
                if not validated:
                    # Checked once, set-based, before the constraint goes (the triggers hold from now on).
                    cursor.execute(
                        f"SELECT t.{column} FROM {CHILD} t WHERE NOT EXISTS "  # noqa: S608 - constants
                        f"(SELECT 1 FROM {parent} p WHERE p.id = t.{column}) LIMIT 1"
                    )
                    orphan = cursor.fetchone()
                    if orphan is not None:
                        raise RuntimeError(f"{CHILD}.{column} = {orphan[0]} is not in {parent}: fix it first")
                cursor.execute(f'ALTER TABLE {CHILD} DROP CONSTRAINT "{constraint}"')


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    trade = apps.get_model("clients", "Trade")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        for column, parent, name in REFERENCES:
            field = trade._meta.get_field(column.removesuffix("_id"))
            constraint = schema_editor._fk_constraint_name(trade, field, "_fk_%(to_table)s_%(to_column)s")
            cursor.execute(
                f"ALTER TABLE {CHILD} ADD CONSTRAINT {constraint} FOREIGN KEY ({column}) REFERENCES {parent} (id) "
                "DEFERRABLE INITIALLY DEFERRED NOT VALID"
            )
            cursor.execute(f"ALTER TABLE {CHILD} VALIDATE CONSTRAINT {constraint}")
            for trigger, table in trigger_names(column, parent, name):
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS clients_fk_child_check()")
        cursor.execute("DROP FUNCTION IF EXISTS clients_fk_parent_check()")


class Migration(migrations.Migration):
    dependencies = [("clients", "0008_client_login")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="trade",
                    name="client",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=deletion.PROTECT,
                        related_name="trades",
                        to="clients.client",
                    ),
                ),
                migrations.AlterField(
                    model_name="trade",
                    name="instrument",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=deletion.PROTECT,
                        related_name="trades",
                        to="clients.instrument",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward, elidable=False)],
        ),
    ]
