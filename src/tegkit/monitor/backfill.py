"""Fill the days the monitor did not record from Tesla's cloud (`teg monitor backfill`).

Tesla's calendar history keeps each local day's energy per flow; its backup history keeps
every outage. For each day in the range without a local reading (before the monitor was
installed, or a day it missed), the cloud's day is kept as a `CloudDay`: energy per counter
at the cloud's resolution (a day, no power series). Days the monitor recorded, even in part,
are never touched. Outages from the backup history join the outage list marked 'cloud',
unless they overlap one the monitor recorded itself (or one added before).

Everything is read from the cloud first and written at the end, one transaction for the days
and one for the outages: a failure on the way writes nothing. Running it again with the same
cloud answers changes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tegkit.cloud import CloudClient, EnergyPeriod
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import COUNTERS, MeterName
from tegkit.monitor.readings import CloudDay, Outage
from tegkit.monitor.store import AsyncStore

#: the most days one run fills (the cloud keeps about this much; a request per day)
MAX_DAYS: Final = 400

# counter -> (flows that must all be reported, flows added when reported), Tesla's names
_FLOWS: Final[dict[tuple[MeterName, str], tuple[tuple[str, ...], tuple[str, ...]]]] = {
    (MeterName.SITE, "imported"): (("grid_energy_imported",), ()),
    (MeterName.SITE, "exported"): (
        ("grid_energy_exported_from_solar", "grid_energy_exported_from_battery"),
        ("grid_energy_exported_from_generator",),
    ),
    (MeterName.BATTERY, "imported"): (
        ("battery_energy_imported_from_grid", "battery_energy_imported_from_solar"),
        ("battery_energy_imported_from_generator",),
    ),
    (MeterName.BATTERY, "exported"): (("battery_energy_exported",), ()),
    (MeterName.LOAD, "imported"): (
        (
            "consumer_energy_imported_from_grid",
            "consumer_energy_imported_from_solar",
            "consumer_energy_imported_from_battery",
        ),
        ("consumer_energy_imported_from_generator",),
    ),
    (MeterName.SOLAR, "exported"): (("solar_energy_exported",), ()),
}
# a counter added to the vocabulary needs its flows here
_COUNTER_FLOWS: Final = {c.name: _FLOWS[c.meter, c.direction] for c in COUNTERS}


@dataclass
class BackfillReport:
    """What a run did, day by day (site-local dates)."""

    gateway: str
    time_zone: str
    filled: list[dt.date] = field(default_factory=list)  # kept from the cloud (new or newer)
    unchanged: list[dt.date] = field(default_factory=list)  # kept before, same values
    local: list[dt.date] = field(default_factory=list)  # the monitor has readings: untouched
    missing: list[dt.date] = field(default_factory=list)  # the cloud has nothing either
    outages_added: int = 0
    outages_skipped: int = 0  # overlapped an outage already listed

    def as_json(self) -> dict[str, object]:
        def days(values: list[dt.date]) -> list[str]:
            return [d.isoformat() for d in values]

        return {
            "gateway": self.gateway,
            "time_zone": self.time_zone,
            "filled": days(self.filled),
            "unchanged": days(self.unchanged),
            "local": days(self.local),
            "missing": days(self.missing),
            "outages_added": self.outages_added,
            "outages_skipped": self.outages_skipped,
        }


def check_range(first: object, last: object) -> None:
    """InvalidInputError naming `from` or `to` when the range is not one a run fills."""
    for name, value in (("from", first), ("to", last)):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise InvalidInputError(name, "a date (YYYY-MM-DD)", value)
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    if last < first:
        raise InvalidInputError("to", f"a date not before 'from' ({first})", last.isoformat())
    if (last - first).days >= MAX_DAYS:
        raise InvalidInputError(
            "to", f"at most {MAX_DAYS} days after 'from' (one run fills {MAX_DAYS})", str(last)
        )


def zone_named(name: object) -> ZoneInfo:
    """The IANA zone `name`; InvalidInputError naming time_zone if there is none such."""
    if isinstance(name, str) and 0 < len(name) <= 64 and ".." not in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidInputError("time_zone", "an IANA time zone name such as Europe/Berlin", name)


def midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz)


def cloud_day(gateway: str, day: dt.date, tz: dt.tzinfo, period: EnergyPeriod) -> CloudDay:
    """The cloud's energy of one local day as counters (Wh); None where a flow is missing."""
    counters: dict[str, float | None] = {}
    for name, (required, extra) in _COUNTER_FLOWS.items():
        parts = [getattr(period, f"{flow}_wh") for flow in required]
        if any(p is None for p in parts):
            counters[name] = None
            continue
        more = [getattr(period, f"{flow}_wh") for flow in extra]
        total = sum(p for p in (*parts, *more) if p is not None)
        counters[name] = round(total * 1000) / 1000  # the store keeps 1 mWh
    return CloudDay(
        gateway=gateway,
        start=midnight(day, tz).timestamp(),
        end=midnight(day + dt.timedelta(days=1), tz).timestamp(),
        **counters,
    )


