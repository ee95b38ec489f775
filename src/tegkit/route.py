"""Which way a change of mode or reserve goes to the gateway: locally, or through Tesla's cloud.

One place decides it, for `teg set`, the monitor's dashboard and (later) automation:

- before firmware 20.49 the local POST /api/operation works for anyone who may log in;
- from 20.49 the gateway answers a customer's POST with 403 (an installer's works), so a
  customer's change must go through the cloud (Owner or Fleet API), when one is configured.

`via` is "auto" (decide as above), "local" or "cloud" (forced). After a change through the
cloud the gateway is read LOCALLY until it reports the new state, within a bounded wait: the
cloud only relays the change, and the spec notes it takes time to arrive. A change not seen
in time is reported as such ("sent, not yet seen locally"), never as done.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from tegkit import models, percent
from tegkit.catalog import Auth, find
from tegkit.client import firmware_family
from tegkit.cloud import CloudClient
from tegkit.errors import GatewayError, InvalidInputError, PermissionDeniedError

Via = Literal["auto", "local", "cloud"]
VIAS: Final[tuple[Via, ...]] = ("auto", "local", "cloud")
Role = Literal["customer", "installer"]

#: how long a change sent through the cloud is looked for locally, and how often
DEFAULT_READBACK_WAIT_S: Final = 60.0
DEFAULT_READBACK_POLL_S: Final = 2.0
#: a reserve read back within this many raw percent of the one asked for is the one asked for
#: (the cloud takes app percent to two decimals; the gateway keeps raw percent)
RESERVE_MATCH_RAW_PERCENT: Final = 0.1

_OPERATION_POST = find("POST", "/api/operation")
CLOUD_HOW_TO: Final = (
    "configure Tesla's cloud: get tokens with `teg cloud token import FILE` (or "
    "`teg cloud login`; see docs/cli.md, 'Changes on firmware 20.49 and later'), then "
    "change it again"
)


class Route(StrEnum):
    LOCAL = "local"
    CLOUD = "cloud"


class RouteUnavailableError(PermissionDeniedError):
    """The gateway refuses this account's local change and no cloud is configured.

    A 403 in kind (exit code 9): the message says why and how to configure the cloud."""

    def __init__(self, why: str) -> None:
        super().__init__(403, "POST", "/api/operation", error="Forbidden", message=why)


class ChangeNotSeenError(GatewayError):
    """A change was sent through the cloud but the gateway did not report it in time.

    Not a failure of the cloud: the gateway may still apply it. Said as it is, never as done.
    """

    def __init__(self, note: str) -> None:
        self.note = note  # ChangeOutcome.note
        super().__init__(f"{note}; the gateway may still apply it: check with `teg status`")


def check_via(via: object) -> Via:
    if via not in VIAS:
        raise InvalidInputError("via", "one of " + ", ".join(VIAS), via)
    return via


def local_allowed(firmware_version: str | None, role: str) -> bool | None:
    """Whether the gateway takes a local change of operation from `role` on this firmware:
    True before 20.49 (any login) and for an installer; False for a customer from 20.49 on;
    None when the firmware is unknown.

    >>> local_allowed("1.40.2", "customer"), local_allowed("21.44 223a56cd", "customer")
    (True, False)
    """
    family = firmware_family(firmware_version)
    if family is None:
        return None
    if family == "legacy" or _OPERATION_POST.auth is not Auth.INSTALLER:
        return True
    return role == "installer"


@dataclass(frozen=True, slots=True)
class Decision:
    """The route to try first, why, and whether auto may still go the other way."""

    route: Route
    reason: str
    # auto on a gateway that may refuse (unknown firmware, or no cloud to go to): a 403 from
    # the local POST then goes to the cloud if there is one, else it is RouteUnavailableError
    may_be_refused: bool = False


def decide(via: Via, firmware_version: str | None, role: str, cloud_configured: bool) -> Decision:
    """The route for a change; RouteUnavailableError for a forced cloud with none configured."""
    via = check_via(via)
    if via == "local":
        return Decision(Route.LOCAL, "asked for (--via local)")
    if via == "cloud":
        if not cloud_configured:
            raise RouteUnavailableError(
                f"the cloud route was asked for but none is set up; {CLOUD_HOW_TO}"
            )
        return Decision(Route.CLOUD, "asked for (--via cloud)")
    allowed = local_allowed(firmware_version, role)
    version = (firmware_version or "?").split(" ", 1)[0]
    if allowed:
        why = "installer login" if role == "installer" else f"firmware {version} is before 20.49"
        return Decision(Route.LOCAL, f"the gateway takes local changes ({why})")
    if allowed is None:
        return Decision(Route.LOCAL, "firmware unknown: trying locally first", may_be_refused=True)
    if cloud_configured:
        return Decision(
            Route.CLOUD, f"firmware {version} refuses a customer's local change (20.49 and later)"
        )
    # Nothing else to try: the local POST is tried once (some gateways allow it); its 403
    # becomes the clear error below.
    return Decision(Route.LOCAL, "no cloud configured: trying locally", may_be_refused=True)


def refused_locally(firmware_version: str | None) -> RouteUnavailableError:
    version = (firmware_version or "this firmware").split(" ", 1)[0]
    return RouteUnavailableError(
        f"the gateway (firmware {version}) refuses a customer's change of mode or reserve "
        f"(20.49 and later allow it only through Tesla's cloud or to an installer); {CLOUD_HOW_TO}"
    )


# --- what is asked, and whether the gateway reports it ---------------------------------------


@dataclass(frozen=True, slots=True)
class OperationChange:
    """A change of mode and/or reserve; the reserve is kept on both scales."""

    mode: str | None = None
    backup_reserve_raw_percent: float | None = None
    max_pv_export_power_kw: float | None = None  # local only: the cloud has no such command

    @classmethod
    def of(
        cls,
        mode: str | None = None,
        backup_reserve_percent: float | None = None,
        scale: percent.Scale | None = None,
        max_pv_export_power_kw: float | None = None,
    ) -> OperationChange:
        raw = None
        if backup_reserve_percent is not None:
            if scale not in percent.SCALES:
                raise InvalidInputError("scale", "raw or app (with a reserve)", scale)
            value = backup_reserve_percent
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError("backup_reserve_percent", "a number from 0 to 100", value)
            if not math.isfinite(value) or not 0 <= value <= 100:
                raise InvalidInputError(
                    "backup_reserve_percent", f"a number from 0 to 100 on the {scale} scale", value
                )
            raw = percent.to_raw(float(value), scale)
        return cls(mode, raw, max_pv_export_power_kw)

    @property
    def backup_reserve_app_percent(self) -> float | None:
        raw = self.backup_reserve_raw_percent
        return None if raw is None else round(percent.raw_to_app(raw), 2)

    def seen_in(self, now: models.Operation) -> bool:
        """True when the gateway's operation shows every value of this change."""
        if self.mode is not None and now.mode != self.mode:
            return False
        want = self.backup_reserve_raw_percent
        have = now.backup_reserve_raw_percent
        if want is None:
            return True
        return have is not None and abs(have - want) <= RESERVE_MATCH_RAW_PERCENT


