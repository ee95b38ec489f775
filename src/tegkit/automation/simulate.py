"""What a plan is worth before it runs: a plan, or one mode alone, carried out on the
simulator's physics at full speed over days of recorded or modelled load and solar.

The physics is `tegkit.sim.physics.Site`, the same that `teg sim` serves over HTTPS: the
battery's limits, losses, hidden 5 %, reserve semantics, autonomous time-of-use control,
grid charging, export rule, storm watch and outages. Firmware updates follow
`tegkit.sim.firmware`: releases arrive (seeded), the gateway installs each by itself at a
random instant unless a plan's firmware window installs it first, and an install stops the
battery for `BATTERY_STOP_S`. A plan is carried out by `tegkit.automation.engine`, the same
decision code as the live runner.

No servers, no asyncio: a time loop over fixed steps (`step_s`, one of `STEPS_S`). Within a
step the load and the solar available are constant (the step's mean), and every event (a
rule firing, an outage, a battery stop) is applied at its exact instant. Costs use the
tariff's price at each step's start. Gaps in recorded history are skipped (no energy flows,
nothing is counted) and reported, never filled with zeros.

The series of a source is computed once and shared by every strategy, and so are the
firmware releases and install instants (the same seed), so strategies differ only by what
they do with the battery.

Sources:

- a monitor's store (`history`): the mean load and solar of each step, read through the
  store's `history` (rollups, None where nothing was recorded), its outages and its gaps;
- a scenario: its site, place and household, with the physics' solar and load models sampled
  every SAMPLE_S seconds for every day of the span; most days keep the scenario's cloud
  cover and a seeded 30 % are cloudier. Its outages, load spikes, cloud changes, sitemaster
  stops and firmware releases within the span are kept; its `operation` events are not (the
  strategies decide the settings).

A step of 300 s gives nearly the same year as 60 s at a fifth of the time, hence the
default: on the firmware-peak scenario with the SCE plan, grid energy within 0.15 %, cycles
within 0.25 % and each strategy's cost within 2 USD a year.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from tegkit.automation.engine import (
    Due,
    Engine,
    Held,
    Install,
    Judgement,
    Observation,
    Postpone,
)
from tegkit.automation.plan import Plan, Setpoints
from tegkit.automation.schedule import occurrences
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import GridStatusValue, OperationMode
from tegkit.percent import HIDDEN_BOTTOM_PERCENT, app_to_raw, raw_to_app
from tegkit.sim.firmware import (
    AUTO_RETRY_S,
    BATTERY_STOP_S,
    DEFAULT_AUTO_INSTALL_WITHIN_H,
    STOP_AFTER_START_S,
    auto_install_at,
)
from tegkit.sim.load import LoadModel
from tegkit.sim.noise import unit_hash
from tegkit.sim.physics import DEFAULT_RESERVE_RAW_PERCENT, Site
from tegkit.sim.scenario import Scenario, load_scenario
from tegkit.sim.siteconfig import SiteConfig
from tegkit.sim.solar import SolarModel
from tegkit.tariff import BUILTIN_TARIFFS, Tariff, builtin_tariff

#: steps the loop may take: divisors of an hour that the monitor's store answers exactly
STEPS_S: Final = (60, 120, 300, 600, 900, 1800, 3600)
DEFAULT_STEP_S: Final = 300
DEFAULT_DAYS: Final = 365
MAX_DAYS: Final = 400
#: firmware releases a year: Tesla ships a handful of updates a year to a gateway
DEFAULT_RELEASES_PER_YEAR: Final = 4.0
MAX_RELEASES_PER_YEAR: Final = 365.0
#: the models are sampled this often within a step (the physics' own sub-step)
SAMPLE_S: Final = 100

#: strategy names (results, JSON): a plan, the plan without its firmware windows, a mode
#: alone (its OperationMode value), or no battery at all
PLAN: Final = "plan"
PLAN_WITHOUT_FIRMWARE_WINDOW: Final = "plan_without_firmware_window"
NO_BATTERY: Final = "no_battery"
#: the modes compared with a plan, each alone all the time
BASELINE_MODES: Final = (
    OperationMode.SELF_CONSUMPTION,
    OperationMode.BACKUP,
    OperationMode.AUTONOMOUS,
)

# A year of weather for a scenario: most days keep the scenario's cloud cover, some are
# cloudier (seeded per local day).
_CLOUDY_DAY_SHARE = 0.3
_CLOUDY_DAY_EXTRA = 0.8
_STREAM_WEATHER = 41
_STREAM_RELEASES = 42
_HOURS = 24


# --- the data a simulation runs on -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A time span [start_utc, end_utc) and why it is there."""

    start_utc: datetime
    end_utc: datetime
    reason: str = ""

    @property
    def hours(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 3600.0


@dataclass(frozen=True, slots=True)
class Release:
    """A firmware release reaching the gateway; unless an update is started first, the
    gateway installs it by itself within `auto_install_within_h` (sim/firmware.py)."""

    at_utc: datetime
    auto_install_within_h: float = DEFAULT_AUTO_INSTALL_WITHIN_H


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """The site's battery as the physics models it (all Powerwalls as one pack).

    Usable energy is the span raw 5..100 % (app 0..100 %); the full pack holds usable / 0.95.
    Round-trip losses are split evenly between charge and discharge (sqrt each way)."""

    powerwalls: int
    usable_wh: float
    full_pack_wh: float
    max_charge_w: float
    max_discharge_w: float
    round_trip_efficiency: float
    hidden_bottom_raw_percent: float
    initial_soe_raw_percent: float


@dataclass(frozen=True, slots=True)
class Hourly:
    """Hourly mean load and solar (W) from `start_utc`; None for an hour with a gap."""

    start_utc: datetime
    tz: ZoneInfo
    load_w: tuple[float | None, ...]
    solar_w: tuple[float | None, ...]


@dataclass(frozen=True, eq=False)
class Series:
    """Load and solar available per step, from a monitor's history or a scenario's models.

    `load_w[i]` and `solar_w[i]` are the means over [start + i*step_s, start + (i+1)*step_s);
    NaN in a gap (then both are). `site` is the physics' site (battery, place, autonomous
    settings); `reserve_raw_percent` the reserve the mode-alone strategies keep."""

    source: str
    start_utc: datetime
    step_s: int
    tz: ZoneInfo
    load_w: array[float]
    solar_w: array[float]
    gaps: tuple[Interval, ...]
    outages: tuple[Interval, ...]
    site: SiteConfig
    seed: int
    reserve_raw_percent: float
    mode: str = OperationMode.SELF_CONSUMPTION
    #: sitemaster stopped (a scenario's sitemaster_stop .. sitemaster_run)
    stops: tuple[Interval, ...] = ()
    #: firmware releases the source itself names (a scenario's); more are added by simulate
    releases: tuple[Release, ...] = ()

    @property
    def steps(self) -> int:
        return len(self.load_w)

    @property
    def end_utc(self) -> datetime:
        return self.start_utc + timedelta(seconds=self.step_s * self.steps)

    @property
    def battery(self) -> BatterySpec:
        cfg = self.site
        usable_wh = cfg.powerwalls * cfg.usable_kwh_per_powerwall * 1000.0
        power_w = cfg.powerwalls * cfg.powerwall_power_kw * 1000.0
        return BatterySpec(
            powerwalls=cfg.powerwalls,
            usable_wh=usable_wh,
            full_pack_wh=usable_wh / (1.0 - HIDDEN_BOTTOM_PERCENT / 100.0),
            max_charge_w=power_w,
            max_discharge_w=power_w,
            round_trip_efficiency=cfg.round_trip_efficiency,
            hidden_bottom_raw_percent=HIDDEN_BOTTOM_PERCENT,
            initial_soe_raw_percent=cfg.initial_soe_raw_percent,
        )

    @property
    def gap_hours(self) -> float:
        return sum(span.hours for span in self.gaps)

    def hourly(self) -> Hourly:
        """Hourly means of load and solar (for an optimiser); an hour touching a gap is None."""
        per_hour = 3600 // self.step_s
        load: list[float | None] = []
        solar: list[float | None] = []
        for h in range(self.steps // per_hour):
            lo, hi = h * per_hour, (h + 1) * per_hour
            chunk_load = self.load_w[lo:hi]
            if any(math.isnan(v) for v in chunk_load):
                load.append(None)
                solar.append(None)
            else:
                load.append(sum(chunk_load) / per_hour)
                solar.append(sum(self.solar_w[lo:hi]) / per_hour)
        return Hourly(self.start_utc, self.tz, tuple(load), tuple(solar))


class HistoryPointLike(Protocol):
    """One bucket of a store's history: its start and mean powers (None: nothing recorded)."""

    @property
    def t(self) -> float: ...
    @property
    def load_w(self) -> float | None: ...
    @property
    def solar_w(self) -> float | None: ...
    @property
    def soe_raw_percent(self) -> float | None: ...


class HistoryLike(Protocol):
    @property
    def points(self) -> Sequence[HistoryPointLike]: ...


class SpanLike(Protocol):
    """A recorded outage or gap: epoch seconds, `end` None while it lasts."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float | None: ...


class GapLike(SpanLike, Protocol):
    @property
    def reason(self) -> str: ...


class ReadingLike(Protocol):
    @property
    def taken_at(self) -> float: ...


class HistoryReader(Protocol):
    """What `load_source` reads from a monitor's store (tegkit.monitor.store.Store has it):
    bucketed means per meter with None where nothing was recorded, outages and gaps."""

    def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
        tz: tzinfo | None = None,
    ) -> HistoryLike: ...

    def outages(self, gateway: str, start: float, end: float) -> Sequence[SpanLike]: ...

    def gaps(self, gateway: str, start: float, end: float) -> Sequence[GapLike]: ...

    def latest(self, gateway: str) -> ReadingLike | None: ...


# --- sources -------------------------------------------------------------------------------


def tariff_named(value: str, field: str = "tariff") -> Tariff:
    """A built-in tariff by name, or a tariff TOML file by path; errors name `field`."""
    if value in BUILTIN_TARIFFS:
        return builtin_tariff(value)
    path = Path(value).expanduser()
    if not path.is_file():
        allowed = f"a built-in tariff ({', '.join(sorted(BUILTIN_TARIFFS))}) or a tariff file"
        raise InvalidInputError(field, allowed, value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(field, f"a readable tariff file ({exc})", value) from None
    return Tariff.from_toml(text, f"{field} {value}: ")


def load_source(
    *,
    history: HistoryReader | None = None,
    gateway: str | None = None,
    scenario: str | Scenario | None = None,
    start: date | None = None,
    days: int = DEFAULT_DAYS,
    step_s: int = DEFAULT_STEP_S,
    tz: ZoneInfo | None = None,
    powerwalls: int | None = None,
    seed: int | None = None,
) -> Series:
    """The load and solar a simulation runs on: a monitor's recorded history (`history`, an
    open store, with `gateway`) or a scenario (a built-in name, a path, or a Scenario) run
    for `days` from local midnight of `start` (default: the scenario's start day; for
    history, the `days` days before the day of the latest reading, which may not be over).

    `tz` is the site's zone: needed with history (a scenario has its own). `powerwalls`
    overrides the site's battery count; `seed` the scenario's seed."""
    if (history is None) == (scenario is None):
        raise InvalidInputError("source", "exactly one of a history database or a scenario")
    if step_s not in STEPS_S:
        raise InvalidInputError("step_s", f"one of {list(STEPS_S)} seconds", step_s)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInputError("days", f"a whole number of days from 1 to {MAX_DAYS}", days)
    if powerwalls is not None and (
        isinstance(powerwalls, bool) or not isinstance(powerwalls, int) or not 1 <= powerwalls <= 10
    ):
        raise InvalidInputError("powerwalls", "a whole number from 1 to 10", powerwalls)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidInputError("seed", "a whole number >= 0", seed)
    if scenario is not None:
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        return _scenario_series(loaded, start, days, step_s, powerwalls, seed)
    assert history is not None
    if not gateway:
        raise InvalidInputError("gateway", "the name of the gateway recorded in the database")
    if tz is None:
        raise InvalidInputError(
            "timezone", "the site's IANA time zone (the plan's timezone, or --tz)"
        )
    return _history_series(history, gateway, tz, start, days, step_s, powerwalls, seed)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _span_steps(start: date, days: int, tz: ZoneInfo, step_s: int) -> tuple[datetime, int]:
    start_utc = _local_midnight(start, tz)
    end_utc = _local_midnight(start + timedelta(days=days), tz)
    return start_utc, int((end_utc - start_utc).total_seconds()) // step_s


def _scenario_series(
    scenario: Scenario,
    start: date | None,
    days: int,
    step_s: int,
    powerwalls: int | None,
    seed: int | None,
) -> Series:
    tz = ZoneInfo(scenario.config.timezone)
    seed = scenario.seed if seed is None else seed
    first_day = start if start is not None else scenario.start.astimezone(tz).date()
    start_utc, steps = _span_steps(first_day, days, tz, step_s)
    end_utc = start_utc + timedelta(seconds=step_s * steps)
    config = scenario.config
    if powerwalls is not None:
        config = replace(config, powerwalls=powerwalls)
    solar_model = SolarModel(config.latitude_deg, config.longitude_deg, config.array_kw, seed)
    load_model = LoadModel(config.daily_load_kwh, seed)
    # The scenario's events that change the inputs or the grid, within the span.
    outages: list[Interval] = []
    stops: list[Interval] = []
    releases: list[Release] = []
    cloud_changes: list[tuple[float, float | None]] = []
    down: datetime | None = None
    stopped: datetime | None = None
    for event in scenario.events:
        at = event.at.astimezone(UTC)
        if not start_utc <= at < end_utc:
            continue
        if event.action == "outage" and down is None:
            down = at
        elif event.action == "restore" and down is not None:
            outages.append(Interval(down, at, "scenario outage"))
            down = None
        elif event.action == "sitemaster_stop" and stopped is None:
            stopped = at
        elif event.action == "sitemaster_run" and stopped is not None:
            stops.append(Interval(stopped, at, "scenario sitemaster stop"))
            stopped = None
        elif event.action == "load_spike":
            assert event.power_w is not None and event.minutes is not None
            load_model.add_spike(at.timestamp(), event.power_w, event.minutes * 60.0)
        elif event.action == "cloud_cover":
            # back to the scenario's own cover means back to the day's weather
            value = None if event.value == scenario.cloud_cover else event.value
            cloud_changes.append((at.timestamp(), value))
        elif event.action == "firmware_release":
            within_h = event.auto_install_within_h
            if within_h is None:
                within_h = DEFAULT_AUTO_INSTALL_WITHIN_H
            releases.append(Release(at, within_h))
    if down is not None:
        outages.append(Interval(down, end_utc, "scenario outage"))
    if stopped is not None:
        stops.append(Interval(stopped, end_utc, "scenario sitemaster stop"))
    load = array("d", bytes(8 * steps))
    solar = array("d", bytes(8 * steps))
    samples = max(1, step_s // SAMPLE_S)
    sample_s = step_s / samples
    base_cloud = scenario.cloud_cover
    t0 = start_utc.timestamp()
    change_index = 0
    event_cloud: float | None = None
    offset_hour = -1
    offset_s = 0.0
    for i in range(steps):
        step_start = t0 + i * step_s
        hour = int(step_start // 3600)
        if hour != offset_hour:  # offsets change on the hour at most (steps divide an hour)
            when = datetime.fromtimestamp(hour * 3600, tz)
            delta = when.utcoffset()
            offset_s = delta.total_seconds() if delta is not None else 0.0
            offset_hour = hour
        local_s = step_start + offset_s
        local_day = int(local_s // 86400)
        weekend = (local_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        u = unit_hash(seed, _STREAM_WEATHER, local_day)
        day_cloud = base_cloud
        if u >= 1.0 - _CLOUDY_DAY_SHARE:
            extra = (u - (1.0 - _CLOUDY_DAY_SHARE)) / _CLOUDY_DAY_SHARE * _CLOUDY_DAY_EXTRA
            day_cloud = min(1.0, base_cloud + extra)
        load_sum = solar_sum = 0.0
        for k in range(samples):
            t = step_start + k * sample_s
            while change_index < len(cloud_changes) and cloud_changes[change_index][0] <= t:
                event_cloud = cloud_changes[change_index][1]
                change_index += 1
            cloud = day_cloud if event_cloud is None else event_cloud
            solar_sum += solar_model.available_w(t, cloud)
            load_sum += load_model.demand_w(t, local_s - local_day * 86400 + k * sample_s, weekend)
        load[i] = load_sum / samples
        solar[i] = solar_sum / samples
    return Series(
        source=f"scenario {scenario.name}",
        start_utc=start_utc,
        step_s=step_s,
        tz=tz,
        load_w=load,
        solar_w=solar,
        gaps=(),
        outages=tuple(outages),
        site=config,
        seed=seed,
        reserve_raw_percent=scenario.backup_reserve_raw_percent,
        mode=scenario.mode,
        stops=tuple(stops),
        releases=tuple(releases),
    )


_HISTORY_CHUNK_DAYS = 30  # the store answers at most 100,000 buckets a query


def _history_series(
    store: HistoryReader,
    gateway: str,
    tz: ZoneInfo,
    start: date | None,
    days: int,
    step_s: int,
    powerwalls: int | None,
    seed: int | None,
) -> Series:
    if start is None:
        latest = store.latest(gateway)
        if latest is None:
            raise InvalidInputError("gateway", "a gateway with readings in the database", gateway)
        last_day = datetime.fromtimestamp(float(latest.taken_at), tz).date()
        start = last_day - timedelta(days=days)
    start_utc, steps = _span_steps(start, days, tz, step_s)
    t0 = start_utc.timestamp()
    end_s = t0 + steps * step_s
    nan = math.nan
    load = array("d", [nan]) * steps
    solar = array("d", [nan]) * steps
    first_soe: float | None = None
    first_soe_at = math.inf
    chunk_s = _HISTORY_CHUNK_DAYS * 86400
    lo = t0
    while lo < end_s:
        hi = min(end_s, lo + chunk_s)
        answer = store.history(gateway, lo, hi, step_s=step_s, max_points=100_000, tz=tz)
        for point in answer.points:
            index = round((float(point.t) - t0) / step_s)
            if not 0 <= index < steps or point.load_w is None or point.solar_w is None:
                continue
            load[index] = max(0.0, float(point.load_w))
            solar[index] = max(0.0, float(point.solar_w))
            if point.soe_raw_percent is not None and point.t < first_soe_at:
                first_soe, first_soe_at = float(point.soe_raw_percent), float(point.t)
        lo = hi
    if all(math.isnan(v) for v in load):
        end_day = start + timedelta(days=days)
        raise InvalidInputError(
            "history",
            f"a database with readings of gateway {gateway!r} from {start} to {end_day}",
            "no readings in that range",
        )
    recorded_gaps = store.gaps(gateway, t0, end_s)
    gaps = tuple(_gap_spans(load, t0, step_s, recorded_gaps))
    outages = tuple(
        Interval(
            datetime.fromtimestamp(max(t0, float(o.start)), UTC),
            datetime.fromtimestamp(end_s if o.end is None else min(end_s, float(o.end)), UTC),
            "recorded outage",
        )
        for o in store.outages(gateway, t0, end_s)
    )
    config = SiteConfig(
        timezone=str(tz.key),
        powerwalls=powerwalls if powerwalls is not None else 1,
        initial_soe_raw_percent=first_soe if first_soe is not None else 50.0,
    )
    return Series(
        source=f"history of gateway {gateway}",
        start_utc=start_utc,
        step_s=step_s,
        tz=tz,
        load_w=load,
        solar_w=solar,
        gaps=gaps,
        outages=outages,
        site=config,
        seed=0 if seed is None else seed,
        reserve_raw_percent=DEFAULT_RESERVE_RAW_PERCENT,
    )


def _gap_spans(
    load: array[float], t0: float, step_s: int, recorded: Sequence[GapLike]
) -> list[Interval]:
    """Runs of missing steps as spans, each with the reasons the store recorded for it."""
    spans: list[Interval] = []
    i, n = 0, len(load)
    while i < n:
        if not math.isnan(load[i]):
            i += 1
            continue
        j = i
        while j < n and math.isnan(load[j]):
            j += 1
        lo, hi = t0 + i * step_s, t0 + j * step_s
        reasons = sorted(
            {
                str(g.reason)
                for g in recorded
                if float(g.start) < hi and (g.end is None or float(g.end) > lo)
            }
        )
        spans.append(
            Interval(
                datetime.fromtimestamp(lo, UTC),
                datetime.fromtimestamp(hi, UTC),
                ", ".join(reasons) if reasons else "no readings",
            )
        )
        i = j
    return spans


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypicalDay:
    """Means per local hour of the day (0..23) over the period: W, and app percent."""

    load_w: tuple[float, ...]
    solar_w: tuple[float, ...]
    battery_w: tuple[float, ...]  # > 0 discharging
    grid_w: tuple[float, ...]  # > 0 importing
    soe_app_percent: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Trace:
    """Step by step (for short runs: `simulate(..., trace=True)`): energy over each step, Wh,
    and the state at its end. A skipped gap step holds NaN and mode ""."""

    start_utc: datetime
    step_s: int
    battery_wh: tuple[float, ...]  # net, > 0 discharged
    discharged_wh: tuple[float, ...]
    grid_wh: tuple[float, ...]  # net, > 0 imported
    soe_app_percent: tuple[float, ...]
    mode: tuple[str, ...]

    def index(self, when: datetime) -> int:
        """The step that holds the instant `when`."""
        return int((when - self.start_utc).total_seconds() // self.step_s)


@dataclass(frozen=True, slots=True)
class FirmwareInstall:
    """An update installed during the simulation: who started it, and the battery stop."""

    started_utc: datetime
    by: str  # "plan" (its firmware window) or "gateway" (by itself)
    stop_period: str  # the tariff period the battery stop began in


@dataclass(frozen=True, slots=True)
class Result:
    """One strategy over the series: energies in Wh, cost in the tariff's currency."""

    strategy: str
    label: str
    currency: str
    cost: float
    import_wh: float
    export_wh: float
    load_wh: float
    solar_wh: float
    home_from_grid_wh: float
    battery_discharged_wh: float
    battery_charged_wh: float
    usable_wh: float
    installs: tuple[FirmwareInstall, ...]
    actions: int
    typical_day: TypicalDay
    #: pack energy at the end minus at the start, Wh (0 without a battery)
    stored_change_wh: float = 0.0
    trace: Trace | None = None

    @property
    def self_powered_percent(self) -> float | None:
        """Share of the home's consumption not taken from the grid (the Tesla app's)."""
        if self.load_wh <= 0.0:
            return None
        return 100.0 * (1.0 - self.home_from_grid_wh / self.load_wh)

    @property
    def cycles(self) -> float:
        """Discharged energy over usable capacity (0 without a battery)."""
        return self.battery_discharged_wh / self.usable_wh if self.usable_wh > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "label": self.label,
            "cost": round(self.cost, 4),
            "currency": self.currency,
            "grid_import_kwh": round(self.import_wh / 1000.0, 3),
            "grid_export_kwh": round(self.export_wh / 1000.0, 3),
            "load_kwh": round(self.load_wh / 1000.0, 3),
            "solar_kwh": round(self.solar_wh / 1000.0, 3),
            "self_powered_percent": None
            if self.self_powered_percent is None
            else round(self.self_powered_percent, 2),
            "battery_discharged_kwh": round(self.battery_discharged_wh / 1000.0, 3),
            "battery_charged_kwh": round(self.battery_charged_wh / 1000.0, 3),
            "battery_cycles": round(self.cycles, 3),
            "actions": self.actions,
            # hourly means over the period, local hours 0..23; kW, and app percent
            "typical_day": {
                name: [None if math.isnan(v) else round(v * scale, 3) for v in values]
                for name, values, scale in (
                    ("load_kw", self.typical_day.load_w, 0.001),
                    ("solar_kw", self.typical_day.solar_w, 0.001),
                    ("battery_kw", self.typical_day.battery_w, 0.001),
                    ("grid_kw", self.typical_day.grid_w, 0.001),
                    ("soe_app_percent", self.typical_day.soe_app_percent, 1.0),
                )
            },
            "firmware_installs": [
                {"started": i.started_utc.isoformat(), "by": i.by, "stop_period": i.stop_period}
                for i in self.installs
            ],
        }


