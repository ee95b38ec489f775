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
from dataclasses import dataclass, replace

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


def operation_setpoints(mode: str | None, backup_reserve_raw_percent: float | None) -> Setpoints:
    """The setpoints /api/operation shows: its mode (when a known one) and its reserve."""
    return Setpoints(
        mode=OperationMode(mode) if mode in set(OperationMode) else None,
        backup_reserve_app_percent=_app(backup_reserve_raw_percent),
    )


async def with_cloud_setpoints(cloud: CloudTarget | None, local: Setpoints) -> Setpoints:
    """`local` with grid charging, the export rule and storm watch as the cloud's site_info
    reports them; unchanged when there is no cloud or it cannot be read now (such a setting
    is then sent, never assumed)."""
    if cloud is None:
        return local
    try:
        site_id = (await cloud.target()).get("site_id")
        if site_id is None:
            return local
        info = await cloud.client.site_info(site_id)
    except GatewayError:
        return local
    return replace(
        local,
        grid_charging=info.grid_charging_allowed,
        export_rule=info.export_rule,
        storm_watch=info.storm_mode_enabled,
    )


def check_cloud_setpoints(cloud: CloudTarget | None, setpoints: Setpoints, how_to: str) -> bool:
    """Whether `setpoints` holds settings only the cloud changes; RouteUnavailableError (with
    `how_to`) when it does and there is no cloud, before anything is sent."""
    names = [
        name
        for name, value in (
            ("grid charging", setpoints.grid_charging),
            ("the export rule", setpoints.export_rule),
            ("storm watch", setpoints.storm_watch),
        )
        if value is not None
    ]
    if names and cloud is None:
        raise _cloud_only(" and ".join(names), how_to)
    return bool(names)


async def send_cloud_setpoints(cloud: CloudTarget, setpoints: Setpoints, how_to: str) -> str:
    """Send grid charging, the export rule and storm watch through Tesla's cloud."""
    site_id = (await cloud.target()).get("site_id")
    if site_id is None:
        raise _cloud_only("a setting without an energy site id", how_to)
    if setpoints.grid_charging is not None or setpoints.export_rule is not None:
        await cloud.client.set_grid_import_export(
            site_id, setpoints.grid_charging, setpoints.export_rule
        )
    if setpoints.storm_watch is not None:
        await cloud.client.set_storm_watch(site_id, setpoints.storm_watch)
    return "sent through Tesla's cloud"


def _cloud_only(names: str, how_to: str) -> RouteUnavailableError:
    """A setting only Tesla's cloud changes, with no cloud configured (nothing is sent)."""
    return RouteUnavailableError(f"{names} can only be changed through Tesla's cloud; {how_to}")


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
        local = operation_setpoints(operation.mode, operation.backup_reserve_raw_percent)
        return await with_cloud_setpoints(self.cloud, local)

    async def apply(self, setpoints: Setpoints) -> str:
        notes = []
        cloud_side = check_cloud_setpoints(self.cloud, setpoints, CLOUD_HOW_TO)
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
        if cloud_side:
            assert self.cloud is not None
            notes.append(await send_cloud_setpoints(self.cloud, setpoints, CLOUD_HOW_TO))
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


__all__ = [
    "GatewayActuator",
    "check_cloud_setpoints",
    "operation_setpoints",
    "send_cloud_setpoints",
    "with_cloud_setpoints",
]
