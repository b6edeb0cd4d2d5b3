"""The binary COPY encoder (brokercrm/lib/pgbinary.py, bulk._binary_payload): its payload decoded
field by field gives back every value and every NULL, whichever way the rows are assembled (one
matrix per row layout, or one masked matrix for many layouts); on PostgreSQL the rows it stores
are the rows the CSV COPY stores."""

from __future__ import annotations

import datetime as dt
import json
import struct
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from brokercrm.lib import pgbinary
from brokercrm.lib.db import is_postgres
from brokercrm.nightly import bulk
from retention.models import ClientActivity

PG_EPOCH = dt.date(2000, 1, 1)


def decode_copy(payload: bytes) -> list[list[bytes | None]]:
    """The rows of binary COPY data as their fields' bytes (None: NULL), checking the framing."""
    assert payload[:11] == b"PGCOPY\n\xff\r\n\x00"
    position, rows = 19, []
    while True:
        assert position + 2 <= len(payload), "no trailer"
        count = int.from_bytes(payload[position : position + 2], "big", signed=True)
        position += 2
        if count == -1:
            break
        fields = []
        for _ in range(count):
            size = int.from_bytes(payload[position : position + 4], "big", signed=True)
            position += 4
            assert -1 <= size <= len(payload) - position
            if size == -1:
                fields.append(None)
            else:
                fields.append(payload[position : position + size])
                position += size
        rows.append(fields)
    assert position == len(payload)
    return rows


