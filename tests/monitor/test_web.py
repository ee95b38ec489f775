"""The monitor's HTTP API against the simulator: live, stream, history, health, controls."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import time
from pathlib import Path

import aiohttp
import pytest
from gateway_double import gateway_double
from monitor_helpers import first_reading, live_monitor

from tegkit import percent
from tegkit.models.vocabulary import (
    COUNTERS,
    CUSTOMER_MODES,
    GRID_STATUS_LABELS,
    MODE_LABELS,
    POWER_NAMES,
    GridStatusValue,
    MeterName,
    OperationMode,
    is_off_grid,
)
from tegkit.monitor.poller import GatewayTarget, PollerConfig
from tegkit.monitor.readings import Reading, RetentionPolicy
from tegkit.monitor.service import Monitor
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator

TOKEN = "correct-horse-battery"


async def _wait(pred: object, polls: int = 300) -> None:
    """Until pred() (or the awaitable it returns) is true, looking every 50 ms."""
    for _ in range(polls):
        held = pred()  # type: ignore[operator]
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_live_history_outages_and_health(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=60) as sim,
        live_monitor(sim, tmp_path / "m.db") as monitor,
        aiohttp.ClientSession() as http,
    ):
        await first_reading(monitor)
        async with http.get(monitor.url + "api/live") as r:
            live = await r.json()
        [entry] = live["gateways"]
        assert entry["gateway"] == "home" and entry["status"] == "ok"
        assert entry["freshness_s"] >= 0 and entry["taken_at"] <= live["now"]
        soe = entry["soe"]
        assert soe["app_percent"] == pytest.approx(percent.raw_to_app(soe["raw_percent"]), abs=0.01)
        assert entry["backup_reserve"]["raw_percent"] == pytest.approx(24.0)
        assert entry["mode"] == "self_consumption"
        assert live["control"] is False

        async with http.get(monitor.url + "healthz") as r:
            assert r.status == 200

        await _wait(lambda: monitor.pollers["home"].gateway.counters.total_requests() > 40)
        await monitor.pollers["home"].flush()
        async with http.get(monitor.url + "api/history", params={"step": "1"}) as r:
            hist = await r.json()
        assert len(hist["t"]) <= 2000 and len(hist["t"]) == len(hist["load_w"])
        assert any(v is not None for v in hist["load_w"])
        for days in (7, 31, 366, 3 * 366):  # the dashboard's week, month, year, and more
            since = str(live["now"] - days * 86400)
            async with http.get(monitor.url + "api/history", params={"from": since}) as r:
                longer = await r.json()
            series = [longer[k] for k in ("t", "site_w", "load_w", "soe_app_percent")]
            assert 0 < len(longer["t"]) <= 2000 and len({len(s) for s in series}) == 1, days
            assert longer["source"] != "raw", days  # long ranges come from rollups
            assert any(v is not None for v in longer["load_w"]), days
        async with http.get(monitor.url + "api/outages") as r:
            assert (await r.json())["outages"] == []

        sim.stop_sitemaster()
        await _wait(lambda: monitor.live.gateways()[0].problem == "stopped")
        async with http.get(monitor.url + "healthz") as r:
            assert r.status == 503
            body = await r.json()
        assert body["gateways"][0]["status"] == "stopped"
        assert "stopped" in body["gateways"][0]["reason"]
        stopped_since = monitor.live.gateways()[0].problem_since
        assert stopped_since is not None
        # a simulated half minute stopped (the simulator's clock moves in ticks)
        await _wait(lambda: sim.now_s > stopped_since + 30)
        sim.run_sitemaster()
        await _wait(lambda: monitor.live.gateways()[0].problem is None, polls=600)
        async with http.get(monitor.url + "healthz") as r:
            assert r.status == 200
        # the stopped spell is a gap with its reason, in /api/gaps and in the history
        async with http.get(monitor.url + "api/gaps") as r:
            [gap] = (await r.json())["gaps"]
        assert gap["reason"] == "system stopped"
        assert gap["start"] == pytest.approx(stopped_since, abs=0.001)  # stored to 1 ms
        assert gap["end"] > stopped_since + 30
        assert gap["duration_s"] == pytest.approx(gap["end"] - gap["start"])
        async with http.get(monitor.url + "api/history") as r:
            hist = await r.json()
        assert hist["gaps"] == [{k: gap[k] for k in ("start", "end", "reason")}]

        await sim.close()  # the gateway is gone
        await _wait(lambda: monitor.live.gateways()[0].problem == "unreachable", polls=600)
        async with http.get(monitor.url + "healthz") as r:
            assert r.status == 503
            body = await r.json()
        assert body["gateways"][0]["status"] == "unreachable"


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("api/history?gateway=nope", "gateway"),
        ("api/history?from=yesterday", "from"),
        ("api/history?from=200&to=100", "from"),
        ("api/history?step=-5", "step"),
        ("api/history?step=abc", "step"),
        ("api/daily?from=2024-13-01", "from"),
        ("api/daily?from=2024-02-01&to=2024-01-01", "from"),
        ("api/outages?to=nan", "to"),
        ("api/gaps?from=2024-05-01T00:00:00Z&to=2024-04-01T00:00:00Z", "from"),
    ],
)
async def test_bad_parameters_get_400_naming_them(
    tmp_path: Path, path: str, parameter: str
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, tmp_path / "m.db") as monitor,
        aiohttp.ClientSession() as http,
        http.get(monitor.url + path) as r,
    ):
        assert r.status == 400
        body = await r.json()
        assert body["parameter"] == parameter and body["allowed"]


async def test_the_stream_pushes_each_new_reading() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=60) as sim,
        live_monitor(sim, None, clock=time.time) as monitor,
        aiohttp.ClientSession() as http,
    ):
        await first_reading(monitor)
        async with http.get(monitor.url + "api/live/stream") as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            seen: list[float] = []
            async for line in r.content:
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:])["taken_at"])
                if len(seen) == 3:
                    break
        assert seen == sorted(seen) and len(set(seen)) == 3


async def test_without_a_token_the_controls_do_not_exist() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None) as monitor,
        aiohttp.ClientSession() as http,
    ):
        for method, path in [
            ("POST", "login"),
            ("GET", "api/session"),
            ("POST", "api/control/operation"),
        ]:
            async with http.request(method, monitor.url + path, json={"token": TOKEN}) as r:
                assert r.status == 404, path


async def test_controls_need_login_cookie_and_csrf_then_act_through_the_gateway() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        await first_reading(monitor)
        change = {"gateway": "home", "mode": "backup", "backup_reserve_percent": 50, "scale": "app"}
        url = monitor.url + "api/control/operation"
        async with http.post(url, json=change) as r:
            assert r.status == 401
        async with http.post(monitor.url + "login", json={"token": "wrong-token"}) as r:
            assert r.status == 401
        async with http.post(monitor.url + "login", json={"token": TOKEN}) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf_token"]
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with http.post(url, json=change) as r:
            assert r.status == 403  # the cookie alone is not enough
        headers = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        async with http.post(url, json=change, headers=headers) as r:
            assert r.status == 403
        async with http.post(
            url, json={**change, "scale": "percent"}, headers={"X-CSRF-Token": csrf}
        ) as r:
            assert r.status == 400 and (await r.json())["parameter"] == "scale"
        async with http.post(url, json=change, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200, await r.text()
            after = await r.json()
        state = sim.state()
        assert state["mode"] == "backup" == after["mode"]
        assert state["backup_reserve_raw_percent"] == pytest.approx(percent.app_to_raw(50))
        assert after["backup_reserve"]["app_percent"] == pytest.approx(50, abs=0.01)
        async with http.get(monitor.url + "api/live") as r:
            assert (await r.json())["gateways"][0]["mode"] == "backup"


async def test_bad_login_and_control_bodies_get_400_naming_the_field() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        login = monitor.url + "login"
        for kwargs, field in [
            ({"json": {"token": 5}}, "token"),
            ({"json": ["correct-horse-battery"]}, "token"),
            ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "body"),
            ({"data": {"password": TOKEN}}, "token"),
        ]:
            async with http.post(login, **kwargs) as r:  # type: ignore[arg-type]
                assert r.status == 400, kwargs
                assert (await r.json())["parameter"] == field
        async with http.post(login, json={"token": TOKEN}) as r:
            assert r.status == 200  # malformed attempts are not failed logins: no lockout
            headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
        url = monitor.url + "api/control/operation"
        long_list = list(range(10_000))
        for body, field in [
            (long_list, "body"),
            ({"mode": "turbo"}, "mode"),
            ({"mode": ["backup"]}, "mode"),
            ({"gateway": "nope", "mode": "backup"}, "gateway"),
            ({"gateway": 7, "mode": "backup"}, "gateway"),
            ({"backup_reserve_percent": "50", "scale": "app"}, "backup_reserve_percent"),
            ({"backup_reserve_percent": True, "scale": "app"}, "backup_reserve_percent"),
            ({"backup_reserve_percent": 150, "scale": "app"}, "backup_reserve_percent"),
            ({"backup_reserve_percent": 50}, "scale"),
            ({}, "mode"),
        ]:
            async with http.post(url, json=body, headers=headers) as r:
                assert r.status == 400, body
                doc = await r.json()
            assert doc["parameter"] == field and doc["allowed"], body
            assert len(doc["error"]) < 300  # a refused value is not echoed whole
        async with http.post(url, data=b"{", headers=headers) as r:
            assert r.status == 400 and (await r.json())["parameter"] == "body"
        assert sim.state()["mode"] == "self_consumption"  # nothing reached the gateway


async def test_the_running_monitor_applies_its_retention_policy(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        now = sim.now_s
        store = open_store(db)
        try:  # a reading from five days ago, another from yesterday
            store.write_readings(
                [Reading(gateway="home", taken_at=now - d * 86400, load_w=500.0) for d in (5, 1)]
            )
        finally:
            store.close()
        keep_two_days = RetentionPolicy(raw_days=2, minute_days=3)
        async with live_monitor(sim, db, retention=keep_two_days) as monitor:
            assert monitor.store is not None
            store = monitor.store  # through its async facade, as the web API reads it

            async def old_gone() -> bool:
                return not await store.readings("home", now - 6 * 86400, now - 4 * 86400)

            await _wait(old_gone)
            kept = await store.readings("home", now - 2 * 86400, now - 3600)
            assert [r.taken_at for r in kept] == [now - 86400]


async def test_the_vocabulary_is_the_models_public_and_cacheable() -> None:
    """/api/vocabulary says what tegkit.models.vocabulary says, to anyone the monitor
    answers (no login, even with controls), with a tag that spares a second download."""
    expected = {
        "grid_statuses": [
            {"value": str(s), "label": GRID_STATUS_LABELS[s], "off_grid": is_off_grid(s)}
            for s in GridStatusValue
        ],
        "modes": [
            {"value": str(m), "label": MODE_LABELS[m], "customer": m in CUSTOMER_MODES}
            for m in [*CUSTOMER_MODES, OperationMode.SCHEDULER]
        ],
        "meters": [{"name": str(m), "power": f"{m}_w"} for m in MeterName],
        "counters": [
            {"name": c.name, "meter": str(c.meter), "direction": c.direction, "meaning": c.meaning}
            for c in COUNTERS
        ],
    }
    assert [m["power"] for m in expected["meters"]] == list(POWER_NAMES)
    assert {m["value"] for m in expected["modes"]} == set(OperationMode)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession() as http,
    ):
        url = monitor.url + "api/vocabulary"
        async with http.get(url) as r:
            assert r.status == 200 and r.content_type == "application/json"
            assert await r.json() == expected
            etag = r.headers["ETag"]
            assert r.headers["Cache-Control"] == "max-age=300"
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(url, headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b""
            assert r.headers["ETag"] == etag
        async with http.get(url, headers={"If-None-Match": "*"}) as r:
            assert r.status == 304
        for other in ('"another"', 'W/"x", garbage,, "', "\u00e9t\u00e9"):
            async with http.get(url, headers={"If-None-Match": other}) as r:
                assert r.status == 200 and await r.json() == expected, other
        # the edge's rules hold here as on every other route
        async with http.get(url, headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        async with http.post(url, json={}) as r:
            assert r.status == 405


async def test_a_spent_request_budget_answers_429_and_nothing_reaches_the_gateway(
    tmp_path: Path,
) -> None:
    """The control goes through the poller's budget: over it, the monitor's own 429 with
    Retry-After, and the gateway (a double counting every request) sees nothing."""
    # room for a change (4 calls x 3 requests) only while nothing else was sent
    config = PollerConfig(jitter_ratio=0.0, budget_per_minute=15)
    async with gateway_double(tmp_path) as double:
        home = GatewayTarget("home", double.url, pin=double.fingerprint)
        monitor = Monitor(
            [home], listen=("127.0.0.1", 0), control_token=TOKEN, config=config, tz=dt.UTC
        )
        await monitor.start(poll=False)
        try:
            assert await monitor.pollers["home"].poll_due()  # spends part of the budget
            hits = sum(double.hits.values())
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(monitor.url + "login", json={"token": TOKEN}) as r:
                    headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
                change = {"gateway": "home", "mode": "backup"}
                url = monitor.url + "api/control/operation"
                async with http.post(url, json=change, headers=headers) as r:
                    assert r.status == 429
                    doc = await r.json()
                    retry_after = int(r.headers["Retry-After"])
            assert 1 <= retry_after <= 60 and 0 < doc["retry_after_s"] <= 60
            assert "budget" in doc["error"] and "HTTP 429" not in doc["error"]
            assert sum(double.hits.values()) == hits
        finally:
            await monitor.close()
