"""Plan files: TOML in (validated, every error naming the rule and the field) and TOML out.

The format is documented for owners in docs/automation.md; in short::

    name = "sce-tou"
    timezone = "America/Los_Angeles"   # optional: else the gateway's site time zone
    tariff = "sce-tou"                 # optional: built-in name, path, or a [tariff] table
    stale_after_s = 120                # optional

    [[rules]]
    name = "peak on the battery"
    at = "07:55"                       # or: when = { soe_below_percent = 20 } (one trigger)
    days = "weekdays"                  # optional: all | weekdays | weekends | ["mon", ...]
    mode = "self_consumption"
    backup_reserve_percent = 5         # app scale; backup_reserve_raw_percent for the raw one

Errors are `InvalidInputError`s whose field reads `rules[2] "peak on the battery":
backup_reserve_percent`: rules are counted from 1, in file order, as an owner counts them.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import replace
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, available_timezones

import tomli_w

from tegkit.automation.plan import (
    ALL_DAYS,
    DEFAULT_STALE_AFTER_S,
    WEEKDAYS,
    WEEKENDS,
    AtTime,
    Days,
    FirmwareWindow,
    Plan,
    Rule,
    Setpoints,
    Trigger,
    WhenGrid,
    WhenPriceAbove,
    WhenSoe,
    WhenTariffPeriod,
)
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, ExportRule, OperationMode
from tegkit.percent import raw_to_app
from tegkit.tariff import BUILTIN_TARIFFS, Tariff, builtin_tariff

#: a plan (or a tariff file it names) larger than this is refused before it is parsed
MAX_PLAN_BYTES: Final = 1024 * 1024
MAX_RULES: Final = 500
MAX_NAME_CHARS: Final = 100

STALE_AFTER_RANGE_S: Final = (5.0, 3600.0)
WINDOW_MINUTES_RANGE: Final = (1, 240)
WINDOW_MARGIN_RANGE_MIN: Final = (0, 720)
WINDOW_RETRY_RANGE_MIN: Final = (1, 60)
HYSTERESIS_RANGE_APP_PERCENT: Final = (0.0, 50.0)
PRICE_RANGE_PER_KWH: Final = (-10.0, 100.0)  # the tariff's own bounds

#: day names as written in `days`, Monday first (ISO weekday = index + 1)
DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_KINDS: Final = {"all": ALL_DAYS, "weekdays": WEEKDAYS, "weekends": WEEKENDS}

TOP_KEYS: Final = ("name", "timezone", "tariff", "stale_after_s", "rules")
SETTING_KEYS: Final = (
    "mode",
    "backup_reserve_percent",
    "backup_reserve_raw_percent",
    "grid_charging",
    "export_rule",
    "storm_watch",
)
RULE_KEYS: Final = (
    "name",
    "at",
    "when",
    "days",
    "months",
    "dates",
    "firmware_window",
    *SETTING_KEYS,
    "during_outage",
)
#: the conditions a `when` table may hold (exactly one), plus its one option
WHEN_CONDITIONS: Final = (
    "soe_below_percent",
    "soe_above_percent",
    "grid",
    "tariff_period",
    "price_above_per_kwh",
)
WHEN_OPTIONS: Final = ("hysteresis_percent",)
WINDOW_KEYS: Final = (
    "minutes",
    "avoid_periods",
    "margin_min",
    "idle_battery_w",
    "retry_every_min",
)
GRID_CHANGES: Final = ("down", "up")
_DEFAULT_HYSTERESIS_APP_PERCENT: Final = WhenSoe().hysteresis_app_percent

_CLOCK_RE = re.compile(r"^(\d{2}):(\d{2})$")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


# --- reading ----------------------------------------------------------------------------------


def load_plan(path: str | Path) -> Plan:
    """Read, parse and validate a plan file (UTF-8 TOML, at most MAX_PLAN_BYTES)."""
    path = Path(path)
    text = _read_text(path, "plan")
    plan = parse_plan(text, base_dir=path.parent)
    return replace(plan, source=path)


def parse_plan(text: str, base_dir: str | Path | None = None) -> Plan:
    """Parse and validate a plan written in TOML.

    `base_dir` is where a tariff path in the plan is looked for (the plan file's folder);
    without it, a relative path is taken from the current directory.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PLAN_BYTES:
        raise InvalidInputError("plan", f"a plan of at most {MAX_PLAN_BYTES} bytes", "larger")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError("plan", f"valid TOML ({exc})", "unreadable TOML") from None
    return _plan(data, Path(base_dir) if base_dir is not None else None)


def _read_text(path: Path, what: str) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInputError(what, f"a readable file ({reason})", str(path)) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise InvalidInputError(what, f"a file of at most {MAX_PLAN_BYTES} bytes", str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            what, f"a UTF-8 text file (byte {exc.start} is not UTF-8)", str(path)
        ) from None


def _plan(data: dict[str, Any], base_dir: Path | None) -> Plan:
    _reject_unknown(data, TOP_KEYS, "")
    if "name" not in data:
        raise InvalidInputError("name", 'a name for the plan (name = "...")', None)
    name = _name(data["name"], "name")
    timezone = None
    if "timezone" in data:
        timezone = parse_timezone(data["timezone"])
    tariff = _tariff(data["tariff"], base_dir) if "tariff" in data else None
    stale_after_s = DEFAULT_STALE_AFTER_S
    if "stale_after_s" in data:
        stale_after_s = _number(data["stale_after_s"], "stale_after_s", STALE_AFTER_RANGE_S, " s")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        given = {type(None): "missing", dict: "a single [rules] table"}.get(type(raw_rules))
        raise InvalidInputError("rules", "at least one [[rules]] table", given or raw_rules)
    if len(raw_rules) > MAX_RULES:
        raise InvalidInputError("rules", f"at most {MAX_RULES} rules", f"{len(raw_rules)} rules")
    rules: list[Rule] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_rules, start=1):
        rule = _rule(raw, index, tariff)
        if rule.name in first_index:
            raise InvalidInputError(
                f'rules[{index}] "{rule.name}": name',
                f"a name no other rule has (rules[{first_index[rule.name]}] has it)",
                rule.name,
            )
        first_index[rule.name] = index
        rules.append(rule)
    return Plan(
        name=name,
        rules=tuple(rules),
        timezone=timezone,
        tariff=tariff,
        stale_after_s=stale_after_s,
    )


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # "localtime" is this machine's setting, not a zone: a plan must mean the same anywhere.
    return frozenset(available_timezones() - {"localtime"})


