"""Plan files: the format of the brief read into plan.py's types, every mistake an error that
names the rule and the field and what is allowed, and plans written back to equal plans."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit.automation.plan import (
    ALL_DAYS,
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
from tegkit.automation.planfile import (
    MAX_PLAN_BYTES,
    MAX_RULES,
    dump_plan,
    load_plan,
    parse_plan,
)
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, ExportRule, OperationMode
from tegkit.percent import raw_to_app
from tegkit.tariff import Tariff, builtin_tariff

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"

SPEC_PLAN = """
name = "sce-tou"
timezone = "America/Los_Angeles"
tariff = "sce-tou"
stale_after_s = 90

[[rules]]
name = "firmware while the battery idles"
at = "07:15"
firmware_window = { minutes = 30, avoid_periods = ["peak"], margin_min = 60 }

[[rules]]
name = "peak on the battery"
at = "07:55"
mode = "self_consumption"
backup_reserve_percent = 5

[[rules]]
name = "charge for the night"
at = "22:05"
mode = "backup"
backup_reserve_percent = 100

[[rules]]
name = "keep it when low"
when = { soe_below_percent = 20 }
days = "weekdays"
backup_reserve_percent = 100
grid_charging = true
"""


def plan_with(rule: str, top: str = 'tariff = "sce-tou"') -> str:
    """A valid first rule, then `rule` as the second (so errors say rules[2])."""
    return f"""
name = "test"
{top}

[[rules]]
name = "first"
at = "07:00"
mode = "backup"

