"""The control API, faults, the cloud port and the plain-HTTP redirect, over real sockets."""

from __future__ import annotations

import datetime as dt
import ssl

import aiohttp
import pytest
from gateway_sim_helpers import client, simulator

from netns import OWN_NETNS_ADDRESS, run_in_own_netns

LIMIT = "Api Limit reached for this endpoint"


async def test_control_needs_the_token() -> None:
    async with simulator() as sim, client(sim) as c:
        status, _, _ = await c.get("/sim/state")
        assert status == 403
        status, _, _ = await c.get("/sim/state", headers={"X-Sim-Token": "wrong"})
        assert status == 403
        status, state = await c.control("GET", "/state")
        assert status == 200 and state["running"] is True


async def test_control_moves_time_outage_and_overrides() -> None:
    async with simulator() as sim, client(sim) as c:
        before = sim.now
        status, state = await c.control("POST", "/advance", {"seconds": 120})
        assert status == 200 and (sim.now - before).total_seconds() == pytest.approx(120)
        assert (await c.control("POST", "/advance", {"seconds": "x"}))[0] == 400
        await c.control("POST", "/override", {"solar_w": 0, "load_w": 1500})
        await c.login()
        agg = (await c.get("/api/meters/aggregates"))[1]
        assert agg["solar"]["instant_power"] == 0 and agg["load"]["instant_power"] == 1500
        status, state = await c.control("POST", "/outage", {"minutes": 10})
        assert state["grid_status"] == "SystemIslandedActive"
        grid = (await c.get("/api/system_status/grid_status"))[1]["grid_status"]
        assert grid == "SystemIslandedActive"
        await c.control("POST", "/advance", {"seconds": 11 * 60})
        grid = (await c.get("/api/system_status/grid_status"))[1]["grid_status"]
        assert grid != "SystemIslandedActive"
        status, state = await c.control("POST", "/sitemaster", {"running": False})
        assert (await c.get("/api/system_status/soe"))[0] == 502


async def test_request_faults_are_counted_and_cleared() -> None:
    async with simulator() as sim, client(sim) as c:
        status, _ = await c.control("POST", "/faults", {"kind": "rate_limit", "count": 2})
        assert status == 200
        assert [(await c.get("/api/status"))[0] for _ in range(3)] == [429, 429, 200]
        await c.control("POST", "/faults", {"kind": "status", "status": 503, "count": 1})
        assert (await c.get("/api/status"))[0] == 503
        await c.control("POST", "/faults", {"kind": "status", "status": 502})
        status, body, _ = await c.get("/api/status")
        assert (status, body) == (502, b"")
        await c.control("DELETE", "/faults")
        assert (await c.get("/api/status"))[0] == 200
        # aiohttp retries a GET once on a reused keep-alive connection: drop both tries.
        await c.control("POST", "/faults", {"kind": "drop", "count": 2})
        with pytest.raises(aiohttp.ClientError):
            await c.get("/api/status")
        assert (await c.get("/api/status"))[0] == 200
        assert (await c.control("POST", "/faults", {"kind": "bogus"}))[0] == 400


async def test_now_s_is_the_simulated_clock_in_seconds() -> None:
    """Callers read the clock from the Simulator (`now_s`), not from inside its physics."""
    async with simulator() as sim:
        start_s = sim.now.timestamp()
        assert sim.now_s == start_s
        await sim.advance(90)
        assert sim.now_s == start_s + 90 == sim.now.timestamp()
        sim.set_time(sim.now + dt.timedelta(days=2))
        assert sim.now_s == start_s + 90 + 2 * 86400


async def test_an_ipv6_simulator_reports_the_port_it_bound() -> None:
    """The ports come from the bound sockets, IPv6 (4-tuple addresses) included."""
    async with simulator(host="::1", http_port=0) as sim, aiohttp.ClientSession() as s:
        assert sim.url == f"https://[::1]:{sim.port}" and sim.port > 0
        ctx = ssl.create_default_context(cafile=str(sim.cafile))
        ctx.check_hostname = False  # the certificate names teg, not ::1
        async with s.get(f"{sim.url}/api/status", ssl=ctx) as r:
            assert r.status == 200
        async with s.get(f"http://[::1]:{sim.http_port}/x", allow_redirects=False) as r:
            assert r.status == 301 and r.headers["Location"] == f"{sim.url}/x"


async def test_expire_sessions_rotate_cert_and_reboot() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        await c.control("POST", "/faults", {"kind": "expire_sessions"})
        assert (await c.get("/api/meters/aggregates"))[0] == 401
        old = sim.fingerprint_sha256
        status, result = await c.control("POST", "/faults", {"kind": "rotate_cert"})
        assert result["fingerprint_sha256"] == sim.fingerprint_sha256 != old
        async with client(sim) as fresh:  # new connection, new certificate
            assert (await fresh.get("/api/status"))[0] == 200
        uptime_before = (await c.get("/api/status"))[1]["up_time_seconds"]
        await sim.inject_fault("reboot", seconds=0.3)
        async with client(sim) as fresh:
            with pytest.raises(aiohttp.ClientConnectionError):
                await fresh.get("/api/status")
        await sim._reboot_task  # type: ignore[misc]
        async with client(sim) as fresh:
            status, body, _ = await fresh.get("/api/status")
            assert status == 200 and body["up_time_seconds"] != uptime_before
            assert body["up_time_seconds"].startswith("0h0m")


