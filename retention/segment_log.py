"""The activity-segment history: the segment of every client on every recorded as-of date, kept
compactly, so the segments of a past date (the metrics stage reads the period start S = D - 30)
are read instead of recomputed from the whole rollup.

Writing (`record`, called by the dormancy stage just before it publishes a date): the date's
ClientActivity generation is compared in SQL with the published generation of the previous
recorded date (still in the table until the publication): only the clients whose segment
changed, appeared or disappeared are stored (SegmentChange), like segmentation's TierHistory for
tiers. Every CHECKPOINT_NIGHTS dates, when the previous date's rows are not available (first
night, a gap in the recorded chain, a re-run of an earlier date) or the chain grew too long, the
date is stored in full instead (a baseline). Re-recording a date (re-run) replaces its rows and
re-bases the date diffed against it, so every later state stays the same.

Reading (`segments_on(as_of)`): the baseline of the date's chain plus the changes of each date of
the chain, the latest per client. The history holds what the dormancy stage computed on that
night; `activity_segments` promises the segments computed from the data known now for that date,
so the read is only used when they are provably equal:
- the activity parameters are the ones recorded;
- the chain is complete (every date it is based on is recorded);
- clients with data that changed since the date was recorded are recomputed: trades dated on or
  before the date that were rolled up after it (id above the recorded watermark), and clients
  whose row changed (opened / closed dates) since; beyond MAX_RECOMPUTE of them, None.
Otherwise None, and the caller computes. (A ledger repair, `segmentation.rollup.activity_rebuild`,
rewrites the rollup under the history: call `forget()` after one.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from brokercrm.lib.exchange_time import day_end
from brokercrm.nightly import StageContext, bulk
from brokercrm.nightly.bulk import load_table, read_frame, read_numbers, session_work_mem
from clients.models import Client, Trade
from feedback.selectors import sql_datetime
from retention import conf, scoring
from retention.models import ClientActivity, SegmentChange, SegmentLogDate
from segmentation.models import ResultSet, RollupWatermark
from segmentation.publish import published

SEGMENTS = (scoring.SEGMENT_ACTIVE, scoring.SEGMENT_POTENTIAL, scoring.SEGMENT_DORMANT, scoring.SEGMENT_CLOSED)
CODES = {segment: code for code, segment in enumerate(SEGMENTS, start=1)}  # 0: not in the segments
NAMES = np.array([None, *SEGMENTS], dtype=object)
CHECKPOINT_NIGHTS = 28  # a baseline at least every 28 recorded dates: a read replays at most 28
MAX_CHAIN_FACTOR = 2  # ... and when the chain's rows exceed twice the population
MAX_RECOMPUTE = 5_000  # clients with changed data recomputed on a read; more: compute the date
RANGE_GAP = 2_048  # changed clients closer than this are recomputed as one client-id range
MAX_RANGES = 64  # ... and at most this many ranges (3 queries each); more: compute the date
WATERMARK = "trade_rollup"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def code_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{segment}' THEN {code}" for segment, code in CODES.items())
    return f"CASE {column} {whens} ELSE 0 END"


def _params() -> dict:
    return dataclasses.asdict(conf.activity_params())


def _watermark() -> int:
    return RollupWatermark.objects.filter(name=WATERMARK).values_list("last_trade_id", flat=True).first() or 0


# --- writing --------------------------------------------------------------------------------


def record(ctx: StageContext) -> SegmentLogDate:
    """Record the segments of `ctx.as_of` (ClientActivity rows of generation ctx.stage_run_id, not
    yet published: on PostgreSQL still in their side table), then prune the history."""
    entry = record_generation(ctx.as_of, ctx.stage_run_id, table=load_table(ClientActivity, ctx.stage_run_id))
    prune()
    return entry


def record_generation(as_of: dt.date, generation: int, *, table: str | None = None) -> SegmentLogDate:
    """`table`: where the generation's rows are (default: ClientActivity); the previous recorded
    date's generation is read from ClientActivity."""
    table = table or ClientActivity._meta.db_table
    with transaction.atomic():
        dependents = list(SegmentLogDate.objects.filter(base=as_of).order_by("as_of"))
        # The states of the dates diffed against this one, before its rows change (a re-run).
        kept = {entry.as_of: _state(entry.as_of) for entry in dependents}
        SegmentChange.objects.filter(as_of=as_of).delete()
        SegmentLogDate.objects.filter(as_of=as_of).delete()
        previous = SegmentLogDate.objects.filter(as_of__lt=as_of).order_by("-as_of").first()
        base = _diff_base(previous, as_of)
        if base is not None:
            rows = _insert_changes(as_of, generation, base.generation, table)
        elif _chainable(previous):
            # The previous date's activity rows are gone (a re-run of this date after its first
            # attempt published): diff against its recorded state instead, so a re-run records
            # exactly what an undisturbed night would have.
            base = previous
            rows = _insert_changes_from_state(as_of, generation, _state(previous.as_of), table)
        else:
            rows = _insert_changes(as_of, generation, None, table)
        total = _count(generation, table)
        if base is not None and base.chain_rows + rows > MAX_CHAIN_FACTOR * max(total, 1):
            SegmentChange.objects.filter(as_of=as_of).delete()
            base = None
            rows = _insert_changes(as_of, generation, None, table)
        entry = SegmentLogDate.objects.create(
            as_of=as_of,
            base=base.as_of if base is not None else None,
            generation=generation,
            depth=base.depth + 1 if base is not None else 0,
            rows=rows,
            chain_rows=(base.chain_rows if base is not None else 0) + rows,
            watermark=_watermark(),
            params=_params(),
            recorded_at=timezone.now(),
        )
        for dependent in dependents:
            _rebase(dependent, entry, kept[dependent.as_of])
    return entry


