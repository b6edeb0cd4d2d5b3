"""Writes of metrics outside the snapshot itself: the definition catalogue.

`definitions_sync` brings the catalogue (metrics/definitions.py) into the database: new
(code, version) rows are created; a stored row is never changed. It raises DefinitionConflict
when the catalogue would rewrite a stored definition, or when a new version would take effect
on or before an as-of date already stored for that metric (that date would silently change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max

from metrics import definitions as catalogue
from metrics.models import MetricDefinition, MetricValue


class DefinitionConflict(RuntimeError):
    CHANGED = (
        "Metric {code} v{version} is stored with a different {field}; a changed definition is a new version: "
        "add v{next} with a later effective_from instead."
    )
    BACKDATED = (
        "Metric {code} v{version} would take effect on {effective_from}, but snapshots up to {stored} are "
        "stored with earlier versions; give it an effective_from after {stored}."
    )
    NOT_IMPLEMENTED = "Metric {code}: version {version} is effective on {as_of} but not implemented."


# The versions metrics/analytics.py computes; a new version needs its code here.
IMPLEMENTED: dict[str, set[int]] = {code: {1} for code in catalogue.CODES}


def definitions_sync(entries: Iterable[catalogue.Definition] = catalogue.CATALOGUE) -> list[MetricDefinition]:
    """Create the catalogue's missing definitions; returns every catalogue definition row."""
    rows = []
    with transaction.atomic():
        stored = {(row.code, row.version): row for row in MetricDefinition.objects.select_for_update()}
        for entry in entries:
            row = stored.get((entry.code, entry.version))
            if row is not None:
                for field in ("name", "unit", "formula", "params", "effective_from"):
                    if getattr(row, field) != getattr(entry, field):
                        latest = max(version for code, version in stored if code == entry.code)
                        raise DefinitionConflict(
                            DefinitionConflict.CHANGED.format(
                                code=entry.code, version=entry.version, field=field, next=latest + 1
                            )
                        )
                rows.append(row)
                continue
            last_stored = MetricValue.objects.filter(definition__code=entry.code).aggregate(day=Max("as_of"))["day"]
            if last_stored is not None and entry.effective_from <= last_stored:
                raise DefinitionConflict(
                    DefinitionConflict.BACKDATED.format(
                        code=entry.code, version=entry.version, effective_from=entry.effective_from, stored=last_stored
                    )
                )
            row = MetricDefinition.objects.create(
                code=entry.code,
                version=entry.version,
                name=entry.name,
                unit=entry.unit,
                formula=entry.formula,
                params=entry.params,
                effective_from=entry.effective_from,
            )
            stored[(entry.code, entry.version)] = row
            rows.append(row)
    return rows


def definitions_effective(as_of: dt.date) -> dict[str, MetricDefinition]:
    """Per code, the stored version in force on `as_of` (latest effective_from <= as_of)."""
    effective: dict[str, MetricDefinition] = {}
    for row in MetricDefinition.objects.filter(effective_from__lte=as_of).order_by("code", "effective_from"):
        effective[row.code] = row
    for code, row in effective.items():
        if row.version not in IMPLEMENTED.get(code, set()):
            raise DefinitionConflict(
                DefinitionConflict.NOT_IMPLEMENTED.format(code=code, version=row.version, as_of=as_of)
            )
    return effective
