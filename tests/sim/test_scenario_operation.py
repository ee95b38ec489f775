"""A scenario's `operation` event: the owner's settings change at a set time, over HTTPS as
GET /api/operation reads it and in the physics; bad events are refused naming the event."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_sim_helpers import client

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.percent import app_to_raw
from tegkit.sim import Simulator
from tegkit.sim.scenario import Scenario, apply_event

# Noon in Los Angeles in June: lots of sun, a half-full battery, the grid charging allowed.
HEAD = """
name = "owner-changes"
start = "2024-06-21T12:00:00-07:00"
seed = 4
soe_raw_percent = 50.0
mode = "self_consumption"
backup_reserve_raw_percent = 20.0
cloud_cover = 0.0

[site]
timezone = "America/Los_Angeles"
latitude = 34.05
longitude = -118.25
array_kw = 3.0
powerwalls = 1
daily_load_kwh = 25.0
"""


def _scenario(events: str) -> Scenario:
    return Scenario.from_toml(HEAD + events)


def test_an_operation_event_carries_each_setting_with_the_reserve_on_the_raw_scale() -> None:
    scenario = _scenario(
        """
[[events]]
at = "+1h"
action = "operation"
mode = "backup"
backup_reserve_percent = 80
grid_charging = false
export_rule = "never"
storm_watch = true

[[events]]
at = "13:30"
action = "operation"
backup_reserve_raw_percent = 30.5
"""
    )
    first, second = scenario.events
    assert first.at == scenario.start + timedelta(hours=1)
    assert first.settings() == {
        "mode": OperationMode.BACKUP,
        "backup_reserve_raw_percent": app_to_raw(80),
        "grid_charging_allowed": False,
        "export_rule": ExportRule.NEVER,
        "storm_watch": True,
    }
    assert second.settings() == {"backup_reserve_raw_percent": 30.5}  # the rest left alone

    site = scenario.build_site()
    apply_event(site, first)
    snap = site.snapshot()
    assert (snap.mode, snap.backup_reserve_raw_percent) == ("backup", app_to_raw(80))
    assert (snap.grid_charging_allowed, snap.export_rule, snap.storm_watch) == (
        False,
        ExportRule.NEVER,
        True,
    )


async def test_an_operation_event_changes_the_gateways_operation_and_the_physics(
    tmp_path: Path,
) -> None:
    path = tmp_path / "owner-changes.toml"
    path.write_text(
        HEAD
        + """
[[events]]
at = "+30m"
action = "operation"
mode = "backup"
backup_reserve_percent = 100
""",
        encoding="utf-8",
    )
    async with Simulator(scenario=path, speed=0, cloud_port=None) as sim, client(sim) as c:
        await c.login()
        before = (await c.get("/api/operation"))[1]
        assert (before["real_mode"], before["backup_reserve_percent"]) == (
            "self_consumption",
            20.0,
        )
        # Self-consumption: the battery covers what the sun does not, the grid carries nothing.
        await sim.advance(29 * 60)
        state = sim.state()
        assert state["battery_w"] > 100
        assert state["site_w"] == pytest.approx(0, abs=1)

        await sim.advance(60)
        after = (await c.get("/api/operation"))[1]
        assert (after["real_mode"], after["backup_reserve_percent"]) == ("backup", 100.0)
        status, state = await c.control("GET", "/state")
        assert status == 200
        assert (state["mode"], state["backup_reserve_raw_percent"]) == ("backup", 100.0)
        assert (state["grid_charging_allowed"], state["storm_watch"]) == (True, False)
        # Backup with a 100 % reserve: the battery charges at full power, from the grid too.
        assert state["battery_w"] < -4000
        assert state["site_w"] == pytest.approx(
            state["load_w"] - state["solar_w"] - state["battery_w"], abs=1
        )
        assert state["site_w"] > 4000
        aggregates = (await c.get("/api/meters/aggregates"))[1]
        assert aggregates["battery"]["instant_power"] == pytest.approx(state["battery_w"], abs=1)


def _event_error(events: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        _scenario(
            """
[[events]]
at = "+5m"
action = "restore"
"""
            + events
        )
    return caught.value


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ('action = "operation"', "events[1]", "at least one of backup_reserve_percent"),
        ('action = "operation"\nmode = "turbo"', "events[1].mode", "self_consumption"),
        ('action = "operation"\nmode = 3', "events[1].mode", "backup"),
        (
            'action = "operation"\nbackup_reserve_percent = 101',
            "events[1].backup_reserve_percent",
            "100",
        ),
        (
            'action = "operation"\nbackup_reserve_percent = "5"',
            "events[1].backup_reserve_percent",
            "number",
        ),
        (
            'action = "operation"\nbackup_reserve_raw_percent = -1',
            "events[1].backup_reserve_raw_percent",
            "0",
        ),
        (
            'action = "operation"\nbackup_reserve_percent = 5\nbackup_reserve_raw_percent = 9.75',
            "events[1].backup_reserve_raw_percent",
            "not both",
        ),
        ('action = "operation"\ngrid_charging = "yes"', "events[1].grid_charging", "true or"),
        ('action = "operation"\nstorm_watch = 1', "events[1].storm_watch", "true or false"),
        ('action = "operation"\nexport_rule = "always"', "events[1].export_rule", "pv_only"),
        ('action = "operation"\nreserve = 5', "events[1].reserve", "backup_reserve_percent"),
        ('action = "operation"\nversion = "23.44"', "events[1].version", "mode"),
    ],
)
def test_a_bad_operation_event_is_refused_naming_the_event_and_the_field(
    body: str, field: str, allowed: str
) -> None:
    error = _event_error(f'\n[[events]]\nat = "+1h"\n{body}\n')
    assert error.field == field
    assert allowed in error.allowed, error.allowed


def test_an_operation_event_before_the_start_is_refused() -> None:
    error = _event_error(
        '\n[[events]]\nat = "2024-06-21T11:00:00-07:00"\naction = "operation"\nmode = "backup"\n'
    )
    assert error.field == "events[1].at"


@pytest.mark.parametrize("setting", ["mode", "storm_watch", "export_rule", "grid_charging"])
def test_an_operation_event_with_one_setting_leaves_the_others_alone(setting: str) -> None:
    values: dict[str, Any] = {
        "mode": '"autonomous"',
        "storm_watch": "true",
        "export_rule": '"battery_ok"',
        "grid_charging": "false",
    }
    scenario = _scenario(
        f'\n[[events]]\nat = "+1m"\naction = "operation"\n{setting} = {values[setting]}\n'
    )
    site = scenario.build_site()
    before = site.snapshot()
    apply_event(site, scenario.events[0])
    after = site.snapshot()
    names = {"grid_charging": "grid_charging_allowed"}
    changed = {
        name
        for name in (
            "mode",
            "backup_reserve_raw_percent",
            "grid_charging_allowed",
            "export_rule",
            "storm_watch",
        )
        if getattr(before, name) != getattr(after, name)
    }
    assert changed == {names.get(setting, setting)}