[[rules]]
{rule}
"""


def error_of(text: str) -> str:
    with pytest.raises(InvalidInputError) as caught:
        parse_plan(text)
    return str(caught.value)


# --- reading the format ----------------------------------------------------------------------


def test_the_spec_plan_reads_into_the_shared_types() -> None:
    plan = parse_plan(SPEC_PLAN)
    assert plan.name == "sce-tou"
    assert plan.timezone == ZoneInfo("America/Los_Angeles")
    assert plan.tariff == builtin_tariff("sce-tou")
    assert plan.stale_after_s == 90.0
    assert plan.source is None
    firmware, peak, night, low = plan.rules
    assert firmware == Rule(
        name="firmware while the battery idles",
        trigger=AtTime(7 * 60 + 15),
        firmware_window=FirmwareWindow(duration_min=30, avoid_periods=("peak",), margin_min=60),
    )
    assert peak.trigger == AtTime(7 * 60 + 55)
    assert peak.setpoints == Setpoints(
        mode=OperationMode.SELF_CONSUMPTION, backup_reserve_app_percent=5.0
    )
    assert peak.firmware_window is None and not peak.during_outage
    assert night.setpoints == Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=100.0)
    assert low.trigger == WhenSoe(below_app_percent=20.0)
    assert low.days == Days(weekdays=WEEKDAYS)
    assert low.setpoints == Setpoints(backup_reserve_app_percent=100.0, grid_charging=True)


def test_optional_top_level_fields_take_their_defaults() -> None:
    plan = parse_plan('name = "p"\n[[rules]]\nname = "r"\nat = "00:00"\nstorm_watch = false\n')
    assert plan.timezone is None and plan.tariff is None and plan.stale_after_s == 120.0
    assert plan.rules[0].trigger == AtTime(0)
    assert plan.rules[0].setpoints == Setpoints(storm_watch=False)


@pytest.mark.parametrize(
    ("when", "trigger"),
    [
        ("{ soe_below_percent = 20 }", WhenSoe(below_app_percent=20.0)),
        ("{ soe_above_percent = 95.5 }", WhenSoe(above_app_percent=95.5)),
        (
            "{ soe_above_percent = 90, hysteresis_percent = 5 }",
            WhenSoe(above_app_percent=90.0, hysteresis_app_percent=5.0),
        ),
        ('{ grid = "down" }', WhenGrid("down")),
        ('{ grid = "up" }', WhenGrid("up")),
        ('{ tariff_period = "super_off_peak" }', WhenTariffPeriod("super_off_peak")),
        ("{ price_above_per_kwh = 0.40 }", WhenPriceAbove(0.40)),
    ],
)
def test_each_condition_reads_into_its_trigger(when: str, trigger: object) -> None:
    plan = parse_plan(plan_with(f'name = "r"\nwhen = {when}\nmode = "backup"'))
    assert plan.rules[1].trigger == trigger


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ('"all"', ALL_DAYS),
        ('"weekdays"', WEEKDAYS),
        ('"weekends"', WEEKENDS),
        ('["mon", "wed", "sun"]', frozenset({1, 3, 7})),
    ],
)
def test_days(days: str, weekdays: frozenset[int]) -> None:
    plan = parse_plan(plan_with(f'name = "r"\nat = "01:00"\ndays = {days}\nmode = "backup"'))
    assert plan.rules[1].days.weekdays == weekdays


def test_months_may_wrap_and_dates_are_strings_or_toml_dates() -> None:
    plan = parse_plan(
        plan_with(
            'name = "r"\nat = "01:00"\nmonths = [10, 5]\n'
            'dates = ["2026-12-25", 2027-01-01]\nmode = "backup"'
        )
    )
    days = plan.rules[1].days
    assert days.months == (10, 5)
    assert days.dates == frozenset({date(2026, 12, 25), date(2027, 1, 1)})
    assert days.includes(date(2027, 1, 1)) and not days.includes(date(2026, 12, 24))


def test_a_toml_local_time_is_taken_for_at() -> None:
    plan = parse_plan(plan_with('name = "r"\nat = 07:15:00\nmode = "backup"'))
    assert plan.rules[1].trigger == AtTime(435)


def test_a_raw_reserve_is_converted_to_the_app_scale() -> None:
    plan = parse_plan(plan_with('name = "r"\nat = "01:00"\nbackup_reserve_raw_percent = 24.0'))
    assert plan.rules[1].setpoints.backup_reserve_app_percent == pytest.approx(20.0)
    assert plan.rules[1].setpoints.backup_reserve_app_percent == raw_to_app(24.0)


def test_firmware_window_true_takes_the_defaults_and_avoids_peak_when_the_tariff_has_one() -> None:
    with_tariff = parse_plan(plan_with('name = "r"\nat = "07:15"\nfirmware_window = true'))
    assert with_tariff.rules[1].firmware_window == FirmwareWindow()
    assert FirmwareWindow().avoid_periods == ("peak",)
    without = parse_plan(plan_with('name = "r"\nat = "07:15"\nfirmware_window = true', top=""))
    assert without.rules[1].firmware_window == FirmwareWindow(avoid_periods=())


def test_a_full_firmware_window() -> None:
    plan = parse_plan(
        plan_with(
            'name = "r"\nat = "07:15"\nfirmware_window = { minutes = 45, avoid_periods = '
            '["peak", "off_peak"], margin_min = 0, idle_battery_w = 100.5, retry_every_min = 1 }'
        )
    )
    assert plan.rules[1].firmware_window == FirmwareWindow(
        duration_min=45,
        avoid_periods=("peak", "off_peak"),
        margin_min=0,
        idle_battery_w=100.5,
        retry_every_min=1,
    )


def test_every_setting_and_during_outage() -> None:
    plan = parse_plan(
        plan_with(
            'name = "r"\nwhen = { grid = "down" }\nmode = "autonomous"\n'
            'backup_reserve_percent = 0\ngrid_charging = false\nexport_rule = "battery_ok"\n'
            "storm_watch = true\nduring_outage = true"
        )
    )
    rule = plan.rules[1]
    assert rule.setpoints == Setpoints(
        mode=OperationMode.AUTONOMOUS,
        backup_reserve_app_percent=0.0,
        grid_charging=False,
        export_rule=ExportRule.BATTERY_OK,
        storm_watch=True,
    )
    assert rule.during_outage is True


# --- errors name the rule, the field and what is allowed -------------------------------------

R2 = 'rules[2] "r": '

ERRORS = [
    # top level
    ('name = "x"\nrules = []', "rules: [] is not allowed; expected at least one [[rules]] table"),
    (
        'name = "x"',
        "rules: 'missing' is not allowed; expected at least one [[rules]] table",
    ),
    (
        'name = "x"\n[rules]\nname = "r"\nat = "01:00"\nmode = "backup"',
        "rules: 'a single [rules] table' is not allowed; expected at least one [[rules]] table",
    ),
    ('name = "x"\nrules = [1]', "rules[1]: 1 is not allowed; expected a [[rules]] table"),
    (
        '[[rules]]\nname = "r"\nat = "01:00"\nmode = "backup"',
        """name: None is not allowed; expected a name for the plan (name = "...")""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top="colour = 1"),
        "colour: 'unknown key' is not allowed; expected one of name, timezone, tariff, "
        "stale_after_s, rules",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='timezone = "Mars/Olympus"'),
        "timezone: 'Mars/Olympus' is not allowed; expected an IANA time zone name such as "
        '"America/Los_Angeles"',
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='timezone = "localtime"'),
        "timezone: 'localtime' is not allowed; expected an IANA time zone name such as "
        '"America/Los_Angeles"',
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top="stale_after_s = 4"),
        "stale_after_s: 4 is not allowed; expected a number from 5 to 3600 s",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top="stale_after_s = 3601"),
        "stale_after_s: 3601 is not allowed; expected a number from 5 to 3600 s",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='tariff = "pge-e1"'),
        "tariff: 'pge-e1' is not allowed; expected a built-in tariff name (california-tou, "
        "flat, sce-tou), a path to a tariff file (relative to the plan), or a [tariff] table",
    ),
    # a rule's name
    (plan_with('at = "01:00"\nmode = "backup"'), "rules[2]: name: None is not allowed; expected"),
    (plan_with('name = ""\nat = "01:00"\nmode = "backup"'), "rules[2]: name: '' is not allowed"),
    (
        plan_with('name = "a\\u001b[2Jb"\nat = "01:00"\nmode = "backup"'),
        "rules[2]: name: 'a\\x1b[2Jb' is not allowed; expected a non-empty name of at most "
        "100 printable characters",
    ),
    (
        plan_with('name = "first"\nat = "01:00"\nmode = "backup"'),
        """rules[2] "first": name: 'first' is not allowed; expected a name no other rule has """
        "(rules[1] has it)",
    ),
    (
        plan_with("name = 7\nat = '01:00'\nmode = 'backup'"),
        "rules[2]: name: 7 is not allowed",
    ),
    # keys and triggers
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"\nreserve = 5'),
        f"{R2}reserve: 'unknown key' is not allowed; expected one of name, at, when, days, "
        "months, dates, firmware_window, mode, backup_reserve_percent, "
        "backup_reserve_raw_percent, grid_charging, export_rule, storm_watch, during_outage",
    ),
    (
        plan_with('name = "r"\nmode = "backup"'),
        f"""{R2}at/when: 'neither' is not allowed; expected exactly one trigger: """
        """at = "HH:MM" or when = { ... }""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nwhen = { grid = "down" }\nmode = "backup"'),
        f"{R2}at/when: 'both' is not allowed",
    ),
    (
        plan_with('name = "r"\nwhen = {}\nmode = "backup"'),
        f"{R2}when: 'no condition' is not allowed; expected a table with exactly one of "
        "soe_below_percent, soe_above_percent, grid, tariff_period, price_above_per_kwh",
    ),
    (
        plan_with('name = "r"\nwhen = { soe_below_percent = 20, grid = "down" }\nmode = "backup"'),
        f"{R2}when: ['soe_below_percent', 'grid'] is not allowed; expected a table with "
        "exactly one of",
    ),
    (
        plan_with('name = "r"\nwhen = { soe_under = 20 }\nmode = "backup"'),
        f"{R2}when.soe_under: 'unknown key' is not allowed; expected one of soe_below_percent,",
    ),
    (
        plan_with('name = "r"\nwhen = "low"\nmode = "backup"'),
        f"{R2}when: 'low' is not allowed; expected a table with exactly one of",
    ),
    (
        plan_with('name = "r"\nwhen = { grid = "off" }\nmode = "backup"'),
        f"""{R2}when.grid: 'off' is not allowed; expected one of "down", "up\"""",
    ),
    (
        plan_with('name = "r"\nwhen = { soe_below_percent = 101 }\nmode = "backup"'),
        f"{R2}when.soe_below_percent: 101 is not allowed; expected a number from 0 to 100 "
        "% (app scale)",
    ),
    (
        plan_with('name = "r"\nwhen = { grid = "down", hysteresis_percent = 3 }\nmode = "backup"'),
        f"{R2}when.hysteresis_percent: 3 is not allowed; expected hysteresis_percent only "
        "beside soe_below_percent or soe_above_percent",
    ),
    (
        plan_with('name = "r"\nwhen = { tariff_period = "evening" }\nmode = "backup"'),
        f"{R2}when.tariff_period: 'evening' is not allowed; expected a period of the plan's "
        "tariff (super_off_peak, off_peak, peak)",
    ),
    (
        plan_with('name = "r"\nwhen = { tariff_period = "peak" }\nmode = "backup"', top=""),
        f"{R2}when.tariff_period: 'peak' is not allowed; expected tariff_period only in a "
        "plan that has a tariff",
    ),
    (
        plan_with('name = "r"\nwhen = { price_above_per_kwh = 0.4 }\nmode = "backup"', top=""),
        f"{R2}when.price_above_per_kwh: 0.4 is not allowed; expected price_above_per_kwh "
        "only in a plan that has a tariff",
    ),
    # clock times
    (
        plan_with('name = "r"\nat = "24:00"\nmode = "backup"'),
        f"""{R2}at: '24:00' is not allowed; expected a local clock time "HH:MM" from "00:00" """
        """to "23:59\"""",
    ),
    (plan_with('name = "r"\nat = "7:15"\nmode = "backup"'), f"{R2}at: '7:15' is not allowed"),
    (plan_with('name = "r"\nat = "07:60"\nmode = "backup"'), f"{R2}at: '07:60' is not allowed"),
    (plan_with('name = "r"\nat = 715\nmode = "backup"'), f"{R2}at: 715 is not allowed"),
    (
        plan_with('name = "r"\nat = 07:15:30\nmode = "backup"'),
        f"{R2}at: '07:15:30' is not allowed",
    ),
    # days, months, dates
    (
        plan_with('name = "r"\nat = "01:00"\ndays = "weekend"\nmode = "backup"'),
        f"""{R2}days: 'weekend' is not allowed; expected "all", "weekdays", "weekends", or a """
        """list of day names "mon", "tue", "wed", "thu", "fri", "sat", "sun\"""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\ndays = ["mon", "Tuesday"]\nmode = "backup"'),
        f"{R2}days: 'Tuesday' is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\ndays = []\nmode = "backup"'),
        f"{R2}days: [] is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmonths = [6, 13]\nmode = "backup"'),
        f"{R2}months: [6, 13] is not allowed; expected [first, last]: an inclusive range of "
        "months 1..12, which may wrap (e.g. [10, 5])",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmonths = [6]\nmode = "backup"'),
        f"{R2}months: [6] is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmonths = [true, 5]\nmode = "backup"'),
        f"{R2}months: [True, 5] is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\ndates = ["2026-02-30"]\nmode = "backup"'),
        f"""{R2}dates: '2026-02-30' is not allowed; expected a non-empty list of local dates, """
        """"YYYY-MM-DD\"""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\ndates = ["25/12/2026"]\nmode = "backup"'),
        f"{R2}dates: '25/12/2026' is not allowed",
    ),
    # settings
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "scheduler"'),
        f"""{R2}mode: 'scheduler' is not allowed; expected one of "self_consumption", """
        """"autonomous", "backup\"""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nbackup_reserve_percent = 101'),
        f"{R2}backup_reserve_percent: 101 is not allowed; expected a number from 0 to 100 % on "
        "the app scale (what the Tesla app shows)",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nbackup_reserve_percent = -1'),
        f"{R2}backup_reserve_percent: -1 is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nbackup_reserve_percent = nan'),
        f"{R2}backup_reserve_percent: nan is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nbackup_reserve_percent = "5"'),
        f"{R2}backup_reserve_percent: '5' is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nbackup_reserve_raw_percent = 100.5'),
        f"{R2}backup_reserve_raw_percent: 100.5 is not allowed; expected a number from 0 to "
        "100 % on the gateway's raw scale",
    ),
    (
        plan_with(
            'name = "r"\nat = "01:00"\nbackup_reserve_percent = 5\nbackup_reserve_raw_percent = 9'
        ),
        f"{R2}backup_reserve_raw_percent: 9 is not allowed; expected only one of "
        "backup_reserve_percent (app scale) and backup_reserve_raw_percent",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nexport_rule = "always"'),
        f"""{R2}export_rule: 'always' is not allowed; expected one of "pv_only", """
        """"battery_ok", "never\"""",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\ngrid_charging = 1'),
        f"{R2}grid_charging: 1 is not allowed; expected true or false",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nstorm_watch = "yes"'),
        f"{R2}storm_watch: 'yes' is not allowed; expected true or false",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"\nduring_outage = 0'),
        f"{R2}during_outage: 0 is not allowed; expected true or false",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nduring_outage = true'),
        f"{R2}(action): 'none' is not allowed; expected at least one action: mode, "
        "backup_reserve_percent, backup_reserve_raw_percent, grid_charging, export_rule, "
        "storm_watch or firmware_window",
    ),
    (
        plan_with('name = "r"\nat = "01:00"\nfirmware_window = false'),
        f"{R2}(action): 'none' is not allowed",
    ),
    # firmware window
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = "yes"'),
        f"{R2}firmware_window: 'yes' is not allowed; expected true, false, or a table of "
        "minutes, avoid_periods, margin_min, idle_battery_w, retry_every_min",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { minutes = 0 }'),
        f"{R2}firmware_window.minutes: 0 is not allowed; expected a whole number from 1 to "
        "240 minutes",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { minutes = 241 }'),
        f"{R2}firmware_window.minutes: 241 is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { minutes = 30.5 }'),
        f"{R2}firmware_window.minutes: 30.5 is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { margin_min = 721 }'),
        f"{R2}firmware_window.margin_min: 721 is not allowed; expected a whole number from 0 "
        "to 720 minutes",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { retry_every_min = 61 }'),
        f"{R2}firmware_window.retry_every_min: 61 is not allowed; expected a whole number "
        "from 1 to 60 minutes",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { idle_battery_w = -1 }'),
        f"{R2}firmware_window.idle_battery_w: -1 is not allowed; expected a number from 0 to "
        "1e+06 W",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { idle_battery_w = inf }'),
        f"{R2}firmware_window.idle_battery_w: inf is not allowed",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { avoid_periods = ["evening"] }'),
        f"{R2}firmware_window.avoid_periods: 'evening' is not allowed; expected a period of "
        "the plan's tariff (super_off_peak, off_peak, peak)",
    ),
    (
        plan_with(
            'name = "r"\nat = "07:15"\nfirmware_window = { avoid_periods = ["peak"] }', top=""
        ),
        f"{R2}firmware_window.avoid_periods: ['peak'] is not allowed; expected avoid_periods "
        "only in a plan that has a tariff",
    ),
    (
        plan_with('name = "r"\nat = "07:15"\nfirmware_window = { minute = 30 }'),
        f"{R2}firmware_window.minute: 'unknown key' is not allowed; expected one of minutes,",
    ),
    # the tariff's own errors, under `tariff.`
    (
        plan_with(
            'name = "r"\nat = "01:00"\nmode = "backup"',
            top='[tariff]\ncurrency = "usd"\nbuy_per_kwh = 0.3',
        ),
        "tariff.currency: 'usd' is not allowed; expected a 3-letter ISO code like 'USD'",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_rule_the_field_and_what_is_allowed(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_a_toml_syntax_error_says_where() -> None:
    message = error_of('name = "x"\n[[rules]\n')
    assert message.startswith("plan: 'unreadable TOML' is not allowed; expected valid TOML (")
    assert "line 2" in message


def test_too_many_rules() -> None:
    rule = '[[rules]]\nname = "r{}"\nat = "01:00"\nmode = "backup"\n'
    text = 'name = "x"\n' + "".join(rule.format(i) for i in range(MAX_RULES + 1))
    assert (
        error_of(text)
        == f"rules: '{MAX_RULES + 1} rules' is not allowed; expected at most 500 rules"
    )
    assert (
        len(parse_plan('name = "x"\n' + "".join(rule.format(i) for i in range(MAX_RULES))).rules)
        == MAX_RULES
    )


# --- files -----------------------------------------------------------------------------------


def test_load_plan_sets_the_source_and_finds_a_tariff_beside_the_plan(tmp_path: Path) -> None:
    (tmp_path / "tariffs").mkdir()
    (tmp_path / "tariffs" / "mine.toml").write_text(
        'name = "mine"\ncurrency = "EUR"\nbuy_per_kwh = 0.3\nsell_per_kwh = 0.1\n',
        encoding="utf-8",
    )
    path = tmp_path / "plan.toml"
    path.write_text(
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='tariff = "tariffs/mine.toml"'),
        encoding="utf-8",
    )
    plan = load_plan(path)
    assert plan.source == path
    assert plan.tariff is not None and plan.tariff.currency == "EUR"
    assert plan.tariff.period_names() == ("flat",)


def test_a_broken_tariff_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text('currency = "EUR"\n', encoding="utf-8")
    path = tmp_path / "plan.toml"
    path.write_text(
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='tariff = "t.toml"'),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError) as caught:
        load_plan(path)
    assert str(caught.value).startswith("tariff t.toml: buy_per_kwh/periods/seasons:")


