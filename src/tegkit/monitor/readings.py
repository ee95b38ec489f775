"""What the monitor records: readings, gaps, events and outages, and what it reads back.

Times are epoch seconds as floats (UTC). The recorder handles millions of readings; a float
is cheap to create, compare and store, where an aware datetime costs a tzinfo per value.
Convert with ``datetime.fromtimestamp(t, UTC)`` at the edges (CLI, dashboard).

Missing data is ``None``, never zero. The store keeps powers to 1 W, state of energy to
0.01 percent, energy counters to 1 mWh and times to 1 ms.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """One poll of one gateway: power per meter, state of energy, grid status, counters.

    The fields are named by the vocabulary (`POWER_NAMES`, `COUNTER_NAMES` of
    `tegkit.models.vocabulary`); a check below this class keeps the two in step.

    Signs follow the gateway: site > 0 imports, battery > 0 discharges, load > 0
    consumes, solar > 0 produces. Counters are cumulative watt-hours as the gateway
    reports them (site imported = from the grid, battery exported = discharged, load
    imported = consumed, solar exported = produced).
    """

    gateway: str
    taken_at: float
    site_w: float | None = None
    battery_w: float | None = None
    load_w: float | None = None
    solar_w: float | None = None
    soe_raw_percent: float | None = None
    grid_status: str | None = None
    site_imported_wh: float | None = None
    site_exported_wh: float | None = None
    battery_imported_wh: float | None = None
    battery_exported_wh: float | None = None
    load_imported_wh: float | None = None
    solar_exported_wh: float | None = None


# A meter or counter added to the vocabulary needs its field here (and a new block format).
if not {*POWER_NAMES, *COUNTER_NAMES} <= set(Reading.__struct_fields__):
    raise ImportError("Reading must have a field for each of POWER_NAMES and COUNTER_NAMES")


class Gap(msgspec.Struct, frozen=True):
    """A period without readings and why: monitor stopped, gateway unreachable, rate limited.

    ``end`` is None while the gap is still open; write it again with an end to close it.
    """

    gateway: str
    start: float
    end: float | None
    reason: str


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something that changed on the gateway: mode, reserve, firmware, sitemaster stop/run,
    or what the owner's plan did (kind "automation", with its rule and result)."""

    gateway: str
    at: float
    # operation_mode, backup_reserve, firmware, sitemaster_stop, sitemaster_run,
    # clock_step (the host's wall clock was stepped, see monitor.clock), or automation
    kind: str
    detail: str
    # automation only: the plan's rule and the outcome (done, skipped, retry, failed, ...)
    rule: str | None = None
    result: str | None = None


class Outage(msgspec.Struct, frozen=True):
    """A grid outage; ``end`` None while it lasts.

    ``source`` says who saw it: "local" (derived from the grid_status the monitor read) or
    "cloud" (from Tesla's backup history, filled in by `teg monitor backfill`).
    """

    gateway: str
    start: float
    end: float | None
    source: str = "local"


#: where a day's energy or an outage came from
SOURCES = ("local", "cloud")


class CloudDay(msgspec.Struct, frozen=True, kw_only=True):
    """One local day of energy as Tesla's cloud reports it (calendar history), Wh per counter.

    The cloud's resolution is a day: there is no power series behind it. ``start`` and
    ``end`` are the local midnights that bound the day (epoch seconds). A counter the cloud
    did not report is None, never zero. Counter meanings as in `Reading`.
    """

    gateway: str
    start: float
    end: float
    site_imported_wh: float | None = None
    site_exported_wh: float | None = None
    battery_imported_wh: float | None = None
    battery_exported_wh: float | None = None
    load_imported_wh: float | None = None
    solar_exported_wh: float | None = None


if not set(COUNTER_NAMES) <= set(CloudDay.__struct_fields__):
    raise ImportError("CloudDay must have a field for each of COUNTER_NAMES")


class HistoryPoint(msgspec.Struct, frozen=True):
    """One bucket of a history series: mean power per meter and the last state of energy.

    A bucket without data holds None, never zero.
    """

    t: float
    site_w: float | None
    battery_w: float | None
    load_w: float | None
    solar_w: float | None
    soe_raw_percent: float | None


class History(msgspec.Struct, frozen=True):
    """A downsampled series: buckets of ``step_s`` seconds starting at ``points[i].t``
    (the first bucket may begin before ``start``: its point sits at ``start``). Local days
    are 23 to 25 hours long whatever ``step_s`` says."""

    gateway: str
    start: float
    end: float
    step_s: float
    source: str  # "raw", "minute", "quarter", "hour" or "day": which table answered
    points: list[HistoryPoint]

    def columns(self) -> dict[str, list[float | None]]:
        """The series by name ("t", each power, "soe_raw_percent"), one list each: what a
        JSON answer sends, without a dict per point."""
        names = HistoryPoint.__struct_fields__
        rows = [msgspec.structs.astuple(p) for p in self.points]
        if not rows:
            return {name: [] for name in names}
        return {name: list(col) for name, col in zip(names, zip(*rows, strict=True), strict=True)}


class EnergyBucket(msgspec.Struct, frozen=True):
    """Energy that flowed during one rollup bucket, from counter differences (Wh)."""

    start: float
    step_s: float
    site_imported_wh: float
    site_exported_wh: float
    battery_imported_wh: float
    battery_exported_wh: float
    load_imported_wh: float
    solar_exported_wh: float


class DailyEnergy(msgspec.Struct, frozen=True):
    """One local day of energy (Wh), as the Tesla app shows it; None where no data."""

    day: dt.date
    home_wh: float | None
    solar_wh: float | None
    battery_in_wh: float | None  # charged
    battery_out_wh: float | None  # discharged
    grid_in_wh: float | None  # imported
    grid_out_wh: float | None  # exported
    self_powered_percent: float | None
    solar_offset_percent: float | None
    # "local" (the monitor's readings), "cloud" (a day backfilled from Tesla's calendar
    # history), None (no data)
    source: str | None = None


class RetentionPolicy(msgspec.Struct, frozen=True):
    """How long to keep each resolution, in days; None keeps it forever.

    Quarter-hour, hour and day rollups are always kept: they are small and answer long
    ranges.
    """

    raw_days: float | None = 400
    minute_days: float | None = 800