def decode_numeric(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack(">hhHh", data[:8])
    digits = struct.unpack(f">{ndigits}h", data[8:])
    value = sum(Decimal(digit) * Decimal(10_000) ** (weight - index) for index, digit in enumerate(digits))
    value = value.quantize(Decimal(1).scaleb(-dscale))
    return -value if sign == 0x4000 else value


def decoded(field: bytes | None, kind: str):
    if field is None:
        return None
    if kind == "int":
        return int.from_bytes(field, "big", signed=True)
    if kind == "float":
        return struct.unpack(">d", field)[0]
    if kind == "numeric":
        return decode_numeric(field)
    if kind == "date":
        return PG_EPOCH + dt.timedelta(days=int.from_bytes(field, "big", signed=True))
    if kind == "bool":
        return field == b"\x01"
    if kind == "jsonb":
        assert field[:1] == b"\x01"
        return json.loads(field[1:].decode())
    return field.decode()


def test_numeric_digits_decode_to_the_values() -> None:
    cents = np.array([0, 1, -1, 99, 100, 123_456, -98_765_432_101, 10**15 + 7, -(10**13)], dtype=np.int64)
    is_null = np.array([False] * 8 + [True])
    matrix, used = pgbinary.encode_numeric(cents, scale=2, is_null=is_null)
    assert used.tolist() == [12 + 2 * 5] * 8 + [4]  # 4 integer and 1 fractional base-10000 digits
    rows = decode_copy(pgbinary.SIGNATURE + pgbinary.encode_rows([(matrix, used)]) + pgbinary.TRAILER)
    assert [decoded(row[0], "numeric") for row in rows] == [Decimal(int(c)).scaleb(-2) for c in cents[:-1]] + [None]


def blocks_and_rows(rows: int, seed: int) -> tuple[list[pgbinary.Block], list[tuple]]:
    """Blocks of an id, a nullable int, a text of varying length and a nullable float; and the
    rows they hold."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=np.int64)
    numbers = rng.integers(-1000, 1000, rows)
    number_null = rng.random(rows) < 0.3
    words = np.array(["", "a", "dormant", "potentially_active", "中文"], dtype=object)[rng.integers(0, 5, rows)]
    reals = rng.normal(size=rows)
    real_null = rng.random(rows) < 0.2
    blocks = [
        pgbinary.encode_int(ids, size=8),
        pgbinary.encode_int(numbers, size=4, is_null=number_null),
        pgbinary.encode_bytes(words),
        bulk._encode_float(reals, real_null),
    ]
    expected = [
        (int(ids[i]), None if number_null[i] else int(numbers[i]), words[i], None if real_null[i] else reals[i])
        for i in range(rows)
    ]
    return blocks, expected


def rows_of(payload: bytes) -> list[tuple]:
    kinds = ["int", "int", "text", "float"]
    return [tuple(decoded(field, kind) for field, kind in zip(row, kinds, strict=True)) for row in decode_copy(payload)]


def reference_rows(blocks: list[pgbinary.Block]) -> bytes:
    """encode_rows as it was (one matrix, one mask of every byte): the bytes writers that keep
    their rows' order (the demo seeder, the churn stage) must still get."""
    rows = len(blocks[0][0])
    count = np.empty(rows, dtype=">i2")
    count[:] = len(blocks)
    matrix = np.hstack([count.view(np.uint8).reshape(rows, 2)] + [block for block, _ in blocks])
    if all(used is None for _, used in blocks):
        return matrix.tobytes()
    masks = [np.ones((rows, 2), dtype=bool)]
    for block, used in blocks:
        width = block.shape[1]
        masks.append(np.ones((rows, width), dtype=bool) if used is None else np.arange(width)[None, :] < used[:, None])
    return matrix[np.hstack(masks)].tobytes()


def test_rows_in_their_order_are_the_bytes_they_were() -> None:
    blocks, expected = blocks_and_rows(500, seed=5)
    payload = pgbinary.encode_rows(blocks)
    assert payload == reference_rows(blocks)
    assert rows_of(pgbinary.SIGNATURE + payload + pgbinary.TRAILER) == expected


@pytest.mark.parametrize("max_layouts", [pgbinary.MAX_LAYOUTS, 0])
def test_rows_by_layout_decode_to_their_values(monkeypatch, max_layouts: int) -> None:
    """One matrix per layout (the rows grouped by layout, in order within each), or, over
    MAX_LAYOUTS (0), the mask (the rows in their order): the same rows."""
    monkeypatch.setattr(pgbinary, "MAX_LAYOUTS", max_layouts)
    blocks, expected = blocks_and_rows(500, seed=3)
    got = rows_of(pgbinary.SIGNATURE + pgbinary.encode_rows(blocks, by_layout=True) + pgbinary.TRAILER)
    assert sorted(got, key=lambda row: row[0]) == expected
    if max_layouts == 0:
        assert got == expected
        return
    assert got != expected
    layouts = [(row[1] is None, len(row[2].encode()), row[3] is None) for row in got]
    for layout in set(layouts):  # each layout's rows together and in their order
        positions = [index for index, each in enumerate(layouts) if each == layout]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert [got[index][0] for index in positions] == sorted(got[index][0] for index in positions)


def test_no_rows() -> None:
    blocks = [
        pgbinary.encode_int(np.empty(0, dtype=np.int64), size=8),
        pgbinary.encode_bytes(np.array([], dtype=object)),
    ]
    for by_layout in (False, True):
        assert pgbinary.encode_rows(blocks, by_layout=by_layout) == b""


def test_rows_without_variable_columns_stay_in_order() -> None:
    ids = np.arange(50, dtype=np.int64)[::-1].copy()
    blocks = [pgbinary.encode_int(ids, size=8), pgbinary.encode_bool(ids % 2 == 0)]
    got = [
        tuple(decoded(f, k) for f, k in zip(row, ["int", "bool"], strict=True))
        for row in decode_copy(pgbinary.SIGNATURE + pgbinary.encode_rows(blocks) + pgbinary.TRAILER)
    ]
    assert got == [(int(i), bool(i % 2 == 0)) for i in ids]


KINDS = {
    "generation": "int",
    "as_of": "date",
    "client_id": "int",
    "segment": "text",
    "first_trade_on": "date",
    "last_trade_on": "date",
    "days_since_last_trade": "int",
    "trading_days": "int",
    "recent_trading_days": "int",
    "baseline_trading_days": "float",
    "typical_gap_days": "float",
    "overdue_ratio": "float",
    "trades_year": "int",
    "commission_year": "numeric",
    "commission": "numeric",
    "about_to_go_dormant": "bool",
    "regulatory_dormant": "bool",
    "cash": "numeric",
    "market_value": "numeric",
}


def activity_frame(rows: int, *, datetime64: bool) -> pd.DataFrame:
    """ClientActivity rows with NULLs in every nullable column, in many combinations."""
    rng = np.random.default_rng(11)
    days = rng.integers(19_000, 20_800, rows)
    first = days.astype("datetime64[D]")
    first_null = rng.random(rows) < 0.25
    frame = pd.DataFrame(
        {
            "generation": 7,
            "as_of": np.datetime64("2026-11-22", "D") if datetime64 else dt.date(2026, 11, 22),
            "client_id": np.arange(1, rows + 1, dtype=np.int64),
            "segment": np.array(["active", "potentially_active", "dormant", "closed"], dtype=object)[
                rng.integers(0, 4, rows)
            ],
            "first_trade_on": np.where(first_null, np.datetime64("NaT"), first),
            "last_trade_on": [None if null else day.item() for day, null in zip(first, first_null, strict=True)],
            "days_since_last_trade": pd.array(
                np.where(rng.random(rows) < 0.1, None, rng.integers(0, 900, rows)), dtype="Int64"
            ),
            "trading_days": rng.integers(0, 5000, rows),
            "recent_trading_days": rng.integers(0, 90, rows),
            "baseline_trading_days": np.where(rng.random(rows) < 0.3, np.nan, rng.random(rows) * 40).round(4),
            "typical_gap_days": np.where(rng.random(rows) < 0.3, np.nan, rng.random(rows) * 90).round(4),
            "overdue_ratio": np.where(rng.random(rows) < 0.3, np.nan, rng.random(rows) * 5).round(4),
            "trades_year": rng.integers(0, 400, rows),
            "commission_year": (rng.random(rows) * 10_000).round(2),
            "commission": np.where(rng.random(rows) < 0.5, 0.0, (rng.random(rows) * 1e8).round(2)),
            "about_to_go_dormant": rng.random(rows) < 0.2,
            "regulatory_dormant": rng.random(rows) < 0.1,
            "cash": np.where(rng.random(rows) < 0.2, np.nan, ((rng.random(rows) - 0.3) * 1e7).round(2)),
            "market_value": np.where(rng.random(rows) < 0.2, np.nan, (rng.random(rows) * 1e11).round(2)),
        }
    )
    frame.loc[frame.index[:3], "cash"] = [0.01, -0.01, -12_345_678_901.23]
    return frame


def expected_value(value, kind: str):
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if kind == "numeric":
        return Decimal(repr(float(value))).quantize(Decimal("0.01"))
    if kind == "date":
        return pd.Timestamp(value).date()
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    return value


@pytest.mark.postgres
@pytest.mark.parametrize("datetime64", [True, False])
def test_activity_rows_decode_to_the_frame(datetime64: bool) -> None:
    """Every field of every row, NULLs included, decoded from bulk._binary_payload."""
    assert is_postgres()
    frame = activity_frame(3_000, datetime64=datetime64)
    payload = bulk._binary_payload(ClientActivity, frame)
    kinds = list(KINDS.values())
    got = {
        row[2]: row
        for row in (
            [decoded(field, kind) for field, kind in zip(fields, kinds, strict=True)] for fields in decode_copy(payload)
        )
    }
    assert len(got) == len(frame)
    for record in frame.astype(object).to_dict("records"):
        assert got[record["client_id"]] == [expected_value(record[name], kind) for name, kind in KINDS.items()]


def stored(generation: int) -> list[tuple]:
    columns = ", ".join(name for name in KINDS if name != "generation")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM retention_clientactivity WHERE generation = %s ORDER BY client_id",  # noqa: S608
            [generation],
        )
        return cursor.fetchall()


