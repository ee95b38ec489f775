"""What a plan will do, in plain words: its timed rules day by day at site-local times, its
condition rules, and what deserves a warning (two rules setting one value at the same
instant, clock times daylight saving time moves, a firmware window that can never install).

Offline and pure: the instants come from `schedule.occurrences`, never from a gateway.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from tegkit.automation.plan import (
    ALL_DAYS,
    SETTING_NAMES,
    WEEKDAYS,
    WEEKENDS,
    AtTime,
    Days,
    FirmwareWindow,
    Plan,
    Rule,
    Setpoints,
    WhenGrid,
    WhenPriceAbove,
    WhenSoe,
    WhenTariffPeriod,
)
from tegkit.automation.schedule import local_instant, occurrences, tariff_starts
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import MODE_LABELS, ExportRule, OperationMode
from tegkit.tariff import Tariff

#: the longest look ahead `teg auto check` offers
MAX_DAYS: Final = 31

# Fixed English names: strftime's %a and %b follow the process locale.
_DAY_ABBR: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_ABBR: Final = tuple(name[:3] for name in _MONTH_NAMES)

#: what each export rule lets go to the grid, said plainly
EXPORT_TEXT: Final[dict[ExportRule, str]] = {
    ExportRule.PV_ONLY: "solar only",
    ExportRule.BATTERY_OK: "solar and battery",
    ExportRule.NEVER: "nothing",
}
SETTING_LABELS: Final[dict[str, str]] = {
    "mode": "mode",
    "backup_reserve_app_percent": "backup reserve",
    "grid_charging": "grid charging",
    "export_rule": "export",
    "storm_watch": "storm watch",
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One firing of a timed rule in the days described."""

    at_utc: datetime
    local: datetime
    rule: Rule
    #: what starts it when it is not a clock time ("peak starts"); None for `at`
    cause: str | None
    #: what it does, e.g. "set mode self-powered and backup reserve 5 %"
    text: str


@dataclass(frozen=True, slots=True)
class Description:
    plan: Plan
    tz: ZoneInfo
    first_day: date
    days: int
    planned: tuple[Planned, ...]
    #: (rule, "whenever the state of energy falls below 20 %: set ...")
    conditions: tuple[tuple[Rule, str], ...]
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        """The description as text lines for a terminal."""
        last_day = self.first_day + timedelta(days=self.days - 1)
        span = day_text(self.first_day)
        if last_day != self.first_day:
            span = f"{span} to {day_text(last_day)}"
        out = [
            f'Plan "{self.plan.name}": {len(self.plan.rules)} rule'
            f"{'' if len(self.plan.rules) == 1 else 's'}, valid. Times are {self.tz.key} "
            f"local time, {span}."
        ]
        if self.plan.tariff is not None:
            out.append(f'Tariff: "{self.plan.tariff.name}" ({self.plan.tariff.currency}).')
        out.append("")
        if not self.planned:
            out.append("No timed rule fires in these days.")
        shown: date | None = None
        for item in self.planned:
            day = item.local.date()
            head = day_text(day) if day != shown else ""
            shown = day
            cause = f"{item.cause}: " if item.cause else ""
            out.append(
                f'{head:<11}{item.local:%H:%M}  {cause}{item.text}  (rule "{item.rule.name}")'
            )
        if self.conditions:
            out += ["", "On conditions:"]
            out += [f'  {text}  (rule "{rule.name}")' for rule, text in self.conditions]
        if self.warnings:
            out += ["", "Warnings:"]
            out += [f"  {warning}" for warning in self.warnings]
        return out

    def to_json(self) -> dict[str, Any]:
        """The description as plain JSON types (times both in UTC and site-local)."""
        return {
            "plan": self.plan.name,
            "valid": True,
            "timezone": self.tz.key,
            "tariff": self.plan.tariff.name if self.plan.tariff is not None else None,
            "first_day": self.first_day.isoformat(),
            "days": self.days,
            "planned": [
                {
                    "at_utc": item.at_utc.isoformat(),
                    "at_local": item.local.isoformat(),
                    "rule": item.rule.name,
                    "cause": item.cause,
                    "text": item.text,
                }
                for item in self.planned
            ],
            "conditions": [{"rule": rule.name, "text": text} for rule, text in self.conditions],
            "warnings": list(self.warnings),
        }


