"""Live data models: meter aggregates, state of energy, grid status, grid faults, system status.

Signs follow the gateway: site > 0 imports, battery > 0 discharges, load > 0 consumes,
solar > 0 produces. Energy counters are cumulative watt-hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from tegkit import percent
from tegkit.models import _lenient
from tegkit.models._base import Model, Part, field, has_source
from tegkit.models.vocabulary import GridStatusValue, MeterName

__all__ = [
    "BatteryBlock",
    "GridFault",
    "GridFaults",
    "GridStatus",
    "MeterAggregate",
    "MetersAggregates",
    "StateOfEnergy",
    "SystemStatus",
]


class MeterAggregate(Part, kw_only=True):
    """One meter of /api/meters/aggregates (also the cached readings of /api/meters/site)."""

    # Only the power is required: a reading without it is no reading; the rest may go.
    instant_power_w: float = field(name="instant_power")
    last_communication_time: dt.datetime | None = None
    instant_reactive_power_var: float | None = field(default=None, name="instant_reactive_power")
    instant_apparent_power_va: float | None = field(default=None, name="instant_apparent_power")
    frequency_hz: float | None = field(default=None, name="frequency")
    energy_exported_wh: float | None = field(default=None, name="energy_exported")
    energy_imported_wh: float | None = field(default=None, name="energy_imported")
    instant_average_voltage_v: float | None = field(default=None, name="instant_average_voltage")
    instant_average_current_a: float | None = field(default=None, name="instant_average_current")
    instant_total_current_a: float | None = field(default=None, name="instant_total_current")
    i_a_current_a: float | None = field(default=None, name="i_a_current")
    i_b_current_a: float | None = field(default=None, name="i_b_current")
    i_c_current_a: float | None = field(default=None, name="i_c_current")
    # Go's zero time (year 1) where a phase was never read.
    last_phase_voltage_communication_time: dt.datetime | None = None
    last_phase_power_communication_time: dt.datetime | None = None
    last_phase_energy_communication_time: dt.datetime | None = None
    v_l1n_v: float | None = field(default=None, name="v_l1n")
    v_l2n_v: float | None = field(default=None, name="v_l2n")
    v_l3n_v: float | None = field(default=None, name="v_l3n")
    real_power_a_w: float | None = field(default=None, name="real_power_a")
    real_power_b_w: float | None = field(default=None, name="real_power_b")
    real_power_c_w: float | None = field(default=None, name="real_power_c")
    reactive_power_a_var: float | None = field(default=None, name="reactive_power_a")
    reactive_power_b_var: float | None = field(default=None, name="reactive_power_b")
    reactive_power_c_var: float | None = field(default=None, name="reactive_power_c")
    energy_exported_a_wh: float | None = field(default=None, name="energy_exported_a")
    energy_exported_b_wh: float | None = field(default=None, name="energy_exported_b")
    energy_exported_c_wh: float | None = field(default=None, name="energy_exported_c")
    energy_imported_a_wh: float | None = field(default=None, name="energy_imported_a")
    energy_imported_b_wh: float | None = field(default=None, name="energy_imported_b")
    energy_imported_c_wh: float | None = field(default=None, name="energy_imported_c")
    serial_number: str | None = None
    version: str | None = None
    timeout_ns: int | None = field(default=None, name="timeout")  # a Go duration: 1.5e9 = 1.5 s
    num_meters_aggregated: int | None = None

    @property
    def communicated(self) -> bool | None:
        """False when the gateway never heard from this meter (Go zero time); None: not sent."""
        when = self.last_communication_time
        return None if when is None else when.year > 1


# the four meters, then three that 2018 firmware also listed (always zero there)
_METER_NAMES: Final[tuple[str, ...]] = (*MeterName, "busway", "frequency", "generator")


class MetersAggregates(Model, kw_only=True):
    """GET /api/meters/aggregates: power and energy counters of each meter the gateway knows."""

    site: MeterAggregate | None = None
    battery: MeterAggregate | None = None
    load: MeterAggregate | None = None
    solar: MeterAggregate | None = None
    # Seen (all zero) in 2018 captures only.
    busway: MeterAggregate | None = None
    frequency: MeterAggregate | None = None
    generator: MeterAggregate | None = None

    def meters(self) -> Iterator[tuple[str, MeterAggregate]]:
        """Every meter present as (gateway name, reading); names this model lacks come from raw."""
        for name in _METER_NAMES:
            meter = getattr(self, name)
            if meter is not None:
                yield name, meter
        if not has_source(self):
            return  # built in code: nothing beyond the fields
        # A re-cased known name ("Site") was read as that meter already.
        for name in [key for key in self.raw if _lenient.fold(key) not in _METER_NAMES]:
            value = self.raw[name]
            if isinstance(value, dict):
                try:
                    yield name, _lenient.convert(value, MeterAggregate)
                except msgspec.ValidationError:
                    continue  # not a meter reading; still reachable through .raw


class StateOfEnergy(Model, kw_only=True):
    """GET /api/system_status/soe: state of energy on the gateway's raw percent scale."""

    raw_percent: float = field(name="percentage")

    @property
    def app_percent(self) -> float:
        """The same charge on the app scale (raw = 5 + 0.95 x app)."""
        return percent.raw_to_app(self.raw_percent)