def parse_timezone(value: object, field: str = "timezone") -> ZoneInfo:
    """An IANA time zone name as a ZoneInfo; an InvalidInputError naming `field` otherwise."""
    if not isinstance(value, str) or value not in _zone_names():
        raise InvalidInputError(
            field, 'an IANA time zone name such as "America/Los_Angeles"', value
        )
    return ZoneInfo(value)


def _tariff(value: object, base_dir: Path | None) -> Tariff:
    allowed = (
        f"a built-in tariff name ({', '.join(sorted(BUILTIN_TARIFFS))}), "
        "a path to a tariff file (relative to the plan), or a [tariff] table"
    )
    if isinstance(value, dict):
        return Tariff.from_dict(value, "tariff.")
    if not isinstance(value, str) or not value:
        raise InvalidInputError("tariff", allowed, value)
    if value in BUILTIN_TARIFFS:
        return builtin_tariff(value)
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        if "/" in value or "\\" in value or value.endswith(".toml"):  # meant as a path
            raise InvalidInputError("tariff", f"a tariff file that exists (not at {path})", value)
        raise InvalidInputError("tariff", allowed, value)
    return Tariff.from_toml(_read_text(path, "tariff"), f"tariff {value}: ")


def _rule(raw: object, index: int, tariff: Tariff | None) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise InvalidInputError(where, "a [[rules]] table", raw)
    if "name" not in raw:
        raise InvalidInputError(f"{where}: name", 'a name for the rule (name = "...")', None)
    name = _name(raw["name"], f"{where}: name")
    prefix = f'{where} "{name}": '
    _reject_unknown(raw, RULE_KEYS, prefix)
    trigger = _trigger(raw, prefix, tariff)
    days = _days(raw, prefix)
    setpoints = _setpoints(raw, prefix)
    window = None
    if "firmware_window" in raw:
        window = _firmware_window(raw["firmware_window"], f"{prefix}firmware_window", tariff)
    if setpoints.is_empty() and window is None:
        raise InvalidInputError(
            f"{prefix}(action)",
            f"at least one action: {', '.join(SETTING_KEYS)} or firmware_window",
            "none",
        )
    during_outage = _bool(raw.get("during_outage", False), f"{prefix}during_outage")
    return Rule(
        name=name,
        trigger=trigger,
        days=days,
        setpoints=setpoints,
        firmware_window=window,
        during_outage=during_outage,
    )


