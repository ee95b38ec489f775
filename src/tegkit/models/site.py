"""Site models: site info and grid codes, gateway status, sitemaster, operation, Powerwalls."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any, Final

from tegkit import percent
from tegkit.models._base import UNSET, Model, Part, UnsetType, field
from tegkit.models.diagnostics import DiagnosticPart

__all__ = [
    "GatewayStatus",
    "GridCode",
    "GridCodes",
    "GridPoint",
    "GridRegions",
    "Operation",
    "Powerwall",
    "PowerwallSync",
    "Powerwalls",
    "PowerwallsStatus",
    "SiteInfo",
    "SiteName",
    "Sitemaster",
    "parse_go_duration_s",
]


class GridPoint(Part, kw_only=True):
    """One adjustable setting of a grid code (limits, trip times), in the units it names."""

    name: str | None = None
    units: str | None = None  # "V_pu", "Hz", "s", ...
    min: float | None = None
    max: float | None = None
    file_value: float | None = None
    override: float | UnsetType | None = UNSET
    value: float | None = None


class GridCode(Part, kw_only=True):
    """A grid code: the interconnection standard, voltage, frequency and phases of a site."""

    grid_code: str | None = None
    grid_voltage_setting_v: float | None = field(default=None, name="grid_voltage_setting")
    grid_freq_setting_hz: float | None = field(default=None, name="grid_freq_setting")
    grid_phase_setting: str | None = None  # "Single", "Split", ...
    country: str | None = None
    state: str | None = None
    distributor: str | None = None
    utility: str | None = None
    retailer: str | None = None
    region: str | None = None
    grid_customizable_points: list[GridPoint] | None = None


# /api/site_info/grid_codes: country -> state -> standard -> grid codes.
GridCodes = dict[str, dict[str, dict[str, list[GridCode]]]]


class SiteInfo(Model, kw_only=True):
    """GET /api/site_info: site name, timezone, system size and grid code.

    Newer firmware nests the grid code as an object; older firmware sends its name as a
    string with the grid settings flat beside it.
    """

    site_name: str | None = None
    timezone: str | None = None
    max_system_energy_kwh: float | None = field(default=None, name="max_system_energy_kWh")
    max_system_power_kw: float | None = field(default=None, name="max_system_power_kW")
    max_site_meter_power_kw: float | None = field(default=None, name="max_site_meter_power_kW")
    min_site_meter_power_kw: float | None = field(default=None, name="min_site_meter_power_kW")
    nominal_system_energy_kwh: float | None = field(default=None, name="nominal_system_energy_kWh")
    nominal_system_power_kw: float | None = field(default=None, name="nominal_system_power_kW")
    measured_frequency_hz: float | None = field(default=None, name="measured_frequency")
    grid_code: str | GridCode | None = None
    # Older firmware: the grid code's settings beside its name.
    grid_voltage_setting_v: float | None = field(default=None, name="grid_voltage_setting")
    grid_freq_setting_hz: float | None = field(default=None, name="grid_freq_setting")
    grid_phase_setting: str | None = None
    country: str | None = None
    state: str | None = None
    distributor: str | None = None
    utility: str | None = None
    retailer: str | None = None
    region: str | None = None

    @property
    def grid_code_name(self) -> str | None:
        """The grid code's name in either shape."""
        if isinstance(self.grid_code, GridCode):
            return self.grid_code.grid_code
        return self.grid_code


class GridRegions(Model, kw_only=True):
    """GET /api/site_info/grid_regions: a CSV table (grid_code, country, state, ...) as text."""

    regions: str
    grid_code_settings: dict[str, GridCode] | None = None  # by grid code name (21.39 on)

    def rows(self) -> list[dict[str, str]]:
        """The CSV rows as dicts keyed by the header line."""
        return list(csv.DictReader(io.StringIO(self.regions)))


class SiteName(Model, kw_only=True):
    """GET /api/site_info/site_name."""

    site_name: str
    timezone: str | None = None


_GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_S: Final = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


def parse_go_duration_s(text: str) -> float | None:
    """Seconds in a Go duration string ("230h55m59.932079901s"), None if it is not one."""
    body = text.strip()
    sign = 1.0
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        return None
    total = 0.0
    position = 0
    for found in _GO_DURATION.finditer(body):
        if found.start() != position:
            return None
        total += float(found.group(1)) * _GO_UNIT_S[found.group(2)]
        position = found.end()
    if position != len(body):
        return None
    return sign * total


