"""Retention: the nightly scores (activity segment, dormancy, churn risk with reasons, CLV).

Per-client rows are written per chunk under a `generation` (the id of the stage run that
builds them) and published all at once through segmentation's ResultSet, like the needs
profiles: re-running a date never shows a mix of old and new rows, and a failed run leaves
the previous night's rows published. The fitted lifetime model is kept for every date (one
small row), so model-based figures of any past date can be recomputed.

On PostgreSQL ClientActivity and ChurnScore are LIST-partitioned by `generation` (migration
0005): a generation is loaded into a side table of its own and attached as the only partition
when it is published (brokercrm.nightly.bulk); the primary key there is (id, generation), ids
still come from one sequence. Query them by generation, as every reader does.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from brokercrm.models import NightlyRun
from clients.models import Client
from retention import reasons as reason_columns
from segmentation.models import Tier


class ActivitySegment(models.TextChoices):
    ACTIVE = "active", _("Active")
    POTENTIALLY_ACTIVE = "potentially_active", _("Potentially active")
    DORMANT = "dormant", _("Dormant")
    CLOSED = "closed", _("Closed")


class ClientActivity(models.Model):
    """A client's trading rhythm and activity segment on an as-of date (the dormancy stage)."""

    generation = models.BigIntegerField()
    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    segment = models.CharField(max_length=20, choices=ActivitySegment.choices)
    first_trade_on = models.DateField(null=True, blank=True)
    last_trade_on = models.DateField(null=True, blank=True)
    days_since_last_trade = models.IntegerField(
        null=True, blank=True, help_text="Days since the last trade (or since opening, if it never traded)."
    )
    trading_days = models.IntegerField(help_text="Distinct trading days up to the as-of date.")
    recent_trading_days = models.IntegerField(help_text="Distinct trading days in the recent window.")
    baseline_trading_days = models.FloatField(
        null=True, blank=True, help_text="The client's own rate over the baseline year, scaled to the recent window."
    )
    typical_gap_days = models.FloatField(
        null=True, blank=True, help_text="Average gap between trading days over the baseline year."
    )
    overdue_ratio = models.FloatField(null=True, blank=True, help_text="Days since last trade / typical gap.")
    trades_year = models.IntegerField(default=0, help_text="Trades in the last 365 days.")
    commission_year = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    commission = models.DecimalField(
        max_digits=20, decimal_places=2, default=0, help_text="Commission on all trading days up to the as-of date."
    )
    about_to_go_dormant = models.BooleanField(default=False)
    regulatory_dormant = models.BooleanField(default=False)
    cash = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    market_value = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)

    class Meta:
        verbose_name = _("client activity")
        verbose_name_plural = _("client activity")
        ordering = ["generation", "client"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "client"], name="activity_one_per_client_generation"),
        ]
        indexes = [models.Index(fields=["generation", "segment"], name="activity_generation_segment")]

    def __str__(self) -> str:
        return f"activity {self.client_id} {self.as_of}: {self.segment}"


