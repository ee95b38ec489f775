"""The simulated gateway's rules over HTTPS: auth, sessions, staging, consistency, wizard state."""

from __future__ import annotations

import pytest
from gateway_sim_helpers import Client, client, simulator

from tegkit.sim import Simulator

NO_ACCESS = {
    "code": 401,
    "error": "Unable to GET to resource",
    "message": "User does not have adequate access rights",
}
LIMIT = {
    "code": 429,
    "error": "Api Limit reached for this endpoint",
    "message": "Api Limit reached for this endpoint",
}


async def test_wrong_password_then_lockout_then_unlock_after_simulated_time() -> None:
    async with simulator() as sim, client(sim) as c:
        for _ in range(4):
            status, body, _ = await c.post(
                "/api/login/Basic", {"username": "customer", "password": "nope"}
            )
            assert (status, body) == (
                401,
                {"code": 401, "error": "bad credentials", "message": "Login Error"},
            )
        status, body, _ = await c.post(
            "/api/login/Basic", {"username": "customer", "password": "nope"}
        )
        assert status == 401
        status, body, resp = await c.post(
            "/api/login/Basic", {"username": "customer", "password": sim.password}
        )
        assert (status, body) == (429, LIMIT)
        assert int(resp.headers["Retry-After"]) > 0
        await sim.advance(301)
        await c.login()


async def test_login_sets_cookies_and_bearer_token_works_until_the_session_expires() -> None:
    async with simulator(session_lifetime_s=600) as sim, client(sim) as c:
        assert (await c.get("/api/meters/aggregates"))[:2] == (401, NO_ACCESS)
        body = await c.login()
        assert body["roles"] == ["Home_Owner"] and body["provider"] == "Basic"
        cookies = {cookie.key for cookie in c.session.cookie_jar}
        assert cookies == {"AuthCookie", "UserRecord"}
        assert (await c.get("/api/meters/aggregates"))[0] == 200
        c.session.cookie_jar.clear()
        bearer = {"Authorization": f"Bearer {body['token']}"}
        assert (await c.get("/api/meters/aggregates", headers=bearer))[0] == 200
        await sim.advance(601)
        assert (await c.get("/api/meters/aggregates", headers=bearer))[:2] == (401, NO_ACCESS)


async def test_aggregates_are_consistent_and_counters_only_grow() -> None:
    async with simulator(seed=7) as sim, client(sim) as c:
        await c.login()
        _, first, _ = await c.get("/api/meters/aggregates")
        p = {k: first[k]["instant_power"] for k in ("site", "battery", "load", "solar")}
        assert p["load"] == pytest.approx(p["site"] + p["battery"] + p["solar"], abs=0.05)
        snap = sim.gateway.site.snapshot()
        assert p["solar"] == pytest.approx(snap.solar_w, abs=0.01)
        assert p["load"] == pytest.approx(snap.load_w, abs=0.1)
        assert first["solar"]["instant_power"] > 0  # noon in June
        _, soe, _ = await c.get("/api/system_status/soe")
        _, status, _ = await c.get("/api/system_status")
        ratio = status["nominal_energy_remaining"] / status["nominal_full_pack_energy"] * 100
        assert soe["percentage"] == pytest.approx(ratio, abs=0.01)
        assert soe["percentage"] == pytest.approx(snap.soe_raw_percent, abs=1e-6)
        await sim.advance(1800)
        _, later, _ = await c.get("/api/meters/aggregates")
        for meter in ("site", "battery", "load", "solar"):
            for key in ("energy_imported", "energy_exported"):
                assert later[meter][key] >= first[meter][key]
        assert later["load"]["energy_imported"] > first["load"]["energy_imported"]
        assert later["site"]["last_communication_time"].endswith("-07:00")
        _, readings, _ = await c.get("/api/meters/readings")
        site_ct = sum(
            ct["p_W"]
            for meter in readings.values()
            for ct in meter["data"]["cts"]
            if ct["ct"] in (1, 2)
        )
        assert site_ct == pytest.approx(later["site"]["instant_power"], abs=0.1)


