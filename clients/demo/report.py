"""Measure the demo book from the database: how concentrated commission is."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q

from clients.demo.calendar import months_before
from clients.models import Client, Trade


@dataclass(frozen=True)
class Concentration:
    share: float  # commission share of the top clients (0..1)
    top_clients: int
    clients: int  # the population ranked
    commission: float  # total commission in the window, CNY
    window_start: dt.date
    window_end: dt.date  # exclusive


def commission_concentration(*, as_of: dt.date, top: float = 0.2, months: int = 12) -> Concentration:
    """Share of the commission of the `months` before `as_of` made by the top `top`
    fraction of clients, ranked by that commission.

    The population is every client open at some time in the window (zero-commission
    clients included: they are the bottom of the ranking), as the nightly tiering ranks.
    """
    start = months_before(as_of, months)
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    start_at = dt.datetime.combine(start, dt.time(), tzinfo=zone)
    end_at = dt.datetime.combine(as_of, dt.time(), tzinfo=zone)
    population = (
        Client.objects.filter(opened_on__lt=as_of).filter(Q(closed_on__isnull=True) | Q(closed_on__gte=start)).count()
    )
    top_clients = math.ceil(top * population)
    trades = connection.ops.quote_name(Trade._meta.db_table)
    # One pass: per-client sums ranked by a window function; only two numbers come back.
    sql = f"""
        SELECT COALESCE(SUM(CASE WHEN rank_no <= %s THEN commission END), 0), COALESCE(SUM(commission), 0)
        FROM (
            SELECT SUM(commission) AS commission, ROW_NUMBER() OVER (ORDER BY SUM(commission) DESC) AS rank_no
            FROM {trades}
            WHERE executed_at >= %s AND executed_at < %s
            GROUP BY client_id
        ) per_client
    """  # noqa: S608 - the table name comes from the model
    with connection.cursor() as cursor:
        bounds = [connection.ops.adapt_datetimefield_value(value) for value in (start_at, end_at)]
        cursor.execute(sql, [top_clients, *bounds])
        top_sum, total = cursor.fetchone()
    total = float(total or 0)
    return Concentration(
        share=float(top_sum or 0) / total if total else 0.0,
        top_clients=top_clients,
        clients=population,
        commission=total,
        window_start=start,
        window_end=as_of,
    )
