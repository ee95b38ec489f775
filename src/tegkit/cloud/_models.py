"""Typed Owner API answers: energy sites, live status, site info and command results.

Parsed like the gateway's models (`tegkit.models`): msgspec Structs whose attribute names
carry units and scales while the wire keeps the Owner API's names (`battery_power` ->
`battery_power_w`, `percentage_charged` -> `percentage_charged_app_percent`). A field the
cloud leaves out or sends as null is None, never zero; a field of the wrong type raises
ParseError naming it. An answer that fits exactly decodes at msgspec speed; one with unknown
or re-cased keys (`"Code"` for `"code"`) gets the gateway models' lenient second reading, and
unknown keys stay reachable through `.raw`.

Percents are on the APP scale (raw = 5 + 0.95 x app, see `tegkit.percent`). Signs follow the
gateway: grid > 0 imports, battery > 0 discharges, load > 0 consumes, solar > 0 produces.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from tegkit.models import Model, OperationMode, Part
from tegkit.models.vocabulary import ExportRule

__all__ = [
    "BackupEvent",
    "BackupHistory",
    "CloudSiteInfo",
    "CommandAnswer",
    "CommandResult",
    "EnergyHistory",
    "EnergyPeriod",
    "EnergySite",
    "LiveStatus",
    "SiteComponents",
    "SiteUserSettings",
]


def _opt(name: str) -> Any:
    """An optional field with the Owner API's `name` on the wire."""
    return msgspec.field(default=None, name=name)


class SiteComponents(Part, kw_only=True):
    """What the site has and what it may do (`components` of site_info and of a product)."""

    battery: bool | None = None
    solar: bool | None = None
    grid: bool | None = None
    storm_mode_capable: bool | None = None
    off_grid_vehicle_charging_reserve_supported: bool | None = None
    # the grid_import_export settings: an ExportRule value, and grid charging turned around
    customer_preferred_export_rule: str | None = None
    disallow_charge_from_grid_with_solar_installed: bool | None = None


class SiteUserSettings(Part, kw_only=True):
    """The owner's switches (`user_settings` of site_info)."""

    storm_mode_enabled: bool | None = None  # storm watch: charge to full before a storm


class EnergySite(Model, kw_only=True):
    """One energy product of the account (an entry of GET /api/1/products with energy_site_id).

    The charge and power here are the same readings live_status gives, as the product list
    caches them.
    """

    energy_site_id: int  # required: the id every other energy-site call needs
    product_id: str | int | None = _opt("id")  # "STE..." for a battery site; see battery_id
    site_name: str | None = None
    resource_type: str | None = None  # "battery", "solar", ...
    gateway_id: str | None = None
    battery_type: str | None = None  # "ac_powerwall", ...
    backup_capable: bool | None = None
    energy_left_wh: float | None = _opt("energy_left")
    total_pack_energy_wh: float | None = _opt("total_pack_energy")
    percentage_charged_app_percent: float | None = _opt("percentage_charged")
    battery_power_w: float | None = _opt("battery_power")
    components: SiteComponents | None = None

    @property
    def battery_id(self) -> str | None:
        """The product id (STE...) that the powerwalls/{battery_id} commands take, as text."""
        return None if self.product_id is None else str(self.product_id)


class LiveStatus(Model, kw_only=True):
    """Power flow and charge now (GET /api/1/energy_sites/{id}/live_status).

    Every field is optional: the cloud leaves out what the site did not report.
    """

    solar_power_w: float | None = _opt("solar_power")
    battery_power_w: float | None = _opt("battery_power")
    load_power_w: float | None = _opt("load_power")
    grid_power_w: float | None = _opt("grid_power")
    generator_power_w: float | None = _opt("generator_power")
    grid_services_power_w: float | None = _opt("grid_services_power")
    percentage_charged_app_percent: float | None = _opt("percentage_charged")
    energy_left_wh: float | None = _opt("energy_left")  # above the app's 0 %
    total_pack_energy_wh: float | None = _opt("total_pack_energy")  # the app's 0..100 %
    grid_status: str | None = None  # the cloud's words ("Active", "Inactive"), not the gateway's
    island_status: str | None = None  # "on_grid", "off_grid", ...
    storm_mode_active: bool | None = None
    backup_capable: bool | None = None
    grid_services_active: bool | None = None
    timestamp: dt.datetime | None = None  # when the site reported it, with its UTC offset
    wall_connectors: list[dict[str, Any]] | None = None


