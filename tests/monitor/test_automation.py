"""The owner's plan inside the monitor (teg monitor --plan), against the simulator over HTTPS:
the plan acts through the gateway's one poller and request budget, and every outcome is an
event in the store, a count in /metrics and an entry of /api/automation.

The monitor runs on the simulator's clock (readings, schedule and budget): the test moves
the clock and steps the poller and the plan itself, as the monitor's own loops would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from monitor_helpers import sim_clock, target
from prometheus_client.parser import text_string_to_metric_families

from tegkit import percent
from tegkit.automation.planfile import parse_plan
from tegkit.monitor.automation import GatewayPlan
from tegkit.monitor.demo import demo_cloud
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.sim import Simulator

LA = ZoneInfo("America/Los_Angeles")
# sunny-day starts at 05:00 site time; the evening rule is first due at 05:10
PLAN = """
name = "test-plan"
timezone = "America/Los_Angeles"

[[rules]]
name = "morning"
at = "05:20"
mode = "self_consumption"
backup_reserve_percent = 5

[[rules]]
name = "evening"
at = "05:10"
mode = "backup"
backup_reserve_percent = 100
"""
STEP_S = 10.0
# a schedule that needs 22 requests a minute, beside a plan inside a budget of 40
CONFIG = PollerConfig(
    fast_interval_s=STEP_S,
    slow_interval_s=60.0,
    jitter_ratio=0.0,
    budget_per_minute=40,
    batch_size=1,
)


class SimRequests:
    """Every local API request the simulator receives, with its simulated time."""

    def __init__(self, sim: Simulator) -> None:
        self.times_s: list[float] = []
        decide = sim.faults.decide

        def counted(path: str) -> Any:
            self.times_s.append(sim.now_s)
            return decide(path)

        sim.faults.decide = counted  # type: ignore[method-assign]

    def most_in_a_minute(self) -> int:
        return max(
            (sum(1 for t in self.times_s if t0 <= t < t0 + 60.0) for t0 in self.times_s),
            default=0,
        )


@asynccontextmanager
async def planned_monitor(
    sim: Simulator,
    tmp_path: Path,
    plan_text: str = PLAN,
    gateway: GatewayTarget | None = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[Monitor, GatewayPlan]]:
    """A monitor of `sim` with the plan, on the sim's clock, started without its loops."""
    clock = sim_clock(sim)
    monitor = Monitor(
        [gateway or target(sim)],
        db=tmp_path / "m.db",
        listen=("127.0.0.1", 0),
        tz=LA,
        config=CONFIG,
        clock=clock,
        monotonic=clock,
        stale_after_s=3 * STEP_S,
        plans={"home": parse_plan(plan_text)},
        **kwargs,
    )
    await monitor.start(poll=False)
    try:
        yield monitor, monitor.running_plans["home"]
    finally:
        await monitor.close()


async def step(sim: Simulator, monitor: Monitor, plan: GatewayPlan, seconds: float) -> None:
    """Move the clock by `seconds` in poller steps: each step polls, then ticks the plan."""
    poller = monitor.pollers["home"]
    if plan.runner is None:  # as GatewayPlan.run: the runner starts once the zone is known
        await poller.poll_due()
        await plan.recall()
        assert plan.start()
    end = sim.now_s + seconds
    while sim.now_s < end:
        await sim.advance(min(STEP_S, end - sim.now_s))
        await poller.poll_due()
        await plan.tick()


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as r:
        assert r.status == 200, await r.text()
        if r.content_type == "application/json":
            return await r.json()
        return await r.text()


def local(t: float) -> str:
    return dt.datetime.fromtimestamp(t, LA).strftime("%H:%M")


