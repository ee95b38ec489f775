"""The gateway state as the simulated Owner API sees it (the CloudSite protocol, app percent).

The cloud shows the same site as the local API, on the app percent scale. Its commands skip
the local wizard's staging but reach the gateway `cloud_delay_s` simulated seconds later (the
spec notes that changes made in the app take time to take effect); until then the cloud and
the local API both report the old value. 0 applies them at once.

The cloud's history (`backup_history`, `calendar_history`) is recorded from the site's
physics from the moment this object is made (sim/cloud_history.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Final
from zoneinfo import ZoneInfo

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, GridStatusValue, OperationMode
from tegkit.percent import HIDDEN_BOTTOM_PERCENT, app_to_raw, raw_to_app
from tegkit.sim.cloud_history import CloudHistory, check_query
from tegkit.sim.gateway import SimulatedGateway

#: simulated seconds before a change made through the cloud reaches the gateway
DEFAULT_CLOUD_DELAY_S: Final = 10.0


class GatewayCloudSite:
    """`tegkit.sim.owner_api.CloudSite` over a `SimulatedGateway`."""

    def __init__(
        self, gateway: SimulatedGateway, cloud_delay_s: float = DEFAULT_CLOUD_DELAY_S
    ) -> None:
        if isinstance(cloud_delay_s, bool) or not 0.0 <= cloud_delay_s <= 86400.0:
            raise InvalidInputError(
                "cloud_delay_s", "a number of seconds from 0 to 86400", cloud_delay_s
            )
        self.gateway = gateway
        self.cloud_delay_s = float(cloud_delay_s)
        self.history = CloudHistory(ZoneInfo(gateway.site.config.timezone))
        gateway.site.observer = self.history
        digest = hashlib.sha256(f"{gateway.seed}:cloud".encode()).hexdigest()
        self._energy_site_id = 100_000_000_000 + int(digest[:10], 16) % 900_000_000_000
        self._battery_id = "STE" + digest[10:14].upper() + "-" + digest[14:22].upper()
        self._tariff: dict[str, Any] | None = None  # the last tariff sent (time_of_use_settings)

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
        islanded = snap.grid_status != GridStatusValue.CONNECTED
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
            "storm_mode_active": snap.storm_watch and not islanded,
            "timestamp": snap.now.astimezone(gw.tz).isoformat(timespec="seconds"),
            "wall_connectors": [],
        }

    def site_info(self) -> dict[str, Any]:
        gw = self.gateway
        config = gw.site.config
        mode = gw.mode if gw.mode in CUSTOMER_MODES else OperationMode.SELF_CONSUMPTION
        info: dict[str, Any] = {
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
        }
        settings = self.energy_settings()
        info["components"] = {
            "battery": True,
            "solar": True,
            "grid": True,
            **settings.pop("components"),
        }
        info.update(settings)
        if self._tariff is not None:
            info["tariff_content_v2"] = self._tariff
        return info

    def energy_settings(self) -> dict[str, Any]:
        """The settings the Fleet API's energy commands change, as site_info nests them."""
        snap = self.gateway.snap()
        return {
            "components": {
                "storm_mode_capable": True,
                "off_grid_vehicle_charging_reserve_supported": True,
                "customer_preferred_export_rule": str(snap.export_rule),
                "disallow_charge_from_grid_with_solar_installed": not snap.grid_charging_allowed,
            },
            "user_settings": {"storm_mode_enabled": snap.storm_watch},
            "off_grid_vehicle_charging_reserve_percent": snap.off_grid_ev_reserve_app_percent,
        }

    # --- commands: checked now, in effect after cloud_delay_s ------------------------------

    def set_backup_reserve_app_percent(self, p: float) -> None:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise InvalidInputError("backup_reserve_percent", "a number from 0 to 100", p)
        self._change({"backup_reserve_raw_percent": app_to_raw(p)})

    def set_site_name(self, name: str) -> None:
        self.gateway.set_site_name(name)  # a cloud-side name: shown at once

    def set_operation_mode(self, mode: str) -> None:
        self._change({"mode": mode})

    def set_grid_import_export(
        self,
        disallow_charge_from_grid_with_solar_installed: bool | None = None,
        customer_preferred_export_rule: str | None = None,
    ) -> None:
        """Tesla's grid_import_export: either or both of its two fields."""
        changes: dict[str, Any] = {}
        if disallow_charge_from_grid_with_solar_installed is not None:
            disallow = disallow_charge_from_grid_with_solar_installed
            if not isinstance(disallow, bool):
                raise InvalidInputError(
                    "disallow_charge_from_grid_with_solar_installed", "true or false", disallow
                )
            changes["grid_charging_allowed"] = not disallow
        if customer_preferred_export_rule is not None:
            try:
                changes.update(
                    self.gateway.check_settings({"export_rule": customer_preferred_export_rule})
                )
            except InvalidInputError as exc:
                raise InvalidInputError(
                    "customer_preferred_export_rule", exc.allowed, exc.value
                ) from None
        if not changes:
            raise InvalidInputError(
                "grid_import_export",
                "disallow_charge_from_grid_with_solar_installed and/or "
                "customer_preferred_export_rule",
            )
        self._change(changes)

    def set_storm_mode(self, enabled: bool) -> None:
        """Tesla's storm_mode command (`enabled`)."""
        if not isinstance(enabled, bool):
            raise InvalidInputError("enabled", "true or false", enabled)
        self._change({"storm_watch": enabled})

    def set_off_grid_vehicle_charging_reserve_app_percent(self, p: float) -> None:
        """Tesla's off_grid_vehicle_charging_reserve command, app percent."""
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise InvalidInputError(
                "off_grid_vehicle_charging_reserve_percent", "a number from 0 to 100", p
            )
        self._change({"off_grid_ev_reserve_app_percent": p})

    def set_time_of_use_settings(self, tou_settings: dict[str, Any]) -> None:
        """Tesla's time_of_use_settings: the tariff is kept as sent and shown in site_info at
        once (the physics keeps its own tariff: this one is not read)."""
        tariff = tou_settings.get("tariff_content_v2") if isinstance(tou_settings, dict) else None
        if not isinstance(tariff, dict):
            raise InvalidInputError("tou_settings", "an object with a tariff_content_v2 object")
        self._tariff = tariff

    def _change(self, changes: dict[str, Any]) -> None:
        self.gateway.defer_settings(changes, self.cloud_delay_s)

    # --- history reads ------------------------------------------------------------------

    def backup_history(self) -> dict[str, Any]:
        """Every finished outage recorded: {events: [{timestamp, duration (ms)}], total_events}."""
        return self.history.backup_events()

    def calendar_history(
        self, kind: str, period: str, end: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Tesla's calendar_history: kind energy or backup, period day/week/month/year, up to
        the local day of `end` (None: now)."""
        check_query(kind, period, end)
        when = end if end is not None else self.gateway.now
        if kind == "backup":
            start, after = self.history.window(period, when)
            return self.history.backup_events(start, after)
        return {
            "serial_number": self.gateway.din,
            "period": period,
            "installation_time_zone": self.history.zone.key,
            "time_series": self.history.energy_series(period, when),
        }


__all__ = ["DEFAULT_CLOUD_DELAY_S", "GatewayCloudSite"]
