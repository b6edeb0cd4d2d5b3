"""Needs profiles: the pure computation on hand-built frames, and the chunked stage."""

import datetime as dt

import pandas as pd
import pytest

from brokercrm.models import ChunkRun, RunStatus
from segmentation import needs, selectors
from segmentation.analytics import NeedsParams, needs_profiles
from segmentation.models import NeedsProfile, ResultSet
from tests import factories
from tests.segmentation.books import add_assets, add_trade, local_noon, make_clients

PARAMS = NeedsParams(window_days=365, min_trades=3, min_days=2, swing_max_days=20, top_industries=2)
INSTRUMENTS = pd.DataFrame(
    {
        "instrument_id": [1, 2, 3, 4],
        "asset_class": ["stock", "stock", "fund", "stock"],
        "market": ["secondary", "secondary", "secondary", "primary"],
        "cap_class": ["large", "small", "", "small"],
        "is_blue_chip": [True, False, False, False],
        "is_st": [False, True, False, False],
        "industry": ["Banking", "Software", "", "Mining"],
    }
)


def trades_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (client_id, instrument_id, 'YYYY-MM-DD', side, trades, amount[, high_price_trades, high_amount])."""
    full = [(*row, 0, 0.0) if len(row) == 6 else row for row in rows]
    frame = pd.DataFrame(
        full,
        columns=[
            "client_id",
            "instrument_id",
            "day",
            "side",
            "trades",
            "amount",
            "high_price_trades",
            "high_price_amount",
        ],
    )
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def profile(client_id: int, trades: pd.DataFrame, channels=None, assets=None) -> pd.Series:
    channels = channels if channels is not None else pd.DataFrame(columns=["client_id", "channel", "trades", "amount"])
    assets = assets if assets is not None else pd.DataFrame(columns=["client_id", "avg_assets"])
    out = needs_profiles(pd.Series([client_id]), trades, INSTRUMENTS, channels, assets, PARAMS)
    return out.set_index("client_id").loc[client_id]


def test_holding_style_day_swing_long() -> None:
    day_trader = trades_frame(
        [(1, 1, d, side, 1, 1000.0) for d in ("2026-03-02", "2026-03-03", "2026-03-04") for side in ("buy", "sell")]
    )
    assert profile(1, day_trader)["holding_style"] == "day"
    swing = trades_frame(
        [
            (1, 1, "2026-03-02", "buy", 1, 1000.0),
            (1, 1, "2026-03-09", "sell", 1, 1000.0),
            (1, 2, "2026-04-01", "buy", 1, 1000.0),
            (1, 2, "2026-04-10", "sell", 1, 1000.0),
            (1, 1, "2026-05-01", "buy", 1, 1000.0),
            (1, 1, "2026-05-05", "sell", 1, 1000.0),
        ]
    )
    result = profile(1, swing)
    assert result["holding_style"] == "swing"
    assert result["holding_mix"] == {"day": 0.0, "swing": 1.0, "long": 0.0}
    # sells of positions bought before the window (no buy seen) count as long holding
    long = trades_frame([(1, 1, d, "sell", 1, 1000.0) for d in ("2026-03-02", "2026-04-03", "2026-05-04")])
    assert profile(1, long)["holding_style"] == "long"


def test_too_few_sells_define_no_style() -> None:
    few = trades_frame([(1, 1, "2026-03-02", "buy", 1, 1000.0), (1, 1, "2026-03-02", "sell", 1, 1000.0)])
    result = profile(1, few)
    assert result["holding_style"] == "unknown"
    assert result["holding_mix"] == {"day": 1.0, "swing": 0.0, "long": 0.0}


def test_one_off_trades_describe_the_mix_but_define_no_preference() -> None:
    # three trades of a small-cap ST software stock on three days, one large buy of a fund
    trades = trades_frame(
        [(1, 2, d, "buy", 1, 100.0) for d in ("2026-03-02", "2026-03-03", "2026-03-04")]
        + [(1, 3, "2026-03-05", "buy", 1, 10_000.0)]
    )
    result = profile(1, trades)
    assert result["product_mix"]["asset_class"] == {
        "fund": pytest.approx(0.9709, abs=1e-4),
        "stock": pytest.approx(0.0291, abs=1e-4),
    }
    # the fund is most of the money but a single trade: the preference is the stock
    assert result["preferences"]["asset_class"] == "stock"
    assert result["preferences"]["cap"] == "small"
    assert result["preferences"]["quality"] == "st"
    assert result["top_industries"] == ["Software"]


def test_trades_on_one_day_are_still_a_one_off() -> None:
    trades = trades_frame([(1, 1, "2026-03-02", "buy", 5, 500.0)])
    result = profile(1, trades)
    assert result["preferences"] == {}
    assert result["top_industries"] == []
    assert result["product_mix"]["industry"] == {"Banking": 1.0}


def test_frequency_ticket_turnover_and_channels() -> None:
    trades = trades_frame([(7, 1, f"2026-0{month}-10", "buy", 2, 3000.0, 1, 2000.0) for month in range(1, 7)])
    channels = pd.DataFrame(
        {"client_id": [7, 7], "channel": ["mobile", "phone"], "trades": [9, 3], "amount": [6000.0, 12000.0]}
    )
    assets = pd.DataFrame({"client_id": [7], "avg_assets": [36000.0]})
    result = profile(7, trades, channels, assets)
    assert result["trades"] == 12
    assert result["active_days"] == 6
    assert result["trades_per_month"] == pytest.approx(12 / (365 / 30.4375))
    assert result["avg_ticket"] == pytest.approx(1500.0)
    assert result["turnover"] == pytest.approx(18000.0 / 36000.0)
    assert result["primary_channel"] == "mobile"
    assert result["channel_mix"]["phone"] == {
        "trades": 3,
        "amount": 12000.0,
        "trade_share": 0.25,
        "amount_share": 0.6667,
    }
    assert result["product_mix"]["price"] == {
        "high": pytest.approx(2 / 3, abs=1e-4),
        "low": pytest.approx(1 / 3, abs=1e-4),
    }
    assert result["preferences"]["price"] == "high"


def test_a_client_without_trades_gets_an_empty_profile() -> None:
    result = profile(9, trades_frame([(1, 1, "2026-03-02", "buy", 1, 1.0)]))
    assert result["trades"] == 0
    assert result["holding_style"] == "unknown"
    assert result["primary_channel"] == ""
    assert pd.isna(result["avg_ticket"])


AS_OF = dt.date(2026, 6, 26)  # a Friday: the default weekly refresh day


@pytest.mark.django_db
def test_the_stage_profiles_every_open_client_in_chunks(run_nightly) -> None:
    clients = make_clients(5)
    make_clients(1, closed_on=AS_OF - dt.timedelta(days=1))
    bank = factories.InstrumentFactory(symbol="600036.SH", industry="Banking", is_blue_chip=True)
    for offset in (1, 2, 3):
        add_trade(clients[0], commission="5", when=local_noon(AS_OF - dt.timedelta(days=offset)), instrument=bank)
    add_assets(clients[0], as_of=AS_OF, total=1_000_000)
    run = run_nightly(AS_OF, ["rollup", "needs"], chunk_size=2)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert ChunkRun.objects.filter(stage_run__run=run).count() == 3
    profiles = {p.client_id: p for p in NeedsProfile.objects.filter(as_of=AS_OF)}
    assert set(profiles) == {client.pk for client in clients}
    first = profiles[clients[0].pk]
    assert first.trades == 3
    assert first.preferences["quality"] == "blue_chip"
    assert first.top_industries == ["Banking"]
    assert first.primary_channel == "mobile"
    assert first.turnover == pytest.approx(15000 / 1_000_000)
    assert ResultSet.objects.get(kind="needs", as_of=AS_OF).is_published


@pytest.mark.django_db
def test_weekly_refresh_and_a_failed_refresh_keeps_the_last_one(run_nightly) -> None:
    superuser = factories.UserFactory(username="root", is_superuser=True)
    clients = make_clients(3)
    add_trade(clients[0], commission="5", when=local_noon(AS_OF - dt.timedelta(days=1)))
    assert run_nightly(AS_OF, ["needs"]).status == RunStatus.SUCCEEDED
    published = sorted(NeedsProfile.objects.values_list("as_of", "client_id", "trades"))
    # Saturday: not the refresh day, and profiles exist -> skipped
    saturday = run_nightly(AS_OF + dt.timedelta(days=1))
    assert saturday.stage_runs.get(name="needs").status == RunStatus.SKIPPED
    # next Friday the refresh fails in a chunk: last week's profiles stay published
    real_chunk = needs.needs_chunk

    def failing_chunk(ctx, low, high):
        if low == clients[2].pk:
            raise RuntimeError("chunk crashed (injected)")
        return real_chunk(ctx, low, high)

    from brokercrm.nightly.registry import Stage, registered_stages

    patched = Stage(
        name="needs",
        position=220,
        prepare=needs.needs_prepare,
        chunk=failing_chunk,
        finalize=needs.needs_finalize,
        cleanup=needs.needs_cleanup,
        is_due=needs.needs_is_due,
    )
    with registered_stages(patched):
        failed = run_nightly(AS_OF + dt.timedelta(days=7), ["needs"], chunk_size=2)
        # and so does a failed re-run of the published date itself: no mix of old and new rows
        failed_again = run_nightly(AS_OF, ["needs"], chunk_size=2)
    assert failed.status == failed_again.status == RunStatus.FAILED
    assert "chunk crashed" in failed.error
    assert ResultSet.objects.filter(kind="needs", is_published=True).get().as_of == AS_OF
    assert sorted(NeedsProfile.objects.values_list("as_of", "client_id", "trades")) == published
    assert selectors.needs_profile_get(user=superuser, client_no=clients[0].client_no).trades == 1
    from django.db import connection

    assert not any("needs_stage" in table for table in connection.introspection.table_names())
