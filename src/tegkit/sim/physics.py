"""The simulated site: solar, load, battery and grid advanced in time under an operation mode.

One state model (`Site`) is advanced by `advance(dt_s)` in sub-steps of at most `max_step_s`.
Within a sub-step every power is constant, so the energy counters are exactly the integral of
the readings, and load_w == site_w + battery_w + solar_w holds exactly at every instant.
Sub-steps also end where the battery reaches the level at which the controller's decision
changes (reserve, empty, full) and where a grid reconnection completes.

Signs follow the gateway: site > 0 imports, battery > 0 discharges, load > 0 consumes,
solar > 0 produces. Percentages are on the raw scale unless a name says `app`.

The settings the app changes through the cloud act on grid-connected operation only:
`grid_charging_allowed` (False: autonomous mode never charges from the grid, solar surplus
still charges), `export_rule` (ExportRule: the battery discharges to the grid only under
BATTERY_OK, in an autonomous peak, when the config allows battery export; NEVER also curtails
solar to what the home and the battery take, so nothing is exported), `storm_watch` (on: the
battery charges to 100 %, from the grid if need be, and holds there in every mode but
scheduler). `off_grid_ev_reserve_app_percent` is stored and reported only: the site models no
vehicle charger, so there is no EV load for it to stop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, GridStatusValue, MeterName, OperationMode
from tegkit.percent import HIDDEN_BOTTOM_PERCENT, raw_to_app
from tegkit.sim.battery import Battery
from tegkit.sim.load import LoadModel
from tegkit.sim.noise import unit_hash
from tegkit.sim.siteconfig import (
    POWERWALL_POWER_KW,
    EnergyCounter,
    SiteConfig,
    SiteSnapshot,
    StepObserver,
    check_range,
)
from tegkit.sim.solar import SolarModel

TRANSITION_S = 30.0  # islanded -> connected: the gateway resynchronises before closing
BELOW_RESERVE_CHARGE_W_PER_POWERWALL = 1700.0  # slow grid charge back up to the reserve
CURTAIL_SHIFT_HZ = 5.0  # off grid and full: shift frequency so solar inverters back off
DEFAULT_RESERVE_RAW_PERCENT = 24.0  # the app's 20%
_OFFSET_BUCKET_S = 900  # UTC offsets change only on quarter hours
_STREAM_FREQUENCY = 31
_STREAM_VOLTAGE = 32


class Site:
    """A simulated Powerwall site; see the module docstring for the conventions."""

    def __init__(
        self, config: SiteConfig, start: datetime, seed: int = 0, max_step_s: float = 60.0
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise InvalidInputError("start", "an aware datetime (with a UTC offset)", start)
        if not max_step_s > 0.0:
            raise InvalidInputError("max_step_s", "a positive number of seconds", max_step_s)
        self.config = config
        self.seed = seed
        self.max_step_s = float(max_step_s)
        self._zone = ZoneInfo(config.timezone)
        self._epoch_s = start.timestamp()
        self._solar = SolarModel(config.latitude_deg, config.longitude_deg, config.array_kw, seed)
        self._load = LoadModel(config.daily_load_kwh, seed)
        self._battery = Battery(
            config.powerwalls,
            config.powerwall_power_kw,
            config.usable_kwh_per_powerwall,
            config.round_trip_efficiency,
            config.initial_soe_raw_percent,
        )
        self._below_reserve_charge_w = BELOW_RESERVE_CHARGE_W_PER_POWERWALL * config.powerwalls
        # Off grid the pack may go below the reserve but never into its hidden 5% (app 0%).
        self._bottom_wh = self._battery.raw_to_wh(HIDDEN_BOTTOM_PERCENT)
        self._mode: str = OperationMode.SELF_CONSUMPTION
        self._reserve_raw = DEFAULT_RESERVE_RAW_PERCENT
        self._floor_wh = 0.0
        self._cloud_cover = 0.0
        self._running = True
        self._outage = False
        self._transition_end_s: float | None = None
        self._dark = False
        self._curtailing = False
        self._solar_override_w: float | None = None
        self._load_override_w: float | None = None
        self._offset_bucket = -(1 << 62)
        self._offset_s = 0.0
        self._tou_day = -(1 << 62)
        self._tou_spans: tuple[tuple[float, float, str], ...] = ()
        self._solar_w = self._load_w = self._battery_w = self._site_w = 0.0
        self._target_wh = 0.0
        self._grid_charging_allowed = True
        self._export_rule = ExportRule.BATTERY_OK if config.battery_export else ExportRule.PV_ONLY
        self._storm_watch = False
        self._off_grid_ev_reserve_app = 0.0
        #: told of every sub-step (constant powers), e.g. to keep the cloud's energy history
        self.observer: StepObserver | None = None
        self._seed_counters(random.Random(seed))
        self._update_floor()
        self._recompute()

    # --- time -----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """Simulated time, aware, in the site's time zone."""
        return datetime.fromtimestamp(self._epoch_s, tz=self._zone)

    @property
    def epoch_s(self) -> float:
        """Simulated time as Unix seconds."""
        return self._epoch_s

    def advance(self, dt_s: float) -> None:
        """Move simulated time forward by `dt_s` seconds, integrating every meter."""
        if not dt_s >= 0.0 or math.isinf(dt_s):
            raise InvalidInputError("dt_s", "a finite number of seconds >= 0", dt_s)
        remaining = dt_s
        battery = self._battery
        while remaining > 1e-9:
            h = remaining if remaining < self.max_step_s else self.max_step_s
            battery_w = self._battery_w
            if battery_w != 0.0:
                to_target = battery.seconds_to(self._target_wh, battery_w)
                if to_target < h:
                    h = to_target if to_target > 1e-6 else 1e-6
            ends = self._transition_end_s
            if ends is not None and ends - self._epoch_s < h:
                h = max(ends - self._epoch_s, 1e-6)
            hours = h / 3600.0
            site_w = self._site_w
            if site_w > 0.0:
                self._site_imported_wh += site_w * hours
            else:
                self._site_exported_wh -= site_w * hours
            if battery_w > 0.0:
                self._battery_exported_wh += battery_w * hours
            else:
                self._battery_imported_wh -= battery_w * hours
            self._load_imported_wh += self._load_w * hours
            self._solar_exported_wh += self._solar_w * hours
            if self.observer is not None:
                self.observer.record_step(
                    self._epoch_s, h, self._solar_w, self._load_w, battery_w, site_w,
                    self._islanded,
                )  # fmt: skip
            battery.apply(battery_w, h, self._target_wh)
            self._epoch_s += h
            remaining -= h
            if ends is not None and self._epoch_s >= ends - 1e-9:
                self._transition_end_s = None
                self._dark = False
            self._recompute()

    # --- controls -------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """Operation mode: any OperationMode (SCHEDULER is accepted and idles the battery)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in tuple(OperationMode):
            raise InvalidInputError("mode", "one of " + ", ".join(OperationMode), value)
        self._mode = value
        self._recompute()

    @property
    def backup_reserve_raw_percent(self) -> float:
        """Backup reserve on the raw scale (0..100); the app's 20% is raw 24."""
        return self._reserve_raw

    @backup_reserve_raw_percent.setter
    def backup_reserve_raw_percent(self, value: float) -> None:
        check_range("backup_reserve_raw_percent", value, 0.0, 100.0)
        self._reserve_raw = float(value)
        self._update_floor()
        self._recompute()

    @property
    def grid_charging_allowed(self) -> bool:
        """Whether autonomous mode may charge the battery from the grid (the cloud's
        `disallow_charge_from_grid_with_solar_installed`, inverted). Solar surplus always may."""
        return self._grid_charging_allowed

    @grid_charging_allowed.setter
    def grid_charging_allowed(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise InvalidInputError("grid_charging_allowed", "true or false", value)
        self._grid_charging_allowed = value
        self._recompute()

    @property
    def export_rule(self) -> ExportRule:
        """What may go to the grid (`customer_preferred_export_rule`); see the module docstring."""
        return self._export_rule

    @export_rule.setter
    def export_rule(self, value: str) -> None:
        if value not in tuple(ExportRule):
            allowed = "one of " + ", ".join(rule.value for rule in ExportRule)
            raise InvalidInputError("export_rule", allowed, value)
        self._export_rule = ExportRule(value)
        self._recompute()

    @property
    def storm_watch(self) -> bool:
        """Storm watch (`storm_mode_enabled`): on, the battery charges to 100 % and holds."""
        return self._storm_watch

    @storm_watch.setter
    def storm_watch(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise InvalidInputError("storm_watch", "true or false", value)
        self._storm_watch = value
        self._recompute()

    @property
    def off_grid_ev_reserve_app_percent(self) -> float:
        """Off-grid EV charging reserve, app percent (`off_grid_vehicle_charging_reserve_percent`).

        Stored and reported only: no vehicle charger is modelled, so it changes no power."""
        return self._off_grid_ev_reserve_app

    @off_grid_ev_reserve_app_percent.setter
    def off_grid_ev_reserve_app_percent(self, value: float) -> None:
        check_range("off_grid_ev_reserve_app_percent", value, 0.0, 100.0)
        self._off_grid_ev_reserve_app = float(value)

    @property
    def cloud_cover(self) -> float:
        """Cloudiness 0 (clear) .. 1 (overcast)."""
        return self._cloud_cover

    @cloud_cover.setter
    def cloud_cover(self, value: float) -> None:
        check_range("cloud_cover", value, 0.0, 1.0)
        self._cloud_cover = float(value)
        self._recompute()

    @property
    def running(self) -> bool:
        """Whether the sitemaster runs; stopped, the battery idles (live endpoints answer 502)."""
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise InvalidInputError("running", "true or false", value)
        self._running = value
        self._recompute()

    @property
    def solar_override_w(self) -> float | None:
        """Fixed solar power available, W, instead of the sun model (None: the model)."""
        return self._solar_override_w

    @solar_override_w.setter
    def solar_override_w(self, value: float | None) -> None:
        if value is not None:
            check_range("solar_override_w", value, 0.0, 1e6)
        self._solar_override_w = None if value is None else float(value)
        self._recompute()

    @property
    def load_override_w(self) -> float | None:
        """Fixed household demand, W, instead of the load model (None: the model)."""
        return self._load_override_w

    @load_override_w.setter
    def load_override_w(self, value: float | None) -> None:
        if value is not None:
            check_range("load_override_w", value, 0.0, 1e6)
        self._load_override_w = None if value is None else float(value)
        self._recompute()

    def set_overrides(self, solar_w: float, load_w: float) -> None:
        """Both overrides at once (solar available, household demand, W), derived once: the
        full-speed simulation feeds recorded or precomputed powers this way every step."""
        if not (  # the usual case checked inline: this runs every step of a simulated year
            type(solar_w) is float
            and type(load_w) is float
            and 0.0 <= solar_w <= 1e6
            and 0.0 <= load_w <= 1e6
        ):
            check_range("solar_override_w", solar_w, 0.0, 1e6)
            check_range("load_override_w", load_w, 0.0, 1e6)
        self._solar_override_w = float(solar_w)
        self._load_override_w = float(load_w)
        self._recompute()

    def skip(self, dt_s: float) -> None:
        """Move simulated time forward by `dt_s` seconds with no energy flowing: a span
        nothing is known about (a gap in recorded history). The pack keeps its energy and
        the meters do not move; a grid reconnection due within the span completes."""
        check_range("dt_s", dt_s, 0.0, 1e12)
        self._epoch_s += dt_s
        ends = self._transition_end_s
        if ends is not None and self._epoch_s >= ends - 1e-9:
            self._transition_end_s = None
            self._dark = False
        self._recompute()

    def set_soe_raw_percent(self, raw_percent: float) -> None:
        """Put the pack at a state of energy (raw scale), e.g. for a test or a scenario."""
        check_range("soe_raw_percent", raw_percent, 0.0, 100.0)
        self._battery.energy_wh = self._battery.raw_to_wh(raw_percent)
        self._recompute()

    def set_counters(self, counters: Mapping[str, EnergyCounter]) -> None:
        """Start the lifetime meters (keyed by MeterName) at these values, e.g. a real
        gateway's for a replay; they grow from there. Meters not named keep theirs. Load export
        and solar import are not modelled: they stay at the values given."""
        for name, counter in counters.items():
            check_range(f"{name}.imported_wh", counter.imported_wh, 0.0, 1e15)
            check_range(f"{name}.exported_wh", counter.exported_wh, 0.0, 1e15)
            setattr(self, f"_{MeterName(name)}_imported_wh", float(counter.imported_wh))
            setattr(self, f"_{MeterName(name)}_exported_wh", float(counter.exported_wh))
        self._recompute()

    def add_load_spike(self, power_w: float, duration_s: float) -> None:
        """Add `power_w` of household demand from now for `duration_s` seconds."""
        check_range("power_w", power_w, 0.0, 1e6)
        check_range("duration_s", duration_s, 0.0, 1e9)
        self._load.add_spike(self._epoch_s, float(power_w), float(duration_s))
        self._recompute()

    def start_outage(self) -> None:
        """The grid goes down: the site islands and the battery carries the home."""
        self._outage = True
        self._transition_end_s = None
        self._recompute()

    def end_outage(self) -> None:
        """The grid returns: TRANSITION_S seconds of resynchronising, then connected."""
        if self._outage:
            self._outage = False
            self._transition_end_s = self._epoch_s + TRANSITION_S
            self._recompute()

    # --- readings -------------------------------------------------------------------------

    @property
    def solar_w(self) -> float:
        """Solar production, W (>= 0; curtailed off grid when nothing can take it)."""
        return self._solar_w

    @property
    def load_w(self) -> float:
        """Household consumption served, W (0 while the home is dark)."""
        return self._load_w

    @property
    def battery_w(self) -> float:
        """Battery power at its meter, W: > 0 discharging, < 0 charging."""
        return self._battery_w

    @property
    def site_w(self) -> float:
        """Grid power, W: > 0 importing, < 0 exporting; 0 off grid."""
        return self._site_w

    @property
    def frequency_hz(self) -> float:
        """Frequency the gateway measures: nominal +- noise; shifted up to curtail solar."""
        nominal = self.config.nominal_frequency_hz
        if self._dark:
            return 0.0
        if self._curtailing:
            soe = self._battery.soe_raw_percent
            return nominal + CURTAIL_SHIFT_HZ * min(1.0, max(0.2, (soe - 95.0) / 4.5))
        noise = unit_hash(self.seed, _STREAM_FREQUENCY, int(self._epoch_s // 5)) - 0.5
        return nominal + (0.005 if self._islanded else 0.03) * noise

    @property
    def voltage_v(self) -> float:
        """RMS voltage, V: nominal, a little noise, a little sag when importing."""
        if self._dark:
            return 0.0
        noise = unit_hash(self.seed, _STREAM_VOLTAGE, int(self._epoch_s // 5)) - 0.5
        return self.config.nominal_voltage_v * (1.0 + 0.01 * noise) - 0.0004 * self._site_w

    @property
    def soe_raw_percent(self) -> float:
        """State of energy, gateway raw scale (0..100)."""
        return self._battery.soe_raw_percent

    @property
    def soe_app_percent(self) -> float:
        """State of energy, app scale (raw 5 reads as app 0)."""
        return raw_to_app(self._battery.soe_raw_percent)

    @property
    def energy_remaining_wh(self) -> float:
        """Energy in the pack (nominal_energy_remaining): soe_raw_percent x full_pack_wh / 100."""
        return self._battery.energy_wh

    @property
    def full_pack_wh(self) -> float:
        """Full pack energy (nominal_full_pack_energy): usable / 0.95 per Powerwall."""
        return self._battery.full_pack_wh

    @property
    def max_charge_power_w(self) -> float:
        """Charge power the pack accepts now (rated, tapered above raw 95%)."""
        return self._battery.max_charge_w() if self._running else 0.0

    @property
    def max_discharge_power_w(self) -> float:
        """Discharge power the pack can give now (rated; 0 at the hidden bottom or stopped)."""
        return self._battery.max_discharge_w(self._bottom_wh) if self._running else 0.0

    @property
    def grid_status(self) -> str:
        """CONNECTED, ISLANDED_ACTIVE or TRANSITION_TO_GRID (the ones this site goes through)."""
        if self._outage:
            return GridStatusValue.ISLANDED_ACTIVE
        if self._transition_end_s is not None:
            return GridStatusValue.TRANSITION_TO_GRID
        return GridStatusValue.CONNECTED

    @property
    def outage(self) -> bool:
        """Whether the grid is down (start_outage without end_outage)."""
        return self._outage

    @property
    def home_dark(self) -> bool:
        """Whether the home has no power (off grid with an empty battery, or stopped)."""
        return self._dark

    @property
    def curtailing(self) -> bool:
        """Whether solar is being curtailed off grid (frequency shifted up)."""
        return self._curtailing

    @property
    def counters(self) -> dict[str, EnergyCounter]:
        """Lifetime energy per meter (keyed by MeterName), Wh."""
        return {
            MeterName.SITE: EnergyCounter(self._site_imported_wh, self._site_exported_wh),
            MeterName.BATTERY: EnergyCounter(self._battery_imported_wh, self._battery_exported_wh),
            MeterName.LOAD: EnergyCounter(self._load_imported_wh, self._load_exported_wh),
            MeterName.SOLAR: EnergyCounter(self._solar_imported_wh, self._solar_exported_wh),
        }

    def snapshot(self) -> SiteSnapshot:
        """All readings, counters and the time, taken together."""
        return SiteSnapshot(
            now=self.now,
            solar_w=self._solar_w,
            load_w=self._load_w,
            battery_w=self._battery_w,
            site_w=self._site_w,
            frequency_hz=self.frequency_hz,
            voltage_v=self.voltage_v,
            soe_raw_percent=self.soe_raw_percent,
            soe_app_percent=self.soe_app_percent,
            energy_remaining_wh=self.energy_remaining_wh,
            full_pack_wh=self.full_pack_wh,
            max_charge_power_w=self.max_charge_power_w,
            max_discharge_power_w=self.max_discharge_power_w,
            grid_status=self.grid_status,
            home_dark=self._dark,
            running=self._running,
            curtailing=self._curtailing,
            mode=self._mode,
            backup_reserve_raw_percent=self._reserve_raw,
            cloud_cover=self._cloud_cover,
            grid_charging_allowed=self._grid_charging_allowed,
            export_rule=self._export_rule,
            storm_watch=self._storm_watch,
            off_grid_ev_reserve_app_percent=self._off_grid_ev_reserve_app,
            powerwalls=self.config.powerwalls,
            counters=MappingProxyType(self.counters),
        )

    # --- the controller -------------------------------------------------------------------

    @property
    def _islanded(self) -> bool:
        return self._outage or self._transition_end_s is not None

    def _update_floor(self) -> None:
        # On grid the battery never goes below the reserve nor below the hidden 5%.
        self._floor_wh = self._battery.raw_to_wh(max(self._reserve_raw, HIDDEN_BOTTOM_PERCENT))

    def _recompute(self) -> None:
        """Derive every power at the current instant from the state and the controls."""
        t = self._epoch_s
        bucket = int(t // _OFFSET_BUCKET_S)
        if bucket != self._offset_bucket:
            instant = datetime.fromtimestamp(bucket * _OFFSET_BUCKET_S, tz=self._zone)
            offset = instant.utcoffset()
            self._offset_s = offset.total_seconds() if offset is not None else 0.0
            self._offset_bucket = bucket
        local_s = t + self._offset_s
        local_day = int(local_s // 86400)
        local_s_of_day = local_s - local_day * 86400
        solar = self._solar_override_w
        if solar is None:
            solar = self._solar.available_w(t, self._cloud_cover)
        demand = self._load_override_w
        if demand is None:
            weekend = (local_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            demand = self._load.demand_w(t, local_s_of_day, weekend)
        battery = self._battery
        self._curtailing = False
        if self._outage or self._transition_end_s is not None:
            self._island(solar, demand)
            return
        self._dark = False
        surplus = solar - demand
        battery_w = 0.0
        target = battery.full_pack_wh
        mode = self._mode
        if not self._running or mode == OperationMode.SCHEDULER:
            pass
        elif mode == OperationMode.BACKUP or self._storm_watch:
            battery_w = -battery.max_charge_w()
        else:
            kind = "mid"
            if mode == OperationMode.AUTONOMOUS and self.config.tariff is not None:
                kind = self._tou_kind(local_day, local_s_of_day)
            floor_wh = self._floor_wh
            # Autonomous with grid charging disallowed: only solar surplus charges the battery.
            from_grid = mode != OperationMode.AUTONOMOUS or self._grid_charging_allowed
            if kind == "cheap" and self.config.grid_charging and from_grid:
                battery_w = -battery.max_charge_w()
            elif battery.energy_wh < floor_wh - 1e-6 and (from_grid or surplus > 0.0):
                extra = surplus if surplus > 0.0 else 0.0
                grid_w = self._below_reserve_charge_w if from_grid else 0.0
                battery_w = -min(battery.max_charge_w(), extra + grid_w)
                target = floor_wh
            elif surplus >= 0.0:
                battery_w = -min(surplus, battery.max_charge_w())
            elif kind in ("hold", "cheap"):
                pass  # autonomous: the grid is cheaper now than in the peak to come
            else:
                need = -surplus
                if (
                    kind == "peak"
                    and self.config.battery_export
                    and self._export_rule == ExportRule.BATTERY_OK
                ):
                    need = battery.rated_power_w
                battery_w = min(need, battery.max_discharge_w(floor_wh))
                target = floor_wh
        site_w = demand - battery_w - solar
        if site_w < 0.0 and self._export_rule == ExportRule.NEVER:
            solar = demand - battery_w  # curtailed to what the home and the battery take
            site_w = 0.0
        self._solar_w = solar
        self._load_w = demand
        self._battery_w = battery_w
        self._site_w = site_w if abs(site_w) > 1e-9 else 0.0  # no -0.0 from rounding
        self._target_wh = target

    def _island(self, solar: float, demand: float) -> None:
        # Off grid the battery balances the home alone: site is 0, solar is curtailed to
        # what the home and the battery take, demand beyond the inverter's limit is shed.
        battery = self._battery
        if self._dark and (not self._running or solar <= demand):
            self._set_dark()
            return
        if not self._running:
            self._set_dark()
            return
        self._dark = False
        surplus = solar - demand
        if surplus >= 0.0:
            charge = min(surplus, battery.max_charge_w())
            self._curtailing = surplus - charge > 1.0
            self._solar_w = demand + charge
            self._load_w = demand
            self._battery_w = -charge
            self._target_wh = battery.full_pack_wh
        else:
            discharge = min(-surplus, battery.max_discharge_w(self._bottom_wh))
            if discharge <= 0.0:
                self._set_dark()
                return
            self._solar_w = solar
            self._load_w = solar + discharge
            self._battery_w = discharge
            self._target_wh = self._bottom_wh
        self._site_w = 0.0

    def _set_dark(self) -> None:
        self._dark = True
        self._solar_w = self._load_w = self._battery_w = self._site_w = 0.0
        self._target_wh = self._battery.energy_wh

    def _tou_kind(self, local_day: int, local_s_of_day: float) -> str:
        # "peak" is the dearest buy price of the day, "cheap" the cheapest; any other time
        # before the day's last peak is "hold" (keep the energy for the peak), after it "mid".
        # A flat tariff is "mid" all day.
        if local_day != self._tou_day:
            assert self.config.tariff is not None
            spans = self.config.tariff.schedule_for(date.fromordinal(local_day + 719163))
            prices = [span.price.buy_per_kwh for span in spans]
            high, low = max(prices), min(prices)
            peak_starts = [s.start_minute for s in spans if s.price.buy_per_kwh == high]
            last_peak_start = max(peak_starts)
            table = []
            for span in spans:
                buy = span.price.buy_per_kwh
                kind = "mid"
                if high > low:
                    if buy == high:
                        kind = "peak"
                    elif buy == low:
                        kind = "cheap"
                    elif span.start_minute < last_peak_start:
                        kind = "hold"
                table.append((span.start_minute * 60.0, span.end_minute * 60.0, kind))
            self._tou_spans = tuple(table)
            self._tou_day = local_day
        for start_s, end_s, kind in self._tou_spans:
            if start_s <= local_s_of_day < end_s:
                return kind
        return "mid"

    def _seed_counters(self, rnd: random.Random) -> None:
        # A site that has run for a few years: plausible lifetime totals that balance.
        cfg = self.config
        days = 365.0 * rnd.uniform(1.0, 4.0)
        self._load_imported_wh = cfg.daily_load_kwh * 1000.0 * days * rnd.uniform(0.9, 1.1)
        self._load_exported_wh = self._solar_imported_wh = 0.0  # not modelled
        self._solar_exported_wh = cfg.array_kw * 1000.0 * 4.0 * days * rnd.uniform(0.85, 1.1)
        usable_wh = cfg.powerwalls * cfg.usable_kwh_per_powerwall * 1000.0
        self._battery_exported_wh = usable_wh * 0.6 * days * rnd.uniform(0.7, 1.0)
        self._battery_imported_wh = self._battery_exported_wh / cfg.round_trip_efficiency
        self._site_exported_wh = self._solar_exported_wh * rnd.uniform(0.2, 0.4)
        net_wh = (
            self._load_imported_wh
            - self._solar_exported_wh
            - self._battery_exported_wh
            + self._battery_imported_wh
            + self._site_exported_wh
        )
        self._site_imported_wh = max(net_wh, 0.05 * self._load_imported_wh)


__all__ = [
    "DEFAULT_RESERVE_RAW_PERCENT",
    "POWERWALL_POWER_KW",
    "EnergyCounter",
    "Site",
    "SiteConfig",
    "SiteSnapshot",
]