def saving(results: Sequence[Result], strategy: str, versus: str) -> float | None:
    """How much less `strategy` costs than `versus` (None if either is missing)."""
    by_name = {r.strategy: r for r in results}
    if strategy not in by_name or versus not in by_name:
        return None
    return by_name[versus].cost - by_name[strategy].cost


# --- the time loop ---------------------------------------------------------------------------


class _Meter:
    """The physics' step observer: energy per step and in total, typical-day bins."""

    __slots__ = (
        "battery_in_wh",
        "battery_out_wh",
        "export_wh",
        "home_grid_wh",
        "import_wh",
        "load_wh",
        "solar_wh",
        "step_battery_wh",
        "step_discharged_wh",
        "step_export_wh",
        "step_import_wh",
        "step_load_wh",
        "step_solar_wh",
    )

    def __init__(self) -> None:
        self.import_wh = self.export_wh = self.load_wh = self.solar_wh = 0.0
        self.home_grid_wh = self.battery_in_wh = self.battery_out_wh = 0.0
        self.step_import_wh = self.step_export_wh = self.step_battery_wh = 0.0
        self.step_discharged_wh = 0.0
        self.step_load_wh = self.step_solar_wh = 0.0

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
        hours = dt_s / 3600.0
        if site_w > 0.0:
            self.step_import_wh += site_w * hours
            self.home_grid_wh += (site_w if site_w < load_w else load_w) * hours
        else:
            self.step_export_wh -= site_w * hours
        if battery_w > 0.0:
            self.battery_out_wh += battery_w * hours
            self.step_discharged_wh += battery_w * hours
        else:
            self.battery_in_wh -= battery_w * hours
        self.step_battery_wh += battery_w * hours
        self.step_load_wh += load_w * hours
        self.step_solar_wh += solar_w * hours


