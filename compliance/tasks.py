"""Compliance checks at once, outside the nightly run: after an import that wrote KYC, risk,
client, trade or cash-flow rows, the flag rules run for today (the suitability rule reads only
the trades after its watermark, screening only the changed clients), so a PEP, a sanctions
match or an unsuitable trade is flagged within minutes rather than the next morning."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

# Flag candidates of an import-triggered run are staged under this offset plus the batch id,
# apart from the nightly stage runs' generations.
IMPORT_GENERATION_OFFSET = 10**12
CHECKED_KINDS = frozenset({"clients", "kyc", "risk", "trades", "cashflows"})


@shared_task(name="compliance.flags_after_import", ignore_result=True)
def flags_after_import(batch_id: int) -> dict:
    from compliance.nightly import flags_evaluate

    result = flags_evaluate(as_of=timezone.localdate(), generation=IMPORT_GENERATION_OFFSET + batch_id)
    return result.detail.get("raised", {})


def on_import_committed(sender: object, batch: object, **kwargs: object) -> None:
    if getattr(batch, "kind", None) in CHECKED_KINDS:
        flags_after_import.delay(batch.pk)