async def test_the_plan_acts_on_time_within_the_budget_and_says_so(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        requests = SimRequests(sim)
        gw = sim.gateway
        since = sim.now_s - 60
        await step(sim, monitor, plan, 8 * 60)  # 05:08: only the catch-up so far
        assert gw.mode == "self_consumption"
        assert gw.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(5), abs=0.05)
        await step(sim, monitor, plan, 4 * 60)  # 05:12: evening is done
        assert gw.mode == "backup"
        assert gw.backup_reserve_raw_percent == pytest.approx(100.0)
        await step(sim, monitor, plan, 10 * 60)  # 05:22: morning again
        assert gw.mode == "self_consumption"

        events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
        ran = [
            (local(e["at"]), e["rule"], e["result"]) for e in events if e["kind"] == "automation"
        ]
        # the catch-up at start (morning was last in force), then each rule at its time
        assert ran == [
            ("05:00", "morning", "done"),
            ("05:10", "evening", "done"),
            ("05:20", "morning", "done"),
        ]
        done = [e for e in events if e["kind"] == "automation"]
        # only what was not in force is sent (the mode was already self_consumption)
        assert [e["detail"].split(";")[0] for e in done] == [
            "set reserve 5 %",
            "set mode backup, reserve 100 %",
            "set mode self_consumption, reserve 5 %",
        ]
        assert all("read back" in e["detail"] for e in done)

        text = await get(http, monitor.url + "metrics")
        counts = {
            (s.labels["rule"], s.labels["result"]): s.value
            for family in text_string_to_metric_families(text)
            if family.name == "tegkit_automation_actions"
            for s in family.samples
            if s.name == "tegkit_automation_actions_total" and s.labels["gateway"] == "home"
        }
        assert counts[("morning", "done")] == 2 and counts[("evening", "done")] == 1
        assert counts[("evening", "failed")] == 0
        assert {rule for rule, _ in counts} == {"morning", "evening"}  # the plan's rules only

        doc = await get(http, monitor.url + "api/automation?gateway=home&count=4")
        p = doc["plan"]
        assert p["name"] == "test-plan" and p["tz"] == "America/Los_Angeles"
        assert [r["name"] for r in p["rules"]] == ["morning", "evening"]
        assert [r["when"] for r in p["rules"]] == ["at 05:20", "at 05:10"]
        nxt = [(a["at_local"], a["rule"]) for a in p["next"]]
        assert nxt == [
            ("2024-06-22T05:10:00-07:00", "evening"),
            ("2024-06-22T05:20:00-07:00", "morning"),
            ("2024-06-23T05:10:00-07:00", "evening"),
            ("2024-06-23T05:20:00-07:00", "morning"),
        ]
        assert p["next"][0]["what"] == "set mode backup only and backup reserve 100 %"
        assert [(o["rule"], o["result"]) for o in p["outcomes"]] == [
            ("morning", "done"),
            ("evening", "done"),
            ("morning", "done"),
        ]
        # one poller, one budget: the plan's requests fit in it with the polls'
        assert requests.times_s, "the simulator saw no request"
        assert requests.most_in_a_minute() <= CONFIG.budget_per_minute
        assert len(requests.times_s) == monitor.pollers["home"].requests_sent


async def test_without_a_plan_the_automation_api_says_so(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        aiohttp.ClientSession() as http,
    ):
        monitor = Monitor([target(sim)], listen=("127.0.0.1", 0), clock=sim_clock(sim))
        async with monitor:
            assert await get(http, monitor.url + "api/automation") == {
                "gateway": "home",
                "plan": None,
            }
            text = await get(http, monitor.url + "metrics")
            assert "tegkit_automation" not in text
            for bad in ("0", "51", "²", "1" * 5000, "-1"):
                async with http.get(monitor.url + "api/automation", params={"count": bad}) as r:
                    assert r.status == 400 and "count" in (await r.json())["error"], bad


# --- the monitor's own loops ----------------------------------------------------------------

ZONELESS = """
name = "follows-the-gateway"

[[rules]]
name = "reserve"
at = "04:00"
backup_reserve_percent = 35
"""