class _Bins:
    """Sums per local hour of the day, for the typical day."""

    def __init__(self) -> None:
        self.load = [0.0] * _HOURS
        self.solar = [0.0] * _HOURS
        self.battery = [0.0] * _HOURS
        self.grid = [0.0] * _HOURS
        self.soe = [0.0] * _HOURS
        self.hours = [0.0] * _HOURS

    def day(self) -> TypicalDay:
        def mean(values: list[float]) -> tuple[float, ...]:
            return tuple(
                v / h if h > 0 else math.nan for v, h in zip(values, self.hours, strict=True)
            )

        return TypicalDay(
            mean(self.load), mean(self.solar), mean(self.battery), mean(self.grid), mean(self.soe)
        )


def _step_table(series: Series, tariff: Tariff) -> tuple[array[float], array[float], bytes]:
    """Per step: buy and sell price at its start, and its local hour of the day (site time).

    Prices follow the tariff's own clock when it names a zone, as `Tariff.price_at` does: a
    Phoenix site on a Los Angeles tariff pays Los Angeles' periods."""
    steps, step_s = series.steps, series.step_s
    buy = array("d", bytes(8 * steps))
    sell = array("d", bytes(8 * steps))
    hours = bytearray(steps)
    t0 = series.start_utc.timestamp()
    zone = series.tz
    tariff_zone = ZoneInfo(tariff.timezone) if tariff.timezone else zone
    day_key: date | None = None
    spans: tuple[Any, ...] = ()
    for i in range(steps):
        local = datetime.fromtimestamp(t0 + i * step_s, zone)
        hours[i] = local.hour
        if tariff_zone is not zone:
            local = local.astimezone(tariff_zone)
        minute = local.hour * 60 + local.minute
        day = local.date()
        if day != day_key:
            spans = tariff.schedule_for(day)
            day_key = day
        for span in spans:
            if span.start_minute <= minute < span.end_minute:
                buy[i] = span.price.buy_per_kwh
                sell[i] = span.price.sell_per_kwh
                break
    return buy, sell, bytes(hours)


