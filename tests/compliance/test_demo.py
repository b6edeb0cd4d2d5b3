"""The demo book's compliance data gives every AML and screening rule something to find, and the
demo near-miss watch-list entries are not matched."""

import datetime as dt

import pytest
from django.core.management import call_command

from compliance.models import Flag, FlagKind, ScreeningMatch, SuitabilityRecord, WatchList

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)


def test_seed_demo_loads_watch_lists_and_patterns_that_the_night_flags(db, comply):
    call_command("seed_demo", "--clients", "400", "--months", "4", "--as-of", str(AS_OF), "--reset", "--no-progress")

    comply(AS_OF - dt.timedelta(days=1))

    assert set(WatchList.objects.values_list("name", flat=True)) == {
        "Sample sanctions list",
        "Sample PEP list",
        "Demo sanctions (book)",
        "Demo PEP (book)",
    }
    counts = {kind: Flag.objects.filter(kind=kind).count() for kind in FlagKind.values}
    assert counts[FlagKind.AML_RAPID_WITHDRAWAL] == 3
    assert counts[FlagKind.AML_STRUCTURING] == 3
    assert counts[FlagKind.HIGH_RISK_JURISDICTION] == 2
    demo_matches = ScreeningMatch.objects.filter(entry__watch_list__name__startswith="Demo")
    assert demo_matches.filter(entry__remarks="Demo entry").count() == 6
    assert not demo_matches.filter(entry__remarks="Demo near miss").exists()
    assert all("dob" in match.matched_fields for match in demo_matches)
    assert SuitabilityRecord.objects.filter(mismatch=True).exists()