@pytest.mark.parametrize("allow", [False, True])
async def test_operation_is_installer_only_unless_allowed_and_staged_until_committed(
    allow: bool,
) -> None:
    async with simulator(allow_customer_operation=allow) as sim, client(sim) as c:
        await c.login()
        _, before, _ = await c.get("/api/operation")
        _, status_before, _ = await c.get("/api/status")
        status, body, _ = await c.post(
            "/api/operation", {"mode": "backup", "backup_reserve_percent": 80}
        )
        if not allow:
            assert (status, body) == (
                403,
                {
                    "code": 403,
                    "error": "Unable to POST to resource",
                    "message": "User does not have adequate access rights",
                },
            )
            return
        assert (status, body) == (200, {"mode": "backup", "backup_reserve_percent": 80})
        assert (await c.get("/api/operation"))[1] == before  # staged, not in effect
        status, _, _ = await c.get("/api/config/completed")
        assert status == 202
        _, after, _ = await c.get("/api/operation")
        assert (after["real_mode"], after["backup_reserve_percent"]) == ("backup", 80)
        _, status_after, _ = await c.get("/api/status")
        assert status_after["commission_count"] == status_before["commission_count"] + 1
        assert sim.gateway.site.mode == "backup"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"backup_reserve_percent": 150}, "backup_reserve_percent"),
        ({"backup_reserve_percent": -1}, "backup_reserve_percent"),
        ({"backup_reserve_percent": "abc"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": True}, "backup_reserve_percent"),
        ({"mode": "turbo"}, "mode"),
        ({}, "mode"),
        ([1, 2], "body"),
    ],
)
async def test_bad_operation_input_is_400_naming_the_field(body: object, field: str) -> None:
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        status, reply, _ = await c.post("/api/operation", body)
        assert status == 400 and reply["code"] == 400
        assert field in reply["error"] or field in reply["message"]


async def test_malformed_json_is_400() -> None:
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        status, reply, _ = await c.post("/api/operation", raw=b"{not json")
        assert status == 400 and set(reply) == {"code", "error", "message"}


async def test_wizard_settings_change_state() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        assert (await c.post("/api/site_info/site_name", {"site_name": "Cabin"}))[0] == 200
        assert (await c.post("/api/site_info/timezone", {"timezone": "Europe/Berlin"}))[0] == 200
        assert (await c.post("/api/site_info/timezone", {"timezone": "Mars/Base"}))[0] == 400
        assert (await c.get("/api/site_info/site_name"))[1] == {
            "site_name": "Cabin",
            "timezone": "Europe/Berlin",
        }
        _, agg, _ = await c.get("/api/meters/aggregates")
        assert agg["site"]["last_communication_time"].endswith("+02:00")
        new = {"network_name": "Garage", "interface": "WifiType", "security_type": "WPA2_Personal"}
        assert (await c.post("/api/networks", new))[0] == 200
        names = [n["network_name"] for n in (await c.get("/api/networks"))[1]]
        assert "Garage" in names
        status, _, _ = await c.request("DELETE", "/api/networks", body={"network_name": "Garage"})
        assert status == 200
        assert "Garage" not in [n["network_name"] for n in (await c.get("/api/networks"))[1]]
        old = sim.password
        status, body, _ = await c.post(
            "/api/password/change",
            {"old_password": old, "new_password": "n3w-secret", "toggled_pw": False},
        )
        assert (status, body) == (200, {"password": "n3w-secret"})
        assert (await c.post("/api/login/Basic", {"username": "customer", "password": old}))[
            0
        ] == 401
        await c.login("n3w-secret")
        serial = sim.gateway.meter_serials["synchrometerX"]
        cts = [
            {
                "type": "site",
                "valid": [True, False, False, False],
                "inverted": [False, True, False, False],
            }
        ]
        assert (await c.post(f"/api/meters/{serial}/cts", cts))[0] == 200
        got = (await c.get(f"/api/meters/{serial}/cts"))[1]
        assert got[0]["valid"] == [True, False, False, False]
        assert (await c.post(f"/api/meters/{serial}/cts", [{"type": "x"}]))[0] == 400
        legal = {
            "marketing": False,
            "privacy_notice": True,
            "limited_warranty": True,
            "grid_services": False,
        }
        assert (await c.post("/api/customer/registration/legal", legal))[0] == 200
        reg = (await c.get("/api/customer/registration"))[1]
        assert reg["marketing"] is False and reg["registered"] is True


