"""The Powerwall pack: energy on the raw scale, power limits, charge taper, efficiency losses."""

from __future__ import annotations

import math

from tegkit.percent import HIDDEN_BOTTOM_PERCENT

TAPER_START_RAW_PERCENT = 95.0  # charge power falls linearly from here to 0 at 100%
TRICKLE_SHARE = 0.01  # ... but not below 1% of rated, so the pack does reach 100%


class Battery:
    """All Powerwalls of a site as one pack. Power is AC at the meter: > 0 discharges."""

    __slots__ = (
        "charge_efficiency",
        "discharge_efficiency",
        "energy_wh",
        "full_pack_wh",
        "rated_power_w",
    )

    def __init__(
        self,
        powerwalls: int,
        powerwall_power_kw: float,
        usable_kwh_per_powerwall: float,
        round_trip_efficiency: float,
        soe_raw_percent: float,
    ) -> None:
        # Usable energy is the span raw 5..100, so the full pack is usable / 0.95.
        usable_share = 1.0 - HIDDEN_BOTTOM_PERCENT / 100.0
        self.full_pack_wh = powerwalls * usable_kwh_per_powerwall * 1000.0 / usable_share
        self.rated_power_w = powerwalls * powerwall_power_kw * 1000.0
        self.charge_efficiency = math.sqrt(round_trip_efficiency)
        self.discharge_efficiency = self.charge_efficiency
        self.energy_wh = self.full_pack_wh * soe_raw_percent / 100.0

    @property
    def soe_raw_percent(self) -> float:
        """State of energy on the gateway's raw scale (0..100)."""
        return self.energy_wh * 100.0 / self.full_pack_wh

    def raw_to_wh(self, raw_percent: float) -> float:
        """Pack energy at a raw percent."""
        return self.full_pack_wh * raw_percent / 100.0

    def max_charge_w(self) -> float:
        """Charge power the pack accepts now: rated, tapering above 95% raw, 0 when full."""
        soe = self.energy_wh * 100.0 / self.full_pack_wh
        if soe <= TAPER_START_RAW_PERCENT:
            return self.rated_power_w
        if soe >= 100.0:
            return 0.0
        taper = (100.0 - soe) / (100.0 - TAPER_START_RAW_PERCENT)
        return self.rated_power_w * max(TRICKLE_SHARE, taper)

    def max_discharge_w(self, floor_wh: float) -> float:
        """Discharge power available while the pack holds more than `floor_wh`."""
        return self.rated_power_w if self.energy_wh > floor_wh else 0.0

    def seconds_to(self, target_wh: float, battery_w: float) -> float:
        """Seconds until `battery_w` moves the pack to `target_wh` (inf if it never does)."""
        if battery_w > 0.0 and target_wh < self.energy_wh:
            return (self.energy_wh - target_wh) * 3600.0 * self.discharge_efficiency / battery_w
        if battery_w < 0.0 and target_wh > self.energy_wh:
            return (target_wh - self.energy_wh) * 3600.0 / (-battery_w * self.charge_efficiency)
        return math.inf

    def apply(self, battery_w: float, dt_s: float, target_wh: float) -> None:
        """Move energy for `dt_s` at `battery_w`, snapping to `target_wh` if it is crossed."""
        if battery_w > 0.0:
            energy = self.energy_wh - battery_w * dt_s / 3600.0 / self.discharge_efficiency
            if energy < target_wh <= self.energy_wh:
                energy = target_wh
        elif battery_w < 0.0:
            energy = self.energy_wh - battery_w * dt_s / 3600.0 * self.charge_efficiency
            if energy > target_wh >= self.energy_wh:
                energy = target_wh
        else:
            return
        self.energy_wh = min(self.full_pack_wh, max(0.0, energy))
