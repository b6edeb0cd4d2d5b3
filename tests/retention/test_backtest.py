"""The back-test on the demo book: the churn risk must beat days-since-last-trade."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

DEMO_AS_OF = dt.date(2026, 11, 21)  # the ledger holds everything before this day


@pytest.fixture
def demo_book() -> None:
    call_command(
        "seed_demo", clients=3000, months=24, seed=42, as_of=DEMO_AS_OF, no_progress=True, stdout=io.StringIO()
    )


def test_the_churn_risk_beats_the_baseline_on_the_demo_book(demo_book: None) -> None:
    out = io.StringIO()
    call_command("evaluate_churn", "--as-of", "2026-11-20", "--horizon", "90", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["cutoff"] == "2026-08-22"
    assert result["model_status"] == "ok"
    assert result["population"] > 1000
    assert 0 < result["churned"] < result["population"]
    model, baseline = result["rankings"]
    assert model["name"] == "churn risk"
    assert baseline["name"] == "days since last trade"
    assert model["auc"] > baseline["auc"]
    assert model["top_decile_lift"] > baseline["top_decile_lift"]
    assert model["top_decile_lift"] > 1.5

    text = io.StringIO()
    call_command("evaluate_churn", "--as-of", "2026-11-20", "--no-rollup", stdout=text)
    assert "The churn risk beats the baseline" in text.getvalue()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(CommandError, match="expected a date"):
        call_command("evaluate_churn", "--as-of", "20-11-2026")
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("evaluate_churn", "--as-of", "2026-11-20", "--horizon", "0")
