"""Client data: the book (branches, teams, account managers, clients), KYC and risk
preference, instruments, and the append-only ledger (trades, cash flows, asset snapshots),
plus interactions.

Money is Decimal. Database constraints back every rule a bulk load could otherwise skip.
The ledger is append-only: a correction is a new row that `reverses` the original and
carries the negated money amounts, so plain SUMs over the ledger are always right.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from brokercrm.lib import crypto
from brokercrm.lib.fields import EncryptedTextField
from brokercrm.lib.names import person_name


class RiskLevel(models.IntegerChoices):
    """Client risk tolerance (C1 most conservative .. C5 most aggressive)."""

    C1 = 1, "C1"
    C2 = 2, "C2"
    C3 = 3, "C3"
    C4 = 4, "C4"
    C5 = 5, "C5"


class ProductRiskLevel(models.IntegerChoices):
    """Product risk (R1 lowest .. R5 highest); a client at Cn may buy up to Rn."""

    R1 = 1, "R1"
    R2 = 2, "R2"
    R3 = 3, "R3"
    R4 = 4, "R4"
    R5 = 5, "R5"


class Channel(models.TextChoices):
    """Channel a trade was placed through."""

    SELF_SERVICE = "self_service", _("Self-service terminal")
    PHONE = "phone", _("Phone")
    ONLINE = "online", _("Online (web)")
    MOBILE = "mobile", _("Mobile")
    COUNTER = "counter", _("Branch counter")
    OTHER = "other", _("Other")


class Branch(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    city = models.CharField(max_length=60, blank=True)

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Team(models.Model):
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=100)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_teams",
        help_text="Team lead: sees the books of every account manager in the team.",
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["branch__code", "name"]
        constraints = [models.UniqueConstraint(fields=["branch", "name"], name="team_unique_name_per_branch")]

    def __str__(self) -> str:
        return self.name


class AccountManager(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account_manager")
    employee_no = models.CharField(max_length=32, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="account_managers")
    phone = models.CharField(max_length=32, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("account manager")
        verbose_name_plural = _("account managers")
        ordering = ["employee_no"]

    def __str__(self) -> str:
        return person_name(self.user)


class ClientQuerySet(models.QuerySet):
    def open(self) -> ClientQuerySet:
        return self.exclude(status=Client.Status.CLOSED)

    def open_on(self, day: dt.date) -> ClientQuerySet:
        """Clients whose account was open at the end of `day`."""
        return self.filter(opened_on__lte=day).filter(Q(closed_on__isnull=True) | Q(closed_on__gt=day))


class Client(models.Model):
    class Status(models.TextChoices):
        # "Open" alone is also a flag, task and complaint status: Chinese says those differently.
        OPEN = "open", pgettext_lazy("account status", "Open")
        RESTRICTED = "restricted", _("Restricted")
        CLOSED = "closed", _("Closed")

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        INSTITUTION = "institution", _("Institution")

    client_no = models.CharField(max_length=32, unique=True, help_text="Back-office client number.")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INDIVIDUAL)
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="clients")
    account_manager = models.ForeignKey(
        AccountManager, on_delete=models.PROTECT, null=True, blank=True, related_name="clients"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    birthday = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["client_no"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(closed_on__gte=F("opened_on")),
                name="client_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=(Q(status="closed") & Q(closed_on__isnull=False))
                | (~Q(status="closed") & Q(closed_on__isnull=True)),
                name="client_closed_status_has_date",
            ),
        ]
        indexes = [models.Index(fields=["account_manager", "status"], name="client_manager_status")]

    def __str__(self) -> str:
        return f"{self.client_no} {self.name}"


class KYCQuerySet(models.QuerySet):
    def with_id_number(self, value: str) -> KYCQuerySet:
        """Profiles whose ID number is `value` (exact, after normalisation), by its keyed hash."""
        digest = crypto.blind_index(value)
        return self.filter(id_number_hash=digest) if digest else self.none()


class KYCProfile(models.Model):
    class IdType(models.TextChoices):
        RESIDENT_ID = "resident_id", _("Resident identity card")
        PASSPORT = "passport", _("Passport")
        HK_MACAU_PERMIT = "hk_macau_permit", _("Hong Kong/Macau travel permit")
        TAIWAN_PERMIT = "taiwan_permit", _("Taiwan travel permit")
        BUSINESS_LICENCE = "business_licence", _("Business licence")

    class Band(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        VERY_HIGH = "very_high", _("Very high")

    class Screening(models.TextChoices):
        NOT_SCREENED = "not_screened", _("Not screened")
        CLEAR = "clear", pgettext_lazy("screening result", "Clear")  # no match; "Clear" alone is a button
        POTENTIAL_MATCH = "potential_match", _("Potential match")
        CONFIRMED_MATCH = "confirmed_match", _("Confirmed match")

    class AmlRisk(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    class Verification(models.TextChoices):
        PENDING = "pending", _("Pending")
        VERIFIED = "verified", _("Verified")
        REJECTED = "rejected", _("Rejected")

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="kyc")
    id_type = models.CharField(max_length=20, choices=IdType.choices)
    id_number = EncryptedTextField(
        max_length=64,
        hash_field="id_number_hash",
        help_text="Sensitive: encrypted at rest, shown masked to everyone but compliance.",
    )
    # Keyed hash of the normalised ID number (brokercrm.lib.crypto.blind_index), set on every
    # save: exact lookup (KYCProfile.objects.with_id_number) without decrypting.
    id_number_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    id_expiry = models.DateField(null=True, blank=True, help_text="Empty for documents valid for life.")
    nationality = models.CharField(max_length=2, default="CN", help_text="ISO 3166-1 alpha-2.")
    occupation = models.CharField(max_length=80, blank=True)
    income_band = models.CharField(max_length=10, choices=Band.choices, blank=True)
    net_worth_band = models.CharField(max_length=10, choices=Band.choices, blank=True)
    source_of_funds = models.CharField(max_length=120, blank=True)
    is_pep = models.BooleanField("PEP", default=False)
    sanctions_status = models.CharField(max_length=16, choices=Screening.choices, default=Screening.NOT_SCREENED)
    aml_risk = models.CharField("AML risk", max_length=8, choices=AmlRisk.choices, default=AmlRisk.LOW)
    verification_status = models.CharField(max_length=10, choices=Verification.choices, default=Verification.PENDING)
    last_review_on = models.DateField(null=True, blank=True)
    next_review_due = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = KYCQuerySet.as_manager()

    class Meta:
        verbose_name = _("KYC profile")
        verbose_name_plural = _("KYC profiles")
        indexes = [
            models.Index(fields=["next_review_due"], name="kyc_next_review_due"),
            models.Index(fields=["id_number_hash"], name="kyc_id_number_hash"),
        ]

    def __str__(self) -> str:
        return f"KYC {self.client_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        # The hash follows the ID number, also on a save(update_fields=["id_number"]).
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "id_number" in update_fields and "id_number_hash" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "id_number_hash"]
        super().save(*args, **kwargs)

    @property
    def id_number_masked(self) -> str:
        return mask_identifier(self.id_number)


def mask_identifier(value: str) -> str:
    """Keep the first 3 and last 4 characters: '110105********1234'."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


