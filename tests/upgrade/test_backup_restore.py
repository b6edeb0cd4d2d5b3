"""Backup and restore (ops/backup.sh, ops/restore.sh; docs/OPERATIONS.md), end to end.

A scratch database in the production shape (migrated to HEAD, a small demo book, one nightly
run with its tier partition and compliance flags, audit entries from the nightly run, the
watch-list load and tier overrides) is backed up with ops/backup.sh and restored with
ops/restore.sh into new databases. Asserted: the script's own verification passes; every row
of every table is equal in the restored database; sequences are past the data and the next
inserts (a row, an audit entry through the application) do not collide and keep the chain
intact; an audit row edited after a restore fails verify_audit_chain; a corrupted archive
and a restore over an existing database are refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.upgrade import pg

pytestmark = pytest.mark.postgres

BACKUP = pg.ROOT / "ops" / "backup.sh"
RESTORE = pg.ROOT / "ops" / "restore.sh"

OVERRIDES = """
import datetime as dt
from django.contrib.auth import get_user_model
from clients.models import Client
from segmentation.services import tier_override_create
olga = get_user_model().objects.get(username="ops_olga")
for client in Client.objects.order_by("id")[:3]:
    tier_override_create(by=olga, client=client, tier=2, reason="backup test", expires_on=dt.date(2027, 1, 31))
"""
APPEND_AND_VERIFY = """
import datetime as dt
from django.contrib.auth import get_user_model
from clients.models import Client
from compliance.audit import verify_chain
from compliance.models import AuditEntry
from segmentation.services import tier_override_create
olga = get_user_model().objects.get(username="ops_olga")
before = AuditEntry.objects.count()
tier_override_create(by=olga, client=Client.objects.order_by("-id").first(), tier=1, reason="after restore",
                     expires_on=dt.date(2027, 1, 31))