class GatewayStatus(Model, kw_only=True):
    """GET /api/status: firmware version, uptime and identity of the gateway."""

    din: str | None = None
    start_time: str | None = None  # "2021-12-16 22:13:25 +0800"
    up_time_seconds: str | None = None  # a Go duration despite the name
    is_new: bool | None = None
    version: str | None = None  # "21.44 223a56cd"
    git_hash: str | None = None
    commission_count: int | None = None
    device_type: str | None = None
    sync_type: str | None = None
    leader: str | None = None
    followers: list[str] | UnsetType | None = UNSET
    cellular_disabled: bool | None = None
    is_solar_powerwall: bool | None = None

    @property
    def uptime_s(self) -> float | None:
        """Uptime in seconds, parsed from up_time_seconds; None if absent or unreadable."""
        return None if self.up_time_seconds is None else parse_go_duration_s(self.up_time_seconds)

    @property
    def started_at(self) -> dt.datetime | None:
        """start_time as an aware datetime; None if absent or unreadable."""
        if self.start_time is None:
            return None
        try:
            return dt.datetime.strptime(self.start_time, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None

    @property
    def firmware(self) -> str | None:
        """The firmware version without the hash suffix ("21.44")."""
        return self.version.split(" ", 1)[0] if self.version else None


class Sitemaster(Model, kw_only=True):
    """GET /api/sitemaster: whether the system runs. Older firmware: uptime; newer: status."""

    running: bool
    status: str | None = None  # "StatusUp", "StatusDown"
    uptime: str | None = None  # older firmware: "802459s,"
    connected_to_tesla: bool | None = None
    power_supply_mode: bool | None = None
    can_reboot: str | None = None  # "Yes" or the reason why not


class Operation(Model, kw_only=True):
    """GET/POST /api/operation: operation mode and backup reserve on the raw percent scale.

    Newer firmware reports the mode as `real_mode`; older firmware and POST bodies use
    `mode`. Both are kept; the `mode` property gives whichever is set.
    """

    real_mode: str | None = None
    legacy_mode: str | None = field(default=None, name="mode")
    backup_reserve_raw_percent: float | None = field(default=None, name="backup_reserve_percent")
    freq_shift_load_shed_soe_percent: float | None = field(
        default=None, name="freq_shift_load_shed_soe"
    )
    freq_shift_load_shed_delta_f_hz: float | None = field(
        default=None, name="freq_shift_load_shed_delta_f"
    )
    max_pv_export_power_kw: float | UnsetType | None = field(
        default=UNSET, name="max_pv_export_power_kW"
    )

    @property
    def mode(self) -> str | None:
        return self.real_mode if self.real_mode is not None else self.legacy_mode

    @property
    def backup_reserve_app_percent(self) -> float | None:
        """The backup reserve on the app scale."""
        raw = self.backup_reserve_raw_percent
        return None if raw is None else percent.raw_to_app(raw)


class PowerwallSync(Part, kw_only=True):
    """The synchronizer's diagnostics in /api/powerwalls."""

    updating: bool | None = None
    commissioning_diagnostic: DiagnosticPart | None = None
    update_diagnostic: DiagnosticPart | None = None


class Powerwall(Part, kw_only=True):
    """One Powerwall of /api/powerwalls.

    Entries carry both "Type" (seen empty) and "type" ("ACPW"); both are kept.
    """

    Type: str | None = None
    package_part_number: str | None = field(default=None, name="PackagePartNumber")
    package_serial_number: str | None = field(default=None, name="PackageSerialNumber")
    type: str | None = None
    grid_state: str | None = None  # "Grid_Compliant", "Grid_Uncompliant"
    grid_reconnection_time_s: float | None = field(
        default=None, name="grid_reconnection_time_seconds"
    )
    under_phase_detection: bool | None = None
    updating: bool | None = None
    commissioning_diagnostic: DiagnosticPart | None = None
    update_diagnostic: DiagnosticPart | None = None
    bc_type: Any | UnsetType = UNSET  # null in every capture
    in_config: bool | None = None


class PowerwallsStatus(Model, kw_only=True):
    """GET /api/powerwalls/status: enumeration, phase detection and grid-check state."""

    enumerating: bool | None = None
    updating: bool | None = None
    checking_if_offgrid: bool | None = None
    is_on_grid: bool | None = None
    running_phase_detection: bool | None = None
    phase_detection_last_error: str | None = None
    bubble_shedding: bool | None = None
    on_grid_check_error: str | None = None
    grid_qualifying: bool | None = None
    grid_code_validating: bool | None = None
    phase_detection_not_available: bool | None = None


class Powerwalls(PowerwallsStatus, kw_only=True):
    """GET /api/powerwalls: the status flags of /api/powerwalls/status, each Powerwall, more."""

    powerwalls: list[Powerwall] | None = None
    gateway_din: str | None = None
    has_sync: bool | None = None
    sync: PowerwallSync | None = None
    msa: Any | UnsetType = UNSET  # null in every capture
    states: list[str] | UnsetType | None = UNSET
    phase_detection_attempt: int | None = None