def _diff_base(previous: SegmentLogDate | None, as_of: dt.date) -> SegmentLogDate | None:
    """The previous recorded date when its rows are the published activity generation (so still
    in ClientActivity), recorded with today's parameters, and the chain is not due a baseline."""
    if previous is None or previous.depth + 1 >= CHECKPOINT_NIGHTS or previous.params != _params():
        return None
    result = published(ResultSet.Kind.ACTIVITY)
    if result is None or result.as_of != previous.as_of or result.generation != previous.generation:
        return None
    return previous


def _chainable(previous: SegmentLogDate | None) -> bool:
    """Whether the next date may be recorded as changes against `previous` at all."""
    return (
        previous is not None
        and previous.depth + 1 < CHECKPOINT_NIGHTS
        and previous.params == _params()
        and _chain(previous.as_of) is not None
    )


def _count(generation: int, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {_q(table)} WHERE generation = %s", [generation])  # noqa: S608
        return cursor.fetchone()[0]


def _insert_changes_from_state(as_of: dt.date, generation: int, base_state: pd.DataFrame, table: str) -> int:
    """The date's changes against a recorded state (client_id, code): the rows _insert_changes
    writes against that state's own activity generation."""
    new = read_numbers(
        f"SELECT client_id, {code_sql('segment')} FROM {_q(table)} "  # noqa: S608
        "WHERE generation = %s",
        [generation],
        {"client_id": "i", "code": "i"},
    )
    return _write_changes(as_of, diff_states(new, base_state))


def diff_states(new: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """client_id, code of the clients whose code in `new` differs from `base` (two states:
    client_id, code, one row per client; a client missing from one has code 0 there), in client
    order."""
    merged = new.merge(base, on="client_id", how="outer", suffixes=("", "_base"), sort=True)
    codes = merged["code"].fillna(0).astype("int64").to_numpy()
    changed = codes != merged["code_base"].fillna(0).astype("int64").to_numpy()
    return pd.DataFrame({"client_id": merged["client_id"].to_numpy("int64")[changed], "code": codes[changed]})


def _write_changes(as_of: dt.date, changes: pd.DataFrame) -> int:
    """Store `changes` (client_id, code) as the SegmentChange rows of `as_of`; returns their
    number. PostgreSQL: one binary COPY (bulk_create of ~11,000 rows took ~0.4 s)."""
    frame = pd.DataFrame(
        {
            "as_of": as_of,
            "client_id": changes["client_id"].to_numpy("int64"),
            "segment": changes["code"].to_numpy("int64"),
        }
    )
    bulk._insert(SegmentChange, frame)
    return len(frame)


def _insert_changes(as_of: dt.date, generation: int, base_generation: int | None, new_table: str) -> int:
    """INSERT ... SELECT the date's changes (rows of `generation` in `new_table`) against
    `base_generation` in ClientActivity (every row when None).

    PostgreSQL: one FULL JOIN of the two generations, each read once (the clients new or
    changed, and those gone, were two joins reading both generations each: ~1.7 s against
    ~0.9 s on the 1M book), with the nightly work_mem so the hash of 1M rows does not spill to
    disk in 8 batches. (A full join is a hash or merge join: never the nested loop over 1M x 1M
    rows that stale statistics of the new generation once led the planner to.)"""
    table, activity, new = _q(SegmentChange._meta.db_table), _q(ClientActivity._meta.db_table), _q(new_table)
    insert = f"INSERT INTO {table} (as_of, client_id, segment) "
    with connection.cursor() as cursor:
        if base_generation is None:
            cursor.execute(
                f"{insert}SELECT %s, client_id, {code_sql('segment')} FROM {new} WHERE generation = %s",  # noqa: S608
                [as_of, generation],
            )
            return cursor.rowcount
        if connection.vendor == "postgresql":
            with session_work_mem():
                cursor.execute(
                    f"{insert}SELECT %s, COALESCE(n.client_id, o.client_id), "  # noqa: S608
                    f"CASE WHEN n.client_id IS NULL THEN 0 ELSE {code_sql('n.segment')} END "
                    f"FROM (SELECT client_id, segment FROM {new} WHERE generation = %s) n "
                    f"FULL JOIN (SELECT client_id, segment FROM {activity} WHERE generation = %s) o "
                    "ON o.client_id = n.client_id "
                    "WHERE n.client_id IS NULL OR o.client_id IS NULL OR o.segment <> n.segment",
                    [as_of, generation, base_generation],
                )
            return cursor.rowcount
        cursor.execute(
            f"{insert}SELECT %s, n.client_id, {code_sql('n.segment')} FROM {new} n "  # noqa: S608
            f"LEFT JOIN {activity} o ON o.generation = %s AND o.client_id = n.client_id "
            "WHERE n.generation = %s AND (o.client_id IS NULL OR o.segment <> n.segment)",
            [as_of, base_generation, generation],
        )
        rows = cursor.rowcount
        cursor.execute(
            f"{insert}SELECT %s, o.client_id, 0 FROM {activity} o WHERE o.generation = %s "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {new} n WHERE n.generation = %s AND n.client_id = o.client_id)",
            [as_of, base_generation, generation],
        )
        return rows + cursor.rowcount


def _rebase(dependent: SegmentLogDate, base: SegmentLogDate, state: pd.DataFrame) -> None:
    """Rewrite `dependent`'s changes against the new state of `base` (its own state unchanged)."""
    changes = diff_states(state, _state(base.as_of))
    SegmentChange.objects.filter(as_of=dependent.as_of).delete()
    rows = _write_changes(dependent.as_of, changes)
    dependent.rows = rows
    dependent.depth = base.depth + 1
    dependent.chain_rows = base.chain_rows + rows
    dependent.save(update_fields=["rows", "depth", "chain_rows"])


def keep_days() -> int:
    """SEGMENT_HISTORY_KEEP_DAYS (default 400): how far back from the newest recorded date the
    history keeps dates readable. The metrics stage of D reads the segments of D - 30, so a
    year's snapshots stay reproducible from the history; older dates are computed (the same
    result, slower)."""
    value = int(getattr(settings, "SEGMENT_HISTORY_KEEP_DAYS", 400))
    if value < 1:
        raise ImproperlyConfigured(f"SEGMENT_HISTORY_KEEP_DAYS must be at least 1, not {value}.")
    return value


def prune(days: int | None = None) -> list[dt.date]:
    """Drop the recorded dates older than `days` (keep_days()) before the newest one, except those
    a kept date's chain still needs (its baseline and the change sets up to it). Returns the
    dates dropped. Run after each recording: a whole chain goes once its last date is old."""
    days = keep_days() if days is None else days
    links = dict(SegmentLogDate.objects.values_list("as_of", "base"))
    if not links:
        return []
    cutoff = max(links) - dt.timedelta(days=days)
    needed: set[dt.date] = set()
    for day in [day for day in links if day >= cutoff]:
        while day is not None and day not in needed:
            needed.add(day)
            day = links.get(day)
    dropped = sorted(day for day in links if day not in needed)
    for day in dropped:  # one transaction per date: a baseline is a row per client
        with transaction.atomic():
            SegmentChange.objects.filter(as_of=day).delete()
            SegmentLogDate.objects.filter(as_of=day).delete()
    return dropped


def forget(since: dt.date | None = None) -> int:
    """Drop the recorded dates (from `since` on): after a ledger repair. Returns dates dropped."""
    dates = SegmentLogDate.objects.all() if since is None else SegmentLogDate.objects.filter(as_of__gte=since)
    with transaction.atomic():
        days = list(dates.values_list("as_of", flat=True))
        SegmentChange.objects.filter(as_of__in=days).delete()
        dates.delete()
    return len(days)


# --- reading --------------------------------------------------------------------------------


def _chain(as_of: dt.date) -> list[dt.date] | None:
    """The recorded dates whose changes make up the state of `as_of`, baseline first."""
    entries = dict(SegmentLogDate.objects.filter(as_of__lte=as_of).values_list("as_of", "base"))
    if as_of not in entries:
        return None
    chain, day = [], as_of
    while day is not None:
        if day not in entries or len(chain) > CHECKPOINT_NIGHTS * 4:
            return None
        chain.append(day)
        day = entries[day]
    return chain[::-1]


def _state(as_of: dt.date) -> pd.DataFrame:
    """client_id, code of every client in the recorded state of `as_of` (its chain must exist)."""
    empty = pd.DataFrame({"client_id": np.empty(0, "int64"), "code": np.empty(0, "int64")})
    chain = _chain(as_of)
    if chain is None:
        return empty
    clients, codes, positions = [], [], []
    for position, day in enumerate(chain):  # one read per date: the baseline, then small change sets
        frame = read_numbers(
            f"SELECT client_id, segment FROM {_q(SegmentChange._meta.db_table)} WHERE as_of = %s",  # noqa: S608
            [day],
            {"client_id": "i", "code": "i"},
        )
        clients.append(frame["client_id"].to_numpy().astype("int64"))
        codes.append(frame["code"].to_numpy().astype("int64"))
        positions.append(np.full(len(frame), position, dtype="int64"))
    client, code, position = np.concatenate(clients), np.concatenate(codes), np.concatenate(positions)
    if not len(client):
        return empty
    # The latest date of the chain per client: sort by (client, position), keep the last.
    index = np.lexsort((position, client))
    client, code = client[index], code[index]
    last = np.ones(len(client), dtype=bool)
    last[:-1] = client[1:] != client[:-1]
    return pd.DataFrame({"client_id": client[last], "code": code[last]})


def changed_clients(entry: SegmentLogDate) -> np.ndarray:
    """Clients whose segment inputs on `entry.as_of` may differ now from when it was recorded:
    trades dated on or before it rolled up since (id above the watermark then, up to now), and
    clients whose row was saved since (opened_on / closed_on)."""
    trades = read_frame(
        f"SELECT DISTINCT client_id FROM {_q(Trade._meta.db_table)} "  # noqa: S608
        "WHERE id > %s AND id <= %s AND executed_at < %s",
        [entry.watermark, _watermark(), sql_datetime(day_end(entry.as_of))],
        ["client_id"],
    )
    clients = read_frame(
        f"SELECT id FROM {_q(Client._meta.db_table)} WHERE updated_at > %s",  # noqa: S608
        [sql_datetime(entry.recorded_at)],
        ["client_id"],
    )
    ids = np.concatenate(
        [trades["client_id"].to_numpy().astype("int64"), clients["client_id"].to_numpy().astype("int64")]
    )
    return np.unique(ids)


def _ranges(ids: np.ndarray) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for client_id in ids.tolist():
        if ranges and client_id - ranges[-1][0] < RANGE_GAP:
            ranges[-1] = (ranges[-1][0], client_id)
        else:
            ranges.append((client_id, client_id))
    return ranges


def segments_on(as_of: dt.date) -> pd.DataFrame | None:
    """client_id, segment of every client opened by `as_of` from the history, equal to computing
    them now (see module doc); None when the history cannot give that."""
    entry = SegmentLogDate.objects.filter(as_of=as_of).first()
    if entry is None or entry.params != _params() or _chain(as_of) is None:
        return None
    changed = changed_clients(entry)
    ranges = _ranges(changed)
    if len(changed) > MAX_RECOMPUTE or len(ranges) > MAX_RANGES:
        return None
    state = _state(as_of)
    state = state[state["code"].to_numpy() > 0]
    frame = pd.DataFrame({"client_id": state["client_id"].to_numpy(), "segment": NAMES[state["code"].to_numpy()]})
    if not len(changed):
        return frame.reset_index(drop=True)
    from retention.inputs import read_activity_inputs

    params = conf.activity_params()
    client_id = frame["client_id"].to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    parts = [frame]
    for first, last in ranges:
        keep &= (client_id < first) | (client_id > last)
        fresh = scoring.activity_segments(read_activity_inputs(as_of, first, last, params), as_of, params)
        parts.append(
            pd.DataFrame({"client_id": fresh["client_id"].to_numpy("int64"), "segment": fresh["segment"].to_numpy()})
        )
    parts[0] = frame[keep]
    return pd.concat(parts, ignore_index=True).sort_values("client_id", kind="stable").reset_index(drop=True)