async def test_cloud_sees_the_same_site_on_the_app_scale() -> None:
    async with simulator() as sim, client(sim) as c:
        ctx = ssl.create_default_context(cafile=str(sim.cafile))
        headers = {"Authorization": f"Bearer {sim.cloud_tokens.access_token}"}
        site_id = sim.cloud_site.energy_site_id
        async with aiohttp.ClientSession(headers=headers) as cloud:
            url = f"{sim.cloud_url}/api/1/energy_sites/{site_id}/backup"
            async with cloud.post(url, json={"backup_reserve_percent": 50}, ssl=ctx) as r:
                assert r.status == 200
            await c.login()
            op = (await c.get("/api/operation"))[1]
            assert op["backup_reserve_percent"] == pytest.approx(5 + 0.95 * 50)
            url = f"{sim.cloud_url}/api/1/energy_sites/{site_id}/live_status"
            async with cloud.get(url, ssl=ctx) as r:
                live = (await r.json())["response"]
            soe = (await c.get("/api/system_status/soe"))[1]["percentage"]
            assert live["percentage_charged"] == pytest.approx((soe - 5) / 0.95, abs=1e-6)


async def test_plain_http_redirects_to_https() -> None:
    async with simulator(http_port=0) as sim, aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{sim.http_port}/api/status"
        async with s.get(url, allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"] == f"{sim.url}/api/status"


async def test_per_endpoint_rate_limit_answers_429_for_that_endpoint_only() -> None:
    limits = {"GET /api/status": (2, 3600.0), "*": (3, 3600.0)}
    async with simulator(rate_limits=limits) as sim, client(sim) as c:
        assert [(await c.get("/api/status"))[0] for _ in range(2)] == [200, 200]
        status, body, resp = await c.get("/api/status")
        assert (status, body) == (429, {"code": 429, **dict.fromkeys(["error", "message"], LIMIT)})
        assert int(resp.headers["Retry-After"]) >= 3599
        # Every other endpoint has its own window under the "*" rule.
        for path in ("/api/sitemaster", "/api/site_info/site_name"):
            assert [(await c.get(path))[0] for _ in range(4)] == [200, 200, 200, 429]


async def _fault_statuses(seed: int) -> list[int]:
    async with simulator(seed=seed) as sim, client(sim) as c:
        await c.control("POST", "/faults", {"kind": "status", "status": 503, "probability": 0.5})
        return [(await c.get("/api/status"))[0] for _ in range(24)]


async def test_probabilistic_faults_repeat_under_the_same_seed() -> None:
    first, again, other = (
        await _fault_statuses(11),
        await _fault_statuses(11),
        await _fault_statuses(12),
    )
    assert first == again
    assert set(first) == {200, 503}
    assert other != first


def test_control_api_refuses_a_client_that_is_not_on_loopback() -> None:
    # the simulator listens on every address of a namespace of this test's own and is called
    # once through the namespace's non-loopback address, once through 127.0.0.1
    code = f"""
import asyncio, aiohttp
from netns import OWN_NETNS_ADDRESS, run_in_own_netns

from tegkit.sim import Simulator

async def main():
    async with Simulator(host="0.0.0.0", cloud_port=None) as sim, aiohttp.ClientSession() as s:
        token = {{"Authorization": f"Bearer {{sim.control_token}}"}}
        for host in ("{OWN_NETNS_ADDRESS}", "127.0.0.1"):
            url = f"https://{{host}}:{{sim.port}}/sim/state"
            async with s.get(url, headers=token, ssl=False) as r:
                print(r.status, (await r.json()).get("error", "") if r.status != 200 else "")

asyncio.run(main())
"""
    lines = run_in_own_netns(code).splitlines()
    assert lines[0].startswith("403 ") and "loopback" in lines[0]
    assert lines[1].strip() == "200"


async def test_clock_jumps_are_bounded_per_call() -> None:
    async with simulator() as sim, client(sim) as c:
        before = sim.now
        ten_years = before + dt.timedelta(days=3653)
        status, body = await c.control("POST", "/time", {"at": ten_years.isoformat()})
        assert status == 400 and body["error"].startswith("at:") and "31 days" in body["error"]
        assert set(body) == {"code", "error", "message"} and body["code"] == 400
        status, body = await c.control("POST", "/advance", {"seconds": 3653 * 86400})
        assert status == 400 and body["error"].startswith("seconds:"), body
        assert sim.now == before  # nothing moved
        with pytest.raises(ValueError, match="seconds"):
            await sim.advance(32 * 86400)
        with pytest.raises(ValueError, match="at:"):
            sim.set_time(ten_years)
        # The largest allowed jump still works, and in steps a long gap is reachable.
        month = before + dt.timedelta(days=31)
        status, state = await c.control("POST", "/time", {"at": month.isoformat()})
        assert status == 200 and dt.datetime.fromisoformat(state["now"]) == month
        status, _ = await c.control("POST", "/advance", {"seconds": 31 * 86400})
        assert status == 200
        assert abs((sim.now - month).total_seconds() - 31 * 86400) < 1e-3