class RiskAssessment(models.Model):
    """One suitability questionnaire result; a client's current level is the latest."""

    class Horizon(models.TextChoices):
        SHORT = "short", _("Under 1 year")
        MEDIUM = "medium", _("1 to 5 years")
        LONG = "long", _("Over 5 years")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="risk_assessments")
    risk_level = models.PositiveSmallIntegerField(choices=RiskLevel.choices)
    score = models.PositiveSmallIntegerField(help_text="Questionnaire score, 0-100.")
    answers = models.JSONField(default=dict, blank=True)
    objectives = models.CharField(max_length=120, blank=True)
    horizon = models.CharField(max_length=8, choices=Horizon.choices, blank=True)
    experience_years = models.PositiveSmallIntegerField(default=0)
    assessed_on = models.DateField()
    expires_on = models.DateField()

    class Meta:
        verbose_name = _("risk assessment")
        verbose_name_plural = _("risk assessments")
        ordering = ["client_id", "-assessed_on"]
        constraints = [
            models.CheckConstraint(condition=Q(risk_level__gte=1, risk_level__lte=5), name="risk_level_c1_c5"),
            models.CheckConstraint(condition=Q(score__lte=100), name="risk_score_at_most_100"),
            models.CheckConstraint(condition=Q(expires_on__gt=F("assessed_on")), name="risk_expires_after_assessed"),
            models.UniqueConstraint(fields=["client", "assessed_on"], name="risk_one_per_client_day"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.get_risk_level_display()} on {self.assessed_on}"


class Instrument(models.Model):
    class AssetClass(models.TextChoices):
        STOCK = "stock", _("Stock")
        BOND = "bond", _("Bond")
        FUND = "fund", _("Fund")
        FUTURES = "futures", _("Futures")
        OPTION = "option", _("Option")
        WARRANT = "warrant", _("Warrant")
        REPO = "repo", _("Repo")

    class Market(models.TextChoices):
        PRIMARY = "primary", _("Primary (IPO/subscription)")
        SECONDARY = "secondary", _("Secondary")

    class CapClass(models.TextChoices):
        LARGE = "large", _("Large cap")
        MID = "mid", _("Mid cap")
        SMALL = "small", _("Small cap")
        NA = "", _("Not applicable")

    symbol = models.CharField(max_length=24, unique=True, help_text="Exchange symbol with suffix, e.g. 600519.SH.")
    name = models.CharField(max_length=120)
    asset_class = models.CharField(max_length=10, choices=AssetClass.choices)
    market = models.CharField(max_length=10, choices=Market.choices, default=Market.SECONDARY)
    board = models.CharField(max_length=40, blank=True, help_text="Main board, ChiNext, STAR ...")
    industry = models.CharField(max_length=60, blank=True)
    cap_class = models.CharField(max_length=5, choices=CapClass.choices, blank=True)
    is_blue_chip = models.BooleanField(default=False)
    is_st = models.BooleanField("ST", default=False, help_text="Special treatment (ST/*ST) stock.")
    risk_level = models.PositiveSmallIntegerField(choices=ProductRiskLevel.choices)

    class Meta:
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(risk_level__gte=1, risk_level__lte=5), name="instrument_risk_r1_r5"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.name}"


