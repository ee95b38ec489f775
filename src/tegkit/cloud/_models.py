"""Typed Owner API answers: energy sites, live status, site info (units and scales in names).

Missing fields are None, never zero; a field of the wrong type raises ParseError naming it.
Every model keeps the decoded JSON as `.raw`, so unknown fields stay reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from tegkit.errors import ParseError

T = TypeVar("T")


class _Reader:
    """Typed reads of one JSON object, naming the endpoint in errors."""

    def __init__(self, data: Any, endpoint: str) -> None:
        if not isinstance(data, dict):
            raise ParseError(endpoint, f"expected a JSON object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.endpoint = endpoint

    def _bad(self, key: str, expected: str) -> ParseError:
        return ParseError(self.endpoint, f"{key}: expected {expected}, got {self.data[key]!r}")

    def _get(self, key: str, kind: type[T], expected: str) -> T | None:
        value = self.data.get(key)
        if value is None:
            return None
        # bool is an int to Python, but a JSON true is never a count.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self._bad(key, expected)
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return self._get(key, float, "a number")

    def integer(self, key: str) -> int | None:
        return self._get(key, int, "an integer")

    def text(self, key: str) -> str | None:
        return self._get(key, str, "a string")

    def flag(self, key: str) -> bool | None:
        return self._get(key, bool, "true or false")

    def time(self, key: str) -> datetime | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self._bad(key, "an ISO 8601 time") from None


@dataclass(frozen=True, slots=True)
class EnergySite:
    """One energy product of the account (GET /api/1/products, entries with energy_site_id)."""

    energy_site_id: int
    battery_id: str | None  # the product "id" (STE...) of a battery site; None for solar only
    site_name: str | None
    resource_type: str | None  # "battery", "solar", ...
    gateway_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any, endpoint: str = "GET /api/1/products") -> EnergySite:
        r = _Reader(data, endpoint)
        site_id = r.integer("energy_site_id")
        if site_id is None:
            raise ParseError(endpoint, "energy_site_id is missing")
        product_id = r.data.get("id")
        if product_id is not None and not isinstance(product_id, str | int):
            raise r._bad("id", "a string")
        return cls(
            energy_site_id=site_id,
            battery_id=None if product_id is None else str(product_id),
            site_name=r.text("site_name"),
            resource_type=r.text("resource_type"),
            gateway_id=r.text("gateway_id"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """Power flow and charge now (GET /api/1/energy_sites/{id}/live_status).

    Signs as on the gateway: grid > 0 imports, battery > 0 discharges, load > 0 consumes,
    solar > 0 produces. The charge is on the APP scale (0..100).
    """

    solar_power_w: float | None
    battery_power_w: float | None
    load_power_w: float | None
    grid_power_w: float | None
    generator_power_w: float | None
    percentage_charged_app_percent: float | None
    energy_left_wh: float | None
    total_pack_energy_wh: float | None
    grid_status: str | None  # "Active", "Inactive", ...
    island_status: str | None  # "on_grid", "off_grid", ...
    storm_mode_active: bool | None
    backup_capable: bool | None
    grid_services_active: bool | None
    timestamp: datetime | None  # when the site reported it
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any, endpoint: str = "GET live_status") -> LiveStatus:
        r = _Reader(data, endpoint)
        return cls(
            solar_power_w=r.number("solar_power"),
            battery_power_w=r.number("battery_power"),
            load_power_w=r.number("load_power"),
            grid_power_w=r.number("grid_power"),
            generator_power_w=r.number("generator_power"),
            percentage_charged_app_percent=r.number("percentage_charged"),
            energy_left_wh=r.number("energy_left"),
            total_pack_energy_wh=r.number("total_pack_energy"),
            grid_status=r.text("grid_status"),
            island_status=r.text("island_status"),
            storm_mode_active=r.flag("storm_mode_active"),
            backup_capable=r.flag("backup_capable"),
            grid_services_active=r.flag("grid_services_active"),
            timestamp=r.time("timestamp"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class CloudSiteInfo:
    """Site configuration (GET /api/1/energy_sites/{id}/site_info). Reserve on the APP scale."""

    site_id: str | None  # the product "id" (STE...)
    site_name: str | None
    default_real_mode: str | None  # "self_consumption", "backup", "autonomous"
    backup_reserve_app_percent: float | None
    installation_time_zone: str | None
    nameplate_power_w: float | None
    nameplate_energy_wh: float | None
    battery_count: int | None
    version: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any, endpoint: str = "GET site_info") -> CloudSiteInfo:
        r = _Reader(data, endpoint)
        return cls(
            site_id=r.text("id"),
            site_name=r.text("site_name"),
            default_real_mode=r.text("default_real_mode"),
            backup_reserve_app_percent=r.number("backup_reserve_percent"),
            installation_time_zone=r.text("installation_time_zone"),
            nameplate_power_w=r.number("nameplate_power"),
            nameplate_energy_wh=r.number("nameplate_energy"),
            battery_count=r.integer("battery_count"),
            version=r.text("version"),
            raw=r.data,
        )


__all__ = ["CloudSiteInfo", "EnergySite", "LiveStatus"]
