"""`teg cloud ...` against the simulator's Owner API: tokens, products, live status, settings."""

from __future__ import annotations

import datetime as dt
import json
import socket
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from teg_helpers import SimThread, Teg, sim_env

from tegkit.cli import exit_codes
from tegkit.errors import ApiError, CloudTokenMissingError
from tegkit.sim import Simulator


@pytest.fixture()
def cloud_env(env: dict[str, str], sim: Simulator) -> dict[str, str]:
    return {**env, "TEG_CLOUD_URL": sim.cloud_url, "TEG_CLOUD_AUTH_URL": sim.cloud_url,
            "TEG_CLOUD_CAFILE": str(sim.cafile)}  # fmt: skip


@pytest.fixture()
def cteg(cloud_env: dict[str, str]) -> Teg:
    return Teg(cloud_env)


def _import(cteg: Teg, sim: Simulator, tmp_path: Path) -> dict[str, Any]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps(
            {
                "access_token": sim.cloud_tokens.access_token,
                "refresh_token": sim.cloud_tokens.refresh_token,
                "expires_in": 3600,
            }
        )
    )
    result = cteg("--json", "cloud", "token", "import", str(tokens))
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_token_import_writes_a_0600_file_and_never_prints_tokens(
    cteg: Teg, sim: Simulator, tmp_path: Path, env: dict[str, str]
) -> None:
    data = _import(cteg, sim, tmp_path)
    token_file = Path(data["token_file"])
    assert token_file.parent == Path(env["TEG_CONFIG"]).parent / "cloud"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert data["has_refresh_token"] is True
    assert sim.cloud_tokens.access_token not in json.dumps(data)
    stored = json.loads(token_file.read_text())
    assert stored["access_token"] == sim.cloud_tokens.access_token


def test_products_status_and_settings(cteg: Teg, sim: Simulator, tmp_path: Path) -> None:
    _import(cteg, sim, tmp_path)
    site_id = sim.cloud_site.energy_site_id
    products = cteg.json("cloud", "products")
    assert [p["energy_site_id"] for p in products if "energy_site_id" in p] == [site_id]
    # One site on the account: no --site-id needed.
    live = cteg.json("cloud", "status")
    assert live["site_id"] == site_id
    assert set(live) >= {"grid_power_w", "solar_power_w", "battery_power_w", "load_power_w",
                         "soe_app_percent", "grid_status", "timestamp"}  # fmt: skip
    assert live["soe_app_percent"] == pytest.approx(47.37, abs=0.01)
    human = cteg("cloud", "status")
    assert "producing" in human.stdout and "app scale" in human.stdout


def test_cloud_set_reserve_mode_and_name(cteg: Teg, simthread: SimThread, tmp_path: Path) -> None:
    sim = simthread.sim
    _import(cteg, sim, tmp_path)
    battery = sim.cloud_site.battery_id
    before = sim.gateway.backup_reserve_raw_percent
    try:
        data = cteg.json("cloud", "--battery-id", battery, "set", "reserve", "40")
        assert data["backup_reserve_app_percent"] == 40
        assert sim.gateway.backup_reserve_raw_percent == pytest.approx(43.0)  # 5 + 0.95 x 40
        raw = cteg.json("cloud", "set", "reserve", "24", "--scale", "raw")
        assert raw["backup_reserve_app_percent"] == 20
        assert cteg.json("cloud", "set", "mode", "autonomous")["mode"] == "autonomous"
        named = cteg.json("cloud", "--site-id", str(sim.cloud_site.energy_site_id), "set",
                          "site-name", "Cloudy")  # fmt: skip
        assert named["site_name"] == "Cloudy"
    finally:
        cteg.json("cloud", "set", "mode", "self_consumption")
        simthread.call(setattr, sim.gateway.site, "backup_reserve_raw_percent", before)
    assert cteg("cloud", "set", "reserve", "101").exit_code == 8
    assert cteg("cloud", "set", "mode", "turbo").exit_code == 2


