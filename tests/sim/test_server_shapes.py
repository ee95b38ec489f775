"""Every captured 21.44 endpoint answers with the capture's keys, types, status and headers."""

from __future__ import annotations

import pytest
from gateway_sim_helpers import CAPTURES, capture, client, same_shape, simulator

from tegkit import catalog
from tegkit.models import parse_response

RUNNING = sorted(p.name for p in (CAPTURES / "21.44-foogod/running").glob("*.json"))
_SPECIAL = {
    "meters.METER_SERIALsynchrometerX.cts.json",
    "meters.METER_SERIALsynchrometerY.cts.json",
}


def _path(name: str) -> str:
    return "/api/" + name.removesuffix(".json").replace(".", "/")


async def test_every_running_capture_has_the_same_shape() -> None:
    async with simulator(seed=3) as sim, client(sim) as c:
        await c.login()
        problems: dict[str, list[str]] = {}
        for name in RUNNING:
            if name in _SPECIAL:
                kind = name.split(".")[1].removeprefix("METER_SERIAL")
                path = f"/api/meters/{sim.gateway.meter_serials[kind]}/cts"
            else:
                path = _path(name)
            status, body, resp = await c.get(path)
            assert status == 200, (path, body)
            assert resp.headers["Cache-Control"] == "no-cache, no-store"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.content_type == "application/json"
            theirs = capture(f"21.44-foogod/running/{name}")
            if name == "meters.readings.json":  # keyed by meter serial
                theirs = {
                    k.replace(
                        "<<METER_SERIAL>>", "OBB" + sim.gateway.meter_serials["synchrometerX"][3:13]
                    ): v
                    for k, v in theirs.items()
                }
            if name == "site_info.grid_regions.json":  # a map by grid code, cut short
                body = {**body, "grid_code_settings": {}}
                theirs = {**theirs, "grid_code_settings": {}}
            found = same_shape(body, theirs)
            if found:
                problems[path] = found
            if catalog.find("GET", path).model is not None:
                parse_response("GET", path, body)  # the models accept what we serve
        assert problems == {}, problems


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/powerwalls/phase_usages", 500, "no phase information"),
        (
            "/api/synchrometer/ct_voltage_references/options",
            400,
            "run sitemanager flag enabled, sitemanager process is running",
        ),
    ],
)
async def test_captured_errors(path: str, status: int, error: str) -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        got, body, resp = await c.get(path)
        assert (got, body["code"], body["error"]) == (status, status, error)
        assert resp.headers["Cache-Control"] == "no-cache, no-store"


async def test_ct_config_is_500_for_a_synchrometer() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        serial = sim.gateway.meter_serials["synchrometerX"]
        status, body, _ = await c.get(f"/api/meters/{serial}/ct_config")
        assert status == 500
        assert body == {
            "code": 500,
            "error": "meter type must be Neurio (synchrometerX)",
            "message": "Unable to get Amp configuration",
        }


async def test_stopped_system_matches_the_stopped_captures() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        status, _, _ = await c.post("/api/sitemaster/stop", {"force": True})
        assert status == 202
        for name in (
            "system_status",
            "system_status.soe",
            "system_status.grid_status",
            "system_status.grid_faults",
            "meters.aggregates",
        ):
            status, body, resp = await c.get(_path(name))
            assert (status, body) == (502, b""), name
            assert "Content-Type" not in resp.headers
            assert resp.headers["Cache-Control"] == "no-cache, no-store"
        for name in (
            "sitemaster.json",
            "auth.toggle.supported.json",
            "site_info.json",
            "synchrometer.ct_voltage_references.options.json",
            "installer.json",
        ):
            status, body, _ = await c.get(_path(name))
            assert status == 200
            assert same_shape(body, capture(f"21.44-foogod/stopped/{name}")) == []
            assert body == capture(f"21.44-foogod/stopped/{name}") or name != "sitemaster.json"
        status, _, _ = await c.get("/api/sitemaster/run")
        assert status == 202
        status, _, _ = await c.get("/api/meters/aggregates")
        assert status == 200


async def test_unknown_path_404_and_wrong_method_405() -> None:
    async with simulator() as sim, client(sim) as c:
        status, body, _ = await c.get("/api/no/such/thing")
        assert status == 404 and set(body) == {"code", "error", "message"}
        status, body, resp = await c.request("PUT", "/api/system_status/soe")
        assert status == 405 and body["code"] == 405
        assert resp.headers["Allow"] == "GET"
        status, body, resp = await c.request("PATCH", "/api/operation")
        assert status == 405 and resp.headers["Allow"] == "GET, POST"
