"""A churn score's reasons and signals are stored as typed columns (retention/reasons.py) and read
back as the dicts the API, the pages and the admin show; migration 0006 moved the stored JSON
into the columns and moves it back."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from brokercrm.models import RunStatus
from retention import churn, conf, reasons, scoring
from retention.inputs import read_signals
from retention.models import ChurnScore
from segmentation.models import ResultSet
from tests.nightly.conftest import eager_celery, run_nightly

__all__ = ["eager_celery", "run_nightly"]

EVERY_REASON = {
    "model": {"p_no_trade": 0.3342, "p_alive": 0.9928, "window": 90},
    "dormant": {"days": 400},
    "overdue": {"days": 400, "gap": 12.5},
    "decline": {"recent": 3, "window": 90, "expected": 14.2},
    "outflow": {"share": 0.62, "window": 30, "amount": 62000.55},
    "complaints": {"count": 2},
    "detractor": {"score": 3},
    "low_csat": {"score": 1},
    "losses": {"amount": 15000.25, "closes": 4, "window": 90, "share": 0.1875},
    "downgrade": {"from": 1, "to": 3, "on": "2026-06-01"},
}


@pytest.mark.parametrize(
    "codes",
    [
        ("model", "outflow", "downgrade"),
        ("dormant", "overdue"),
        ("losses", "complaints", "low_csat"),
        ("decline", "detractor"),
        (),
    ],
)
def test_reasons_written_to_the_columns_read_back_the_same(codes) -> None:
    given = [{"code": code, "points": 30 - 7 * k, "facts": EVERY_REASON[code]} for k, code in enumerate(codes)]
    score = ChurnScore(risk=60, p_alive=0.99281, reasons=given, signals={"model": 0.33, "outflow": 1.0})
    assert score.reasons == given
    assert json.loads(json.dumps(score.reasons)) == given  # JSON-safe: no Decimal, no date objects
    assert score.signals == {"model": 0.33, "outflow": 1.0}
    assert score.signal_decline == 0.0
    if "outflow" in codes:
        assert score.outflow_amount == 62000.55
        assert score.outflow_share == 0.62
    if "downgrade" in codes:
        assert score.downgrade_on == dt.date(2026, 6, 1)


def test_a_score_keeps_at_most_three_reasons_and_only_known_signals() -> None:
    four = [
        {"code": code, "points": 1, "facts": EVERY_REASON[code]} for code in ("model", "dormant", "decline", "losses")
    ]
    with pytest.raises(ValueError, match="at most 3 reasons"):
        ChurnScore(reasons=four)
    with pytest.raises(ValueError, match="Unknown churn signals"):
        ChurnScore(signals={"moon_phase": 1.0})
    with pytest.raises(conf.ImproperlyConfigured, match="CHURN_REASONS_KEPT"):
        conf.ChurnParams(weights={}, reasons_kept=4)


def test_facts_read_from_a_frame_row_and_from_the_database_types_are_the_same() -> None:
    """A score_clients() frame holds NaN for none and datetime64 days; the database None, Decimal
    and date: the reasons are the same dicts."""
    frame_values = {
        "reason_1": reasons.CODES["downgrade"],
        "reason_1_points": 40,
        "downgrade_from": 1.0,
        "downgrade_to": 3.0,
        "downgrade_on": np.datetime64("2026-06-01"),
        "reason_2": reasons.CODES["outflow"],
        "reason_2_points": 9,
        "outflow_share": np.nan,
        "outflow_window_days": 90.0,
        "outflow_amount": 12.5,
        "reason_3": 0,
    }
    db_values = {
        "reason_1": reasons.CODES["downgrade"],
        "reason_1_points": 40,
        "downgrade_from": 1,
        "downgrade_to": 3,
        "downgrade_on": dt.date(2026, 6, 1),
        "reason_2": reasons.CODES["outflow"],
        "reason_2_points": 9,
        "outflow_share": None,
        "outflow_window_days": 90,
        "outflow_amount": Decimal("12.50"),
        "reason_3": 0,
    }
    from_frame = reasons.reasons_of(pd.Series(frame_values).get)
    from_db = reasons.reasons_of(db_values.get)
    assert (
        from_frame
        == from_db
        == [
            {"code": "downgrade", "points": 40, "facts": {"from": 1, "to": 3, "on": "2026-06-01"}},
            {"code": "outflow", "points": 9, "facts": {"share": None, "window": 90, "amount": 12.5}},
        ]
    )


@pytest.mark.django_db
def test_the_stored_scores_give_the_reasons_and_signals_the_scoring_computes(run_nightly) -> None:
    """The demo book scored by the night (COPY on PostgreSQL, bulk_create on SQLite), read back
    through the model, equals score_clients() on the same inputs, reasons and signals included."""
    as_of = dt.date(2026, 11, 20)
    call_command("seed_demo", clients=400, months=24, seed=11, as_of=as_of, no_progress=True, stdout=io.StringIO())
    run = run_nightly(as_of, ["rollup", "tiers", "dormancy", "churn"], chunk_size=150)
    assert run.status == RunStatus.SUCCEEDED, run.error
    act, params = conf.activity_params(), conf.churn_params()
    activity = churn.read_activity(churn.activity_generation(as_of))
    computed = scoring.score_clients(
        activity, read_signals(as_of, 1, 10**9, act), churn.stored_fit(as_of), as_of, params, act
    ).set_index("client_id", drop=False)
    generation = ResultSet.objects.get(kind=ResultSet.Kind.CHURN, is_published=True).generation
    stored = list(ChurnScore.objects.filter(generation=generation))
    assert len(stored) == len(computed) > 300
    codes = set()
    for score in stored:
        row = computed.loc[score.client_id]
        assert score.risk == row["risk"]
        assert score.reasons == reasons.reasons_of(row.get)
        assert score.signals == reasons.signals_of(row.get)
        assert sum(reason["points"] for reason in score.reasons) <= score.risk
        strengths = [
            score.signals.get(reason["code"], 0.0) * params.weights.get(reason["code"], 0.0) for reason in score.reasons
        ]
        assert strengths == sorted(strengths, reverse=True)  # strongest first
        codes.update(reason["code"] for reason in score.reasons)
    assert len(codes) >= 3
    money = [score.outflow_amount for score in stored if score.outflow_amount]
    assert money
    assert all(isinstance(value, Decimal) for value in money)


# --- the migration ------------------------------------------------------------------------------

RETENTION_0005 = ("retention", "0005_scores_partitioned_by_generation")
RETENTION_0006 = ("retention", "0006_churn_reasons_as_columns")

STORED_JSON = {  # client: (p_alive, reasons, signals) as the scores stored them before 0006
    1: (
        0.99281,
        [
            {"code": "model", "points": 25, "facts": EVERY_REASON["model"]},
            {"code": "outflow", "points": 19, "facts": EVERY_REASON["outflow"]},
            {"code": "downgrade", "points": 10, "facts": EVERY_REASON["downgrade"]},
        ],
        {"model": 0.3342, "outflow": 1.0, "downgrade": 1.0},
    ),
    2: (
        None,
        [
            {"code": "dormant", "points": 30, "facts": EVERY_REASON["dormant"]},
            {"code": "complaints", "points": 12, "facts": EVERY_REASON["complaints"]},
            {"code": "losses", "points": 5, "facts": EVERY_REASON["losses"]},
        ],
        {"dormant": 1.0, "complaints": 0.75, "losses": 0.4},
    ),
    3: (
        0.5,
        [
            {"code": "overdue", "points": 8, "facts": {"days": 40, "gap": 12.5}},
            {"code": "decline", "points": 6, "facts": EVERY_REASON["decline"]},
            {"code": "detractor", "points": 4, "facts": EVERY_REASON["detractor"]},
        ],
        {"overdue": 0.2, "decline": 0.7857, "detractor": 0.75},
    ),
    4: (0.9, [{"code": "low_csat", "points": 9, "facts": EVERY_REASON["low_csat"]}], {"low_csat": 1.0}),
    5: (0.99, [], {}),
}
COLUMNS = [field for pair in reasons.REASON_FIELDS for field in pair] + [
    *reasons.SIGNAL_FIELDS.values(),
    *reasons.FACT_FIELDS,
    "p_alive",
]
INSERT = (
    "INSERT INTO retention_churnscore (generation, as_of, client_id, segment, risk, p_alive, clv_simple, "
    "value_at_risk, reasons, signals, model_used) VALUES (7, '2026-06-30', {0}, 'active', 50, {0}, 0, 0, {0}, {0}, {1})"
)


def _check_columns(rows: list[tuple]) -> None:
    """The rows read after 0006 (client_id, *COLUMNS) give back the stored reasons and signals."""
    assert len(rows) == len(STORED_JSON)
    for client_id, *values in rows:
        row = dict(zip(COLUMNS, values, strict=True))
        _, expected_reasons, expected_signals = STORED_JSON[client_id]
        assert reasons.reasons_of(row.get) == expected_reasons
        assert reasons.signals_of(row.get) == expected_signals
    first = dict(zip(COLUMNS, rows[0][1:], strict=True))
    assert Decimal(str(first["outflow_amount"])) == Decimal("62000.55")
    assert str(first["downgrade_on"]) == "2026-06-01"
    assert first["days_since_last_trade"] is None  # no reason showed it: not measured


@pytest.mark.postgres
def test_retention_0006_moves_the_reasons_into_columns_and_back_on_postgresql() -> None:
    """("retention", "0006_churn_reasons_as_columns") on PostgreSQL: forwards the JSON becomes the
    columns (read back as the same reasons and signals), backwards the columns the same JSON."""
    from psycopg.types.json import Jsonb

    from tests.upgrade import pg

    with pg.scratch_database("reasoncols") as dbname:
        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0005))
        with pg.connect(dbname) as conn:
            for client_id, (p_alive, stored_reasons, stored_signals) in STORED_JSON.items():
                conn.execute(
                    INSERT.format("%s", "true"), [client_id, p_alive, Jsonb(stored_reasons), Jsonb(stored_signals)]
                )
        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0006))
        with pg.connect(dbname) as conn:
            rows = conn.execute(
                f"SELECT client_id, {', '.join(COLUMNS)} FROM retention_churnscore ORDER BY client_id"  # noqa: S608
            ).fetchall()
        _check_columns(rows)
        pg.dbtool(dbname, "migrate", ":".join(RETENTION_0005))
        with pg.connect(dbname) as conn:
            back = conn.execute("SELECT client_id, reasons, signals FROM retention_churnscore ORDER BY client_id")
            assert {row[0]: (row[1], row[2]) for row in back} == {
                client_id: (stored_reasons, stored_signals)
                for client_id, (_, stored_reasons, stored_signals) in STORED_JSON.items()
            }


def test_retention_0006_moves_the_reasons_into_columns_and_back_on_sqlite(tmp_path) -> None:
    """("retention", "0006_churn_reasons_as_columns") on SQLite (row by row in Python), both ways."""
    import sqlite3

    from tests.upgrade import pg

    path = tmp_path / "reasons.sqlite3"

    def migrate(node: tuple[str, str]) -> None:
        pg.sqlite_migrate(path, node)

    migrate(RETENTION_0005)
    with sqlite3.connect(path) as conn:
        for client_id, (p_alive, stored_reasons, stored_signals) in STORED_JSON.items():
            conn.execute(
                INSERT.format("?", "1"), [client_id, p_alive, json.dumps(stored_reasons), json.dumps(stored_signals)]
            )
    migrate(RETENTION_0006)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT client_id, {', '.join(COLUMNS)} FROM retention_churnscore ORDER BY client_id"  # noqa: S608
        ).fetchall()
    _check_columns(rows)
    migrate(RETENTION_0005)
    with sqlite3.connect(path) as conn:
        back = conn.execute("SELECT client_id, reasons, signals FROM retention_churnscore ORDER BY client_id")
        assert {row[0]: (json.loads(row[1]), json.loads(row[2])) for row in back} == {
            client_id: (stored_reasons, stored_signals)
            for client_id, (_, stored_reasons, stored_signals) in STORED_JSON.items()
        }