class CloudSiteInfo(Model, kw_only=True):
    """Site configuration (GET /api/1/energy_sites/{id}/site_info). Reserve on the APP scale."""

    site_id: str | None = _opt("id")  # the product id (STE...)
    site_name: str | None = None
    default_real_mode: str | None = None  # an OperationMode; a newer value stays as text
    backup_reserve_app_percent: float | None = _opt("backup_reserve_percent")
    installation_date: dt.datetime | None = None
    installation_time_zone: str | None = None  # an IANA name ("Europe/Berlin")
    nameplate_power_w: float | None = _opt("nameplate_power")
    nameplate_energy_wh: float | None = _opt("nameplate_energy")
    battery_count: int | None = None
    version: str | None = None  # the gateway's firmware
    gateway_id: str | None = None
    components: SiteComponents | None = None
    user_settings: SiteUserSettings | None = None
    off_grid_vehicle_charging_reserve_app_percent: float | None = _opt(
        "off_grid_vehicle_charging_reserve_percent"
    )
    tariff_content_v2: dict[str, Any] | None = None  # the tariff as last sent, not read here

    @property
    def grid_charging_allowed(self) -> bool | None:
        """Whether the battery may charge from the grid; None when the cloud did not say."""
        parts = self.components
        if parts is None or parts.disallow_charge_from_grid_with_solar_installed is None:
            return None
        return not parts.disallow_charge_from_grid_with_solar_installed

    @property
    def export_rule(self) -> ExportRule | None:
        """What may be exported, as the vocabulary's ExportRule; None when missing or unknown."""
        rule = None if self.components is None else self.components.customer_preferred_export_rule
        try:
            return None if rule is None else ExportRule(rule)
        except ValueError:
            return None

    @property
    def storm_mode_enabled(self) -> bool | None:
        """Whether storm watch is on; None when the cloud did not say."""
        return None if self.user_settings is None else self.user_settings.storm_mode_enabled

    @property
    def operation_mode(self) -> OperationMode | None:
        """default_real_mode as an OperationMode; None when missing or not one we know."""
        try:
            return None if self.default_real_mode is None else OperationMode(self.default_real_mode)
        except ValueError:
            return None


class CommandAnswer(Model, kw_only=True):
    """The `response` of a command, in any of the success shapes seen in practice.

    {"code": 201, "message": "Updated"}, {"Code": 200, "Message": "..."} (read as code and
    message by the lenient reading) and {"result": true, "reason": ""}.
    """

    code: int | None = None
    message: str | None = None
    result: bool | None = None
    reason: str | None = None


class CommandResult(msgspec.Struct, frozen=True):
    """What a successful command answered: its code and message, where the shape has them."""

    code: int | None
    message: str | None


# --- history ------------------------------------------------------------------------------


class _BackupEventWire(Part, kw_only=True):
    # one outage as the cloud sends it: the duration in milliseconds
    timestamp: dt.datetime
    duration: float


class _BackupHistoryWire(Model, kw_only=True):
    events: list[_BackupEventWire] | None = None
    total_events: int | None = None


class BackupEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One outage (the site was off grid): when it began, and for how long, in seconds.

    The cloud sends the duration in milliseconds; it is converted here, once.
    """

    start: dt.datetime  # with the site's UTC offset
    duration_s: float

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.duration_s)


class BackupHistory(msgspec.Struct, frozen=True, kw_only=True):
    """The site's finished outages, oldest first (backup_history / calendar_history kind=backup).

    `total_events` is what the cloud said (None when it did not).
    """

    events: list[BackupEvent]
    total_events: int | None


def backup_history_from_wire(wire: _BackupHistoryWire) -> BackupHistory:
    """The typed answer: durations in seconds, events in time order."""
    events = [
        BackupEvent(start=e.timestamp, duration_s=e.duration / 1000.0) for e in wire.events or ()
    ]
    events.sort(key=lambda e: e.start)
    return BackupHistory(events=events, total_events=wire.total_events)


class EnergyPeriod(Part, kw_only=True):
    """Energy of one bucket of calendar_history kind=energy (Wh); starts at `timestamp`.

    Each flow is named by where it came from and where it went, as the cloud names them.
    A flow the cloud left out is None, never zero.
    """

    timestamp: dt.datetime  # the local start of the bucket, with its UTC offset
    solar_energy_exported_wh: float | None = _opt("solar_energy_exported")
    generator_energy_exported_wh: float | None = _opt("generator_energy_exported")
    grid_energy_imported_wh: float | None = _opt("grid_energy_imported")
    grid_services_energy_imported_wh: float | None = _opt("grid_services_energy_imported")
    grid_services_energy_exported_wh: float | None = _opt("grid_services_energy_exported")
    grid_energy_exported_from_solar_wh: float | None = _opt("grid_energy_exported_from_solar")
    grid_energy_exported_from_generator_wh: float | None = _opt(
        "grid_energy_exported_from_generator"
    )
    grid_energy_exported_from_battery_wh: float | None = _opt("grid_energy_exported_from_battery")
    battery_energy_exported_wh: float | None = _opt("battery_energy_exported")
    battery_energy_imported_from_grid_wh: float | None = _opt("battery_energy_imported_from_grid")
    battery_energy_imported_from_solar_wh: float | None = _opt("battery_energy_imported_from_solar")
    battery_energy_imported_from_generator_wh: float | None = _opt(
        "battery_energy_imported_from_generator"
    )
    consumer_energy_imported_from_grid_wh: float | None = _opt("consumer_energy_imported_from_grid")
    consumer_energy_imported_from_solar_wh: float | None = _opt(
        "consumer_energy_imported_from_solar"
    )
    consumer_energy_imported_from_battery_wh: float | None = _opt(
        "consumer_energy_imported_from_battery"
    )
    consumer_energy_imported_from_generator_wh: float | None = _opt(
        "consumer_energy_imported_from_generator"
    )


class EnergyHistory(Model, kw_only=True):
    """calendar_history kind=energy: one entry per bucket of `period` (day, week, month: a
    bucket per local day; year: a bucket per month), oldest first."""

    serial_number: str | None = None  # the gateway's DIN
    period: str | None = None
    installation_time_zone: str | None = None  # IANA name
    time_series: list[EnergyPeriod] = msgspec.field(default_factory=list)