report = verify_chain()
print("AFTER-RESTORE", before, AuditEntry.objects.count(), report.ok, report.entries)
"""


def _script(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # noqa: S603
        ["/bin/bash", *args], cwd=pg.ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory):
    missing = [tool for tool in ("psql", "pg_dump", "pg_restore", "sha256sum") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"ops/backup.sh and ops/restore.sh need {missing} (apt-get install postgresql-client)")
    source = pg.scratch_name("bk_src")
    restored = pg.scratch_name("bk_restored")
    tampered = pg.scratch_name("bk_tampered")
    for name in (restored, tampered):
        pg.drop_database(name)
    pg.create_database(source)
    try:
        pg.manage(source, "migrate", "--noinput")
        pg.manage(
            source, "seed_demo", "--clients", "60", "--months", "3", "--as-of", "2026-11-20", "--reset", "--no-progress"
        )
        pg.manage(source, "run_nightly", "--as-of", "2026-11-19")
        pg.manage(source, "shell", "-c", OVERRIDES)
        backups = tmp_path_factory.mktemp("backups")
        env = {**pg.child_env(source), "PYTHON": sys.executable}
        backup = _script(str(BACKUP), str(backups), env=env)
        archive = backup.stdout.strip().splitlines()[-1]
        restore = _script(str(RESTORE), archive, pg.url(restored), env=env, check=False)
        with pg.connect(source) as conn:
            source_snapshot = pg.snapshot(conn)
            source_counts = pg.row_counts(conn)
            audit_entries = conn.execute("SELECT count(*) FROM compliance_auditentry").fetchone()[0]
        yield {
            "source": source,
            "restored": restored,
            "tampered": tampered,
            "archive": archive,
            "backup": backup,
            "restore": restore,
            "env": env,
            "source_snapshot": source_snapshot,
            "source_counts": source_counts,
            "audit_entries": audit_entries,
        }
    finally:
        for name in (source, restored, tampered):
            pg.drop_database(name)


def test_backup_writes_archive_counts_and_checksum(backed_up):
    archive = backed_up["archive"]
    assert archive.endswith(".dump")
    assert os.path.getsize(archive) > 10_000
    base = archive.removesuffix(".dump")
    counts = dict(line.split("\t") for line in Path(f"{base}.counts").read_text(encoding="utf-8").splitlines())
    counted = {k: int(v) for k, v in counts.items() if k not in pg.SKIP_TABLES}
    assert counted == backed_up["source_counts"]
    assert int(counts["django_migrations"]) > 0
    assert Path(f"{base}.sha256").read_text(encoding="utf-8").split()[1] == os.path.basename(archive)
    print("\n" + backed_up["backup"].stderr.strip())


def test_restore_verifies_the_audit_chain_counts_and_sequences(backed_up):
    restore = backed_up["restore"]
    assert restore.returncode == 0, restore.stderr[-3000:]
    assert "row counts equal the backup's" in restore.stderr
    assert "sequences ok" in restore.stderr
    assert f"Audit chain intact: {backed_up['audit_entries']} entries." in restore.stderr
    assert backed_up["audit_entries"] >= 5
    print("\n" + restore.stderr.strip())


def test_restored_database_equals_the_source_row_for_row(backed_up):
    with pg.connect(backed_up["restored"]) as conn:
        assert pg.row_counts(conn) == backed_up["source_counts"]
        restored = pg.snapshot(conn)
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'segmentation_tierresult'::regclass"
        ).fetchone()[0]
        triggers = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    for table, snap in backed_up["source_snapshot"].items():
        assert restored[table]["rows"] == snap["rows"], table
    assert partitions >= 1
    assert "compliance_auditentry_append_only" in triggers


def test_inserts_after_restore_do_not_collide_and_extend_the_chain(backed_up):
    dbname = backed_up["restored"]
    with pg.connect(dbname) as conn:
        assert pg.sequences_behind(conn) == {}
        max_branch = conn.execute("SELECT max(id) FROM clients_branch").fetchone()[0]
        new_id = conn.execute(
            "INSERT INTO clients_branch (code, name, city) VALUES ('ZZ99', 'After restore', 'Test') RETURNING id"
        ).fetchone()[0]
        assert new_id > max_branch
    out = pg.manage(dbname, "shell", "-c", APPEND_AND_VERIFY).stdout
    line = next(x for x in out.splitlines() if x.startswith("AFTER-RESTORE"))
    _, before, after, ok, entries = line.split()
    assert int(after) == int(before) + 1
    assert ok == "True"
    assert int(entries) == int(after)


def test_an_audit_row_edited_after_restore_fails_verification(backed_up):
    dbname = backed_up["tampered"]
    env = {**backed_up["env"], "RESTORE_APP_CHECKS": "0"}
    _script(str(RESTORE), backed_up["archive"], pg.url(dbname), env=env)
    assert pg.manage(dbname, "verify_audit_chain").returncode == 0
    with pg.connect(dbname) as conn, conn.transaction():
        conn.execute("ALTER TABLE compliance_auditentry DISABLE TRIGGER compliance_auditentry_append_only")
        conn.execute("UPDATE compliance_auditentry SET note = note || ' (edited)' WHERE seq = 2")
        conn.execute("ALTER TABLE compliance_auditentry ENABLE TRIGGER compliance_auditentry_append_only")
    proc = pg.manage(dbname, "verify_audit_chain", check=False)
    assert proc.returncode == 1
    assert "Audit chain BROKEN at entry #2" in proc.stderr


def test_corrupted_archive_and_existing_target_are_refused(backed_up, tmp_path):
    archive = backed_up["archive"]
    env = backed_up["env"]
    # Over an existing database: refused before anything is written.
    proc = _script(str(RESTORE), archive, pg.url(backed_up["restored"]), env=env, check=False)
    assert proc.returncode == 2
    assert "exists" in proc.stderr
    # A corrupted copy fails its checksum; no database is created.
    bad = tmp_path / os.path.basename(archive)
    data = bytearray(Path(archive).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    for suffix in (".sha256", ".counts"):
        (tmp_path / os.path.basename(archive.removesuffix(".dump") + suffix)).write_text(
            Path(archive.removesuffix(".dump") + suffix).read_text(encoding="utf-8")
        )
    target = pg.scratch_name("bk_corrupt")
    try:
        proc = _script(str(RESTORE), str(bad), pg.url(target), env=env, check=False)
        assert proc.returncode != 0
        with pg.connect("postgres") as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [target]).fetchone()[0] == 0
    finally:
        pg.drop_database(target)
