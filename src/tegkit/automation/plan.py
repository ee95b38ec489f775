"""A plan: what the owner wants the gateway to do, and when. Pure data, no I/O.

A plan is read from TOML by `planfile.load_plan` (which validates it and names the rule and
field of every error); `schedule` turns its timed rules into instants, `engine` decides what
is due, and the runners (a live gateway, or the simulator's physics) carry it out. The file
format is documented in docs/automation.md and planfile.py.

Units and scales follow DESIGN.md: a reserve or state of energy here is on the APP scale
(what the Tesla app shows) unless its name says raw; powers in W; prices per kWh.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.tariff import Tariff

#: ISO weekday numbers (Monday 1 .. Sunday 7), as `date.isoweekday()` gives them
WEEKDAYS: Final = frozenset({1, 2, 3, 4, 5})
WEEKENDS: Final = frozenset({6, 7})
ALL_DAYS: Final = WEEKDAYS | WEEKENDS

#: a reading older than this is never acted on (the plan may say otherwise)
DEFAULT_STALE_AFTER_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class Days:
    """On which local dates a rule may fire: weekdays, an inclusive month range (which may
    wrap the new year, like a tariff season), and/or a list of dates. All must agree."""

    weekdays: frozenset[int] = ALL_DAYS
    months: tuple[int, int] | None = None
    dates: frozenset[date] | None = None

    def includes(self, day: date) -> bool:
        if day.isoweekday() not in self.weekdays:
            return False
        if self.dates is not None and day not in self.dates:
            return False
        if self.months is not None:
            first, last = self.months
            inside = first <= day.month <= last if first <= last else not last < day.month < first
            if not inside:
                return False
        return True


# --- triggers: what makes a rule fire ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AtTime:
    """At a local clock time of the site's time zone, on the rule's days. A time that does
    not exist (spring forward) fires at the first instant after the gap; a time that exists
    twice (fall back) fires once, at its first occurrence."""

    minute_of_day: int  # 0..1439


@dataclass(frozen=True, slots=True)
class WhenSoe:
    """When the state of energy (app scale) crosses below or above a threshold. Fires on the
    crossing, then re-arms once the reading is back past the threshold by `hysteresis`."""

    below_app_percent: float | None = None
    above_app_percent: float | None = None
    hysteresis_app_percent: float = 2.0


GridChange = Literal["down", "up"]


@dataclass(frozen=True, slots=True)
class WhenGrid:
    """When the grid goes down (the site islands) or comes back (models.vocabulary.is_off_grid)."""

    change: GridChange


@dataclass(frozen=True, slots=True)
class WhenTariffPeriod:
    """When a named period of the plan's tariff starts (e.g. "peak")."""

    period: str


@dataclass(frozen=True, slots=True)
class WhenPriceAbove:
    """When the tariff's buy price rises above a threshold (at the start of such a period)."""

    buy_per_kwh: float


Trigger = AtTime | WhenSoe | WhenGrid | WhenTariffPeriod | WhenPriceAbove
#: the triggers that are known in advance from the clock and the tariff alone
TIMED_TRIGGERS: Final = (AtTime, WhenTariffPeriod, WhenPriceAbove)


# --- actions: what a rule does ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setpoints:
    """The gateway settings (setpoints) a rule puts in force; None leaves that setting alone.

    Mode and reserve go to the gateway together, in one commit, when both are given."""

    mode: OperationMode | None = None
    backup_reserve_app_percent: float | None = None
    grid_charging: bool | None = None
    export_rule: ExportRule | None = None
    storm_watch: bool | None = None

    def is_empty(self) -> bool:
        return self == Setpoints()

    def then(self, later: Setpoints) -> Setpoints:
        """These settings, overridden by the ones `later` gives."""
        return replace(
            self,
            **{
                name: getattr(later, name)
                for name in SETTING_NAMES
                if getattr(later, name) is not None
            },
        )


SETTING_NAMES: Final = (
    "mode",
    "backup_reserve_app_percent",
    "grid_charging",
    "export_rule",
    "storm_watch",
)


@dataclass(frozen=True, slots=True)
class FirmwareWindow:
    """Check for a firmware update and install it only when it is safe: the grid is up, no
    avoided tariff period (e.g. peak) starts within `margin_min`, and the battery is idle
    (|battery power| <= `idle_battery_w`) or not needed (state of energy at or below the
    reserve). Otherwise postpone, re-checking every `retry_every_min`, until `duration_min`
    after the rule fired; a window that closes (or was missed while the runner was down) is
    never run late."""

    duration_min: int = 30
    avoid_periods: tuple[str, ...] = ("peak",)
    margin_min: int = 60
    idle_battery_w: float = 250.0
    retry_every_min: int = 5


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the plan: when it fires, on which days, and what it does."""

    name: str
    trigger: Trigger
    days: Days = field(default_factory=Days)
    setpoints: Setpoints = field(default_factory=Setpoints)
    firmware_window: FirmwareWindow | None = None
    #: act even while the site is off grid (refused by default)
    during_outage: bool = False

    @property
    def timed(self) -> bool:
        return isinstance(self.trigger, TIMED_TRIGGERS)

    @property
    def sets_state(self) -> bool:
        return not self.setpoints.is_empty()


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    rules: tuple[Rule, ...]
    #: None: the gateway's own site time zone
    timezone: ZoneInfo | None = None
    #: needed by tariff-period and price triggers, the firmware window's avoided periods,
    #: and `teg auto simulate`
    tariff: Tariff | None = None
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    source: Path | None = None

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


__all__ = [
    "ALL_DAYS",
    "DEFAULT_STALE_AFTER_S",
    "SETTING_NAMES",
    "TIMED_TRIGGERS",
    "WEEKDAYS",
    "WEEKENDS",
    "AtTime",
    "Days",
    "FirmwareWindow",
    "GridChange",
    "Plan",
    "Rule",
    "Setpoints",
    "Trigger",
    "WhenGrid",
    "WhenPriceAbove",
    "WhenSoe",
    "WhenTariffPeriod",
]