def _trigger(raw: dict[str, Any], prefix: str, tariff: Tariff | None) -> Trigger:
    if ("at" in raw) == ("when" in raw):
        given = "both" if "at" in raw else "neither"
        raise InvalidInputError(
            f"{prefix}at/when",
            'exactly one trigger: at = "HH:MM" or when = { ... }',
            given,
        )
    if "at" in raw:
        return AtTime(_clock(raw["at"], f"{prefix}at"))
    when = raw["when"]
    field = f"{prefix}when"
    allowed = "a table with exactly one of " + ", ".join(WHEN_CONDITIONS)
    if not isinstance(when, dict):
        raise InvalidInputError(field, allowed, when)
    _reject_unknown(when, WHEN_CONDITIONS + WHEN_OPTIONS, f"{field}.")
    conditions = [key for key in WHEN_CONDITIONS if key in when]
    if len(conditions) != 1:
        raise InvalidInputError(field, allowed, conditions or "no condition")
    key = conditions[0]
    value = when[key]
    field = f"{field}.{key}"
    soe = key in ("soe_below_percent", "soe_above_percent")
    if "hysteresis_percent" in when and not soe:
        raise InvalidInputError(
            f"{prefix}when.hysteresis_percent",
            "hysteresis_percent only beside soe_below_percent or soe_above_percent",
            when["hysteresis_percent"],
        )
    if soe:
        percent = _number(value, field, (0.0, 100.0), " % (app scale)")
        hysteresis = _DEFAULT_HYSTERESIS_APP_PERCENT
        if "hysteresis_percent" in when:
            hysteresis = _number(
                when["hysteresis_percent"],
                f"{prefix}when.hysteresis_percent",
                HYSTERESIS_RANGE_APP_PERCENT,
                " % (app scale)",
            )
        if key == "soe_below_percent":
            return WhenSoe(below_app_percent=percent, hysteresis_app_percent=hysteresis)
        return WhenSoe(above_app_percent=percent, hysteresis_app_percent=hysteresis)
    if key == "grid":
        if value not in GRID_CHANGES:
            raise InvalidInputError(field, 'one of "down", "up"', value)
        return WhenGrid("down" if value == "down" else "up")
    if tariff is None:
        raise InvalidInputError(field, f"{key} only in a plan that has a tariff", value)
    if key == "tariff_period":
        return WhenTariffPeriod(_period(value, field, tariff))
    return WhenPriceAbove(_number(value, field, PRICE_RANGE_PER_KWH, " per kWh"))


def _days(raw: dict[str, Any], prefix: str) -> Days:
    weekdays = ALL_DAYS
    if "days" in raw:
        weekdays = _weekdays(raw["days"], f"{prefix}days")
    months = None
    if "months" in raw:
        value = raw["months"]
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_int(m) and 1 <= m <= 12 for m in value)
        ):
            raise InvalidInputError(
                f"{prefix}months",
                "[first, last]: an inclusive range of months 1..12, which may wrap (e.g. [10, 5])",
                value,
            )
        months = (int(value[0]), int(value[1]))
    dates = None
    if "dates" in raw:
        dates = _dates(raw["dates"], f"{prefix}dates")
    return Days(weekdays=weekdays, months=months, dates=dates)


