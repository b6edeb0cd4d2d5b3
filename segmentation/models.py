"""Segmentation results: per-client daily activity (the rollup), tiers with their history,
overrides, the high-assets-low-activity list and needs profiles.

Storage of tier history ("partition and prune, plus every change"):
- `TierResult` holds one row per client in the tier population and retained as-of date. On
  PostgreSQL it is LIST-partitioned by `as_of`: each run loads its date into a new partition and
  swaps it in (readers see the old date's rows or the new ones), and pruning drops whole
  partitions. Retained: the last TIER_KEEP_DAILY run dates, the last run of every month, and
  the first run (the base of the change log).
- `TierHistory` keeps every change of a client's computed tier (up, down, entering or leaving
  the population) forever: about 5% of the clients a night instead of all of them.
- `TierRun` is the per-date summary (counts per tier, Pareto, migration from the previous run)
  and says which date is current: the latest published one.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from brokercrm.models import NightlyRun
from clients.models import Channel, Client


class Tier(models.IntegerChoices):
    """Client tiers, best first (so ordering by the number orders by tier)."""

    VIP = 1, _("VIP")
    MAJOR = 2, _("Major")
    ORDINARY = 3, _("Ordinary")
    SMALL = 4, _("Small")


TIER_CODES: dict[int, str] = {Tier.VIP: "vip", Tier.MAJOR: "major", Tier.ORDINARY: "ordinary", Tier.SMALL: "small"}
TIER_BY_CODE: dict[str, int] = {code: tier for tier, code in TIER_CODES.items()}


class TierMove(models.IntegerChoices):
    """A client's tier against the previous run (stored as a small integer: a million rows a night)."""

    SAME = 0, _("Unchanged")
    UP = 1, _("Upgraded")
    DOWN = 2, _("Downgraded")
    NEW = 3, _("New in the population")


MOVE_CODES: dict[str, int] = {"same": TierMove.SAME, "up": TierMove.UP, "down": TierMove.DOWN, "new": TierMove.NEW}
MOVE_NAMES: dict[int, str] = {value: name for name, value in MOVE_CODES.items()}


class TierBasis(models.TextChoices):
    COMMISSION = "commission", _("Commission over the look-back window")
    ASSETS = "assets", _("Assets in custody on the as-of date")


# --- Rollup ---------------------------------------------------------------------------


