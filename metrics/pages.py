"""The management dashboard: tiers (Pareto staircase, distribution, migration), KPI trends,
the account-manager league table, regulatory callback progress, campaign results and the last
nightly run.

For team leads, compliance, ops and API systems (segmentation.selectors.sees_aggregates);
anyone else gets a 403 page. Every figure comes from the selectors the API uses and reads
stored nightly results only, in a fixed number of queries whatever the size of the book
(pinned by tests/pages/test_dashboards.py). Charts are drawn by the vendored Chart.js from
the same numbers, which the page also shows as tables.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from brokercrm.nightly.registry import all_stages
from brokercrm.policy import sees_all_clients
from clients.models import AccountManager
from metrics import selectors as metric_selectors
from metrics.models import Dimension, MetricValue
from retention.work import callbacks
from retention.work.models import Campaign
from segmentation import selectors as tier_selectors
from segmentation.analytics import NONE_CODE
from segmentation.models import TIER_BY_CODE, TIER_CODES, Tier

# KPI trends: the metrics, their window and how a team's figure is built from its managers' rows.
TREND_CODES = (
    "churn_rate",
    "retention_rate",
    "dormancy_rate",
    "nps",
    "csat",
    "complaint_rate",
    "first_response_hours",
)
TREND_DAYS = 90
# value = numerator / denominator x scale for every trend metric (metrics.analytics), so a team's
# value is the sum of its managers' numerators over the sum of their denominators.
SCALE = {"first_response_hours": Decimal(1)}
LEAGUE_CODES = ("clients", "commission_share", *TREND_CODES)
TIER_RUNS_SHOWN = 30
MIGRATION_DATES = 120
CAMPAIGNS_SHOWN = 10
TIER_ORDER = [*TIER_CODES.values(), NONE_CODE]


def metric_labels() -> dict[str, str]:
    return {
        "clients": _("Clients"),
        "commission_share": _("Commission share"),
        "churn_rate": _("Churn rate"),
        "retention_rate": _("Retention rate"),
        "dormancy_rate": _("Dormancy rate"),
        "nps": _("NPS"),
        "csat": _("CSAT"),
        "complaint_rate": _("Complaint rate"),
        "first_response_hours": _("First response (hours)"),
    }


def tier_label(code: str) -> str:
    if code in TIER_BY_CODE:
        return str(Tier(TIER_BY_CODE[code]).label)
    return _("Not tiered")


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


# --- tiers ---------------------------------------------------------------------------------------


class MigrationForm(forms.Form):
    """Two published tier dates to compare (GET); default: the previous run against the current."""

    from_date = forms.TypedChoiceField(label=gettext_lazy("From date"), coerce=dt.date.fromisoformat)
    to_date = forms.TypedChoiceField(label=gettext_lazy("To date"), coerce=dt.date.fromisoformat)

    def __init__(self, *args: object, dates: list[dt.date], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        choices = [(day.isoformat(), day.isoformat()) for day in dates]
        self.fields["from_date"].choices = choices
        self.fields["to_date"].choices = choices

    def clean(self) -> dict:
        data = super().clean()
        if data.get("from_date") and data.get("to_date") and data["from_date"] >= data["to_date"]:
            raise forms.ValidationError(_("Choose a “from” date before the “to” date."))
        return data


def _pareto(run: object) -> dict:
    steps = []
    start = 0.0
    for step in run.pareto:
        steps.append(
            {
                "tier": step["tier"],
                "label": tier_label(step["tier"]),
                "clients": step["clients"],
                "commission": Decimal(int(step["commission_cents"])) / 100,
                "client_share": step["client_share"] * 100,
                "commission_share": step["commission_share"] * 100,
                "cumulative_client_share": step["cumulative_client_share"] * 100,
                "cumulative_commission_share": step["cumulative_commission_share"] * 100,
                "start": start * 100,
            }
        )
        start = step["cumulative_client_share"]
    return {
        "steps": steps,
        "top20_share": run.top20_share * 100 if run.top20_share is not None else None,
        "chart": {
            "steps": [{**step, "commission": float(step["commission"])} for step in steps],
            "top20_share": run.top20_share * 100 if run.top20_share is not None else None,
        },
    }


def _migration_rows(matrix: dict[str, dict[str, int]]) -> dict:
    """The matrix as table rows in tier order, shaded by share of the row, and the moves."""
    rank = {code: index for index, code in enumerate(TIER_CODES.values())}
    rows, moves = [], {"up": 0, "down": 0, "same": 0, "entered": 0, "left": 0}
    for before in TIER_ORDER:
        counts = matrix.get(before, {})
        total = sum(counts.values())
        cells = []
        for after in TIER_ORDER:
            count = counts.get(after, 0)
            heat = min(5, int(6 * count / total)) if total and count else 0
            cells.append({"tier": after, "count": count, "heat": heat, "same": before == after})
            if not count:
                continue
            if before == NONE_CODE and after != NONE_CODE:
                moves["entered"] += count
            elif after == NONE_CODE and before != NONE_CODE:
                moves["left"] += count
            elif before == after:
                moves["same"] += count if before != NONE_CODE else 0
            elif rank[after] < rank[before]:
                moves["up"] += count
            else:
                moves["down"] += count
        rows.append({"tier": before, "label": tier_label(before), "cells": cells, "total": total})
    return {"rows": rows, "moves": moves}


def tiers_section(request: HttpRequest) -> dict:
    """Pareto and distribution of the current run, the distribution over recent runs, and the
    migration matrix between two dates (form) or the previous run and the current one."""
    try:
        run = tier_selectors.tier_run_get()
    except tier_selectors.NoTiers:
        return {"tier_run": None}
    runs = list(tier_selectors.tier_runs().only("as_of", "population", "tier_counts", "changes")[:MIGRATION_DATES])
    dates = [row.as_of for row in runs]
    history = [
        {
            "as_of": row.as_of,
            "population": row.population,
            "changes": row.changes,
            "counts": [row.tier_counts.get(code, 0) for code in TIER_CODES.values()],
        }
        for row in reversed(runs[:TIER_RUNS_SHOWN])
    ]
    form = MigrationForm(request.GET if "from_date" in request.GET else None, dates=dates)
    from_as_of, to_as_of = run.previous_as_of, run.as_of
    if form.is_valid():
        from_as_of, to_as_of = form.cleaned_data["from_date"], form.cleaned_data["to_date"]
    elif not form.is_bound:
        form = MigrationForm(
            initial={"from_date": from_as_of.isoformat() if from_as_of else "", "to_date": to_as_of.isoformat()},
            dates=dates,
        )
    migration = None
    if from_as_of is not None:
        matrix = tier_selectors.tier_migration(from_as_of=from_as_of, to_as_of=to_as_of)
        migration = {"from_as_of": from_as_of, "to_as_of": to_as_of, **_migration_rows(matrix)}
    tiers = [{"code": code, "label": tier_label(code)} for code in TIER_CODES.values()]
    return {
        "tier_run": run,
        "pareto": _pareto(run),
        "tier_history": history,
        "tier_columns": tiers,
        "tier_order": [{"code": code, "label": tier_label(code)} for code in TIER_ORDER],
        "migration_form": form,
        "migration": migration,
        "tiers_chart": {
            "tiers": tiers,
            "dates": [row["as_of"].isoformat() for row in history],
            "counts": [row["counts"] for row in history],
        },
    }


# --- KPIs ----------------------------------------------------------------------------------------


def _combined(code: str, rows: list[MetricValue]) -> float | None:
    """The overall row's value; without one (a team lead), the team's: sum of the managers'
    numerators / sum of their denominators, on the metric's scale."""
    for row in rows:
        if row.dimension == Dimension.OVERALL:
            return _float(row.value)
    numerator = sum((row.numerator for row in rows if row.numerator is not None), Decimal(0))
    denominator = sum((row.denominator for row in rows if row.denominator is not None), Decimal(0))
    if not rows or not denominator:
        return None
    return float(numerator / denominator * SCALE.get(code, Decimal(100)))