class ChurnScore(models.Model):
    """A client's churn risk (0-100) with its reasons, P(alive) and lifetime value on an as-of date."""

    generation = models.BigIntegerField()
    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    segment = models.CharField(max_length=20, choices=ActivitySegment.choices)
    risk = models.PositiveSmallIntegerField(help_text="Churn risk, 0 (safe) to 100.")
    p_alive = models.FloatField(null=True, blank=True, help_text="BG/NBD probability the client is still active.")
    expected_trading_days = models.FloatField(
        null=True, blank=True, help_text="BG/NBD expected trading days over the CLV horizon."
    )
    clv = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True, help_text="Model CLV (commission) over the horizon."
    )
    clv_simple = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        help_text="Average commission per trade x trades per year x expected years retained.",
    )
    value_at_risk = models.DecimalField(
        max_digits=20, decimal_places=2, help_text="CLV (model, else simple) x risk / 100: the value a loss would cost."
    )
    model_used = models.BooleanField(
        default=True, help_text="False when the lifetime model did not fit and the rule signals stand alone."
    )
    # The strength of each signal, 0-1 (0: no signal), rounded to 4 digits (retention/reasons.py).
    signal_model = models.FloatField(default=0.0, help_text="Lifetime model: P(no trade in the recent window).")
    signal_dormant = models.FloatField(default=0.0, help_text="Dormant (clients the model does not cover).")
    signal_overdue = models.FloatField(default=0.0, help_text="Overdue against its own rhythm (no model).")
    signal_decline = models.FloatField(default=0.0, help_text="Trading days down against its own baseline.")
    signal_outflow = models.FloatField(default=0.0, help_text="Net assets moved out over 30/90 days.")
    signal_complaints = models.FloatField(default=0.0, help_text="Open complaints.")
    signal_detractor = models.FloatField(default=0.0, help_text="A detractor NPS answer.")
    signal_low_csat = models.FloatField(default=0.0, help_text="A low satisfaction answer.")
    signal_losses = models.FloatField(default=0.0, help_text="A run of losing closes.")
    signal_downgrade = models.FloatField(default=0.0, help_text="A tier downgrade.")
    # The top reasons, strongest first: the signal (reasons.CODES; 0: none) and its share of the risk.
    reason_1 = models.PositiveSmallIntegerField(
        choices=reason_columns.CODE_CHOICES, default=0, verbose_name="top reason"
    )
    reason_1_points = models.PositiveSmallIntegerField(default=0)
    reason_2 = models.PositiveSmallIntegerField(
        choices=reason_columns.CODE_CHOICES, default=0, verbose_name="second reason"
    )
    reason_2_points = models.PositiveSmallIntegerField(default=0)
    reason_3 = models.PositiveSmallIntegerField(
        choices=reason_columns.CODE_CHOICES, default=0, verbose_name="third reason"
    )
    reason_3_points = models.PositiveSmallIntegerField(default=0)
    # The figures behind the reasons, measured for every client (empty: not measured).
    p_no_trade = models.FloatField(null=True, blank=True, help_text="BG/NBD P(no trade in the recent window).")
    window_days = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The recent window, in days.")
    days_since_last_trade = models.IntegerField(null=True, blank=True)
    typical_gap_days = models.FloatField(null=True, blank=True)
    recent_trading_days = models.IntegerField(null=True, blank=True, help_text="Trading days in the recent window.")
    baseline_trading_days = models.FloatField(
        null=True, blank=True, help_text="Trading days its own baseline expects in the recent window."
    )
    outflow_share = models.FloatField(null=True, blank=True, help_text="Net outflow / assets before it.")
    outflow_window_days = models.PositiveSmallIntegerField(null=True, blank=True, help_text="30 or 90.")
    outflow_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    loss_amount = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True, help_text="Realised loss in the recent window."
    )
    loss_share = models.FloatField(null=True, blank=True, help_text="The loss / assets before it.")
    losing_closes = models.IntegerField(null=True, blank=True, help_text="Losing closing trades in the recent window.")
    downgrade_from = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    downgrade_to = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    downgrade_on = models.DateField(null=True, blank=True)
    open_complaints = models.IntegerField(null=True, blank=True)
    nps_score = models.SmallIntegerField(null=True, blank=True, help_text="The lowest recent NPS answer (0-10).")
    csat_score = models.SmallIntegerField(null=True, blank=True, help_text="The lowest recent CSAT answer (1-5).")

    class Meta:
        verbose_name = _("churn score")
        verbose_name_plural = _("churn scores")
        ordering = ["generation", "client"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "client"], name="churn_one_per_client_generation"),
            models.CheckConstraint(condition=Q(risk__gte=0, risk__lte=100), name="churn_risk_0_100"),
        ]
        indexes = [
            models.Index(fields=["generation", "-risk"], name="churn_generation_risk"),
            models.Index(fields=["generation", "tier", "-risk"], name="churn_generation_tier_risk"),
        ]

    def __str__(self) -> str:
        return f"churn {self.client_id} {self.as_of}: {self.risk}"

    @property
    def reasons(self) -> list[dict]:
        """Top reasons, strongest first: [{code, points, facts}] (retention/reasons.py)."""
        return reason_columns.reasons_of(lambda field: getattr(self, field))

    @reasons.setter
    def reasons(self, value: list[dict]) -> None:
        for field, field_value in reason_columns.reason_fields(value).items():
            setattr(self, field, field_value)

    @property
    def signals(self) -> dict[str, float]:
        """{signal: strength} of the signals present (strength above 0)."""
        return reason_columns.signals_of(lambda field: getattr(self, field))

    @signals.setter
    def signals(self, value: dict[str, float]) -> None:
        for field, field_value in reason_columns.signal_fields(value).items():
            setattr(self, field, field_value)