def firmware_releases(series: Series, per_year: float, seed: int | None = None) -> list[Release]:
    """Firmware releases in the series' span: one in each slot of 365/per_year days, at a
    seeded instant within it, plus any the source names. The same for every strategy."""
    _check_releases(per_year)
    seed = series.seed if seed is None else seed
    found = list(series.releases)
    if per_year > 0:
        slot_s = 365.0 * 86400.0 / per_year
        rng = random.Random(f"tegkit-releases:{seed}:{series.start_utc.timestamp():.0f}")
        t0, end_s = series.start_utc.timestamp(), series.end_utc.timestamp()
        k = 0
        while t0 + k * slot_s < end_s:
            at = t0 + (k + rng.random()) * slot_s
            if at < end_s:
                found.append(Release(datetime.fromtimestamp(round(at), UTC)))
            k += 1
    return sorted(found, key=lambda release: release.at_utc)


# event kinds, in the order they apply at one instant
_EV_GRID_DOWN, _EV_GRID_UP, _EV_STOP, _EV_RUN = 0, 1, 2, 3
_EV_RELEASE, _EV_AUTO_INSTALL, _EV_BATTERY_STOP, _EV_BATTERY_RUN = 4, 5, 6, 7
_EV_PLAN, _EV_FIRMWARE_CHECK = 8, 9


