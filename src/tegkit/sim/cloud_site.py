"""The gateway state as the simulated Owner API sees it (the CloudSite protocol, app percent).

The cloud shows the same site as the local API, on the app percent scale; its commands take
effect at once (the app does not stage settings the way the local wizard does).
"""

from __future__ import annotations

import hashlib
from typing import Any

from tegkit.ownerapi import OPERATION_MODES
from tegkit.percent import HIDDEN_BOTTOM_PERCENT, app_to_raw, raw_to_app
from tegkit.sim.gateway import SimulatedGateway


class GatewayCloudSite:
    """`tegkit.sim.owner_api.CloudSite` over a `SimulatedGateway`."""

    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway
        digest = hashlib.sha256(f"{gateway.seed}:cloud".encode()).hexdigest()
        self._energy_site_id = 100_000_000_000 + int(digest[:10], 16) % 900_000_000_000
        self._battery_id = "STE" + digest[10:14].upper() + "-" + digest[14:22].upper()

    @property
    def energy_site_id(self) -> int:
        return self._energy_site_id

    @property
    def battery_id(self) -> str:
        return self._battery_id

    @property
    def site_name(self) -> str:
        return self.gateway.settings.site_name

    def live_status(self) -> dict[str, Any]:
        gw = self.gateway
        snap = gw.snap()
        hidden_wh = snap.full_pack_wh * HIDDEN_BOTTOM_PERCENT / 100.0
        islanded = snap.grid_status != "SystemGridConnected"
        running = snap.running
        return {
            "solar_power": round(snap.solar_w) if running else 0,
            "energy_left": round(max(0.0, snap.energy_remaining_wh - hidden_wh), 1),
            "total_pack_energy": round(snap.full_pack_wh - hidden_wh),
            "percentage_charged": raw_to_app(snap.soe_raw_percent),
            "backup_capable": True,
            "battery_power": round(snap.battery_w) if running else 0,
            "load_power": round(snap.load_w) if running else 0,
            "grid_status": "Inactive" if islanded else "Active",
            "grid_services_active": False,
            "grid_power": round(snap.site_w) if running else 0,
            "generator_power": 0,
            "island_status": "off_grid" if islanded else "on_grid",
            "storm_mode_active": False,
            "timestamp": snap.now.astimezone(gw.tz).isoformat(timespec="seconds"),
            "wall_connectors": [],
        }

    def site_info(self) -> dict[str, Any]:
        gw = self.gateway
        config = gw.site.config
        mode = gw.mode if gw.mode in OPERATION_MODES else "self_consumption"
        return {
            "id": self._battery_id,
            "site_name": gw.settings.site_name,
            "backup_reserve_percent": raw_to_app(gw.backup_reserve_raw_percent),
            "default_real_mode": mode,
            "installation_date": "2021-03-01T10:00:00-08:00",
            "installation_time_zone": gw.settings.timezone,
            "nameplate_power": round(config.powerwall_power_kw * 1000 * config.powerwalls),
            "nameplate_energy": round(config.usable_kwh_per_powerwall * 1000 * config.powerwalls),
            "battery_count": config.powerwalls,
            "version": gw.profile.version.split(" ", 1)[0],
            "gateway_id": gw.din,
            "components": {"battery": True, "solar": True, "grid": True},
        }

    def set_backup_reserve_app_percent(self, p: float) -> None:
        self.gateway.set_operation_now(backup_reserve_raw_percent=app_to_raw(p))

    def set_site_name(self, name: str) -> None:
        self.gateway.set_site_name(name)

    def set_operation_mode(self, mode: str) -> None:
        self.gateway.set_operation_now(mode=mode)


__all__ = ["GatewayCloudSite"]
