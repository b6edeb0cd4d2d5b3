"""The per-client facts the "act" stages and campaigns select on, as one DataFrame.

One row per client open on the as-of date D, read set-wise from the stored nightly results
(never recomputed here): effective tier (computed tier of the latest retained tier run on or
before D, an override in force on D wins), the published churn score and activity segment,
the high-assets-low-activity list, and the client's latest tier change up to D.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import models
from django.db.models import Q, QuerySet

from brokercrm.nightly.bulk import bulk_replace, read_frame
from clients.models import Client
from segmentation.models import ReactivationCandidate, ResultSet, TierHistory, TierOverride, TierResult, TierRun

FACT_COLUMNS = [
    "client_id",
    "manager_user_id",
    "lead_user_id",
    "manager_no",
    "branch",
    "tier",
    "risk",
    "segment",
    "about_to_go_dormant",
    "regulatory_dormant",
    "high_assets_low_activity",
    "tier_change",
    "tier_change_on",
]


def queryset_frame(queryset: QuerySet, fields: list[str], columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of `queryset.values_list(*fields)` as a DataFrame (COPY-fast on PostgreSQL)."""
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    return read_frame(sql, list(params), columns or fields)


def insert_frame(model: type[models.Model], frame: pd.DataFrame) -> int:
    """Insert the rows of `frame` (columns: field attnames; every NOT NULL column present): COPY on
    PostgreSQL, bulk_create elsewhere. `bulk_replace` with a condition that matches no row is the
    pipeline's one insert path for both backends; the callers diff first, so nothing conflicts."""
    if frame.empty:
        return 0
    return bulk_replace(model, frame, where=Q(pk__in=[]))


@dataclass(frozen=True)
class Sources:
    """Which stored results the facts were read from (None: nothing published)."""

    tiers_as_of: dt.date | None
    churn_generation: int | None
    churn_as_of: dt.date | None
    activity_generation: int | None
    activity_as_of: dt.date | None
    reactivation_as_of: dt.date | None

    def as_detail(self) -> dict:
        return {
            "tiers_as_of": str(self.tiers_as_of) if self.tiers_as_of else None,
            "churn_as_of": str(self.churn_as_of) if self.churn_as_of else None,
            "activity_as_of": str(self.activity_as_of) if self.activity_as_of else None,
            "reactivation_as_of": str(self.reactivation_as_of) if self.reactivation_as_of else None,
        }


def _published(kind: str, as_of: dt.date) -> tuple[int | None, dt.date | None]:
    row = (
        ResultSet.objects.filter(kind=kind, is_published=True, as_of__lte=as_of)
        .order_by("-as_of")
        .values_list("generation", "as_of")
        .first()
    )
    return (row[0], row[1]) if row else (None, None)


def sources_on(as_of: dt.date) -> Sources:
    tiers_as_of = (
        TierRun.objects.retained().filter(as_of__lte=as_of).order_by("-as_of").values_list("as_of", flat=True).first()
    )
    churn_generation, churn_as_of = _published(ResultSet.Kind.CHURN, as_of)
    activity_generation, activity_as_of = _published(ResultSet.Kind.ACTIVITY, as_of)
    _, reactivation_as_of = _published(ResultSet.Kind.REACTIVATION, as_of)
    return Sources(
        tiers_as_of=tiers_as_of,
        churn_generation=churn_generation if churn_as_of else None,
        churn_as_of=churn_as_of,
        activity_generation=activity_generation if activity_as_of else None,
        activity_as_of=activity_as_of,
        reactivation_as_of=reactivation_as_of,
    )