class _Run:
    """One strategy carried out over a series."""

    def __init__(
        self,
        series: Series,
        tariff: Tariff,
        table: tuple[array[float], array[float], bytes],
        releases: Sequence[Release],
        seed: int,
    ) -> None:
        self.series = series
        self.tariff = tariff
        self.buy, self.sell, self.hours = table
        config = replace(series.site, tariff=tariff)
        self.site = Site(config, series.start_utc, seed=series.seed, max_step_s=series.step_s)
        self.site.set_soe_raw_percent(config.initial_soe_raw_percent)
        self.site.backup_reserve_raw_percent = series.reserve_raw_percent
        self.meter = _Meter()
        self.site.observer = self.meter
        self.bins = _Bins()
        self._start_wh = self.site.energy_remaining_wh
        #: per step, when traced: battery, discharged, grid, soe, mode
        self.trace: tuple[list[float], list[float], list[float], list[float], list[str]] | None
        self.trace = None
        self.cost = 0.0
        self.actions = 0
        self.installs: list[FirmwareInstall] = []
        self._stopped_by = 0  # reasons the sitemaster is stopped now (scenario, update)
        self._queue: list[tuple[float, int, int, object]] = []
        self._order = 0
        self._released: list[float] = []  # release instants not yet installed
        #: whether after_step must run after every step (a plan judging conditions)
        self.stepping = False
        for span in series.outages:
            self.push(span.start_utc.timestamp(), _EV_GRID_DOWN)
            self.push(span.end_utc.timestamp(), _EV_GRID_UP)
        for span in series.stops:
            self.push(span.start_utc.timestamp(), _EV_STOP)
            self.push(span.end_utc.timestamp(), _EV_RUN)
        for release in releases:
            self.push(release.at_utc.timestamp(), _EV_RELEASE)
            auto = auto_install_at(release.at_utc, release.auto_install_within_h, seed)
            if auto is not None:
                self.push(auto.timestamp(), _EV_AUTO_INSTALL)

    def push(self, at_s: float, kind: int, data: object = None) -> None:
        self._order += 1
        heapq.heappush(self._queue, (at_s, kind, self._order, data))

    # --- what happens at an instant ------------------------------------------------------

    def handle(self, kind: int, at_s: float, data: object) -> None:
        site = self.site
        if kind == _EV_GRID_DOWN:
            site.start_outage()
        elif kind == _EV_GRID_UP:
            site.end_outage()
        elif kind in (_EV_STOP, _EV_BATTERY_STOP):
            self._stopped_by += 1
            site.running = False
        elif kind in (_EV_RUN, _EV_BATTERY_RUN):
            self._stopped_by = max(0, self._stopped_by - 1)
            site.running = self._stopped_by == 0
        elif kind == _EV_RELEASE:
            self._released.append(at_s)
        elif kind == _EV_AUTO_INSTALL:
            if not self._released:
                return  # installed already (a plan's window came first)
            if site.grid_status != GridStatusValue.CONNECTED:
                self.push(at_s + AUTO_RETRY_S, _EV_AUTO_INSTALL)  # never by itself off grid
                return
            self.install(at_s, "gateway")
        else:
            self.on_plan_event(kind, at_s, data)

    def handle_unseen(self, kind: int, at_s: float, data: object) -> None:
        """An instant inside a gap: the site's state follows (grid, stops, releases), but
        nobody acts (the plan's engine catches up after the gap) and an update the gateway
        installed by itself went by unseen."""
        if kind in (_EV_PLAN, _EV_FIRMWARE_CHECK):
            return
        if kind == _EV_AUTO_INSTALL:
            self._released.clear()
            return
        self.handle(kind, at_s, data)

    def install(self, at_s: float, by: str) -> None:
        """An update starts now: everything released so far; the battery stops shortly."""
        self._released.clear()
        stop_s = at_s + STOP_AFTER_START_S
        period = self.tariff.period_at(datetime.fromtimestamp(stop_s, self.series.tz))
        self.installs.append(FirmwareInstall(datetime.fromtimestamp(at_s, UTC), by, period))
        self.push(stop_s, _EV_BATTERY_STOP)
        self.push(stop_s + BATTERY_STOP_S, _EV_BATTERY_RUN)

    def on_plan_event(self, kind: int, at_s: float, data: object) -> None:
        """A plan's events (its driver handles them)."""

    def begin(self, start_s: float) -> None:
        """Called before the first step (a plan's driver catches up)."""

    def after_step(self, end_s: float) -> None:
        """Called at the end of every step (a plan's driver looks at the site)."""

    def skipped_gap(self, end_s: float) -> None:
        """Called after a gap was skipped."""

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        series, site, meter, bins = self.series, self.site, self.meter, self.bins
        load, solar = series.load_w, series.solar_w
        buy, sell, hours = self.buy, self.sell, self.hours
        step_s = series.step_s
        t0 = series.start_utc.timestamp()
        queue = self._queue
        step_h = step_s / 3600.0
        b_load, b_solar, b_batt, b_grid, b_soe, b_hours = (
            bins.load,
            bins.solar,
            bins.battery,
            bins.grid,
            bins.soe,
            bins.hours,
        )
        self.begin(t0)
        steps = series.steps
        for i in range(steps):
            end_s = t0 + (i + 1) * step_s
            load_w = load[i]
            if load_w != load_w:  # NaN: a gap, skipped with no energy flowing
                while queue and queue[0][0] < end_s:
                    at_s, kind, _, data = heapq.heappop(queue)
                    site.skip(max(0.0, at_s - site.epoch_s))
                    self.handle_unseen(kind, at_s, data)
                site.skip(max(0.0, end_s - site.epoch_s))
                if i + 1 < series.steps and load[i + 1] == load[i + 1]:
                    self.skipped_gap(end_s)
                if self.trace is not None:
                    for column in self.trace[:4]:
                        column.append(math.nan)
                    self.trace[4].append("")
                continue
            site.set_overrides(solar[i], load_w)
            meter.step_import_wh = meter.step_export_wh = meter.step_battery_wh = 0.0
            meter.step_load_wh = meter.step_solar_wh = meter.step_discharged_wh = 0.0
            while queue and queue[0][0] < end_s:
                at_s, kind, _, data = heapq.heappop(queue)
                ahead = at_s - site.epoch_s
                if ahead > 0.0:
                    site.advance(ahead)
                self.handle(kind, at_s, data)
            ahead = end_s - site.epoch_s
            if ahead > 0.0:
                site.advance(ahead)
            imp, exp = meter.step_import_wh, meter.step_export_wh
            meter.import_wh += imp
            meter.export_wh += exp
            meter.load_wh += meter.step_load_wh
            meter.solar_wh += meter.step_solar_wh
            self.cost += (imp * buy[i] - exp * sell[i]) / 1000.0
            hour = hours[i]
            b_load[hour] += meter.step_load_wh
            b_solar[hour] += meter.step_solar_wh
            b_batt[hour] += meter.step_battery_wh
            b_grid[hour] += imp - exp
            b_soe[hour] += site.soe_app_percent * step_h
            b_hours[hour] += step_h
            if self.stepping and i + 1 < steps:  # nothing acts at the end of the span
                self.after_step(end_s)
            if self.trace is not None:
                battery_wh, discharged_wh, grid_wh, soe, modes = self.trace
                battery_wh.append(meter.step_battery_wh)
                discharged_wh.append(meter.step_discharged_wh)
                grid_wh.append(imp - exp)
                soe.append(site.soe_app_percent)
                modes.append(site.mode)

    def result(self, strategy: str, label: str) -> Result:
        m = self.meter
        return Result(
            strategy=strategy,
            label=label,
            currency=self.tariff.currency,
            cost=self.cost,
            import_wh=m.import_wh,
            export_wh=m.export_wh,
            load_wh=m.load_wh,
            solar_wh=m.solar_wh,
            home_from_grid_wh=m.home_grid_wh,
            battery_discharged_wh=m.battery_out_wh,
            battery_charged_wh=m.battery_in_wh,
            usable_wh=self.series.battery.usable_wh,
            installs=tuple(self.installs),
            actions=self.actions,
            typical_day=self.bins.day(),
            stored_change_wh=self.site.energy_remaining_wh - self._start_wh,
            trace=None if self.trace is None else self._traced(),
        )

    def _traced(self) -> Trace:
        assert self.trace is not None
        battery_wh, discharged_wh, grid_wh, soe, modes = self.trace
        return Trace(
            self.series.start_utc,
            self.series.step_s,
            tuple(battery_wh),
            tuple(discharged_wh),
            tuple(grid_wh),
            tuple(soe),
            tuple(modes),
        )


