"""Physical ranges a reading must fall in before the monitor believes and stores it.

A gateway (or whatever answers in its place) can send any number JSON can hold: 1e20 W,
NaN, a negative energy counter, a state of energy of 250 %. Such a value is not data: the
poller turns the whole reading into a gap with reason "implausible value: <field>" and
stores nothing of it, so one bad answer can neither crash the store (its columns are
64-bit integers) nor skew the rollups for months.

The bounds are generous on purpose: they reject what cannot be physical, not what is
merely unusual for one house.

- powers: within +-1 MW. A Powerwall site behind one gateway is a home or a small
  business: a 200 A service is 48 kW, so a megawatt is twenty times the largest of them.
- state of energy: 0 to 100 on the gateway's raw scale.
- energy counters: from 0 to 10 GWh (the store's own limit; two centuries of a home that
  imports 50 MWh a year, twenty years of a 48 kW service running flat out).
- reading time: the years 2000 to 2199; a host clock outside them is broken.
- grid status: a name of 1 to 64 letters, digits or underscores (it is stored as a code
  per distinct name, so an endless variety of names must not reach the store).

Every number must be finite. Missing values (None) are fine: missing is never zero, and
never implausible.
"""

from __future__ import annotations

import math
import re
from typing import Final

from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES
from tegkit.monitor.readings import Reading

POWER_MAX_W: Final = 1_000_000.0
SOE_RAW_PERCENT_RANGE: Final = (0.0, 100.0)
COUNTER_MAX_WH: Final = 1e10
TAKEN_AT_RANGE_S: Final = (946_684_800.0, 7_258_118_400.0)  # 2000-01-01 .. 2200-01-01 UTC
GRID_STATUS_PATTERN: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
#: free text the monitor keeps (mode, firmware version, site name) is at most this long.
TEXT_MAX_CHARS: Final = 100

#: field -> (low, high, unit) of every number a Reading carries.
BOUNDS: Final[dict[str, tuple[float, float, str]]] = {
    "taken_at": (*TAKEN_AT_RANGE_S, "s"),
    **{name: (-POWER_MAX_W, POWER_MAX_W, "W") for name in POWER_NAMES},
    "soe_raw_percent": (*SOE_RAW_PERCENT_RANGE, "raw %"),
    **{name: (0.0, COUNTER_MAX_WH, "Wh") for name in COUNTER_NAMES},
}


class Implausible(ValueError):
    """A value outside its physical range; `field` names it, `reason` is the gap's reason."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        super().__init__(f"implausible value: {field} = {shown}; allowed {allowed}")

    @property
    def reason(self) -> str:
        """Stable while the same field stays wrong, so one gap covers the whole spell."""
        return f"implausible value: {self.field}"


def in_range(value: float, low: float, high: float) -> bool:
    """True for a finite number within [low, high]."""
    return math.isfinite(value) and low <= value <= high


def check_reading(reading: Reading) -> None:
    """Raise `Implausible` for the first field of `reading` outside its range."""
    for name, (low, high, unit) in BOUNDS.items():
        value = getattr(reading, name)
        if value is None:
            continue
        if not in_range(value, low, high):
            raise Implausible(name, value, f"a finite number from {low:g} to {high:g} {unit}")
    status = reading.grid_status
    if status is not None and not GRID_STATUS_PATTERN.fullmatch(status):
        raise Implausible("grid_status", status, "1 to 64 letters, digits or underscores")


def number(value: float | None, low: float, high: float) -> float | None:
    """`value` when it is a finite number within [low, high], else None (not known)."""
    if value is None or not in_range(value, low, high):
        return None
    return value


def text(value: str | None) -> str | None:
    """`value` when it is printable text of at most TEXT_MAX_CHARS, else None."""
    if value is None or len(value) > TEXT_MAX_CHARS or not value.isprintable():
        return None
    return value


__all__ = [
    "BOUNDS",
    "COUNTER_MAX_WH",
    "POWER_MAX_W",
    "Implausible",
    "check_reading",
    "in_range",
    "number",
    "text",
]