@pytest.mark.postgres
@pytest.mark.django_db
def test_binary_copy_stores_what_the_csv_copy_stores() -> None:
    assert is_postgres()
    frame = activity_frame(2_000, datetime64=False)
    bulk._copy_frame(ClientActivity._meta.db_table, ClientActivity, frame.assign(generation=1))
    column_list = ", ".join(connection.ops.quote_name(column) for column in bulk._db_columns(ClientActivity, frame))
    bulk._copy_frame_csv(
        f"COPY {ClientActivity._meta.db_table} ({column_list}) FROM STDIN",
        ClientActivity,
        frame.assign(generation=2),
    )
    binary, csv = stored(1), stored(2)
    assert len(binary) == len(frame)
    assert binary == csv


def test_text_is_encoded_once_per_distinct_value_with_its_nulls() -> None:
    values = pd.Series(["active", None, "dormant", "active", "中文", None, "", 7], dtype=object)
    is_null = values.isna().to_numpy()
    payload = pgbinary.SIGNATURE + pgbinary.encode_rows([bulk._encode_text(values, is_null)]) + pgbinary.TRAILER
    assert [decoded(row[0], "text") for row in decode_copy(payload)] == [
        "active",
        None,
        "dormant",
        "active",
        "中文",
        None,
        "",
        "7",
    ]
