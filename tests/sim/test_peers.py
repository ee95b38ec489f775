"""Other projects' clients against the simulator: tesla-powerwall 0.5.3 and pypowerwall 0.22.2.

Findings: tesla_powerwall takes "https://127.0.0.1:PORT" as its endpoint and keeps the
AuthCookie in an unsafe cookie jar. pypowerwall takes host="127.0.0.1:PORT" (a port in the
host string is supported) and caches the auth cookies in `cachefile`; it is synchronous
(requests), so it runs in a thread while the simulator serves on the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gateway_sim_helpers import simulator

from tegkit import Gateway, PinnedCertificate
from tegkit.sim import Simulator


async def tegkit_reads(sim: Simulator) -> dict[str, object]:
    """What tegkit's own client reads from the same simulator, for comparison."""
    tls = PinnedCertificate(sim.fingerprint_sha256)
    async with Gateway(sim.url, password=sim.password, email=sim.email, tls=tls) as gw:
        flow = await gw.meters_aggregates()
        assert flow.site and flow.battery and flow.solar and flow.load
        return {
            "site_w": flow.site.instant_power_w,
            "battery_w": flow.battery.instant_power_w,
            "solar_w": flow.solar.instant_power_w,
            "load_w": flow.load.instant_power_w,
            "soe_raw_percent": (await gw.state_of_energy()).raw_percent,
            "grid_status": (await gw.grid_status()).grid_status,
            "site_name": (await gw.site_info()).site_name,
            "version": (await gw.status()).version,
            "mode": (await gw.operation()).mode,
            "reserve_raw_percent": (await gw.operation()).backup_reserve_raw_percent,
        }


async def test_tesla_powerwall_reads_what_the_simulator_holds() -> None:
    from tesla_powerwall import GridStatus, Powerwall

    async with simulator(seed=5) as sim, Powerwall(sim.url, verify_ssl=False) as pw:
        await pw.login(sim.password, sim.email)
        assert pw.is_authenticated()
        snap = sim.gateway.site.snapshot()
        meters = await pw.get_meters()
        assert meters.solar.instant_power == pytest.approx(snap.solar_w, abs=0.01)
        assert meters.site.instant_power == pytest.approx(snap.site_w, abs=0.01)
        assert meters.battery.instant_power == pytest.approx(snap.battery_w, abs=0.01)
        # tesla_powerwall reports the raw percents as the gateway sends them.
        assert await pw.get_charge() == pytest.approx(snap.soe_raw_percent, abs=1e-6)
        assert await pw.get_grid_status() == GridStatus.CONNECTED
        assert (await pw.get_site_info()).site_name == sim.gateway.settings.site_name
        assert (await pw.get_status()).version == sim.gateway.profile.version
        assert (await pw.get_operation_mode()).value == sim.gateway.mode
        reserve = await pw.get_backup_reserve_percentage()
        assert reserve == pytest.approx(sim.gateway.backup_reserve_raw_percent)
        assert sorted(await pw.get_serial_numbers()) == sorted(sim.gateway.battery_serials)
        assert await pw.get_gateway_din() == sim.gateway.din
        ours = await tegkit_reads(sim)
        assert ours["solar_w"] == pytest.approx(meters.solar.instant_power, abs=0.01)
        assert ours["site_w"] == pytest.approx(meters.site.instant_power, abs=0.01)
        assert ours["battery_w"] == pytest.approx(meters.battery.instant_power, abs=0.01)
        assert ours["load_w"] == pytest.approx(meters.load.instant_power, abs=0.01)
        assert ours["soe_raw_percent"] == pytest.approx(await pw.get_charge(), abs=1e-9)
        assert ours["grid_status"] == "SystemGridConnected"
        assert ours["site_name"] == (await pw.get_site_info()).site_name
        assert ours["version"] == (await pw.get_status()).version
        assert ours["mode"] == (await pw.get_operation_mode()).value
        assert ours["reserve_raw_percent"] == pytest.approx(reserve)


async def test_pypowerwall_reads_what_the_simulator_holds(tmp_path: Path) -> None:
    import pypowerwall

    async with simulator(seed=5) as sim:
        host = f"127.0.0.1:{sim.port}"

        def read() -> tuple[object, ...]:
            pw = pypowerwall.Powerwall(
                host=host,
                password=sim.password,
                email=sim.email,
                timezone="America/Los_Angeles",
                cachefile=str(tmp_path / ".powerwall"),
                auto_select=True,
                retry_modes=False,
            )
            return (
                pw.solar(),
                pw.grid(),
                pw.battery(),
                pw.home(),
                pw.level(),
                pw.site_name(),
                pw.version(),
                pw.grid_status(),
            )

        solar, grid, battery, home, level, name, version, grid_status = await asyncio.to_thread(
            read
        )
        snap = sim.gateway.site.snapshot()
        assert solar == pytest.approx(snap.solar_w, abs=0.01)
        assert grid == pytest.approx(snap.site_w, abs=0.01)
        assert battery == pytest.approx(snap.battery_w, abs=0.01)
        assert home == pytest.approx(snap.site_w + snap.battery_w + snap.solar_w, abs=0.05)
        assert level == pytest.approx(snap.soe_raw_percent, abs=1e-6)
        assert name == sim.gateway.settings.site_name
        assert version == sim.gateway.profile.version
        assert grid_status == "UP"
        assert (tmp_path / ".powerwall").exists()
        ours = await tegkit_reads(sim)
        assert ours["solar_w"] == pytest.approx(solar, abs=0.01)
        assert ours["site_w"] == pytest.approx(grid, abs=0.01)
        assert ours["battery_w"] == pytest.approx(battery, abs=0.01)
        assert ours["load_w"] == pytest.approx(home, abs=0.05)
        assert ours["soe_raw_percent"] == pytest.approx(level, abs=1e-9)
        assert ours["site_name"] == name
        assert ours["version"] == version
