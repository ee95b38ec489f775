"""What `teg auto check` says about a plan: the timeline at site-local times, the condition
rules in words, and the warnings (conflicts, DST, firmware windows that cannot install)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tegkit.automation.describe import (
    condition_text,
    day_text,
    days_text,
    describe,
    firmware_text,
    setpoints_text,
)
from tegkit.automation.plan import Days, FirmwareWindow, Setpoints
from tegkit.automation.planfile import load_plan, parse_plan
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode

LA = ZoneInfo("America/Los_Angeles")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"

FIRMWARE_0715 = (
    "firmware window: check for an update and install it if the battery is idle (under 250 W) "
    "or down to its reserve, the grid is up and no peak period is on or starts within 60 min; "
    "otherwise check again every 5 min (until 07:45)"
)


def plan(rules: str, top: str = 'tariff = "sce-tou"') -> str:
    return f'name = "p"\n{top}\n{rules}'


def test_the_spec_plan_day_by_day() -> None:
    spec = load_plan(EXAMPLES / "sce-tou.toml")
    assert spec.timezone is not None
    described = describe(spec, spec.timezone, date(2026, 3, 2), 2)
    assert described.lines() == [
        'Plan "sce-tou": 3 rules, valid. Times are America/Los_Angeles local time, '
        "Mon 2 Mar to Tue 3 Mar.",
        'Tariff: "sce-tou" (USD).',
        "",
        f'Mon 2 Mar  07:15  {FIRMWARE_0715}  (rule "firmware while the battery idles")',
        '           07:55  set mode self-powered and backup reserve 5 %  (rule "battery serves '
        'the house")',
        '           22:05  set mode backup only and backup reserve 100 %  (rule "charge for the '
        'night")',
        f'Tue 3 Mar  07:15  {FIRMWARE_0715}  (rule "firmware while the battery idles")',
        '           07:55  set mode self-powered and backup reserve 5 %  (rule "battery serves '
        'the house")',
        '           22:05  set mode backup only and backup reserve 100 %  (rule "charge for the '
        'night")',
    ]
    assert described.warnings == ()


def test_times_are_site_local_across_the_spring_forward() -> None:
    spec = load_plan(EXAMPLES / "sce-tou.toml")
    described = describe(spec, LA, date(2026, 3, 7), 3)  # DST starts Sun 8 Mar 2026
    assert [f"{p.local:%a %d %H:%M}" for p in described.planned] == [
        f"{day} {clock}"
        for day in ("Sat 07", "Sun 08", "Mon 09")
        for clock in ("07:15", "07:55", "22:05")
    ]
    offsets = {p.local.date().day: p.at_utc.hour for p in described.planned if p.local.hour == 7}
    assert offsets == {7: 15, 8: 14, 9: 14}  # 07:15 PST is 15:15 UTC, PDT 14:15 UTC


def test_a_time_in_the_spring_forward_gap_runs_after_it_and_is_said() -> None:
    text = plan('[[rules]]\nname = "gap"\nat = "02:30"\nbackup_reserve_percent = 50\n', top="")
    described = describe(parse_plan(text), LA, date(2026, 3, 8), 1)
    assert [f"{p.local:%H:%M}" for p in described.planned] == ["03:00"]
    assert described.warnings == (
        '02:30 does not exist on Sun 8 Mar (the clocks go forward): rule "gap" runs at 03:00.',
    )


def test_a_time_that_happens_twice_runs_once_at_the_first() -> None:
    text = plan('[[rules]]\nname = "twice"\nat = "01:30"\nmode = "backup"\n', top="")
    described = describe(parse_plan(text), LA, date(2026, 11, 1), 1)
    assert [p.at_utc.isoformat() for p in described.planned] == ["2026-11-01T08:30:00+00:00"]
    assert described.warnings == (
        '01:30 happens twice on Sun 1 Nov (the clocks go back): rule "twice" runs once, '
        "at the first (PDT).",
    )


def test_two_rules_setting_one_value_at_one_instant_are_a_warning_said_once() -> None:
    text = plan(
        '[[rules]]\nname = "a"\nat = "22:05"\nmode = "backup"\nbackup_reserve_percent = 100\n'
        '[[rules]]\nname = "b"\nat = "22:05"\nmode = "backup"\nbackup_reserve_percent = 80\n'
    )
    described = describe(parse_plan(text), LA, date(2026, 6, 1), 3)
    # the same mode is no conflict; the reserve is
    assert described.warnings == (
        'Mon 1 Jun 22:05: rules "a" and "b" set the backup reserve at the same time '
        '(100 % and 80 %); "b", later in the file, wins (and on 2 more days).',
    )


def test_rules_at_different_times_do_not_conflict() -> None:
    text = plan(
        '[[rules]]\nname = "a"\nat = "22:05"\nmode = "backup"\n'
        '[[rules]]\nname = "b"\nat = "22:06"\nmode = "self_consumption"\n'
    )
    assert describe(parse_plan(text), LA, date(2026, 6, 1), 3).warnings == ()


def test_a_firmware_window_next_to_the_peak_can_never_install() -> None:
    text = plan(
        '[[rules]]\nname = "late"\nat = "13:30"\nfirmware_window = true\n'
        '[[rules]]\nname = "early enough"\nat = "12:29"\nfirmware_window = { minutes = 2 }\n'
    )
    described = describe(parse_plan(text), LA, date(2026, 6, 1), 2)
    # 12:29 + 1 min is 12:30, 90 min before the peak: it may install; 13:30..14:00 may not
    assert described.warnings == (
        'Mon 1 Jun 13:30: the firmware window of rule "late" can never install: for all its '
        "30 min a peak period is on or starts within 60 min. Move it earlier or later.",
    )


def test_a_firmware_window_with_one_safe_minute_is_fine() -> None:
    text = plan('[[rules]]\nname = "w"\nat = "12:58"\nfirmware_window = { minutes = 2 }\n')
    # 12:58 is 62 min before 14:00: safe; the warning must not appear
    assert describe(parse_plan(text), LA, date(2026, 6, 1), 1).warnings == ()
    text = plan('[[rules]]\nname = "w"\nat = "13:00"\nfirmware_window = { minutes = 2 }\n')
    assert len(describe(parse_plan(text), LA, date(2026, 6, 1), 1).warnings) == 1


def test_tariff_triggers_appear_in_the_timeline_with_their_cause() -> None:
    text = plan(
        '[[rules]]\nname = "sell"\nwhen = { tariff_period = "peak" }\nexport_rule = "battery_ok"\n'
    )
    described = describe(parse_plan(text), LA, date(2026, 6, 1), 1)
    assert [(f"{p.local:%H:%M}", p.cause, p.text) for p in described.planned] == [
        ("14:00", "peak starts", "set export solar and battery")
    ]
    assert described.lines()[3] == (
        'Mon 1 Jun  14:00  peak starts: set export solar and battery  (rule "sell")'
    )


def test_rules_that_never_fire_are_named() -> None:
    text = plan(
        '[[rules]]\nname = "pricey"\nwhen = { price_above_per_kwh = 0.9 }\nstorm_watch = true\n'
        '[[rules]]\nname = "summer"\nat = "09:00"\nmonths = [6, 9]\nstorm_watch = false\n'
        '[[rules]]\nname = "old"\nat = "09:00"\ndates = ["2020-01-01"]\nstorm_watch = false\n'
    )
    described = describe(parse_plan(text), LA, date(2026, 12, 1), 3)
    assert described.planned == ()
    assert described.warnings == (
        'rule "pricey": no period of tariff "sce-tou" costs more than 0.9 per kWh (the most '
        "is 0.56); it never fires.",
        'rule "summer" does not fire in these days (June to September).',
        'rule "old": all its dates are past; it never fires again.',
    )
    assert "No timed rule fires in these days." in described.lines()


def test_conditions_in_words() -> None:
    text = plan(
        '[[rules]]\nname = "low"\nwhen = { soe_below_percent = 20 }\ndays = "weekdays"\n'
        "backup_reserve_percent = 100\ngrid_charging = true\n"
        '[[rules]]\nname = "full"\nwhen = { soe_above_percent = 99.5, hysteresis_percent = 4 }'
        "\nmonths = [10, 5]\ngrid_charging = false\n"
        '[[rules]]\nname = "down"\nwhen = { grid = "down" }\nduring_outage = true\n'
        'mode = "backup"\n'
        '[[rules]]\nname = "up"\nwhen = { grid = "up" }\nmode = "self_consumption"\n'
    )
    described = describe(parse_plan(text), LA, date(2026, 6, 1), 1)
    assert [(rule.name, words) for rule, words in described.conditions] == [
        (
            "low",
            "whenever the state of energy falls below 20 % (again once it has been back above "
            "22 %), on weekdays: set backup reserve 100 % and grid charging on",
        ),
        (
            "full",
            "whenever the state of energy rises above 99.5 % (again once it has been back "
            "below 95.5 %), October to May: set grid charging off",
        ),
        ("down", "whenever the grid goes down: set mode backup only (also during an outage)"),
        ("up", "whenever the grid comes back: set mode self-powered"),
    ]
    lines = described.lines()
    assert lines[lines.index("On conditions:") + 4] == (
        '  whenever the grid comes back: set mode self-powered  (rule "up")'
    )


def test_another_zone_than_the_plans_is_said() -> None:
    text = plan(
        '[[rules]]\nname = "r"\nat = "09:00"\nmode = "backup"\n', top='timezone = "Europe/Berlin"'
    )
    described = describe(parse_plan(text), LA, date(2026, 6, 1), 1)
    assert described.warnings == (
        "the plan says Europe/Berlin, but times here are in America/Los_Angeles (--tz); the "
        "runner uses the plan's zone.",
    )
    text = plan('[[rules]]\nname = "r"\nat = "09:00"\nmode = "backup"\n')  # sce-tou is LA's
    berlin = describe(parse_plan(text), ZoneInfo("Europe/Berlin"), date(2026, 6, 1), 1)
    assert berlin.warnings == (
        'tariff "sce-tou" keeps its periods in America/Los_Angeles, not Europe/Berlin: tariff '
        "triggers and firmware margins follow its clock.",
    )


def test_json_has_both_clocks_and_the_same_words() -> None:
    spec = load_plan(EXAMPLES / "sce-tou.toml")
    data = describe(spec, LA, date(2026, 7, 4), 1).to_json()
    assert data["plan"] == "sce-tou" and data["valid"] is True
    assert data["timezone"] == "America/Los_Angeles" and data["tariff"] == "sce-tou"
    assert data["first_day"] == "2026-07-04" and data["days"] == 1
    assert data["planned"][1] == {
        "at_utc": "2026-07-04T14:55:00+00:00",
        "at_local": "2026-07-04T07:55:00-07:00",
        "rule": "battery serves the house",
        "cause": None,
        "text": "set mode self-powered and backup reserve 5 %",
    }
    assert data["conditions"] == [] and data["warnings"] == []


# --- the words themselves --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setpoints", "words"),
    [
        (Setpoints(), ""),
        (Setpoints(mode=OperationMode.AUTONOMOUS), "set mode time-based control"),
        (Setpoints(backup_reserve_app_percent=12.5), "set backup reserve 12.5 %"),
        (
            Setpoints(
                mode=OperationMode.BACKUP,
                backup_reserve_app_percent=100.0,
                grid_charging=False,
                export_rule=ExportRule.NEVER,
                storm_watch=True,
            ),
            "set mode backup only, backup reserve 100 %, grid charging off, export nothing "
            "and storm watch on",
        ),
    ],
)
def test_setpoints_text(setpoints: Setpoints, words: str) -> None:
    assert setpoints_text(setpoints) == words


def test_firmware_text_without_a_tariff_or_margin() -> None:
    window = FirmwareWindow(duration_min=90, avoid_periods=(), idle_battery_w=500.0)
    assert firmware_text(window) == (
        "firmware window: check for an update and install it if the battery is idle (under "
        "500 W) or down to its reserve and the grid is up; otherwise check again every 5 min "
        "(for 90 min)"
    )
    window = FirmwareWindow(avoid_periods=("peak", "part_peak"), margin_min=0)
    assert "and no peak or part_peak period is on;" in firmware_text(window)


@pytest.mark.parametrize(
    ("days", "words"),
    [
        (Days(), ""),
        (Days(weekdays=frozenset({6, 7})), "on weekends"),
        (Days(weekdays=frozenset({3})), "on Wednesdays"),
        (Days(weekdays=frozenset({1, 3, 5})), "on Mondays, Wednesdays and Fridays"),
        (Days(months=(7, 7)), "in July"),
        (
            Days(dates=frozenset({date(2026, 12, 25), date(2027, 1, 1)})),
            "on 25 Dec 2026, 1 Jan 2027",
        ),
    ],
)
def test_days_text(days: Days, words: str) -> None:
    assert days_text(days) == words


def test_day_text_ignores_the_locale() -> None:
    assert day_text(date(2026, 3, 2)) == "Mon 2 Mar"
    assert day_text(date(2026, 12, 27)) == "Sun 27 Dec"


def test_condition_text_of_a_soe_threshold_near_the_ends() -> None:
    rule = parse_plan(
        plan('[[rules]]\nname = "r"\nwhen = { soe_above_percent = 1 }\nstorm_watch = true\n')
    ).rules[0]
    assert condition_text(rule).startswith(
        "whenever the state of energy rises above 1 % (again once it has been back below 0 %)"
    )


def test_a_grid_down_rule_that_may_not_act_off_grid_is_a_warning() -> None:
    rules = (
        '[[rules]]\nname = "waits"\nwhen = { grid = "down" }\nmode = "backup"\n'
        '[[rules]]\nname = "acts"\nwhen = { grid = "down" }\nmode = "backup"\n'
        "during_outage = true\n"
        '[[rules]]\nname = "back"\nwhen = { grid = "up" }\nmode = "self_consumption"\n'
    )
    described = describe(parse_plan(plan(rules, top="")), LA, date(2026, 6, 1), 1)
    assert described.warnings == (
        'rule "waits" fires when the grid goes down, but without during_outage = true it may '
        "not act off grid: it waits until the grid is back.",
    )


@pytest.mark.parametrize("days", [0, 32])
def test_days_out_of_range_are_refused(days: int) -> None:
    spec = load_plan(EXAMPLES / "sce-tou.toml")
    with pytest.raises(InvalidInputError) as caught:
        describe(spec, LA, date(2026, 1, 1), days)
    assert str(caught.value) == (
        f"days: {days} is not allowed; expected a whole number of days from 1 to 31"
    )