def kpi_section(user: object) -> dict:
    """The latest snapshot's league table and the KPI trends over TREND_DAYS: the firm's for
    firm-wide roles, the team's (the managers a team lead may read) otherwise."""
    snapshot, latest_rows = metric_selectors.dashboard(user=user)
    if snapshot is None:
        return {"kpi_snapshot": None}
    firm_wide = sees_all_clients(user)
    dimension = Dimension.OVERALL if firm_wide else Dimension.ACCOUNT_MANAGER
    since = snapshot.as_of - dt.timedelta(days=TREND_DAYS - 1)
    rows = metric_selectors.series_of(
        user=user, codes=TREND_CODES, dimension=dimension, date_from=since, date_to=snapshot.as_of
    ).order_by("as_of", "id")
    grouped: dict[tuple[dt.date, str], list[MetricValue]] = {}
    for row in rows:
        grouped.setdefault((row.as_of, row.definition.code), []).append(row)
    dates = sorted({day for day, _code in grouped})
    labels = metric_labels()
    trends = []
    for code in TREND_CODES:
        points = [_combined(code, grouped.get((day, code), [])) for day in dates]
        defined = [point for point in points if point is not None]
        trends.append(
            {
                "code": code,
                "label": labels[code],
                "unit": "h" if code in SCALE else ("" if code == "nps" else "%"),
                "latest": points[-1] if points else None,
                "first": defined[0] if defined else None,
                "points": points,
            }
        )
    table = [{"as_of": day, "values": [trend["points"][index] for trend in trends]} for index, day in enumerate(dates)]
    return {
        "kpi_snapshot": snapshot,
        "kpi_scope": _("Firm-wide") if firm_wide else _("Your teams"),
        "kpi_since": dates[0] if dates else None,
        "trends": trends,
        "trend_table": list(reversed(table)),
        "trend_labels": [trend["label"] for trend in trends],
        "kpi_chart": {
            "dates": [day.isoformat() for day in dates],
            "series": [{key: trend[key] for key in ("code", "label", "unit", "points")} for trend in trends],
        },
        "league": league_table(latest_rows),
        "league_labels": [labels[code] for code in LEAGUE_CODES],
    }


