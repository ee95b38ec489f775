"""Pure storage logic shared by the backends: the column layout, blocks, rollups.

Everything the store keeps of a reading is laid out by name once, in ``BLOCK_COLUMNS``:
the field of :class:`Reading`, and the integer it is kept as (time in ms, powers in W,
state of energy in 0.01 %, grid status as a code, counters in mWh). Block encoding, the
rollups and the SQL find their columns there by name, never by a position of their own.

Full-resolution readings are stored per gateway in hour blocks: the columns of the
layout, each delta-encoded and the whole zlib-compressed, behind a format byte. A year of
5-second readings is then tens of megabytes where one row per reading costs hundreds.
A write of a few readings goes to a tail (a small block of its own beside its hour);
the tails are folded into the hour block every few minutes, so a poll never rewrites the
whole hour (see ``_sql``).
``BLOCK_LAYOUTS`` keeps every format ever written: a new field is a new format (and a
test fails until it is), so old blocks keep their meaning.

Rollups (minute, quarter hour, hour, day) hold per bucket: the count of readings, the sum
and count of each power (mean = sum / count, so a missing value never becomes zero), the
last state of energy, and the energy of each counter in mWh. The energy of a bucket is the
sum of the increases between consecutive readings whose later reading falls in the bucket,
so the buckets of any range add up exactly to the counter difference across it. A decrease
is a counter reset: the counter restarted from zero, so the increase is the new value.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate, pairwise
from typing import Any, NamedTuple

import msgspec

from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES
from tegkit.monitor.readings import Reading

MISSING = -(2**62)  # stands for None inside integer columns
BLOCK_MS = 3_600_000
MINUTE_MS = 60_000
QUARTER_MS = 900_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


class Column(NamedTuple):
    """A stored field of Reading: kept as round(value * scale); scale 0 is a text code."""

    name: str
    scale: int


#: block format 1, in stored order. Never edit a layout that has been written: add a new
#: format to BLOCK_LAYOUTS instead, and decode the old ones into the new. The field names
#: are spelled out, not taken from the vocabulary: blocks on disk keep this layout when a
#: meter or counter is added (that is a new format), so this is history, not vocabulary.
BLOCK_COLUMNS_V1 = (
    Column("taken_at", 1000),
    Column("site_w", 1),
    Column("battery_w", 1),
    Column("load_w", 1),
    Column("solar_w", 1),
    Column("soe_raw_percent", 100),
    Column("grid_status", 0),
    Column("site_imported_wh", 1000),
    Column("site_exported_wh", 1000),
    Column("battery_imported_wh", 1000),
    Column("battery_exported_wh", 1000),
    Column("load_imported_wh", 1000),
    Column("solar_exported_wh", 1000),
)
BLOCK_LAYOUTS = {1: BLOCK_COLUMNS_V1}
BLOCK_FORMAT = 1  # what encode_block writes
BLOCK_COLUMNS = BLOCK_LAYOUTS[BLOCK_FORMAT]
#: where each field sits in decoded columns
INDEX = {c.name: i for i, c in enumerate(BLOCK_COLUMNS)}
TS = INDEX["taken_at"]
SOE = INDEX["soe_raw_percent"]
GRID = INDEX["grid_status"]
POWER_COLUMNS = tuple(INDEX[name] for name in POWER_NAMES)
COUNTER_COLUMNS = tuple(INDEX[name] for name in COUNTER_NAMES)

Columns = list[list[int]]


def power_sum_columns(power: str) -> tuple[str, str]:
    """The rollup columns of a power: its sum and its count (``site_w`` -> ``site_sum``...)."""
    base = power.removesuffix("_w")
    return f"{base}_sum", f"{base}_n"


def energy_column(counter: str) -> str:
    """The rollup column of a counter's energy (``site_imported_wh`` -> ``..._mwh``)."""
    return counter.removesuffix("_wh") + "_mwh"