class ClientDailyActivity(models.Model):
    """Trades of one client on one exchange-calendar day through one channel.

    Maintained incrementally from the ledger (see segmentation/rollup.py). `trades` counts
    executions minus reversals, and amount/commission are plain sums (reversals carry negated
    money), so sums over this table equal sums over the ledger.
    """

    pk = models.CompositePrimaryKey("client", "day", "channel")
    # No database FK: the rows come from ledger rows that already reference a client, and a
    # per-row FK check would slow the bulk rollup for nothing.
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    channel = models.CharField(max_length=12, choices=Channel.choices)
    trades = models.IntegerField()
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    commission = models.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        verbose_name_plural = "client daily activity"
        indexes = [
            # PostgreSQL: the window sums per client (tiers, reactivation) read this index alone,
            # in client order, and aggregate as they go: 3x faster than hashing ~10M rows. The
            # trade count is included for the dormancy stage (a day whose trades were all
            # reversed is not a trading day), so it reads the index alone too.
            models.Index(
                fields=["client", "day"], include=["commission", "trades"], name="activity_client_day_commission"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.day} {self.channel}"


class RollupWatermark(models.Model):
    """How far into the ledger a rollup has read: every trade with id <= last_trade_id is in."""

    name = models.CharField(max_length=40, primary_key=True)
    last_trade_id = models.BigIntegerField(default=0)
    rows_upserted = models.BigIntegerField(default=0, help_text="Activity rows inserted or updated so far.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("rollup watermark")
        verbose_name_plural = _("rollup watermarks")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_trade_id}"


class ClientActivitySummary(models.Model):
    """A client's rollup aggregates, lifetime and windowed (the dormancy stage's running
    summary, segmentation/summary.py), exact for every date from the day they were computed to
    `valid_until` as long as the client has no trade after the state's watermark.

    Days are day numbers (days since 1970-01-01; NULL: none). `valid_until` is the last date
    the row holds: the day before one of its trading days leaves the recent or the baseline
    window, one of its rollup days leaves the 365-day window, or a later rollup day enters
    (NULL: forever). A client without rollup rows has no row. The rows and their state
    (ActivitySummaryState) change together, in one transaction."""

    client = models.OneToOneField(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    valid_until = models.IntegerField(null=True, blank=True, help_text="Last date (day number) the row holds.")
    first_day = models.IntegerField(null=True, blank=True, help_text="First trading day (day number).")
    last_day = models.IntegerField(null=True, blank=True, help_text="Last trading day (day number).")
    trading_days = models.IntegerField(default=0)
    recent_days = models.IntegerField(default=0, help_text="Trading days in the recent window.")
    baseline_days = models.IntegerField(default=0, help_text="Trading days in the baseline window.")
    trades = models.IntegerField(default=0)
    commission = models.FloatField(default=0)
    trades_year = models.IntegerField(default=0, help_text="Trades in the last 365 days.")
    commission_year = models.FloatField(default=0)

    class Meta:
        verbose_name_plural = "client activity summaries"

    def __str__(self) -> str:
        return f"summary {self.client_id}"


class ActivitySummaryState(models.Model):
    """What ClientActivitySummary reflects: every row holds on `as_of` for the rollup of the
    trades up to `trade_watermark`, with these window lengths. One row (name "activity")."""

    name = models.CharField(max_length=40, primary_key=True)
    as_of = models.DateField()
    trade_watermark = models.BigIntegerField()
    recent_window = models.IntegerField()
    baseline_window = models.IntegerField()
    rows = models.BigIntegerField(default=0)
    recomputed = models.BigIntegerField(default=0, help_text="Clients recomputed by the last move.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.as_of} / {self.trade_watermark}"


# --- Tiers ------------------------------------------------------------------------------


class TierRunQuerySet(models.QuerySet):
    def published(self) -> TierRunQuerySet:
        return self.filter(is_published=True)

    def retained(self) -> TierRunQuerySet:
        """Published dates whose per-client rows are still stored."""
        return self.filter(is_published=True, retained=True)


class TierRun(models.Model):
    """The tiering of one as-of date: parameters, counts, Pareto staircase, migration."""

    as_of = models.DateField(unique=True)
    nightly_run = models.ForeignKey(NightlyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    basis = models.CharField(max_length=12, choices=TierBasis.choices)
    window_start = models.DateField(null=True, blank=True, help_text="First day of the look-back window.")
    window_end = models.DateField(null=True, blank=True)
    cutoffs = models.JSONField(
        default=dict, help_text="Cumulative shares in percent, e.g. vip 3, major 10, ordinary 20."
    )
    population = models.PositiveIntegerField(default=0, help_text="Clients open on the as-of date.")
    tier_counts = models.JSONField(default=dict)
    total_value = models.DecimalField(max_digits=24, decimal_places=2, default=0)
    total_commission = models.DecimalField(max_digits=24, decimal_places=2, default=0)
    pareto = models.JSONField(default=list, help_text="Per tier: clients, commission, shares.")
    top20_share = models.FloatField(null=True, blank=True, help_text="Share of commission from the top 20% of clients.")
    previous_as_of = models.DateField(null=True, blank=True)
    migration = models.JSONField(default=dict, help_text="Clients by previous tier and tier (previous run -> this).")
    changes = models.PositiveIntegerField(default=0, help_text="Clients whose tier changed, entered or left.")
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    retained = models.BooleanField(default=True, help_text="Per-client rows of this date are still stored.")

    objects = TierRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("tier run")
        verbose_name_plural = _("tier runs")
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"tiers {self.as_of}"


class TierResult(models.Model):
    """A client's computed tier on one as-of date (PostgreSQL: partitioned by as_of)."""

    pk = models.CompositePrimaryKey("as_of", "client")
    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    value = models.DecimalField(max_digits=20, decimal_places=2, help_text="Basis value (commission or assets).")
    rank = models.PositiveIntegerField(help_text="1 + number of clients with a strictly higher value.")
    percentile = models.FloatField(
        help_text="Percent of the population with a strictly higher value (the 's' of the tier rule; 0 = top)."
    )
    previous_tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    change = models.PositiveSmallIntegerField(choices=TierMove.choices)

    class Meta:
        ordering = ["as_of", "rank", "client"]
        indexes = [models.Index(fields=["as_of", "rank", "client"], name="tierresult_rank")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.as_of} {self.get_tier_display()}"


class TierHistory(models.Model):
    """One change of a client's computed tier: up, down, entering (previous_tier null) or
    leaving (tier null) the population. Kept forever; unchanged clients are not copied."""

    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    previous_tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    value = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)
    percentile = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("tier history")
        verbose_name_plural = _("tier history")
        ordering = ["client", "-as_of"]
        constraints = [models.UniqueConstraint(fields=["client", "as_of"], name="tierhistory_one_per_client_day")]
        indexes = [models.Index(fields=["as_of"], name="tierhistory_as_of")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.as_of}: {self.previous_tier} -> {self.tier}"


class TierOverrideQuerySet(models.QuerySet):
    def open(self) -> TierOverrideQuerySet:
        return self.filter(ended_at__isnull=True)

    def active_on(self, day: dt.date) -> TierOverrideQuerySet:
        """Overrides in force on `day`: not ended and not expired (expires_on is the last day)."""
        return self.filter(ended_at__isnull=True, starts_on__lte=day, expires_on__gte=day)


class TierOverride(models.Model):
    """A manual tier set by ops or a team lead, with a reason and an expiry. The computed tier
    stays in TierResult beside it; the effective tier is the override while it is in force."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="tier_overrides")
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    reason = models.TextField()
    starts_on = models.DateField()
    expires_on = models.DateField(help_text="Last day the override applies.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    end_reason = models.CharField(max_length=200, blank=True)

    objects = TierOverrideQuerySet.as_manager()

    class Meta:
        verbose_name = _("tier override")
        verbose_name_plural = _("tier overrides")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"], condition=Q(ended_at__isnull=True), name="tieroverride_one_open_per_client"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="tieroverride_reason_required"),
            models.CheckConstraint(
                condition=Q(expires_on__gte=models.F("starts_on")), name="tieroverride_expires_after_start"
            ),
            models.CheckConstraint(condition=Q(tier__gte=1, tier__lte=4), name="tieroverride_tier_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} -> {self.get_tier_display()} until {self.expires_on}"


class TierOverrideAudit(models.Model):
    """Who created or ended an override, when and why (append-only)."""

    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        ENDED = "ended", _("Ended")
        EXPIRED = "expired", _("Expired")

    override = models.ForeignKey(TierOverride, on_delete=models.PROTECT, related_name="audit")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    computed_tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    reason = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tier override audit")
        verbose_name_plural = _("tier override audits")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} override {self.override_id}"


# --- Reactivation list and needs profiles ------------------------------------------------


class ResultSet(models.Model):
    """Publication marker of a per-date result (reactivation list, needs profiles): readers
    use the latest published as-of of a kind, so a half-built date is never shown."""

    class Kind(models.TextChoices):
        REACTIVATION = "reactivation", _("High assets, low activity")
        NEEDS = "needs", _("Needs profiles")
        ACTIVITY = "activity", _("Activity segments and dormancy")
        CHURN = "churn", _("Churn risk and lifetime value")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    as_of = models.DateField()
    nightly_run = models.ForeignKey(NightlyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    generation = models.BigIntegerField(
        null=True, blank=True, help_text="Needs: the stage run whose rows are published for this date."
    )
    rows = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("result set")
        verbose_name_plural = _("result sets")
        ordering = ["kind", "-as_of"]
        constraints = [models.UniqueConstraint(fields=["kind", "as_of"], name="resultset_one_per_kind_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.as_of}"


class ReactivationCandidate(models.Model):
    """High assets, low activity: top asset decile, commission in the bottom half. A list for
    account managers to call, not a tier."""

    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    assets = models.DecimalField(max_digits=21, decimal_places=2)
    commission = models.DecimalField(max_digits=20, decimal_places=2)
    assets_percentile = models.FloatField(help_text="Percent of clients with strictly more assets.")
    commission_percentile = models.FloatField(help_text="Percent of clients with strictly less commission.")

    class Meta:
        verbose_name = _("reactivation candidate")
        verbose_name_plural = _("reactivation candidates")
        ordering = ["as_of", "-assets", "client"]
        constraints = [models.UniqueConstraint(fields=["as_of", "client"], name="reactivation_one_per_client_day")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.as_of}"


class HoldingStyle(models.TextChoices):
    DAY = "day", _("Day trading")
    SWING = "swing", _("Short swing")
    LONG = "long", _("Long holding")
    UNKNOWN = "unknown", _("Not enough trades")


class NeedsProfile(models.Model):
    """What a client trades, how and through which channels, over the needs window.

    Rows are written per chunk under a `generation` (the id of the stage run building them)
    and published all at once by pointing ResultSet at it, so re-running a date never shows
    a mix of old and new profiles."""

    generation = models.BigIntegerField()
    as_of = models.DateField()
    client = models.ForeignKey(
        Client, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    trades = models.IntegerField()
    active_days = models.IntegerField()
    trades_per_month = models.FloatField()
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    avg_ticket = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    turnover = models.FloatField(null=True, blank=True, help_text="Traded amount / average assets in custody.")
    holding_style = models.CharField(max_length=8, choices=HoldingStyle.choices)
    holding_mix = models.JSONField(default=dict, help_text="Share of sells per holding style.")
    primary_channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)
    channel_mix = models.JSONField(default=dict, help_text="Per channel: trades, amount and their shares.")
    product_mix = models.JSONField(default=dict, help_text="Per dimension: amount share per category.")
    preferences = models.JSONField(default=dict, help_text="Per dimension: the preferred category, if any.")
    top_industries = models.JSONField(default=list)

    class Meta:
        ordering = ["generation", "client"]
        constraints = [models.UniqueConstraint(fields=["generation", "client"], name="needs_one_per_client_generation")]

    def __str__(self) -> str:
        return f"needs {self.client_id} {self.as_of}"


class ClientTier(Client):
    """Clients seen through their current tier (the admin's "tier assignments" list).

    TierResult has a composite primary key, which Django's admin cannot show; this proxy lists
    the clients with their current row of TierResult annotated instead."""

    class Meta:
        proxy = True
        verbose_name = _("tier assignment")
        verbose_name_plural = _("tier assignments")
