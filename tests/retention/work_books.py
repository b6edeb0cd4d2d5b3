"""Hand-built nightly results for the retention-work tests: tiers, churn scores, activity
segments and the reactivation list of one as-of date, published like the real stages do."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pandas as pd
from django.db import models
from django.utils import timezone

from brokercrm.nightly.bulk import replace_partition
from clients.models import Client
from retention.models import ChurnScore, ClientActivity
from segmentation.models import ReactivationCandidate, ResultSet, TierHistory, TierMove, TierResult, TierRun

_generations = itertools.count(1000)

_ZERO = {
    models.DecimalField: Decimal("0.00"),
    models.FloatField: 0.0,
    models.IntegerField: 0,
    models.BooleanField: False,
    models.CharField: "",
    models.TextField: "",
    models.DateField: None,
}


def filled(model: type[models.Model], **values: object) -> models.Model:
    """An instance with `values` and a zero for every other required field (the scoring models
    carry many figures the retention-work tests do not read)."""
    for field in model._meta.concrete_fields:
        if field.attname in values or field.name in values or field.primary_key or field.null or field.has_default():
            continue
        for kind, zero in _ZERO.items():
            if isinstance(field, kind) and zero is not None:
                values[field.attname] = zero
                break
    return model(**values)


def publish_tiers(as_of: dt.date, tiers: dict[Client, int], previous: dict[Client, int] | None = None) -> None:
    """Tier results of `as_of` (published); `previous` tiers give changes in TierHistory."""
    previous = previous or {}
    rows = []
    for rank, (client, tier) in enumerate(sorted(tiers.items(), key=lambda item: (item[1], item[0].pk)), start=1):
        before = previous.get(client)
        change = TierMove.SAME if before in (None, tier) else (TierMove.UP if tier < before else TierMove.DOWN)
        rows.append(
            {
                "as_of": as_of,
                "client_id": client.pk,
                "tier": tier,
                "value": 100.0 * (5 - tier),
                "rank": rank,
                "percentile": 0.0,
                "previous_tier": before,
                "change": int(change),
            }
        )
        if before is not None and before != tier:
            TierHistory.objects.create(as_of=as_of, client=client, tier=tier, previous_tier=before)
    frame = pd.DataFrame(rows).astype({"previous_tier": "Int64"})
    frame["previous_tier"] = frame["previous_tier"].astype(object).where(frame["previous_tier"].notna(), None)
    replace_partition(TierResult, frame, key_field="as_of", key_value=as_of)
    TierRun.objects.update_or_create(
        as_of=as_of,
        defaults={"basis": "commission", "population": len(rows), "is_published": True, "published_at": timezone.now()},
    )


def publish_churn(as_of: dt.date, scores: dict[Client, int], *, tiers: dict[Client, int] | None = None) -> int:
    """Churn risks of `as_of`, published as a new generation (the previous one unpublished)."""
    generation = next(_generations)
    tiers = tiers or {}
    ChurnScore.objects.bulk_create(
        [
            filled(
                ChurnScore,
                generation=generation,
                as_of=as_of,
                client=client,
                tier=tiers.get(client),
                segment="active",
                risk=risk,
            )
            for client, risk in scores.items()
        ]
    )
    _publish(ResultSet.Kind.CHURN, as_of, generation, len(scores))
    return generation


def publish_activity(as_of: dt.date, rows: dict[Client, dict]) -> int:
    """Activity rows of `as_of`: per client segment (default active), about_to_go_dormant, regulatory_dormant."""
    generation = next(_generations)
    ClientActivity.objects.bulk_create(
        [
            filled(
                ClientActivity,
                generation=generation,
                as_of=as_of,
                client=client,
                segment=values.get("segment", "active"),
                about_to_go_dormant=values.get("about_to_go_dormant", False),
                regulatory_dormant=values.get("regulatory_dormant", False),
            )
            for client, values in rows.items()
        ]
    )
    _publish(ResultSet.Kind.ACTIVITY, as_of, generation, len(rows))
    return generation


def publish_reactivation(as_of: dt.date, clients: list[Client]) -> None:
    ReactivationCandidate.objects.bulk_create(
        [
            ReactivationCandidate(
                as_of=as_of,
                client=client,
                assets=Decimal("5000000.00"),
                commission=Decimal("1.00"),
                assets_percentile=1.0,
                commission_percentile=10.0,
            )
            for client in clients
        ]
    )
    _publish(ResultSet.Kind.REACTIVATION, as_of, None, len(clients))


def _publish(kind: str, as_of: dt.date, generation: int | None, rows: int) -> None:
    ResultSet.objects.update_or_create(
        kind=kind,
        as_of=as_of,
        defaults={"generation": generation, "is_published": True, "published_at": timezone.now(), "rows": rows},
    )
