"""The physics as clients read it over HTTPS: identities, counters, CTs, outages, the cloud."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest
from gateway_sim_helpers import client, simulator

from tegkit.percent import raw_to_app
from tegkit.sim import Simulator

METERS = ("site", "battery", "load", "solar")
STEP_S = 60


async def test_served_counters_grow_by_the_integral_of_served_power() -> None:
    async with simulator(seed=4, session_lifetime_s=86400) as sim, client(sim) as c:
        await c.login()
        first = previous = (await c.get("/api/meters/aggregates"))[1]
        integral_wh = {(m, d): 0.0 for m in METERS for d in ("energy_imported", "energy_exported")}
        for _ in range(6 * 3600 // STEP_S):  # noon to 18:00 in Los Angeles
            for meter in METERS:
                power_w = previous[meter]["instant_power"]
                direction = "energy_imported" if power_w > 0 else "energy_exported"
                if meter == "battery":  # the battery meter counts discharge as exported
                    direction = "energy_exported" if power_w > 0 else "energy_imported"
                if meter == "solar":
                    direction = "energy_exported"
                integral_wh[meter, direction] += abs(power_w) * STEP_S / 3600
            await sim.advance(STEP_S)
            now = (await c.get("/api/meters/aggregates"))[1]
            p = {m: now[m]["instant_power"] for m in METERS}
            assert p["load"] == pytest.approx(p["site"] + p["battery"] + p["solar"], abs=0.05)
            for meter, direction in integral_wh:
                assert now[meter][direction] >= previous[meter][direction]
            previous = now
        for (meter, direction), wh in integral_wh.items():
            grown_wh = previous[meter][direction] - first[meter][direction]
            assert grown_wh == pytest.approx(wh, rel=2e-3, abs=1.0), (meter, direction)
        assert integral_wh["solar", "energy_exported"] > 5_000  # a real afternoon of sun


async def test_meter_readings_cts_add_up_to_the_aggregates() -> None:
    async with simulator(seed=2) as sim, client(sim) as c:
        await c.login()
        await sim.advance(600)
        agg = (await c.get("/api/meters/aggregates"))[1]
        readings = (await c.get("/api/meters/readings"))[1]
        cts = [(serial, ct) for serial, meter in readings.items() for ct in meter["data"]["cts"]]
        site = [ct for _, ct in cts if ct["ct"] in (1, 2)]
        solar = [ct for serial, ct in cts if ct["ct"] == 3 and serial.endswith("synchrometerY")]
        scale = 2  # the solar CT's real_power_scale_factor in GET /api/meters
        assert sum(ct["p_W"] for ct in site) == pytest.approx(agg["site"]["instant_power"], abs=0.1)
        assert solar[0]["p_W"] * scale == pytest.approx(agg["solar"]["instant_power"], abs=0.1)
        for key, ws_key in (("energy_imported", "eImp_Ws"), ("energy_exported", "eExp_Ws")):
            site_ws = sum(ct[ws_key] for ct in site)
            assert site_ws == pytest.approx(agg["site"][key] * 3600, abs=4)
        solar_ws = solar[0]["eImp_Ws"] * scale
        assert solar_ws == pytest.approx(agg["solar"]["energy_exported"] * 3600, abs=2)


async def test_system_status_energy_agrees_with_soe() -> None:
    async with simulator(seed=9) as sim, client(sim) as c:
        await c.login()
        for _ in range(4):
            soe = (await c.get("/api/system_status/soe"))[1]["percentage"]
            status = (await c.get("/api/system_status"))[1]
            ratio = status["nominal_energy_remaining"] / status["nominal_full_pack_energy"]
            assert soe == pytest.approx(ratio * 100, abs=0.01)
            blocks = status["battery_blocks"]
            assert sum(b["nominal_energy_remaining"] for b in blocks) == pytest.approx(
                status["nominal_energy_remaining"], abs=len(blocks)
            )
            await sim.advance(3 * 3600)
            await c.login()


async def test_outage_with_a_full_battery_curtails_solar_at_about_65_hz() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        sim.gateway.site.set_soe_raw_percent(100.0)
        sim.override_solar(6_000)
        sim.override_load(1_000)
        sim.start_outage()
        agg = (await c.get("/api/meters/aggregates"))[1]
        assert agg["battery"]["frequency"] == pytest.approx(65.0, abs=0.2)
        assert agg["site"]["instant_power"] == 0
        assert agg["solar"]["instant_power"] == pytest.approx(1_000, abs=0.1)  # what the home takes
        assert (await c.get("/api/system_status/grid_status"))[1]["grid_status"] == (
            "SystemIslandedActive"
        )


async def test_after_an_outage_the_battery_charges_back_to_the_reserve_first() -> None:
    async with simulator(session_lifetime_s=86400) as sim, client(sim) as c:
        await c.login()
        reserve_raw = sim.gateway.backup_reserve_raw_percent
        sim.override_solar(0)
        sim.override_load(3_000)
        sim.gateway.site.set_soe_raw_percent(reserve_raw + 2)
        sim.start_outage(minutes=60)
        await sim.advance(3600)
        below = (await c.get("/api/system_status/soe"))[1]["percentage"]
        assert below < reserve_raw  # the home was carried below the reserve
        await sim.advance(30)
        assert (await c.get("/api/system_status/grid_status"))[1]["grid_status"] == (
            "SystemGridConnected"
        )
        agg = (await c.get("/api/meters/aggregates"))[1]
        assert agg["battery"]["instant_power"] < 0  # charging from the grid
        assert agg["site"]["instant_power"] > 3_000
        await sim.advance(12 * 3600)
        soe = (await c.get("/api/system_status/soe"))[1]["percentage"]
        assert soe == pytest.approx(reserve_raw, abs=0.01)  # then holds there, no further


async def test_the_cloud_reads_and_writes_the_same_state_on_the_app_scale() -> None:
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        site_id = sim.cloud_site.energy_site_id
        # Local change, committed: the cloud sees it on the app scale.
        await c.post("/api/operation", {"mode": "autonomous", "backup_reserve_percent": 43})
        await c.get("/api/config/completed")
        info = await _cloud(sim, "GET", f"/api/1/energy_sites/{site_id}/site_info")
        assert info["default_real_mode"] == "autonomous"
        assert info["backup_reserve_percent"] == pytest.approx(40.0)  # raw 43 is app 40
        # Cloud change: the local API sees it at once, on the raw scale.
        battery = sim.cloud_site.battery_id
        await _cloud(
            sim, "POST", f"/api/1/powerwalls/{battery}/operation", {"default_real_mode": "backup"}
        )
        await _cloud(sim, "POST", f"/api/1/energy_sites/{site_id}/site_name", {"site_name": "Barn"})
        op = (await c.get("/api/operation"))[1]
        assert op["real_mode"] == "backup"
        assert (await c.get("/api/site_info/site_name"))[1]["site_name"] == "Barn"
        live = await _cloud(sim, "GET", f"/api/1/energy_sites/{site_id}/live_status")
        agg = (await c.get("/api/meters/aggregates"))[1]
        soe = (await c.get("/api/system_status/soe"))[1]["percentage"]
        status = (await c.get("/api/system_status"))[1]
        assert live["percentage_charged"] == pytest.approx(raw_to_app(soe), abs=1e-9)
        assert live["energy_left"] / live["total_pack_energy"] * 100 == pytest.approx(
            raw_to_app(soe), abs=0.05
        )
        assert live["total_pack_energy"] < status["nominal_full_pack_energy"]  # hidden 5% off
        for cloud_key, meter in (
            ("solar_power", "solar"),
            ("battery_power", "battery"),
            ("grid_power", "site"),
            ("load_power", "load"),
        ):
            assert live[cloud_key] == pytest.approx(agg[meter]["instant_power"], abs=1), meter


async def _cloud(sim: Simulator, method: str, path: str, body: Any = None) -> Any:
    ctx = ssl.create_default_context(cafile=str(sim.cafile))
    headers = {"Authorization": f"Bearer {sim.cloud_tokens.access_token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, sim.cloud_url + path, json=body, ssl=ctx) as r,
    ):
        assert r.status == 200, await r.text()
        return (await r.json())["response"]