#: one rollup row after the (gateway_id, bucket_ms) key, in table order:
#: n, (sum, count) per power, soe_key, energy per counter in mWh. Taken from the vocabulary:
#: a meter or counter added there needs a migration adding its columns (migrations.py is
#: frozen SQL; tests/monitor/test_store_layout.py fails until the tables match).
ROLLUP_COLUMNS = (
    "n",
    *(c for power in POWER_NAMES for c in power_sum_columns(power)),
    "soe_key",
    *(energy_column(counter) for counter in COUNTER_NAMES),
)
RollupRow = list[int]
ROLLUP_WIDTH = len(ROLLUP_COLUMNS)
ROLLUP_SOE = ROLLUP_COLUMNS.index("soe_key")
#: soe_key = bucket_ms * SOE_KEY_SCALE + soe (0.01 %); its max over buckets is the last soe
SOE_KEY_SCALE = 100_000

#: what a stored value may be: its integer (ms, W, 0.01 %, mWh) fits the block's 64-bit
#: deltas next to MISSING, a day of rollup sums stays far inside 64 bits, the soe key's
#: arithmetic holds (0 <= soe < 1000 %), and times fit the soe key (1970 .. 3000).
#: These are the store's limits, far wider than physics: the poller judges plausibility.
STORABLE: dict[str, tuple[float, float]] = {
    "taken_at": (0.0, 32_503_680_000.0),
    **dict.fromkeys(POWER_NAMES, (-1e9, 1e9)),
    "soe_raw_percent": (0.0, 999.99),
    **dict.fromkeys(COUNTER_NAMES, (-1e10, 1e10)),
}


def unstorable_field(reading: Reading) -> str | None:
    """The first field of a reading the store cannot keep (not finite, out of range), or None."""
    if not isinstance(reading.grid_status, str | None):
        return "grid_status"
    for name, (lo, hi) in STORABLE.items():
        v = getattr(reading, name)
        if v is None and name != "taken_at":
            continue
        if not (isinstance(v, int | float) and lo <= v <= hi):  # NaN fails both comparisons
            return name
    return None


#: a batch's values per Reading field name
Fields = dict[str, tuple[Any, ...]]


def by_field(readings: Sequence[Reading]) -> Fields:
    """The readings' values per field name (one C-speed transpose, not a getattr each)."""
    rows = [msgspec.structs.astuple(r) for r in readings]
    names = Reading.__struct_fields__
    if not rows:
        return {name: () for name in names}
    return dict(zip(names, zip(*rows, strict=True), strict=True))


#: STORABLE in the integers of BLOCK_COLUMNS: (column index, lowest, highest)
_INT_LIMITS = [
    (INDEX[name], round(lo * BLOCK_COLUMNS[INDEX[name]].scale),
     round(hi * BLOCK_COLUMNS[INDEX[name]].scale))
    for name, (lo, hi) in STORABLE.items()
]  # fmt: skip


def columns_in_range(cols: Columns) -> bool:
    """Whether every value of the columns is within STORABLE (C-speed min and max)."""
    for i, lo, hi in _INT_LIMITS:
        col = cols[i]
        if not col:
            continue
        if max(col) > hi:
            return False
        low = min(col)
        if low == MISSING and i != TS:  # a missing value is stored as such; a time is not
            low = min((v for v in col if v != MISSING), default=lo)
        if low < lo:
            return False
    return True


def storable(readings: Sequence[Reading]) -> tuple[list[Reading], list[tuple[Reading, str]]]:
    """The readings the store can keep, and the others with the first field it cannot."""
    kept: list[Reading] = []
    dropped: list[tuple[Reading, str]] = []
    for r in readings:
        bad = unstorable_field(r)
        if bad is None:
            kept.append(r)
        else:
            dropped.append((r, bad))
    return kept, dropped


