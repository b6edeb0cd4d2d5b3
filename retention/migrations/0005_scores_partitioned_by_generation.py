"""ClientActivity and ChurnScore become LIST-partitioned by `generation` on PostgreSQL: one
partition per generation, loaded unindexed beside the table, indexed once and attached by the
publication (brokercrm.nightly.bulk: create_side_table ... swap_in_side_table), instead of
COPYing 1M rows into four live indexes and DELETEing the previous night's 1M rows.

The tables keep their columns, defaults, checks, the unique (generation, client) and indexes.
PostgreSQL requires the partition key in the primary key: (id, generation) in the database,
while Django keeps `id` as the model's pk (ids still come from one sequence, so stay unique).
An identity column cannot be on a partitioned table before PostgreSQL 17: `id` takes its default
from a sequence owned by the column, continuing where the identity stopped. A DEFAULT partition
takes rows inserted outside a nightly load (by hand, by tests); each publication empties it.

Fast on 1M rows: the existing table becomes the partition of the generation most of its rows
belong to (usually all of them: a publication drops every other generation). It keeps its
unique constraint and indexes (ATTACH adopts them), gains the (id, generation) primary key and a
CHECK on its generation (so ATTACH does not scan it again); rows of other generations, if any,
are copied into partitions of their own. Elsewhere (SQLite) nothing changes.
"""

from django.db import migrations

MODELS = ("ClientActivity", "ChurnScore")


def _fetch(schema_editor, sql, params=None):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _is_partitioned(schema_editor, table):
    rows = _fetch(schema_editor, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
    return bool(rows) and rows[0][0] == "p"


def _next_id(schema_editor, table):
    """The next id the column's sequence would give (the identity's, before it is dropped)."""
    (sequence,) = _fetch(schema_editor, "SELECT pg_get_serial_sequence(%s, 'id')", [table])[0]
    if sequence is None:
        return 1
    last, called = _fetch(schema_editor, f"SELECT last_value, is_called FROM {sequence}")[0]  # noqa: S608
    return last + 1 if called else last


def _free_names(schema_editor, model, old):
    """Rename the old table's unique constraint and indexes (kept: ATTACH adopts them) so the
    parent can take the model's names; drop its primary key (id only)."""
    q = schema_editor.quote_name
    for constraint in model._meta.constraints:
        if constraint.__class__.__name__ == "UniqueConstraint":
            schema_editor.execute(
                f"ALTER TABLE {q(old)} RENAME CONSTRAINT {q(constraint.name)} TO {q(constraint.name + '_old')}"
            )
    for index in model._meta.indexes:
        schema_editor.execute(f"ALTER INDEX {q(index.name)} RENAME TO {q(index.name + '_old')}")
    (pkey,) = _fetch(
        schema_editor, "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'", [old]
    )[0]
    schema_editor.execute(f"ALTER TABLE {q(old)} DROP CONSTRAINT {q(pkey)}")


def _create_parent(schema_editor, model, old, next_id):
    q = schema_editor.quote_name
    table = model._meta.db_table
    schema_editor.execute(
        f"CREATE TABLE {q(table)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (generation)"
    )
    schema_editor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(table + '_pkey')} PRIMARY KEY (id, generation)")
    for constraint in model._meta.constraints:
        if constraint.__class__.__name__ == "UniqueConstraint":
            schema_editor.add_constraint(model, constraint)
    for index in model._meta.indexes:
        schema_editor.add_index(model, index)
    sequence = f"{table}_id_seq"
    schema_editor.execute(f"CREATE SEQUENCE {q(sequence)} AS bigint OWNED BY {q(table)}.id")
    schema_editor.execute("SELECT setval(%s, %s, false)", [sequence, next_id])
    schema_editor.execute(f"ALTER TABLE {q(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)")
    schema_editor.execute(f"CREATE TABLE {q(table + '_default')} PARTITION OF {q(table)} DEFAULT")
    return sequence


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    for name in MODELS:
        model = apps.get_model("retention", name)
        table = model._meta.db_table
        if _is_partitioned(schema_editor, table):
            continue
        generations = _fetch(
            schema_editor,
            f"SELECT generation, count(*) FROM {q(table)} GROUP BY generation ORDER BY 2 DESC, 1",  # noqa: S608
        )
        next_id = _next_id(schema_editor, table)
        old = f"{table}_old"
        schema_editor.execute(f"ALTER TABLE {q(table)} RENAME TO {q(old)}")
        _free_names(schema_editor, model, old)
        schema_editor.execute(f"ALTER TABLE {q(old)} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        sequence = _create_parent(schema_editor, model, old, next_id)
        if not generations:
            schema_editor.execute(f"DROP TABLE {q(old)}")
            continue
        main = generations[0][0]
        for generation, _ in generations[1:]:  # leftovers of unpublished runs: rare and small
            part = f"{table}_p{int(generation)}"
            schema_editor.execute(f"CREATE TABLE {q(part)} PARTITION OF {q(table)} FOR VALUES IN ({int(generation)})")
            schema_editor.execute(f"INSERT INTO {q(part)} SELECT * FROM {q(old)} WHERE generation = %s", [generation])  # noqa: S608
        if len(generations) > 1:
            schema_editor.execute(f"DELETE FROM {q(old)} WHERE generation <> %s", [main])  # noqa: S608
        part = f"{table}_p{int(main)}"
        schema_editor.execute(
            f"ALTER TABLE {q(old)} ADD CHECK (generation IS NOT NULL AND generation = {int(main)}), "
            "ADD PRIMARY KEY (id, generation), "
            f"ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)"
        )
        schema_editor.execute(f"ALTER TABLE {q(old)} RENAME TO {q(part)}")
        schema_editor.execute(f"ALTER TABLE {q(table)} ATTACH PARTITION {q(part)} FOR VALUES IN ({int(main)})")


def unpartition(apps, schema_editor):
    """Back to one plain table with an identity id (copies every row: slower than forwards)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    for name in MODELS:
        model = apps.get_model("retention", name)
        table = model._meta.db_table
        if not _is_partitioned(schema_editor, table):
            continue
        next_id = _next_id(schema_editor, table)
        old = f"{table}_partitioned"
        schema_editor.execute(f"ALTER TABLE {q(table)} RENAME TO {q(old)}")
        schema_editor.execute(f"CREATE TABLE {q(table)} (LIKE {q(old)} INCLUDING CONSTRAINTS)")
        schema_editor.execute(f"INSERT INTO {q(table)} SELECT * FROM {q(old)}")  # noqa: S608
        schema_editor.execute(f"DROP TABLE {q(old)} CASCADE")
        schema_editor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(table + '_pkey')} PRIMARY KEY (id)")
        schema_editor.execute(
            f"ALTER TABLE {q(table)} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {int(next_id)})"
        )
        for constraint in model._meta.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                schema_editor.add_constraint(model, constraint)
        for index in model._meta.indexes:
            schema_editor.add_index(model, index)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0004_segment_log"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
