"""Every data migration (RunPython / RunSQL) has a test that migrates to the node before it,
has rows in place, migrates forward and checks the effect (and, where it is reversible,
migrates back).

`test_every_data_migration_has_a_test` keeps it so: it lists the RunPython and RunSQL
operations of every migration on disk and fails for one that no test file names as the
tuple `("<app>", "<name>")` (the form MigrationExecutor targets take). The data migrations and their tests today:

- segmentation.0001_initial: creates segmentation_tierresult LIST-partitioned by as_of on
  PostgreSQL (RunPython). Test: test_segmentation_0001_tierresult_partitioned, here.
- compliance.0001_initial: the audit chain's head row, the append-only and the
  severity-never-falls triggers (RunPython). Test: test_compliance_0001_audit_head_and_triggers, here.
- clients.0003_kyc_id_number_encrypted: encrypts KYC ID numbers and fills their blind index
  (RunPython). Its own test is written with it; test_upgrade.py also reads every first-release
  ID number back through the model after the upgrade.
- clients.0004_client_assignment_history: backfills every client's current assignment and
  installs triggers that keep the history (RunPython). Test: test_clients_0004_assignment_history_backfill_and_triggers,
  here (on the first release's 304 clients).
- clients.0005_client_name_trigram_index: pg_trgm and a GIN trigram index for the client
  search (RunPython, PostgreSQL only). Test: test_clients_0005_trigram_indexes, here.
- retention.0003_client_opened_on_index: an index on clients_client.opened_on (RunSQL).
  Test: test_retention_0003_opened_on_index, here.
- clients.0006_trade_ledger_lighter_indexes: the ledger's reversal rule becomes a partial unique
  index built concurrently, and trade_id's pattern index goes (RunPython, PostgreSQL; the
  schema editor elsewhere). Test: test_clients_0006_trade_ledger_lighter_indexes, here.
- clients.0007_trade_client_time_id_index: the per-client ledger index gains the id, built and
  swapped concurrently (RunPython, PostgreSQL; the schema editor elsewhere). Test:
  test_clients_0007_trade_client_time_id_index, here.
- clients.0009_trade_set_based_foreign_keys: the ledger's client and instrument foreign keys
  become statement-level triggers (RunPython, PostgreSQL; state only elsewhere). Test:
  test_clients_0009_trade_set_based_foreign_keys, here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import psycopg
import pytest
from django.db import migrations
from django.db.migrations.loader import MigrationLoader

from tests.upgrade import pg

TESTS = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).parent / "fixtures" / "first_release.json"
DATA = Path(__file__).parent / "fixtures" / "first_release.sql.gz"
GENESIS = "0" * 64
COMPLIANCE_0001 = ("compliance", "0001_initial")
SEGMENTATION_0001 = ("segmentation", "0001_initial")
CLIENTS_0003 = ("clients", "0003_kyc_id_number_encrypted")
CLIENTS_0004 = ("clients", "0004_client_assignment_history")
CLIENTS_0005 = ("clients", "0005_client_name_trigram_index")
CLIENTS_0006 = ("clients", "0006_trade_ledger_lighter_indexes")
CLIENTS_0007 = ("clients", "0007_trade_client_time_id_index")
CLIENTS_0008 = ("clients", "0008_client_login")
CLIENTS_0009 = ("clients", "0009_trade_set_based_foreign_keys")
RETENTION_0002 = ("retention", "0002_work")
RETENTION_0003 = ("retention", "0003_client_opened_on_index")


def _data_operations(operations):
    for op in operations:
        if isinstance(op, migrations.RunPython | migrations.RunSQL):
            yield op
        elif isinstance(op, migrations.SeparateDatabaseAndState):
            yield from _data_operations(op.database_operations)


def data_migrations() -> list[tuple[str, str]]:
    """(app, name) of every project migration on disk with a RunPython or RunSQL operation."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    project = {p.name for p in pg.ROOT.iterdir() if (p / "migrations").is_dir()}
    return sorted(
        key
        for key, migration in loader.disk_migrations.items()
        if key[0] in project and any(True for _ in _data_operations(migration.operations))
    )