class TradeQuerySet(models.QuerySet):
    def executed_between(self, start: dt.datetime, end: dt.datetime) -> TradeQuerySet:
        """Trades with start <= executed_at < end."""
        return self.filter(executed_at__gte=start, executed_at__lt=end)


class Trade(models.Model):
    """One execution. Append-only: correct with a reversing row, never an edit."""

    class Side(models.TextChoices):
        BUY = "buy", _("Buy")
        SELL = "sell", _("Sell")

    # Unique by the Meta constraint `clients_trade_trade_id_key`, not `unique=True`: that would
    # also give PostgreSQL a second, `varchar_pattern_ops` index for LIKE 'prefix%', which no
    # query of the ledger uses (trade ids are looked up whole) and every insert paid for.
    trade_id = models.CharField(max_length=40, help_text="External trade id: the idempotency key.")
    # The (client, executed_at, id) index serves lookups by client; no separate FK index.
    # client and instrument: no foreign key constraint on PostgreSQL. Statement-level triggers
    # check the references there instead, set-based, with the same locks and SQLSTATE 23503
    # (clients/migrations/0009: a per-row foreign key check cost more than the COPY of the rows);
    # SQLite keeps its foreign keys. PROTECT still refuses a delete in the ORM first.
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="trades", db_index=False, db_constraint=False
    )
    executed_at = models.DateTimeField()
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="trades", db_constraint=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(max_digits=20, decimal_places=4)
    price = models.DecimalField(max_digits=20, decimal_places=6)
    amount = models.DecimalField(max_digits=20, decimal_places=2, help_text="quantity x price; negated on a reversal.")
    commission = models.DecimalField(max_digits=16, decimal_places=2, help_text="Negated on a reversal.")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    realized_pnl = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    # A trade is reversed at most once: the partial unique constraint
    # `trade_reversed_at_most_once` (only reversing rows have an entry; a OneToOneField's full
    # unique index also held one NULL entry per original trade, i.e. nearly every row).
    # `reversed_by` is therefore a reverse foreign key: at most one row, by that constraint.
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        db_index=False,
        help_text="The trade this row cancels.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TradeQuerySet.as_manager()

    class Meta:
        verbose_name = _("trade")
        verbose_name_plural = _("trades")
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trade_id"], name="clients_trade_trade_id_key"),
            models.UniqueConstraint(
                fields=["reverses"], condition=Q(reverses__isnull=False), name="trade_reversed_at_most_once"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="trade_price_not_negative"),
            models.CheckConstraint(
                condition=(Q(reverses__isnull=True) & Q(commission__gte=0) & Q(amount__gte=0))
                | (Q(reverses__isnull=False) & Q(commission__lte=0) & Q(amount__lte=0)),
                name="trade_commission_sign",
            ),
            models.CheckConstraint(condition=Q(side__in=["buy", "sell"]), name="trade_side_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="trade_channel_valid"),
        ]
        # Every index here is paid on each ledger insert (the nightly import), so each has a reader:
        # executed_at: the firm-wide trade list's keyset pages (ORDER BY executed_at, id) and the
        # period reads (metrics snapshot, retention inputs, needs); a BRIN index would serve the
        # ranges but not the ordered pages. (client, executed_at, id): everything per client. The
        # instrument FK's own index: "trades in this instrument" and the check that an instrument
        # is unreferenced before a delete (the FK's and PROTECT's), a full scan without it. The id in
        # the per-client index lets a book's ledger page find its keys from the index alone.
        indexes = [
            models.Index(fields=["executed_at"], name="trade_executed_at"),
            models.Index(fields=["client", "executed_at", "id"], name="trade_client_time_id"),
        ]

    def __str__(self) -> str:
        return self.trade_id


