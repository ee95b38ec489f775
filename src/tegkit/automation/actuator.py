"""The standalone gateway side of `teg auto run`: a Gateway client and, optionally, the cloud.

Reads come from the local API (the gateway is the truth); mode and reserve go through
tegkit.route in one commit (locally, or through Tesla's cloud on firmware that refuses a
customer's local change, then read back locally); grid charging, export rule and storm
watch exist only as cloud commands, and are read back from the cloud's site_info.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from tegkit import percent
from tegkit.automation.engine import Observation
from tegkit.automation.plan import Setpoints
from tegkit.client import Gateway
from tegkit.errors import GatewayError
from tegkit.models.vocabulary import OperationMode
from tegkit.route import (
    CLOUD_HOW_TO,
    DEFAULT_READBACK_POLL_S,
    DEFAULT_READBACK_WAIT_S,
    ChangeNotSeenError,
    CloudTarget,
    LocalSide,
    OperationChange,
    RouteUnavailableError,
    Via,
    change_operation,
)


def _cloud_only(names: str) -> RouteUnavailableError:
    """A setting only Tesla's cloud changes, with no cloud configured (nothing is sent)."""
    return RouteUnavailableError(
        f"{names} can only be changed through Tesla's cloud; {CLOUD_HOW_TO}"
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class GatewayActuator:
    """runner.Actuator over a logged-in `Gateway` and an optional cloud target."""

    gateway: Gateway
    cloud: CloudTarget | None = None
    via: Via = "auto"
    role: str = "customer"
    #: the clock that stamps a reading (the simulator's in tests)
    now: Callable[[], dt.datetime] = _utc_now
    readback_wait_s: float = DEFAULT_READBACK_WAIT_S
    readback_poll_s: float = DEFAULT_READBACK_POLL_S
    monotonic: Callable[[], float] = time.monotonic

    async def observe(self) -> Observation:
        gw = self.gateway
        # Live values first: a stopped system answers 502 here, and no reading is made.
        aggregates = await gw.meters_aggregates()
        soe = await gw.state_of_energy()
        grid = await gw.grid_status()
        operation = await gw.operation()
        battery = aggregates.battery
        return Observation(
            at_utc=self.now(),
            soe_app_percent=soe.app_percent,
            grid_status=grid.grid_status,
            battery_w=None if battery is None else battery.instant_power_w,
            mode=operation.mode,
            backup_reserve_app_percent=_app(operation.backup_reserve_raw_percent),
        )

    async def current(self) -> Setpoints:
        operation = await self.gateway.operation()
        mode = operation.mode
        points = Setpoints(
            mode=OperationMode(mode) if mode in set(OperationMode) else None,
            backup_reserve_app_percent=_app(operation.backup_reserve_raw_percent),
        )
        if self.cloud is None:
            return points
        target = await self.cloud.target()
        site_id = target.get("site_id")
        if site_id is None:
            return points
        try:
            info = await self.cloud.client.site_info(site_id)
        except GatewayError:
            return points  # the cloud side cannot be read now: sent, never assumed
        return Setpoints(
            points.mode,
            points.backup_reserve_app_percent,
            grid_charging=info.grid_charging_allowed,
            export_rule=info.export_rule,
            storm_watch=info.storm_mode_enabled,
        )

    async def apply(self, setpoints: Setpoints) -> str:
        notes = []
        cloud_only = [
            name
            for name, value in (
                ("grid charging", setpoints.grid_charging),
                ("the export rule", setpoints.export_rule),
                ("storm watch", setpoints.storm_watch),
            )
            if value is not None
        ]
        if cloud_only and self.cloud is None:
            raise _cloud_only(" and ".join(cloud_only))
        if setpoints.mode is not None or setpoints.backup_reserve_app_percent is not None:
            change = OperationChange.of(
                None if setpoints.mode is None else str(setpoints.mode),
                setpoints.backup_reserve_app_percent,
                None if setpoints.backup_reserve_app_percent is None else "app",
            )
            outcome = await change_operation(
                self._local(),
                change,
                via=self.via,
                cloud=self.cloud,
                role=self.role,
                wait_s=self.readback_wait_s,
                poll_s=self.readback_poll_s,
                monotonic=self.monotonic,
            )
            if not outcome.confirmed:
                raise ChangeNotSeenError(outcome.note)
            notes.append(outcome.note)
        if cloud_only:
            assert self.cloud is not None
            site_id = (await self.cloud.target()).get("site_id")
            client = self.cloud.client
            if site_id is None:
                raise _cloud_only("a setting without a site id")
            if setpoints.grid_charging is not None or setpoints.export_rule is not None:
                await client.set_grid_import_export(
                    site_id, setpoints.grid_charging, setpoints.export_rule
                )
            if setpoints.storm_watch is not None:
                await client.set_storm_watch(site_id, setpoints.storm_watch)
            notes.append("sent through Tesla's cloud")
        return "; ".join(notes)

    async def update_state(self) -> str:
        return (await self.gateway.update_status()).state

    async def start_update(self) -> None:
        await self.gateway.request("POST", "/api/system/update")

    def _local(self) -> LocalSide:
        gw = self.gateway

        async def firmware_version() -> str | None:
            try:
                return (await gw.status()).version
            except GatewayError:
                return None  # unknown: the route tries locally first

        async def set_operation(change: OperationChange) -> object:
            raw = change.backup_reserve_raw_percent
            return await gw.set_operation(
                mode=change.mode,
                backup_reserve_percent=raw,
                scale=None if raw is None else "raw",
            )

        return LocalSide(firmware_version, set_operation, gw.operation)


def _app(raw: float | None) -> float | None:
    return None if raw is None else round(percent.raw_to_app(raw), 2)


__all__ = ["GatewayActuator"]