async def wait_for(condition: Any, what: str, polls: int = 600) -> None:
    """Until `condition()` holds (checked every 50 ms, at most 30 s): never a fixed sleep."""
    import asyncio

    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_the_monitors_loops_start_the_plan_in_the_gateways_zone(tmp_path: Path) -> None:
    # a plan without a zone waits for the gateway's (site_info, read by the slow poll),
    # then catches up: the 04:00 rule is in force at 05:00
    async with Simulator(
        port=0, scenario="sunny-day", speed=0, allow_customer_operation=True
    ) as sim:
        monitor = Monitor(
            [target(sim)],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            config=PollerConfig(fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000),
            clock=sim_clock(sim),
            stale_after_s=120.0,
            plans={"home": parse_plan(ZONELESS)},
        )
        async with monitor, aiohttp.ClientSession() as http:
            plan = monitor.running_plans["home"]
            await wait_for(lambda: plan.counts[("reserve", "done")] == 1, "the catch-up")
            assert plan.tz_source() == "gateway" and plan.tz() == LA
            reserve = sim.gateway.backup_reserve_raw_percent
            assert reserve == pytest.approx(percent.app_to_raw(35), abs=0.05)
            doc = (await get(http, monitor.url + "api/automation"))["plan"]
            assert doc["tz"] == "America/Los_Angeles" and doc["tz_source"] == "gateway"
            assert doc["running"] is True
            assert doc["next"][0]["at_local"] == "2024-06-22T04:00:00-07:00"
            [outcome] = doc["outcomes"]
            assert outcome["result"] == "done" and outcome["at_local"].startswith("2024-06-21T05")


async def test_the_monitors_loops_act_on_the_first_reading_not_before_it(tmp_path: Path) -> None:
    # a plan with its own zone could start at once: it waits for the poller's first answer,
    # so starting is not reported as "refused: no reading yet"
    async with Simulator(
        port=0, scenario="sunny-day", speed=0, allow_customer_operation=True
    ) as sim:
        monitor = Monitor(
            [target(sim)],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            config=PollerConfig(fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000),
            clock=sim_clock(sim),
            stale_after_s=120.0,
            plans={"home": parse_plan(PLAN)},
        )
        async with monitor:
            plan = monitor.running_plans["home"]
            await wait_for(lambda: plan.counts[("morning", "done")] == 1, "the catch-up")
            assert [(e.rule, e.result) for e in plan.recent] == [("morning", "done")]


async def test_a_change_that_never_takes_fails_with_a_warning_and_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # grid charging exists only in Tesla's cloud, and this monitor has none for the gateway
    plan_text = PLAN.replace("backup_reserve_percent = 100", "grid_charging = true")
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path, plan_text) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        since = sim.now_s - 60
        caplog.set_level("INFO")
        await step(sim, monitor, plan, 12 * 60)
        assert sim.gateway.mode == "self_consumption"  # nothing half-done: no mode alone
        events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
        failed = [e for e in events if e.get("result") == "failed"]
        # at start (catching up on yesterday's evening) and at 05:10: never tried again,
        # since no try can succeed without a cloud
        assert [(e["rule"], local(e["at"])) for e in failed] == [
            ("evening", "05:00"),
            ("evening", "05:10"),
        ]
        for e in failed:
            assert "Tesla's cloud" in e["detail"] and "teg cloud token import" in e["detail"]
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len([w for w in warnings if "'evening': failed" in w]) == 2
        text = await get(http, monitor.url + "metrics")
        assert (
            'tegkit_automation_actions_total{gateway="home",result="failed",rule="evening"} 2.0'
            in text
        )


