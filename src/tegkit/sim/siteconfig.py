"""What a simulated site is (SiteConfig) and what it reads (EnergyCounter, SiteSnapshot)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule
from tegkit.tariff import Tariff

POWERWALL_POWER_KW: Final = (5.0, 5.8, 7.0, 10.0)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """What the site is: place, array, batteries, tariff, household size."""

    latitude_deg: float = 37.77
    longitude_deg: float = -122.42
    timezone: str = "America/Los_Angeles"
    array_kw: float = 7.0
    powerwalls: int = 1
    powerwall_power_kw: float = 5.0
    usable_kwh_per_powerwall: float = 13.5
    round_trip_efficiency: float = 0.90
    nominal_voltage_v: float = 240.0
    nominal_frequency_hz: float = 60.0
    tariff: Tariff | None = None
    grid_charging: bool = False
    battery_export: bool = False  # autonomous: discharge at full power in peak and export
    daily_load_kwh: float = 25.0
    initial_soe_raw_percent: float = 50.0

    def __post_init__(self) -> None:
        check_range("latitude_deg", self.latitude_deg, -90.0, 90.0)
        check_range("longitude_deg", self.longitude_deg, -180.0, 180.0)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise InvalidInputError("timezone", "an IANA time zone name", self.timezone) from exc
        check_range("array_kw", self.array_kw, 0.0, 1000.0)
        if not isinstance(self.powerwalls, int) or not 1 <= self.powerwalls <= 10:
            raise InvalidInputError("powerwalls", "an integer 1..10", self.powerwalls)
        if self.powerwall_power_kw not in POWERWALL_POWER_KW:
            raise InvalidInputError(
                "powerwall_power_kw", f"one of {list(POWERWALL_POWER_KW)}", self.powerwall_power_kw
            )
        check_range("usable_kwh_per_powerwall", self.usable_kwh_per_powerwall, 1.0, 100.0)
        check_range("round_trip_efficiency", self.round_trip_efficiency, 0.5, 1.0)
        check_range("nominal_voltage_v", self.nominal_voltage_v, 100.0, 480.0)
        if self.nominal_frequency_hz not in (50.0, 60.0):
            raise InvalidInputError("nominal_frequency_hz", "50 or 60", self.nominal_frequency_hz)
        if self.tariff is not None and not isinstance(self.tariff, Tariff):
            raise InvalidInputError("tariff", "a Tariff or None", self.tariff)
        for name in ("grid_charging", "battery_export"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(name, "true or false", getattr(self, name))
        check_range("daily_load_kwh", self.daily_load_kwh, 0.0, 1000.0)
        check_range("initial_soe_raw_percent", self.initial_soe_raw_percent, 0.0, 100.0)


@dataclass(frozen=True, slots=True)
class EnergyCounter:
    """A meter's lifetime energy, Wh; both only grow."""

    imported_wh: float
    exported_wh: float


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """Every reading of the site at one instant, consistent with each other."""

    now: datetime
    solar_w: float
    load_w: float
    battery_w: float
    site_w: float
    frequency_hz: float
    voltage_v: float
    soe_raw_percent: float
    soe_app_percent: float
    energy_remaining_wh: float
    full_pack_wh: float
    max_charge_power_w: float
    max_discharge_power_w: float
    grid_status: str
    home_dark: bool
    running: bool
    curtailing: bool
    mode: str
    backup_reserve_raw_percent: float
    cloud_cover: float
    powerwalls: int
    counters: Mapping[str, EnergyCounter]
    grid_charging_allowed: bool = True
    export_rule: ExportRule = ExportRule.PV_ONLY
    storm_watch: bool = False
    off_grid_ev_reserve_app_percent: float = 0.0


class StepObserver(Protocol):
    """Told of each physics sub-step, in which every power is constant."""

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
        """`start_s` Unix seconds; `dt_s` long; powers with the gateway's signs."""


def check_range(field: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
        or math.isnan(value)
    ):
        raise InvalidInputError(field, f"a number from {low:g} to {high:g}", value)
