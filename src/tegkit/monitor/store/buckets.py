"""The buckets of a history query, and how readings and rollup rows fall into them.

A request names a range and perhaps a step; the store answers with its own buckets only:
a step of the ladder (5 s .. 12 h) or a whole number of days, never less than 5 s and
never more buckets than asked for. Steps under a day lie on a grid from the epoch, so the
rollup tables answer them exactly. Buckets of a day or more start at midnight of the day
that holds ``start``, in the time zone given (UTC by default): a local day across a DST
change is 23 or 25 hours long.

Times inside are integer milliseconds, so a bucket edge never drifts.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable
from itertools import pairwise
from typing import NamedTuple

from tegkit.models.vocabulary import POWER_NAMES
from tegkit.monitor.readings import HistoryPoint
from tegkit.monitor.store.rollups import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    MISSING,
    POWER_COLUMNS,
    QUARTER_MS,
    SOE,
    SOE_KEY_SCALE,
    TS,
    Columns,
    soe_from_key,
)

STEP_LADDER_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
#: the range history accepts: 0001-01-01T00:00:00Z .. 10000-01-01T00:00:00Z
MIN_TIME_S = -62_135_596_800.0
MAX_TIME_S = 253_402_300_800.0
MAX_POINTS_LIMIT = 100_000
#: rollup tables from the coarsest, with their bucket size
ROLLUP_SIZES_MS = (
    ("day", DAY_MS),
    ("hour", HOUR_MS),
    ("quarter", QUARTER_MS),
    ("minute", MINUTE_MS),
)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

#: one bucket's sums: (sum, count) for each power of POWER_NAMES, then the soe key
#: (time * SOE_KEY_SCALE + soe in 0.01 %: the largest is the last state of energy)
Sums = list[int]
SUMS_WIDTH = 2 * len(POWER_NAMES) + 1
# a point holds the mean of each power, in the same order, then the state of energy
if HistoryPoint.__struct_fields__ != ("t", *POWER_NAMES, "soe_raw_percent"):
    raise ImportError("HistoryPoint's fields must follow vocabulary.POWER_NAMES")


class BucketPlan(NamedTuple):
    """The buckets that answer a query: bucket k is ``[bounds_ms[k], bounds_ms[k + 1])``."""

    step_ms: int  # every bucket's length; for local days, their nominal length
    bounds_ms: list[int]
    uniform: bool  # every bucket is step_ms long, so SQL can group by division
    source: str  # "raw", "minute", "quarter", "hour" or "day"


def _check_time(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite time in epoch seconds, not {value!r}")
    if not MIN_TIME_S <= value <= MAX_TIME_S:
        raise ValueError(
            f"{name} must be between 0001-01-01 and 9999-12-31 "
            f"({MIN_TIME_S:.0f} .. {MAX_TIME_S:.0f} epoch seconds), not {value!r}"
        )


def plan(
    start: float,
    end: float,
    step_s: float | None,
    max_points: int,
    tz: dt.tzinfo | None = None,
) -> BucketPlan:
    """The store's buckets for ``start .. end``: the step asked for, snapped up to one of
    the store's, and coarser still if the range would need more than ``max_points``.

    Raises ValueError, naming the argument, for a time that is not finite or outside
    years 1 .. 9999, an end not after the start, a step that is not a positive finite
    number, or max_points outside 1 .. 100,000.
    """
    _check_time("start", start)
    _check_time("end", end)
    if end <= start:
        raise ValueError(f"end must be after start (start {start!r}, end {end!r})")
    if not (isinstance(max_points, int) and 1 <= max_points <= MAX_POINTS_LIMIT):
        raise ValueError(f"max_points must be a whole number 1 .. {MAX_POINTS_LIMIT}")
    if step_s is not None and not (
        isinstance(step_s, int | float) and math.isfinite(step_s) and step_s > 0
    ):
        raise ValueError(f"step_s must be a positive, finite number of seconds, not {step_s!r}")
    start_ms, end_ms = math.floor(start * 1000), math.ceil(end * 1000)
    wanted_s = STEP_LADDER_S[0] if step_s is None else step_s
    for ladder_s in STEP_LADDER_S:
        if ladder_s < wanted_s:
            continue
        step_ms = ladder_s * 1000
        origin = start_ms // step_ms * step_ms
        n = -(-(end_ms - origin) // step_ms)
        if n <= max_points:
            bounds = [origin + k * step_ms for k in range(n + 1)]
            return BucketPlan(step_ms, bounds, True, _source_for(origin, step_ms))
    # bounded before the division: a step of 1e300 s means one bucket, not 1e295 days
    wanted_days = max(1, math.ceil(min(wanted_s, MAX_TIME_S - MIN_TIME_S) / 86400))
    return _day_plan(start_ms, end_ms, wanted_days, max_points, tz)


def _source_for(origin_ms: int, step_ms: int) -> str:
    """The coarsest rollup whose buckets tile this grid; raw if none does."""
    for name, size in ROLLUP_SIZES_MS:
        if origin_ms % size == 0 and step_ms % size == 0:
            return name
    return "raw"


def _day_plan(
    start_ms: int, end_ms: int, wanted_days: int, max_points: int, tz: dt.tzinfo | None
) -> BucketPlan:
    """Buckets of whole (local) days from midnight of the day holding start."""
    try:
        first = _day_number(start_ms, tz)
        last = _day_number(end_ms - 1, tz)
        n_days = last - first + 1
        days = max(min(wanted_days, n_days), -(-n_days // max_points))
        n = -(-n_days // days)
        bounds = [_midnight_ms(first + k * days, tz) for k in range(n)]
    except (OverflowError, ValueError, OSError):
        raise ValueError(
            "start and end must lie at least a day inside years 1 .. 9999 to be split "
            f"into days of {tz}"
        ) from None
    try:
        bounds.append(_midnight_ms(first + n * days, tz))
    except (OverflowError, ValueError, OSError):
        bounds.append(max(end_ms, bounds[-1] + 1))  # past 9999-12-31: the range's end
    step_ms = days * DAY_MS
    uniform = all(b - a == step_ms for a, b in pairwise(bounds))
    source = _source_for(bounds[0], step_ms)
    if uniform and source != "raw":
        return BucketPlan(step_ms, bounds, True, source)
    # local days of 23 or 25 hours: the coarsest rollup whose buckets fit in them
    for name, size in ROLLUP_SIZES_MS[1:]:
        if all(b % size == 0 for b in bounds[:-1]):
            return BucketPlan(step_ms, bounds, False, name)
    # a zone off whole minutes (local mean time, before 1972 at the latest): to the minute,
    # never a scan of raw blocks across days
    return BucketPlan(step_ms, bounds, False, "minute")


def _day_number(t_ms: int, tz: dt.tzinfo | None) -> int:
    """Days since 1970-01-01 of the (local) date at t_ms."""
    if tz is None:
        return t_ms // DAY_MS
    local = dt.datetime.fromtimestamp(t_ms / 1000, tz)
    return local.date().toordinal() - _EPOCH_ORDINAL


def _midnight_ms(day: int, tz: dt.tzinfo | None) -> int:
    """The instant (ms) at which day number ``day`` starts in tz."""
    if tz is None:
        return day * DAY_MS
    date = dt.date.fromordinal(day + _EPOCH_ORDINAL)
    return round(dt.datetime.combine(date, dt.time(), tzinfo=tz).timestamp() * 1000)


def _new_sums() -> Sums:
    return [0] * (SUMS_WIDTH - 1) + [MISSING]


def bucket_readings(blocks: Iterable[Columns], p: BucketPlan) -> dict[int, Sums]:
    """Sums per bucket index of the raw readings in decoded hour blocks (in time order)."""
    bounds = p.bounds_ms
    lo, hi = bounds[0], bounds[-1]
    out: dict[int, Sums] = {}
    for cols in blocks:
        ts, soes = cols[TS], cols[SOE]
        powers = [(2 * n, cols[c]) for n, c in enumerate(POWER_COLUMNS)]
        i, j = bisect.bisect_left(ts, lo), bisect.bisect_left(ts, hi)
        for x in range(i, j):
            t = ts[x]
            k = (t - lo) // p.step_ms if p.uniform else bisect.bisect_right(bounds, t) - 1
            acc = out.get(k)
            if acc is None:
                acc = out[k] = _new_sums()
            for at, col in powers:
                v = col[x]
                if v != MISSING:
                    acc[at] += v
                    acc[at + 1] += 1
            if soes[x] != MISSING:  # readings come in time order: the last one wins
                acc[-1] = t * SOE_KEY_SCALE + soes[x]
    return out


def points(p: BucketPlan, sums: dict[int, Sums], start: float) -> list[HistoryPoint]:
    """One point per bucket, None where it holds no value. The first bucket may begin
    before ``start``; its point is placed at ``start``, so every point lies in the range."""
    out = []
    bounds = p.bounds_ms
    empty = (None,) * (len(POWER_NAMES) + 1)
    means = range(0, SUMS_WIDTH - 1, 2)
    for k in range(len(bounds) - 1):
        t = bounds[k] / 1000
        if t < start:
            t = start
        acc = sums.get(k)
        if acc is None:
            out.append(HistoryPoint(t, *empty))
            continue
        values: list[float | None] = [acc[x] / acc[x + 1] if acc[x + 1] else None for x in means]
        values.append(soe_from_key(acc[-1]))
        out.append(HistoryPoint(t, *values))
    return out