def test_a_tariff_file_that_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='tariff = "tariffs/x.toml"'),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError) as caught:
        load_plan(path)
    assert str(caught.value) == (
        "tariff: 'tariffs/x.toml' is not allowed; expected a tariff file that exists "
        f"(not at {tmp_path / 'tariffs' / 'x.toml'})"
    )


def test_the_size_cap_counts_bytes_not_characters() -> None:
    rule = '[[rules]]\nname = "r"\nat = "01:00"\nmode = "backup"\n'
    text = 'name = "x"\n' + rule + "# " + "é" * (MAX_PLAN_BYTES // 2) + "\n"
    assert len(text) < MAX_PLAN_BYTES
    assert error_of(text) == (
        f"plan: 'larger' is not allowed; expected a plan of at most {MAX_PLAN_BYTES} bytes"
    )


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_plan(tmp_path / "nope.toml")
    assert str(caught.value) == (
        f"plan: {str(tmp_path / 'nope.toml')!r} is not allowed; "
        "expected a readable file (No such file or directory)"
    )


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(InvalidInputError) as caught:
        load_plan(path)
    assert "expected a UTF-8 text file (byte 11 is not UTF-8)" in str(caught.value)


def test_a_file_over_the_size_cap_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(b"# " + b"x" * MAX_PLAN_BYTES + b"\n")
    with pytest.raises(InvalidInputError) as caught:
        load_plan(path)
    assert f"expected a file of at most {MAX_PLAN_BYTES} bytes" in str(caught.value)


def test_every_example_plan_loads() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        plan = load_plan(path)
        assert plan.timezone is not None, path
        assert plan.source == path
        assert parse_plan(dump_plan(plan)) == replace(plan, source=None)


def test_the_spec_example_is_the_spec_plan() -> None:
    plan = load_plan(EXAMPLES / "sce-tou.toml")
    assert plan.timezone == ZoneInfo("America/Los_Angeles")
    assert plan.tariff == builtin_tariff("sce-tou")
    timed = [(r.trigger, r.setpoints, r.firmware_window is not None) for r in plan.rules]
    assert timed == [
        (AtTime(7 * 60 + 15), Setpoints(), True),
        (
            AtTime(7 * 60 + 55),
            Setpoints(mode=OperationMode.SELF_CONSUMPTION, backup_reserve_app_percent=5.0),
            False,
        ),
        (
            AtTime(22 * 60 + 5),
            Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=100.0),
            False,
        ),
    ]


