"""Firmware releases: the update check finds the new version, and unless somebody starts the
update first, the gateway installs it by itself at a seeded random instant (spec 001's owner
found his had done so during peak), stopping the Powerwalls for about 15 minutes."""

from __future__ import annotations

import datetime as dt
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gateway_sim_helpers import Client, client, simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from tegkit.errors import InvalidInputError
from tegkit.sim import Simulator
from tegkit.sim.firmware import (
    AUTO_RETRY_S,
    BATTERY_STOP_S,
    STOP_AFTER_START_S,
    UPDATE_CHECK_S,
    auto_install_at,
    battery_stop,
)
from tegkit.sim.gateway import UPDATE_INSTALL_S
from tegkit.sim.profiles import get_profile
from tegkit.sim.scenario import Scenario

LIVE = ["/api/meters/aggregates", "/api/system_status/soe", "/api/system_status"]
RELEASED = dt.datetime(2024, 8, 13, 10, 0, tzinfo=dt.UTC)


# --- when a gateway installs by itself (the pure part both simulations share) -------------


def test_the_battery_stops_for_about_fifteen_minutes_as_spec_001_reports() -> None:
    assert BATTERY_STOP_S == UPDATE_INSTALL_S == 15 * 60
    stop, end = battery_stop(RELEASED)
    assert stop == RELEASED + dt.timedelta(seconds=STOP_AFTER_START_S)
    assert (end - stop).total_seconds() == BATTERY_STOP_S


@settings(max_examples=200, deadline=None)
@given(
    release=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    within_h=st.floats(min_value=0.001, max_value=8784),
    seed=st.integers(min_value=0, max_value=2**63),
)
def test_the_instant_is_within_the_window_in_whole_seconds_and_the_same_every_time(
    release: dt.datetime, within_h: float, seed: int
) -> None:
    at = auto_install_at(release, within_h, seed)
    if within_h * 3600 < 1:
        assert at is None  # less than one whole second: no instant to draw
        return
    assert at is not None
    assert release <= at < release + dt.timedelta(hours=within_h)
    assert (at - release).total_seconds() == int((at - release).total_seconds())
    assert auto_install_at(release, within_h, seed) == at


def test_the_instant_is_spread_uniformly_and_depends_on_the_seed() -> None:
    draws = [auto_install_at(RELEASED, 48, seed) for seed in range(2000)]
    hours = [(at - RELEASED).total_seconds() / 3600 for at in draws if at is not None]
    assert len(hours) == 2000
    counts = [sum(1 for h in hours if k * 6 <= h < (k + 1) * 6) for k in range(8)]
    assert all(200 <= count <= 300 for count in counts), counts  # 250 each if uniform
    assert len(set(hours)) > 1900
    other_release = RELEASED + dt.timedelta(days=1)
    assert auto_install_at(other_release, 48, 7) != auto_install_at(RELEASED, 48, 7)
    # The same instant written in another zone is the same release.
    pacific = RELEASED.astimezone(dt.timezone(dt.timedelta(hours=-7)))
    assert auto_install_at(pacific, 48, 7) == auto_install_at(RELEASED, 48, 7)


def test_zero_hours_means_the_gateway_never_installs_by_itself() -> None:
    assert auto_install_at(RELEASED, 0, 1) is None