def _weekdays(value: object, field: str) -> frozenset[int]:
    allowed = '"all", "weekdays", "weekends", or a list of day names ' + ", ".join(
        f'"{day}"' for day in DAY_NAMES
    )
    if isinstance(value, str):
        if value not in DAY_KINDS:
            raise InvalidInputError(field, allowed, value)
        return DAY_KINDS[value]
    if not isinstance(value, list) or not value:
        raise InvalidInputError(field, allowed, value)
    numbers = set()
    for item in value:
        if not isinstance(item, str) or item not in DAY_NAMES:
            raise InvalidInputError(field, allowed, item)
        numbers.add(DAY_NAMES.index(item) + 1)
    return frozenset(numbers)


def _dates(value: object, field: str) -> frozenset[date]:
    allowed = 'a non-empty list of local dates, "YYYY-MM-DD"'
    if not isinstance(value, list) or not value:
        raise InvalidInputError(field, allowed, value)
    days = set()
    for item in value:
        if isinstance(item, date) and not hasattr(item, "hour"):  # a TOML local date
            days.add(item)
            continue
        if not isinstance(item, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item):
            raise InvalidInputError(field, allowed, item)
        try:
            days.add(date.fromisoformat(item))
        except ValueError:
            raise InvalidInputError(field, allowed, item) from None
    return frozenset(days)


def _setpoints(raw: dict[str, Any], prefix: str) -> Setpoints:
    mode = None
    if "mode" in raw:
        value = raw["mode"]
        if value not in [m.value for m in CUSTOMER_MODES]:
            raise InvalidInputError(
                f"{prefix}mode",
                "one of " + ", ".join(f'"{m.value}"' for m in CUSTOMER_MODES),
                value,
            )
        mode = OperationMode(value)
    reserve = None
    if "backup_reserve_percent" in raw and "backup_reserve_raw_percent" in raw:
        raise InvalidInputError(
            f"{prefix}backup_reserve_raw_percent",
            "only one of backup_reserve_percent (app scale) and backup_reserve_raw_percent",
            raw["backup_reserve_raw_percent"],
        )
    if "backup_reserve_percent" in raw:
        reserve = _number(
            raw["backup_reserve_percent"],
            f"{prefix}backup_reserve_percent",
            (0.0, 100.0),
            " % on the app scale (what the Tesla app shows)",
        )
    elif "backup_reserve_raw_percent" in raw:
        reserve = raw_to_app(
            _number(
                raw["backup_reserve_raw_percent"],
                f"{prefix}backup_reserve_raw_percent",
                (0.0, 100.0),
                " % on the gateway's raw scale",
            )
        )
    export_rule = None
    if "export_rule" in raw:
        value = raw["export_rule"]
        if value not in [rule.value for rule in ExportRule]:
            raise InvalidInputError(
                f"{prefix}export_rule",
                "one of " + ", ".join(f'"{rule.value}"' for rule in ExportRule),
                value,
            )
        export_rule = ExportRule(value)
    grid_charging = None
    if "grid_charging" in raw:
        grid_charging = _bool(raw["grid_charging"], f"{prefix}grid_charging")
    storm_watch = None
    if "storm_watch" in raw:
        storm_watch = _bool(raw["storm_watch"], f"{prefix}storm_watch")
    return Setpoints(
        mode=mode,
        backup_reserve_app_percent=reserve,
        grid_charging=grid_charging,
        export_rule=export_rule,
        storm_watch=storm_watch,
    )