# --- writing ---------------------------------------------------------------------------------


def test_the_spec_plan_round_trips_and_names_its_builtin_tariff() -> None:
    plan = parse_plan(SPEC_PLAN)
    text = dump_plan(plan)
    assert 'tariff = "sce-tou"' in text
    assert "backup_reserve_percent = 5\n" in text
    assert parse_plan(text) == plan


def test_a_changed_builtin_tariff_is_written_inline_and_round_trips() -> None:
    base = builtin_tariff("sce-tou")
    # the same name, one price changed: not the built-in any more
    summer = base.seasons[0]
    periods = list(summer.periods)
    periods[2] = replace(periods[2], buy_per_kwh=0.61)
    seasons = (replace(summer, periods=tuple(periods)), *base.seasons[1:])
    tariff = Tariff(base.name, base.currency, seasons, base.timezone)
    assert tariff != base
    rule = Rule("r", AtTime(60), setpoints=Setpoints(storm_watch=True))
    plan = Plan(name="p", rules=(rule,), tariff=tariff)
    text = dump_plan(plan)
    assert "[tariff]" in text and "buy_per_kwh = 0.61" in text
    assert parse_plan(text) == plan


def test_a_plan_from_files_is_written_self_contained(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text(
        'name = "mine"\ncurrency = "EUR"\nbuy_per_kwh = 0.3\n', encoding="utf-8"
    )
    path = tmp_path / "plan.toml"
    path.write_text(plan_with('name = "r"\nat = "01:00"\nmode = "backup"', top='tariff = "t.toml"'))
    plan = load_plan(path)
    again = parse_plan(dump_plan(plan))  # no base_dir: the tariff travels inline
    assert again.tariff == plan.tariff
    assert again.rules == plan.rules


# --- properties ------------------------------------------------------------------------------

NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
PERCENT = st.floats(min_value=0, max_value=100, allow_nan=False)
SCE_PERIODS = ("super_off_peak", "off_peak", "peak")

TRIGGERS = st.one_of(
    st.builds(AtTime, st.integers(0, 1439)),
    st.builds(
        WhenSoe,
        below_app_percent=PERCENT,
        hysteresis_app_percent=st.floats(0, 50, allow_nan=False),
    ),
    st.builds(WhenSoe, above_app_percent=PERCENT),
    st.sampled_from([WhenGrid("down"), WhenGrid("up")]),
    st.sampled_from(SCE_PERIODS).map(WhenTariffPeriod),
    st.floats(-10, 100, allow_nan=False).map(WhenPriceAbove),
)
SETPOINTS = st.builds(
    Setpoints,
    mode=st.none() | st.sampled_from(CUSTOMER_MODES),
    backup_reserve_app_percent=st.none() | PERCENT,
    grid_charging=st.none() | st.booleans(),
    export_rule=st.none() | st.sampled_from(list(ExportRule)),
    storm_watch=st.none() | st.booleans(),
)
WINDOWS = st.none() | st.builds(
    FirmwareWindow,
    duration_min=st.integers(1, 240),
    avoid_periods=st.lists(st.sampled_from(SCE_PERIODS), unique=True).map(tuple),
    margin_min=st.integers(0, 720),
    idle_battery_w=st.floats(0, 1e6, allow_nan=False),
    retry_every_min=st.integers(1, 60),
)
DAYS = st.builds(
    Days,
    weekdays=st.frozensets(st.integers(1, 7), min_size=1),
    months=st.none() | st.tuples(st.integers(1, 12), st.integers(1, 12)),
    dates=st.none() | st.frozensets(st.dates(), min_size=1, max_size=4),
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    rules = []
    for name in names:
        setpoints = draw(SETPOINTS)
        window = draw(WINDOWS)
        if setpoints.is_empty() and window is None:
            window = FirmwareWindow()
        rules.append(
            Rule(
                name=name,
                trigger=draw(TRIGGERS),
                days=draw(DAYS),
                setpoints=setpoints,
                firmware_window=window,
                during_outage=draw(st.booleans()),
            )
        )
    return Plan(
        name=draw(NAMES),
        rules=tuple(rules),
        timezone=draw(
            st.none() | st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]).map(ZoneInfo)
        ),
        tariff=builtin_tariff("sce-tou"),
        stale_after_s=draw(st.floats(5, 3600, allow_nan=False)),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_any_valid_plan_round_trips(plan: Plan) -> None:
    assert parse_plan(dump_plan(plan)) == plan


# Values an owner might plausibly write (right and wrong), and anything at all: a plan built
# from a valid base with a few of them swapped in reaches every validator, not just the first.
PLAUSIBLE = st.sampled_from(
    [
        "07:15", "24:00", "7:15", "all", "weekdays", "mon", "peak", "off_peak", "backup",
        "self_consumption", "scheduler", "pv_only", "down", "2026-03-08", "2026-02-30",
        "America/Los_Angeles", "sce-tou", "flat", True, False, 0, 1, 5, 60, 100, 101, -1,
        0.5, 1e309, [6, 9], [10, 5], [0, 12], ["mon", "sun"], ["peak"], ["2026-12-25"], [],
    ]
)  # fmt: skip
JUNK = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.dates()
    | st.times()
    | PLAUSIBLE,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
RULE_KEYS = [
    "name", "at", "when", "days", "months", "dates", "firmware_window", "mode",
    "backup_reserve_percent", "backup_reserve_raw_percent", "grid_charging", "export_rule",
    "storm_watch", "during_outage", "soe_below_percent",
]  # fmt: skip
WHEN_KEYS = [
    "soe_below_percent", "soe_above_percent", "grid", "tariff_period", "price_above_per_kwh",
    "hysteresis_percent",
]  # fmt: skip
WINDOW_KEYS = ["minutes", "avoid_periods", "margin_min", "idle_battery_w", "retry_every_min"]


def _swap(draw: st.DrawFn, base: dict[str, object], keys: list[str]) -> dict[str, object]:
    """`base` with up to three keys given plausible or junk values, or removed."""
    table = dict(base)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            table.pop(key, None)
        else:
            table[key] = draw(PLAUSIBLE | JUNK)
    return table


@st.composite
def junk_plans(draw: st.DrawFn) -> dict[str, object]:
    rules = []
    for index in range(draw(st.integers(0, 3))):
        base: dict[str, object] = {"name": f"r{index}", "at": "07:00", "mode": "backup"}
        rule = _swap(draw, base, RULE_KEYS)
        if draw(st.booleans()):
            rule.pop("at", None)
            rule["when"] = _swap(draw, {"soe_below_percent": 20}, WHEN_KEYS)
        if draw(st.booleans()):
            window = {"minutes": 30, "avoid_periods": ["peak"]}
            rule["firmware_window"] = _swap(draw, window, WINDOW_KEYS)
        rules.append(rule)
    base = {"name": "p", "timezone": "UTC", "tariff": "sce-tou", "stale_after_s": 60}
    data = _swap(draw, base, ["name", "timezone", "tariff", "stale_after_s", "colour"])
    data["rules"] = rules
    return data


def _toml(data: dict[str, object]) -> str | None:
    try:
        return tomli_w.dumps(data)
    except (TypeError, ValueError):  # a value TOML cannot hold (a time zone in a time...)
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk_plans())
def test_junk_values_are_refused_with_invalid_input_only(data: dict[str, object]) -> None:
    text = _toml(data)
    if text is None:
        return
    try:
        plan = parse_plan(text)
    except InvalidInputError as exc:
        assert exc.field and exc.allowed
    else:
        assert parse_plan(dump_plan(plan)) == plan


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_plan_or_an_invalid_input_error(text: str) -> None:
    with contextlib.suppress(InvalidInputError):
        parse_plan(text)


