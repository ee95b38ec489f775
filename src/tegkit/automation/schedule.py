"""When a plan's timed rules fire: local clock times and tariff periods turned into instants.

Pure and deterministic: the same plan, zone and range always give the same list. A rule's
local time is read in the site's zone, so daylight saving time follows the owner's clock:

- a time that does not exist (spring forward: 02:30 when 02:00 jumps to 03:00) fires once,
  at the first instant after the gap (03:00);
- a time that exists twice (fall back) fires once, at its first occurrence.

Both hold for any shift (Lord Howe Island moves by 30 minutes) and for zones without DST.
Tariff triggers fire where their condition turns true: a period that runs on past
midnight does not start again at 00:00.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from typing import Final
from zoneinfo import ZoneInfo

from tegkit.automation.plan import (
    AtTime,
    Plan,
    Rule,
    Setpoints,
    Trigger,
    WhenPriceAbove,
    WhenTariffPeriod,
)
from tegkit.errors import InvalidInputError
from tegkit.tariff import Price, Tariff

#: the longest range `occurrences` accepts (a year of simulation, with room to spare)
MAX_RANGE: Final = timedelta(days=400)
#: how far back `in_force` looks for the rule that last set each setting
LOOKBACK: Final = timedelta(days=8)

_ONE_DAY: Final = timedelta(days=1)
_TICK: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One firing of a timed rule."""

    at_utc: datetime
    rule: Rule


def occurrences(
    plan: Plan, tz: ZoneInfo, start_utc: datetime, end_utc: datetime
) -> list[Occurrence]:
    """Every firing of the plan's timed rules in [start_utc, end_utc), sorted by time, then
    by the rules' order in the plan. Rules fire only on their days (local dates in `tz`)."""
    if not _check_range(start_utc, end_utc):
        return []
    found = [
        (at, index, rule)
        for index, rule in enumerate(plan.rules)
        for at in _firings(rule, plan.tariff, tz, start_utc, end_utc)
    ]
    found.sort(key=lambda item: item[:2])
    return [Occurrence(at, rule) for at, _, rule in found]


def in_force(plan: Plan, tz: ZoneInfo, at_utc: datetime) -> Setpoints:
    """Per setting, the value the latest timed rule at or before `at_utc` gave it, looking
    back `LOOKBACK`; None where no rule set it in that time."""
    fired = occurrences(plan, tz, at_utc - LOOKBACK, at_utc + _TICK)
    return reduce(lambda held, o: held.then(o.rule.setpoints), fired, Setpoints())


def local_instant(day: date, minute_of_day: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local clock time on a local date: its first occurrence when it
    exists twice, the first instant after the gap when it does not exist."""
    wall = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tzinfo=tz)
    # PEP 495: fold=0 reads a wall time with the offset before a transition, fold=1 after.
    before, after = wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
    if before <= after:  # the time exists (once, or twice and `before` is the first)
        return before
    # In a gap: the transition lies in (after, before]; find it to the second (whole-second
    # instants, so it is exact: every transition of the tz database falls on one).
    offset = wall.utcoffset()
    low, high = int(after.timestamp()), int(before.timestamp())  # old offset at low, new at high
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def tariff_starts(
    tariff: Tariff,
    tz: ZoneInfo,
    when: Callable[[Price], bool],
    start_utc: datetime,
    end_utc: datetime,
) -> list[datetime]:
    """The instants in [start_utc, end_utc) at which `when(price)` turns true: the start of
    each span where it holds when the span before (across midnight too) did not. Clock times
    are read in the tariff's own zone when it has one, else in `tz`."""
    if not _check_range(start_utc, end_utc):
        return []
    zone = ZoneInfo(tariff.timezone) if tariff.timezone else tz
    days = _local_days(zone, start_utc, end_utc)
    held = when(tariff.schedule_for(days[0] - _ONE_DAY)[-1].price)
    starts = []
    for day in days:
        for span in tariff.schedule_for(day):
            holds = when(span.price)
            if holds and not held:
                at = local_instant(day, span.start_minute, zone)
                if start_utc <= at < end_utc:
                    starts.append(at)
            held = holds
    return starts


def _firings(
    rule: Rule, tariff: Tariff | None, tz: ZoneInfo, start_utc: datetime, end_utc: datetime
) -> list[datetime]:
    trigger = rule.trigger
    if isinstance(trigger, AtTime):
        days = [day for day in _local_days(tz, start_utc, end_utc) if rule.days.includes(day)]
        # dict: a day skipped whole (Samoa, 30 December 2011) lands on the next day's firing
        instants = dict.fromkeys(local_instant(day, trigger.minute_of_day, tz) for day in days)
        return [at for at in instants if start_utc <= at < end_utc]
    awaited = _awaited_price(trigger)
    if awaited is None or tariff is None:
        return []  # a condition: the engine watches readings; no tariff: planfile refuses it
    starts = tariff_starts(tariff, tz, awaited, start_utc, end_utc)
    return [at for at in starts if rule.days.includes(at.astimezone(tz).date())]


def _awaited_price(trigger: Trigger) -> Callable[[Price], bool] | None:
    """What a tariff trigger waits for in the price; None for the other triggers."""
    if isinstance(trigger, WhenTariffPeriod):
        period = trigger.period
        return lambda price: price.period_name == period
    if isinstance(trigger, WhenPriceAbove):
        threshold = trigger.buy_per_kwh
        return lambda price: price.buy_per_kwh > threshold
    return None


def _local_days(tz: ZoneInfo, start_utc: datetime, end_utc: datetime) -> list[date]:
    # One day before the start: a time in a gap just before midnight may land after it.
    first = start_utc.astimezone(tz).date() - _ONE_DAY
    count = (end_utc.astimezone(tz).date() - first).days + 1
    return [first + timedelta(days=n) for n in range(count)]


def _check_range(start_utc: datetime, end_utc: datetime) -> bool:
    """Whether the range holds anything; a naive or too long range is refused."""
    for name, value in (("start_utc", start_utc), ("end_utc", end_utc)):
        if value.tzinfo is None:
            raise InvalidInputError(name, "an aware datetime (with a time zone)", value)
    if end_utc - start_utc > MAX_RANGE:
        raise InvalidInputError(
            "end_utc", f"at most {MAX_RANGE.days} days after start_utc", end_utc - start_utc
        )
    return start_utc < end_utc


__all__ = [
    "LOOKBACK",
    "MAX_RANGE",
    "Occurrence",
    "in_force",
    "local_instant",
    "occurrences",
    "tariff_starts",
]
