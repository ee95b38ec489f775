"""Every captured 21.44 endpoint answers with the capture's keys, types, status and headers."""

from __future__ import annotations

import json
from pathlib import Path

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


ERRORS = sorted(
    f"{firmware}/{state}/{e.name}"
    for firmware in ("21.39.1-foogod", "21.44-foogod")
    for state in ("running", "stopped")
    for e in (CAPTURES / firmware / state).glob("*.err")
)


@pytest.mark.parametrize("name", ERRORS)
async def test_every_captured_error_is_answered_the_same(name: str) -> None:
    firmware, state, file = name.split("/")
    head, _, body_text = (CAPTURES / name).read_text().partition("\n\n")
    async with simulator(firmware=firmware.split("-")[0]) as sim, client(sim) as c:
        await c.login()
        path = _path(file.removesuffix(".err"))
        for kind, serial in sim.gateway.meter_serials.items():
            path = path.replace(f"METER_SERIAL{kind}/", f"{serial}/")
        if state == "stopped":
            assert (await c.get("/api/sitemaster/stop"))[0] == 202
        status, body, resp = await c.get(path)
        assert status == int(head.split()[1])
        assert body == (json.loads(body_text) if body_text.strip() else b"")
        assert resp.headers["Cache-Control"] == "no-cache, no-store"
        assert ("content-type: application/json" in head) == ("Content-Type" in resp.headers)


LIVE = sorted(e.path for e in catalog.endpoints("local") if e.live)


def _status_line(path: Path) -> int:
    return int(path.read_text().split()[1])


def test_the_live_endpoints_are_those_a_stopped_gateway_answered_502() -> None:
    for firmware in ("21.39.1-foogod", "21.44-foogod"):
        errors = (CAPTURES / firmware / "stopped").glob("*.err")
        bad_gateway = sorted(
            _path(e.name.removesuffix(".err")) for e in errors if _status_line(e) == 502
        )
        assert bad_gateway == LIVE, firmware


@pytest.mark.parametrize("how", ["POST force", "GET"])
async def test_stopped_system_matches_the_stopped_captures(how: str) -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        if how == "GET":
            status, _, _ = await c.get("/api/sitemaster/stop")
        else:
            status, _, _ = await c.post("/api/sitemaster/stop", {"force": True})
        assert status == 202
        for path in LIVE:
            status, body, resp = await c.get(path)
            assert (status, body) == (502, b""), path
            assert "Content-Type" not in resp.headers
            assert resp.headers["Cache-Control"] == "no-cache, no-store"
        for name in ("sitemaster.json", "auth.toggle.supported.json"):
            assert (await c.get(_path(name)))[1] == capture(f"21.44-foogod/stopped/{name}")
        for name in (
            "site_info.json",
            "synchrometer.ct_voltage_references.options.json",
            "installer.json",
        ):
            status, body, _ = await c.get(_path(name))
            assert status == 200
            assert same_shape(body, capture(f"21.44-foogod/stopped/{name}")) == []
        status, _, _ = await c.get("/api/sitemaster/run")
        assert status == 202
        for name in ("sitemaster.json", "auth.toggle.supported.json"):
            assert (await c.get(_path(name)))[1] == capture(f"21.44-foogod/running/{name}")
        for path in LIVE:
            assert (await c.get(path))[0] == 200, path


async def test_unknown_path_404_and_wrong_method_405() -> None:
    async with simulator() as sim, client(sim) as c:
        status, body, _ = await c.get("/api/no/such/thing")
        assert status == 404 and set(body) == {"code", "error", "message"}
        status, body, resp = await c.request("PUT", "/api/system_status/soe")
        assert status == 405 and body["code"] == 405
        assert resp.headers["Allow"] == "GET"
        status, body, resp = await c.request("PATCH", "/api/operation")
        assert status == 405 and resp.headers["Allow"] == "GET, POST"