def test_refresh_rotates_the_stored_tokens(cteg: Teg, sim: Simulator, tmp_path: Path) -> None:
    data = _import(cteg, sim, tmp_path)
    old = json.loads(Path(data["token_file"]).read_text())
    refreshed = cteg.json("cloud", "token", "refresh")
    new = json.loads(Path(refreshed["token_file"]).read_text())
    assert new["access_token"] != old["access_token"]
    assert new["access_token"] == sim.cloud_tokens.access_token
    assert cteg("cloud", "products").exit_code == 0


def test_expired_access_token_is_refreshed_on_the_way(
    cteg: Teg, simthread: SimThread, tmp_path: Path
) -> None:
    sim = simthread.sim
    _import(cteg, sim, tmp_path)
    simthread.call(sim.cloud_tokens.expire_access_token)
    assert cteg("cloud", "products").exit_code == 0


def test_without_tokens_the_message_says_how_to_import(cteg: Teg) -> None:
    result = cteg("cloud", "products")
    assert result.exit_code == 3
    assert "teg cloud token import" in result.stderr


def test_a_missing_token_is_a_local_error_not_an_invented_401(cteg: Teg, sim: Simulator) -> None:
    # No token file: nothing is asked of the cloud, so nothing may read as the cloud's answer.
    for args in (("cloud", "products"), ("cloud", "status"), ("cloud", "token", "refresh")):
        result = cteg(*args)
        assert result.exit_code == 3, (args, result.stderr)
        assert isinstance(result.exception, SystemExit)  # the message, no traceback
        assert "Traceback" not in result.stderr + result.stdout
        assert "no Owner API token in " in result.stderr and "nothing was sent" in result.stderr
        assert "teg cloud token import FILE" in result.stderr and "'default'" in result.stderr
        assert "refused" not in result.stderr and "401" not in result.stderr
    assert exit_codes.exit_code(CloudTokenMissingError("t.json")) == exit_codes.AUTHENTICATION
    assert not isinstance(CloudTokenMissingError("t.json"), ApiError)


def test_a_bad_token_is_exit_3(cteg: Teg) -> None:
    assert cteg("cloud", "token", "import", "--access-token", "nope").exit_code == 0
    result = cteg("cloud", "products")
    assert result.exit_code == 3
    assert "nope" not in result.stderr
    # The advice is about the cloud's tokens, not the gateway's password.
    assert "Owner API" in result.stderr and "teg cloud token import" in result.stderr
    assert "TEG_PASSWORD" not in result.stderr


def test_an_unreachable_cloud_is_exit_4_and_named(cteg: Teg, sim: Simulator) -> None:
    assert cteg("cloud", "token", "import", "--access-token", "x").exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cteg("cloud", "products", TEG_CLOUD_URL=f"https://127.0.0.1:{port}")
    assert result.exit_code == 4
    assert f"cannot reach the Owner API at https://127.0.0.1:{port}" in result.stderr
    assert "Connection refused" in result.stderr
    assert "gateway" not in result.stderr and "SSLContext" not in result.stderr


def test_site_and_battery_ids_may_follow_the_command(
    cteg: Teg, sim: Simulator, tmp_path: Path
) -> None:
    _import(cteg, sim, tmp_path)
    site = str(sim.cloud_site.energy_site_id)
    assert cteg.json("cloud", "status", "--site-id", site)["site_id"] == int(site)
    wrong = cteg("cloud", "status", "--site-id", "999")
    assert wrong.exit_code == 10  # the id after the command is the one used
    named = cteg.json("cloud", "set", "site-name", sim.cloud_site.site_name,
                      "--battery-id", sim.cloud_site.battery_id)  # fmt: skip
    assert named["site_id"] == int(site)