def columns_from_fields(fields: Fields, status_code: dict[str, int]) -> Columns:
    """Columns of integers, laid out as BLOCK_COLUMNS, from readings' fields (one gateway,
    sorted by time). ``status_code`` maps grid_status text to a code; every text must be
    in it."""
    out: Columns = []
    for col in BLOCK_COLUMNS:
        values = fields[col.name]
        if col.scale == 0:
            out.append([MISSING if v is None else status_code[v] for v in values])
        elif col.scale == 1:
            out.append([MISSING if v is None else round(v) for v in values])
        else:
            out.append([MISSING if v is None else round(v * col.scale) for v in values])
    return out


def columns_from_readings(readings: Sequence[Reading], status_code: dict[str, int]) -> Columns:
    """Columns of integers, laid out as BLOCK_COLUMNS, for readings of one gateway sorted
    by time (see :func:`columns_from_fields`)."""
    return columns_from_fields(by_field(readings), status_code)


def readings_from_columns(
    gateway: str, cols: Columns, status_text: dict[int, str]
) -> list[Reading]:
    """The readings held in decoded columns."""
    names = [c.name for c in BLOCK_COLUMNS]
    scales = [c.scale for c in BLOCK_COLUMNS]
    out = []
    for row in zip(*cols, strict=True):
        fields: dict[str, object] = {}
        for name, scale, v in zip(names, scales, row, strict=True):
            if v == MISSING:
                fields[name] = None
            elif scale == 0:
                fields[name] = status_text[v]
            else:
                fields[name] = v / scale
        out.append(Reading(gateway=gateway, **fields))  # type: ignore[arg-type]
    return out


def encode_block(cols: Columns) -> bytes:
    """Delta-encode and compress the columns of one block (format BLOCK_FORMAT)."""
    if len(cols) != len(BLOCK_COLUMNS):
        raise ValueError(f"a block has {len(BLOCK_COLUMNS)} columns, not {len(cols)}")
    n = len(cols[0])
    if n == 1:  # a poll's reading (a tail): no deltas to take
        buf = array("q", [col[0] for col in cols])
    else:
        buf = array("q")
        for col in cols:
            buf.append(col[0])
            buf.extend([b - a for a, b in pairwise(col)])
    return bytes([BLOCK_FORMAT]) + n.to_bytes(4, "little") + zlib.compress(buf.tobytes(), 1)


def decode_block(data: bytes) -> Columns:
    """The columns of a block made by :func:`encode_block`, laid out as BLOCK_COLUMNS."""
    layout = BLOCK_LAYOUTS.get(data[0])
    if layout is None:
        raise ValueError(f"unknown block format {data[0]} (this version reads {BLOCK_FORMAT})")
    n = int.from_bytes(data[1:5], "little")
    buf = array("q")
    buf.frombytes(zlib.decompress(data[5:]))
    if len(buf) != n * len(layout):
        raise ValueError(f"a block of format {data[0]} with {len(buf)} values for {n} readings")
    return [list(accumulate(buf[i * n : (i + 1) * n])) for i in range(len(layout))]


def sort_columns(cols: Columns) -> Columns:
    """The columns in time order (a batch usually is already; ties keep their order)."""
    ts = cols[TS]
    if ts == sorted(ts):
        return cols
    order = sorted(range(len(ts)), key=ts.__getitem__)
    return [[col[i] for i in order] for col in cols]


def merge_columns(old: Columns, new: Columns) -> Columns:
    """Readings of both, sorted by time; a new reading replaces an old one at the same ms."""
    if not old[TS]:
        return new
    if new[TS] and new[TS][0] > old[TS][-1]:
        return [a + b for a, b in zip(old, new, strict=True)]
    by_ts = {row[TS]: row for row in zip(*old, strict=True)}
    by_ts.update({row[TS]: row for row in zip(*new, strict=True)})
    rows = [by_ts[t] for t in sorted(by_ts)]
    return [list(c) for c in zip(*rows, strict=True)]


