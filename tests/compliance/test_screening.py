"""Watch-list loads (validation, replacement) and screening into flags, with whitelisting."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from compliance import services
from compliance.models import (
    AuditEntry,
    FlagKind,
    FlagStatus,
    ScreeningMatch,
    ScreeningWhitelist,
    Severity,
    WatchListEntry,
)
from compliance.screening import WatchListImportError, screen_clients, watch_list_load
from tests import factories
from tests.compliance.conftest import AS_OF, flags_of

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

CSV = """entry_id,name,aliases,date_of_birth,countries,remarks
S1,王小明,Wang Xiaoming|XIAOMING WANG,1975-03-14,CN|HK,test
S2,Ivan Sidorov,,1970,RU,
"""


def load(data: str = CSV, name: str = "Sanctions", kind: str = "sanctions", by: object = "test"):
    return watch_list_load(data=data.encode(), list_name=name, kind=kind, by=by)


def test_a_load_replaces_the_list_and_is_audited(db):
    first = load()
    second = load(CSV.replace("S2,Ivan Sidorov,,1970,RU,\n", "S3,Kim Chol Su,,1968,KP,\n"))

    assert (first.created, first.updated, first.deactivated) == (2, 0, 0)
    assert (second.created, second.unchanged, second.deactivated) == (1, 1, 1)
    assert second.watch_list.version == 2
    assert set(WatchListEntry.objects.filter(is_active=True).values_list("external_id", flat=True)) == {"S1", "S3"}
    entry = WatchListEntry.objects.get(external_id="S1")
    assert (entry.aliases, entry.birth_date, entry.countries) == (
        ["Wang Xiaoming", "XIAOMING WANG"],
        dt.date(1975, 3, 14),
        ["CN", "HK"],
    )
    assert AuditEntry.objects.filter(action="watchlist.loaded").count() == 2


def test_an_invalid_file_is_rejected_whole_naming_row_and_column(db):
    bad = "entry_id,name,date_of_birth,countries\nA1,Good Name,1970-01-01,CN\nA1,,31/12/1970,China\n"

    with pytest.raises(WatchListImportError) as caught:
        load(bad)

    messages = [str(error) for error in caught.value.errors]
    assert messages == [
        "row 3, column entry_id: 'A1' - expected an id not already used on row 2",
        "row 3, column name: '' - expected the listed name",
        "row 3, column date_of_birth: '31/12/1970' - expected YYYY-MM-DD or YYYY, not in the future",
        "row 3, column countries: 'China' - expected ISO 3166-1 alpha-2 codes separated by |",
    ]
    assert not WatchListEntry.objects.exists()


def test_the_import_command_loads_the_samples_and_refuses_a_bad_file(db, tmp_path):
    call_command("import_watchlist", str(SAMPLES / "watchlist_sanctions.csv"), "--list", "Sanctions")
    call_command("import_watchlist", str(SAMPLES / "watchlist_pep.csv"), "--list", "PEP", "--kind", "pep")
    bad = tmp_path / "bad.csv"
    bad.write_text("entry_id,nom\n1,x\n", encoding="utf-8")

    with pytest.raises(CommandError, match="column nom"):
        call_command("import_watchlist", str(bad), "--list", "Sanctions")

    assert WatchListEntry.objects.filter(watch_list__name="Sanctions").count() == 8
    assert WatchListEntry.objects.filter(watch_list__name="PEP").count() == 4


def test_screening_raises_flags_and_a_cleared_false_match_is_whitelisted(cast, comply):
    load()
    load("entry_id,name,date_of_birth\nP1,刘芳,1966\n", name="PEP", kind="pep")
    hit = factories.ClientFactory(account_manager=cast.alice, name="王小明", birthday=dt.date(1975, 3, 14))
    factories.KYCProfileFactory(client=hit, nationality="CN")
    pep = factories.ClientFactory(account_manager=cast.bob, name="Liu Fang", birthday=dt.date(1966, 7, 1))
    other_dob = factories.ClientFactory(account_manager=cast.bob, name="Wang Xiaoming", birthday=dt.date(1990, 1, 1))
    near = factories.ClientFactory(account_manager=cast.bob, name="汪小明", birthday=None)

    comply(AS_OF)

    match = ScreeningMatch.objects.get(client=hit)
    assert (match.score, match.matched_fields) == (100.0, ["name", "dob", "country"])
    (flag,) = flags_of(hit, FlagKind.SANCTIONS)
    assert flag.severity == Severity.HIGH
    assert flag.evidence["matched_fields"] == ["name", "dob", "country"]
    (pep_flag,) = flags_of(pep, FlagKind.PEP)
    assert pep_flag.severity == Severity.HIGH  # birth year agrees
    assert not ScreeningMatch.objects.filter(client__in=[other_dob, near]).exists()

    # The officer finds it is another person: clear as a false match (high: four eyes).
    services.flag_decide(flag=flag, officer=cast.carol, decision="clear", note="Different person.", whitelist=True)
    assert not ScreeningWhitelist.objects.exists()  # not before the second officer approves
    services.flag_decision_approve(flag=flag, officer=cast.dave)
    assert ScreeningWhitelist.objects.filter(client=hit, entry=match.entry).exists()

    # A new version of the list makes everyone be screened again: the match is found again
    # but never flagged again for this client.
    load(CSV + "S4,Someone Else,,,,\n")
    comply(AS_OF + dt.timedelta(days=1))
    assert ScreeningMatch.objects.filter(client=hit).exists()
    assert [f.status for f in flags_of(hit, FlagKind.SANCTIONS)] == [FlagStatus.CLEARED]


def test_screening_is_incremental(cast, comply):
    load()
    factories.ClientFactory(account_manager=cast.alice, name="Zhang San")

    first = screen_clients()
    second = screen_clients()
    renamed = cast.bob_client
    renamed.name, renamed.birthday = "Wang Xiaoming", None
    renamed.save()
    third = screen_clients()

    assert (first.full, first.screened) == (True, 4)
    assert (second.full, second.screened) == (False, 0)
    assert (third.full, third.screened, third.matches) == (False, 1, 1)