class LifetimeFit(models.Model):
    """The BG/NBD + Gamma-Gamma fit of one as-of date (kept for every date)."""

    class Status(models.TextChoices):
        OK = "ok", _("Fitted")
        BOUNDARY = "boundary", _("Optimum at a boundary: rule signals only")
        FAILED = "failed", _("Did not converge: rule signals only")
        TOO_FEW = "too_few", _("Too few repeat clients to fit")

    as_of = models.DateField(unique=True)
    nightly_run = models.ForeignKey(NightlyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    message = models.TextField(blank=True)
    time_unit = models.CharField(max_length=5, default="days")
    history_start = models.DateField(null=True, blank=True, help_text="Trading days before this are not modelled.")
    customers = models.PositiveIntegerField(default=0)
    distinct_rows = models.PositiveIntegerField(default=0)
    r = models.FloatField(null=True, blank=True)
    alpha = models.FloatField(null=True, blank=True)
    a = models.FloatField(null=True, blank=True)
    b = models.FloatField(null=True, blank=True)
    log_likelihood = models.FloatField(null=True, blank=True)
    gg_status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    p = models.FloatField(null=True, blank=True)
    q = models.FloatField(null=True, blank=True)
    v = models.FloatField(null=True, blank=True)
    gg_log_likelihood = models.FloatField(null=True, blank=True)
    fit_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("lifetime fit")
        verbose_name_plural = _("lifetime fits")
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"lifetime fit {self.as_of} ({self.status})"

    @property
    def usable(self) -> bool:
        return self.status == self.Status.OK


class SegmentLogDate(models.Model):
    """One as-of date recorded in the activity-segment history (retention/segment_log.py).

    Its SegmentChange rows are either every client (a baseline, `base` empty) or only the clients
    whose segment differs from the state on `base` (the date it was diffed against). The state of
    a date = its baseline plus the changes of every date of its chain, in order."""

    as_of = models.DateField(unique=True)
    base = models.DateField(
        null=True, blank=True, help_text="The recorded date these changes apply to; empty: baseline."
    )
    generation = models.BigIntegerField(help_text="The ClientActivity generation (dormancy stage run) recorded.")
    depth = models.PositiveIntegerField(default=0, help_text="Dates since the chain's baseline (0: a baseline).")
    rows = models.PositiveIntegerField(default=0)
    chain_rows = models.BigIntegerField(default=0, help_text="Rows a read of this date replays (baseline + changes).")
    watermark = models.BigIntegerField(help_text="The trade rollup watermark when the date was recorded.")
    params = models.JSONField(default=dict, help_text="The activity parameters the segments were computed with.")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"segment log {self.as_of} ({'baseline' if self.base is None else f'changes since {self.base}'})"


class SegmentChange(models.Model):
    """A client's activity segment on a recorded date, when it differs from the base date's (or
    every client on a baseline date). `segment` is a code (segment_log.CODES); 0 = the client is
    no longer in the segments (not opened by the date)."""

    pk = models.CompositePrimaryKey("as_of", "client")
    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    segment = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["as_of", "client"]

    def __str__(self) -> str:
        return f"segment {self.client_id} {self.as_of}: {self.segment}"


from retention.work.models import *  # noqa: E402,F403 - retention work (tasks, playbooks, callbacks ...)