def merge_parts(parts: Iterable[Columns]) -> Columns:
    """The readings of blocks written one after another (an hour block, then its tails),
    sorted by time; a later part's reading replaces an earlier one at the same ms."""
    merged: Columns = [[] for _ in BLOCK_COLUMNS]
    for part in parts:
        if not part[TS]:
            continue
        if not merged[TS] or part[TS][0] > merged[TS][-1]:
            for col, values in zip(merged, part, strict=True):
                col.extend(values)  # the usual case: each part follows the last
        else:
            merged = merge_columns(merged, part)
    return merged


def slice_columns(cols: Columns, i: int, j: int) -> Columns:
    return [c[i:j] for c in cols]


def split_by(ts: list[int], size_ms: int) -> list[tuple[int, int, int]]:
    """(bucket_ms, i, j) for runs of sorted times that fall in the same bucket."""
    if not ts:
        return []
    out = []
    i = 0
    key = ts[0] // size_ms
    for k, t in enumerate(ts):
        if t // size_ms != key:
            out.append((key * size_ms, i, k))
            i, key = k, t // size_ms
    out.append((key * size_ms, i, len(ts)))
    return out


def _increases(col: list[int], prev: int) -> tuple[list[int], int]:
    """Per-reading counter increases (mWh) after ``prev``; resets count from zero."""
    out = []
    for v in col:
        if v == MISSING:
            out.append(0)
            continue
        if prev == MISSING:
            out.append(0)  # the first value we ever see: nothing flowed yet that we know of
        elif v >= prev:
            out.append(v - prev)
        else:
            out.append(v)
        prev = v
    return out, prev


def minute_rollups(cols: Columns, prev: list[int]) -> tuple[dict[int, RollupRow], list[int]]:
    """Minute rollup rows for in-order columns of one gateway, and the new last counters.

    ``prev`` holds the last counter value (mWh or MISSING) of each of the six counters.
    """
    ts = cols[TS]
    segments = split_by(ts, MINUTE_MS)
    energy_parts: list[list[int]] = []
    new_prev = []
    for c, p in zip(COUNTER_COLUMNS, prev, strict=True):
        col = cols[c]
        if p != MISSING and MISSING not in col and col == sorted(col) and col[:1] >= [p]:
            # fast path: counters only grew, so each minute is a difference of two values
            bounds = [p, *col]
            energy_parts.append([bounds[j] - bounds[i] for _, i, j in segments])
            new_prev.append(col[-1] if col else p)
        else:
            inc, last = _increases(col, p)
            energy_parts.append([sum(inc[i:j]) for _, i, j in segments])
            new_prev.append(last)
    rows: dict[int, RollupRow] = {}
    for k, (bucket, i, j) in enumerate(segments):
        row: RollupRow = [j - i]
        for c in POWER_COLUMNS:
            seg = cols[c][i:j]
            if MISSING in seg:
                seg = [v for v in seg if v != MISSING]
            row += (sum(seg), len(seg))
        soe = MISSING
        for v in reversed(cols[SOE][i:j]):
            if v != MISSING:
                soe = v
                break
        row.append(MISSING if soe == MISSING else bucket * SOE_KEY_SCALE + soe)
        row += [part[k] for part in energy_parts]
        rows[bucket] = row
    return rows, new_prev


def coarsen(rows: dict[int, RollupRow], size_ms: int) -> dict[int, RollupRow]:
    """Merge finer rollup rows into buckets of ``size_ms``."""
    out: dict[int, RollupRow] = {}
    for bucket in sorted(rows):
        row = rows[bucket]
        key = bucket // size_ms * size_ms
        acc = out.get(key)
        if acc is None:
            out[key] = list(row)
            continue
        for x in range(ROLLUP_WIDTH):
            if x == ROLLUP_SOE:
                if row[x] != MISSING:
                    acc[x] = row[x]
            else:
                acc[x] += row[x]
    return out


def soe_from_key(key: int | None) -> float | None:
    """The state of energy (raw percent) a soe key holds; None for a bucket without one."""
    if key is None or key == MISSING:
        return None
    return (key % SOE_KEY_SCALE) / 100
