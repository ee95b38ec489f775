"""The monitor's control API on a gateway that refuses a customer's local change (21.44):
the change goes through the configured cloud, is read back locally, and the answer says so."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from monitor_helpers import first_reading, sim_clock, target

from tegkit import percent
from tegkit.monitor.demo import demo_cloud
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import Monitor
from tegkit.sim import Simulator

TOKEN = "control-token-for-tests"


@asynccontextmanager
async def controlled(
    sim: Simulator, tmp_path: Path, *, cloud: bool = True
) -> AsyncIterator[tuple[Monitor, aiohttp.ClientSession, dict[str, str]]]:
    """A live monitor of `sim` (with the sim's cloud, if asked), logged in: the monitor, a
    session and the CSRF header."""
    gateway = target(sim)
    if cloud:
        gateway = dataclasses.replace(gateway, cloud=await demo_cloud(sim, tmp_path))
    monitor = Monitor(
        [gateway],
        listen=("127.0.0.1", 0),
        control_token=TOKEN,
        config=PollerConfig(fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000),
        clock=sim_clock(sim),
        stale_after_s=120.0,
    )
    async with (
        monitor,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        await first_reading(monitor)
        async with http.post(monitor.url + "login", json={"token": TOKEN}) as r:
            assert r.status == 200
            headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
        yield monitor, http, headers


async def _change(
    monitor: Monitor, http: aiohttp.ClientSession, headers: dict[str, str], **change: Any
) -> tuple[int, dict[str, Any]]:
    url = monitor.url + "api/control/operation"
    async with http.post(url, json={"gateway": "home", **change}, headers=headers) as r:
        return r.status, await r.json()


async def test_a_refused_local_change_goes_through_the_cloud_and_is_read_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        controlled(sim, tmp_path) as (monitor, http, headers),
    ):
        gw = sim.gateway
        commits = gw.settings.commission_count
        status, answer = await _change(
            monitor, http, headers, mode="backup", backup_reserve_percent=55, scale="app"
        )
        assert status == 200, answer
        # the fields the dashboard always read, and the route beside them
        assert answer["gateway"] == "home" and answer["mode"] == "backup"
        assert answer["backup_reserve"]["app_percent"] == pytest.approx(55, abs=0.01)
        assert answer["route"] == "cloud" and "20.49" in answer["route_reason"]
        assert answer["read_back"] == "confirmed"
        assert "read back locally" in answer["note"]
        assert gw.mode == "backup"
        assert gw.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(55))
        assert gw.settings.commission_count == commits  # no local POST got through
        async with http.get(monitor.url + "api/live") as r:
            assert (await r.json())["gateways"][0]["mode"] == "backup"
        tokens = monitor.pollers["home"].cloud.client.tokens  # type: ignore[union-attr]
        secrets = [tokens.access_token, tokens.refresh_token, sim.password, TOKEN]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "operation change sent through Tesla's cloud" in logged
    assert not [s for s in secrets if s and s in logged]


async def test_a_change_not_seen_in_time_answers_202_and_says_so(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, cloud_delay_s=3600) as sim,
        controlled(sim, tmp_path) as (monitor, http, headers),
    ):
        poller = monitor.pollers["home"]
        poller.readback_wait_s, poller.readback_poll_s = 0.3, 0.1
        before = sim.gateway.backup_reserve_raw_percent
        status, answer = await _change(
            monitor, http, headers, backup_reserve_percent=80, scale="app"
        )
        assert status == 202, answer
        assert answer["read_back"] == "not_seen" and "not yet seen locally" in answer["note"]
        # what the gateway reports: the old reserve, not the one asked for
        assert answer["backup_reserve"]["raw_percent"] == pytest.approx(before)
        assert len(sim.gateway.pending_changes) == 1


async def test_without_a_cloud_the_refusal_says_how_to_configure_one(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        controlled(sim, tmp_path, cloud=False) as (monitor, http, headers),
    ):
        before = sim.gateway.mode
        status, answer = await _change(monitor, http, headers, mode="backup")
        assert status == 403
        assert "teg cloud token import" in answer["error"] and "20.49" in answer["error"]
        assert sim.gateway.mode == before


# --- which cloud `teg monitor` gives each gateway ------------------------------------------


def _settings(tmp_path: Path, **profiles: Any) -> Any:
    from tegkit.cli import app
    from tegkit.cli.config import CliConfig

    config = CliConfig(tmp_path / "config" / "config.toml", "home", dict(profiles))
    return app.Settings(
        config=config, profile_name="home", host=None, password=None, email="",
        cafile=None, pin=None, insecure=False, sni=None, timeout_s=10.0, verbose=False,
    )  # fmt: skip


def _with_cloud(settings: Any, targets: list[Any], cloud_profile: str | None, via: str) -> Any:
    import click

    from tegkit.cli.monitor import with_cloud

    with click.Context(click.Command("monitor"), obj=settings) as ctx:
        return with_cloud(targets, cloud_profile, via, ctx)  # type: ignore[arg-type]


async def test_teg_monitor_gives_a_gateway_its_profiles_cloud(tmp_path: Path) -> None:
    import click

    from tegkit.cli.config import CloudProfile, Profile
    from tegkit.cloud import Tokens, write_token_file
    from tegkit.errors import CloudTokenMissingError
    from tegkit.monitor.service import GatewayTarget

    home = GatewayTarget("home", "https://127.0.0.1:1")
    settings = _settings(
        tmp_path, home=Profile(), cloudy=Profile(cloud=CloudProfile(site_id="1234"))
    )
    # no tokens kept: no cloud, the change is tried locally (and its refusal says how)
    [plain] = _with_cloud(settings, [home], None, "auto")
    assert plain.cloud is None and plain.via == "auto"
    with pytest.raises(CloudTokenMissingError):
        _with_cloud(settings, [home], None, "cloud")
    # the named profile's tokens and site
    folder = tmp_path / "config" / "cloud"
    folder.mkdir(parents=True)
    write_token_file(folder / "cloudy.json", Tokens("access-1", "refresh-1", None))
    [chosen] = _with_cloud(settings, [home], "cloudy", "auto")
    assert chosen.cloud is not None and chosen.cloud.site_id == 1234
    assert "access-1" not in repr(chosen)
    await chosen.cloud.client.close()
    # the gateway's own profile, once it keeps tokens
    write_token_file(folder / "home.json", Tokens("access-2", "refresh-2", None))
    [own] = _with_cloud(settings, [home], None, "auto")
    assert own.cloud is not None and own.cloud.client.tokens.access_token == "access-2"
    await own.cloud.client.close()
    with pytest.raises(click.BadParameter):
        _with_cloud(settings, [home], "nowhere", "auto")
    with pytest.raises(click.UsageError):
        _with_cloud(settings, [home, GatewayTarget("b", "https://127.0.0.1:2")], "cloudy", "auto")
