"""The client against the simulator over real HTTPS: firmware 1.x logins, the operation
change in one staged commit, and the brand endpoint with a space in its path."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tegkit import models
from tegkit.client import Gateway, PinnedCertificate
from tegkit.client._gateway import firmware_family
from tegkit.errors import InvalidInputError
from tegkit.sim import Simulator

START = dt.datetime(2024, 6, 1, 19, 0, tzinfo=dt.UTC)  # noon in Los Angeles


async def _simulator(firmware: str, **options: Any) -> AsyncIterator[Simulator]:
    async with Simulator(firmware=firmware, speed=0, start=START, seed=3, **options) as sim:
        yield sim


@pytest.fixture
async def legacy() -> AsyncIterator[Simulator]:
    async for sim in _simulator("1.40"):
        yield sim


@pytest.fixture
async def modern() -> AsyncIterator[Simulator]:
    async for sim in _simulator("21.44", allow_customer_operation=True):
        yield sim


def client(sim: Simulator, **options: Any) -> Gateway:
    return Gateway(
        sim.url,
        password=sim.password,
        email=sim.email,
        tls=PinnedCertificate(sim.fingerprint_sha256),
        **options,
    )


# --- 6. firmware 1.x: a login stops the system ----------------------------------------------


async def test_a_login_on_1_40_leaves_the_system_running(legacy: Simulator) -> None:
    async with client(legacy) as gw:
        assert (await gw.sitemaster()).running
        assert (await gw.meters_aggregates()).site is not None  # open on 1.x: no login yet
        assert gw.sitemaster_restarts == []
        await gw.login()
        assert legacy.gateway.running
        assert (await gw.sitemaster()).running
        assert (await gw.meters_aggregates()).site is not None  # live data, not a 502
        [restart] = gw.sitemaster_restarts
    assert restart.running and restart.error is None
    assert restart.at.tzinfo is not None


async def test_without_the_restart_the_1_40_login_stops_the_system(legacy: Simulator) -> None:
    # The simulator plays the spec: this is what every login did before the restart.
    async with client(legacy, restart_sitemaster_after_login=False) as gw:
        await gw.login()
        assert not (await gw.sitemaster()).running
        assert gw.sitemaster_restarts == []
    assert not legacy.gateway.running


async def test_a_system_the_owner_stopped_stays_stopped(legacy: Simulator) -> None:
    legacy.stop_sitemaster()
    async with client(legacy) as gw:
        await gw.login()
        assert not (await gw.sitemaster()).running
        assert gw.sitemaster_restarts == []


async def test_a_relogin_on_1_40_restarts_again(legacy: Simulator) -> None:
    async with client(legacy, firmware="legacy") as gw:
        await gw.login()
        legacy.gateway.expire_sessions()
        assert (await gw.operation()).mode  # 401, a new login, the system started again
        assert legacy.gateway.running
        assert [r.running for r in gw.sitemaster_restarts] == [True, True]


async def test_a_modern_login_asks_nothing_more(modern: Simulator) -> None:
    async with client(modern) as gw:
        await gw.login()
        sent = gw.requests_sent
        assert gw.sitemaster_restarts == []
        await gw.login()
        # The firmware family was read once; later logins send only the login.
        assert gw.requests_sent == sent + 1
    assert modern.gateway.running


def test_firmware_families() -> None:
    assert firmware_family("1.40.2") == "legacy"
    assert firmware_family("20.40.3 abc") == "legacy"
    assert firmware_family("20.49.0 ec4d3ec6") == "modern"
    assert firmware_family("23.44.0 eb113390") == "modern"
    assert firmware_family("") is None
    assert firmware_family(None) is None


# --- 7. mode, reserve and PV export limit in one staged commit ----------------------------


@pytest.mark.parametrize("firmware", ["1.40", "21.44"])
async def test_mode_reserve_and_export_limit_in_one_commit(firmware: str) -> None:
    async for sim in _simulator(firmware, allow_customer_operation=True):
        commits = sim.gateway.settings.commission_count
        async with client(sim) as gw:
            posted = await gw.set_operation(
                mode="backup", backup_reserve_percent=50, scale="app", max_pv_export_power_kw=7.5
            )
            now = await gw.operation()
        assert posted.mode == "backup"
        assert now.mode == "backup"
        assert now.backup_reserve_app_percent == pytest.approx(50)
        assert now.max_pv_export_power_kw == 7.5
        assert sim.gateway.settings.commission_count == commits + 1
        assert sim.gateway.running


async def test_the_export_limit_alone_keeps_mode_and_reserve(modern: Simulator) -> None:
    async with client(modern) as gw:
        before = await gw.operation()
        planned = await gw.operation_requests(max_pv_export_power_kw=0)
        await gw.set_operation(max_pv_export_power_kw=0)
        after = await gw.operation()
    assert planned[0].body == {
        "mode": before.mode,
        "backup_reserve_percent": before.backup_reserve_raw_percent,
        "max_pv_export_power_kW": 0,
    }
    assert (after.mode, after.backup_reserve_raw_percent) == (
        before.mode,
        before.backup_reserve_raw_percent,
    )
    assert after.max_pv_export_power_kw == 0


@pytest.mark.parametrize("bad", [-1, 1000.5, float("nan"), float("inf"), True, "5"])
async def test_a_bad_export_limit_is_refused_before_sending(bad: Any, modern: Simulator) -> None:
    async with client(modern) as gw:
        with pytest.raises(InvalidInputError) as caught:
            await gw.set_operation(mode="backup", max_pv_export_power_kw=bad)
        assert gw.requests_sent == 0
    assert caught.value.field == "max_pv_export_power_kw"


# --- 4. a brand with a space, through the simulator -----------------------------------------


async def test_brand_models_from_the_simulator(modern: Simulator) -> None:
    async with client(modern) as gw:
        configured = await gw.solars()
        brand = configured[0].brand if configured and configured[0].brand else "SolarEdge Tech"
        typed = await gw.solar_brand_models("SolarEdge Technologies")
        plain = await gw.request("GET", "/api/solars/brands/SolarEdge Technologies")
        other = await gw.solar_brand_models(brand)
    assert typed and all(isinstance(item, models.Solar) for item in typed)
    assert [item.model for item in typed] == [item["model"] for item in plain]
    assert isinstance(other, list)


async def test_a_restart_that_fails_is_reported_and_the_login_still_counts(
    legacy: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    await legacy.inject_fault("status", status=503, path_prefix="/api/sitemaster/run")
    async with client(legacy) as gw:
        await gw.login()  # the login itself worked
        assert gw.logged_in
        [restart] = gw.sitemaster_restarts
    assert not restart.running
    assert restart.error is not None and "503" in restart.error
    assert "could not start the sitemaster again" in caplog.text
    assert legacy.password not in caplog.text
