"""Encode numpy columns as PostgreSQL binary COPY data, without a Python loop per row.

Each column becomes a ``(rows, width)`` byte matrix holding its 4-byte length prefix and
its value; a row is the 2-byte field count followed by its columns. Variable-length
columns (text, NULLs) are padded to the widest value in the chunk; the rows are then
written one matrix per layout (the widths their variable columns use), or, for many
layouts, the padding is cut out with one boolean mask over the whole chunk, so a chunk of
a million rows is a handful of numpy operations.

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
    """`scaled`: int64 values in units of 10**-scale (cents for scale 2).

    The header and the base-10000 digits are fields of one record per row, written in place
    (no concatenation of a header matrix and a digit matrix afterwards)."""
    frac_groups = -(-scale // 4)
    magnitude = np.abs(scaled.astype(np.int64)) * 10 ** (4 * frac_groups - scale)
    largest = int(magnitude.max(initial=0))
    if largest >= 2**62:
        raise ValueError(f"numeric value too large for the fixed-width encoder: {largest}")
    int_groups = max(1, -(-len(str(largest // 10 ** (4 * frac_groups))) // 4))
    ndigits = int_groups + frac_groups
    out = np.empty(
        len(scaled),
        dtype=[
            ("len", ">i4"),
            ("ndigits", ">i2"),
            ("weight", ">i2"),
            ("sign", ">u2"),
            ("dscale", ">i2"),
            ("digits", ">i2", (ndigits,)),
        ],
    )
    out["len"] = 8 + 2 * ndigits
    out["ndigits"] = ndigits
    out["weight"] = int_groups - 1
    out["sign"] = np.where(scaled < 0, _NUMERIC_NEG, 0)
    out["dscale"] = scale
    powers = 10_000 ** np.arange(ndigits - 1, -1, -1, dtype=np.int64)
    out["digits"] = (magnitude[:, None] // powers[None, :]) % 10_000
    matrix = out.view(np.uint8).reshape(len(scaled), 12 + 2 * ndigits)
    if is_null is None or not is_null.any():
        return matrix, None
    out["len"][is_null] = -1
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


MAX_LAYOUTS = 64  # layouts encode_rows(by_layout=True) writes one by one; more (free text ...): the mask


def encode_rows(blocks: list[Block], *, by_layout: bool = False) -> bytes:
    """The rows (without signature or trailer) of a chunk whose columns are `blocks`, in their
    order: every row padded to the widest in one matrix, the padding (NULLs, shorter text) cut
    out with one boolean mask.

    `by_layout`: the rows may come out grouped by layout (the widths their variable columns
    use: NULLs, text lengths), each group, in order, written as a matrix straight into the
    output: no mask. For writers whose row order does not matter (bulk._binary_payload, which
    grouped its rows by NULL pattern before); the demo seeder, say, keeps its rows in id
    order. A 50,000-row chunk of the dormancy stage (ClientActivity, 16 layouts) encodes in
    ~45 ms this way against ~55 ms with the mask; more than MAX_LAYOUTS layouts: the mask."""
    rows = len(blocks[0][0])
    if not rows:
        return b""
    count = np.frombuffer(len(blocks).to_bytes(2, "big"), dtype=np.uint8)
    widths = [block.shape[1] for block, _ in blocks]
    if all(used is None for _, used in blocks):  # one layout
        matrix = np.empty((rows, 2 + sum(widths)), dtype=np.uint8)
        matrix[:, :2] = count
        _fill(matrix, blocks, widths, slice(None))
        return matrix.tobytes()
    if not by_layout:
        return _masked_rows(blocks, count)
    layout = np.zeros(rows, dtype=np.int64)
    radix = 1
    for (_, used), width in zip(blocks, widths, strict=True):
        if used is None:
            continue
        if radix * (width + 1) >= 2**62:
            return _masked_rows(blocks, count)
        layout += used.astype(np.int64) * radix
        radix *= width + 1
    order = np.argsort(layout, kind="stable")
    layout = layout[order]
    starts = np.flatnonzero(np.concatenate([[True], layout[1:] != layout[:-1]]))
    if len(starts) > MAX_LAYOUTS:
        return _masked_rows(blocks, count)
    ends = np.append(starts[1:], rows)
    ordered = [(_take_rows(block, order), None if used is None else used[order]) for block, used in blocks]
    group_widths = [
        [width if used is None else int(used[start]) for (_, used), width in zip(ordered, widths, strict=True)]
        for start in starts
    ]
    sizes = [(end - start) * (2 + sum(used)) for start, end, used in zip(starts, ends, group_widths, strict=True)]
    out = np.empty(sum(sizes), dtype=np.uint8)
    offset = 0
    for start, end, used, size in zip(starts, ends, group_widths, sizes, strict=True):
        matrix = out[offset : offset + size].reshape(end - start, -1)
        matrix[:, :2] = count
        _fill(matrix, ordered, used, slice(start, end))
        offset += size
    return out.tobytes()


def _take_rows(block: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The block's rows in `order`, each row moved as one item (fancy-indexing rows of a few bytes
    copies them byte by byte: ~2x slower); a broadcast block (NULLs) as it is."""
    if block.strides[0] == 0:
        return block
    width = block.shape[1]
    return np.ascontiguousarray(block).view(f"V{width}")[:, 0][order].view(np.uint8).reshape(len(order), width)


def _fill(matrix: np.ndarray, blocks: list[Block], widths: list[int], rows: slice) -> None:
    """Write the first `widths` bytes of each block's `rows` side by side after the field count."""
    offset = 2
    for (block, _), width in zip(blocks, widths, strict=True):
        matrix[:, offset : offset + width] = block[rows, :width]
        offset += width


def _masked_rows(blocks: list[Block], count: np.ndarray) -> bytes:
    """The rows in their order, the padding cut out of one matrix with one boolean mask (set
    column by column only where a column's width varies)."""
    rows = len(blocks[0][0])
    widths = [block.shape[1] for block, _ in blocks]
    matrix = np.empty((rows, 2 + sum(widths)), dtype=np.uint8)
    matrix[:, :2] = count
    _fill(matrix, blocks, widths, slice(None))
    keep = np.ones(matrix.shape, dtype=bool)
    offset = 2
    for (_, used), width in zip(blocks, widths, strict=True):
        if used is not None:
            keep[:, offset : offset + width] = np.arange(width)[None, :] < used[:, None]
        offset += width
    return matrix[keep].tobytes()
