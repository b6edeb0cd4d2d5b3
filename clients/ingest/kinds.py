"""What each kind of file holds: its columns, key, references and the rules across a row.

A `KindSpec` is data, not code paths: the service reads any kind the same way. The ledger
kinds (trades, cash flows) are append-only: a correction is a reversing row naming the
original's external id, never an update. The other kinds are keyed by their natural key,
and a changed row is a conflict unless the import explicitly allows updates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import models

from brokercrm.lib.fields import EncryptedTextField
from clients import models as m
from clients.ingest import errors
from clients.ingest.parsing import (
    Boolean,
    Choice,
    Code,
    ColumnType,
    CountryCode,
    Date,
    DateTime,
    Decimal,
    Email,
    Integer,
    Parsed,
    Text,
)


@dataclass(frozen=True)
class Reference:
    """A column naming another row by its business key (client_no -> client_id)."""

    model: type[models.Model]
    lookup: str
    code: str
    expected: str


CLIENT = Reference(m.Client, "client_no", errors.UNKNOWN_CLIENT, "the number of a client already in the CRM")
INSTRUMENT = Reference(m.Instrument, "symbol", errors.UNKNOWN_INSTRUMENT, "the symbol of an instrument in the CRM")
BRANCH = Reference(m.Branch, "code", errors.UNKNOWN_BRANCH, "the code of a branch in the CRM")
ACCOUNT_MANAGER = Reference(
    m.AccountManager, "employee_no", errors.UNKNOWN_ACCOUNT_MANAGER, "the employee number of an account manager"
)


@dataclass(frozen=True)
class Column:
    """One column of the file.

    `field`: the model column it fills (an FK's attname for references); None if it only
    feeds a check. `default`: the value of an optional column left empty or absent.
    """

    name: str
    type: ColumnType
    required: bool = False
    field: str | None = None
    reference: Reference | None = None
    default: object = ""
    sensitive: bool = False
    help: str = ""


@dataclass(frozen=True)
class Reversal:
    """How a reversing row names its original, and what it must repeat or negate."""

    column: str
    same: tuple[str, ...]
    negated: tuple[str, ...]


@dataclass
class RowProblem:
    """Rows (`mask`) breaking a rule across columns; `expected` may differ per row."""

    mask: np.ndarray
    column: str
    code: str
    expected: str | Callable[[int], str]


RowCheck = Callable[["ParsedChunk"], list[RowProblem]]


@dataclass
class ParsedChunk:
    """A chunk after column parsing: raw texts and parsed columns by file column name."""

    rows: np.ndarray
    raw: dict[str, list[str]]
    parsed: dict[str, Parsed]

    def numbers(self, column: str) -> np.ndarray:
        return self.parsed[column].numbers  # type: ignore[return-value]

    def present(self, column: str) -> np.ndarray:
        values = self.parsed[column].values
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            return ~np.isnat(values)
        return np.fromiter((v is not None and v != "" for v in values), dtype=bool, count=len(values))


@dataclass(frozen=True)
class KindSpec:
    name: str
    model: type[models.Model]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    external_id: str | None = None
    reversal: Reversal | None = None
    row_checks: tuple[RowCheck, ...] = ()
    constants: Callable[[dt.datetime], dict[str, object]] = field(default=lambda now: {})
    update_constants: Callable[[dt.datetime], dict[str, object]] = field(default=lambda now: {})
    description: str = ""

    @property
    def updatable(self) -> bool:
        """Reference data may be updated on request; the ledger never (reversing rows instead)."""
        return self.reversal is None

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def fields(self) -> list[str]:
        """The model columns filled from the file, in column order; an encrypted column's
        hash column (filled from the same file column) follows it."""
        out = []
        hashes = self.encrypted_fields
        for c in self.columns:
            if c.field:
                out.append(c.field)
                if hashes.get(c.field):
                    out.append(hashes[c.field])
        return out

    @property
    def encrypted_fields(self) -> dict[str, str | None]:
        """Fields stored encrypted (brokercrm.lib.fields.EncryptedTextField) -> their hash field.

        The staged rows carry the ciphertext and the hash; rows are compared by the hash (the
        ciphertext differs on every write) and the ciphertext is written with the row."""
        found: dict[str, str | None] = {}
        for c in self.columns:
            if c.field and c.reference is None:
                model_field = self.model._meta.get_field(c.field)
                if isinstance(model_field, EncryptedTextField):
                    found[c.field] = model_field.hash_field
        return found

    @property
    def key_columns(self) -> list[str]:
        """The file columns that hold the key (for messages)."""
        return [c.name for c in self.columns if c.field in self.key]


# --- rules across a row ---------------------------------------------------------------------


def _tolerance_check(amount: str, quantity: str, price: str) -> RowCheck:
    """|amount| = quantity x price within settings.AMOUNT_TOLERANCE (relative), or 0.01."""

    def check(chunk: ParsedChunk) -> list[RowProblem]:
        a = chunk.numbers(amount)
        product = chunk.numbers(quantity) * chunk.numbers(price)
        tolerance = np.maximum(np.abs(product) * settings.AMOUNT_TOLERANCE, 0.01)
        with np.errstate(invalid="ignore"):
            off = np.abs(np.abs(a) - product) > tolerance
        off &= ~np.isnan(a) & ~np.isnan(product)
        if not off.any():
            return []
        percent = f"{settings.AMOUNT_TOLERANCE:.1%}"

        def expected(i: int) -> str:
            return f"quantity x price = {product[i]:,.2f} (within {percent}; negated on a reversing row)"

        return [RowProblem(off, amount, errors.AMOUNT_MISMATCH, expected)]

    return check


def _reversal_sign_check(reverses: str, columns: tuple[str, ...], *, strict: bool) -> RowCheck:
    """Money columns are >= 0 (> 0 if `strict`) on an original row and <= 0 (< 0) on a reversal."""

    def check(chunk: ParsedChunk) -> list[RowProblem]:
        reversing = chunk.present(reverses)
        problems = []
        for column in columns:
            values = chunk.numbers(column)
            with np.errstate(invalid="ignore"):
                if strict:
                    wrong_original = ~reversing & (values <= 0)
                    wrong_reversal = reversing & (values >= 0)
                else:
                    wrong_original = ~reversing & (values < 0)
                    wrong_reversal = reversing & (values > 0)
            above = "above 0" if strict else "0 or more"
            below = "below 0" if strict else "0 or less"
            if wrong_original.any():
                problems.append(
                    RowProblem(
                        wrong_original,
                        column,
                        errors.WRONG_SIGN,
                        f"{above} (a correction is a reversing row naming the original in {reverses})",
                    )
                )
            if wrong_reversal.any():
                problems.append(
                    RowProblem(
                        wrong_reversal, column, errors.WRONG_SIGN, f"{below} on a reversing row (the original negated)"
                    )
                )
        return problems

    return check


def _not_self_reversal(external_id: str, reverses: str) -> RowCheck:
    def check(chunk: ParsedChunk) -> list[RowProblem]:
        ids = chunk.parsed[external_id].values
        targets = chunk.parsed[reverses].values
        same = np.fromiter((bool(t) and t == i for i, t in zip(ids, targets, strict=True)), dtype=bool, count=len(ids))
        if not same.any():
            return []
        return [RowProblem(same, reverses, errors.SELF_REVERSAL, f"the id of another row than this {external_id}")]

    return check


def _date_order(earlier: str, later: str, *, strict: bool) -> RowCheck:
    def check(chunk: ParsedChunk) -> list[RowProblem]:
        first = chunk.numbers(earlier)
        second = chunk.numbers(later)
        both = ~np.isnat(first) & ~np.isnat(second)
        wrong = both & ((second <= first) if strict else (second < first))
        if not wrong.any():
            return []
        word = "after" if strict else "on or after"
        return [RowProblem(wrong, later, errors.DATE_ORDER, f"a date {word} {earlier}")]

    return check


def _closed_status_has_date(chunk: ParsedChunk) -> list[RowProblem]:
    status = chunk.parsed["status"].values
    closed = np.fromiter((s == m.Client.Status.CLOSED for s in status), dtype=bool, count=len(status))
    status_known = np.fromiter((s is not None for s in status), dtype=bool, count=len(status))
    has_date = chunk.present("closed_on")
    problems = []
    if (closed & ~has_date).any():
        problems.append(
            RowProblem(closed & ~has_date, "closed_on", errors.STATUS_DATE, "the closing date of a closed account")
        )
    wrong = status_known & ~closed & has_date
    if wrong.any():
        problems.append(RowProblem(wrong, "status", errors.STATUS_DATE, "closed, since closed_on is given"))
    return problems


# --- the kinds ------------------------------------------------------------------------------

SIDE_ALIASES = {"b": "buy", "买": "buy", "买入": "buy", "s": "sell", "卖": "sell", "卖出": "sell"}
CHANNEL_ALIASES = {
    "self service": "self_service",
    "terminal": "self_service",
    "自助": "self_service",
    "自助终端": "self_service",
    "电话": "phone",
    "web": "online",
    "internet": "online",
    "网上": "online",
    "网上交易": "online",
    "app": "mobile",
    "wireless": "mobile",
    "手机": "mobile",
    "移动": "mobile",
    "branch": "counter",
    "柜台": "counter",
    "其他": "other",
}
ASSET_CLASS_ALIASES = {
    "股票": "stock",
    "债券": "bond",
    "基金": "fund",
    "期货": "futures",
    "future": "futures",
    "期权": "option",
    "权证": "warrant",
    "回购": "repo",
}
CASH_KIND_ALIASES = {"入金": "deposit", "存入": "deposit", "出金": "withdrawal", "取出": "withdrawal"}


def _now(now: dt.datetime) -> dict[str, object]:
    return {"created_at": now}


CLIENT_NO = Column("client_no", Code(32), required=True, field="client_id", reference=CLIENT, help="client number")

TRADES = KindSpec(
    name="trades",
    model=m.Trade,
    description="One row per execution; trade_id is the idempotency key.",
    columns=(
        Column("trade_id", Code(40), required=True, field="trade_id", help="external trade id (the key)"),
        CLIENT_NO,
        Column("executed_at", DateTime(not_future=True), required=True, field="executed_at"),
        Column("symbol", Code(24), required=True, field="instrument_id", reference=INSTRUMENT),
        Column("side", Choice(m.Trade.Side.values, SIDE_ALIASES), required=True, field="side"),
        Column("quantity", Decimal(20, 4, minimum="positive"), required=True, field="quantity"),
        Column("price", Decimal(20, 6, minimum="non_negative"), required=True, field="price"),
        Column("amount", Decimal(20, 2), required=True, field="amount", help="quantity x price; negated on a reversal"),
        Column("commission", Decimal(16, 2), required=True, field="commission", help="negated on a reversal"),
        Column("channel", Choice(m.Channel.values, CHANNEL_ALIASES), required=True, field="channel"),
        Column("realized_pnl", Decimal(20, 2), field="realized_pnl", default=None),
        Column("reverses_trade_id", Code(40), default=None, help="on a reversing row: the original's trade_id"),
    ),
    key=("trade_id",),
    external_id="trade_id",
    reversal=Reversal(
        "reverses_trade_id",
        same=("client_id", "instrument_id", "side", "quantity", "price"),
        negated=("amount", "commission"),
    ),
    row_checks=(
        _reversal_sign_check("reverses_trade_id", ("amount", "commission"), strict=False),
        _tolerance_check("amount", "quantity", "price"),
        _not_self_reversal("trade_id", "reverses_trade_id"),
    ),
    constants=_now,
)

CASHFLOWS = KindSpec(
    name="cashflows",
    model=m.CashFlow,
    description="Deposits and withdrawals; flow_id is the idempotency key.",
    columns=(
        Column("flow_id", Code(40), required=True, field="flow_id", help="external id (the key)"),
        CLIENT_NO,
        Column("kind", Choice(m.CashFlow.Kind.values, CASH_KIND_ALIASES), required=True, field="kind"),
        Column("amount", Decimal(20, 2), required=True, field="amount", help="above 0; negated on a reversal"),
        Column("occurred_at", DateTime(not_future=True), required=True, field="occurred_at"),
        Column("reverses_flow_id", Code(40), default=None, help="on a reversing row: the original's flow_id"),
    ),
    key=("flow_id",),
    external_id="flow_id",
    reversal=Reversal("reverses_flow_id", same=("client_id", "kind"), negated=("amount",)),
    row_checks=(
        _reversal_sign_check("reverses_flow_id", ("amount",), strict=True),
        _not_self_reversal("flow_id", "reverses_flow_id"),
    ),
    constants=_now,
)

SNAPSHOTS = KindSpec(
    name="snapshots",
    model=m.AssetSnapshot,
    description="Cash and market value in custody per client at the end of a day; key (client_no, as_of).",
    columns=(
        CLIENT_NO,
        Column("as_of", Date(not_future=True), required=True, field="as_of"),
        Column("cash", Decimal(20, 2, minimum="non_negative"), required=True, field="cash"),
        Column("market_value", Decimal(20, 2, minimum="non_negative"), required=True, field="market_value"),
    ),
    key=("client_id", "as_of"),
)


LOGIN_CHANNEL_ALIASES = {
    "app": "mobile",
    "手机": "mobile",
    "移动": "mobile",
    "web": "online",
    "网站": "online",
    "网上": "online",
    "pc": "desktop",
    "terminal": "desktop",
    "客户端": "desktop",
    "其他": "other",
}

LOGINS = KindSpec(
    name="logins",
    model=m.ClientLogin,
    description="Sign-ins to the trading app or website per client, day and channel; key (client_no, day, channel).",
    columns=(
        CLIENT_NO,
        Column("day", Date(not_future=True), required=True, field="day"),
        Column("channel", Choice(m.ClientLogin.Channel.values, LOGIN_CHANNEL_ALIASES), required=True, field="channel"),
        Column("logins", Integer(0, 100_000), required=True, field="logins"),
    ),
    key=("client_id", "day", "channel"),
)


def _client_times(now: dt.datetime) -> dict[str, object]:
    return {"created_at": now, "updated_at": now}


def _updated(now: dt.datetime) -> dict[str, object]:
    return {"updated_at": now}


CLIENTS = KindSpec(
    name="clients",
    model=m.Client,
    description="The client master; client_no is the key.",
    columns=(
        Column("client_no", Code(32), required=True, field="client_no", help="back-office client number (the key)"),
        Column("name", Text(120), required=True, field="name"),
        Column(
            "kind",
            Choice(m.Client.Kind.values, {"个人": "individual", "机构": "institution"}),
            field="kind",
            default=m.Client.Kind.INDIVIDUAL,
        ),
        Column("phone", Text(32), field="phone"),
        Column("email", Email(254), field="email"),
        Column("address", Text(255), field="address"),
        Column("branch_code", Code(16), required=True, field="branch_id", reference=BRANCH),
        Column(
            "account_manager_no",
            Code(32),
            field="account_manager_id",
            reference=ACCOUNT_MANAGER,
            default=None,
            help="employee number of the account manager",
        ),
        Column("status", Choice(m.Client.Status.values), field="status", default=m.Client.Status.OPEN),
        Column("opened_on", Date(not_future=True), required=True, field="opened_on"),
        Column("closed_on", Date(not_future=True), field="closed_on", default=None),
        Column("birthday", Date(not_future=True), field="birthday", default=None),
    ),
    key=("client_no",),
    row_checks=(_date_order("opened_on", "closed_on", strict=False), _closed_status_has_date),
    constants=_client_times,
    update_constants=_updated,
)

INSTRUMENTS = KindSpec(
    name="instruments",
    model=m.Instrument,
    description="Instrument reference data; symbol is the key.",
    columns=(
        Column("symbol", Code(24), required=True, field="symbol", help="exchange symbol with suffix, e.g. 600519.SH"),
        Column("name", Text(120), required=True, field="name"),
        Column(
            "asset_class",
            Choice(m.Instrument.AssetClass.values, ASSET_CLASS_ALIASES),
            required=True,
            field="asset_class",
        ),
        Column(
            "market",
            Choice(m.Instrument.Market.values, {"一级": "primary", "ipo": "primary", "二级": "secondary"}),
            field="market",
            default=m.Instrument.Market.SECONDARY,
        ),
        Column("board", Text(40), field="board"),
        Column("industry", Text(60), field="industry"),
        Column(
            "cap_class",
            Choice(m.Instrument.CapClass.values, {"大盘": "large", "中盘": "mid", "小盘": "small"}),
            field="cap_class",
        ),
        Column("is_blue_chip", Boolean(), field="is_blue_chip", default=False),
        Column("is_st", Boolean(), field="is_st", default=False),
        Column(
            "risk_level",
            Integer(1, 5, prefix="R", label="a product risk level R1 to R5 (or 1 to 5)"),
            required=True,
            field="risk_level",
        ),
    ),
    key=("symbol",),
)

KYC = KindSpec(
    name="kyc",
    model=m.KYCProfile,
    description=(
        "One KYC profile per client; client_no is the key. id_number is stored encrypted and masked in every report."
    ),
    columns=(
        CLIENT_NO,
        Column("id_type", Choice(m.KYCProfile.IdType.values), required=True, field="id_type"),
        Column("id_number", Code(64), required=True, field="id_number", sensitive=True),
        Column("id_expiry", Date(), field="id_expiry", default=None, help="empty for documents valid for life"),
        Column("nationality", CountryCode(), field="nationality", default="CN", help="ISO 3166-1 alpha-2"),
        Column("occupation", Text(80), field="occupation"),
        Column("income_band", Choice(m.KYCProfile.Band.values), field="income_band"),
        Column("net_worth_band", Choice(m.KYCProfile.Band.values), field="net_worth_band"),
        Column("source_of_funds", Text(120), field="source_of_funds"),
        Column("is_pep", Boolean(), field="is_pep", default=False),
        Column(
            "sanctions_status",
            Choice(m.KYCProfile.Screening.values),
            field="sanctions_status",
            default=m.KYCProfile.Screening.NOT_SCREENED,
        ),
        Column("aml_risk", Choice(m.KYCProfile.AmlRisk.values), field="aml_risk", default=m.KYCProfile.AmlRisk.LOW),
        Column(
            "verification_status",
            Choice(m.KYCProfile.Verification.values),
            field="verification_status",
            default=m.KYCProfile.Verification.PENDING,
        ),
        Column("last_review_on", Date(not_future=True), field="last_review_on", default=None),
        Column("next_review_due", Date(), field="next_review_due", default=None),
    ),
    key=("client_id",),
    constants=_updated,
    update_constants=_updated,
)


def _empty_answers(now: dt.datetime) -> dict[str, object]:
    return {"answers": {}}


RISK = KindSpec(
    name="risk",
    model=m.RiskAssessment,
    description="Suitability questionnaire results; key (client_no, assessed_on).",
    columns=(
        CLIENT_NO,
        Column(
            "risk_level",
            Integer(1, 5, prefix="C", label="a client risk level C1 to C5 (or 1 to 5)"),
            required=True,
            field="risk_level",
        ),
        Column("score", Integer(0, 100), required=True, field="score"),
        Column("objectives", Text(120), field="objectives"),
        Column("horizon", Choice(m.RiskAssessment.Horizon.values), field="horizon"),
        Column("experience_years", Integer(0, 80), field="experience_years", default=0),
        Column("assessed_on", Date(not_future=True), required=True, field="assessed_on"),
        Column("expires_on", Date(), required=True, field="expires_on"),
    ),
    key=("client_id", "assessed_on"),
    row_checks=(_date_order("assessed_on", "expires_on", strict=True),),
    constants=_empty_answers,
)

KINDS: dict[str, KindSpec] = {
    spec.name: spec for spec in (CLIENTS, INSTRUMENTS, TRADES, CASHFLOWS, SNAPSHOTS, KYC, RISK, LOGINS)
}
