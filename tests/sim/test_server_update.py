"""A simulated firmware update over HTTPS: the states spec 001 lists, the Powerwalls stopped
for about 15 simulated minutes while it installs (live endpoints 502, the grid carries the
home), then the new version reported. Driven from the control API and from Python."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_sim_helpers import Client, client, simulator

from tegkit.models import parse_response
from tegkit.sim.gateway import (
    UPDATE_CHECK_S,
    UPDATE_DOWNLOAD_S,
    UPDATE_INSTALL_S,
    UPDATE_READY_S,
)
from tegkit.sim.profiles import get_profile

LIVE = ["/api/meters/aggregates", "/api/system_status/soe", "/api/system_status"]


async def _update(c: Client) -> dict[str, Any]:
    status, body, _ = await c.get("/api/system/update/status")
    assert status == 200, body
    parse_response("GET", "/api/system/update/status", body)  # the client's model reads it
    return dict(body)


async def test_an_update_walks_the_states_stops_the_battery_and_reports_the_new_version() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        status, state = await c.control("POST", "/update", {"version": "23.44"})
        assert status == 200 and state["update"]["offered"] == "23.44"
        assert (await _update(c))["state"] == "/update_succeeded"  # at rest, as captured
        assert (await c.post("/api/system/update"))[0] == 202
        first = await _update(c)
        assert (first["state"], first["info"]) == (
            "/clear_update_status",
            {"status": ["nonactionable"]},
        )
        assert first["last_status_time"] == first["current_time"]
        await sim.advance(UPDATE_CHECK_S)
        assert (await _update(c))["state"] == "/download"
        assert (await c.post("/api/system/update"))[0] == 202  # a second request starts nothing
        await sim.advance(UPDATE_DOWNLOAD_S)
        assert (await _update(c))["state"] == "/update_downloaded"
        assert (await c.get("/api/sitemaster"))[1]["running"] is True  # not yet stopped
        await sim.advance(UPDATE_READY_S)

        # Installing: the Powerwalls stop, the site is on grid, the old version still shows.
        installing = await _update(c)
        assert installing["state"] == "/update_staged"
        assert installing["version"] == "21.44 223a56cd"
        for path in LIVE:
            assert (await c.get(path))[:2] == (502, b""), path
        assert (await c.get("/api/sitemaster"))[1]["running"] is False
        assert (await c.get("/api/powerwalls/update"))[1] == {"updating": True}
        status, body, _ = await c.get("/api/sitemaster/run")
        assert status == 409 and body["code"] == 409  # the install holds it stopped
        state = (await c.control("GET", "/state"))[1]
        assert state["battery_w"] == 0 and state["grid_status"] == "SystemGridConnected"
        assert state["site_w"] == pytest.approx(state["load_w"] - state["solar_w"], abs=1)
        await sim.advance(UPDATE_INSTALL_S - 1)
        assert (await _update(c))["state"] == "/update_staged"  # about 15 minutes
        assert (await c.get("/api/system_status/soe"))[0] == 502

        await sim.advance(1)
        # The gateway restarted on the new firmware: sessions are gone, the system runs.
        assert (await c.get("/api/meters/aggregates"))[0] == 401
        await c.login()
        done = await _update(c)
        assert (done["state"], done["info"]) == ("/update_succeeded", {"status": ["nonactionable"]})
        assert done["version"] == get_profile("23.44").version
        status_body = (await c.get("/api/status"))[1]
        assert status_body["version"] == get_profile("23.44").version
        assert status_body["up_time_seconds"].startswith("0h0m")
        for path in LIVE:
            assert (await c.get(path))[0] == 200, path
        assert (await c.get("/api/devices/vitals"))[0] == 404  # 23.44's own answers now
        assert (await c.get("/api/powerwalls/update"))[1] == {"updating": False}


async def test_one_long_step_applies_each_update_step_at_its_time() -> None:
    def battery_wh() -> float:
        counter = sim.gateway.site.counters["battery"]
        return float(counter.imported_wh + counter.exported_wh)

    async with simulator() as sim, client(sim) as c:
        sim.offer_update("23.44")
        assert sim.start_update() is True
        assert sim.start_update() is False  # already under way
        await sim.advance(UPDATE_CHECK_S + UPDATE_DOWNLOAD_S + UPDATE_READY_S + 1)
        assert not sim.gateway.running
        stopped_at = battery_wh()
        await sim.advance(UPDATE_INSTALL_S - 2)
        assert battery_wh() == stopped_at  # no battery energy flows while it installs
        await sim.advance(1 + 60)  # one step across the end of the install
        assert sim.gateway.running and sim.gateway.profile.name == "23.44"
        assert battery_wh() > stopped_at  # and it works again afterwards
        await c.login()
        assert (await _update(c))["state"] == "/update_succeeded"


async def test_without_a_newer_firmware_the_check_fails_nonactionable() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        sim.offer_update("21.44")  # the version it runs: nothing to do
        assert (await c.post("/api/system/update"))[0] == 202
        await sim.advance(UPDATE_CHECK_S)
        body = await _update(c)
        assert (body["state"], body["info"]) == ("/update_failed", {"status": ["nonactionable"]})
        assert sim.gateway.running


async def test_a_failing_update_reports_error_and_keeps_the_firmware() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        status, _ = await c.control(
            "POST", "/update", {"version": "23.44", "fail": True, "start": True}
        )
        assert status == 200
        await sim.advance(UPDATE_CHECK_S + UPDATE_DOWNLOAD_S)
        body = await _update(c)
        assert (body["state"], body["info"]) == ("/update_failed", {"status": ["error"]})
        await sim.advance(UPDATE_INSTALL_S + 60)
        assert sim.gateway.running and sim.gateway.profile.name == "21.44"
        assert (await _update(c))["version"] == "21.44 223a56cd"
        # A failed update can be tried again.
        sim.offer_update("23.44")
        assert sim.start_update() is True


async def test_legacy_firmware_reports_the_update_in_its_short_shape() -> None:
    async with simulator(firmware="1.40") as sim, client(sim) as c:
        token = (await c.login())["token"]
        sim.run_sitemaster()  # a 1.x login stops it (spec 001)
        sim.offer_update("20.49")
        sim.start_update()
        headers = {"Authorization": f"Bearer {token}"}
        body = (await c.get("/api/system/update/status", headers=headers))[1]
        assert set(body) == {"state", "info", "current_time"}
        assert body["state"] == "/clear_update_status"
        await sim.advance(UPDATE_CHECK_S + UPDATE_DOWNLOAD_S + UPDATE_READY_S + UPDATE_INSTALL_S)
        assert sim.gateway.profile.name == "20.49" and sim.gateway.running


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "99.1"}, "99.1"),
        ({"version": 23.44}, "version"),
        ({"fail": "yes"}, "fail"),
        ({"start": 1}, "start"),
        ({"when": "now"}, "when"),
    ],
)
async def test_the_update_control_refuses_bad_input(body: dict[str, Any], field: str) -> None:
    async with simulator() as sim, client(sim) as c:
        status, reply = await c.control("POST", "/update", body)
        assert status == 400 and field in reply["error"], reply
        assert sim.gateway.fw_update.offered is None