@pytest.mark.parametrize(
    ("release", "within_h", "field"),
    [
        (dt.datetime(2024, 8, 13, 10, 0), 48, "release_utc"),
        (RELEASED, -1, "auto_install_within_h"),
        (RELEASED, math.nan, "auto_install_within_h"),
        (RELEASED, True, "auto_install_within_h"),
        (RELEASED, 10_000, "auto_install_within_h"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    release: dt.datetime, within_h: Any, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        auto_install_at(release, within_h, 0)
    assert caught.value.field == field


# --- in a scenario file -------------------------------------------------------------------

SCENARIO = """
start = "2024-08-13T00:00:00-07:00"
seed = 9
[[events]]
at = "01:00"
action = "outage"
minutes = 5
[[events]]
at = "+3h"
action = "firmware_release"
"""


def test_a_scenario_release_defaults_to_48_hours_and_takes_its_own() -> None:
    scenario = Scenario.from_toml(SCENARIO + 'version = "23.44"\n')
    release = scenario.events[-1]
    assert (release.action, release.version, release.auto_install_within_h) == (
        "firmware_release",
        "23.44",
        48,
    )
    assert release.at == scenario.start + dt.timedelta(hours=3)
    never = Scenario.from_toml(SCENARIO + 'version = "23.44.0"\nauto_install_within_h = 0\n')
    assert (never.events[-1].version, never.events[-1].auto_install_within_h) == ("23.44", 0)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ("", "events[1].version"),
        ('version = "99.1"', "events[1].version"),
        ("version = 23.44", "events[1].version"),
        ('version = "23.44"\nauto_install_within_h = -1', "events[1].auto_install_within_h"),
        ('version = "23.44"\nauto_install_within_h = "2"', "events[1].auto_install_within_h"),
        ('version = "23.44"\nauto_install_within_h = 9000', "events[1].auto_install_within_h"),
        ('version = "23.44"\nminutes = 5', "events[1].minutes"),
    ],
)
def test_a_bad_scenario_release_is_refused_naming_the_event_and_field(
    lines: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Scenario.from_toml(SCENARIO + lines + "\n")
    assert caught.value.field == field


# --- over HTTPS ---------------------------------------------------------------------------


def _battery_wh(sim: Simulator) -> float:
    counter = sim.gateway.site.counters["battery"]
    return float(counter.imported_wh + counter.exported_wh)


def _update_state(sim: Simulator) -> dict[str, Any]:
    return dict(sim.state()["update"])


async def _status(c: Client) -> dict[str, Any]:
    status, body, _ = await c.get("/api/system/update/status")
    assert status == 200, body
    return dict(body)


def _peak_release(sim: Simulator) -> tuple[dt.datetime, dt.datetime]:
    """firmware-peak's release time and the instant the gateway would install it."""
    assert sim.scenario is not None
    release = next(e for e in sim.scenario.events if e.action == "firmware_release")
    assert release.auto_install_within_h is not None
    at = auto_install_at(release.at, release.auto_install_within_h, sim.seed)
    assert at is not None
    return release.at, at


async def test_left_alone_the_gateway_installs_a_release_by_itself_during_peak() -> None:
    async with Simulator(scenario="firmware-peak", speed=0, cloud_port=None) as sim:
        released, at = _peak_release(sim)
        assert sim.scenario is not None and sim.scenario.config.tariff is not None
        stop, end = battery_stop(at)
        for instant in (stop, end - dt.timedelta(seconds=1)):
            assert sim.scenario.config.tariff.period_at(instant) == "peak"

        sim.set_time(released - dt.timedelta(seconds=1))
        assert _update_state(sim)["offered"] is None  # nothing released yet
        await sim.advance(1)
        update = _update_state(sim)
        assert update["offered"] == "23.44"
        assert dt.datetime.fromisoformat(update["auto_install_at"]) == at

        sim.set_time(at - dt.timedelta(seconds=1))
        async with client(sim) as c:
            await c.login()
            assert (await _status(c))["state"] == "/update_succeeded"  # nothing started yet
            assert sim.state()["battery_w"] > 500  # the battery carries the home at peak
            await sim.advance(1)
            started = await _status(c)
            assert started["state"] == "/clear_update_status"
            assert _update_state(sim)["started_by"] == "gateway"
            assert _update_state(sim)["auto_install_at"] is None

            await sim.advance(STOP_AFTER_START_S)
            assert (await _status(c))["state"] == "/update_staged"
            for path in LIVE:
                assert (await c.get(path))[:2] == (502, b""), path
            state = sim.state()
            assert state["battery_w"] == 0 and not state["running"]
            assert state["site_w"] == pytest.approx(state["load_w"] - state["solar_w"], abs=1)
            stopped_wh = _battery_wh(sim)
            await sim.advance(BATTERY_STOP_S - 1)
            assert _battery_wh(sim) == stopped_wh  # the Powerwalls do not discharge
            assert (await c.get("/api/system_status/soe"))[0] == 502

            await sim.advance(1)
            await c.login()  # the gateway restarted on the new firmware
            assert (await _status(c))["version"] == get_profile("23.44").version
            for path in LIVE:
                assert (await c.get(path))[0] == 200, path
            await sim.advance(60)
            assert _battery_wh(sim) > stopped_wh  # and discharges again
            generation = sim.gateway.fw_update.generation
            await sim.advance(3 * 86400)
            assert sim.gateway.fw_update.generation == generation  # once only


async def test_an_update_the_owner_starts_first_leaves_nothing_to_install_by_itself() -> None:
    async with Simulator(scenario="firmware-peak", speed=0, cloud_port=None) as sim:
        released, at = _peak_release(sim)
        assert sim.scenario is not None
        morning = sim.scenario.start.replace(hour=7, minute=15)
        assert released < morning < at
        sim.set_time(morning)
        async with client(sim) as c:
            await c.login()
            assert (await c.post("/api/system/update"))[0] == 202  # spec 001's 07:15 check
            await sim.advance(UPDATE_CHECK_S)
            assert (await _status(c))["state"] == "/download"  # the check found the release
            await sim.advance(STOP_AFTER_START_S - UPDATE_CHECK_S + BATTERY_STOP_S)
            assert sim.gateway.profile.name == "23.44" and sim.gateway.running
            update = _update_state(sim)
            assert (update["started_by"], update["auto_install_at"]) == ("request", None)
            generation = sim.gateway.fw_update.generation

            sim.set_time(at - dt.timedelta(seconds=1))
            await c.login()
            before_wh = _battery_wh(sim)
            await sim.advance(1 + STOP_AFTER_START_S + 60)
            # Where the gateway would have stopped the battery, it runs and discharges.
            assert sim.gateway.running and sim.gateway.fw_update.generation == generation
            for path in LIVE:
                assert (await c.get(path))[0] == 200, path
            assert sim.state()["battery_w"] > 500
            assert _battery_wh(sim) > before_wh
            assert (await _status(c))["state"] == "/update_succeeded"


async def test_an_update_still_under_way_at_the_instant_is_not_started_twice() -> None:
    async with simulator(seed=3) as sim:
        sim.release_firmware("23.44", auto_install_within_h=1)
        at = auto_install_at(sim.now, 1, 3)
        assert at is not None
        sim.set_time(at - dt.timedelta(seconds=30))
        assert sim.start_update() is True  # the owner's, 30 s before the gateway's own
        generation = sim.gateway.fw_update.generation
        await sim.advance(60)
        assert sim.gateway.fw_update.generation == generation
        assert _update_state(sim)["started_by"] == "request"
        await sim.advance(STOP_AFTER_START_S + BATTERY_STOP_S)
        assert sim.gateway.profile.name == "23.44" and sim.gateway.running


async def test_the_control_api_releases_a_firmware_now_or_later() -> None:
    async with simulator(seed=5) as sim, client(sim) as c:
        now = sim.now
        status, state = await c.control(
            "POST", "/firmware_release", {"version": "23.44", "auto_install_within_h": 2}
        )
        assert status == 200, state
        at = auto_install_at(now, 2, 5)  # the simulator's seed draws it
        assert at is not None
        assert state["update"]["offered"] == "23.44"
        assert dt.datetime.fromisoformat(state["update"]["auto_install_at"]) == at
        sim.set_time(at)
        assert _update_state(sim)["started_by"] == "gateway"
        await sim.advance(STOP_AFTER_START_S + BATTERY_STOP_S)
        assert sim.gateway.profile.name == "23.44"

    async with simulator(seed=5, firmware="20.49") as sim, client(sim) as c:
        later = sim.now + dt.timedelta(hours=3)
        status, state = await c.control(
            "POST", "/firmware_release", {"version": "21.44", "at": later.isoformat()}
        )
        assert status == 200, state
        assert (state["update"]["offered"], state["update"]["auto_install_at"]) == (None, None)
        sim.set_time(later)
        update = _update_state(sim)
        assert update["offered"] == "21.44"
        expected = auto_install_at(later, 48, 5)  # 48 h unless told
        assert dt.datetime.fromisoformat(update["auto_install_at"]) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "99.1"}, "version"),
        ({}, "version"),
        ({"version": 23.44}, "version"),
        ({"version": "23.44", "auto_install_within_h": -1}, "auto_install_within_h"),
        ({"version": "23.44", "auto_install_within_h": "2"}, "auto_install_within_h"),
        ({"version": "23.44", "at": "tomorrow"}, "at"),
        ({"version": "23.44", "at": "2024-06-02T10:00:00"}, "at"),
        ({"version": "23.44", "when": "+2h"}, "when"),
    ],
)
async def test_the_release_control_refuses_bad_input(body: dict[str, Any], field: str) -> None:
    async with simulator() as sim, client(sim) as c:
        status, reply = await c.control("POST", "/firmware_release", body)
        assert status == 400 and reply["error"].startswith(field), reply
        assert _update_state(sim)["offered"] is None
        assert len(sim.timeline.pending) == 0


