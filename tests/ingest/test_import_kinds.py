"""Every kind imports its sample file; the rules of each kind; updates of reference data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from clients.ingest import errors
from clients.ingest.kinds import KINDS
from clients.ingest.services import Requester
from clients.models import (
    AssetSnapshot,
    CashFlow,
    Client,
    ClientLogin,
    ImportBatch,
    Instrument,
    KYCProfile,
    RiskAssessment,
    Trade,
)
from tests.ingest.conftest import SAMPLES, error_codes

pytestmark = pytest.mark.django_db

ORDER = ["clients", "instruments", "trades", "cashflows", "snapshots", "kyc", "risk", "logins"]


def test_every_sample_imports_and_reimports_as_duplicates(book, run_import) -> None:
    # given the samples, in dependency order
    for kind in ORDER:
        # when
        batch = run_import(kind, SAMPLES / f"{kind}.csv")
        # then
        assert (kind, batch.status, batch.rows_rejected) == (kind, ImportBatch.Status.SUCCEEDED, 0), list(
            batch.errors.values_list("row", "column", "code", "expected")
        )
        assert batch.rows_written == batch.rows_read > 0
    assert Client.objects.filter(client_no__startswith="SMP").count() == 4
    assert Trade.objects.get(trade_id="SMPT0005").reverses.trade_id == "SMPT0004"
    assert CashFlow.objects.get(flow_id="SMPF0004").amount == Decimal("-10000.00")
    assert AssetSnapshot.objects.get(client__client_no="SMP0002").total == Decimal("120215.00")
    assert KYCProfile.objects.get(client__client_no="SMP0003").id_type == "business_licence"
    assert RiskAssessment.objects.get(client__client_no="SMP0002").answers == {}
    assert ClientLogin.objects.get(client__client_no="SMP0002", channel="mobile").logins == 2  # "app"
    for kind in ORDER:
        again = run_import(kind, SAMPLES / f"{kind}.csv")
        assert (kind, again.rows_written, again.rows_duplicate) == (kind, 0, again.rows_read)


def test_the_gbk_and_excel_samples(book, run_import) -> None:
    for kind in ("clients", "instruments"):
        run_import(kind, SAMPLES / f"{kind}.csv")
    gbk = run_import("trades", SAMPLES / "trades_gbk.csv")
    assert (gbk.status, gbk.encoding, gbk.rows_written) == (ImportBatch.Status.SUCCEEDED, "gb18030", 3)
    excel = run_import("instruments", SAMPLES / "instruments.xlsx")
    assert (excel.status, excel.rows_written, excel.rows_duplicate) == (ImportBatch.Status.SUCCEEDED, 2, 1)
    assert Instrument.objects.get(symbol="510999.SH").risk_level == 3


def test_an_excel_file_with_typed_cells(book, run_import, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["client_no", "as_of", "cash", "market_value"])
    sheet.append(["C1", dt.datetime(2025, 3, 31), 1234.5, 100])
    sheet.append(["C2", "2025-03-31", "2,000.00", 12.345])
    path = tmp_path / "snapshots.xlsx"
    workbook.save(path)
    batch = run_import("snapshots", path, skip_invalid=True)
    assert batch.encoding == ""
    assert AssetSnapshot.objects.get(client=book.c1).cash == Decimal("1234.50")
    # A number with more decimals than the column holds is refused, not rounded behind the user's back.
    assert error_codes(batch) == {(3, "market_value", errors.TOO_MANY_DECIMALS)}


class TestClients:
    HEADER = "client_no,name,branch_code,account_manager_no,status,opened_on,closed_on,email"

    def test_rules(self, book, write_file, run_import) -> None:
        path = write_file(
            "c.csv",
            [
                self.HEADER,
                "N1,New One,SH01,E00001,open,2024-01-02,,n1@example.com",
                "N2,New Two,XX99,,open,2024-01-02,,",  # unknown branch
                "N3,New Three,SH01,E99999,open,2024-01-02,,",  # unknown account manager
                "N4,New Four,SH01,,closed,2024-01-02,,",  # closed without a date
                "N5,New Five,SH01,,open,2024-01-02,2023-01-01,",  # closing date before opening, status open
                "N6,New Six,SH01,,open,2024-01-02,,not-an-email",
                ",No Number,SH01,,open,2024-01-02,,",
            ],
        )
        batch = run_import("clients", path, skip_invalid=True)
        assert error_codes(batch) == {
            (3, "branch_code", errors.UNKNOWN_BRANCH),
            (4, "account_manager_no", errors.UNKNOWN_ACCOUNT_MANAGER),
            (5, "closed_on", errors.STATUS_DATE),
            (6, "closed_on", errors.DATE_ORDER),
            (6, "status", errors.STATUS_DATE),
            (7, "email", errors.INVALID_EMAIL),
            (8, "client_no", errors.REQUIRED),
        }
        client = Client.objects.get(client_no="N1")
        assert (client.branch, client.account_manager, client.kind) == (book.branch, book.manager, "individual")

    def test_a_changed_client_is_a_conflict_unless_updates_are_allowed(self, book, write_file, run_import) -> None:
        run_import("clients", write_file("a.csv", [self.HEADER, "N1,Old Name,SH01,,open,2024-01-02,,"]))
        changed = write_file(
            "b.csv", [self.HEADER, "N1,New Name,SH01,,open,2024-01-02,,", "N2,Other,SH01,,open,2024-01-02,,"]
        )
        conflict = run_import("clients", changed)
        assert (conflict.status, conflict.rows_conflict) == (ImportBatch.Status.REJECTED, 1)
        assert Client.objects.get(client_no="N1").name == "Old Name"
        updated = run_import("clients", changed, allow_updates=True)
        assert updated.status == ImportBatch.Status.SUCCEEDED
        assert (updated.rows_updated, updated.rows_written, updated.rows_conflict) == (1, 1, 0)
        assert Client.objects.get(client_no="N1").name == "New Name"

    def test_one_key_updated_twice_in_a_file_is_a_conflict(self, book, write_file, run_import) -> None:
        run_import("clients", write_file("a.csv", [self.HEADER, "N1,Old,SH01,,open,2024-01-02,,"]))
        twice = write_file(
            "b.csv",
            [
                self.HEADER,
                "N1,New,SH01,,open,2024-01-02,,",
                "N1,New,SH01,,open,2024-01-02,,",
                "N1,Newer,SH01,,open,2024-01-02,,",
            ],
        )
        batch = run_import("clients", twice, allow_updates=True, skip_invalid=True, chunk_size=1)
        assert (batch.rows_updated, batch.rows_duplicate, batch.rows_conflict) == (1, 1, 1)
        assert error_codes(batch) == {(4, "client_no", errors.CONFLICT_IN_FILE)}
        assert Client.objects.get(client_no="N1").name == "New"

    def test_text_with_tabs_quotes_and_backslashes_survives(self, book, write_file, run_import) -> None:
        path = write_file("c.csv", [self.HEADER, 'N1,"Tab\there, ""quoted"" C:\\path\\N",SH01,,open,2024-01-02,,'])
        assert run_import("clients", path).status == ImportBatch.Status.SUCCEEDED
        assert Client.objects.get(client_no="N1").name == 'Tab\there, "quoted" C:\\path\\N'


class TestOtherKinds:
    def test_instruments(self, book, write_file, run_import) -> None:
        path = write_file(
            "i.csv",
            [
                "symbol,name,asset_class,risk_level,is_st,cap_class",
                "601988.SH,中国银行,股票,R2,否,large",
                "IF2506.CFE,沪深300股指期货,futures,5,false,",
                "X1,Bad,crypto,R9,maybe,giant",
            ],
        )
        batch = run_import("instruments", path, skip_invalid=True)
        assert error_codes(batch) == {
            (4, "asset_class", errors.INVALID_CHOICE),
            (4, "risk_level", errors.OUT_OF_RANGE),
            (4, "is_st", errors.INVALID_BOOLEAN),
            (4, "cap_class", errors.INVALID_CHOICE),
        }
        bank = Instrument.objects.get(symbol="601988.SH")
        assert (bank.asset_class, bank.risk_level, bank.is_st, bank.market) == ("stock", 2, False, "secondary")

    def test_cashflows(self, book, write_file, run_import) -> None:
        header = "flow_id,client_no,kind,amount,occurred_at,reverses_flow_id"
        path = write_file(
            "f.csv",
            [
                header,
                "F1,C1,入金,5000,2025-03-01 10:00:00,",
                "F2,C1,withdrawal,-100,2025-03-01 10:00:00,",  # an original is positive
                "F3,C1,deposit,-5000,2025-03-02 10:00:00,F1",
                "F4,C1,withdrawal,-5000,2025-03-02 10:00:00,F1",  # kind differs from the original, reversed twice
                "F5,C2,deposit,-5000,2025-03-02 10:00:00,F1",
            ],
        )
        batch = run_import("cashflows", path, skip_invalid=True)
        assert error_codes(batch) == {
            (3, "amount", errors.WRONG_SIGN),
            (5, "reverses_flow_id", errors.ALREADY_REVERSED),
            (6, "reverses_flow_id", errors.ALREADY_REVERSED),
        }
        assert CashFlow.objects.get(flow_id="F3").reverses.flow_id == "F1"

    def test_cashflow_reversal_must_match(self, book, write_file, run_import) -> None:
        header = "flow_id,client_no,kind,amount,occurred_at,reverses_flow_id"
        path = write_file(
            "f.csv",
            [header, "F1,C1,deposit,5000,2025-03-01 10:00:00,", "F2,C2,withdrawal,-4000,2025-03-02 10:00:00,F1"],
        )
        batch = run_import("cashflows", path)
        error = batch.errors.get()
        assert (error.row, error.code) == (3, errors.REVERSAL_MISMATCH)
        assert "client_no, kind, amount" in error.expected

    def test_snapshots(self, book, write_file, run_import) -> None:
        path = write_file(
            "s.csv",
            [
                "client_no,as_of,cash,market_value",
                "C1,2025-03-31,100,200",
                "C1,2025/3/31,100,200",
                "C2,2099-01-01,-1,0",
            ],
        )
        batch = run_import("snapshots", path, skip_invalid=True)
        assert (batch.rows_written, batch.rows_duplicate) == (1, 1)
        assert error_codes(batch) == {(4, "as_of", errors.IN_FUTURE), (4, "cash", errors.NEGATIVE)}

    def test_logins(self, book, write_file, run_import) -> None:
        header = "client_no,day,channel,logins"
        path = write_file(
            "l.csv",
            [header, "C1,2025-03-31,mobile,4", "C1,2025/3/31,App,4", "C2,2099-01-01,fax,-2", "C9,2025-03-31,web,1"],
        )
        batch = run_import("logins", path, skip_invalid=True)
        assert (batch.rows_written, batch.rows_duplicate) == (1, 1)
        assert error_codes(batch) == {
            (4, "day", errors.IN_FUTURE),
            (4, "channel", errors.INVALID_CHOICE),
            (4, "logins", errors.OUT_OF_RANGE),
            (5, "client_no", errors.UNKNOWN_CLIENT),
        }
        # the same key with another count is a conflict, never a silent overwrite
        again = run_import("logins", write_file("l2.csv", [header, "C1,2025-03-31,mobile,5"]))
        assert error_codes(again) == {(2, "client_no/day/channel", errors.CONFLICT)}
        assert ClientLogin.objects.get(client=book.c1).logins == 4

    def test_kyc_masks_the_id_number_in_every_report(self, book, write_file, run_import) -> None:
        header = "client_no,id_type,id_number,nationality,is_pep"
        run_import("kyc", write_file("k.csv", [header, "C1,resident_id,110105198005170011,cn,no"]))
        assert KYCProfile.objects.get(client=book.c1).nationality == "CN"
        batch = run_import(
            "kyc",
            write_file("k2.csv", [header, "C1,resident_id,110105198005179999,CN,no", "C2,passport,E 1234567,China,no"]),
        )
        assert error_codes(batch) == {
            (2, "client_no", errors.CONFLICT),
            (3, "id_number", errors.INVALID_CODE),
            (3, "nationality", errors.INVALID_CODE),
        }
        conflict = batch.errors.get(row=2)
        assert "110105198005179999" not in conflict.expected
        assert "110***********9999" in conflict.expected
        assert "110***********0011" in conflict.expected
        assert batch.errors.get(row=3, column="id_number").value == "E 1**4567"

    def test_kyc_changes_by_import_are_audited_with_the_id_number_masked(
        self, book, write_file, run_import, cast
    ) -> None:
        from compliance.audit import verify_chain
        from compliance.models import AuditEntry

        header = "client_no,id_type,id_number,nationality,is_pep"
        run_import("kyc", write_file("k.csv", [header, "C1,resident_id,110105198005170011,CN,no"]))
        assert not AuditEntry.objects.filter(action="kyc.changed").exists()  # a new profile is not a change
        batch = run_import(
            "kyc",
            write_file("k2.csv", [header, "C1,resident_id,110105198005179999,CN,yes"]),
            allow_updates=True,
            requester=Requester(user=cast.olga),
        )
        assert batch.rows_updated == 1
        entry = AuditEntry.objects.get(action="kyc.changed")
        assert entry.actor == cast.olga
        assert entry.client_id == book.c1.pk
        assert set(entry.new) == {"id_number", "is_pep"}
        text = str(entry.old) + str(entry.new)
        assert "110105198005179999" not in text
        assert "110***********9999" in text
        assert verify_chain().ok

    def test_risk(self, book, write_file, run_import) -> None:
        header = "client_no,risk_level,score,assessed_on,expires_on,horizon"
        path = write_file(
            "r.csv",
            [header, "C1,C3,55,2025-01-02,2027-01-02,medium", "C2,C6,101,2025-01-02,2025-01-01,forever"],
        )
        batch = run_import("risk", path, skip_invalid=True)
        assert error_codes(batch) == {
            (3, "risk_level", errors.OUT_OF_RANGE),
            (3, "score", errors.OUT_OF_RANGE),
            (3, "expires_on", errors.DATE_ORDER),
            (3, "horizon", errors.INVALID_CHOICE),
        }
        assert RiskAssessment.objects.get(client=book.c1).risk_level == 3


def test_column_types_fit_the_model() -> None:
    # A value longer than the column would make PostgreSQL refuse the whole COPY.
    for spec in KINDS.values():
        for column in spec.columns:
            max_length = getattr(column.type, "max_length", None)
            if column.field and max_length and column.reference is None:
                assert max_length <= spec.model._meta.get_field(column.field).max_length, (spec.name, column.name)
