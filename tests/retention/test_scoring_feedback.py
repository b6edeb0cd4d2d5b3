"""Complaints and survey answers from the feedback app become churn reasons, dated as of the night."""

from __future__ import annotations

import datetime as dt

import pytest

from retention.models import ChurnScore
from segmentation.models import ResultSet
from tests import factories
from tests.nightly.conftest import eager_celery, run_nightly
from tests.retention.test_scoring_stages import AS_OF, book
from tests.segmentation.books import local_noon

__all__ = ["book", "eager_celery", "run_nightly"]

pytestmark = pytest.mark.django_db


def test_an_open_complaint_and_a_detractor_answer_are_reasons(book, run_nightly) -> None:
    steady = book["steady"]
    factories.ComplaintFactory(client=steady, opened_at=local_noon(AS_OF - dt.timedelta(days=5)))
    factories.SurveyResponseFactory(client=steady, score=2, answered_at=local_noon(AS_OF - dt.timedelta(days=3)))
    # Known only after the night's date: must not count.
    factories.ComplaintFactory(client=book["leaving"], opened_at=local_noon(AS_OF + dt.timedelta(days=2)))

    run_nightly(AS_OF, ["rollup", "tiers", "dormancy", "churn"], chunk_size=20)
    generation = ResultSet.objects.get(kind=ResultSet.Kind.CHURN, is_published=True).generation
    scores = {row.client_id: row for row in ChurnScore.objects.filter(generation=generation)}
    codes = [reason["code"] for reason in scores[steady.pk].reasons]
    assert "complaints" in codes
    assert "detractor" in codes
    detractor = next(reason for reason in scores[steady.pk].reasons if reason["code"] == "detractor")
    assert detractor["facts"] == {"score": 2}
    assert scores[steady.pk].signals["complaints"] == 0.75  # one open complaint; two or more: 1.0
    assert "complaints" not in scores[book["leaving"].pk].signals