class CashFlow(models.Model):
    """A deposit or withdrawal. Append-only like trades; a reversal negates the amount."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        WITHDRAWAL = "withdrawal", _("Withdrawal")

    flow_id = models.CharField(max_length=40, unique=True, help_text="External id: the idempotency key.")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="cash_flows", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    occurred_at = models.DateTimeField()
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cash flow")
        verbose_name_plural = _("cash flows")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(reverses__isnull=True) & Q(amount__gt=0)) | (Q(reverses__isnull=False) & Q(amount__lt=0)),
                name="cashflow_amount_sign",
            ),
            models.CheckConstraint(condition=Q(kind__in=["deposit", "withdrawal"]), name="cashflow_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "occurred_at"], name="cashflow_client_occurred_at"),
            models.Index(fields=["occurred_at"], name="cashflow_occurred_at"),
        ]

    def __str__(self) -> str:
        return self.flow_id


class AssetSnapshot(models.Model):
    """Cash and market value in custody for a client at the end of a day."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="asset_snapshots", db_index=False)
    as_of = models.DateField()
    cash = models.DecimalField(max_digits=20, decimal_places=2)
    market_value = models.DecimalField(max_digits=20, decimal_places=2)
    total = models.GeneratedField(
        expression=F("cash") + F("market_value"),
        output_field=models.DecimalField(max_digits=21, decimal_places=2),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("asset snapshot")
        verbose_name_plural = _("asset snapshots")
        ordering = ["client_id", "-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["client", "as_of"], name="snapshot_one_per_client_day"),
            models.CheckConstraint(condition=Q(cash__gte=0) & Q(market_value__gte=0), name="snapshot_not_negative"),
        ]
        indexes = [models.Index(fields=["as_of"], name="snapshot_as_of")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.as_of}"


class ClientLogin(models.Model):
    """How often a client signed in to the trading app or website on a day, per channel: the
    daily counts the trading platform exports (`import_ledger logins`). The engagement metric
    `login_frequency` is measured from them where they are provided."""

    class Channel(models.TextChoices):
        MOBILE = "mobile", _("Mobile app")
        ONLINE = "online", _("Website")
        DESKTOP = "desktop", _("Desktop terminal")
        OTHER = "other", _("Other")

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="logins", db_index=False)
    day = models.DateField(help_text="Exchange-calendar day of the sign-ins.")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    logins = models.PositiveIntegerField(help_text="Successful sign-ins that day on that channel.")

    class Meta:
        verbose_name = _("client login")
        verbose_name_plural = _("client logins")
        ordering = ["client_id", "-day", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["client", "day", "channel"], name="login_one_per_client_day_channel"),
            models.CheckConstraint(
                condition=Q(channel__in=["mobile", "online", "desktop", "other"]), name="login_channel_valid"
            ),
        ]
        # The metric reads a period of days for every client: a range of this index, summed per
        # client without visiting the table (logins included).
        indexes = [models.Index(fields=["day", "client"], name="login_day_client", include=["logins"])]

    def __str__(self) -> str:
        return f"{self.client_id} {self.day} {self.channel}"


