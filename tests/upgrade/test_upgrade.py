"""Upgrades keep data: the first release's database, populated, migrated forward to HEAD.

The fixture (tests/upgrade/fixtures/, rebuilt by build_first_release.sh) was written by the
first release itself (commit 89c9589): its migrations, its demo seeder (300 clients, 24
months), its importer (the sample files), two of its nightly runs (tier partitions, history)
and two tier overrides. `first_release.json` holds that release's migration leaf nodes and
row counts. Nothing here reads git: CI may have a shallow clone.

The test, in a scratch database beside the test database:
1. migrates an empty database to the first release's leaf nodes with the migration files at
   HEAD (so a released migration edited since would show up as a schema the data no longer fits);
2. loads the data (foreign keys checked at commit) and snapshots every row of every table;
3. runs `manage.py migrate` to HEAD, as the web container does on start;
4. asserts: the same tables, the same rows (every column of every row, by primary key); a
   column whose stored form a data migration rewrote must still read the same through the
   model at HEAD (e.g. an encrypted field); Client, Trade and KYCProfile are also compared
   field by field through the models; no foreign key has an orphan; sequences are past the
   data; and one nightly run of every stage at HEAD completes on the upgraded book, with an
   intact audit chain afterwards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.upgrade import pg

pytestmark = pytest.mark.postgres

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = FIXTURES / "first_release.json"
DATA = FIXTURES / "first_release.sql.gz"
# Compared field by field through the models at HEAD, whether or not their storage changed.
ORM_SAMPLES = ("clients_client", "clients_trade", "clients_kycprofile")
NIGHTLY_AS_OF = "2026-11-20"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory):
    """Run the upgrade once; the tests below inspect its stages."""
    manifest = json.loads(MANIFEST.read_text())
    timings: dict[str, float] = {}
    with pg.scratch_database("upgrade") as dbname:
        t0 = time.perf_counter()
        applied = json.loads(pg.dbtool(dbname, "migrate-to", str(MANIFEST)))["applied"]
        timings["migrate to the first release"] = time.perf_counter() - t0
        with pg.connect(dbname) as conn:
            empty_tables = pg.tables(conn)
            t0 = time.perf_counter()
            pg.load_plain_dump(conn, DATA)
            timings["load the fixture"] = time.perf_counter() - t0
            before = pg.snapshot(conn)
            counts_before = pg.row_counts(conn)
            orphans_before = pg.orphaned_foreign_keys(conn)
        t0 = time.perf_counter()
        migrate_out = pg.manage(dbname, "migrate", "--noinput").stdout
        timings["migrate to HEAD"] = time.perf_counter() - t0
        with pg.connect(dbname) as conn:
            after = pg.snapshot(conn)
            counts_after = pg.row_counts(conn)
            orphans_after = pg.orphaned_foreign_keys(conn)
            fks_after = pg.fk_count(conn)
            pending = conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]

        # Columns whose stored values changed: they must still read the same through the models.
        changed = _changed_columns(before, after)
        spec = {t: {"key": before[t]["key"], "columns": before[t]["columns"]} for t in ORM_SAMPLES}
        for table, cols in changed.items():
            entry = spec.setdefault(table, {"key": before[table]["key"], "columns": []})
            entry["columns"] = sorted(set(entry["columns"]) | cols)
        spec_path = tmp_path_factory.mktemp("upgrade") / "spec.json"
        out_path = spec_path.with_name("orm.json")
        spec_path.write_text(json.dumps(spec))
        pg.dbtool(dbname, "orm-values", str(spec_path), str(out_path))
        orm = json.loads(out_path.read_text())

        t0 = time.perf_counter()
        nightly = pg.manage(dbname, "run_nightly", "--as-of", NIGHTLY_AS_OF, check=False)
        timings["run_nightly at HEAD"] = time.perf_counter() - t0
        with pg.connect(dbname) as conn:
            run = conn.execute(
                "SELECT id, status, error FROM brokercrm_nightlyrun WHERE as_of = %s", [NIGHTLY_AS_OF]
            ).fetchone()
            stages = (
                conn.execute(
                    "SELECT name, status, error FROM brokercrm_stagerun WHERE run_id = %s ORDER BY position", [run[0]]
                ).fetchall()
                if run
                else []
            )
            tiers = dict(
                conn.execute("SELECT as_of::text, count(*) FROM segmentation_tierresult GROUP BY 1").fetchall()
            )
            # An insert into every table with an identity/serial key must not collide with the data.
            behind = pg.sequences_behind(conn)
        audit = pg.manage(dbname, "verify_audit_chain", check=False)
        print("\nupgrade timings (s):", {k: round(v, 2) for k, v in timings.items()})
        print("columns whose stored form a migration rewrote:", {t: sorted(c) for t, c in changed.items()})
        yield {
            "manifest": manifest,
            "applied": applied,
            "empty_tables": empty_tables,
            "before": before,
            "after": after,
            "counts_before": counts_before,
            "counts_after": counts_after,
            "orphans_before": orphans_before,
            "orphans_after": orphans_after,
            "fks_after": fks_after,
            "migrations_after": pending,
            "migrate_out": migrate_out,
            "changed": changed,
            "orm": orm,
            "nightly": nightly,
            "run": run,
            "stages": stages,
            "tiers": tiers,
            "behind": behind,
            "audit": audit,
        }


def _changed_columns(before: dict, after: dict) -> dict[str, set[str]]:
    changed: dict[str, set[str]] = {}
    for table, snap in before.items():
        if table not in after:
            continue
        rows_after = after[table]["rows"]
        for key, row in snap["rows"].items():
            new = rows_after.get(key)
            if new is None:
                continue
            for col, value in row.items():
                if col not in new or new[col] != value:
                    changed.setdefault(table, set()).add(col)
    return changed


def test_first_release_schema_from_head_files_takes_the_data(upgraded):
    """The migration files at HEAD, stopped at the first release's nodes, build a schema that
    the release's data loads into, with every foreign key satisfied."""
    manifest = upgraded["manifest"]
    assert "clients.0001_initial" in upgraded["applied"]
    assert set(manifest["row_counts"]) <= set(upgraded["empty_tables"]), "a first-release table is missing"
    assert upgraded["counts_before"] == manifest["row_counts"]
    assert upgraded["orphans_before"] == {}