def describe(plan: Plan, tz: ZoneInfo, first_day: date, days: int) -> Description:
    """The plan over `days` local days from `first_day`, in the site's zone `tz`."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError("days", f"a whole number of days from 1 to {MAX_DAYS}", days)
    start_utc = local_instant(first_day, 0, tz)
    end_utc = local_instant(first_day + timedelta(days=days), 0, tz)
    planned = tuple(
        Planned(
            at_utc=found.at_utc,
            local=found.at_utc.astimezone(tz),
            rule=found.rule,
            cause=_cause(found.rule),
            text=action_text(found.rule, found.at_utc.astimezone(tz)),
        )
        for found in occurrences(plan, tz, start_utc, end_utc)
    )
    conditions = tuple((rule, condition_text(rule)) for rule in plan.rules if not rule.timed)
    warnings = [
        *_zone_notes(plan, tz),
        *_dst_notes(plan, tz, first_day, days),
        *_conflicts(planned),
        *_windows_that_never_open(plan, planned, tz),
        *_rules_that_never_fire(plan, planned, first_day),
        *_outage_notes(plan),
    ]
    return Description(plan, tz, first_day, days, planned, conditions, tuple(warnings))


# --- words ------------------------------------------------------------------------------------


def day_text(day: date) -> str:
    """'Mon 3 Mar'."""
    return f"{_DAY_ABBR[day.weekday()]} {day.day} {_MONTH_ABBR[day.month - 1]}"


def setpoints_text(setpoints: Setpoints) -> str:
    """'set mode self-powered and backup reserve 5 %'; '' when it sets nothing."""
    parts = [
        f"{SETTING_LABELS[name]} {_value_text(name, getattr(setpoints, name))}"
        for name in SETTING_NAMES
        if getattr(setpoints, name) is not None
    ]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"set {listed}"


def firmware_text(window: FirmwareWindow, opened: datetime | None = None) -> str:
    """What a firmware window does, with the local time it closes when `opened` is given."""
    conditions = [
        f"the battery is idle (under {window.idle_battery_w:g} W) or down to its reserve",
        "the grid is up",
    ]
    if window.avoid_periods:
        periods = " or ".join(window.avoid_periods)
        if window.margin_min:
            conditions.append(f"no {periods} period is on or starts within {window.margin_min} min")
        else:
            conditions.append(f"no {periods} period is on")
    text = (
        "firmware window: check for an update and install it if "
        + ", ".join(conditions[:-1])
        + " and "
        + conditions[-1]
        + f"; otherwise check again every {window.retry_every_min} min"
    )
    if opened is not None:
        closes = (opened.astimezone(UTC) + timedelta(minutes=window.duration_min)).astimezone(
            opened.tzinfo
        )
        return f"{text} (until {closes:%H:%M})"
    return f"{text} (for {window.duration_min} min)"


def action_text(rule: Rule, opened: datetime | None = None) -> str:
    """Everything a rule does when it fires, in one sentence."""
    parts = []
    if rule.firmware_window is not None:
        parts.append(firmware_text(rule.firmware_window, opened))
    settings = setpoints_text(rule.setpoints)
    if settings:
        parts.append(settings)
    text = "; then ".join(parts) if len(parts) > 1 else parts[0]
    if rule.during_outage:
        text += " (also during an outage)"
    return text


def condition_text(rule: Rule) -> str:
    """'whenever the state of energy falls below 20 %, on weekdays: set ...'."""
    trigger = rule.trigger
    if isinstance(trigger, WhenSoe):
        if trigger.below_app_percent is not None:
            rearm = trigger.below_app_percent + trigger.hysteresis_app_percent
            when = (
                f"whenever the state of energy falls below {trigger.below_app_percent:g} % "
                f"(again once it has been back above {min(rearm, 100.0):g} %)"
            )
        else:
            above = trigger.above_app_percent or 0.0
            rearm = above - trigger.hysteresis_app_percent
            when = (
                f"whenever the state of energy rises above {above:g} % "
                f"(again once it has been back below {max(rearm, 0.0):g} %)"
            )
    elif isinstance(trigger, WhenGrid):
        when = (
            "whenever the grid goes down"
            if trigger.change == "down"
            else ("whenever the grid comes back")
        )
    else:  # a timed trigger described as a condition (only when asked directly)
        when = _cause(rule) or "at its time"
    on_days = days_text(rule.days)
    return f"{when}{', ' + on_days if on_days else ''}: {action_text(rule)}"


def days_text(days: Days) -> str:
    """'on weekdays, June to September, on 25 Dec 2026'; '' for every day."""
    parts = []
    if days.weekdays == WEEKDAYS:
        parts.append("on weekdays")
    elif days.weekdays == WEEKENDS:
        parts.append("on weekends")
    elif days.weekdays != ALL_DAYS:
        names = [_DAY_NAMES[n - 1] + "s" for n in sorted(days.weekdays)]
        parts.append(
            "on " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
        )
    if days.months is not None:
        first, last = days.months
        parts.append(
            f"in {_MONTH_NAMES[first - 1]}"
            if first == last
            else f"{_MONTH_NAMES[first - 1]} to {_MONTH_NAMES[last - 1]}"
        )
    if days.dates is not None:
        listed = [f"{d.day} {_MONTH_ABBR[d.month - 1]} {d.year}" for d in sorted(days.dates)]
        parts.append("on " + ", ".join(listed))
    return ", ".join(parts)


def _value_text(name: str, value: object) -> str:
    if isinstance(value, OperationMode):
        return MODE_LABELS[value].lower()
    if isinstance(value, ExportRule):
        return EXPORT_TEXT[value]
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return f"{value:g} %"
    raise AssertionError(f"{name}: no words for {value!r}")  # pragma: no cover


def _cause(rule: Rule) -> str | None:
    trigger = rule.trigger
    if isinstance(trigger, WhenTariffPeriod):
        return f"{trigger.period} starts"
    if isinstance(trigger, WhenPriceAbove):
        return f"the price rises above {trigger.buy_per_kwh:g} per kWh"
    return None


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


# --- warnings ---------------------------------------------------------------------------------


def _zone_notes(plan: Plan, tz: ZoneInfo) -> list[str]:
    notes = []
    if plan.timezone is not None and plan.timezone.key != tz.key:
        notes.append(
            f"the plan says {plan.timezone.key}, but times here are in {tz.key} (--tz); "
            "the runner uses the plan's zone."
        )
    tariff = plan.tariff
    if tariff is not None and tariff.timezone is not None and tariff.timezone != tz.key:
        notes.append(
            f'tariff "{tariff.name}" keeps its periods in {tariff.timezone}, not {tz.key}: '
            "tariff triggers and firmware margins follow its clock."
        )
    return notes


def _dst_notes(plan: Plan, tz: ZoneInfo, first_day: date, days: int) -> list[str]:
    """Clock times of `at` rules that do not exist, or exist twice, on a day described."""
    notes = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for rule in plan.rules:
            if not isinstance(rule.trigger, AtTime) or not rule.days.includes(day):
                continue
            minute = rule.trigger.minute_of_day
            wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
            first, second = wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
            if first == second:
                continue
            if first > second:  # in a gap: the clock jumps over it
                runs = local_instant(day, minute, tz).astimezone(tz)
                notes.append(
                    f"{_clock(minute)} does not exist on {day_text(day)} (the clocks go "
                    f'forward): rule "{rule.name}" runs at {runs:%H:%M}.'
                )
            else:
                notes.append(
                    f"{_clock(minute)} happens twice on {day_text(day)} (the clocks go back): "
                    f'rule "{rule.name}" runs once, at the first ({first.astimezone(tz):%Z}).'
                )
    return notes


def _conflicts(planned: tuple[Planned, ...]) -> list[str]:
    """Two rules setting one value differently at the same instant; the later rule wins.
    The same clash every day is said once, with how many more days it recurs."""
    by_instant: dict[datetime, list[Planned]] = defaultdict(list)
    for item in planned:
        by_instant[item.at_utc].append(item)
    found: dict[tuple[str, tuple[str, ...], str], list[tuple[Planned, str]]] = {}
    for items in by_instant.values():
        for name in SETTING_NAMES:
            setting = [
                (item, getattr(item.rule.setpoints, name))
                for item in items
                if getattr(item.rule.setpoints, name) is not None
            ]
            if len({value for _, value in setting}) < 2:
                continue
            rules = tuple(item.rule.name for item, _ in setting)
            values = " and ".join(_value_text(name, value) for _, value in setting)
            key = (f"{items[0].local:%H:%M}", rules, name)
            found.setdefault(key, []).append((items[0], values))
    notes = []
    for (clock, rules, name), hits in found.items():
        first, values = hits[0]
        quoted = " and ".join(f'"{rule}"' for rule in rules)
        repeats = len(hits) - 1
        also = f" (and on {repeats} more day{'s' if repeats > 1 else ''})" if repeats else ""
        notes.append(
            f"{day_text(first.local.date())} {clock}: rules {quoted} set the "
            f'{SETTING_LABELS[name]} at the same time ({values}); "{rules[-1]}", later in the '
            f"file, wins{also}."
        )
    return notes


def _windows_that_never_open(plan: Plan, planned: tuple[Planned, ...], tz: ZoneInfo) -> list[str]:
    """Firmware windows during which every minute is in, or within the margin of, an
    avoided tariff period: they would only ever postpone."""
    tariff = plan.tariff
    if tariff is None:
        return []
    notes = []
    said: set[tuple[str, str]] = set()
    for item in planned:
        window = item.rule.firmware_window
        if window is None or not window.avoid_periods:
            continue
        key = (item.rule.name, f"{item.local:%H:%M}")
        if key in said or _can_install(window, item.at_utc, tariff, tz):
            continue
        said.add(key)
        notes.append(
            f"{day_text(item.local.date())} {item.local:%H:%M}: the firmware window of rule "
            f'"{item.rule.name}" can never install: for all its {window.duration_min} min a '
            f"{' or '.join(window.avoid_periods)} period is on or starts within "
            f"{window.margin_min} min. Move it earlier or later."
        )
    return notes


def _can_install(
    window: FirmwareWindow, opened_utc: datetime, tariff: Tariff, tz: ZoneInfo
) -> bool:
    avoid = set(window.avoid_periods)
    margin = timedelta(minutes=window.margin_min)
    closes = opened_utc + timedelta(minutes=window.duration_min)
    starts = tariff_starts(
        tariff, tz, lambda price: price.period_name in avoid, opened_utc, closes + margin
    )
    at = opened_utc
    while at < closes:
        in_period = tariff.period_at(at.astimezone(tz)) in avoid
        soon = any(at < start <= at + margin for start in starts)
        if not in_period and not soon:
            return True
        at += timedelta(minutes=1)
    return False


def _rules_that_never_fire(plan: Plan, planned: tuple[Planned, ...], first_day: date) -> list[str]:
    fired = {item.rule.name for item in planned}
    notes = []
    for rule in plan.rules:
        if rule.days.dates is not None and max(rule.days.dates) < first_day:
            notes.append(f'rule "{rule.name}": all its dates are past; it never fires again.')
        elif isinstance(rule.trigger, WhenPriceAbove) and plan.tariff is not None:
            top = max(
                period.buy_per_kwh for season in plan.tariff.seasons for period in season.periods
            )
            if top <= rule.trigger.buy_per_kwh:
                notes.append(
                    f'rule "{rule.name}": no period of tariff "{plan.tariff.name}" costs more '
                    f"than {rule.trigger.buy_per_kwh:g} per kWh (the most is {top:g}); it never "
                    "fires."
                )
        elif rule.timed and rule.name not in fired:
            on_days = days_text(rule.days)
            notes.append(
                f'rule "{rule.name}" does not fire in these days'
                f"{' (' + on_days + ')' if on_days else ''}."
            )
    return notes


def _outage_notes(plan: Plan) -> list[str]:
    """A rule for the grid going down that may not act off grid waits for the grid's return."""
    return [
        f'rule "{rule.name}" fires when the grid goes down, but without during_outage = true '
        "it may not act off grid: it waits until the grid is back."
        for rule in plan.rules
        if rule.trigger == WhenGrid("down") and not rule.during_outage and rule.sets_state
    ]


__all__ = [
    "MAX_DAYS",
    "Description",
    "Planned",
    "action_text",
    "condition_text",
    "day_text",
    "days_text",
    "describe",
    "firmware_text",
    "setpoints_text",
]