def test_time_values_survive_tomli_w_in_the_junk_strategy() -> None:
    # the junk strategy writes TOML local times; parse_plan must take them as `at`
    text = tomli_w.dumps(
        {"name": "p", "rules": [{"name": "r", "at": time(7, 15), "mode": "backup"}]}
    )
    assert parse_plan(text).rules[0].trigger == AtTime(435)


def test_the_builtin_sce_tariff_has_the_spec_periods() -> None:
    """Spec 001: peak 14:00-20:00, off-peak 08:00-14:00 and 20:00-22:00, super off-peak
    22:00-08:00, on every day of the week, in both seasons, on Los Angeles time."""
    tariff = builtin_tariff("sce-tou")
    la = ZoneInfo("America/Los_Angeles")
    expected = ["super_off_peak"] * 8 + ["off_peak"] * 6 + ["peak"] * 6 + ["off_peak"] * 2
    expected += ["super_off_peak"] * 2
    for day in (date(2026, 1, 5), date(2026, 7, 4), date(2026, 7, 6), date(2026, 11, 1)):
        hours = [
            tariff.period_at(datetime(day.year, day.month, day.day, h, 30, tzinfo=la))
            for h in range(24)
        ]
        assert hours == expected, day
    # 13:59 Los Angeles time is off-peak, even asked in UTC (the tariff keeps LA's clock)
    assert tariff.period_at(datetime(2026, 7, 6, 20, 59, tzinfo=ZoneInfo("UTC"))) == "off_peak"
    assert tariff.period_at(datetime(2026, 7, 6, 21, 0, tzinfo=ZoneInfo("UTC"))) == "peak"
    summer = tariff.price_at(datetime(2026, 7, 6, 15, 0, tzinfo=la))
    winter = tariff.price_at(datetime(2026, 1, 6, 15, 0, tzinfo=la))
    assert (
        summer.buy_per_kwh
        > winter.buy_per_kwh
        > tariff.price_at(datetime(2026, 1, 6, 23, 0, tzinfo=la)).buy_per_kwh
    )