def _no_battery(
    series: Series, tariff: Tariff, table: tuple[array[float], array[float], bytes]
) -> Result:
    """The house without a battery: the grid takes load minus solar; dark in an outage."""
    buy, sell, hours = table
    bins = _Bins()
    step_s = series.step_s
    step_h = step_s / 3600.0
    t0 = series.start_utc.timestamp()
    down = [(s.start_utc.timestamp(), s.end_utc.timestamp()) for s in series.outages]
    imp_total = exp_total = load_total = solar_total = home_grid = cost = 0.0
    for i in range(series.steps):
        load_w, solar_w = series.load_w[i], series.solar_w[i]
        if load_w != load_w:
            continue
        lo = t0 + i * step_s
        dark_s = sum(max(0.0, min(b, lo + step_s) - max(a, lo)) for a, b in down) if down else 0.0
        lit_h = (step_s - dark_s) / 3600.0
        net_w = load_w - solar_w
        imp = net_w * lit_h if net_w > 0 else 0.0
        exp = -net_w * lit_h if net_w < 0 else 0.0
        load_wh, solar_wh = load_w * lit_h, solar_w * lit_h
        imp_total += imp
        exp_total += exp
        load_total += load_wh
        solar_total += solar_wh
        home_grid += imp
        cost += (imp * buy[i] - exp * sell[i]) / 1000.0
        hour = hours[i]
        bins.load[hour] += load_wh
        bins.solar[hour] += solar_wh
        bins.grid[hour] += imp - exp
        bins.hours[hour] += step_h
    return Result(
        strategy=NO_BATTERY,
        label="no battery",
        currency=tariff.currency,
        cost=cost,
        import_wh=imp_total,
        export_wh=exp_total,
        load_wh=load_total,
        solar_wh=solar_total,
        home_from_grid_wh=home_grid,
        battery_discharged_wh=0.0,
        battery_charged_wh=0.0,
        usable_wh=0.0,
        installs=(),
        actions=0,
        typical_day=replace(bins.day(), soe_app_percent=(math.nan,) * _HOURS),
    )