async def test_with_zero_hours_the_release_waits_for_the_owner() -> None:
    async with simulator() as sim, client(sim) as c:
        status, state = await c.control(
            "POST", "/firmware_release", {"version": "23.44", "auto_install_within_h": 0}
        )
        assert status == 200 and state["update"]["auto_install_at"] is None
        await sim.advance(20 * 86400)
        assert sim.gateway.profile.name == "21.44" and sim.gateway.fw_update.generation == 0
        await c.login()
        assert (await c.post("/api/system/update"))[0] == 202
        await sim.advance(STOP_AFTER_START_S + BATTERY_STOP_S)
        assert sim.gateway.profile.name == "23.44"


async def test_off_grid_at_its_instant_the_gateway_waits_for_the_grid() -> None:
    async with simulator(seed=2) as sim:
        sim.release_firmware("23.44", auto_install_within_h=1)
        at = auto_install_at(sim.now, 1, 2)
        assert at is not None
        sim.set_time(at - dt.timedelta(seconds=10))
        sim.start_outage()
        await sim.advance(10 + STOP_AFTER_START_S + 60)
        # Stopping the Powerwalls now would black the home out: the gateway does not start.
        assert sim.gateway.running and not sim.state()["home_dark"]
        assert sim.gateway.fw_update.generation == 0
        retry = dt.datetime.fromisoformat(_update_state(sim)["auto_install_at"])
        assert retry == at + dt.timedelta(seconds=AUTO_RETRY_S)
        await sim.advance(AUTO_RETRY_S)  # still off grid at the retry: waits again
        assert sim.gateway.fw_update.generation == 0
        sim.end_outage()
        sim.set_time(at + dt.timedelta(seconds=2 * AUTO_RETRY_S) + dt.timedelta(seconds=1))
        assert _update_state(sim)["started_by"] == "gateway"


