"""Encode numpy columns as PostgreSQL binary COPY data, without a Python loop per row.

Each column becomes a ``(rows, width)`` byte matrix holding its 4-byte length prefix and
its value; a row is the 2-byte field count followed by its columns. Variable-length
columns (text, NULLs) are padded to the widest value in the chunk and the padding is
cut out with one boolean mask over the whole chunk, so a chunk of a million rows is a
handful of numpy operations.

Formats follow PostgreSQL's ``*_send``/``*_recv`` functions: integers big-endian,
``timestamptz`` as microseconds since 2000-01-01 UTC, ``date`` as days since
2000-01-01, ``jsonb`` as a version byte and the JSON text, ``numeric`` as base-10000
digits. Numerics are written with a fixed number of digits per chunk; the server strips
leading and trailing zero digits when it stores the value (``make_result``).
"""

from __future__ import annotations

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_NUMERIC_NEG = 0x4000

Block = tuple[np.ndarray, np.ndarray | None]
"""A column's bytes (rows x width, uint8) and each row's used width (None: all used)."""


def _fixed(values: np.ndarray, dtype: str, is_null: np.ndarray | None) -> Block:
    size = np.dtype(dtype).itemsize
    out = np.empty(len(values), dtype=[("len", ">i4"), ("value", dtype)])
    out["len"] = size
    out["value"] = values
    matrix = out.view(np.uint8).reshape(len(values), 4 + size)
    if is_null is None or not is_null.any():
        return matrix, None
    out["len"][is_null] = -1
    return matrix, np.where(is_null, 4, 4 + size)


def encode_int(values: np.ndarray, *, size: int, is_null: np.ndarray | None = None) -> Block:
    return _fixed(values, {2: ">i2", 4: ">i4", 8: ">i8"}[size], is_null)


def encode_bool(values: np.ndarray, *, is_null: np.ndarray | None = None) -> Block:
    return _fixed(values.astype(np.uint8), "u1", is_null)


def encode_timestamp(values: np.ndarray, *, is_null: np.ndarray | None = None) -> Block:
    """`values`: datetime64 in UTC."""
    micros = values.astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
    return _fixed(micros, ">i8", is_null)


def encode_date(values: np.ndarray, *, is_null: np.ndarray | None = None) -> Block:
    days = values.astype("datetime64[D]").astype(np.int64) - _PG_EPOCH_DAYS
    return _fixed(days, ">i4", is_null)


def encode_numeric(scaled: np.ndarray, *, scale: int, is_null: np.ndarray | None = None) -> Block:
    """`scaled`: int64 values in units of 10**-scale (cents for scale 2)."""
    frac_groups = -(-scale // 4)
    magnitude = np.abs(scaled.astype(np.int64)) * 10 ** (4 * frac_groups - scale)
    largest = int(magnitude.max(initial=0))
    if largest >= 2**62:
        raise ValueError(f"numeric value too large for the fixed-width encoder: {largest}")
    int_groups = max(1, -(-len(str(largest // 10 ** (4 * frac_groups))) // 4))
    ndigits = int_groups + frac_groups
    header = np.empty(
        len(scaled), dtype=[("len", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">u2"), ("dscale", ">i2")]
    )
    header["len"] = 8 + 2 * ndigits
    header["ndigits"] = ndigits
    header["weight"] = int_groups - 1
    header["sign"] = np.where(scaled < 0, _NUMERIC_NEG, 0)
    header["dscale"] = scale
    powers = 10_000 ** np.arange(ndigits - 1, -1, -1, dtype=np.int64)
    digits = ((magnitude[:, None] // powers[None, :]) % 10_000).astype(">i2")
    matrix = np.hstack([header.view(np.uint8).reshape(len(scaled), 12), digits.view(np.uint8).reshape(len(scaled), -1)])
    if is_null is None or not is_null.any():
        return matrix, None
    matrix[is_null, :4] = np.frombuffer((-1).to_bytes(4, "big", signed=True), dtype=np.uint8)
    return matrix, np.where(is_null, 4, 12 + 2 * ndigits)


def encode_bytes(values: np.ndarray, *, prefix: bytes = b"", is_null: np.ndarray | None = None) -> Block:
    """`values`: an ``S`` (bytes) array, or strings that are UTF-8 encoded here.

    `prefix` goes before every value (jsonb's version byte).
    """
    if values.dtype.kind != "S":
        values = np.strings.encode(values.astype(np.dtypes.StringDType()), "utf-8")
    width = max(values.dtype.itemsize, 1)
    lengths = np.strings.str_len(values).astype(np.int64) + len(prefix)
    rows = len(values)
    size_prefix = np.empty(rows, dtype=">i4")
    size_prefix[:] = lengths
    if is_null is not None:
        size_prefix[is_null] = -1
        lengths = np.where(is_null, 0, lengths)
    parts = [size_prefix.view(np.uint8).reshape(rows, 4)]
    if prefix:
        parts.append(np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (rows, len(prefix))))
    parts.append(np.ascontiguousarray(values).view(np.uint8).reshape(rows, values.dtype.itemsize or 1)[:, :width])
    return np.hstack(parts), 4 + lengths


def encode_rows(blocks: list[Block]) -> bytes:
    """The rows (without signature or trailer) of a chunk whose columns are `blocks`."""
    rows = len(blocks[0][0])
    count = np.empty(rows, dtype=">i2")
    count[:] = len(blocks)
    matrix = np.hstack([count.view(np.uint8).reshape(rows, 2)] + [block for block, _ in blocks])
    if all(used is None for _, used in blocks):
        return matrix.tobytes()
    masks = [np.ones((rows, 2), dtype=bool)]
    for block, used in blocks:
        width = block.shape[1]
        if used is None:
            masks.append(np.ones((rows, width), dtype=bool))
        else:
            masks.append(np.arange(width)[None, :] < used[:, None])
    return matrix[np.hstack(masks)].tobytes()