# --- the public API --------------------------------------------------------------------------

Strategy = Plan | OperationMode | str


def simulate(
    strategy: Strategy,
    series: Series,
    tariff: Tariff,
    *,
    releases_per_year: float = DEFAULT_RELEASES_PER_YEAR,
    seed: int | None = None,
    firmware_windows: bool = True,
    trace: bool = False,
) -> Result:
    """Carry out one strategy over `series`: a Plan (through the automation engine), an
    OperationMode alone all the time, or NO_BATTERY. `firmware_windows=False` runs a plan
    without its firmware windows (the gateway then installs every release by itself);
    `trace=True` keeps every step in `Result.trace` (for short runs)."""
    _check_releases(releases_per_year)
    seed = series.seed if seed is None else seed
    table = _step_table(series, tariff)
    releases = firmware_releases(series, releases_per_year, seed)
    return _simulate(strategy, series, tariff, table, releases, seed, firmware_windows, trace)


def compare(
    plan: Plan,
    series: Series,
    tariff: Tariff,
    *,
    releases_per_year: float = DEFAULT_RELEASES_PER_YEAR,
    seed: int | None = None,
) -> list[Result]:
    """The plan, the plan without its firmware windows (when it has one), each baseline mode
    alone and no battery, over the same series, releases and install instants."""
    _check_releases(releases_per_year)
    seed = series.seed if seed is None else seed
    table = _step_table(series, tariff)
    releases = firmware_releases(series, releases_per_year, seed)
    results = [_simulate(plan, series, tariff, table, releases, seed, True)]
    if any(rule.firmware_window is not None for rule in plan.rules):
        results.append(_simulate(plan, series, tariff, table, releases, seed, False))
    for mode in BASELINE_MODES:
        results.append(_simulate(mode, series, tariff, table, releases, seed, True))
    results.append(_no_battery(series, tariff, table))
    return results


def _check_releases(per_year: float) -> None:
    if (
        isinstance(per_year, bool)
        or not isinstance(per_year, int | float)
        or not 0.0 <= per_year <= MAX_RELEASES_PER_YEAR
    ):
        raise InvalidInputError(
            "releases",
            f"a number of firmware releases a year from 0 to {MAX_RELEASES_PER_YEAR:g}",
            per_year,
        )