async def test_a_busy_gateway_is_tried_again_and_the_retry_is_an_event(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        since = sim.now_s - 60
        await step(sim, monitor, plan, 9 * 60 + 50)  # 05:09:50, the catch-up done
        await sim.advance(STEP_S)  # 05:10: the poll first, as always
        await monitor.pollers["home"].poll_due()
        # then the plan's first request (its read of the operation) gets a 503
        await sim.inject_fault("status", status=503, count=1, path_prefix="/api/operation")
        await plan.tick()
        await step(sim, monitor, plan, 15 * 60)
        assert sim.gateway.mode == "self_consumption"  # 05:24: evening, then morning
        events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
        ran = [(e["rule"], e["result"]) for e in events if e["kind"] == "automation"]
        assert ran[:3] == [("morning", "done"), ("evening", "retry"), ("evening", "done")]
        [retry] = [e for e in events if e.get("result") == "retry"]
        assert local(retry["at"]) == "05:10" and "trying again in" in retry["detail"]
        assert ran[3:] == [("morning", "done")]


async def test_a_dry_run_says_what_it_would_do_and_changes_nothing(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path, plan_dry_run=True) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        before = (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent)
        commits = sim.gateway.settings.commission_count
        await step(sim, monitor, plan, 12 * 60)
        assert (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent) == before
        assert sim.gateway.settings.commission_count == commits
        doc = (await get(http, monitor.url + "api/automation"))["plan"]
        assert doc["dry_run"] is True
        assert [(o["rule"], o["result"], o["detail"]) for o in doc["outcomes"]] == [
            ("evening", "dry_run", "would set mode backup, reserve 100 %"),
            ("morning", "dry_run", "would set reserve 5 %"),
        ]


CLOUDY = """
name = "cloudy"
timezone = "America/Los_Angeles"

[[rules]]
name = "storm coming"
at = "05:10"
mode = "backup"
backup_reserve_percent = 100
grid_charging = false
storm_watch = true
"""


async def test_on_21_44_the_plan_goes_through_the_monitors_cloud(tmp_path: Path) -> None:
    # a gateway that refuses a customer's local change, and the cloud the dashboard uses:
    # mode and reserve go through it and are read back locally; grid charging and storm
    # watch exist only there
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        gateway = dataclasses.replace(target(sim), cloud=await demo_cloud(sim, tmp_path))
        async with (
            planned_monitor(sim, tmp_path, CLOUDY, gateway) as (monitor, plan),
            aiohttp.ClientSession() as http,
        ):
            since = sim.now_s - 60
            commits = sim.gateway.settings.commission_count
            site = sim.gateway.site
            assert site.storm_watch is False and site.grid_charging_allowed is True
            await step(sim, monitor, plan, 11 * 60)
            gw = sim.gateway
            assert gw.mode == "backup" and gw.backup_reserve_raw_percent == pytest.approx(100)
            assert gw.settings.commission_count == commits  # no local POST got through
            assert gw.site.storm_watch is True and gw.site.grid_charging_allowed is False
            events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
            ran = [e for e in events if e["kind"] == "automation"]
            # at start, yesterday's 05:10 is in force: it is caught up; at 05:10, in force
            assert [(local(e["at"]), e["result"]) for e in ran] == [
                ("05:00", "done"),
                ("05:10", "skipped"),
            ]
            assert "through Tesla's cloud" in ran[0]["detail"]
            assert "already in force" in ran[1]["detail"]


FIRMWARE = """
name = "firmware"
timezone = "America/Los_Angeles"

[[rules]]
name = "update while idle"
at = "05:10"
firmware_window = { minutes = 30 }
"""


async def test_the_firmware_window_checks_and_starts_the_update_inside_the_budget(
    tmp_path: Path,
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path, FIRMWARE) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        requests = SimRequests(sim)
        since = sim.now_s - 60
        sim.offer_update("23.44")
        sim.override_load(3000.0)  # the battery carries the home: not idle, wait
        await step(sim, monitor, plan, 11 * 60)
        assert sim.state()["update"]["started_by"] is None
        sim.override_load(0.0)  # the home needs nothing: the battery idles
        await step(sim, monitor, plan, 6 * 60)
        assert sim.state()["update"]["started_by"] is not None
        events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
        ran = [(local(e["at"]), e["result"]) for e in events if e["kind"] == "automation"]
        # yesterday's window is not run late; today's opened at 05:10 while the battery
        # worked: postponed, looked at again every 5 minutes, then started once it idled
        assert ran == [
            ("05:00", "missed"),
            ("05:10", "postponed"),
            ("05:15", "done"),
        ], ran
        assert requests.most_in_a_minute() <= CONFIG.budget_per_minute
        assert len(requests.times_s) == monitor.pollers["home"].requests_sent


async def test_a_restart_does_not_report_a_window_the_last_run_saw_as_missed(
    tmp_path: Path,
) -> None:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        sim.override_load(0.0)  # the battery idles: the first run's window installs at once
        async with planned_monitor(sim, tmp_path, FIRMWARE) as (monitor, plan):
            await step(sim, monitor, plan, 11 * 60)
        since = sim.now_s
        # the same store, a restart at 05:11: today's window was the first run's, and done
        async with (
            planned_monitor(sim, tmp_path, FIRMWARE) as (monitor, plan),
            aiohttp.ClientSession() as http,
        ):
            await step(sim, monitor, plan, 60)
            events = (await get(http, monitor.url + f"api/events?from={since}"))["events"]
            assert [e for e in events if e["kind"] == "automation"] == []
