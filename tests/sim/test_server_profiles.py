"""Firmware profiles over HTTPS: who may read what without a login, the login's answer, vitals."""

from __future__ import annotations

import base64
import json

import pytest
from gateway_sim_helpers import client, simulator

from tegkit import catalog
from tegkit.catalog import Auth
from tegkit.sim.responses import READS

# Plain reads (no path parameters, no side effects) by the auth rule the spec gives them.
_READS = [
    e
    for e in catalog.endpoints("local")
    if e.method == "GET" and e.key in READS and not e.params and e.key != "GET /api/devices/vitals"
]
OPEN = [e.path for e in _READS if e.auth is Auth.OPEN]
SINCE_20_49 = [e.path for e in _READS if e.auth is Auth.SINCE_20_49]
LOGIN = [e.path for e in _READS if e.auth is Auth.LOGIN]


def test_each_auth_rule_has_endpoints_to_try() -> None:
    assert "/api/status" in OPEN and "/api/system_status/grid_status" in OPEN
    assert "/api/meters/aggregates" in SINCE_20_49 and "/api/system_status/soe" in SINCE_20_49
    assert "/api/operation" in LOGIN and "/api/networks" in LOGIN


@pytest.mark.parametrize("firmware", ["20.49", "21.44", "23.44"])
async def test_modern_firmware_needs_a_customer_login_for_live_data(firmware: str) -> None:
    async with simulator(firmware=firmware) as sim, client(sim) as c:
        for path in OPEN:
            assert (await c.get(path))[0] == 200, path
        for path in SINCE_20_49 + LOGIN:
            status, body, _ = await c.get(path)
            assert (status, body) == (
                401,
                {
                    "code": 401,
                    "error": "Unable to GET to resource",
                    "message": "User does not have adequate access rights",
                },
            ), path
        record = await c.login()
        assert record["roles"] == ["Home_Owner"] and record["email"] == sim.email
        assert record["token"] and record["loginTime"]
        cookies = {cookie.key: cookie.value for cookie in c.session.cookie_jar}
        assert set(cookies) == {"AuthCookie", "UserRecord"}
        assert cookies["AuthCookie"] == record["token"]
        padded = cookies["UserRecord"] + "=" * (-len(cookies["UserRecord"]) % 4)
        assert json.loads(base64.urlsafe_b64decode(padded)) == record
        for path in SINCE_20_49 + LOGIN:
            assert (await c.get(path))[0] != 401, path  # some answer a captured 4xx / 5xx
        assert (await c.get("/api/status"))[1]["version"] == sim.gateway.profile.version
        assert (await c.get("/api/sitemaster"))[1]["running"] is True  # a login stops nothing


async def test_legacy_firmware_reads_live_data_without_a_login() -> None:
    async with simulator(firmware="1.40") as sim, client(sim) as c:
        for path in OPEN + SINCE_20_49:
            assert (await c.get(path))[0] == 200, path
        for path in LOGIN:
            assert (await c.get(path))[0] == 401, path
        assert (await c.get("/api/status"))[1]["version"] == "1.40.2"


@pytest.mark.parametrize(("firmware", "status"), [("21.44", 200), ("23.44", 404)])
async def test_vitals_are_gone_from_23_44_like_an_unknown_path(firmware: str, status: int) -> None:
    async with simulator(firmware=firmware) as sim, client(sim) as c:
        await c.login()
        got, body, _ = await c.get("/api/devices/vitals")
        assert got == status
        if status == 404:
            _, unknown, _ = await c.get("/api/devices/nothing")
            assert body == {**unknown, "message": "/api/devices/vitals not found"}