# --- the cloud side -------------------------------------------------------------------------


@dataclass(slots=True)
class CloudTarget:
    """A cloud client and the energy site it changes (site id, battery id, or the only site)."""

    client: CloudClient
    site_id: int | None = None
    battery_id: str | None = None

    async def target(self) -> dict[str, Any]:
        if self.site_id is not None:
            return {"site_id": self.site_id}
        if self.battery_id is not None:
            return {"battery_id": self.battery_id}
        sites = await self.client.energy_sites()
        if len(sites) != 1:
            ids = ", ".join(str(s.energy_site_id) for s in sites) or "none"
            raise InvalidInputError("site_id", f"one of the account's energy sites ({ids})")
        self.site_id = sites[0].energy_site_id
        return {"site_id": self.site_id}

    async def send(self, change: OperationChange) -> None:
        """The change as the cloud's commands: mode, then reserve (app percent)."""
        if change.max_pv_export_power_kw is not None:
            raise InvalidInputError(
                "max_pv_export_power_kw", "set only through the local API (--via local)"
            )
        target = await self.target()
        if change.mode is not None:
            await self.client.set_operation_mode(change.mode, **target)
        app = change.backup_reserve_app_percent
        if app is not None:
            await self.client.set_backup_reserve(app, **target)


# --- the outcome ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """Which route a change took, and what the gateway reports locally afterwards."""

    route: Route
    reason: str
    # the local read-back: what the gateway reports now; None when no read got an answer
    operation: models.Operation | None
    confirmed: bool  # the read-back shows the change
    waited_s: float  # from sending to the read-back that settled it
    reads: int  # local reads that got an answer after sending
    read_error: str | None = None  # why the last local read failed, if it did

    @property
    def note(self) -> str:
        how = "through Tesla's cloud" if self.route is Route.CLOUD else "locally"
        if self.confirmed:
            return f"sent {how}; the gateway reports it (read back locally)"
        why = "" if self.read_error is None else f" (the last read failed: {self.read_error})"
        return f"sent {how}, not yet seen locally after {self.waited_s:.0f} s{why}"

    def fields(self) -> dict[str, Any]:
        """The route and read-back as answers name them (added beside the values)."""
        return {
            "route": str(self.route),
            "route_reason": self.reason,
            "read_back": "confirmed" if self.confirmed else "not_seen",
            "read_back_waited_s": round(self.waited_s, 1),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class LocalSide:
    """How to reach the gateway locally; the monitor wraps each in its request budget."""

    firmware_version: Callable[[], Awaitable[str | None]]
    set_operation: Callable[[OperationChange], Awaitable[object]]
    operation: Callable[[], Awaitable[models.Operation]]


async def change_operation(
    local: LocalSide,
    change: OperationChange,
    *,
    via: Via = "auto",
    cloud: CloudTarget | None = None,
    role: str = "customer",
    wait_s: float = DEFAULT_READBACK_WAIT_S,
    poll_s: float = DEFAULT_READBACK_POLL_S,
    monotonic: Callable[[], float] = time.monotonic,
) -> ChangeOutcome:
    """Send `change` by the route `via` picks, then read the gateway back locally."""
    via = check_via(via)
    version = None if via != "auto" else await local.firmware_version()
    decision = decide(via, version, role, cloud is not None)
    if decision.route is Route.LOCAL:
        try:
            await local.set_operation(change)
        except PermissionDeniedError as exc:
            if not decision.may_be_refused or isinstance(exc, RouteUnavailableError):
                raise
            if cloud is None:
                raise refused_locally(version) from None
            decision = Decision(Route.CLOUD, "the gateway refused the local change (403)")
        else:
            started = monotonic()
            now = await local.operation()
            return ChangeOutcome(
                Route.LOCAL, decision.reason, now, change.seen_in(now), monotonic() - started, 1
            )
    assert cloud is not None  # decide() and the fallback above go to the cloud only with one
    await cloud.send(change)
    return await _read_back(local, change, decision.reason, wait_s, poll_s, monotonic)


async def _read_back(
    local: LocalSide,
    change: OperationChange,
    reason: str,
    wait_s: float,
    poll_s: float,
    monotonic: Callable[[], float],
) -> ChangeOutcome:
    """Read the gateway every `poll_s` until it shows `change` or `wait_s` has passed."""
    started = monotonic()
    reads = 0
    now: models.Operation | None = None
    error: str | None = None
    while True:
        # The change is already sent: a read that fails (a busy budget, an unreachable
        # gateway) is tried again until the deadline, and said, never raised.
        try:
            now = await local.operation()
            reads += 1
            error = None
        except (GatewayError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
        waited = monotonic() - started
        if now is not None and error is None and change.seen_in(now):
            return ChangeOutcome(Route.CLOUD, reason, now, True, waited, reads)
        if waited >= wait_s:
            return ChangeOutcome(Route.CLOUD, reason, now, False, waited, reads, error)
        await asyncio.sleep(max(0.0, min(poll_s, wait_s - waited)))


__all__ = [
    "CLOUD_HOW_TO",
    "DEFAULT_READBACK_POLL_S",
    "DEFAULT_READBACK_WAIT_S",
    "VIAS",
    "ChangeNotSeenError",
    "ChangeOutcome",
    "CloudTarget",
    "Decision",
    "LocalSide",
    "OperationChange",
    "Route",
    "RouteUnavailableError",
    "Via",
    "change_operation",
    "check_via",
    "decide",
    "local_allowed",
]
