"""feedback.selectors.churn_signals: the interface churn scoring builds on."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from feedback.selectors import SIGNAL_COLUMNS, churn_signals
from tests import factories

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
ZONE = timezone.get_default_timezone()


def at(day: dt.date, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=ZONE)


def end_of(day: dt.date) -> dt.datetime:
    return at(day + dt.timedelta(days=1), 0)


def complaint(client, opened_at, resolved_at=None):
    if resolved_at is None:
        return factories.ComplaintFactory(client=client, opened_at=opened_at)
    return factories.ComplaintFactory(
        client=client,
        opened_at=opened_at,
        first_response_at=opened_at,
        resolved_at=resolved_at,
        status="resolved",
        root_cause="Call-back queue not monitored.",
        resolution="Apologised and completed the transfer.",
    )


def answer(client, kind, score, answered_at):
    question = factories.SurveyQuestionFactory(kind=kind)
    return factories.SurveyResponseFactory(client=client, question=question, score=score, answered_at=answered_at)


@pytest.fixture
def book():
    manager = factories.AccountManagerFactory()
    a, b, c, d, e = (factories.ClientFactory(account_manager=manager) for _ in range(5))
    # a: open complaints, counted by the end of the as-of day (exchange time)
    complaint(a, at(AS_OF, 23, 59, 59))  # opened in the last second of the day: open
    complaint(a, at(AS_OF - dt.timedelta(days=40)), resolved_at=end_of(AS_OF))  # resolved only the next day: open
    complaint(a, at(AS_OF - dt.timedelta(days=40)), resolved_at=at(AS_OF, 23, 59))  # resolved that day: not open
    complaint(a, end_of(AS_OF))  # opened after the as-of date: not known yet
    # b: detractor answers; the lowest in the window counts
    answer(b, "nps", 5, at(AS_OF - dt.timedelta(days=3)))
    answer(b, "nps", 3, at(AS_OF - dt.timedelta(days=179), 0))  # first second of the 180-day window
    answer(b, "nps", 1, at(AS_OF - dt.timedelta(days=180), 23, 59, 59))  # just before the window
    answer(b, "nps", 0, end_of(AS_OF))  # after the as-of date
    answer(b, "csat", 3, at(AS_OF))  # CSAT 3 is not low
    # c: low CSAT only
    answer(c, "csat", 2, at(AS_OF - dt.timedelta(days=10)))
    answer(c, "csat", 1, at(AS_OF - dt.timedelta(days=20)))
    answer(c, "nps", 7, at(AS_OF - dt.timedelta(days=20)))  # passive: no signal
    # d: promoter and satisfied only: no row
    answer(d, "nps", 10, at(AS_OF))
    answer(d, "csat", 5, at(AS_OF))
    # e: everything, but outside the id range asked for below
    complaint(e, at(AS_OF))
    answer(e, "nps", 0, at(AS_OF))
    return a, b, c, d, e


def test_signals_per_client_with_exact_day_and_window_boundaries(book):
    a, b, c, d, _e = book

    frame = churn_signals(AS_OF, a.pk, d.pk)

    assert list(frame.columns) == SIGNAL_COLUMNS
    assert frame["client_id"].tolist() == [a.pk, b.pk, c.pk]
    rows = frame.set_index("client_id")
    assert rows.loc[a.pk, "open_complaints"] == 2
    assert np.isnan(rows.loc[a.pk, "detractor_score"])
    assert np.isnan(rows.loc[a.pk, "low_csat"])
    assert rows.loc[b.pk, "open_complaints"] == 0
    assert rows.loc[b.pk, "detractor_score"] == 3.0
    assert np.isnan(rows.loc[b.pk, "low_csat"])
    assert rows.loc[c.pk, "low_csat"] == 1.0
    assert np.isnan(rows.loc[c.pk, "detractor_score"])


def test_dtypes_are_fixed_even_when_empty(book):
    a, *_ = book
    full = churn_signals(AS_OF, a.pk, a.pk + 10)
    empty = churn_signals(dt.date(2020, 1, 1), a.pk, a.pk + 10)
    expected = {"client_id": "int64", "open_complaints": "int64", "detractor_score": "float64", "low_csat": "float64"}
    for frame in (full, empty):
        assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == expected
    assert empty.empty


def test_the_window_length_is_a_setting(book, settings):
    _, b, *_ = book
    settings.FEEDBACK_SIGNAL_DAYS = 179  # the answer of 3, 179 days before, drops out
    rows = churn_signals(AS_OF, b.pk, b.pk).set_index("client_id")
    assert rows.loc[b.pk, "detractor_score"] == 5.0


def test_data_after_the_as_of_date_does_not_change_a_past_date(book):
    a, _b, c, d, _ = book
    before = churn_signals(AS_OF, a.pk, d.pk)
    # given: later events about the same clients
    later = at(AS_OF + dt.timedelta(days=2))
    complaint(c, later)
    answer(c, "nps", 0, later)
    answer(d, "csat", 1, later)
    # then: the past date reads the same
    pd.testing.assert_frame_equal(churn_signals(AS_OF, a.pk, d.pk), before)


def test_two_aggregate_queries_whatever_the_range(book, monkeypatch):
    from feedback import selectors

    calls = []
    real = selectors.read_frame
    monkeypatch.setattr(selectors, "read_frame", lambda *args: calls.append(args[0]) or real(*args))
    churn_signals(AS_OF, 0, 10**12)
    assert len(calls) == 2
    assert all("GROUP BY client_id" in sql for sql in calls)
