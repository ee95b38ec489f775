"""Scenarios: the built-ins load and run, events fire on time, bad files name the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import GridStatusValue
from tegkit.sim.scenario import (
    BUILTIN_SCENARIOS,
    Scenario,
    ScenarioEvent,
    Timeline,
    apply_event,
    load_scenario,
)

MINIMAL = """
start = "2024-06-21T05:00:00-07:00"
[site]
timezone = "America/Los_Angeles"
latitude = 34.0
longitude = -118.0
"""


@pytest.mark.parametrize("name", BUILTIN_SCENARIOS)
def test_builtin_scenarios_load_and_run_a_day(name: str) -> None:
    scenario = load_scenario(name)
    site = scenario.build_site()
    assert site.now == scenario.start
    assert site.mode == scenario.mode
    timeline = scenario.timeline()
    applied: list[ScenarioEvent] = []

    def apply(event: ScenarioEvent) -> None:
        assert site.now == event.at  # at its exact time, not at the end of a step
        applied.append(event)
        apply_event(site, event)

    for _ in range(24 * 4):
        timeline.advance(site, 900.0, apply)
        assert site.load_w == pytest.approx(site.site_w + site.battery_w + site.solar_w)
    assert site.now == scenario.start + timedelta(days=1)
    assert applied == [e for e in scenario.events if e.at <= site.now]
    assert timeline.pending == tuple(e for e in scenario.events if e.at > site.now)


def test_evening_outage_islands_at_its_time_and_restores() -> None:
    scenario = load_scenario("evening-outage")
    site = scenario.build_site()
    timeline = scenario.timeline()
    outage = next(e for e in scenario.events if e.action == "outage")
    restore = next(e for e in scenario.events if e.action == "restore")
    assert restore.at - outage.at == timedelta(minutes=180)
    assert outage.at.hour == 18 and outage.at.minute == 30
    # Step in whole minutes so that one step ends exactly on 18:30:00.
    while site.now < outage.at:
        assert site.grid_status == GridStatusValue.CONNECTED
        timeline.advance(site, 60.0, lambda e: apply_event(site, e))
    assert site.now == outage.at
    assert site.grid_status == GridStatusValue.ISLANDED_ACTIVE and site.site_w == 0.0
    timeline.advance(site, (restore.at - site.now).total_seconds(), lambda e: apply_event(site, e))
    assert site.now == restore.at
    assert site.grid_status == GridStatusValue.TRANSITION_TO_GRID
    timeline.advance(site, 120.0, lambda e: apply_event(site, e))
    assert site.grid_status == GridStatusValue.CONNECTED


def test_events_before_the_start_are_history_and_added_events_keep_their_order() -> None:
    scenario = load_scenario("cloudy-day")
    first, second = scenario.events[0], scenario.events[1]
    later = Timeline(scenario.events, second.at)
    assert first not in later.pending and later.pending[0] == second
    extra = ScenarioEvent(at=second.at, action="restore")
    later.add(extra)
    assert later.pending[:2] == (second, extra)


def test_cloud_cover_event_reverts_after_its_minutes() -> None:
    scenario = load_scenario("cloudy-day")
    site = scenario.build_site()
    assert site.cloud_cover == pytest.approx(0.85)
    sun_break, back = (e for e in scenario.events if e.action == "cloud_cover")
    apply_event(site, sun_break)
    assert site.cloud_cover == pytest.approx(0.3)
    apply_event(site, back)
    assert site.cloud_cover == pytest.approx(0.85)


def test_event_times_offsets_clock_and_iso(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[[events]]
at = "+1h30m"
action = "outage"
[[events]]
at = "04:00"
action = "restore"
[[events]]
at = "2024-06-21T12:00:00+00:00"
action = "load_spike"
power_w = 7000.0
minutes = 60
"""
    )
    path = tmp_path / "mine.toml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    times = {e.action: e.at for e in scenario.events}
    start = scenario.start
    assert times["outage"] == start + timedelta(hours=1, minutes=30)
    assert times["restore"] == start + timedelta(hours=23)  # next 04:00 after a 05:00 start
    assert times["load_spike"] == datetime.fromisoformat("2024-06-21T12:00:00+00:00")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('mode = "turbo"', "mode"),
        ("speed = -1", "speed"),
        ('start = "2024-06-21T05:00:00"', "start"),
        ("soe_raw_percent = 120", "soe_raw_percent"),
        ("backup_reserve_raw_percent = -5", "backup_reserve_raw_percent"),
        ('tariff = "cheapest"', "tariff"),
        ("bogus = 1", "bogus"),
        ('[[events]]\nat = "+1h"\naction = "explode"', "events[0].action"),
        ('[[events]]\nat = "25:00"\naction = "outage"', "events[0].at"),
        ('[[events]]\nat = "+1h"\naction = "load_spike"\npower_w = 100.0', "events[0].minutes"),
        ('[[events]]\nat = "+1h"\naction = "cloud_cover"\nvalue = 2.0', "events[0].value"),
        ('[[events]]\nat = "2020-01-01T00:00:00+00:00"\naction = "restore"', "events[0].at"),
        ('[tariff]\ncurrency = "USD"\nbuy_per_kwh = "lots"', "tariff.buy_per_kwh"),
        ('firmware = "99.1"', "firmware"),
        ('[[events]]\nat = "+1h"\naction = "firmware"\nversion = "2.0"', "events[0].version"),
    ],
)
def test_bad_scenarios_name_the_field(extra: str, field: str) -> None:
    top, site = MINIMAL.split("[site]")
    if extra.startswith(("[[", "[tariff]")):
        text = MINIMAL + extra
    elif extra.startswith("start"):
        text = extra + "\n[site]" + site
    else:
        text = top + extra + "\n[site]" + site
    with pytest.raises(InvalidInputError) as err:
        Scenario.from_toml(text)
    assert err.value.field == field
    assert str(err.value).startswith(field)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("powerwalls = 0", "site.powerwalls"),
        ("powerwall_power_kw = 6.5", "site.powerwall_power_kw"),
        ("latitude = 123.0", "site.latitude"),
        ('timezone = "Nowhere/Land"', "site.timezone"),
        ("panels = 3", "site.panels"),
    ],
)
def test_bad_site_tables_name_the_scenario_key(line: str, field: str) -> None:
    key = line.split(" ")[0]
    lines = [ln for ln in MINIMAL.splitlines() if not ln.startswith(key + " ")]
    with pytest.raises(InvalidInputError) as err:
        Scenario.from_toml("\n".join([*lines, line]))
    assert err.value.field == field


def test_unknown_scenario_name_lists_the_builtins() -> None:
    with pytest.raises(InvalidInputError, match="sunny-day"):
        load_scenario("no-such-scenario")


def test_broken_toml_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError, match="TOML"):
        Scenario.from_toml("start = [")


def test_scenario_names_are_written_once() -> None:
    """The built-in names come from the shipped files; no other module spells one out."""
    import ast

    import tegkit
    from tegkit.sim.scenario import DEFAULT_SCENARIO

    package = Path(tegkit.__file__).parent
    shipped = sorted(p.stem for p in (package / "sim" / "scenarios").glob("*.toml"))
    assert list(BUILTIN_SCENARIOS) == shipped
    assert DEFAULT_SCENARIO in BUILTIN_SCENARIOS
    spelled = []
    for path in package.rglob("*.py"):
        if path == package / "sim" / "scenario.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in BUILTIN_SCENARIOS:
                spelled.append(f"{path.relative_to(package)}:{node.lineno}")
    assert spelled == []
