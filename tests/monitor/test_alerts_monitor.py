"""Alerts in a running Monitor polling the simulator: the simulator's control API causes the
condition (outage, stopped sitemaster, dropped requests), a real local webhook receiver
checks what is delivered, and /api/alerts lists it. The monitor runs on the simulator's
clock, so "unreachable for 5 minutes" is five simulated minutes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from monitor_helpers import first_reading, sim_clock, target
from tests.sim.gateway_sim_helpers import Client, client, simulator
from webhook_receiver import SECRET, Receiver, webhook_receiver

from tegkit.monitor.alerts import FIRMWARE_OPEN_S, AlertConfig, AlertRule, Webhook
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import Monitor

FAST = PollerConfig(
    fast_interval_s=0.2,
    slow_interval_s=1.0,
    budget_per_minute=1000,
    flush_interval_s=0.5,
    batch_size=5,
    max_backoff_s=0.4,
    max_probe_interval_s=0.4,
)


@asynccontextmanager
async def watched(
    rules: tuple[AlertRule, ...], password: str | None = None
) -> AsyncIterator[tuple[Monitor, Client, Receiver, aiohttp.ClientSession]]:
    """A monitor of one simulated gateway with `rules`, its webhook the local receiver;
    with a `password` (a wrong one), no first reading is waited for."""
    async with (
        simulator() as sim,
        webhook_receiver() as receiver,
        client(sim) as control,
        aiohttp.ClientSession() as http,
    ):
        alerts = AlertConfig(rules=rules, webhooks=(Webhook("ops", receiver.url, SECRET),))
        settings = target(sim)
        if password is not None:
            settings = dataclasses.replace(settings, password=password)
        gateway = FleetGateway(settings, FAST, labels={"region": "west"})
        monitor = Monitor(
            gateways=[gateway],
            listen=("127.0.0.1", 0),
            clock=sim_clock(sim),
            stale_after_s=120.0,
            tz=dt.UTC,
            alerts=alerts,
        )
        monitor.alert_book.tick_s = 0.05
        async with monitor:
            if password is None:
                await first_reading(monitor)
            yield monitor, control, receiver, http


async def api_alerts(http: aiohttp.ClientSession, monitor: Monitor, query: str = "") -> Any:
    async with http.get(monitor.url + "api/alerts" + query) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def until(pred: Callable[[], bool]) -> None:
    """Until pred() holds, looking every 20 ms, for at most 30 s (a deadline, not a sleep)."""
    for _ in range(1500):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


def delivered(kind: str, state: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: any(g["body"]["kind"] == kind and g["body"]["state"] == state for g in got)


async def test_an_outage_opens_and_resolves_grid_outage() -> None:
    async with watched((AlertRule("grid_outage"),)) as (monitor, control, receiver, http):
        assert (await api_alerts(http, monitor))["alerts"] == []
        assert (await control.control("POST", "/outage", {}))[0] == 200
        await receiver.wait_until(delivered("grid_outage", "open"))
        doc = await api_alerts(http, monitor, "?state=open&gateway=home")
        [alert] = doc["alerts"]
        assert doc["open"] == 1
        assert (alert["kind"], alert["gateway"], alert["state"]) == ("grid_outage", "home", "open")
        assert alert["labels"] == {"region": "west"} and alert["resolved_at"] is None
        assert monitor.alert_book.open_count("home") == 1
        async with http.get(monitor.url + "api/fleet") as response:  # the fleet page's count
            assert response.status == 200
        assert (await control.control("DELETE", "/outage"))[0] == 200
        # the gateway resynchronises (still off grid) for 30 simulated seconds
        assert (await control.control("POST", "/advance", {"seconds": 31}))[0] == 200
        await receiver.wait_until(delivered("grid_outage", "resolved"))
        [resolved] = (await api_alerts(http, monitor, "?state=resolved"))["alerts"]
        assert resolved["id"] == alert["id"] and resolved["resolved_at"] is not None
        assert (await api_alerts(http, monitor, "?state=open"))["alerts"] == []
    # each (id, state) delivered once, each signature good
    assert all(g["valid"] for g in receiver.got)
    assert sorted(g["delivery"] for g in receiver.got) == [
        f"{alert['id']}:open",
        f"{alert['id']}:resolved",
    ]


async def test_a_stopped_sitemaster_opens_system_stopped_until_it_runs() -> None:
    rules = (AlertRule("system_stopped"), AlertRule("unreachable", minutes=1))
    async with watched(rules) as (monitor, control, receiver, http):
        assert (await control.control("POST", "/sitemaster", {"running": False}))[0] == 200
        await receiver.wait_until(delivered("system_stopped", "open"))
        [alert] = (await api_alerts(http, monitor))["alerts"]
        assert alert["kind"] == "system_stopped" and "stopped" in alert["detail"]
        assert (await control.control("POST", "/sitemaster", {"running": True}))[0] == 200
        await receiver.wait_until(delivered("system_stopped", "resolved"))
        await until(lambda: not monitor.alert_book.alerts(state="open"))
    # the gateway answered (502) all along: never unreachable
    assert {g["body"]["kind"] for g in receiver.got} == {"system_stopped"}
    assert all(g["valid"] for g in receiver.got) and len(receiver.got) == 2


async def test_unreachable_for_five_simulated_minutes() -> None:
    rule = AlertRule("unreachable", minutes=5, labels={"region": "west"})
    async with watched((rule,)) as (monitor, control, receiver, http):
        sim = control.sim
        status, _ = await control.control(
            "POST", "/faults", {"kind": "drop", "count": 1_000_000, "path_prefix": "/api/"}
        )
        assert status == 200
        live = monitor.live.get("home")
        assert live is not None
        await until(lambda: live.problem == "unreachable")
        since_s = live.problem_since
        assert since_s is not None
        await sim.advance(299)  # not yet five minutes since the problem began
        assert monitor.alert_book.evaluate() == []
        assert (await api_alerts(http, monitor))["alerts"] == []
        await sim.advance(1)
        await receiver.wait_until(delivered("unreachable", "open"))
        [alert] = (await api_alerts(http, monitor, "?gateway=home"))["alerts"]
        assert alert["kind"] == "unreachable"
        assert alert["since"] == dt.datetime.fromtimestamp(since_s, dt.UTC).isoformat().replace(
            "+00:00", "Z"
        )
        assert (await control.control("DELETE", "/faults"))[0] == 200
        await receiver.wait_until(delivered("unreachable", "resolved"))
    assert [g["body"]["state"] for g in receiver.got] == ["open", "resolved"]
    assert all(g["valid"] for g in receiver.got)


async def test_api_alerts_refuses_unknown_filters() -> None:
    async with watched((AlertRule("grid_outage"),)) as (monitor, _, _receiver, http):
        for query, parameter in (("?state=closed", "state"), ("?gateway=nobody", "gateway")):
            async with http.get(monitor.url + "api/alerts" + query) as response:
                assert response.status == 400
                body = await response.json()
                assert body["parameter"] == parameter and body["allowed"]


async def test_close_with_a_webhook_that_hangs_drops_it_after_the_grace() -> None:
    async with watched((AlertRule("grid_outage"),)) as (monitor, control, receiver, _):
        receiver.script = ["hang"]
        await control.control("POST", "/outage", {})
        await receiver.wait_for(1)
        assert monitor.alert_book.sender.pending() == 1
    # the monitor closed (its grace spent on the hanging request) and the pending was dropped
    assert monitor.alert_book.sender.pending() == 0
    assert monitor.alert_book.sender.counters.dropped_total == 1


async def test_a_refused_password_opens_auth_failing_until_the_right_one() -> None:
    rule = AlertRule("auth_failing")
    async with watched((rule,), password="not-the-password") as (monitor, control, receiver, _):
        await receiver.wait_until(delivered("auth_failing", "open"))
        [alert] = monitor.alert_book.alerts(state="open")
        assert "not-the-password" not in alert.detail
        # the fleet file fixed: the gateway's poller restarts with the right password
        await monitor.set_gateways([FleetGateway(target(control.sim), FAST)])
        await receiver.wait_until(delivered("auth_failing", "resolved"))
    assert [g["body"]["state"] for g in receiver.got] == ["open", "resolved"]
    assert all(g["valid"] for g in receiver.got)
    assert all("not-the-password" not in g["raw"].decode() for g in receiver.got)


async def test_a_firmware_update_opens_firmware_changed_which_resolves_itself() -> None:
    async with watched((AlertRule("firmware_changed"),)) as (monitor, control, receiver, http):
        live = monitor.live.get("home")
        assert live is not None
        await until(lambda: live.version is not None)
        before = live.version
        monitor.alert_book.evaluate()  # the version seen first is the baseline
        status, _ = await control.control("POST", "/update", {"version": "23.44", "start": True})
        assert status == 200
        await control.control("POST", "/advance", {"seconds": 3 * 3600})  # the whole update
        await receiver.wait_until(delivered("firmware_changed", "open"))
        [alert] = (await api_alerts(http, monitor, "?state=open"))["alerts"]
        assert alert["detail"].startswith(f"{before} -> ") and live.version != before
        await control.control("POST", "/advance", {"seconds": FIRMWARE_OPEN_S})
        await receiver.wait_until(delivered("firmware_changed", "resolved"))
    assert [g["body"]["state"] for g in receiver.got] == ["open", "resolved"]
