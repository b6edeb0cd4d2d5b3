"""Fixtures for the ingestion tests: a small book to import against, and file helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from clients.ingest.services import ImportOptions, Requester, ingest_file
from clients.models import AccountManager, Branch, Client, ImportBatch, Instrument, Trade
from tests import factories

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

TRADES_HEADER = "trade_id,client_no,executed_at,symbol,side,quantity,price,amount,commission,channel,realized_pnl"


@dataclass
class Book:
    branch: Branch
    manager: AccountManager
    c1: Client
    c2: Client
    stock: Instrument
    etf: Instrument


@pytest.fixture
def book(db: None) -> Book:
    """Branch SH01, account manager E00001, clients C1 and C2, instruments 600000.SH and 510300.SH.

    The samples under samples/ need SH01 and E00001 (what seed_demo creates)."""
    branch = factories.BranchFactory(code="SH01", name="Shanghai Lujiazui")
    manager = AccountManager.objects.filter(employee_no="E00001").first() or factories.AccountManagerFactory(
        employee_no="E00001", team=factories.TeamFactory(branch=branch)
    )
    # The factory numbers managers E00000, E00001 ...: move it past the one made here.
    factories.AccountManagerFactory.reset_sequence(50_000)
    return Book(
        branch=branch,
        manager=manager,
        c1=factories.ClientFactory(client_no="C1", account_manager=manager),
        c2=factories.ClientFactory(client_no="C2", account_manager=manager),
        stock=factories.InstrumentFactory(symbol="600000.SH"),
        etf=factories.InstrumentFactory(symbol="510300.SH", asset_class=Instrument.AssetClass.FUND),
    )


def trade_line(
    trade_id: str,
    *,
    client: str = "C1",
    at: str = "2025-03-03 10:00:00",
    symbol: str = "600000.SH",
    side: str = "buy",
    quantity: str = "100",
    price: str = "10.50",
    amount: str = "1050.00",
    commission: str = "5.00",
    channel: str = "mobile",
    pnl: str = "",
    reverses: str | None = None,
) -> str:
    fields = [trade_id, client, at, symbol, side, quantity, price, amount, commission, channel, pnl]
    if reverses is not None:
        fields.append(reverses)
    return ",".join(fields)


def reversal_line(trade_id: str, original: str, **overrides: str) -> str:
    values = {"amount": "-1050.00", "commission": "-5.00", "at": "2025-03-04 10:00:00", **overrides}
    return trade_line(trade_id, reverses=original, **values)


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write `text` (lines joined) to a file in tmp_path, in the given encoding."""

    def write(name: str, lines: list[str] | str, *, encoding: str = "utf-8", bom: bool = False) -> Path:
        text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
        data = text.encode(encoding)
        if bom:
            data = b"\xef\xbb\xbf" + data
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def run_import() -> Callable[..., ImportBatch]:
    """Import a file through the service; keyword arguments become ImportOptions."""

    def run(kind: str, path: Path, *, requester: Requester | None = None, **options: object) -> ImportBatch:
        with path.open("rb") as stream:
            return ingest_file(
                kind=kind, stream=stream, name=path.name, requester=requester, options=ImportOptions(**options)
            )

    return run


def error_codes(batch: ImportBatch) -> set[tuple[int, str, str]]:
    """(row, column, code) of each stored error."""
    return set(batch.errors.values_list("row", "column", "code"))


def trade_ids() -> list[str]:
    return sorted(Trade.objects.values_list("trade_id", flat=True))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


D = Decimal
