"""What Tesla's cloud remembers of a simulated site: outages and energy per local day.

`CloudHistory` watches the physics (it is the site's `StepObserver`): each sub-step has
constant powers, so the energy of every flow is exact, and a sub-step that crosses a local
midnight is split there. Each step's meters are split into flows the way the app draws them:
solar serves the home first, then charges the battery, and the rest is exported; a discharging
battery serves what solar leaves of the home, and the rest is exported; the grid supplies what
is left. So, over any range, grid imported = the site meter's imported counter, exported from
solar + from battery = its exported counter, the battery's and the home's flows sum to their
counters, and solar_energy_exported is the solar counter.

Memory is bounded: at most `MAX_DAYS` days (the oldest go first) and `MAX_OUTAGES` outages.
History starts when the recorder is attached; days before are absent, never zero. A day's
bucket holds the whole local day as recorded (answers are not cut at `end` inside a day).

Answer shapes follow Tesla's `calendar_history`: kind=energy answers
{serial_number, period, installation_time_zone, time_series: [{timestamp, <energy fields>}]}
with Wh values and timestamps at the local start of each bucket; kind=backup and
`backup_history` answer {events: [{timestamp, duration}], total_events} with the duration in
milliseconds, as the values Tesla answers are. An outage runs from islanding until the site is
connected again (the resynchronisation included); one still running is not listed yet.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any, Final
from zoneinfo import ZoneInfo

from tegkit.errors import InvalidInputError

MAX_DAYS: Final = 400
MAX_OUTAGES: Final = 1000
KINDS: Final = ("energy", "backup")
PERIODS: Final = ("day", "week", "month", "year")

# The flows kept per day, in this order (Tesla's field names).
FLOW_FIELDS: Final = (
    "solar_energy_exported",
    "grid_energy_imported",
    "grid_energy_exported_from_solar",
    "grid_energy_exported_from_battery",
    "battery_energy_exported",
    "battery_energy_imported_from_grid",
    "battery_energy_imported_from_solar",
    "consumer_energy_imported_from_grid",
    "consumer_energy_imported_from_solar",
    "consumer_energy_imported_from_battery",
)
# Fields Tesla also sends that this site has nothing behind (no generator, no grid services):
# truly zero, not missing.
ZERO_FIELDS: Final = (
    "generator_energy_exported",
    "grid_services_energy_imported",
    "grid_services_energy_exported",
    "grid_energy_exported_from_generator",
    "battery_energy_imported_from_generator",
    "consumer_energy_imported_from_generator",
)


def split_flows(
    solar_w: float, load_w: float, battery_w: float
) -> tuple[float, float, float, float, float, float, float, float, float, float]:
    """The power of each flow, W, in FLOW_FIELDS order (load = site + battery + solar)."""
    solar_to_load = min(solar_w, load_w)
    solar_left = solar_w - solar_to_load
    if battery_w >= 0.0:
        battery_to_load = min(battery_w, load_w - solar_to_load)
        battery_to_grid = battery_w - battery_to_load
        solar_to_battery = grid_to_battery = 0.0
        solar_to_grid = solar_left
    else:
        charge = -battery_w
        solar_to_battery = min(solar_left, charge)
        grid_to_battery = charge - solar_to_battery
        solar_to_grid = solar_left - solar_to_battery
        battery_to_load = battery_to_grid = 0.0
    grid_to_load = load_w - solar_to_load - battery_to_load
    return (
        solar_w,
        grid_to_load + grid_to_battery,
        solar_to_grid,
        battery_to_grid,
        battery_to_load + battery_to_grid,
        grid_to_battery,
        solar_to_battery,
        grid_to_load,
        solar_to_load,
        battery_to_load,
    )


class CloudHistory:
    """Outages and daily energy of one site, recorded from its physics; see the module doc."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._days: dict[dt.date, list[float]] = {}  # local day -> Wh per FLOW_FIELDS
        self._outages: deque[tuple[float, float]] = deque(maxlen=MAX_OUTAGES)  # start, s
        self._outage_start_s: float | None = None
        self._day: dt.date | None = None
        self._day_start_s = self._day_end_s = 0.0
        self._current: list[float] = []  # the bucket of self._day

    # --- recording (StepObserver) -------------------------------------------------------------

    def record_step(
        self,
        start_s: float,
        dt_s: float,
        solar_w: float,
        load_w: float,
        battery_w: float,
        site_w: float,
        off_grid: bool,
    ) -> None:
        """Add one sub-step of constant powers (site_w is implied by the other three)."""
        if off_grid and self._outage_start_s is None:
            self._outage_start_s = start_s
        elif not off_grid and self._outage_start_s is not None:
            self._outages.append((self._outage_start_s, start_s - self._outage_start_s))
            self._outage_start_s = None
        flows = split_flows(solar_w, load_w, battery_w)
        t, end_s = start_s, start_s + dt_s
        while end_s - t > 1e-9:
            if not self._day_start_s <= t < self._day_end_s:
                self._enter_day(t)
            piece_end = min(end_s, self._day_end_s)
            if piece_end <= t:  # a zone whose midnight does not exist: keep it in this day
                piece_end = end_s
            hours = (piece_end - t) / 3600.0
            bucket = self._current
            bucket[:] = [wh + power_w * hours for wh, power_w in zip(bucket, flows, strict=True)]
            t = piece_end

    def _enter_day(self, t: float) -> None:
        day = dt.datetime.fromtimestamp(t, self.zone).date()
        self._day = day
        self._day_start_s = _midnight(day, self.zone).timestamp()
        self._day_end_s = _midnight(day + dt.timedelta(days=1), self.zone).timestamp()
        bucket = self._days.get(day)
        if bucket is None:
            bucket = self._days[day] = [0.0] * len(FLOW_FIELDS)
            while len(self._days) > MAX_DAYS:  # days arrive in order: the first is the oldest
                del self._days[next(iter(self._days))]
        self._current = bucket

    # --- answers -----------------------------------------------------------------------------

    @property
    def days(self) -> tuple[dt.date, ...]:
        """The local days held, oldest first."""
        return tuple(self._days)

    def backup_events(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Finished outages that started in [start, end) (all when not given)."""
        low = start.timestamp() if start is not None else float("-inf")
        high = end.timestamp() if end is not None else float("inf")
        events = [
            {
                "timestamp": self._iso(began_s),
                "duration": round(duration_s * 1000.0),
            }
            for began_s, duration_s in self._outages
            if low <= began_s < high
        ]
        return {"events": events, "total_events": len(events)}

    def energy_series(self, period: str, end: dt.datetime) -> list[dict[str, Any]]:
        """Time series for `period` ending with the local day of `end`: day (that day), week
        (its 7 days), month (each day of its month so far), year (each month so far)."""
        last = end.astimezone(self.zone).date()
        if period == "year":
            series = []
            for month in range(1, last.month + 1):
                first = dt.date(last.year, month, 1)
                days = [d for d in self._days if d.year == last.year and d.month == month]
                if days:
                    series.append(self._entry(first, days))
            return series
        if period == "day":
            first = last
        elif period == "week":
            first = last - dt.timedelta(days=6)
        else:
            first = last.replace(day=1)
        return [self._entry(d, [d]) for d in sorted(self._days) if first <= d <= last]

    def window(self, period: str, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the local calendar range `period` names around `end`'s day."""
        last = end.astimezone(self.zone).date()
        if period == "day":
            first, after = last, last + dt.timedelta(days=1)
        elif period == "week":
            first, after = last - dt.timedelta(days=6), last + dt.timedelta(days=1)
        elif period == "month":
            first = last.replace(day=1)
            after = (first + dt.timedelta(days=32)).replace(day=1)
        else:
            first, after = dt.date(last.year, 1, 1), dt.date(last.year + 1, 1, 1)
        return _midnight(first, self.zone), _midnight(after, self.zone)

    def _entry(self, first: dt.date, days: list[dt.date]) -> dict[str, Any]:
        totals = [0.0] * len(FLOW_FIELDS)
        for day in days:
            for i, wh in enumerate(self._days[day]):
                totals[i] += wh
        entry: dict[str, Any] = {"timestamp": _midnight(first, self.zone).isoformat()}
        entry.update(zip(FLOW_FIELDS, totals, strict=True))
        entry.update(dict.fromkeys(ZERO_FIELDS, 0.0))
        return entry

    def _iso(self, epoch_s: float) -> str:
        return dt.datetime.fromtimestamp(round(epoch_s), self.zone).isoformat()


def check_query(kind: object, period: object, end: object) -> None:
    """InvalidInputError naming the field when a calendar_history query is not one we answer."""
    if kind not in KINDS:
        raise InvalidInputError("kind", "one of " + ", ".join(KINDS), kind)
    if period not in PERIODS:
        raise InvalidInputError("period", "one of " + ", ".join(PERIODS), period)
    if end is not None and (
        not isinstance(end, dt.datetime) or end.tzinfo is None or end.utcoffset() is None
    ):
        raise InvalidInputError("end_date", "a date and time with a UTC offset", end)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), zone)


__all__ = [
    "FLOW_FIELDS",
    "KINDS",
    "MAX_DAYS",
    "MAX_OUTAGES",
    "PERIODS",
    "ZERO_FIELDS",
    "CloudHistory",
    "check_query",
    "split_flows",
]
