"""Reads of the scoring results for the API, admin, pages and the metrics stage.

Client-level reads take the requesting user and apply brokercrm.policy (rows outside the
user's scope never come back; a lookup outside it is a 404). They read the published
generation of each result (see retention/publish.py): stored nightly results, never a model
computed in a request.

`activity_segments(as_of)` and `model_clv(as_of)` recompute a past date from the data known
then (and the fit stored for it), for figures that must be reproducible for any date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from brokercrm.nightly.bulk import nan_sql, read_numbers
from brokercrm.nightly.chunks import client_id_ranges
from brokercrm.policy import get_visible_or_404, scope_queryset
from clients.models import Client
from retention import conf, scoring, segment_log
from retention.models import ChurnScore, ClientActivity, LifetimeFit
from segmentation.models import ResultSet
from segmentation.publish import published

User = AbstractBaseUser | AnonymousUser


def published_generation(kind: str) -> tuple[int | None, dt.date | None]:
    result = published(kind)
    return (result.generation, result.as_of) if result else (None, None)


def published_generations() -> dict[str, int]:
    """{kind: generation} of the published activity and churn results, in one query."""
    return dict(
        ResultSet.objects.filter(
            kind__in=[ResultSet.Kind.ACTIVITY, ResultSet.Kind.CHURN], is_published=True, generation__isnull=False
        ).values_list("kind", "generation")
    )


def churn_scores(*, user: User, generation: int | None = None) -> QuerySet[ChurnScore]:
    """The published churn scores of the clients in the user's scope."""
    if generation is None:
        generation, _ = published_generation(ResultSet.Kind.CHURN)
    if generation is None:
        return ChurnScore.objects.none()
    queryset = ChurnScore.objects.filter(generation=generation).select_related(
        "client__branch", "client__account_manager"
    )
    return scope_queryset(user, queryset, prefix="client__")


def client_activity_list(*, user: User, generation: int | None = None) -> QuerySet[ClientActivity]:
    """The published activity rows (segments, dormancy warnings) in the user's scope."""
    if generation is None:
        generation, _ = published_generation(ResultSet.Kind.ACTIVITY)
    if generation is None:
        return ClientActivity.objects.none()
    queryset = ClientActivity.objects.filter(generation=generation).select_related(
        "client__branch", "client__account_manager"
    )
    return scope_queryset(user, queryset, prefix="client__")


@dataclass
class ClientScores:
    client: Client
    activity: ClientActivity | None
    churn: ChurnScore | None


def client_scores_get(*, user: User, client_no: str) -> ClientScores:
    """A client's current activity segment and churn score; Http404 outside scope or before any run."""
    client = get_visible_or_404(user, Client.objects.only("pk", "client_no", "name"), client_no=client_no)
    activity_generation, _ = published_generation(ResultSet.Kind.ACTIVITY)
    churn_generation, _ = published_generation(ResultSet.Kind.CHURN)
    activity = (
        ClientActivity.objects.filter(generation=activity_generation, client_id=client.pk).first()
        if activity_generation is not None
        else None
    )
    churn = (
        ChurnScore.objects.filter(generation=churn_generation, client_id=client.pk).first()
        if churn_generation is not None
        else None
    )
    if activity is None and churn is None:
        raise Http404("No scores for this client yet.")
    return ClientScores(client, activity, churn)


def client_scores_for(client: Client) -> ClientScores:
    """The published activity and churn rows of a client already checked against the scope
    (None where the client has no row): two queries."""
    results = published_generations()
    activity = churn = None
    if ResultSet.Kind.ACTIVITY in results:
        activity = ClientActivity.objects.filter(generation=results[ResultSet.Kind.ACTIVITY], client=client).first()
    if ResultSet.Kind.CHURN in results:
        churn = ChurnScore.objects.filter(generation=results[ResultSet.Kind.CHURN], client=client).first()
    return ClientScores(client, activity, churn)


def lifetime_fits() -> QuerySet[LifetimeFit]:
    return LifetimeFit.objects.order_by("-as_of")


# --- recomputation for any date (metrics) ---------------------------------------------------


def activity_frame(as_of: dt.date) -> pd.DataFrame:
    """Every client opened by `as_of` with its activity columns as of that date (data <= as_of only)."""
    from retention.inputs import read_activity_inputs

    params = conf.activity_params()
    parts = [
        scoring.activity_segments(read_activity_inputs(as_of, first, last, params), as_of, params)
        for first, last in client_id_ranges()
    ]
    if not parts:
        return scoring.activity_segments(pd.DataFrame(columns=scoring.ACTIVITY_INPUT), as_of, params)
    return pd.concat(parts, ignore_index=True)


