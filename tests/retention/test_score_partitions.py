"""The activity and churn scores as one partition per generation (PostgreSQL): each night's rows
are loaded into a side table, indexed and swapped in by the publication; a failure leaves the
previous generation and no side table; a chunk run twice writes its rows once. On SQLite the
stages write the tables themselves, as before."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokercrm.models import RunStatus
from brokercrm.nightly import bulk
from clients.models import Client
from retention import churn, dormancy, segment_log
from retention.models import ChurnScore, ClientActivity
from segmentation.models import ResultSet
from tests.nightly.conftest import eager_celery, run_nightly
from tests.retention.test_scoring_stages import AS_OF, book, published_rows

__all__ = ["book", "eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db

STAGES = ["rollup", "tiers", "dormancy", "churn"]
MODELS = {ResultSet.Kind.ACTIVITY: ClientActivity, ResultSet.Kind.CHURN: ChurnScore}


def partitions(model) -> dict[str, int]:
    """{partition name: number of indexes} of the model's table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [model._meta.db_table],
        )
        return dict(cursor.fetchall())


def loose_tables(model) -> list[str]:
    """Tables named like a partition of the model's table that are not attached (side tables)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
            [model._meta.db_table + "_p%"],
        )
        return [row[0] for row in cursor.fetchall()]


def parent_indexes(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [model._meta.db_table])
        return cursor.fetchone()[0]


def generation(kind: str) -> int:
    return ResultSet.objects.get(kind=kind, is_published=True).generation


@pytest.mark.postgres
def test_a_publication_swaps_the_generations_partition_in(book, run_nightly) -> None:
    assert run_nightly(AS_OF, STAGES, chunk_size=20).status == RunStatus.SUCCEEDED
    first = {kind: generation(kind) for kind in MODELS}
    for kind, model in MODELS.items():
        assert bulk.partitioned(model)
        assert set(partitions(model)) == {bulk.partition_name(model, first[kind]), f"{model._meta.db_table}_default"}

    assert run_nightly(AS_OF, ["dormancy", "churn"], chunk_size=20).status == RunStatus.SUCCEEDED
    for kind, model in MODELS.items():
        new = generation(kind)
        assert new != first[kind]
        attached = partitions(model)
        # The old generation's partition is gone; the new one is attached with every index of
        # the parent (primary key, unique (generation, client) and the others); no side table left.
        assert set(attached) == {bulk.partition_name(model, new), f"{model._meta.db_table}_default"}
        assert attached[bulk.partition_name(model, new)] == parent_indexes(model) >= 3
        assert loose_tables(model) == []
        assert published_rows(model, kind).count() == model.objects.count() > 0
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT * FROM retention_churnscore WHERE generation = %s", [generation("churn")])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert bulk.partition_name(ChurnScore, generation("churn")) in plan
    assert "_default" not in plan


@pytest.mark.postgres
@pytest.mark.parametrize("failing", ["dormancy_finalize", "churn_chunk"])
def test_a_failed_stage_keeps_the_previous_generation_and_leaves_no_side_table(
    book, run_nightly, monkeypatch, failing
) -> None:
    assert run_nightly(AS_OF, STAGES, chunk_size=20).status == RunStatus.SUCCEEDED
    before = {
        kind: sorted(published_rows(model, kind).values_list("client_id", "segment")) for kind, model in MODELS.items()
    }
    attached = {model: set(partitions(model)) for model in MODELS.values()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    if failing == "dormancy_finalize":  # after the side table was indexed, before the swap
        monkeypatch.setattr(segment_log, "record", broken)
    else:
        monkeypatch.setattr(churn, "_churn_chunk", broken)
    failed = run_nightly(AS_OF + dt.timedelta(days=1), ["dormancy", "churn"], chunk_size=20)

    assert failed.status == RunStatus.FAILED
    if failing == "churn_chunk":  # the dormancy stage of the date published before churn failed
        attached[ClientActivity] = {bulk.partition_name(ClientActivity, generation("activity"))} | {
            "retention_clientactivity_default"
        }
        before[ResultSet.Kind.ACTIVITY] = sorted(
            published_rows(ClientActivity, ResultSet.Kind.ACTIVITY).values_list("client_id", "segment")
        )
    assert ResultSet.objects.get(kind=ResultSet.Kind.CHURN, is_published=True).as_of == AS_OF
    for kind, model in MODELS.items():
        assert sorted(published_rows(model, kind).values_list("client_id", "segment")) == before[kind]
        assert set(partitions(model)) == attached[model]
        assert loose_tables(model) == []


@pytest.mark.postgres
def test_side_tables_left_by_a_crash_are_dropped_by_the_next_load(book, run_nightly) -> None:
    with connection.cursor() as cursor:  # a load killed with its worker: no cleanup ran
        cursor.execute("CREATE TABLE retention_churnscore_p999999 (LIKE retention_churnscore)")
        cursor.execute("CREATE TABLE retention_churnscore_p999999_chunks (low bigint, high bigint)")
    assert run_nightly(AS_OF, STAGES, chunk_size=20).status == RunStatus.SUCCEEDED
    assert loose_tables(ChurnScore) == []


def _twice(original):
    def chunk(ctx, client_id_from, client_id_to):
        original(ctx, client_id_from, client_id_to)
        return original(ctx, client_id_from, client_id_to)

    return chunk


def test_a_chunk_run_twice_writes_its_rows_once(book, run_nightly, monkeypatch) -> None:
    monkeypatch.setattr(dormancy, "_dormancy_chunk", _twice(dormancy._dormancy_chunk))
    monkeypatch.setattr(churn, "_churn_chunk", _twice(churn._churn_chunk))
    run = run_nightly(AS_OF, STAGES, chunk_size=20)
    assert run.status == RunStatus.SUCCEEDED, run.error
    clients = Client.objects.count()
    assert ClientActivity.objects.count() == clients
    assert ClientActivity.objects.values("client_id").distinct().count() == clients
    assert ChurnScore.objects.count() == ChurnScore.objects.values("client_id").distinct().count() > 0
    assert ResultSet.objects.get(kind=ResultSet.Kind.ACTIVITY, is_published=True).rows == clients


def _activity_frame(generation_id: int, client_ids: list[int], days: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "generation": generation_id,
            "as_of": AS_OF,
            "client_id": client_ids,
            "segment": "active",
            "trading_days": days,
            "recent_trading_days": 0,
            "trades_year": 0,
            "commission_year": 0.0,
            "commission": 0.0,
            "about_to_go_dormant": False,
            "regulatory_dormant": False,
        }
    )


@pytest.mark.postgres
def test_only_a_retried_chunk_deletes_and_an_interrupted_one_leaves_nothing(book) -> None:
    ids = sorted(Client.objects.values_list("pk", flat=True))
    low, high = ids[0], ids[9]
    key = 424242
    bulk.create_side_table(ClientActivity, key_field="generation", key_value=key)
    side = bulk.load_table(ClientActivity, key)

    def load(days: int, copy=None) -> None:
        bulk.load_chunk(
            ClientActivity,
            _activity_frame(key, ids[:10], days),
            key_value=key,
            range_field="client",
            low=low,
            high=high,
            copy=copy,
        )

    def interrupted(table: str) -> None:
        bulk._copy_frame(table, ClientActivity, _activity_frame(key, ids[:10], 1))
        raise ConnectionError("worker lost mid-chunk")

    with pytest.raises(ConnectionError):
        load(1, copy=interrupted)  # its rows and its marker roll back together
    with CaptureQueriesContext(connection) as first:
        load(2)
    with CaptureQueriesContext(connection) as retry:
        load(3)
    load(4)
    assert not any(query["sql"].startswith("DELETE") for query in first.captured_queries)
    assert any(query["sql"].startswith(f'DELETE FROM "{side}"') for query in retry.captured_queries)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT client_id, trading_days FROM "{side}" ORDER BY client_id')  # noqa: S608
        assert cursor.fetchall() == [(client_id, 4) for client_id in ids[:10]]
    assert bulk.drop_side_table(ClientActivity, key_value=key)
    assert loose_tables(ClientActivity) == []


@pytest.mark.sqlite
def test_on_sqlite_the_stages_write_the_tables_themselves(book, run_nightly) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite path")
    assert not bulk.partitioned(ClientActivity)
    assert bulk.create_side_table(ChurnScore, key_field="generation", key_value=1) is None
    assert bulk.load_table(ClientActivity, 1) == ClientActivity._meta.db_table
    assert run_nightly(AS_OF, STAGES, chunk_size=20).status == RunStatus.SUCCEEDED
    assert run_nightly(AS_OF, ["dormancy", "churn"], chunk_size=7).status == RunStatus.SUCCEEDED
    for kind, model in MODELS.items():
        assert model.objects.exclude(generation=generation(kind)).count() == 0
        assert model.objects.count() == published_rows(model, kind).count() > 0


# --- the migration ------------------------------------------------------------------------------

RETENTION_0004 = ("retention", "0004_segment_log")
RETENTION_0005 = ("retention", "0005_scores_partitioned_by_generation")
TABLES = ("retention_clientactivity", "retention_churnscore")


def _rows(conn, table: str) -> list[tuple]:
    return conn.execute(f"SELECT id, generation, client_id, segment FROM {table} ORDER BY id").fetchall()  # noqa: S608


def _insert(conn, generation_id: int, clients: range) -> None:
    conn.execute(
        "INSERT INTO retention_clientactivity (generation, as_of, client_id, segment, trading_days, "
        "recent_trading_days, trades_year, commission_year, commission, about_to_go_dormant, regulatory_dormant) "
        "SELECT %s, '2026-06-30', g, 'active', 1, 1, 0, 0, 0, false, false "
        "FROM generate_series(%s::bigint, %s::bigint) g",
        [generation_id, clients.start, clients.stop - 1],
    )
    conn.execute(
        "INSERT INTO retention_churnscore (generation, as_of, client_id, segment, risk, clv_simple, value_at_risk, "
        "reasons, signals, model_used) "
        "SELECT %s, '2026-06-30', g, 'dormant', 50, 0, 0, '[]', '{}', true "
        "FROM generate_series(%s::bigint, %s::bigint) g",
        [generation_id + 1, clients.start, clients.stop - 1],
    )


@pytest.mark.postgres
def test_retention_0005_partitions_the_scores_and_keeps_their_rows() -> None:
    """("retention", "0005_scores_partitioned_by_generation"): forwards keeps every row (one
    partition per generation, the published one the old table itself), ids continue; backwards
    gives the plain tables back with the same rows."""
    from tests.upgrade import pg

    with pg.scratch_database("scorepart") as dbname:
        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0004))
        with pg.connect(dbname) as conn:
            _insert(conn, 40, range(1, 301))  # the published generation
            _insert(conn, 70, range(1, 4))  # leftovers of an unpublished run
            before = {table: _rows(conn, table) for table in TABLES}

        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0005))
        with pg.connect(dbname) as conn:
            for table in TABLES:
                assert _rows(conn, table) == before[table]
                names = {
                    row[0]
                    for row in conn.execute(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = %s::regclass",
                        [table],
                    )
                }
                generations = {row[1] for row in before[table]}
                assert names == {f"{table}_p{g}" for g in generations} | {f"{table}_default"}
                indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [table]).fetchone()[0]
                for name in names:  # every partition has every index of the parent
                    assert (
                        conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [name]).fetchone()[0]
                        == indexes
                    )
            _insert(conn, 90, range(1, 2))  # a generation with no partition: the DEFAULT one
            new_id = conn.execute("SELECT max(id) FROM retention_clientactivity WHERE generation = 90").fetchone()[0]
            assert new_id == max(row[0] for row in before["retention_clientactivity"]) + 1
            with pytest.raises(psycopg.errors.UniqueViolation):
                _insert(conn, 40, range(5, 6))  # (generation, client) stays unique
            before = {table: _rows(conn, table) for table in TABLES}

        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0004))
        with pg.connect(dbname) as conn:
            for table in TABLES:
                assert conn.execute("SELECT relkind FROM pg_class WHERE relname = %s", [table]).fetchone()[0] == "r"
                assert _rows(conn, table) == before[table]
            _insert(conn, 95, range(1, 2))
            assert (
                conn.execute("SELECT max(id) FROM retention_churnscore").fetchone()[0]
                == max(row[0] for row in before["retention_churnscore"]) + 1
            )