def _firmware_window(value: object, field: str, tariff: Tariff | None) -> FirmwareWindow | None:
    allowed = "true, false, or a table of " + ", ".join(WINDOW_KEYS)
    if value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise InvalidInputError(field, allowed, value)
    _reject_unknown(value, WINDOW_KEYS, f"{field}.")
    window = FirmwareWindow()
    if "avoid_periods" in value:
        avoid = value["avoid_periods"]
        if not isinstance(avoid, list):
            raise InvalidInputError(f"{field}.avoid_periods", "a list of tariff periods", avoid)
        if avoid and tariff is None:
            raise InvalidInputError(
                f"{field}.avoid_periods", "avoid_periods only in a plan that has a tariff", avoid
            )
        names = [_period(name, f"{field}.avoid_periods", tariff) for name in avoid]
        avoid_periods = tuple(dict.fromkeys(names))
    else:
        # "peak" when the tariff has one; nothing to avoid without a tariff.
        has_peak = tariff is not None and "peak" in tariff.period_names()
        avoid_periods = window.avoid_periods if has_peak else ()

    def whole(key: str, bounds: tuple[int, int], unit: str) -> int:
        if key not in value:
            return int(getattr(window, _WINDOW_FIELDS[key]))
        return _whole(value[key], f"{field}.{key}", bounds, unit)

    idle_w = window.idle_battery_w
    if "idle_battery_w" in value:
        idle_w = _number(value["idle_battery_w"], f"{field}.idle_battery_w", (0.0, 1e6), " W")
    return FirmwareWindow(
        duration_min=whole("minutes", WINDOW_MINUTES_RANGE, " minutes"),
        avoid_periods=avoid_periods,
        margin_min=whole("margin_min", WINDOW_MARGIN_RANGE_MIN, " minutes"),
        idle_battery_w=idle_w,
        retry_every_min=whole("retry_every_min", WINDOW_RETRY_RANGE_MIN, " minutes"),
    )


#: the file's keys of a firmware window -> FirmwareWindow's fields
_WINDOW_FIELDS: Final = {
    "minutes": "duration_min",
    "avoid_periods": "avoid_periods",
    "margin_min": "margin_min",
    "idle_battery_w": "idle_battery_w",
    "retry_every_min": "retry_every_min",
}


# --- small validators -------------------------------------------------------------------------


def _reject_unknown(data: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise InvalidInputError(f"{prefix}{key}", f"one of {', '.join(known)}", "unknown key")


def _name(value: object, field: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_NAME_CHARS
        or _CONTROL_RE.search(value)
    ):
        raise InvalidInputError(
            field, f"a non-empty name of at most {MAX_NAME_CHARS} printable characters", value
        )
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, field: str, bounds: tuple[float, float], unit: str) -> float:
    low, high = bounds
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidInputError(field, f"a number from {low:g} to {high:g}{unit}", value)
    return float(value)


def _whole(value: object, field: str, bounds: tuple[int, int], unit: str) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(field, f"a whole number from {low} to {high}{unit}", value)
    return value


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(field, "true or false", value)
    return value


def _clock(value: object, field: str) -> int:
    allowed = 'a local clock time "HH:MM" from "00:00" to "23:59"'
    if isinstance(value, time):  # a TOML local time: at = 07:15
        if value.second or value.microsecond or value.tzinfo is not None:
            raise InvalidInputError(field, allowed, value.isoformat())
        return value.hour * 60 + value.minute
    match = _CLOCK_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInputError(field, allowed, value)
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise InvalidInputError(field, allowed, value)
    return hour * 60 + minute


def _period(value: object, field: str, tariff: Tariff | None) -> str:
    names = tariff.period_names() if tariff is not None else ()
    if not isinstance(value, str) or value not in names:
        raise InvalidInputError(
            field,
            f"a period of the plan's tariff ({', '.join(names)})" if names else "a tariff",
            value,
        )
    return value


# --- writing ----------------------------------------------------------------------------------


