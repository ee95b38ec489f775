"""Scenarios: a site, a start, controls and timed events, read from TOML; built-ins ship here.

A scenario file::

    name = "evening-outage"
    start = "2024-08-10T15:00:00-07:00"   # ISO datetime with an offset (or a TOML datetime)
    speed = 60.0                          # simulated seconds per real second (for `teg sim`)
    seed = 7
    soe_raw_percent = 80.0
    mode = "self_consumption"             # an OperationMode value (models/vocabulary.py)
    backup_reserve_raw_percent = 30.0
    cloud_cover = 0.0                     # 0 clear .. 1 overcast
    firmware = "21.44"                    # optional: the profile the server plays
    tariff = "california-tou"             # a built-in name, or a [tariff] table (tariff.py)

    [site]
    timezone = "America/Phoenix"
    latitude = 33.45
    longitude = -112.07
    array_kw = 10.0
    powerwalls = 2
    powerwall_power_kw = 5.0
    daily_load_kwh = 30.0
    grid_charging = false

    [[events]]
    at = "18:30"        # ISO datetime, an offset from start ("+2h", "+1h30m", "+90s"), or a
    action = "outage"   # local clock time ("18:30": its next occurrence at or after start)
    minutes = 180

Actions and their fields: outage (minutes, optional: without it the grid stays down until a
restore), restore, cloud_cover (value 0..1, minutes optional: then back to the scenario's
cloud_cover), load_spike (power_w, minutes), firmware (version: the gateway simply runs it
from then on), sitemaster_stop, sitemaster_run, and two that automation plans meet:

    [[events]]
    at = "07:55"
    action = "operation"              # the owner (or the app) changes settings at once
    mode = "self_consumption"         # any subset, at least one, of: mode (OperationMode),
    backup_reserve_percent = 5        # backup_reserve_percent (APP scale, as the Tesla app)
                                      # or backup_reserve_raw_percent (the gateway's scale),
                                      # grid_charging, export_rule (ExportRule), storm_watch

    [[events]]
    at = "+6h"
    action = "firmware_release"       # from now the gateway's update check finds `version`;
    version = "23.44"                 # unless an update is started first, the gateway starts
    auto_install_within_h = 48        # one by itself at a seeded random instant within that
                                      # many hours (0: never by itself); see sim/firmware.py

Timed ends are expanded into their own events, so `events` lists every change.
A `Timeline` plays the events: each one is applied at its exact time, so the state read at or
after an event's time reflects it.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.percent import app_to_raw
from tegkit.sim.firmware import DEFAULT_AUTO_INSTALL_WITHIN_H, MAX_AUTO_INSTALL_WITHIN_H
from tegkit.sim.physics import DEFAULT_RESERVE_RAW_PERCENT, Site
from tegkit.sim.profiles import PROFILES, get_profile
from tegkit.sim.siteconfig import SiteConfig, check_range
from tegkit.tariff import Tariff, builtin_tariff

ACTIONS: Final = (
    "outage",
    "restore",
    "cloud_cover",
    "load_spike",
    "firmware",
    "sitemaster_stop",
    "sitemaster_run",
    "operation",
    "firmware_release",
)


def _shipped_scenarios() -> tuple[str, ...]:
    folder = resources.files("tegkit.sim").joinpath("scenarios")
    names = (f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml"))
    return tuple(sorted(names))


# The one list of built-in scenario names (the demo, the CLIs and the loader read it): the
# TOML files shipped in sim/scenarios/, so adding a scenario is adding its file.
BUILTIN_SCENARIOS: Final = _shipped_scenarios()
DEFAULT_SCENARIO: Final = "sunny-day"

# scenario [site] key -> SiteConfig field
_SITE_FIELDS: Final = {
    "timezone": "timezone",
    "latitude": "latitude_deg",
    "longitude": "longitude_deg",
    "array_kw": "array_kw",
    "powerwalls": "powerwalls",
    "powerwall_power_kw": "powerwall_power_kw",
    "usable_kwh_per_powerwall": "usable_kwh_per_powerwall",
    "round_trip_efficiency": "round_trip_efficiency",
    "nominal_voltage_v": "nominal_voltage_v",
    "nominal_frequency_hz": "nominal_frequency_hz",
    "daily_load_kwh": "daily_load_kwh",
    "grid_charging": "grid_charging",
    "battery_export": "battery_export",
}
_TOP_FIELDS: Final = (
    "name",
    "description",
    "start",
    "speed",
    "seed",
    "soe_raw_percent",
    "mode",
    "backup_reserve_raw_percent",
    "cloud_cover",
    "firmware",
    "tariff",
    "site",
    "events",
)
_EVENT_FIELDS: Final = {
    "outage": ({"minutes"}, set()),
    "restore": (set(), set()),
    "cloud_cover": ({"value", "minutes"}, {"value"}),
    "load_spike": ({"power_w", "minutes"}, {"power_w", "minutes"}),
    "firmware": ({"version"}, {"version"}),
    "sitemaster_stop": (set(), set()),
    "sitemaster_run": (set(), set()),
    "operation": (
        {
            "mode",
            "backup_reserve_percent",
            "backup_reserve_raw_percent",
            "grid_charging",
            "export_rule",
            "storm_watch",
        },
        set(),  # at least one of them (checked in _operation)
    ),
    "firmware_release": ({"version", "auto_install_within_h"}, {"version"}),
}  # action -> (allowed fields, required fields) besides `at` and `action`
_OFFSET_RE = re.compile(r"^\+(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    """One change at one time; only the fields its action uses are set."""

    at: datetime
    action: str
    minutes: float | None = None
    value: float | None = None
    power_w: float | None = None
    version: str | None = None
    # operation: the settings it changes (None: left alone); the reserve on the raw scale
    mode: OperationMode | None = None
    backup_reserve_raw_percent: float | None = None
    grid_charging: bool | None = None
    export_rule: ExportRule | None = None
    storm_watch: bool | None = None
    # firmware_release: within how many hours the gateway installs it by itself (0: never)
    auto_install_within_h: float | None = None

    def settings(self) -> dict[str, object]:
        """An operation's changes by Site attribute name (the names SimulatedGateway's
        apply_settings takes); empty for other actions."""
        named: dict[str, object] = {
            "mode": self.mode,
            "backup_reserve_raw_percent": self.backup_reserve_raw_percent,
            "grid_charging_allowed": self.grid_charging,
            "export_rule": self.export_rule,
            "storm_watch": self.storm_watch,
        }
        return {name: value for name, value in named.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario: build its site, then feed it the events as time passes."""

    name: str
    description: str
    config: SiteConfig
    start: datetime
    speed: float
    seed: int
    mode: str
    backup_reserve_raw_percent: float
    cloud_cover: float
    firmware: str | None
    events: tuple[ScenarioEvent, ...]

    @classmethod
    def from_toml(cls, text: str, default_name: str = "scenario") -> Scenario:
        """Parse and validate a scenario written in TOML; errors name the field."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError("(toml)", f"valid TOML ({exc})", default_name) from exc
        return _parse(data, default_name)

    def build_site(self) -> Site:
        """A fresh Site at the scenario's start, with its mode, reserve and clouds."""
        site = Site(self.config, self.start, self.seed)
        site.mode = self.mode
        site.backup_reserve_raw_percent = self.backup_reserve_raw_percent
        site.cloud_cover = self.cloud_cover
        return site

    def timeline(self) -> Timeline:
        """The scenario's events, ready to be played from its start."""
        return Timeline(self.events, self.start)