def effective_tiers(as_of: dt.date, tiers_as_of: dt.date | None) -> pd.DataFrame:
    """client_id, tier: the computed tier on `tiers_as_of`, overridden where an override is in force on `as_of`."""
    if tiers_as_of is None:
        computed = pd.DataFrame({"client_id": pd.Series(dtype="int64"), "tier": pd.Series(dtype="float64")})
    else:
        computed = queryset_frame(TierResult.objects.filter(as_of=tiers_as_of), ["client_id", "tier"])
    overrides = queryset_frame(TierOverride.objects.active_on(as_of), ["client_id", "tier"], ["client_id", "override"])
    merged = computed.merge(overrides, on="client_id", how="outer")
    merged["tier"] = merged["override"].where(merged["override"].notna(), merged["tier"])
    return merged[["client_id", "tier"]]


def _latest_tier_changes(as_of: dt.date, window_days: int) -> pd.DataFrame:
    changes = queryset_frame(
        TierHistory.objects.filter(
            as_of__gt=as_of - dt.timedelta(days=window_days),
            as_of__lte=as_of,
            tier__isnull=False,
            previous_tier__isnull=False,
        ).order_by("client_id", "as_of"),
        ["client_id", "as_of", "tier", "previous_tier"],
    )
    if changes.empty:
        return pd.DataFrame(
            {"client_id": pd.Series(dtype="int64"), "tier_change": pd.Series(dtype=object), "tier_change_on": []}
        )
    latest = changes.drop_duplicates("client_id", keep="last")
    direction = np.where(latest["tier"].astype(int) < latest["previous_tier"].astype(int), "up", "down")
    return pd.DataFrame(
        {
            "client_id": latest["client_id"].astype("int64").to_numpy(),
            "tier_change": direction,
            "tier_change_on": pd.to_datetime(latest["as_of"]).dt.date.to_numpy(),
        }
    )


def client_facts(as_of: dt.date, *, sources: Sources | None = None, change_window_days: int = 31) -> pd.DataFrame:
    """One row per client open on `as_of` with FACT_COLUMNS (missing facts are NaN / None)."""
    sources = sources or sources_on(as_of)
    from retention.models import ChurnScore, ClientActivity

    clients = queryset_frame(
        Client.objects.open_on(as_of).exclude(status=Client.Status.CLOSED),
        [
            "id",
            "account_manager__user_id",
            "account_manager__team__lead_id",
            "account_manager__employee_no",
            "branch__code",
        ],
        ["client_id", "manager_user_id", "lead_user_id", "manager_no", "branch"],
    )
    clients["client_id"] = clients["client_id"].astype("int64")
    frame = clients.merge(effective_tiers(as_of, sources.tiers_as_of), on="client_id", how="left")
    if sources.churn_generation is not None:
        churn = queryset_frame(
            ChurnScore.objects.filter(generation=sources.churn_generation), ["client_id", "risk", "segment"]
        ).rename(columns={"segment": "churn_segment"})
    else:
        churn = pd.DataFrame({"client_id": pd.Series(dtype="int64"), "risk": [], "churn_segment": []})
    frame = frame.merge(churn, on="client_id", how="left")
    if sources.activity_generation is not None:
        activity = queryset_frame(
            ClientActivity.objects.filter(generation=sources.activity_generation),
            ["client_id", "segment", "about_to_go_dormant", "regulatory_dormant"],
        )
    else:
        activity = pd.DataFrame(
            {"client_id": pd.Series(dtype="int64"), "segment": [], "about_to_go_dormant": [], "regulatory_dormant": []}
        )
    frame = frame.merge(activity, on="client_id", how="left")
    frame["segment"] = frame["segment"].where(frame["segment"].notna(), frame["churn_segment"])
    if sources.reactivation_as_of is not None:
        hal = queryset_frame(ReactivationCandidate.objects.filter(as_of=sources.reactivation_as_of), ["client_id"])
        hal_ids = set(hal["client_id"].astype("int64"))
    else:
        hal_ids = set()
    frame["high_assets_low_activity"] = frame["client_id"].isin(hal_ids)
    frame = frame.merge(_latest_tier_changes(as_of, change_window_days), on="client_id", how="left")
    return frame[FACT_COLUMNS].sort_values("client_id", kind="stable").reset_index(drop=True)