def _days(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    return (first + dt.timedelta(days=i) for i in range((last - first).days + 1))


async def backfill(
    store: AsyncStore,
    client: CloudClient,
    *,
    site_id: int,
    gateway: str,
    first: dt.date,
    last: dt.date | None = None,
    time_zone: str | None = None,
    clock_s: Callable[[], float] = time.time,
) -> BackfillReport:
    """Fill the days first..last (site-local, inclusive) the monitor did not record; see
    the module docstring. `last` None: yesterday (by `clock_s`). `time_zone` None: the
    site's, as the cloud reports it."""
    check_range(first, last if last is not None else first)
    if not isinstance(gateway, str) or not gateway:
        raise InvalidInputError("gateway", "the monitor's name of the gateway", gateway)
    if time_zone is None:
        info = await client.site_info(site_id)
        time_zone = info.installation_time_zone
        if time_zone is None:
            raise InvalidInputError(
                "time_zone", "the site's zone (the cloud did not say it: give --tz)", None
            )
    tz = zone_named(time_zone)
    if last is None:
        last = dt.datetime.fromtimestamp(clock_s(), tz).date() - dt.timedelta(days=1)
        check_range(first, last)
    report = BackfillReport(gateway, time_zone)
    local = {d.day for d in await store.daily(gateway, first, last, tz) if d.source == "local"}
    wanted: list[CloudDay] = []
    for day in _days(first, last):
        if day in local:
            report.local.append(day)
            continue
        # the last second of the day: Tesla's end_date names the day the period ends in
        end = midnight(day + dt.timedelta(days=1), tz) - dt.timedelta(seconds=1)
        answer = await client.calendar_history(site_id, "energy", "day", end_date=end)
        found = [p for p in answer.time_series if p.timestamp.astimezone(tz).date() == day]
        if not found:
            report.missing.append(day)
            continue
        wanted.append(cloud_day(gateway, day, tz, found[0]))
    start_s, end_s = midnight(first, tz).timestamp(), midnight(last, tz).timestamp() + 86400 * 2
    before = {d.start: d for d in await store.cloud_days(gateway, start_s, end_s)}
    await store.write_cloud_days(wanted)
    for day_kept in wanted:
        date = dt.datetime.fromtimestamp(day_kept.start, tz).date()
        same = before.get(day_kept.start) == day_kept
        (report.unchanged if same else report.filled).append(date)
    outages = await _cloud_outages(client, site_id, gateway, first, last, tz)
    report.outages_added = await store.write_cloud_outages(outages)
    report.outages_skipped = len(outages) - report.outages_added
    return report


async def _cloud_outages(
    client: CloudClient,
    site_id: int,
    gateway: str,
    first: dt.date,
    last: dt.date,
    tz: dt.tzinfo,
) -> list[Outage]:
    """The cloud's outages that began on the days first..last.

    The Owner API lists every outage in one answer; the Fleet API by calendar period only,
    so there each year of the range is asked for (two requests at most for MAX_DAYS).
    """
    low = midnight(first, tz)
    high = midnight(last + dt.timedelta(days=1), tz)
    if client.flavour == "fleet":
        events = []
        for year in range(first.year, last.year + 1):
            end = midnight(dt.date(year, 12, 31), tz) + dt.timedelta(hours=12)
            events += (await client.calendar_history(site_id, "backup", "year", end)).events
    else:
        events = (await client.backup_history(site_id)).events
    found = {
        e.start.timestamp(): Outage(gateway, e.start.timestamp(), e.end.timestamp(), "cloud")
        for e in events
        if low <= e.start < high
    }
    return [found[start] for start in sorted(found)]


__all__ = ["MAX_DAYS", "BackfillReport", "backfill", "check_range", "cloud_day", "zone_named"]
