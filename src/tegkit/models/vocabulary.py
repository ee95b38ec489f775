"""The gateway's words, each listed once: grid statuses, operation modes, meters and counters.

Every other module (client, simulator, monitor, CLI) imports these; the dashboard gets them
from the monitor's `/api/vocabulary`. `tests/test_vocabulary.py` fails if one of these values
is spelled out anywhere else in the package.

The members are `StrEnum`s, so they compare equal to the strings the gateway sends and a
value the gateway sends that is not listed here is kept as a plain string, never refused.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple


class GridStatusValue(StrEnum):
    """`grid_status` of /api/system_status/grid_status and `system_island_state`."""

    #: on the grid and in sync with it
    CONNECTED = "SystemGridConnected"
    #: the grid is down; the house runs on the Powerwalls and solar
    ISLANDED_ACTIVE = "SystemIslandedActive"
    #: off the grid and ready to reconnect when asked (reported in the field)
    ISLANDED_READY = "SystemIslandedReady"
    #: the grid is back but the site is not yet in sync with it, so still off grid
    TRANSITION_TO_GRID = "SystemTransitionToGrid"
    #: leaving the grid (reported in the field)
    TRANSITION_TO_ISLAND = "SystemTransitionToIsland"
    #: off the grid and the island has faulted (reported in the field)
    MICROGRID_FAULTED = "SystemMicroGridFaulted"
    #: the system waits for someone to act on it (reported in the field; not documented)
    WAIT_FOR_USER = "SystemWaitForUser"


#: the statuses in which the site is cut off from the grid: an outage runs while one holds.
#: Only CONNECTED ends an outage; WAIT_FOR_USER and unknown values neither start nor end one.
OFF_GRID_STATUSES: Final[frozenset[str]] = frozenset(
    {
        GridStatusValue.ISLANDED_ACTIVE,
        GridStatusValue.ISLANDED_READY,
        GridStatusValue.TRANSITION_TO_GRID,
        GridStatusValue.TRANSITION_TO_ISLAND,
        GridStatusValue.MICROGRID_FAULTED,
    }
)

#: what a person reads for each grid status (CLI and dashboard)
GRID_STATUS_LABELS: Final[dict[GridStatusValue, str]] = {
    GridStatusValue.CONNECTED: "connected",
    GridStatusValue.ISLANDED_ACTIVE: "off grid (islanded)",
    GridStatusValue.ISLANDED_READY: "off grid (ready to reconnect)",
    GridStatusValue.TRANSITION_TO_GRID: "reconnecting",
    GridStatusValue.TRANSITION_TO_ISLAND: "going off grid",
    GridStatusValue.MICROGRID_FAULTED: "off grid (faulted)",
    GridStatusValue.WAIT_FOR_USER: "waiting for the user",
}


def is_off_grid(grid_status: str | None) -> bool | None:
    """True off grid, False on grid, None when the status is missing or says neither."""
    if grid_status in OFF_GRID_STATUSES:
        return True
    if grid_status == GridStatusValue.CONNECTED:
        return False
    return None


class OperationMode(StrEnum):
    """`real_mode` / `mode` of /api/operation and `default_real_mode` of the Owner API."""

    #: "Self-powered" in the app: solar first, the battery serves the house
    SELF_CONSUMPTION = "self_consumption"
    #: "Backup only": the battery is kept full for an outage
    BACKUP = "backup"
    #: "Time-based control": the battery follows the tariff's periods
    AUTONOMOUS = "autonomous"
    #: aggregation; accepted by the gateway, never seen working, not offered by the app
    SCHEDULER = "scheduler"


#: the modes a customer can choose (the app, the Owner API and the dashboard offer these)
CUSTOMER_MODES: Final[tuple[OperationMode, ...]] = (
    OperationMode.SELF_CONSUMPTION,
    OperationMode.AUTONOMOUS,
    OperationMode.BACKUP,
)

#: the app's name for each mode
MODE_LABELS: Final[dict[OperationMode, str]] = {
    OperationMode.SELF_CONSUMPTION: "Self-powered",
    OperationMode.BACKUP: "Backup only",
    OperationMode.AUTONOMOUS: "Time-based control",
    OperationMode.SCHEDULER: "Scheduler",
}


class ExportRule(StrEnum):
    """`customer_preferred_export_rule` of the cloud's site settings: what may go to the grid."""

    #: only solar energy is exported; the battery never discharges to the grid
    PV_ONLY = "pv_only"
    #: solar and battery energy may be exported (the battery in a tariff's peak)
    BATTERY_OK = "battery_ok"
    #: nothing is exported: solar the home and battery cannot take is curtailed
    NEVER = "never"


class MeterName(StrEnum):
    """The four meters of /api/meters/aggregates, with the gateway's sign of their power."""

    #: the grid connection: > 0 imports from the grid, < 0 exports to it
    SITE = "site"
    #: the Powerwalls: > 0 discharges, < 0 charges
    BATTERY = "battery"
    #: the house: > 0 consumes
    LOAD = "load"
    #: the solar inverters: > 0 produces
    SOLAR = "solar"


class Counter(NamedTuple):
    """A cumulative energy counter the monitor records: one meter, one direction."""

    meter: MeterName
    direction: str  # "imported" or "exported", as the gateway names its counters
    meaning: str

    @property
    def name(self) -> str:
        """The field name used in readings, rollups and the web API (`site_imported_wh`)."""
        return f"{self.meter}_{self.direction}_wh"


#: the counters the monitor records, in their stored order (never reorder: the store's
#: columns follow it)
COUNTERS: Final[tuple[Counter, ...]] = (
    Counter(MeterName.SITE, "imported", "from the grid"),
    Counter(MeterName.SITE, "exported", "to the grid"),
    Counter(MeterName.BATTERY, "imported", "charged"),
    Counter(MeterName.BATTERY, "exported", "discharged"),
    Counter(MeterName.LOAD, "imported", "consumed"),
    Counter(MeterName.SOLAR, "exported", "produced"),
)
COUNTER_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in COUNTERS)


def power_name(meter: MeterName) -> str:
    """The field of a meter's power in watts in readings and the web API (`site_w`)."""
    return f"{meter}_w"


#: the power field of each meter in readings and the web API (`site_w`)
POWER_NAMES: Final[tuple[str, ...]] = tuple(power_name(m) for m in MeterName)
