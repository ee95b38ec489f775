"""Answers spec 001 documents beyond the captures, served over HTTPS in the states it names.

- GET /api/powerwalls/status: 409 "Sitemaster is current running" on 1.x while the system
  runs (the 21.x captures answer 200, running and stopped);
- GET or POST /api/sitemaster/stop: 500 "Cannot Start Wizard" / "Unable to stop sitemaster"
  while the system cannot be stopped (the Powerwalls carry the home off grid);
- GET /api/site_info/grid_codes: 404 from 20.49 on (the long capture is a 1.x answer).
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_sim_helpers import Client, capture, client, simulator

from tegkit.models import parse_response
from tegkit.sim.physics import TRANSITION_S

MODERN = ["20.49", "21.39", "21.44", "23.44"]
CANNOT_STOP = {"code": 500, "error": "Cannot Start Wizard", "message": "Unable to stop sitemaster"}


async def _login(c: Client) -> dict[str, str]:
    """Log in; the headers later requests need (legacy firmware: a Bearer token only)."""
    record = await c.login()
    if c.sim.gateway.profile.legacy:
        # A 1.x login stops the system (spec 001); start it again as the spec says to.
        headers = {"Authorization": f"Bearer {record['token']}"}
        assert (await c.get("/api/sitemaster/run", headers=headers))[0] == 202
        return headers
    return {}


async def _get(c: Client, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    status, body, _ = await c.get(path, headers=headers)
    return status, body


async def test_legacy_powerwalls_status_is_409_while_running_and_200_when_stopped() -> None:
    async with simulator(firmware="1.40") as sim, client(sim) as c:
        auth = await _login(c)
        status, body, resp = await c.get("/api/powerwalls/status", headers=auth)
        assert (status, body) == (
            409,
            {
                "code": 409,
                "error": "Sitemaster is current running",
                "message": "Sitemaster is current running",
            },
        )
        assert resp.headers["Cache-Control"] == "no-cache, no-store"
        assert (await c.get("/api/sitemaster/stop", headers=auth))[0] == 202
        status, body = await _get(c, "/api/powerwalls/status", auth)
        assert (status, body) == (200, capture("powerwalls.status.non-offgrid-capable.json"))
        parse_response("GET", "/api/powerwalls/status", body)


@pytest.mark.parametrize("firmware", MODERN)
async def test_modern_powerwalls_status_answers_running_and_stopped(firmware: str) -> None:
    async with simulator(firmware=firmware) as sim, client(sim) as c:
        auth = await _login(c)
        status, body = await _get(c, "/api/powerwalls/status", auth)
        assert (status, body) == (200, capture("21.44-foogod/running/powerwalls.status.json"))
        await c.post("/api/sitemaster/stop", {"force": True})
        status, body = await _get(c, "/api/powerwalls/status", auth)
        assert (status, body) == (200, capture("21.44-foogod/stopped/powerwalls.status.json"))


@pytest.mark.parametrize("firmware", ["1.40", *MODERN])
@pytest.mark.parametrize("how", ["GET", "POST"])
async def test_sitemaster_stop_is_500_while_the_home_runs_off_grid(firmware: str, how: str) -> None:
    async with simulator(firmware=firmware) as sim, client(sim) as c:
        auth = await _login(c)

        async def stop() -> tuple[int, Any]:
            if how == "GET":
                return await _get(c, "/api/sitemaster/stop", auth)
            status, body, _ = await c.request(
                "POST", "/api/sitemaster/stop", body={"force": True}, headers=auth
            )
            return status, body

        sim.start_outage()
        assert await stop() == (500, CANNOT_STOP)
        assert sim.gateway.running  # refused: still carrying the home
        _, body = await _get(c, "/api/system_status/grid_status", auth)
        assert body["grid_status"] == "SystemIslandedActive"
        sim.end_outage()  # resynchronising with the grid: still not a moment to stop
        assert await stop() == (500, CANNOT_STOP)
        await sim.advance(TRANSITION_S + 1)
        assert (await stop())[0] == 202
        assert not sim.gateway.running


async def test_islanding_by_request_also_makes_a_stop_refused() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        status, _, _ = await c.post(
            "/api/v2/islanding/mode", {"island_mode": "off_grid_intentional"}
        )
        assert status == 200
        status, body, _ = await c.get("/api/sitemaster/stop")
        assert (status, body) == (500, CANNOT_STOP)
        await c.post("/api/v2/islanding/mode", {"island_mode": "backup"})
        await sim.advance(TRANSITION_S + 1)
        assert (await c.get("/api/sitemaster/stop"))[0] == 202


@pytest.mark.parametrize("firmware", MODERN)
async def test_grid_codes_are_404_from_20_49_on(firmware: str) -> None:
    async with simulator(firmware=firmware) as sim, client(sim) as c:
        await c.login()
        status, body, resp = await c.get("/api/site_info/grid_codes")
        assert status == 404
        assert body == {
            "code": 404,
            "error": "Not Found",
            "message": "/api/site_info/grid_codes not found",
        }
        assert resp.content_type == "application/json"
        assert (await c.get("/api/site_info/grid_regions"))[0] == 200  # what replaced it


async def test_legacy_grid_codes_have_the_captured_shape() -> None:
    async with simulator(firmware="1.40") as sim, client(sim) as c:
        auth = await _login(c)
        status, body = await _get(c, "/api/site_info/grid_codes", auth)
        assert status == 200
        assert body == capture("api_site_info_grid_codes.json")
        parse_response("GET", "/api/site_info/grid_codes", body)