class Timeline:
    """The events still to come, played against a site as its clock moves."""

    def __init__(self, events: Iterable[ScenarioEvent], start: datetime) -> None:
        # Events before the start are history: a site started later never sees them.
        self._pending = sorted((e for e in events if e.at >= start), key=_event_time)

    @property
    def pending(self) -> tuple[ScenarioEvent, ...]:
        """The events not yet applied, in time order."""
        return tuple(self._pending)

    def add(self, event: ScenarioEvent) -> None:
        """Schedule one more event (after those already pending at the same time)."""
        bisect.insort_right(self._pending, event, key=_event_time)

    def advance(self, site: Site, dt_s: float, apply: Callable[[ScenarioEvent], None]) -> None:
        """Advance `site` by `dt_s`, calling `apply` for each due event at its exact time.

        An event is due when its time is at or before the end of the step: a reading taken
        at the event's time must already show it (an outage at 18:30:00 is islanded then).
        """
        check_range("dt_s", dt_s, 0.0, 1e12)
        end_s = site.epoch_s + dt_s
        while self._pending and _event_time(self._pending[0]) <= end_s:
            event = self._pending.pop(0)
            site.advance(max(0.0, _event_time(event) - site.epoch_s))
            apply(event)
        site.advance(max(0.0, end_s - site.epoch_s))


