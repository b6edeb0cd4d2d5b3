"""The churn stage stores reasons and signals as JSON text built column-wise
(score_clients(as_json=True)); it must be exactly what serialising top_reasons() and the signal
dicts gives, value for value."""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import numpy as np
import pytest
from django.core.management import call_command

from retention import conf, scoring
from retention.inputs import read_activity_inputs, read_signals
from segmentation.rollup import activity_rollup

DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def test_json_tokens_write_what_json_dumps_writes() -> None:
    values = np.array(
        [0.0, -0.0, -0.00001, 0.12345, 1e16, 123456789.125, -3.5, np.nan, np.inf, -np.inf, 2.0, 1e-7, 99.95]
    )
    for digits in (1, 2, 4):
        expected = [DUMPS(value) for value in scoring._rounded(values, digits)]
        assert scoring._json_tokens(values, digits).tolist() == expected
    assert scoring._json_tokens(values, "int").tolist() == [DUMPS(value) for value in scoring._ints(values)]
    finite = values[np.isfinite(values)]
    assert scoring._json_tokens(finite, "float").tolist() == [DUMPS(value) for value in finite.tolist()]
    days = np.array([20000.0, np.nan, -1.0, 20757.0])
    expected = [
        DUMPS(str(scoring.day_from_number(int(day))) if not math.isnan(day) and day >= 0 else None)
        for day in days.tolist()
    ]
    assert scoring._json_tokens(days, "date").tolist() == expected


@pytest.mark.django_db
def test_reasons_and_signals_as_json_equal_the_dicts_on_the_demo_book() -> None:
    as_of = dt.date(2026, 11, 20)
    call_command("seed_demo", clients=400, months=24, seed=11, as_of=as_of, no_progress=True, stdout=io.StringIO())
    activity_rollup()
    act, params = conf.activity_params(), conf.churn_params()
    activity = scoring.activity_segments(read_activity_inputs(as_of, 1, 10**9, act), as_of, act)
    signals = read_signals(as_of, 1, 10**9, act)
    inputs = scoring.model_inputs(activity[activity["segment"] != scoring.SEGMENT_CLOSED], as_of)
    fit = scoring.fit_models(inputs, conf.lifetime_time_unit())
    dicts = scoring.score_clients(activity, signals, fit, as_of, params, act)
    texts = scoring.score_clients(activity, signals, fit, as_of, params, act, as_json=True)
    assert len(dicts) == len(texts) > 300
    assert len({reason["code"] for reasons in dicts["reasons"] for reason in reasons}) >= 3
    for column in ("reasons", "signals"):
        assert [DUMPS(value) for value in dicts[column]] == texts[column].tolist()
    rest = [column for column in dicts.columns if column not in ("reasons", "signals")]
    assert dicts[rest].equals(texts[rest])
