"""`teg set ...` and `teg sitemaster ...` change the gateway and show what it then reports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from teg_helpers import SimThread, Teg


@pytest.fixture(scope="module")
def simthread() -> Iterator[SimThread]:
    # A gateway that lets the customer change mode and reserve (as installers can).
    st = SimThread(allow_customer_operation=True)
    yield st
    st.close()


def test_reserve_defaults_to_the_app_scale(teg: Teg, simthread: SimThread) -> None:
    data = teg.json("set", "reserve", "30")
    assert data["backup_reserve_app_percent"] == 30.0
    assert data["backup_reserve_raw_percent"] == 33.5  # 5 + 0.95 x 30, as the gateway keeps it
    assert simthread.sim.gateway.backup_reserve_raw_percent == 33.5
    status = teg.json("status")
    assert status["backup_reserve_app_percent"] == 30.0


def test_reserve_on_the_raw_scale(teg: Teg) -> None:
    result = teg("set", "reserve", "24", "--scale", "raw")
    assert result.exit_code == 0, result.stderr
    assert "20% on the app scale (24% raw)" in result.stdout


def test_reserve_help_names_the_default_scale(teg: Teg) -> None:
    text = teg("set", "reserve", "--help").stdout
    assert "app scale" in text and "default: app" in text


def test_dry_run_shows_the_requests_and_changes_nothing(teg: Teg, simthread: SimThread) -> None:
    before = simthread.sim.gateway.backup_reserve_raw_percent
    data = teg.json("set", "reserve", "50", "--dry-run")
    assert data == {
        "dry_run": True,
        "requests": [
            {
                "method": "POST",
                "path": "/api/operation",
                "body": {"mode": "self_consumption", "backup_reserve_percent": 52.5},
            },
            {"method": "GET", "path": "/api/config/completed", "body": None},
        ],
    }
    assert simthread.sim.gateway.backup_reserve_raw_percent == before
    human = teg("set", "site-name", "Cabin", "--dry-run")
    assert "nothing was sent" in human.stdout
    assert "POST /api/site_info/site_name" in human.stdout
    assert teg.json("get", "site_info/site_name")["site_name"] != "Cabin"


def test_mode_is_set_and_read_back(teg: Teg) -> None:
    try:
        data = teg.json("set", "mode", "backup")
        assert data["mode"] == "backup"
        assert teg.json("status")["mode"] == "backup"
    finally:
        teg.json("set", "mode", "self_consumption")


def test_site_name_is_validated_sent_and_read_back(teg: Teg) -> None:
    data = teg.json("set", "site-name", "Lake House")
    assert data["site_name"] == "Lake House"
    assert teg.json("get", "site_info/site_name")["site_name"] == "Lake House"
    too_long = teg("set", "site-name", "x" * 65)
    assert too_long.exit_code == 8
    blank = teg("set", "site-name", "   ")
    assert blank.exit_code == 8


def test_sitemaster_stop_needs_yes_without_a_terminal(teg: Teg, simthread: SimThread) -> None:
    result = teg("sitemaster", "stop", input="y\n")
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert simthread.sim.gateway.running  # nothing was sent


def test_sitemaster_stop_and_run(teg: Teg, simthread: SimThread) -> None:
    try:
        stopped = teg.json("sitemaster", "stop", "--yes")
        assert stopped == {"action": "stop", "running": False, "status": "StatusDown"}
        assert teg("status").exit_code == 6
    finally:
        started = teg.json("sitemaster", "run")
    assert started == {"action": "run", "running": True, "status": "StatusUp"}
    assert teg("status").exit_code == 0


def test_get_prints_the_raw_body(teg: Teg) -> None:
    data = teg.json("get", "/api/system_status/soe")
    assert list(data) == ["percentage"]  # the gateway's own name, not tegkit's
    assert data["percentage"] == pytest.approx(50.0)
    assert teg.json("get", "api/system_status/soe") == data


def test_get_with_side_effects_needs_yes(teg: Teg, simthread: SimThread) -> None:
    result = teg("get", "/api/sitemaster/stop")
    assert result.exit_code == 2
    assert "stops the system" in result.stderr
    assert simthread.sim.gateway.running


def test_get_force_sends_a_path_outside_the_catalog(teg: Teg) -> None:
    result = teg("get", "/api/made/up", "--force")
    assert result.exit_code == 10  # the gateway answers 404
    assert "does not have" in result.stderr


def test_get_post_with_data(teg: Teg) -> None:
    result = teg(
        "get", "-X", "POST", "/api/site_info/site_name", "--data", '{"site_name": "Via get"}',
        "--yes",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert teg.json("get", "site_info/site_name")["site_name"] == "Via get"
