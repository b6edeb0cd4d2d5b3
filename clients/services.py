"""Writes of client contact data that people make from the pages: logging an interaction.

Rules are checked here and raise InteractionError, whose messages name the field and what was
expected. Callers have already checked that the client is in the user's scope
(brokercrm.policy) and that the user may act on it.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from clients.models import Client, Interaction

SUMMARY_MAX = 2000
OUTCOME_MAX = 200


class InteractionError(ValueError):
    BAD_CHANNEL = "channel: expected one of {choices}, not {value!r}."
    BAD_DIRECTION = "direction: expected one of {choices}, not {value!r}."
    SUMMARY_REQUIRED = "summary: say what the contact was about."
    SUMMARY_TOO_LONG = "summary: at most {limit} characters."
    OUTCOME_TOO_LONG = "outcome: at most {limit} characters."
    IN_FUTURE = "occurred_at: must not be in the future."

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def interaction_log(
    *,
    client: Client,
    by: AbstractBaseUser,
    channel: str,
    direction: str,
    summary: str,
    outcome: str = "",
    occurred_at: dt.datetime | None = None,
) -> Interaction:
    """Record one contact with `client` (a call, a visit, an e-mail ...) made or received by `by`."""
    if channel not in Interaction.Channel.values:
        raise InteractionError(
            InteractionError.BAD_CHANNEL.format(choices=", ".join(Interaction.Channel.values), value=channel),
            field="channel",
        )
    if direction not in Interaction.Direction.values:
        raise InteractionError(
            InteractionError.BAD_DIRECTION.format(choices=", ".join(Interaction.Direction.values), value=direction),
            field="direction",
        )
    summary = (summary or "").strip()
    outcome = (outcome or "").strip()
    if not summary:
        raise InteractionError(InteractionError.SUMMARY_REQUIRED, field="summary")
    if len(summary) > SUMMARY_MAX:
        raise InteractionError(InteractionError.SUMMARY_TOO_LONG.format(limit=SUMMARY_MAX), field="summary")
    if len(outcome) > OUTCOME_MAX:
        raise InteractionError(InteractionError.OUTCOME_TOO_LONG.format(limit=OUTCOME_MAX), field="outcome")
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now:
        raise InteractionError(InteractionError.IN_FUTURE, field="occurred_at")
    return Interaction.objects.create(
        client=client,
        channel=channel,
        direction=direction,
        summary=summary,
        outcome=outcome,
        occurred_at=occurred_at,
        by=by,
    )