class Interaction(models.Model):
    """Any contact with a client, on any channel."""

    class Channel(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        CHAT = "chat", _("Chat")
        VISIT = "visit", _("Visit")
        SEMINAR = "seminar", _("Seminar")
        OTHER = "other", _("Other")

    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    summary = models.TextField()
    outcome = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="interactions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["client", "occurred_at"], name="interaction_client_occurred_at")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.channel} {self.occurred_at:%Y-%m-%d}"


class ImportBatch(models.Model):
    """One run of an import (command or API): who sent which file, and what became of it.

    Saved outside the import's transaction, so a batch that was rejected or crashed is
    still on record even though none of its rows are.
    """

    class Kind(models.TextChoices):
        CLIENTS = "clients", _("Clients")
        INSTRUMENTS = "instruments", _("Instruments")
        TRADES = "trades", _("Trades")
        CASHFLOWS = "cashflows", _("Cash flows")
        SNAPSHOTS = "snapshots", _("Asset snapshots")
        KYC = "kyc", _("KYC profiles")
        RISK = "risk", _("Risk assessments")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIALLY_SUCCEEDED = "partially_succeeded", _("Partially succeeded (invalid rows skipped)")
        REJECTED = "rejected", _("Rejected (nothing written)")
        FAILED = "failed", _("Failed (nothing written)")

    class Source(models.TextChoices):
        COMMAND = "command", _("Command")
        API = "api", _("API")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    source = models.CharField(max_length=8, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="import_batches",
    )
    requested_by_name = models.CharField(
        max_length=150, blank=True, help_text="Username, or the OS user of a command run without --user."
    )
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField("file SHA-256", max_length=64)
    file_size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=20, blank=True)
    skip_invalid = models.BooleanField(default=False)
    allow_updates = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0, help_text="Identical to a row already held: skipped.")
    rows_conflict = models.PositiveIntegerField(default=0, help_text="Same key, different content (also rejected).")
    rows_rejected = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0, help_text="All errors found; the first 1,000 are stored.")
    duplicate_sample = models.JSONField(
        default=list, blank=True, help_text="The first 100 duplicates: row, key and what they repeat."
    )
    failure = models.TextField(blank=True, help_text="What crashed, for a failed batch.")
    rejects_file = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("import batch")
        verbose_name_plural = _("import batches")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "-started_at"], name="importbatch_kind_started"),
            models.Index(fields=["file_sha256"], name="importbatch_file_sha256"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.file_name} ({self.status})"


class ImportBatchError(models.Model):
    """One problem found in an imported file: where it is, what was there, what was expected."""

    # The (batch, row) index serves lookups by batch; no separate FK index.
    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="errors", db_index=False)
    row = models.PositiveIntegerField(help_text="Row in the file, the header being row 1; 0 for the whole file.")
    column = models.CharField(max_length=64, blank=True)
    value = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=32)
    expected = models.CharField(max_length=500)

    class Meta:
        ordering = ["batch_id", "row", "id"]
        indexes = [models.Index(fields=["batch", "row"], name="importbatcherror_batch_row")]

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.code}"


class ClientAssignment(models.Model):
    """Who looked after a client, at which branch, from when to when: the history that lets a
    past date's account-manager and branch figures be recomputed after a reassignment.

    Written by database triggers on `clients_client` (migration 0004), so every path that
    assigns a client (admin, services, imports, bulk COPY) records it: a new client gets a row
    valid since before the history (`valid_from` empty); a change of manager or branch closes
    the current row and opens a new one, both at the transaction's time. Read with `as_of`."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    # Plain ids kept after a manager leaves or a branch closes: the history outlives them.
    account_manager = models.ForeignKey(
        AccountManager, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    branch = models.ForeignKey(Branch, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: since before the history was kept.")
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty: the current assignment.")

    class Meta:
        ordering = ["client_id", "valid_from"]
        indexes = [models.Index(fields=["client", "valid_to"], name="assignment_client_valid_to")]
        constraints = [
            models.UniqueConstraint(
                fields=["client"], condition=Q(valid_to__isnull=True), name="assignment_one_current_per_client"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: manager {self.account_manager_id} at branch {self.branch_id}"