def _simulate(
    strategy: Strategy,
    series: Series,
    tariff: Tariff,
    table: tuple[array[float], array[float], bytes],
    releases: Sequence[Release],
    seed: int,
    firmware_windows: bool,
    trace: bool = False,
) -> Result:
    if isinstance(strategy, Plan):
        run: _Run = _PlanRun(series, tariff, table, releases, seed, strategy, firmware_windows)
        run.trace = ([], [], [], [], []) if trace else None
        run.run()
        if firmware_windows:
            return run.result(PLAN, "plan")
        return run.result(PLAN_WITHOUT_FIRMWARE_WINDOW, "plan, no firmware window")
    if strategy == NO_BATTERY:
        return _no_battery(series, tariff, table)
    if strategy not in tuple(OperationMode):
        allowed = f"a plan, one of {', '.join(OperationMode)}, or {NO_BATTERY}"
        raise InvalidInputError("strategy", allowed, strategy)
    mode = OperationMode(strategy)
    run = _Run(series, tariff, table, releases, seed)
    run.site.mode = mode
    run.trace = ([], [], [], [], []) if trace else None
    run.run()
    return run.result(mode.value, mode.value)


class _PlanRun(_Run):
    """A plan carried out by the automation engine, as the live runner does: timed rules at
    their exact instants, conditions judged on the reading after every step, held rules
    offered again, firmware windows asking `decide_firmware` while a release is pending."""

    def __init__(
        self,
        series: Series,
        tariff: Tariff,
        table: tuple[array[float], array[float], bytes],
        releases: Sequence[Release],
        seed: int,
        plan: Plan,
        firmware_windows: bool,
    ) -> None:
        super().__init__(series, tariff, table, releases, seed)
        self.site.mode = series.mode  # the site's own setting until the plan changes it
        if not firmware_windows:
            plan = without_firmware_windows(plan)
        if plan.tariff is None:
            plan = replace(plan, tariff=tariff)  # firmware windows avoid this tariff's periods
        self.plan = plan
        self.tz = plan.timezone or series.tz
        self.engine = Engine(plan, self.tz)
        # Timed rules are stepped at their instants; conditions need a look after every
        # step, and so do held rules (until the grid is back) and catch-up after a gap.
        self._conditions = any(not rule.timed for rule in plan.rules)
        self._waiting = False
        self.stepping = self._conditions
        for occurrence in occurrences(plan, self.tz, series.start_utc, series.end_utc):
            self.push(occurrence.at_utc.timestamp(), _EV_PLAN)

    def observe(self, at_s: float) -> Observation:
        """What the live runner reads from the gateway, read from the site now."""
        site = self.site
        return Observation(
            at_utc=datetime.fromtimestamp(at_s, UTC),
            soe_app_percent=site.soe_app_percent,
            grid_status=site.grid_status,
            battery_w=site.battery_w,
            mode=site.mode,
            backup_reserve_app_percent=raw_to_app(site.backup_reserve_raw_percent),
        )

    def begin(self, start_s: float) -> None:
        self.carry_out(self.engine.start(_utc(start_s), self.observe(start_s)), start_s)

    def after_step(self, end_s: float) -> None:
        decisions = self.engine.step(_utc(end_s), self.observe(end_s))
        if any(isinstance(d, Held) for d in decisions):
            self._waiting = True
        elif self._waiting and self.site.grid_status == GridStatusValue.CONNECTED:
            self._waiting = False  # a connected, fresh reading released whatever was held
        self.stepping = self._conditions or self._waiting
        self.carry_out(decisions, end_s)

    def skipped_gap(self, end_s: float) -> None:
        # what fell due in the gap comes back from the engine as catch-up on the next step
        self._waiting = True
        self.stepping = True

    def on_plan_event(self, kind: int, at_s: float, data: object) -> None:
        if kind == _EV_PLAN:
            self.after_step(at_s)
        elif kind == _EV_FIRMWARE_CHECK:
            assert isinstance(data, Due)
            self.try_firmware(data, at_s)

    def carry_out(self, decisions: list[Judgement], at_s: float) -> None:
        for decision in decisions:
            if not isinstance(decision, Due):
                continue  # Held comes back when it may act; Missed is never run late
            if decision.firmware_window is not None:
                self.try_firmware(decision, at_s)
            elif not decision.setpoints.is_empty():
                self.apply(decision.setpoints)

    def try_firmware(self, due: Due, at_s: float) -> None:
        """An open window: the update check finds a pending release, or there is nothing
        to install; an install waits until `decide_firmware` says it is safe."""
        if not self._released:
            return
        decision = self.engine.decide_firmware(due, _utc(at_s), self.observe(at_s))
        if isinstance(decision, Install):
            self.install(at_s, "plan")
        elif isinstance(decision, Postpone):
            self.push(decision.retry_at_utc.timestamp(), _EV_FIRMWARE_CHECK, due)

    def apply(self, setpoints: Setpoints) -> None:
        """Put a due rule's setpoints in force (a reserve is converted app -> raw)."""
        site = self.site
        if setpoints.mode is not None:
            site.mode = setpoints.mode
        if setpoints.backup_reserve_app_percent is not None:
            site.backup_reserve_raw_percent = app_to_raw(setpoints.backup_reserve_app_percent)
        if setpoints.grid_charging is not None:
            site.grid_charging_allowed = setpoints.grid_charging
        if setpoints.export_rule is not None:
            site.export_rule = setpoints.export_rule
        if setpoints.storm_watch is not None:
            site.storm_watch = setpoints.storm_watch
        self.actions += 1


def _utc(at_s: float) -> datetime:
    return datetime.fromtimestamp(at_s, UTC)


def without_firmware_windows(plan: Plan) -> Plan:
    """The same plan with no firmware window: rules that only opened one are dropped."""
    rules = tuple(replace(rule, firmware_window=None) for rule in plan.rules if rule.sets_state)
    return replace(plan, name=f"{plan.name} (no firmware window)", rules=rules)


__all__ = [
    "BASELINE_MODES",
    "DEFAULT_DAYS",
    "DEFAULT_RELEASES_PER_YEAR",
    "DEFAULT_STEP_S",
    "MAX_DAYS",
    "NO_BATTERY",
    "PLAN",
    "PLAN_WITHOUT_FIRMWARE_WINDOW",
    "STEPS_S",
    "BatterySpec",
    "FirmwareInstall",
    "GapLike",
    "HistoryLike",
    "HistoryPointLike",
    "HistoryReader",
    "Hourly",
    "Interval",
    "ReadingLike",
    "Release",
    "Result",
    "Series",
    "SpanLike",
    "Strategy",
    "Trace",
    "TypicalDay",
    "compare",
    "firmware_releases",
    "load_source",
    "saving",
    "simulate",
    "tariff_named",
    "without_firmware_windows",
]