def published_segments(generation: int) -> pd.DataFrame:
    """client_id, segment of a ClientActivity generation, in client order (one query)."""
    table = connection.ops.quote_name(ClientActivity._meta.db_table)
    frame = read_numbers(
        f"SELECT client_id, {segment_log.code_sql('segment')} FROM {table} WHERE generation = %s",  # noqa: S608
        [generation],
        {"client_id": "i", "code": "i"},
    )
    frame = pd.DataFrame(
        {
            "client_id": frame["client_id"].to_numpy().astype("int64"),
            "segment": segment_log.NAMES[frame["code"].to_numpy().astype("int64")],
        }
    )
    return frame.sort_values("client_id", kind="stable").reset_index(drop=True)


def activity_segments(as_of: dt.date, *, history: bool = True) -> pd.DataFrame:
    """client_id, segment (active / potentially_active / dormant / closed) of every client opened
    by `as_of`, computed from the data known on that date (the same rules as the nightly stage).

    When the dormancy stage has published `as_of` (the same night, before the metrics stage),
    its rows are read instead of computed again: the same values, a fraction of the time. For an
    earlier date the segment history (retention/segment_log.py) gives them when it covers the
    date and provably equals computing them (`history=False` skips it); else they are computed."""
    result = published(ResultSet.Kind.ACTIVITY)
    if result is not None and result.as_of == as_of and result.generation is not None:
        return published_segments(result.generation)
    if history:
        recorded = segment_log.segments_on(as_of)
        if recorded is not None:
            return recorded
    frame = activity_frame(as_of)
    return pd.DataFrame(
        {"client_id": frame["client_id"].astype("int64").to_numpy(), "segment": frame["segment"].to_numpy()}
    )


def model_clv_generation(as_of: dt.date) -> int | None:
    """The published churn generation whose `clv` column model_clv(as_of) reads, or None.

    Its scores were computed by the churn stage with the fit stored for `as_of` on the published
    activity rows of `as_of`: scoring.model_scores on the same rows and fit, rounded to cents as
    model_clv rounds (tests/metrics/test_fast_sources.py). None when the fit is not usable for
    values (model_clv is then None too) or when the activity rows or the fit were rewritten
    after the scores."""
    from retention.churn import stored_fit

    stored = LifetimeFit.objects.filter(as_of=as_of, status=LifetimeFit.Status.OK).first()
    if stored is None or not stored_fit(as_of).value_usable:
        return None
    return _scores_generation(as_of, stored)


def _scores_generation(as_of: dt.date, fit: LifetimeFit) -> int | None:
    churn, activity = published(ResultSet.Kind.CHURN), published(ResultSet.Kind.ACTIVITY)
    if churn is None or activity is None or churn.generation is None or activity.generation is None:
        return None
    if churn.as_of != as_of or activity.as_of != as_of:
        return None
    if not (activity.published_at <= churn.published_at and fit.created_at <= churn.published_at):
        return None  # the activity rows or the fit were rewritten after the scores
    return churn.generation


def clv_values(values: np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")


def published_clv(as_of: dt.date, fit: LifetimeFit) -> pd.DataFrame | None:
    """client_id, clv from the published churn scores of `as_of` (see model_clv_generation); else None."""
    generation = _scores_generation(as_of, fit)
    if generation is None:
        return None
    table = connection.ops.quote_name(ChurnScore._meta.db_table)
    frame = read_numbers(  # NULL (not valued) is NaN
        f"SELECT client_id, {nan_sql('clv')} FROM {table} WHERE generation = %s",  # noqa: S608
        [generation],
        {"client_id": "i", "clv": "f"},
    )
    frame = pd.DataFrame(
        {"client_id": frame["client_id"].to_numpy().astype("int64"), "clv": clv_values(frame["clv"].to_numpy())}
    )
    return frame.sort_values("client_id", kind="stable").reset_index(drop=True)


def model_clv(as_of: dt.date, *, published_scores: bool = True) -> pd.DataFrame | None:
    """client_id, clv (model CLV over CLV_HORIZON_DAYS, NaN for clients the model does not value)
    for the clients open on `as_of`, from the lifetime fit stored for that date; None when no
    usable fit was stored for it. Read from the published churn scores of `as_of` when they hold
    exactly these values (model_clv_generation; `published_scores=False` skips them)."""
    from retention.churn import stored_fit

    stored = LifetimeFit.objects.filter(as_of=as_of, status=LifetimeFit.Status.OK).first()
    if stored is None:
        return None
    fit = stored_fit(as_of)
    if not fit.value_usable:
        return None
    scored = published_clv(as_of, stored) if published_scores else None
    if scored is not None:
        return scored
    result = published(ResultSet.Kind.ACTIVITY)
    if result is not None and result.as_of == as_of and result.generation is not None:
        from retention.churn import read_activity

        frame = read_activity(result.generation)  # the night's rows, as the churn stage read them
    else:
        frame = activity_frame(as_of)
    frame = frame[frame["segment"] != scoring.SEGMENT_CLOSED].reset_index(drop=True)
    act = conf.activity_params()
    values = scoring.model_scores(fit, frame, as_of, conf.churn_params(), act.recent_days)
    return pd.DataFrame({"client_id": frame["client_id"].astype("int64").to_numpy(), "clv": values["clv"].round(2)})