def test_every_data_migration_has_a_test():
    found = data_migrations()
    assert SEGMENTATION_0001 in found
    assert COMPLIANCE_0001 in found
    texts = {p: p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")}
    untested = []
    for app, name in found:
        pattern = re.compile(rf"""\(\s*['"]{app}['"]\s*,\s*['"]{re.escape(name)}['"]\s*\)""")
        if not any(pattern.search(text) for text in texts.values()):
            untested.append(f"{app}.{name}")
    assert not untested, f'data migrations that no test names as ("<app>", "<name>"): {untested}'


def test_released_migrations_are_unchanged():
    """A migration file of the first release is byte for byte what that release shipped: an
    installed database has already run it, so an edit would never reach it (and a fresh install
    would get a different schema). Change the schema with a new migration instead."""
    released = json.loads(MANIFEST.read_text())["released_migrations_sha256"]
    assert "clients/migrations/0001_initial.py" in released
    edited = [
        path
        for path, digest in sorted(released.items())
        if not (pg.ROOT / path).is_file() or hashlib.sha256((pg.ROOT / path).read_bytes()).hexdigest() != digest
    ]
    assert not edited, f"released migrations edited or removed: {edited}"


# --- the tests of the data migrations, on a scratch database -------------------------------------


@pytest.fixture(scope="module")
def first_release_db():
    """A database at the first release's nodes, holding its data: the node before the
    compliance app, and (migrated back) the node before segmentation.0001_initial."""
    with pg.scratch_database("datamig") as dbname:
        pg.dbtool(dbname, "migrate-to", str(MANIFEST))
        with pg.connect(dbname) as conn:
            pg.load_plain_dump(conn, DATA)
        yield dbname


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{relation}"]).fetchone()[0]


def _triggers(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()}


@pytest.mark.postgres
def test_compliance_0001_audit_head_and_triggers(first_release_db):
    dbname = first_release_db
    with pg.connect(dbname) as conn:
        assert not _exists(conn, "compliance_auditentry")
        clients_before = conn.execute("SELECT count(*) FROM clients_client").fetchone()[0]
        client_id = conn.execute("SELECT min(id) FROM clients_client").fetchone()[0]

    pg.dbtool(dbname, "migrate", ":".join(COMPLIANCE_0001))
    with pg.connect(dbname) as conn:
        # The head row exists from the start, at the genesis hash.
        assert conn.execute("SELECT id, seq, hash FROM compliance_audithead").fetchall() == [(1, 0, GENESIS)]
        assert {"compliance_auditentry_append_only", "compliance_flag_severity_never_falls"} <= _triggers(conn)
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone()[0] == clients_before
        conn.execute(
            """INSERT INTO compliance_auditentry (seq, at, actor_name, action, object_type, object_id, client_no,
                                                  note, prev_hash, hash)
               VALUES (1, now(), 'test', 'test.action', 'client', '1', '', '', %s, %s)""",
            [GENESIS, "1" * 64],
        )
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE compliance_auditentry SET note = 'edited'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM compliance_auditentry")
        flag_id = conn.execute(
            """INSERT INTO compliance_flag (client_id, kind, subject, severity, status, evidence, events,
                                            first_seen_on, last_seen_on, raised_at, updated_at)
               VALUES (%s, 'pep', '', 2, 'open', '{}', 0, '2026-11-20', '2026-11-20', now(), now()) RETURNING id""",
            [client_id],
        ).fetchone()[0]
        conn.execute("UPDATE compliance_flag SET severity = 3 WHERE id = %s", [flag_id])
        with pytest.raises(psycopg.errors.RaiseException, match="never fall"):
            conn.execute("UPDATE compliance_flag SET severity = 1 WHERE id = %s", [flag_id])

    # Backwards: triggers and functions go with the tables; the first release's data stays.
    pg.dbtool(dbname, "migrate", "compliance:zero")
    with pg.connect(dbname) as conn:
        assert not _exists(conn, "compliance_auditentry")
        assert not {"compliance_auditentry_append_only", "compliance_flag_severity_never_falls"} & _triggers(conn)
        functions = {r[0] for r in conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'compliance_%'")}
        assert functions == set()
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone()[0] == clients_before


@pytest.mark.postgres
def test_segmentation_0001_tierresult_partitioned(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", "segmentation:zero")
    with pg.connect(dbname) as conn:
        assert not _exists(conn, "segmentation_tierresult")
        clients = [r[0] for r in conn.execute("SELECT id FROM clients_client ORDER BY id LIMIT 3")]
        assert len(clients) == 3

    pg.dbtool(dbname, "migrate", ":".join(SEGMENTATION_0001))
    with pg.connect(dbname) as conn:
        relkind, partkey = conn.execute(
            """SELECT c.relkind, pg_get_partkeydef(c.oid) FROM pg_class c
               WHERE c.oid = 'public.segmentation_tierresult'::regclass"""
        ).fetchone()
        assert (relkind, partkey) == ("p", "LIST (as_of)")
        pk = conn.execute(
            """SELECT pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'public.segmentation_tierresult'::regclass AND contype = 'p'"""
        ).fetchone()[0]
        assert pk == "PRIMARY KEY (as_of, client_id)"
        assert _exists(conn, "tierresult_rank")
        # Rows go into a date's partition; the composite key holds across it.
        conn.execute(
            "CREATE TABLE segmentation_tierresult_p20261120 PARTITION OF segmentation_tierresult "
            "FOR VALUES IN ('2026-11-20')"
        )
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO segmentation_tierresult (as_of, tier, value, rank, percentile, change, client_id)
                   VALUES ('2026-11-20', 4, 0, %s, 0, 3, %s)""",
                [(i + 1, c) for i, c in enumerate(clients)],
            )
        assert conn.execute("SELECT count(*) FROM segmentation_tierresult_p20261120").fetchone()[0] == 3
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO segmentation_tierresult (as_of, tier, value, rank, percentile, change, client_id) "
                "VALUES ('2026-11-20', 1, 1, 1, 0, 3, %s)",
                [clients[0]],
            )
        with pytest.raises(psycopg.errors.CheckViolation):  # no partition for that date
            conn.execute(
                "INSERT INTO segmentation_tierresult (as_of, tier, value, rank, percentile, change, client_id) "
                "VALUES ('2026-11-21', 1, 1, 1, 0, 3, %s)",
                [clients[0]],
            )


@pytest.mark.postgres
def test_clients_0004_assignment_history_backfill_and_triggers(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0003))
    with pg.connect(dbname) as conn:
        assert not _exists(conn, "clients_clientassignment")
        clients = conn.execute("SELECT id, account_manager_id, branch_id FROM clients_client ORDER BY id").fetchall()
        assert len(clients) == 304
        managers = [r[0] for r in conn.execute("SELECT id FROM clients_accountmanager ORDER BY id")]

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0004))
    with pg.connect(dbname) as conn:
        # Backfill: every existing client's current assignment, valid since before the history.
        rows = conn.execute(
            """SELECT client_id, account_manager_id, branch_id FROM clients_clientassignment
               WHERE valid_from IS NULL AND valid_to IS NULL ORDER BY client_id"""
        ).fetchall()
        assert rows == clients
        assert conn.execute("SELECT count(*) FROM clients_clientassignment").fetchone()[0] == len(clients)
        # A change of manager closes the current row and opens a new one.
        client_id, manager_id, _ = clients[0]
        new_manager = next(m for m in managers if m != manager_id)
        conn.execute("UPDATE clients_client SET account_manager_id = %s WHERE id = %s", [new_manager, client_id])
        history = conn.execute(
            """SELECT account_manager_id, valid_from IS NULL, valid_to IS NULL FROM clients_clientassignment
               WHERE client_id = %s ORDER BY valid_from NULLS FIRST""",
            [client_id],
        ).fetchall()
        assert history == [(manager_id, True, False), (new_manager, False, True)]
        # An inserted client gets its row.
        cols = [c for c in pg.columns(conn, "clients_client") if c != "id"]
        select = ", ".join("'UPG-NEW-1'" if c == "client_no" else f'"{c}"' for c in cols)
        new_id = conn.execute(
            f"""INSERT INTO clients_client ({", ".join(f'"{c}"' for c in cols)})
                SELECT {select} FROM clients_client WHERE id = %s RETURNING id""",  # noqa: S608
            [clients[1][0]],
        ).fetchone()[0]
        assert (
            conn.execute(
                "SELECT count(*) FROM clients_clientassignment WHERE client_id = %s AND valid_to IS NULL", [new_id]
            ).fetchone()[0]
            == 1
        )

    # Backwards: the table and the triggers go; the clients stay.
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0003))
    with pg.connect(dbname) as conn:
        assert not _exists(conn, "clients_clientassignment")
        assert "clients_assignment_track" not in _triggers(conn)
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone()[0] == len(clients) + 1


def _indexes(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table]).fetchall()
    return dict(rows)


@pytest.mark.postgres
def test_clients_0005_trigram_indexes(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0004))
    with pg.connect(dbname) as conn:
        assert not {"client_name_upper_trgm", "client_no_upper_trgm"} & set(_indexes(conn, "clients_client"))
        name = conn.execute("SELECT name FROM clients_client ORDER BY id LIMIT 1").fetchone()[0]

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0005))
    with pg.connect(dbname) as conn:
        indexes = _indexes(conn, "clients_client")
        assert "gin" in indexes["client_name_upper_trgm"]
        # The search's expression is served by the index, on the existing rows.
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM clients_client WHERE UPPER(name::text) LIKE UPPER(%s)", [f"%{name[1:3]}%"]
            )
        )
        assert "client_name_upper_trgm" in plan
        found = conn.execute(
            "SELECT count(*) FROM clients_client WHERE UPPER(name::text) LIKE UPPER(%s)", [f"%{name}%"]
        ).fetchone()[0]
        assert found >= 1

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0004))
    with pg.connect(dbname) as conn:
        assert not {"client_name_upper_trgm", "client_no_upper_trgm"} & set(_indexes(conn, "clients_client"))


@pytest.mark.postgres
def test_retention_0003_opened_on_index(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(RETENTION_0002))
    with pg.connect(dbname) as conn:
        assert "client_opened_on" not in _indexes(conn, "clients_client")
        opened = conn.execute("SELECT count(*) FROM clients_client WHERE opened_on >= '2026-01-01'").fetchone()[0]

    pg.dbtool(dbname, "migrate", ":".join(RETENTION_0003))
    with pg.connect(dbname) as conn:
        assert "(opened_on)" in _indexes(conn, "clients_client")["client_opened_on"]
        conn.execute("SET enable_seqscan = off")
        query = "SELECT count(*) FROM clients_client WHERE opened_on >= '2026-01-01'"
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {query}"))
        assert "client_opened_on" in plan
        assert conn.execute(query).fetchone()[0] == opened

    pg.dbtool(dbname, "migrate", ":".join(RETENTION_0002))
    with pg.connect(dbname) as conn:
        assert "client_opened_on" not in _indexes(conn, "clients_client")


def _reverse_one(conn: psycopg.Connection, original: int, trade_id: str) -> None:
    conn.execute(
        "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity, price, amount,"
        " commission, channel, created_at, reverses_id) SELECT %s, client_id, executed_at, instrument_id, side,"
        " quantity, price, -amount, -commission, channel, created_at, id FROM clients_trade WHERE id = %s",
        [trade_id, original],
    )


@pytest.mark.postgres
def test_clients_0006_trade_ledger_lighter_indexes(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0005))
    with pg.connect(dbname) as conn:
        before = _indexes(conn, "clients_trade")
        assert "clients_trade_reverses_id_key" in before
        assert any("varchar_pattern_ops" in definition for definition in before.values())
        trades = conn.execute("SELECT count(*), count(reverses_id) FROM clients_trade").fetchone()
        assert trades[0] > 6000

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0006))
    with pg.connect(dbname) as conn:
        after = _indexes(conn, "clients_trade")
        assert "clients_trade_reverses_id_key" not in after
        assert not any("varchar_pattern_ops" in definition for definition in after.values())
        assert after["trade_reversed_at_most_once"].endswith("(reverses_id) WHERE (reverses_id IS NOT NULL)")
        assert "UNIQUE" in after["trade_reversed_at_most_once"]
        assert "UNIQUE" in after["clients_trade_trade_id_key"]
        valid = conn.execute(
            "SELECT bool_and(i.indisvalid) FROM pg_index i WHERE i.indrelid = 'clients_trade'::regclass"
        ).fetchone()[0]
        assert valid
        assert conn.execute("SELECT count(*), count(reverses_id) FROM clients_trade").fetchone() == trades
        # The rule holds on the upgraded ledger: a trade is reversed once, a second time is refused.
        original = conn.execute(
            "SELECT t.id FROM clients_trade t WHERE t.reverses_id IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM clients_trade r WHERE r.reverses_id = t.id) ORDER BY t.id LIMIT 1"
        ).fetchone()[0]
        with conn.transaction(force_rollback=True):
            _reverse_one(conn, original, "MIG0006-R1")
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                _reverse_one(conn, original, "MIG0006-R2")
        if trades[1]:  # an existing reversal cannot be repeated either
            reversed_id = conn.execute("SELECT reverses_id FROM clients_trade WHERE reverses_id IS NOT NULL LIMIT 1")
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                _reverse_one(conn, reversed_id.fetchone()[0], "MIG0006-R3")

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0005))
    with pg.connect(dbname) as conn:
        assert _indexes(conn, "clients_trade") == before


@pytest.mark.postgres
def test_clients_0007_trade_client_time_id_index(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0006))
    with pg.connect(dbname) as conn:
        before = _indexes(conn, "clients_trade")
        assert "(client_id, executed_at)" in before["trade_client_executed_at"]
        assert "trade_client_time_id" not in before
        client = conn.execute("SELECT client_id FROM clients_trade GROUP BY client_id ORDER BY count(*) DESC LIMIT 1")
        client_id = client.fetchone()[0]
        page = "SELECT id FROM clients_trade WHERE client_id = %s ORDER BY executed_at DESC, id DESC LIMIT 5"
        rows = conn.execute(page, [client_id]).fetchall()

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0007))
    with pg.connect(dbname) as conn:
        after = _indexes(conn, "clients_trade")
        assert "(client_id, executed_at, id)" in after["trade_client_time_id"]
        assert "trade_client_executed_at" not in after
        conn.execute("VACUUM clients_trade")  # all-visible pages: the keys come from the index alone
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + page, [client_id]))
        assert "Index Only Scan" in plan, plan
        assert "trade_client_time_id" in plan, plan
        assert conn.execute(page, [client_id]).fetchall() == rows

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0006))
    with pg.connect(dbname) as conn:
        back = _indexes(conn, "clients_trade")
        assert "(client_id, executed_at)" in back["trade_client_executed_at"]
        assert "trade_client_time_id" not in back


def _trade_foreign_keys(conn: psycopg.Connection) -> list[tuple[str, bool]]:
    rows = conn.execute(
        "SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint"
        " WHERE conrelid = 'clients_trade'::regclass AND contype = 'f' ORDER BY 1"
    )
    return rows.fetchall()


REFERENCE_TRIGGERS = {
    f"clients_trade_{column}_fk_{event}"
    for column in ("client_id", "instrument_id")
    for event in ("insert", "update", "parent_delete", "parent_update", "parent_truncate")
}


@pytest.mark.postgres
def test_clients_0009_trade_set_based_foreign_keys(first_release_db):
    dbname = first_release_db
    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0008))
    with pg.connect(dbname) as conn:
        before = _trade_foreign_keys(conn)
        assert [definition.split(" REFERENCES")[0] for definition, _ in before] == [
            "FOREIGN KEY (client_id)",
            "FOREIGN KEY (instrument_id)",
            "FOREIGN KEY (reverses_id)",
        ]
        assert not REFERENCE_TRIGGERS & _triggers(conn)
        trades = conn.execute("SELECT count(*) FROM clients_trade").fetchone()[0]
        assert trades > 6000
        instrument_id, client_id = conn.execute("SELECT instrument_id, client_id FROM clients_trade LIMIT 1").fetchone()

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0009))
    with pg.connect(dbname) as conn:
        assert _trade_foreign_keys(conn) == [before[2]]  # the reversal's stays a constraint
        assert _triggers(conn) >= REFERENCE_TRIGGERS
        assert conn.execute("SELECT count(*) FROM clients_trade").fetchone()[0] == trades
        # The rules hold on the upgraded ledger.
        with conn.transaction(force_rollback=True):
            with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
                conn.execute(
                    "INSERT INTO clients_trade (trade_id, client_id, executed_at, instrument_id, side, quantity,"
                    " price, amount, commission, channel, created_at) SELECT 'MIG0009', 987654321, executed_at,"
                    " instrument_id, side, quantity, price, amount, commission, channel, created_at"
                    " FROM clients_trade WHERE reverses_id IS NULL LIMIT 1"
                )
            with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
                conn.execute("DELETE FROM clients_instrument WHERE id = %s", [instrument_id])
            conn.execute("DELETE FROM clients_clientassignment WHERE client_id = %s", [client_id])
            with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
                conn.execute("DELETE FROM clients_client WHERE id = %s", [client_id])

    pg.dbtool(dbname, "migrate", ":".join(CLIENTS_0008))
    with pg.connect(dbname) as conn:
        after = _trade_foreign_keys(conn)
        assert after == before
        assert all(validated for _, validated in after)
        assert not REFERENCE_TRIGGERS & _triggers(conn)
        functions = conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'clients\\_fk\\_%%'").fetchone()
        assert functions[0] == 0
