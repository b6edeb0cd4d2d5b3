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

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from brokercrm.nightly.chunks import client_id_ranges
from brokercrm.policy import get_visible_or_404, scope_queryset
from clients.models import Client
from retention import conf, scoring
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


def activity_segments(as_of: dt.date) -> pd.DataFrame:
    """client_id, segment (active / potentially_active / dormant / closed) of every client opened
    by `as_of`, computed from the data known on that date (the same rules as the nightly stage).

    When the dormancy stage has published `as_of` (the same night, before the metrics stage),
    its rows are read instead of computed again: the same values, a fraction of the time."""
    result = published(ResultSet.Kind.ACTIVITY)
    if result is not None and result.as_of == as_of and result.generation is not None:
        rows = ClientActivity.objects.filter(generation=result.generation).values_list("client_id", "segment")
        frame = pd.DataFrame.from_records(list(rows.iterator(chunk_size=50_000)), columns=["client_id", "segment"])
        return frame.astype({"client_id": "int64"}).sort_values("client_id", kind="stable").reset_index(drop=True)
    frame = activity_frame(as_of)
    return pd.DataFrame(
        {"client_id": frame["client_id"].astype("int64").to_numpy(), "segment": frame["segment"].to_numpy()}
    )


def model_clv(as_of: dt.date) -> pd.DataFrame | None:
    """client_id, clv (model CLV over CLV_HORIZON_DAYS, NaN for clients the model does not value)
    for the clients open on `as_of`, from the lifetime fit stored for that date; None when no
    usable fit was stored for it."""
    from retention.churn import stored_fit

    if not LifetimeFit.objects.filter(as_of=as_of, status=LifetimeFit.Status.OK).exists():
        return None
    fit = stored_fit(as_of)
    if not fit.value_usable:
        return None
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