def league_table(rows: list[MetricValue]) -> list[dict]:
    """Account managers of the latest snapshot (the user's scope), largest commission share first."""
    by_manager: dict[int, dict[str, float | None]] = {}
    for row in rows:
        if row.dimension == Dimension.ACCOUNT_MANAGER and row.account_manager_id is not None:
            by_manager.setdefault(row.account_manager_id, {})[row.definition.code] = _float(row.value)
    managers = AccountManager.objects.filter(pk__in=list(by_manager)).select_related("user", "team").in_bulk()
    table = [
        {
            "manager": managers.get(pk),
            "values": [values.get(code) for code in LEAGUE_CODES],
            "share": values.get("commission_share"),
            "clients": values.get("clients"),
        }
        for pk, values in by_manager.items()
    ]
    table.sort(
        key=lambda row: (-(row["share"] or 0), -(row["clients"] or 0), row["manager"].pk if row["manager"] else 0)
    )
    return table


# --- retention work and the nightly run ----------------------------------------------------------


def campaigns_section() -> dict:
    """The latest campaigns (the API's list) with their measured uplift and 95% interval."""
    campaigns = list(Campaign.objects.select_related("created_by").order_by("-created_at", "-id")[:CAMPAIGNS_SHOWN])
    rows = []
    for campaign in campaigns:
        report = campaign.report or {}

        def pct(key: str, report: dict = report) -> float | None:
            value = report.get(key)
            return None if value is None else value * 100

        rows.append(
            {
                "campaign": campaign,
                "treated_n": report.get("treated_n"),
                "treated_rate": pct("treated_rate"),
                "control_n": report.get("control_n"),
                "control_rate": pct("control_rate"),
                "uplift": pct("uplift"),
                "ci_low": pct("ci_low"),
                "ci_high": pct("ci_high"),
            }
        )
    measured = [row for row in rows if row["uplift"] is not None]
    return {
        "campaigns": rows,
        "campaign_chart": {
            "names": [row["campaign"].name for row in measured],
            "uplift": [row["uplift"] for row in measured],
            "ci": [[row["ci_low"], row["ci_high"]] for row in measured],
        },
    }


def chart_text() -> dict[str, str]:
    """Words the charts show (dashboard.js has none of its own)."""
    return {
        "clients_share": _("Share of clients (%)"),
        "commission_share": _("Share of commission (%)"),
        "cumulative": _("Cumulative commission"),
        # xgettext:no-python-format
        "top20": _("Top 20% of clients"),
        "clients": _("Clients"),
        "uplift": _("Uplift (percentage points)"),
        # xgettext:no-python-format
        "interval": _("95% interval"),
    }


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    if not tier_selectors.sees_aggregates(request.user):
        return render(request, "dashboards/forbidden.html", status=403)
    nightly = tier_selectors.nightly_runs().first()
    stages = []
    if nightly is not None:
        stages = sorted(
            (stage for stage in nightly.stage_runs.all() if stage.attempt == nightly.attempt),
            key=lambda stage: stage.position,
        )
        descriptions = {stage.name: stage.description for stage in all_stages()}
        for stage in stages:
            stage.description = descriptions.get(stage.name, "")
    context = {
        "nightly": nightly,
        "nightly_stages": stages,
        "failed_stage": next((stage for stage in stages if stage.status == "failed"), None),
        "callbacks": callbacks.published_callback_progress(),
        "chart_text": chart_text(),
        **tiers_section(request),
        **kpi_section(request.user),
        **campaigns_section(),
    }
    return render(request, "dashboards/management.html", context)
