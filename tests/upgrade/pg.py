"""PostgreSQL helpers for the upgrade and backup tests: scratch databases beside the test
database, manage.py in a child process against them, a pg_dump plain-file loader, and
catalogue-driven snapshots (every table, every row, every foreign key).

The tests here never use pytest-django's test database: they need databases at other
schema versions, and pg_dump/pg_restore need committed data.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# Tables whose rows the migrate command itself adds (post_migrate: new models' content types
# and permissions): after an upgrade they hold at least the old rows.
GROWS_ON_MIGRATE = frozenset({"django_content_type", "auth_permission"})
SKIP_TABLES = frozenset({"django_migrations", "django_session"})


# --- databases -----------------------------------------------------------------------------


def _conninfo(dbname: str) -> dict[str, Any]:
    cfg = settings.DATABASES["default"]
    info = {"dbname": dbname, "user": cfg.get("USER") or None, "password": cfg.get("PASSWORD") or None}
    info["host"] = cfg.get("HOST") or None
    info["port"] = cfg.get("PORT") or None
    return {k: v for k, v in info.items() if v is not None}


def scratch_name(suffix: str) -> str:
    """`<configured database name>_<suffix>`: the configured name (not pytest's `test_` copy),
    so each developer's and CI's scratch databases stay under their own prefix."""
    base = re.sub(r"^test_", "", settings.DATABASES["default"]["NAME"])
    return f"{base}_{suffix}"[:63]


def url(dbname: str) -> str:
    """A DATABASE_URL for `dbname` with the test settings' credentials."""
    cfg = settings.DATABASES["default"]
    user = cfg.get("USER") or ""
    password = cfg.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = cfg.get("HOST") or "localhost"
    port = cfg.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{dbname}"


def connect(dbname: str, *, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(**_conninfo(dbname), autocommit=autocommit)


def create_database(dbname: str) -> None:
    drop_database(dbname)
    with connect("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(dbname)))


def drop_database(dbname: str) -> None:
    with connect("postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@contextmanager
def scratch_database(suffix: str) -> Iterator[str]:
    name = scratch_name(suffix)
    create_database(name)
    try:
        yield name
    finally:
        drop_database(name)


# --- the application in a child process ------------------------------------------------------


def child_env(dbname: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"}}
    env.update(
        DATABASE_URL=url(dbname),
        DJANGO_SETTINGS_MODULE="brokercrm.settings.test",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def manage(dbname: str, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """`python manage.py <args>` against `dbname`, Celery eager (no REDIS_URL)."""
    proc = subprocess.run(  # noqa: S603
        [PYTHON, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=child_env(dbname),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def dbtool(dbname: str, *args: str, timeout: int = 600) -> str:
    """`python -m tests.upgrade.dbtool <args>` against `dbname`; returns its stdout."""
    proc = subprocess.run(  # noqa: S603
        [PYTHON, "-m", "tests.upgrade.dbtool", *args],
        cwd=ROOT,
        env=child_env(dbname),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"dbtool {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def sqlite_migrate(path: Path, node: tuple[str, str], *, timeout: int = 600) -> None:
    """Migrate the SQLite database file `path` to `node` (app, migration) in a child process
    (`python -m tests.upgrade.dbtool migrate app:name`): a data migration's SQLite path, tested
    on its own file while the test process keeps its own database."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"}}
    env.update(DATABASE_URL=f"sqlite:///{path}", DJANGO_SETTINGS_MODULE="brokercrm.settings.test")
    proc = subprocess.run(  # noqa: S603
        [PYTHON, "-m", "tests.upgrade.dbtool", "migrate", ":".join(node)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"migrate {':'.join(node)} exited {proc.returncode}\n{proc.stderr[-4000:]}")


# --- loading a pg_dump plain file without psql ------------------------------------------------

_COPY = re.compile(r"^COPY (\S+) \((.*)\) FROM stdin;$")


def load_plain_dump(conn: psycopg.Connection, path: Path) -> None:
    """Run a pg_dump plain-format file (COPY data, DDL, setval) in one transaction.

    psql meta-commands (`\\restrict` of recent pg_dump releases) are skipped. Django's foreign
    keys are DEFERRABLE INITIALLY DEFERRED, so rows load in any order and are checked at commit.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh, conn.transaction(), conn.cursor() as cur:
        statement: list[str] = []
        lines = iter(fh)
        for line in lines:
            if not statement and (line.startswith("--") or not line.strip() or line.startswith("\\")):
                continue
            match = _COPY.match(line.rstrip("\n")) if not statement else None
            if match:
                with cur.copy(f"COPY {match.group(1)} ({match.group(2)}) FROM STDIN") as copy:
                    for row in lines:
                        if row == "\\.\n":
                            break
                        copy.write(row)
                continue
            statement.append(line)
            if line.rstrip().endswith(";"):
                cur.execute("".join(statement))
                statement = []
        assert not statement, f"unterminated statement at the end of {path.name}: {''.join(statement)[:200]}"
        cur.execute("SELECT pg_catalog.set_config('search_path', 'public', false)")


# --- catalogue-driven snapshots ---------------------------------------------------------------


def tables(conn: psycopg.Connection) -> list[str]:
    """Application tables: ordinary and partitioned roots (partitions count under their root)."""
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows if r[0] not in SKIP_TABLES]


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
        for t in tables(conn)
    }


def key_columns(conn: psycopg.Connection, table: str) -> list[str]:
    """The primary key's columns (or every column, for a table without one)."""
    rows = conn.execute(
        """SELECT a.attname FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)""",
        [f'public."{table}"'],
    ).fetchall()
    return [r[0] for r in rows] or columns(conn, table)


def columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position""",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def norm(value: Any) -> Any:
    """One comparable JSON-safe form for a value read by psycopg or by the ORM."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def snapshot(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Every row of every application table: {table: {"key": [...], "columns": [...], "rows": {key: row}}}."""
    out: dict[str, dict[str, Any]] = {}
    for table in tables(conn):
        cols = columns(conn, table)
        key = key_columns(conn, table)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(table)
        )
        key_idx = [cols.index(k) for k in key]
        rows = {}
        for row in conn.execute(query):
            values = [norm(v) for v in row]
            rows[json.dumps([values[i] for i in key_idx])] = dict(zip(cols, values, strict=True))
        out[table] = {"key": key, "columns": cols, "rows": rows}
    return out


def orphaned_foreign_keys(conn: psycopg.Connection) -> dict[str, int]:
    """Every foreign key constraint in the database: rows whose referenced row is missing."""
    found = {}
    fks = conn.execute(
        """SELECT con.conname, con.conrelid::regclass::text, con.confrelid::regclass::text,
                  ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i),
                  ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.n ORDER BY k.i)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
           WHERE con.contype = 'f' AND NOT c.relispartition"""
    ).fetchall()
    for name, child, parent, ccols, pcols in fks:
        cond = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
            for p, c in zip(pcols, ccols, strict=True)
        )
        notnull = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in ccols)
        query = sql.SQL("SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
            sql.SQL(child), notnull, sql.SQL(parent), cond
        )
        n = conn.execute(query).fetchone()[0]
        if n:
            found[f"{name} ({child} -> {parent})"] = n
    return dict(sorted(found.items())) if found else {}


def fk_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()[0]


def sequences_behind(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """Serial/identity columns whose sequence would hand out a value already in the table
    (the next insert would collide): {table.column: (next value, max in the table)}."""
    behind = {}
    rows = conn.execute(
        """SELECT c.relname, a.attname, pg_get_serial_sequence(quote_ident(c.relname), a.attname)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL"""
    ).fetchall()
    for table, column, seq in rows:
        max_id = conn.execute(
            sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))
        ).fetchone()[0]
        last, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(seq))).fetchone()
        next_value = last + 1 if called else last
        if max_id is not None and next_value <= max_id:
            behind[f"{table}.{column}"] = (next_value, max_id)
    return behind
