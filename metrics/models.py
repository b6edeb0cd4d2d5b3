"""KPI snapshots: versioned metric definitions and the values of each as-of date.

- `MetricDefinition` (code, version): what a metric means, in words and parameters, from
  `effective_from` on. The catalogue lives in metrics/definitions.py and is synced into this
  table; a row is never changed afterwards: a changed formula is a new version with a later
  effective date (metrics.definitions.DefinitionConflict otherwise).
- `MetricValue`: one metric for one as-of date and one dimension row (overall, a tier, an
  account manager or a branch), with its numerator and denominator. Keyed by the definition
  row, so values of different versions never overwrite each other.
- `KpiSnapshot`: the as-of date's publication record: which definitions were used, when,
  and what was left out and why.
- `MarketingSpend`: monthly marketing spend entered by ops, for CAC.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from brokercrm.models import NightlyRun
from clients.models import AccountManager, Branch


class Unit(models.TextChoices):
    PERCENT = "percent", _("Percent")
    CURRENCY = "currency", _("Currency (CNY)")
    HOURS = "hours", _("Hours")
    RATIO = "ratio", _("Ratio")
    COUNT = "count", _("Count")
    SCORE = "score", _("Score (-100..100)")
    PER_CLIENT = "per_client", _("Per client")


class Dimension(models.TextChoices):
    OVERALL = "overall", _("Overall")
    TIER = "tier", _("Tier")
    ACCOUNT_MANAGER = "account_manager", _("Account manager")
    BRANCH = "branch", _("Branch")


class MetricDefinition(models.Model):
    code = models.SlugField(max_length=40)
    version = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=12, choices=Unit.choices)
    formula = models.TextField(help_text="The definition, precise enough to recompute the number by hand.")
    params = models.JSONField(default=dict, blank=True, help_text="Windows and factors the formula uses.")
    effective_from = models.DateField(help_text="As-of dates from this day on use this version.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("metric definition")
        verbose_name_plural = _("metric definitions")
        ordering = ["code", "version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="metricdefinition_code_version"),
            models.UniqueConstraint(fields=["code", "effective_from"], name="metricdefinition_code_effective"),
            models.CheckConstraint(condition=Q(version__gte=1), name="metricdefinition_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class KpiSnapshot(models.Model):
    as_of = models.DateField(unique=True)
    nightly_run = models.ForeignKey(NightlyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    definitions = models.JSONField(default=dict, help_text="code -> id of the definition version used.")
    population = models.PositiveIntegerField(default=0, help_text="Clients open on the as-of date.")
    rows = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True, help_text="Metrics left out and why; kept versions.")

    class Meta:
        verbose_name = _("kpi snapshot")
        verbose_name_plural = _("kpi snapshots")
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"KPI {self.as_of}"


class MetricValue(models.Model):
    """One number of a snapshot. `value` is NULL when undefined (e.g. an empty denominator)."""

    as_of = models.DateField()
    definition = models.ForeignKey(MetricDefinition, on_delete=models.PROTECT, related_name="values")
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    key = models.CharField(max_length=32, blank=True, help_text="'' overall; tier code; manager or branch id.")
    tier = models.CharField(max_length=8, blank=True)
    # Plain ids, no database FK: a snapshot outlives a manager's reassignment or departure.
    account_manager = models.ForeignKey(
        AccountManager, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    branch = models.ForeignKey(
        Branch, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    value = models.DecimalField(max_digits=22, decimal_places=4, null=True, blank=True)
    numerator = models.DecimalField(max_digits=22, decimal_places=4, null=True, blank=True)
    denominator = models.DecimalField(max_digits=22, decimal_places=4, null=True, blank=True)

    class Meta:
        verbose_name = _("metric value")
        verbose_name_plural = _("metric values")
        ordering = ["as_of", "definition_id", "dimension", "key"]
        constraints = [
            models.UniqueConstraint(fields=["as_of", "definition", "dimension", "key"], name="metricvalue_one_per_row"),
            models.CheckConstraint(
                condition=Q(dimension__in=["overall", "tier", "account_manager", "branch"]),
                name="metricvalue_dimension_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["definition", "dimension", "as_of"], name="metricvalue_series"),
            models.Index(fields=["as_of", "dimension"], name="metricvalue_dashboard"),
        ]

    def __str__(self) -> str:
        return f"{self.as_of} {self.definition_id} {self.dimension}:{self.key} = {self.value}"


class MarketingSpend(models.Model):
    """Marketing spend of one calendar month, firm-wide or for one branch (entered by ops)."""

    month = models.DateField(help_text="First day of the month.")
    branch = models.ForeignKey(
        Branch, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Empty: firm-wide."
    )
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    note = models.CharField(max_length=200, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entered_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("marketing spend")
        verbose_name_plural = _("marketing spend")
        ordering = ["-month", "branch_id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="marketingspend_amount_not_negative"),
            models.UniqueConstraint(
                fields=["month", "branch"],
                condition=Q(branch__isnull=False),
                name="marketingspend_one_per_branch_month",
            ),
            models.UniqueConstraint(
                fields=["month"], condition=Q(branch__isnull=True), name="marketingspend_one_firmwide_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.branch or 'firm-wide'}: {self.amount}"