def _event_time(event: ScenarioEvent) -> float:
    return event.at.timestamp()


def apply_event(site: Site, event: ScenarioEvent) -> None:
    """Apply an event's physics to `site` (a firmware change or release has none: the
    gateway's part, see sim/firmware.py for when a release stops the battery)."""
    action = event.action
    if action == "outage":
        site.start_outage()
    elif action == "restore":
        site.end_outage()
    elif action == "cloud_cover":
        assert event.value is not None
        site.cloud_cover = event.value
    elif action == "load_spike":
        assert event.power_w is not None and event.minutes is not None
        site.add_load_spike(event.power_w, event.minutes * 60.0)
    elif action == "sitemaster_stop":
        site.running = False
    elif action == "sitemaster_run":
        site.running = True
    elif action == "operation":
        for name, value in event.settings().items():
            setattr(site, name, value)


def builtin_scenario_text(name: str) -> str:
    """The TOML of a shipped scenario."""
    if name not in BUILTIN_SCENARIOS:
        raise InvalidInputError("scenario", f"one of {list(BUILTIN_SCENARIOS)}", name)
    resource = resources.files("tegkit.sim").joinpath("scenarios", f"{name}.toml")
    return resource.read_text(encoding="utf-8")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name (BUILTIN_SCENARIOS) or a scenario TOML file by path."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_SCENARIOS:
        return Scenario.from_toml(builtin_scenario_text(name_or_path), name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise InvalidInputError(
            "scenario", f"one of {list(BUILTIN_SCENARIOS)} or a path to a .toml file", str(path)
        )
    return Scenario.from_toml(path.read_text(encoding="utf-8"), path.stem)


# --- parsing ------------------------------------------------------------------------------


def _parse(data: dict[str, Any], default_name: str) -> Scenario:
    _reject_unknown(data, set(_TOP_FIELDS), "")
    name = _text(data.get("name", default_name), "name")
    description = _text(data.get("description", ""), "description", allow_empty=True)
    config = _site_config(data)
    start = _aware(data.get("start"), "start")
    speed = _number(data.get("speed", 1.0), "speed", 0.001, 1e6)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError("seed", "an integer >= 0", seed)
    mode = data.get("mode", OperationMode.SELF_CONSUMPTION)
    if mode not in tuple(OperationMode):
        raise InvalidInputError("mode", "one of " + ", ".join(OperationMode), mode)
    reserve = _number(
        data.get("backup_reserve_raw_percent", DEFAULT_RESERVE_RAW_PERCENT),
        "backup_reserve_raw_percent",
        0.0,
        100.0,
    )
    cloud_cover = _number(data.get("cloud_cover", 0.0), "cloud_cover", 0.0, 1.0)
    firmware = data.get("firmware")
    if firmware is not None:
        firmware = _firmware(firmware, "firmware")
    events = _events(data.get("events", []), start, ZoneInfo(config.timezone), cloud_cover)
    return Scenario(
        name, description, config, start, speed, seed, mode, reserve, cloud_cover, firmware, events
    )


def _site_config(data: dict[str, Any]) -> SiteConfig:
    site = data.get("site", {})
    if not isinstance(site, dict):
        raise InvalidInputError("site", "a table", site)
    _reject_unknown(site, set(_SITE_FIELDS), "site.")
    kwargs: dict[str, Any] = {_SITE_FIELDS[key]: value for key, value in site.items()}
    soe = data.get("soe_raw_percent", 50.0)
    kwargs["initial_soe_raw_percent"] = soe
    kwargs["tariff"] = _tariff(data.get("tariff"))
    try:
        return SiteConfig(**kwargs)
    except InvalidInputError as exc:
        scenario_key = {v: k for k, v in _SITE_FIELDS.items()}
        if exc.field == "initial_soe_raw_percent":
            field = "soe_raw_percent"
        else:
            field = f"site.{scenario_key.get(exc.field, exc.field)}"
        raise InvalidInputError(field, exc.allowed, exc.value) from exc


def _tariff(raw: object) -> Tariff | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return builtin_tariff(raw)
    if isinstance(raw, dict):
        return Tariff.from_dict(raw, "tariff.")
    raise InvalidInputError("tariff", "a built-in tariff name or a [tariff] table", raw)


def _events(
    raw: object, start: datetime, zone: ZoneInfo, base_cloud: float
) -> tuple[ScenarioEvent, ...]:
    if not isinstance(raw, list):
        raise InvalidInputError("events", "an array of [[events]] tables", raw)
    events: list[ScenarioEvent] = []
    for index, item in enumerate(raw):
        p = f"events[{index}]"
        if not isinstance(item, dict):
            raise InvalidInputError(p, "a table with `at` and `action`", item)
        action = item.get("action")
        if action not in _EVENT_FIELDS:
            raise InvalidInputError(f"{p}.action", f"one of {list(ACTIONS)}", action)
        allowed, required = _EVENT_FIELDS[action]
        _reject_unknown(item, allowed | {"at", "action"}, f"{p}.")
        for key in sorted(required):
            if key not in item:
                raise InvalidInputError(f"{p}.{key}", f"a value (required by {action!r})", None)
        at = _when(item.get("at"), f"{p}.at", start, zone)
        minutes = item.get("minutes")
        if minutes is not None:
            minutes = _number(minutes, f"{p}.minutes", 0.0, 525600.0)
        event = ScenarioEvent(at, action, minutes=minutes)
        if action == "cloud_cover":
            event = replace(event, value=_number(item["value"], f"{p}.value", 0.0, 1.0))
        elif action == "load_spike":
            event = replace(event, power_w=_number(item["power_w"], f"{p}.power_w", 0.0, 1e6))
        elif action == "firmware":
            event = replace(event, version=_firmware(item["version"], f"{p}.version"))
        elif action == "firmware_release":
            within_h = _number(
                item.get("auto_install_within_h", DEFAULT_AUTO_INSTALL_WITHIN_H),
                f"{p}.auto_install_within_h",
                0.0,
                MAX_AUTO_INSTALL_WITHIN_H,
            )
            version = _firmware(item["version"], f"{p}.version")
            event = replace(event, version=version, auto_install_within_h=within_h)
        elif action == "operation":
            event = _operation(event, item, p)
        events.append(event)
        if minutes is not None and action == "outage":
            events.append(ScenarioEvent(at + timedelta(minutes=minutes), "restore"))
        elif minutes is not None and action == "cloud_cover":
            events.append(
                ScenarioEvent(at + timedelta(minutes=minutes), "cloud_cover", value=base_cloud)
            )
    return tuple(sorted(events, key=lambda e: e.at))  # stable: same-time events keep file order


def _operation(event: ScenarioEvent, item: dict[str, Any], p: str) -> ScenarioEvent:
    settings = sorted(_EVENT_FIELDS["operation"][0])
    if not any(key in item for key in settings):
        allowed = "an operation with at least one of " + ", ".join(settings)
        raise InvalidInputError(p, allowed, item)
    if "backup_reserve_percent" in item and "backup_reserve_raw_percent" in item:
        raise InvalidInputError(
            f"{p}.backup_reserve_raw_percent",
            "either backup_reserve_percent (app scale) or backup_reserve_raw_percent, not both",
            item["backup_reserve_raw_percent"],
        )
    mode = item.get("mode")
    if mode is not None and mode not in tuple(OperationMode):
        raise InvalidInputError(f"{p}.mode", "one of " + ", ".join(OperationMode), mode)
    reserve_raw: float | None = None
    if "backup_reserve_percent" in item:
        app = _number(item["backup_reserve_percent"], f"{p}.backup_reserve_percent", 0.0, 100.0)
        reserve_raw = app_to_raw(app)
    elif "backup_reserve_raw_percent" in item:
        field = f"{p}.backup_reserve_raw_percent"
        reserve_raw = _number(item["backup_reserve_raw_percent"], field, 0.0, 100.0)
    flags: dict[str, bool | None] = {}
    for key in ("grid_charging", "storm_watch"):
        value = item.get(key)
        if value is not None and not isinstance(value, bool):
            raise InvalidInputError(f"{p}.{key}", "true or false", value)
        flags[key] = value
    rule = item.get("export_rule")
    if rule is not None and rule not in tuple(ExportRule):
        allowed = "one of " + ", ".join(r.value for r in ExportRule)
        raise InvalidInputError(f"{p}.export_rule", allowed, rule)
    return replace(
        event,
        mode=None if mode is None else OperationMode(mode),
        backup_reserve_raw_percent=reserve_raw,
        grid_charging=flags["grid_charging"],
        export_rule=None if rule is None else ExportRule(rule),
        storm_watch=flags["storm_watch"],
    )


def _when(raw: object, field: str, start: datetime, zone: ZoneInfo) -> datetime:
    allowed = "an ISO datetime with offset, an offset like '+2h' / '+1h30m', or 'HH:MM'"
    if isinstance(raw, datetime):
        at = _aware(raw, field)
    elif isinstance(raw, time):
        at = _next_clock(start, zone, raw.hour, raw.minute)
    elif isinstance(raw, str) and raw.startswith("+"):
        match = _OFFSET_RE.match(raw)
        if match is None or raw == "+":
            raise InvalidInputError(field, allowed, raw)
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        at = start + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    elif isinstance(raw, str) and _CLOCK_RE.match(raw):
        hour, minute = (int(part) for part in raw.split(":"))
        if hour > 23 or minute > 59:
            raise InvalidInputError(field, allowed, raw)
        at = _next_clock(start, zone, hour, minute)
    elif isinstance(raw, str):
        at = _aware(raw, field, allowed)
    else:
        raise InvalidInputError(field, allowed, raw)
    if at < start:
        raise InvalidInputError(field, f"a time at or after start ({start.isoformat()})", raw)
    return at


def parse_event_time(raw: object, field: str, start: datetime, zone: ZoneInfo) -> datetime:
    """An event time as scenario files write it (ISO with offset, '+2h', 'HH:MM' in `zone`),
    at or after `start`; InvalidInputError names `field` otherwise."""
    return _when(raw, field, start, zone)


def _next_clock(start: datetime, zone: ZoneInfo, hour: int, minute: int) -> datetime:
    local = start.astimezone(zone)
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (
        at
        if at >= local
        else (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    )


def _aware(raw: object, field: str, allowed: str = "an ISO datetime with offset") -> datetime:
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise InvalidInputError(field, allowed, raw) from exc
    if not isinstance(raw, datetime) or raw.tzinfo is None or raw.utcoffset() is None:
        raise InvalidInputError(field, allowed, raw)
    return raw


def _number(raw: object, field: str, low: float, high: float) -> float:
    check_range(field, raw, low, high)
    assert isinstance(raw, int | float)
    return float(raw)


def _text(raw: object, field: str, allow_empty: bool = False) -> str:
    if not isinstance(raw, str) or (not raw and not allow_empty):
        raise InvalidInputError(field, "a non-empty string" if not allow_empty else "text", raw)
    return raw


def _firmware(raw: object, field: str) -> str:
    # Checked here, so a bad version fails when the file is read, not when its event fires.
    if not isinstance(raw, str):
        raise InvalidInputError(field, f"one of {list(PROFILES)}", raw)
    try:
        return get_profile(raw).name
    except ValueError as exc:
        raise InvalidInputError(field, f"one of {list(PROFILES)}", raw) from exc


def _reject_unknown(data: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise InvalidInputError(f"{prefix}{key}", f"one of {sorted(known)}", "unknown field")


__all__ = [
    "ACTIONS",
    "BUILTIN_SCENARIOS",
    "DEFAULT_SCENARIO",
    "Scenario",
    "ScenarioEvent",
    "Timeline",
    "apply_event",
    "builtin_scenario_text",
    "load_scenario",
    "parse_event_time",
]