def test_every_table_keeps_its_rows(upgraded):
    before, after = upgraded["counts_before"], upgraded["counts_after"]
    missing = sorted(set(before) - set(after))
    assert not missing, f"tables gone after the upgrade: {missing}"
    for table, n in before.items():
        if table in pg.GROWS_ON_MIGRATE:
            assert after[table] >= n, table
        else:
            assert after[table] == n, f"{table}: {n} rows before the upgrade, {after[table]} after"
    # The same rows, by primary key.
    for table, snap in upgraded["before"].items():
        keys_after = set(upgraded["after"][table]["rows"])
        lost = set(snap["rows"]) - keys_after
        assert not lost, f"{table}: {len(lost)} rows lost, e.g. {sorted(lost)[:3]}"
    assert upgraded["manifest"]["row_counts"]["clients_client"] == 304


def test_every_value_reads_the_same(upgraded):
    """Every column of every row is unchanged in storage, or, where a data migration rewrote
    it, reads back the same through the model at HEAD."""
    orm = upgraded["orm"]
    assert not orm["unmapped"], orm["unmapped"]
    problems = []
    for table, cols in upgraded["changed"].items():
        before_rows = upgraded["before"][table]["rows"]
        read = orm["tables"][table]
        for col in sorted(cols):
            bad = [k for k, row in before_rows.items() if read.get(k, {}).get(col, object()) != row[col]]
            if bad:
                k = bad[0]
                problems.append(
                    f"{table}.{col}: {len(bad)} rows differ, e.g. {k}: {before_rows[k][col]!r} -> "
                    f"{read.get(k, {}).get(col)!r}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("table", ORM_SAMPLES)
def test_clients_trades_kyc_field_by_field_through_the_models(upgraded, table):
    before_rows = upgraded["before"][table]["rows"]
    read = upgraded["orm"]["tables"][table]
    assert len(read) == len(before_rows) > 0
    for key, row in before_rows.items():
        assert read[key] == row, f"{table} {key}"


def test_foreign_keys_intact_and_sequences_past_the_data(upgraded):
    assert upgraded["fks_after"] > 30
    assert upgraded["orphans_after"] == {}
    assert upgraded["behind"] == {}


def test_nightly_pipeline_runs_on_the_upgraded_book(upgraded):
    nightly = upgraded["nightly"]
    assert nightly.returncode == 0, nightly.stdout[-3000:] + nightly.stderr[-3000:]
    run = upgraded["run"]
    assert run is not None
    assert run[1] == "succeeded", run[2]
    stages = upgraded["stages"]
    assert len(stages) >= 10
    assert all(status in {"succeeded", "skipped"} for _, status, _ in stages), stages
    # The new date's tiers sit beside the first release's partitions, which are still read.
    tiers = upgraded["tiers"]
    assert tiers.get(NIGHTLY_AS_OF, 0) > 250
    assert tiers.get("2026-11-18") == tiers.get("2026-11-19") == 291
    audit = upgraded["audit"]
    assert audit.returncode == 0, audit.stdout + audit.stderr
