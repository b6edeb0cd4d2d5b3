"""The tier rule on hand-built frames (pure pandas, no database)."""

import random
from fractions import Fraction

import pandas as pd
import pytest

from segmentation.analytics import (
    MAJOR,
    ORDINARY,
    SMALL,
    VIP,
    CutoffError,
    apply_history,
    assign_tiers,
    migration_matrix,
    pareto,
    reactivation_candidates,
    tier_changes,
    tier_cutoffs,
)

CUTOFFS = tier_cutoffs({"vip": 3, "major": 10, "ordinary": 20})


def frame(values: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"client_id": range(1, len(values) + 1), "value": values})


def counts(values: list[int], cutoffs=CUTOFFS) -> tuple[int, int, int, int]:
    tiers = assign_tiers(frame(values), cutoffs)["tier"]
    return tuple(int((tiers == tier).sum()) for tier in (VIP, MAJOR, ORDINARY, SMALL))


def reference_tier(values: list[int], index: int) -> int:
    """The rule as written in the issue, one client at a time, in exact fractions."""
    value = values[index]
    if value <= 0:
        return SMALL
    share = Fraction(sum(1 for other in values if other > value), len(values))
    for tier, limit in ((VIP, Fraction(3, 100)), (MAJOR, Fraction(10, 100)), (ORDINARY, Fraction(20, 100))):
        if share < limit:
            return tier
    return SMALL


def test_a_thousand_distinct_values_give_30_70_100_800() -> None:
    values = random.Random(1).sample(range(1, 10_000_000), 1000)
    assert counts(values) == (30, 70, 100, 800)


def test_ties_at_the_vip_boundary_go_up_together() -> None:
    # 100 clients: 3% = 3 clients. Clients ranked 3rd and 4th are tied: both have 2 strictly
    # higher (s = 2%), so both are VIP and the 5th has 4 higher (s = 4%): Major.
    values = list(range(1000, 900, -1))
    values[3] = values[2]
    assert counts(values) == (4, 6, 10, 80)


def test_ties_just_past_the_vip_boundary_go_down_together() -> None:
    # 4th and 5th tied: 3 strictly higher each, s = 3% is not < 3%: both Major.
    values = list(range(1000, 900, -1))
    values[4] = values[3]
    assert counts(values) == (3, 7, 10, 80)


def test_ties_at_the_major_and_ordinary_boundaries() -> None:
    values = list(range(1000, 900, -1))
    values[10] = values[9]  # 10th & 11th: 9 higher -> s = 9% < 10%: both Major
    values[20] = values[19] = values[18]  # 19th-21st: 18 higher -> s = 18% < 20%: all Ordinary
    assert counts(values) == (3, 8, 10, 79)


def test_one_large_tie_group_takes_the_tier_of_its_best_member() -> None:
    # 50 clients tied at the top of 100: nobody is strictly higher, so all 50 are VIP.
    values = [500] * 50 + list(range(50, 0, -1))
    assert counts(values) == (50, 0, 0, 50)


def test_an_all_zero_book_is_all_small() -> None:
    assert counts([0] * 40) == (0, 0, 0, 40)


def test_zero_is_small_even_where_the_share_would_allow_more() -> None:
    # 5 paying clients in 100: the 95 at zero have s = 5% (< 10%) but stay Small.
    values = [50, 40, 30, 20, 10] + [0] * 95
    assert counts(values) == (3, 2, 0, 95)


def test_negative_values_are_small() -> None:
    assert counts([-5, 10, 0]) == (1, 0, 0, 2)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (33, (1, 3, 3, 26)),  # fewer than 34: 3% of 33 is 0.99, still the best client is VIP
        (10, (1, 0, 1, 8)),
        (1, (1, 0, 0, 0)),
        (2, (1, 0, 0, 1)),
    ],
)
def test_small_books(size: int, expected: tuple) -> None:
    assert counts(list(range(size, 0, -1))) == expected


def test_an_empty_population() -> None:
    assert counts([]) == (0, 0, 0, 0)


@pytest.mark.parametrize("seed", range(8))
def test_matches_the_rule_as_written_on_books_full_of_ties(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(1, 300)
    values = [rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 100, 1000]) for _ in range(size)]
    result = assign_tiers(frame(values), CUTOFFS).set_index("client_id")
    for index in range(size):
        assert result.loc[index + 1, "tier"] == reference_tier(values, index), (values, index)


def test_rank_and_percentile() -> None:
    result = assign_tiers(frame([10, 30, 30, 20]), CUTOFFS).set_index("client_id")
    assert result["rank"].to_dict() == {1: 4, 2: 1, 3: 1, 4: 3}
    assert result["percentile"].to_dict() == {1: 75.0, 2: 0.0, 3: 0.0, 4: 50.0}


