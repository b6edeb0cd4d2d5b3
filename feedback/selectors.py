"""Reads of feedback: churn signals for scoring, scoped lists for the API and admin, and the
annual complaints register.

`churn_signals` is the interface the churn scoring (retention) builds on: set-based, and it
reads only rows dated on or before the as-of date, so a back-test of a past date sees what
the CRM knew then.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from brokercrm.lib.exchange_time import day_end, day_start
from brokercrm.nightly.bulk import read_frame
from brokercrm.policy import get_visible_or_404, scope_queryset
from feedback import conf
from feedback.models import (
    CSAT_LOW_MAX,
    NPS_DETRACTOR_MAX,
    Complaint,
    SurveyQuestion,
    SurveyResponse,
)

User = AbstractBaseUser | AnonymousUser

SIGNAL_COLUMNS = ["client_id", "open_complaints", "detractor_score", "low_csat"]


def sql_datetime(value: dt.datetime) -> object:
    """A datetime as a raw-SQL parameter: SQLite stores naive UTC text and compares text, so
    an aware value must be converted the way the ORM does; PostgreSQL takes it as is."""
    return connection.ops.adapt_datetimefield_value(value)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def churn_signals(as_of: dt.date, client_id_from: int, client_id_to: int) -> pd.DataFrame:
    """Feedback signals of the clients with client_id_from <= id <= client_id_to on `as_of`.

    One row per client with any signal; columns:
    - client_id (int64);
    - open_complaints (int64): complaints opened on or before `as_of` and not resolved by the
      end of `as_of` (exchange time);
    - detractor_score (float64, NaN if none): the lowest NPS answer of 0-6 given in the
      FEEDBACK_SIGNAL_DAYS days up to and including `as_of`;
    - low_csat (float64, NaN if none): the lowest CSAT answer <= 2 in the same window.

    Only rows dated on or before `as_of` are read (complaints by opened_at and resolved_at,
    answers by answered_at). Two aggregate queries, each an index range scan.
    """
    end = sql_datetime(day_end(as_of))
    start = sql_datetime(day_start(as_of - dt.timedelta(days=conf.signal_days() - 1)))
    complaints = read_frame(
        f"SELECT client_id, COUNT(*) FROM {_q(Complaint._meta.db_table)} "  # noqa: S608
        "WHERE client_id >= %s AND client_id <= %s AND opened_at < %s "
        "AND (resolved_at IS NULL OR resolved_at >= %s) GROUP BY client_id",
        [client_id_from, client_id_to, end, end],
        ["client_id", "open_complaints"],
    )
    answers = read_frame(
        "SELECT client_id, "  # noqa: S608
        "MIN(CASE WHEN kind = 'nps' THEN score END), MIN(CASE WHEN kind = 'csat' THEN score END) "
        f"FROM {_q(SurveyResponse._meta.db_table)} "
        "WHERE client_id >= %s AND client_id <= %s AND answered_at >= %s AND answered_at < %s "
        "AND ((kind = 'nps' AND score <= %s) OR (kind = 'csat' AND score <= %s)) GROUP BY client_id",
        [client_id_from, client_id_to, start, end, NPS_DETRACTOR_MAX, CSAT_LOW_MAX],
        ["client_id", "detractor_score", "low_csat"],
    )
    complaints = complaints.astype({"client_id": "int64", "open_complaints": "int64"})
    answers = answers.astype({"client_id": "int64", "detractor_score": "float64", "low_csat": "float64"})
    merged = complaints.merge(answers, on="client_id", how="outer")
    merged["open_complaints"] = merged["open_complaints"].fillna(0).astype("int64")
    merged["detractor_score"] = merged["detractor_score"].astype("float64")
    merged["low_csat"] = merged["low_csat"].astype("float64")
    merged["client_id"] = merged["client_id"].astype("int64")
    return merged[SIGNAL_COLUMNS].sort_values("client_id", kind="stable").reset_index(drop=True)


def empty_signals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "client_id": np.array([], dtype="int64"),
            "open_complaints": np.array([], dtype="int64"),
            "detractor_score": np.array([], dtype="float64"),
            "low_csat": np.array([], dtype="float64"),
        }
    )


# --- API and admin reads ---------------------------------------------------------------------


def complaint_list(*, user: User, now: dt.datetime | None = None) -> QuerySet[Complaint]:
    """Complaints of the clients `user` may see, with SLA breach flags as of `now`."""
    queryset = Complaint.objects.select_related("client__branch", "client__account_manager", "opened_by").with_sla(
        now or timezone.now()
    )
    return scope_queryset(user, queryset, prefix="client__")


def complaint_get(*, user: User, pk: int, now: dt.datetime | None = None) -> Complaint:
    """One complaint in the user's scope (Http404 otherwise), with breach flags and events."""
    queryset = (
        Complaint.objects.select_related("client__branch", "client__account_manager", "opened_by")
        .prefetch_related("events__by")
        .with_sla(now or timezone.now())
    )
    return get_visible_or_404(user, queryset, prefix="client__", pk=pk)


def survey_response_list(*, user: User) -> QuerySet[SurveyResponse]:
    queryset = SurveyResponse.objects.select_related("client", "question", "campaign", "recorded_by")
    return scope_queryset(user, queryset, prefix="client__")


def survey_questions() -> QuerySet[SurveyQuestion]:
    return SurveyQuestion.objects.filter(is_active=True).order_by("kind", "id")


def register_rows(*, year: int, now: dt.datetime | None = None) -> QuerySet[Complaint]:
    """The complaints register of `year`: every complaint opened that calendar year (exchange
    time), oldest first, with client and branch joined and breach flags as of `now`."""
    start, end = day_start(dt.date(year, 1, 1)), day_start(dt.date(year + 1, 1, 1))
    return (
        Complaint.objects.filter(opened_at__gte=start, opened_at__lt=end)
        .select_related("client__branch", "client__account_manager")
        .with_sla(now or timezone.now())
        .order_by("opened_at", "id")
    )