class GridStatus(Model, kw_only=True):
    """GET /api/system_status/grid_status: connected, islanded or reconnecting."""

    grid_status: str
    grid_services_active: bool | None = None

    @property
    def connected(self) -> bool:
        return self.grid_status == GridStatusValue.CONNECTED

    @property
    def islanded(self) -> bool:
        return self.grid_status == GridStatusValue.ISLANDED_ACTIVE


class GridFault(Part, kw_only=True):
    """One alert of /api/system_status/grid_faults."""

    alert_name: str
    timestamp_ms: int | None = field(default=None, name="timestamp")  # Unix epoch, milliseconds
    alert_is_fault: bool | None = None
    decoded_alert: str | None = None  # a JSON array, as text
    alert_raw: int | None = None
    git_hash: str | None = None
    site_uid: str | None = None
    ecu_type: str | None = None
    ecu_package_part_number: str | None = None
    ecu_package_serial_number: str | None = None

    @property
    def time(self) -> dt.datetime | None:
        """When the alert was raised; None when the gateway did not say."""
        if self.timestamp_ms is None:
            return None
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, tz=dt.UTC)

    def decoded(self) -> list[dict[str, Any]]:
        """The decoded_alert text as a list of {name, value[, units]}; empty if unreadable."""
        if not self.decoded_alert:
            return []
        try:
            items = msgspec.json.decode(self.decoded_alert)
        except msgspec.DecodeError:
            return []
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


GridFaults = list[GridFault]


class BatteryBlock(Part, kw_only=True):
    """One Powerwall in /api/system_status battery_blocks."""

    # The gateway sends "Type" (seen empty) besides the part and serial numbers.
    Type: str | None = None
    package_part_number: str | None = field(default=None, name="PackagePartNumber")
    package_serial_number: str | None = field(default=None, name="PackageSerialNumber")
    disabled_reasons: list[str] | None = None
    pinv_state: str | None = None
    pinv_grid_state: str | None = None
    nominal_energy_remaining_wh: float | None = field(default=None, name="nominal_energy_remaining")
    nominal_full_pack_energy_wh: float | None = field(default=None, name="nominal_full_pack_energy")
    p_out_w: float | None = field(default=None, name="p_out")
    q_out_var: float | None = field(default=None, name="q_out")
    v_out_v: float | None = field(default=None, name="v_out")
    f_out_hz: float | None = field(default=None, name="f_out")
    i_out_a: float | None = field(default=None, name="i_out")
    energy_charged_wh: float | None = field(default=None, name="energy_charged")
    energy_discharged_wh: float | None = field(default=None, name="energy_discharged")
    off_grid: bool | None = None
    vf_mode: bool | None = None
    wobble_detected: bool | None = None
    charge_power_clamped: bool | None = None
    backup_ready: bool | None = None
    op_seq_state: str | None = field(default=None, name="OpSeqState")
    version: str | None = None


def _f(name: str) -> Any:
    return field(default=None, name=name)


class SystemStatus(Model, kw_only=True):
    """GET /api/system_status: pack energy, power limits and the battery blocks."""

    nominal_full_pack_energy_wh: float | None = _f("nominal_full_pack_energy")
    nominal_energy_remaining_wh: float | None = _f("nominal_energy_remaining")
    command_source: str | None = None
    battery_target_power_w: float | None = _f("battery_target_power")
    battery_target_reactive_power_var: float | None = _f("battery_target_reactive_power")
    max_power_energy_remaining_wh: float | None = _f("max_power_energy_remaining")
    max_power_energy_to_be_charged_wh: float | None = _f("max_power_energy_to_be_charged")
    max_charge_power_w: float | None = _f("max_charge_power")
    max_discharge_power_w: float | None = _f("max_discharge_power")
    max_apparent_power_va: float | None = _f("max_apparent_power")
    instantaneous_max_discharge_power_w: float | None = _f("instantaneous_max_discharge_power")
    instantaneous_max_charge_power_w: float | None = _f("instantaneous_max_charge_power")
    grid_services_power_w: float | None = _f("grid_services_power")
    system_island_state: str | None = None  # GridStatusValue
    available_blocks: int | None = None
    battery_blocks: list[BatteryBlock] | None = None
    ffr_power_availability_high_w: float | None = _f("ffr_power_availability_high")
    ffr_power_availability_low_w: float | None = _f("ffr_power_availability_low")
    load_charge_constraint_w: float | None = _f("load_charge_constraint")
    max_sustained_ramp_rate: float | None = None  # unit not documented
    grid_faults: list[GridFault] | None = None
    can_reboot: str | None = None  # "Yes" or the reason why not
    smart_inv_delta_p_w: float | None = _f("smart_inv_delta_p")
    smart_inv_delta_q_var: float | None = _f("smart_inv_delta_q")
    last_toggle_timestamp: dt.datetime | None = None
    solar_real_power_limit_w: float | None = _f("solar_real_power_limit")  # -1: no limit
    score: float | None = None
    blocks_controlled: int | None = None
    primary: bool | None = None
    auxiliary_load_w: float | None = _f("auxiliary_load")
    all_enable_lines_high: bool | None = None
    inverter_nominal_usable_power_w: float | None = _f("inverter_nominal_usable_power")
    expected_energy_remaining_wh: float | None = _f("expected_energy_remaining")

    @property
    def energy_raw_percent(self) -> float | None:
        """Remaining over full-pack energy, in percent (the raw scale); None without a pack."""
        full, remaining = self.nominal_full_pack_energy_wh, self.nominal_energy_remaining_wh
        if full is None or remaining is None or full <= 0:
            return None
        return 100.0 * remaining / full