def test_cut_offs_are_settings_and_exact() -> None:
    # 2.5% of 200 = 5 exactly: the 5th client (4 higher, s = 2%) is in, the 6th (s = 2.5%) out.
    values = list(range(200, 0, -1))
    assert counts(values, tier_cutoffs({"vip": "2.5", "major": 5, "ordinary": 50})) == (5, 5, 90, 100)


@pytest.mark.parametrize(
    "spec", [{"vip": 10, "major": 3, "ordinary": 20}, {"vip": 0, "major": 3, "ordinary": 20}, {"vip": 3}, {}]
)
def test_bad_cut_offs_are_refused(spec: dict) -> None:
    with pytest.raises(CutoffError):
        tier_cutoffs(spec)


def test_changes_against_the_previous_run() -> None:
    current = assign_tiers(frame([100, 50, 1, 1]), tier_cutoffs({"vip": 25, "major": 50, "ordinary": 75}))
    previous = pd.DataFrame({"client_id": [1, 2, 3, 9], "tier": [MAJOR, MAJOR, VIP, SMALL]})
    out, history = tier_changes(current, previous)
    changes = out.set_index("client_id")["change"].to_dict()
    assert changes == {1: "up", 2: "same", 3: "down", 4: "new"}
    assert history["client_id"].tolist() == [1, 3, 4, 9]
    left = history.set_index("client_id").loc[9]
    assert pd.isna(left["tier"])
    assert left["previous_tier"] == SMALL


def test_first_run_has_no_history() -> None:
    out, history = tier_changes(assign_tiers(frame([3, 2, 1]), CUTOFFS), None)
    assert set(out["change"]) == {"new"}
    assert history.empty


def test_apply_history_rolls_a_snapshot_forward() -> None:
    base = pd.DataFrame({"client_id": [1, 2, 3], "tier": [VIP, MAJOR, SMALL]})
    history = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2026-01-02", "2026-01-03", "2026-01-02", "2026-01-03"]),
            "client_id": [2, 2, 3, 4],
            "tier": [VIP, ORDINARY, None, SMALL],
        }
    )
    out = apply_history(base, history).set_index("client_id")["tier"].to_dict()
    assert out == {1: VIP, 2: ORDINARY, 4: SMALL}


def test_migration_matrix_counts_moves_entries_and_exits() -> None:
    before = pd.DataFrame({"client_id": [1, 2, 3], "tier": [VIP, SMALL, SMALL]})
    after = pd.DataFrame({"client_id": [1, 2, 4], "tier": [VIP, MAJOR, SMALL]})
    matrix = migration_matrix(before, after)
    assert matrix["vip"]["vip"] == 1
    assert matrix["small"]["major"] == 1
    assert matrix["small"]["none"] == 1
    assert matrix["none"]["small"] == 1
    assert sum(sum(row.values()) for row in matrix.values()) == 4


def test_pareto_staircase_and_top_twenty_share() -> None:
    # 10 clients: 1 pays 80, 1 pays 10, 8 pay 1.25 -> top 20% (2 clients) pay 90 of 100.
    commission = [8000, 1000] + [125] * 8
    tiers = assign_tiers(frame(commission), CUTOFFS)
    steps, top20 = pareto(tiers.rename(columns={"value": "commission"})[["client_id", "tier", "commission"]])
    assert top20 == pytest.approx(0.9)
    by_tier = {step["tier"]: step for step in steps}
    assert by_tier["vip"]["clients"] == 1
    assert by_tier["vip"]["commission_share"] == pytest.approx(0.8)
    assert by_tier["small"]["cumulative_client_share"] == pytest.approx(1.0)
    assert sum(step["clients"] for step in steps) == 10


def test_pareto_without_commission() -> None:
    steps, top20 = pareto(pd.DataFrame({"client_id": [1, 2], "tier": [SMALL, SMALL], "commission": [0, 0]}))
    assert top20 is None
    assert steps[-1]["clients"] == 2


def test_high_assets_low_activity() -> None:
    # 20 clients: assets 20..1 (x 1000); the two richest are the top decile (s < 10%).
    # Commission: client 1 pays nothing, client 2 pays the most: only client 1 is listed.
    assets = [(20 - index) * 1000 for index in range(20)]
    commission = [0, 900, *list(range(18))]
    frame_ = pd.DataFrame({"client_id": range(1, 21), "assets": assets, "commission": commission})
    result = reactivation_candidates(frame_)
    assert result["client_id"].tolist() == [1]
    assert result.loc[0, "assets_percentile"] == 0.0


def test_high_assets_low_activity_ties_in_commission_stay_together() -> None:
    # 10 clients, 6 of them with zero commission: fewer than half have strictly less than any
    # of them, so all six zero-payers are "bottom half"; the richest (a zero-payer) is listed.
    frame_ = pd.DataFrame(
        {"client_id": range(1, 11), "assets": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], "commission": [0] * 6 + [5, 6, 7, 8]}
    )
    assert reactivation_candidates(frame_)["client_id"].tolist() == [1]
    nobody_rich = frame_.assign(assets=0)
    assert reactivation_candidates(nobody_rich).empty