def dump_plan(plan: Plan) -> str:
    """The plan as TOML that `parse_plan` reads back to an equal plan (apart from `source`).

    A tariff equal to a built-in one is written by its name, any other as a [tariff] table.
    """
    data: dict[str, Any] = {"name": plan.name}
    if plan.timezone is not None:
        data["timezone"] = plan.timezone.key
    if plan.stale_after_s != DEFAULT_STALE_AFTER_S:
        data["stale_after_s"] = _tidy(plan.stale_after_s)
    if plan.tariff is not None:
        data["tariff"] = _tariff_value(plan.tariff)
    data["rules"] = [_rule_table(rule) for rule in plan.rules]
    return tomli_w.dumps(data)


def _tariff_value(tariff: Tariff) -> str | dict[str, Any]:
    if tariff.name in BUILTIN_TARIFFS and builtin_tariff(tariff.name) == tariff:
        return tariff.name
    table: dict[str, Any] = {"name": tariff.name, "currency": tariff.currency}
    if tariff.timezone is not None:
        table["timezone"] = tariff.timezone
    table["seasons"] = [
        {
            "name": season.name,
            "months": [season.first_month, season.last_month],
            "periods": [
                {
                    "name": period.name,
                    "start": _clock_text(period.start_minute),
                    "end": _clock_text(period.end_minute),
                    "days": period.days,
                    "buy_per_kwh": period.buy_per_kwh,
                    "sell_per_kwh": period.sell_per_kwh,
                }
                for period in season.periods
            ],
        }
        for season in tariff.seasons
    ]
    return table


def _rule_table(rule: Rule) -> dict[str, Any]:
    table: dict[str, Any] = {"name": rule.name}
    table.update(_trigger_value(rule.trigger))
    days = rule.days
    if days.weekdays != ALL_DAYS:
        kind = next((k for k, v in DAY_KINDS.items() if v == days.weekdays), None)
        table["days"] = kind or [DAY_NAMES[n - 1] for n in sorted(days.weekdays)]
    if days.months is not None:
        table["months"] = list(days.months)
    if days.dates is not None:
        table["dates"] = [day.isoformat() for day in sorted(days.dates)]
    if rule.firmware_window is not None:
        window = rule.firmware_window
        table["firmware_window"] = {
            key: list(value) if isinstance(value, tuple) else _tidy(value)
            for key, attribute in _WINDOW_FIELDS.items()
            for value in [getattr(window, attribute)]
        }
    setpoints = rule.setpoints
    writers: tuple[tuple[str, object, Callable[[Any], object]], ...] = (
        ("mode", setpoints.mode, str),
        ("backup_reserve_percent", setpoints.backup_reserve_app_percent, _tidy),
        ("grid_charging", setpoints.grid_charging, bool),
        ("export_rule", setpoints.export_rule, str),
        ("storm_watch", setpoints.storm_watch, bool),
    )
    for key, value, write in writers:
        if value is not None:
            table[key] = write(value)
    if rule.during_outage:
        table["during_outage"] = True
    return table


def _trigger_value(trigger: Trigger) -> dict[str, Any]:
    if isinstance(trigger, AtTime):
        return {"at": _clock_text(trigger.minute_of_day)}
    when: dict[str, Any]
    if isinstance(trigger, WhenSoe):
        if trigger.below_app_percent is not None:
            when = {"soe_below_percent": _tidy(trigger.below_app_percent)}
        else:
            when = {"soe_above_percent": _tidy(trigger.above_app_percent)}
        if trigger.hysteresis_app_percent != _DEFAULT_HYSTERESIS_APP_PERCENT:
            when["hysteresis_percent"] = _tidy(trigger.hysteresis_app_percent)
    elif isinstance(trigger, WhenGrid):
        when = {"grid": trigger.change}
    elif isinstance(trigger, WhenTariffPeriod):
        when = {"tariff_period": trigger.period}
    else:
        when = {"price_above_per_kwh": trigger.buy_per_kwh}
    return {"when": when}


def _tidy(value: float | int | None) -> float | int | None:
    """5.0 as 5, for a file an owner reads; parsing gives 5.0 back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


__all__ = [
    "DAY_NAMES",
    "MAX_PLAN_BYTES",
    "MAX_RULES",
    "dump_plan",
    "load_plan",
    "parse_plan",
    "parse_timezone",
]