async def test_a_scenario_release_with_a_seed_override_moves_the_instant() -> None:
    async with Simulator(scenario="firmware-peak", speed=0, cloud_port=None, seed=99) as sim:
        released, at = _peak_release(sim)
        assert at == auto_install_at(released, 24, 99)
        sim.set_time(released)
        assert dt.datetime.fromisoformat(_update_state(sim)["auto_install_at"]) == at


# --- teg sim --release-firmware -----------------------------------------------------------


def test_teg_sim_releases_a_firmware_and_says_when_it_installs_itself(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tegkit.sim", "--port", "0", "--cloud-port", "0"]
    command += ["--state-dir", str(tmp_path), "--seed", "4", "--speed", "0"]
    command += ["--release-firmware", "23.44", "--auto-install-within-h", "6"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        line = ""
        while not line.startswith("release:"):
            line = process.stdout.readline()
            assert line, "the simulator exited before printing the release"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0
    assert "23.44 released now; the gateway installs it by itself at " in line
    when = dt.datetime.fromisoformat(line.split()[-1])
    assert dt.timedelta(0) <= when - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=6)


@pytest.mark.parametrize(
    ("value", "says"),
    [("99.1", "version"), ("23.44@tomorrow", "WHEN"), ("23.44@+2x", "WHEN")],
)
def test_teg_sim_refuses_a_bad_release_naming_the_option(value: str, says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tegkit.sim", "--port", "0", "--release-firmware", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--release-firmware" in done.stderr and says in done.stderr
    assert "Traceback" not in done.stderr
