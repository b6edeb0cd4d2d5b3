"""manage.py import_ledger: options, output, exit status, progress bar."""

from __future__ import annotations

import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clients.models import ImportBatch, Trade
from tests import factories
from tests.ingest.conftest import TRADES_HEADER, trade_line

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_ledger", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_success_prints_the_batch(book, write_file) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2")])
    output = run("trades", str(path), "--user", factories.UserFactory(username="ops_ivan").username)
    batch = ImportBatch.objects.get()
    assert f"Import batch #{batch.pk}: trades from trades.csv (utf-8)" in output
    assert "read 2 | written 2 | updated 0 | duplicate 0 | conflict 0 | rejected 0" in output
    assert batch.source == ImportBatch.Source.COMMAND
    assert batch.requested_by_name == "ops_ivan"


def test_without_user_the_os_account_is_recorded(book, write_file) -> None:
    run("trades", str(write_file("t.csv", [TRADES_HEADER, trade_line("T1")])))
    assert ImportBatch.objects.get().requested_by_name.startswith("os:")


def test_a_rejected_file_exits_non_zero_and_lists_the_errors(book, write_file) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2", side="hold")])
    out = StringIO()
    with pytest.raises(CommandError, match=r"Import batch #\d+ rejected"):
        call_command("import_ledger", "trades", str(path), "--no-progress", stdout=out)
    assert "row 3, column side: 'hold' — expected one of buy, sell [invalid_choice]" in out.getvalue()
    assert Trade.objects.count() == 0


def test_skip_invalid_writes_a_rejects_file_beside_the_input(book, write_file) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1"), trade_line("T2", side="hold")])
    output = run("trades", str(path), "--skip-invalid")
    rejects = path.with_name("trades.csv.rejects.csv")
    assert f"rejects    {rejects}" in output
    assert "T2" in rejects.read_text(encoding="utf-8-sig")
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["T1"]


def test_a_second_run_reports_the_earlier_import_of_the_same_file(book, write_file) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1")])
    run("trades", str(path))
    output = run("trades", str(path))
    first = ImportBatch.objects.order_by("id").first()
    assert f"the same file was imported before, in batch #{first.pk}" in output
    assert "duplicate  row 2: T1 (already held)" in output


def test_encoding_option(book, write_file) -> None:
    path = write_file("gbk.csv", [TRADES_HEADER, trade_line("T1", side="买入")], encoding="gbk")
    assert "(gbk)" in run("trades", str(path), "--encoding", "gbk")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trades", "/nonexistent.csv"], "No such file"),
        (["trades", "{path}", "--update"], "--update does not apply to trades"),
        (["trades", "{path}", "--user", "ghost"], "No user named ghost"),
    ],
)
def test_usage_errors(book, write_file, args: list[str], message: str) -> None:
    path = write_file("t.csv", [TRADES_HEADER, trade_line("T1")])
    with pytest.raises(CommandError, match=message):
        call_command("import_ledger", *[a.format(path=path) for a in args], "--no-progress", stdout=StringIO())
    assert ImportBatch.objects.count() == 0


def test_a_progress_bar_on_a_terminal(book, write_file, monkeypatch, capsys) -> None:
    path = write_file("trades.csv", [TRADES_HEADER] + [trade_line(f"T{i}") for i in range(5)])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    call_command("import_ledger", "trades", str(path), "--chunk-size", "2", stdout=StringIO())
    err = capsys.readouterr().err
    assert "trades.csv: 100%" in err
    assert "rows=5" in err


def test_no_progress_bar_when_not_on_a_terminal(book, write_file, capsys) -> None:
    path = write_file("trades.csv", [TRADES_HEADER, trade_line("T1")])
    call_command("import_ledger", "trades", str(path), stdout=StringIO())
    assert "100%" not in capsys.readouterr().err
