"""`teg status` against the simulator: the JSON shape (golden), the screen, partial failures."""

from __future__ import annotations

import json
from typing import Any

from teg_helpers import SimThread, Teg

# Speed 0, seed 7, noon on 2024-06-01 in the site's zone: every value but read_at is fixed.
GOLDEN: dict[str, Any] = {
    "reading_time": "2024-06-01T12:00:00.000321-07:00",
    "site_power_w": 0.0,
    "site_direction": "idle",
    "solar_power_w": 5309.58,
    "solar_direction": "producing",
    "battery_power_w": -4154.96,
    "battery_direction": "charging",
    "load_power_w": 1154.62,
    "load_direction": "consuming",
    "soe_raw_percent": 50.0,
    "soe_app_percent": 47.37,
    "grid_status": "SystemGridConnected",
    "mode": "self_consumption",
    "backup_reserve_raw_percent": 24.0,
    "backup_reserve_app_percent": 20.0,
    "site_name": "Home Energy Gateway",
    "firmware_version": "21.44 223a56cd",
    "uptime_s": 831300.0,
    "read_at": str,
    "errors": [],
}


def test_status_json_matches_the_golden_shape_and_values(teg: Teg) -> None:
    data = teg.json("status")
    assert list(data) == list(GOLDEN)  # stable keys, in a stable order
    for key, expected in GOLDEN.items():
        if isinstance(expected, type):
            assert isinstance(data[key], expected), key
        else:
            assert data[key] == expected, key


def test_status_json_is_consistent_with_the_sign_convention(teg: Teg) -> None:
    data = teg.json("status")
    # load = site + battery + solar (within meter noise)
    total = data["site_power_w"] + data["battery_power_w"] + data["solar_power_w"]
    assert abs(data["load_power_w"] - total) < 50
    # raw = 5 + 0.95 x app, for both percents
    for name in ("soe", "backup_reserve"):
        raw, app = data[f"{name}_raw_percent"], data[f"{name}_app_percent"]
        assert abs(raw - (5 + 0.95 * app)) < 0.01


def test_json_flag_also_works_after_the_command(teg: Teg) -> None:
    result = teg("status", "--json")
    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith("{")


def test_status_screen_uses_kw_direction_words_and_both_scales(teg: Teg) -> None:
    result = teg("status")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # not a terminal: no colour codes
    for text in (
        "Solar", "5.31 kW", "producing", "Battery", "4.15 kW", "charging", "Home",
        "1.15 kW", "consuming", "Grid", "idle", "47.4%", "50.0% raw", "Reserve", "20.0%",
        "24.0% raw", "self_consumption", "connected", "21.44 223a56cd", "up 9d 14h 55m",
        "2024-06-01 12:00:00 -0700", "Grid link", "Home Energy Gateway",
    ):  # fmt: skip
        assert text in out, text


def test_stopped_system_prints_what_it_can_and_exits_6(simthread: SimThread, teg: Teg) -> None:
    simthread.call(simthread.sim.stop_sitemaster)
    try:
        result = teg("--json", "status")
        human = teg("status")
    finally:
        simthread.call(simthread.sim.run_sitemaster)
    assert result.exit_code == 6
    data = json.loads(result.stdout)
    # Missing is missing: null, never 0.
    assert data["site_power_w"] is None and data["soe_raw_percent"] is None
    assert data["grid_status"] is None
    assert data["mode"] == "self_consumption"  # not a live endpoint: still read
    assert data["firmware_version"] == "21.44 223a56cd"
    assert len(data["errors"]) == 1  # the same failure of four endpoints, said once
    assert "teg sitemaster run" in result.stderr
    assert human.exit_code == 6
    assert "—" in human.stdout
    assert "the system is stopped" in human.stderr
    assert "Traceback" not in human.stderr + human.stdout


def test_watch_json_prints_one_reading_per_line(teg: Teg) -> None:
    result = teg("--json", "watch", "--count", "3", "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    for reading in lines:
        assert list(reading) == list(GOLDEN)
        assert reading["soe_app_percent"] == GOLDEN["soe_app_percent"]


def test_watch_sparkline_scales_around_zero() -> None:
    from tegkit.cli.watch import sparkline

    assert sparkline([0, 50, 100]) == "▁▅█"
    assert sparkline([-100, 0, 100]) == "▁▅█"
    assert sparkline([None, 5.0]) == " █"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert sparkline([]) == ""