def test_cloud_options_given_at_import_are_kept_in_the_profile(
    cteg: Teg, sim: Simulator, tmp_path: Path, env: dict[str, str]
) -> None:
    site = str(sim.cloud_site.energy_site_id)
    result = cteg("cloud", "--site-id", site, "token", "import", "--access-token",
                  sim.cloud_tokens.access_token)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    config = Path(env["TEG_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    cloud = tomllib.loads(config.read_text())["profiles"]["default"]["cloud"]
    assert cloud["site_id"] == site and cloud["base_url"] == sim.cloud_url
    # Later runs need neither the URL nor the site id.
    bare = Teg({"TEG_CONFIG": env["TEG_CONFIG"]})
    assert bare.json("cloud", "status")["site_id"] == int(site)


# --- profiles and their tokens never orphan each other ---------------------------------------


def _products_work(teg: Teg, *args: str) -> None:
    result = teg(*args, "--json", "cloud", "products")
    assert result.exit_code == 0, (args, result.stderr)


@pytest.mark.parametrize("setup_args", [["setup"], ["--profile", "home", "setup"]])
def test_tokens_imported_before_any_profile_survive_a_later_setup(
    cteg: Teg, sim: Simulator, tmp_path: Path, env: dict[str, str], setup_args: list[str]
) -> None:
    _import(cteg, sim, tmp_path)  # no config file yet, no --profile
    saved = tomllib.loads(Path(env["TEG_CONFIG"]).read_text())
    assert saved["default_profile"] == "default"  # the tokens' profile is named and the default
    assert cteg(*setup_args, "--yes", TEG_PIN="").exit_code == 0
    _products_work(cteg)


def test_tokens_imported_after_setup_belong_to_the_default_profile(
    cteg: Teg, sim: Simulator, tmp_path: Path, env: dict[str, str]
) -> None:
    assert cteg("--profile", "home", "setup", "--yes", TEG_PIN="").exit_code == 0
    data = _import(cteg, sim, tmp_path)
    assert Path(data["token_file"]).name == "home.json"
    _products_work(cteg)
    # Another profile made the default later: the tokens stay with "home", and the
    # message for the new default says where they are.
    assert cteg("--profile", "cabin", "setup", "--yes", "--default", TEG_PIN="").exit_code == 0
    missing = cteg("cloud", "products")
    assert missing.exit_code == 3
    assert "'cabin'" in missing.stderr and "--profile (home)" in missing.stderr
    _products_work(cteg, "--profile", "home")


def test_tokens_can_be_imported_into_a_new_named_profile(
    cteg: Teg, sim: Simulator, tmp_path: Path, env: dict[str, str]
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": sim.cloud_tokens.access_token}))
    result = cteg("--profile", "lake", "cloud", "token", "import", str(tokens))
    assert result.exit_code == 0, result.stderr
    saved = tomllib.loads(Path(env["TEG_CONFIG"]).read_text())
    assert "lake" in saved["profiles"] and saved["default_profile"] == "lake"
    _products_work(cteg, "--profile", "lake")
    _products_work(cteg)  # the default now
    # A profile that does not exist is still an error for the other cloud commands.
    unknown = cteg("--profile", "nowhere", "cloud", "products")
    assert unknown.exit_code == 2 and "lake" in unknown.stderr


# --- the Fleet API's energy-site settings (teg cloud set ...) ---------------------------------

CLOUD_DELAY_S = 20.0
NIGHT = dt.datetime(2024, 6, 2, 8, 0, tzinfo=dt.UTC)  # 1 am in Los Angeles: no sun


@pytest.fixture()
def delayed(tmp_path: Path) -> Iterator[tuple[SimThread, Teg]]:
    """A simulator of its own whose cloud changes land CLOUD_DELAY_S after they are made."""
    st = SimThread(cloud_delay_s=CLOUD_DELAY_S, start=NIGHT)
    try:
        sim = st.sim
        env = {**sim_env(sim, tmp_path / "config" / "config.toml"),
               "TEG_CLOUD_URL": sim.cloud_url, "TEG_CLOUD_AUTH_URL": sim.cloud_url,
               "TEG_CLOUD_CAFILE": str(sim.cafile)}  # fmt: skip
        yield st, Teg(env)
    finally:
        st.close()


def test_cloud_set_energy_settings_reach_the_gateway_after_the_delay(
    delayed: tuple[SimThread, Teg], tmp_path: Path
) -> None:
    st, teg = delayed
    sim = st.sim
    _import(teg, sim, tmp_path)
    st.call(sim.override_solar, 0.0)
    st.call(sim.override_load, 800.0)
    assert teg.json("status")["battery_power_w"] == pytest.approx(800.0)  # local, self-powered

    storm = teg.json("cloud", "set", "storm-watch", "on")
    assert storm["site_id"] == sim.cloud_site.energy_site_id
    assert storm["storm_watch_enabled"] is False  # the cloud shows the old value until it lands
    st.run(sim.advance(CLOUD_DELAY_S - 1.0))
    assert teg.json("status")["battery_power_w"] == pytest.approx(800.0)
    st.run(sim.advance(1.0))
    local = teg.json("status")  # the gateway's local API: charging from the grid
    assert local["battery_power_w"] < -1_000.0
    assert local["site_power_w"] == pytest.approx(800.0 - local["battery_power_w"], abs=0.5)

    # Grid charging, by battery id (the site is found through the product list).
    battery = sim.cloud_site.battery_id
    off = teg.json("cloud", "--battery-id", battery, "set", "grid-charging", "off")
    assert off["grid_charging_allowed"] is True and off["storm_watch_enabled"] is True
    rule = teg.json("cloud", "set", "export-rule", "never")
    assert rule["export_rule"] == "pv_only"
    ev = teg.json("cloud", "set", "ev-reserve", "30")
    assert ev["off_grid_ev_reserve_app_percent"] != 30
    human = teg("cloud", "set", "storm-watch", "off")
    assert human.exit_code == 0, human.stderr
    assert "storm watch on" in human.stdout and "after a short delay" in human.stdout
    st.run(sim.advance(CLOUD_DELAY_S))
    info = st.call(sim.cloud_site.site_info)
    assert info["components"]["disallow_charge_from_grid_with_solar_installed"] is True
    assert info["components"]["customer_preferred_export_rule"] == "never"
    assert info["off_grid_vehicle_charging_reserve_percent"] == 30
    assert info["user_settings"]["storm_mode_enabled"] is False
    # Never export, seen locally: a sunny surplus is curtailed, not sent to the grid.
    st.call(sim.override_solar, 20_000.0)
    st.call(sim.override_load, 500.0)
    local = teg.json("status")
    assert local["site_power_w"] == pytest.approx(0.0, abs=0.5)
    assert local["solar_power_w"] < 20_000.0
    again = teg.json("cloud", "set", "ev-reserve", "30")  # reads back every landed setting
    assert again == {
        "site_id": sim.cloud_site.energy_site_id,
        "site_name": sim.cloud_site.site_name,
        "grid_charging_allowed": False,
        "export_rule": "never",
        "storm_watch_enabled": False,
        "off_grid_ev_reserve_app_percent": 30,
    }


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("grid-charging", "maybe"), "'GRID_CHARGING'"),
        (("grid-charging", "true"), "'GRID_CHARGING'"),
        (("export-rule", "always"), "'EXPORT_RULE'"),
        (("storm-watch", "1"), "'STORM_WATCH'"),
        (("ev-reserve", "101"), "off_grid_vehicle_charging_reserve_percent"),
        (("ev-reserve", "--", "-1"), "off_grid_vehicle_charging_reserve_percent"),
        (("ev-reserve", "nan"), "off_grid_vehicle_charging_reserve_percent"),
        (("ev-reserve", "lots"), "'PERCENT'"),
    ],
)
def test_bad_settings_are_usage_errors_and_nothing_is_sent(
    cteg: Teg, args: tuple[str, ...], field: str
) -> None:
    assert cteg("cloud", "token", "import", "--access-token", "x").exit_code == 0
    with socket.socket() as s:  # a cloud that cannot be reached: a request would be exit 4
        s.bind(("127.0.0.1", 0))
        nowhere = f"https://127.0.0.1:{s.getsockname()[1]}"
        result = cteg("cloud", "--site-id", "1", "set", *args, TEG_CLOUD_URL=nowhere)
        good = {"ev-reserve": "0", "export-rule": "never"}.get(args[0], "on")
        sent = cteg("cloud", "--site-id", "1", "set", args[0], good, TEG_CLOUD_URL=nowhere)
    assert result.exit_code == exit_codes.USAGE, result.stderr
    assert field in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert sent.exit_code == exit_codes.UNREACHABLE  # a good value would have been sent