async def test_conn_tests_testing_and_update_move_with_simulated_time() -> None:
    async with simulator() as sim, client(sim) as c:
        await c.login()
        idle = (await c.get("/api/system/networks/conn_tests"))[1]
        assert idle["checks"][0]["status"] == "not_run"
        assert (await c.post("/api/system/networks/conn_tests"))[0] == 200
        running = (await c.get("/api/system/networks/conn_tests"))[1]
        assert running["checks"][0]["status"] == "running"
        await sim.advance(6)
        done = (await c.get("/api/system/networks/conn_tests"))[1]
        assert [ch["status"] for ch in done["checks"]] == ["pass", "pass", "pass"]

        assert (await c.post("/api/system/testing/PINV_TEST"))[0] == 202
        assert (await c.get("/api/system/testing"))[1]["running"] is True
        await sim.advance(11)
        result = (await c.get("/api/system/testing"))[1]
        assert (result["running"], result["status"]) == (False, "TestPassed")
        assert result["charge_tests"] == [0, -1000, -2000, -1000, 0]

        # No newer firmware offered: the check ends "update_failed / nonactionable" (spec 001:
        # already up to date). tests/sim/test_server_update.py walks a real update.
        states = []
        assert (await c.post("/api/system/update"))[0] == 202
        for _ in range(2):
            states.append((await c.get("/api/system/update/status"))[1]["state"])
            await sim.advance(5)
        assert states == ["/clear_update_status", "/update_failed"]
        status = (await c.get("/api/system/update/status"))[1]
        assert status["info"] == {"status": ["nonactionable"]}


@pytest.mark.parametrize("force_sm_off", [False, True])
async def test_legacy_firmware_open_reads_engineer_token_and_login_stops_sitemaster(
    force_sm_off: bool,
) -> None:
    async with simulator(firmware="1.40") as sim, client(sim) as c:
        assert sim.password == "S" + sim.gateway.gateway_serial
        status, agg, _ = await c.get("/api/meters/aggregates")
        assert status == 200 and {"busway", "frequency", "generator"} <= set(agg)
        login = {"username": "", "password": sim.password, "force_sm_off": force_sm_off}
        status, body, _ = await c.post("/api/login/Basic", login)
        assert status == 200 and body["roles"] == ["Provider_Engineer"]
        assert body["email"] is None and "loginTime" not in body
        assert not list(c.session.cookie_jar)
        assert set((await c.get("/api/sitemaster"))[1]) == {
            "running",
            "uptime",
            "connected_to_tesla",
        }
        assert (await c.get("/api/sitemaster"))[1]["running"] is False
        assert (await c.get("/api/meters/aggregates"))[0] == 502
        auth = {"Authorization": f"Bearer {body['token']}"}
        assert (await c.get("/api/sitemaster/run"))[0] == 401  # the token is needed
        assert (await c.get("/api/sitemaster/run", headers=auth))[0] == 202
        assert (await c.get("/api/sitemaster"))[1]["running"] is True
        status, _, _ = await c.post("/api/operation", {"mode": "backup"}, headers=auth)
        assert status == 200
        assert (await c.get("/api/config/completed", headers=auth))[0] == 202
        assert (await c.get("/api/operation", headers=auth))[1]["mode"] == "backup"
        assert isinstance((await c.get("/api/site_info"))[1]["grid_code"], str)


async def test_evening_outage_is_served_from_its_exact_time_and_restores() -> None:
    outage_sim = Simulator(scenario="evening-outage", speed=0, session_lifetime_s=86400)
    async with outage_sim as sim, client(sim) as c:
        assert sim.scenario is not None
        outage = next(e for e in sim.scenario.events if e.action == "outage")
        restore = next(e for e in sim.scenario.events if e.action == "restore")
        await c.login()
        await sim.advance((outage.at - sim.now).total_seconds() - 1)
        assert await grid(c) == "SystemGridConnected"
        await sim.advance(1)
        assert sim.now == outage.at
        assert await grid(c) == "SystemIslandedActive"
        agg = (await c.get("/api/meters/aggregates"))[1]
        assert agg["site"]["instant_power"] == 0
        assert agg["battery"]["instant_power"] > 0  # the Powerwalls carry the home
        assert agg["load"]["instant_power"] == pytest.approx(
            agg["battery"]["instant_power"] + agg["solar"]["instant_power"], abs=0.05
        )
        await sim.advance((restore.at - sim.now).total_seconds())
        assert await grid(c) == "SystemTransitionToGrid"
        await sim.advance(30)
        assert await grid(c) == "SystemGridConnected"


async def grid(c: Client) -> str:
    status, body, _ = await c.get("/api/system_status/grid_status")
    assert status == 200
    return str(body["grid_status"])
