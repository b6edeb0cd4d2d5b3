"""Run in a child process by the upgrade tests (`python -m tests.upgrade.dbtool ...`), against
the database in DATABASE_URL, with the code at HEAD.

    migrate-to <json>            migrate to the leaf nodes in the JSON's "leaf_nodes" (no signals)
    migrate <app:name|app:zero>...   migrate to these nodes, forwards or backwards (no signals)
    orm-values <spec> <out>      read columns through the models at HEAD (field converters applied)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def migrate_to(manifest_path: str) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    leaves = json.loads(Path(manifest_path).read_text())["leaf_nodes"]
    targets = [(app, name) for app, names in sorted(leaves.items()) for name in names]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(targets)
    executor.migrate(targets, plan=plan)
    print(json.dumps({"applied": [f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards]}))


def migrate(*nodes: str) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    targets = []
    for node in nodes:
        app, name = node.split(":")
        targets.append((app, None if name == "zero" else name))
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(targets)
    executor.migrate(targets, plan=plan)
    print(json.dumps({"plan": [f"{'-' if backwards else '+'}{m.app_label}.{m.name}" for m, backwards in plan]}))


def orm_values(spec_path: str, out_path: str) -> None:
    """spec: {table: {"key": [columns], "columns": [columns]}}. For each table's model at HEAD,
    read the key and the columns through the ORM. A column that no longer exists is read as the
    model attribute of the same name (a property over new storage), if there is one."""
    from django.apps import apps

    from tests.upgrade.pg import norm

    spec = json.loads(Path(spec_path).read_text())
    models = {m._meta.db_table: m for m in apps.get_models() if not m._meta.proxy and m._meta.managed}
    out: dict[str, object] = {"tables": {}, "unmapped": []}
    for table, wanted in spec.items():
        model = models.get(table)
        if model is None:
            out["unmapped"].append(f"{table}: no model at HEAD")
            continue
        by_column = {f.column: f for f in model._meta.concrete_fields}
        key_fields = [by_column[c] for c in wanted["key"]]
        readers = {}
        for column in wanted["columns"]:
            field = by_column.get(column)
            if field is not None:
                readers[column] = ("field", field.attname)
            elif hasattr(model, column):
                readers[column] = ("attr", column)
            else:
                out["unmapped"].append(f"{table}.{column}: no field or attribute at HEAD")
        rows = {}
        for obj in model._base_manager.all().iterator(chunk_size=5000):
            key = json.dumps([norm(getattr(obj, f.attname)) for f in key_fields])
            rows[key] = {c: norm(getattr(obj, name)) for c, (_, name) in readers.items()}
        out["tables"][table] = rows
    Path(out_path).write_text(json.dumps(out))


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, *args = argv
    {"migrate-to": migrate_to, "migrate": migrate, "orm-values": orm_values}[command](*args)


if __name__ == "__main__":
    main(sys.argv[1:])
