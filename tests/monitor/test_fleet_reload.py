"""A fleet that changes while the monitor runs: Monitor.set_gateways on real simulators, and
`teg monitor --fleet` reloading its file on SIGHUP.

Orderings come from conditions (request counts at the simulators, live state, log lines),
never from sleeps of a chosen length.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import signal
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from monitor_helpers import target

from teg_process import TEG, TegProcess, clean_env
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import FleetChange, Monitor
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator

if TYPE_CHECKING:
    from tegkit.sim.threaded import ThreadedSimulator

FAST = PollerConfig(
    fast_interval_s=0.2,
    slow_interval_s=1.0,
    budget_per_minute=1000,
    flush_interval_s=0.5,
    batch_size=5,
)
SLOWER = dataclasses.replace(FAST, fast_interval_s=0.3)
DEADLINE_S = 30.0


async def until(condition: Callable[[], object], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Look at `condition` every 20 ms until it holds; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline_s
    while not condition():
        if loop.time() > ends:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Requests:
    """The local API requests one simulator receives (counted as they arrive)."""

    def __init__(self, sim: Simulator) -> None:
        self.paths: list[str] = []
        decide = sim.faults.decide

        def counted(path: str) -> Any:
            self.paths.append(path)
            return decide(path)

        sim.faults.decide = counted  # type: ignore[method-assign]

    @property
    def readings(self) -> int:
        """Fast polls: one meters request each."""
        return self.paths.count("/api/meters/aggregates")


def gw(sim: Simulator, name: str, config: PollerConfig = FAST, **labels: str) -> FleetGateway:
    return FleetGateway(target(sim, name), config, labels=labels)


@asynccontextmanager
async def sims(n: int) -> AsyncIterator[list[tuple[Simulator, Requests]]]:
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(n):
            sim = await stack.enter_async_context(Simulator(port=0, speed=0))
            out.append((sim, Requests(sim)))
        yield out


def fleet_monitor(gateways: list[FleetGateway], db: Path | None, **kwargs: Any) -> Monitor:
    kwargs.setdefault("stale_after_s", 120.0)
    kwargs.setdefault("tz", dt.UTC)
    return Monitor(gateways=gateways, db=db, listen=("127.0.0.1", 0), **kwargs)


def has_reading(monitor: Monitor, name: str) -> bool:
    g = monitor.live.get(name)
    return g is not None and g.reading is not None


async def live_names(monitor: Monitor) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(monitor.url + "api/live") as r:
        assert r.status == 200
        doc = await r.json()
    return [g["gateway"] for g in doc["gateways"]]


async def test_a_removed_gateway_stops_and_an_added_one_starts_while_the_others_poll(
    tmp_path: Path,
) -> None:
    async with sims(3) as [(sim_a, req_a), (sim_b, req_b), (sim_c, req_c)]:
        monitor = fleet_monitor([gw(sim_a, "a"), gw(sim_b, "b")], tmp_path / "m.db")
        async with monitor:
            await until(lambda: has_reading(monitor, "a") and has_reading(monitor, "b"), "a, b")
            poller_a, task_a = monitor.pollers["a"], monitor._poll_tasks["a"]
            # b's poller is held in its close until a has polled 3 more times: a polls on
            # while the reload is in progress (no pause for the gateways not touched)
            poller_b = monitor.pollers["b"]
            real_aclose = poller_b.aclose
            a_during: list[int] = []

            async def slow_aclose() -> None:
                seen = req_a.readings
                await until(lambda: req_a.readings >= seen + 3, "a's polls during the reload")
                a_during.append(req_a.readings - seen)
                await real_aclose()

            poller_b.aclose = slow_aclose  # type: ignore[method-assign]
            change = await monitor.set_gateways([gw(sim_a, "a"), gw(sim_c, "c")])
            assert change == FleetChange(added=("c",), removed=("b",))
            assert a_during and a_during[0] >= 3
            # a: the same poller and task, never stopped
            assert monitor.pollers["a"] is poller_a and monitor._poll_tasks["a"] is task_a
            assert not task_a.done()
            # b: stopped, its live state (so its metrics) gone; c: polled
            assert list(monitor.pollers) == ["a", "c"] and list(monitor.gateways) == ["a", "c"]
            assert monitor.live.get("b") is None
            await until(lambda: has_reading(monitor, "c"), "c's first reading")
            assert await live_names(monitor) == ["a", "c"]
            b_after, a_after = len(req_b.paths), req_a.readings
            await until(lambda: req_a.readings >= a_after + 5, "a's polls after the reload")
            await until(lambda: req_c.readings >= 3, "c's polls")
            assert len(req_b.paths) == b_after  # nothing more asked of the removed gateway
            metrics = await _text(monitor.url + "metrics")
            assert 'gateway="a"' in metrics and 'gateway="c"' in metrics
            assert 'gateway="b"' not in metrics
    stored = await _stored_gateways(tmp_path / "m.db")
    assert {"a", "b", "c"} <= stored  # b's readings were flushed before it stopped


async def test_a_changed_gateway_restarts_on_its_live_entry_and_a_label_change_restarts_nothing(
    tmp_path: Path,
) -> None:
    async with sims(2) as [(sim_a, req_a), (sim_b, _)]:
        monitor = fleet_monitor([gw(sim_a, "a", region="west"), gw(sim_b, "b")], None)
        async with monitor:
            await until(lambda: has_reading(monitor, "a") and has_reading(monitor, "b"), "a, b")
            poller_a, poller_b = monitor.pollers["a"], monitor.pollers["b"]
            live_b = monitor.live.get("b")
            closed: list[str] = []
            real_aclose = poller_b.aclose

            async def aclose() -> None:
                closed.append("b")
                await real_aclose()

            poller_b.aclose = aclose  # type: ignore[method-assign]
            change = await monitor.set_gateways(
                [gw(sim_a, "a", region="east"), gw(sim_b, "b", SLOWER)]
            )
            assert change == FleetChange(restarted=("b",), updated=("a",))
            assert monitor.pollers["a"] is poller_a  # labels only: the same poller
            assert monitor.gateways["a"].labels == {"region": "east"}
            assert monitor.pollers["b"] is not poller_b
            assert monitor.pollers["b"].config == SLOWER
            assert monitor.live.get("b") is live_b  # the dashboard keeps its entry
            assert closed == ["b"]  # the old poller's client is closed
            polled = monitor.pollers["b"].requests_sent
            await until(lambda: monitor.pollers["b"].requests_sent > polled + 3, "b's new poller")
            seen = req_a.readings
            await until(lambda: req_a.readings > seen + 2, "a polling on")
            # the same gateways again: nothing happens
            same = [gw(sim_a, "a", region="east"), gw(sim_b, "b", SLOWER)]
            assert not await monitor.set_gateways(same)


async def test_a_monitor_may_start_empty_only_when_told_and_fill_later(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one gateway"):
        fleet_monitor([], None)
    async with sims(1) as [(sim_a, req_a)]:
        monitor = fleet_monitor([], None, allow_empty=True)
        async with monitor:
            waiting = asyncio.create_task(monitor.wait())
            assert await live_names(monitor) == []
            change = await monitor.set_gateways([gw(sim_a, "a")])
            assert change.added == ("a",)
            await until(lambda: has_reading(monitor, "a"), "a's first reading")
            await monitor.set_gateways([])  # removing every gateway does not end wait()
            assert monitor.pollers == {} and monitor.live.get("a") is None
            count = len(req_a.paths)
            await monitor.set_gateways([gw(sim_a, "a")])
            await until(lambda: len(req_a.paths) > count, "a polled again")
            assert not waiting.done()
            monitor.stop()
            await asyncio.wait_for(waiting, DEADLINE_S)


async def test_set_gateways_with_names_twice_changes_nothing(tmp_path: Path) -> None:
    async with sims(1) as [(sim_a, _)]:
        monitor = fleet_monitor([gw(sim_a, "a")], None)
        async with monitor:
            poller = monitor.pollers["a"]
            with pytest.raises(ValueError, match="must differ"):
                await monitor.set_gateways([gw(sim_a, "x"), gw(sim_a, "x")])
            assert monitor.pollers == {"a": poller} and list(monitor.gateways) == ["a"]


async def test_set_gateways_racing_close_leaves_nothing_running(tmp_path: Path) -> None:
    async with sims(2) as [(sim_a, _), (sim_b, req_b)]:
        monitor = fleet_monitor([gw(sim_a, "a")], None)
        await monitor.start()
        await until(lambda: has_reading(monitor, "a"), "a's first reading")
        waiting = asyncio.create_task(monitor.wait())
        reload = asyncio.create_task(monitor.set_gateways([gw(sim_a, "a"), gw(sim_b, "b")]))
        await monitor.close()
        await reload
        await asyncio.wait_for(waiting, DEADLINE_S)  # a wait() still running returns
        assert monitor._tasks == []
        # after close nothing starts, and nothing is asked of the gateway later
        assert await monitor.set_gateways([gw(sim_b, "late")]) == FleetChange()
        assert "late" not in monitor.pollers
        count = len(req_b.paths)
        probe = Requests(sim_b)  # a second counter: b answers others, not the monitor
        async with aiohttp.ClientSession() as http:
            await http.get(sim_b.url + "/api/status", ssl=False)
        await until(lambda: probe.paths, "the probe's request")
        assert len(req_b.paths) == count + 1  # only the probe's


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return await r.text()


async def _stored_gateways(db: Path) -> set[str]:
    store = open_store(db)
    try:
        return {name for name in ("a", "b", "c") if store.latest(name) is not None}
    finally:
        store.close()


# --- `teg monitor --fleet` and SIGHUP ----------------------------------------------------------


def fleet_text(tmp_path: Path, sims: dict[str, ThreadedSimulator], **broken: str) -> str:
    """A fleet file of `sims` by name, each password in a 0600 file; `broken` gives a
    gateway an extra line (a bad value)."""
    parts = ["[defaults]\nfast_interval_s = 0.5\nslow_interval_s = 5\nbudget_per_minute = 1000\n"]
    for name, sim in sims.items():
        secret = tmp_path / "secrets" / name
        secret.parent.mkdir(exist_ok=True)
        secret.write_text(sim.password + "\n")
        secret.chmod(0o600)
        parts.append(
            f'[[gateways]]\nname = "{name}"\nurl = "{sim.url}"\n'
            f'pin = "sha256:{sim.fingerprint_sha256}"\npassword_file = "secrets/{name}"\n'
            f'labels = {{ region = "{name}-region" }}\n{broken.get(name, "")}\n'
        )
    return "\n".join(parts)


def replace_file(path: Path, text: str) -> None:
    """Write `path` whole (a reload never sees half a file)."""
    part = path.with_suffix(".part")
    part.write_text(text)
    part.chmod(0o600)
    part.replace(path)


def live_doc(url: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(url + "api/live", timeout=30) as reply:
        doc = json.loads(reply.read())
    return {g["gateway"]: g for g in doc["gateways"]}


def polled_since(url: str, counts: dict[str, int]) -> bool:
    """Every gateway of `counts` has a reading and more requests than counted there."""
    now = live_doc(url)
    return all(
        name in now and now[name]["reading"] is not None and now[name]["requests_total"] > n
        for name, n in counts.items()
    )


@pytest.mark.timeout(240)
def test_sighup_applies_a_good_file_and_keeps_the_running_fleet_for_a_bad_one(
    tmp_path: Path, teg_sim_factory: Any
) -> None:
    a, b = teg_sim_factory(), teg_sim_factory()
    fleet = tmp_path / "fleet.toml"
    replace_file(fleet, fleet_text(tmp_path, {"a": a}))
    # a TEG_PASSWORD in the environment overrides no fleet gateway's own password source
    env = clean_env(TEG_CONFIG=str(tmp_path / "config.toml"), TEG_PASSWORD="wrong")
    proc = TegProcess.teg(
        "monitor",
        "--fleet",
        str(fleet),
        "--db",
        str(tmp_path / "m.db"),
        "--listen",
        "127.0.0.1:0",
        env=env,
    )
    try:
        url = proc.line(r"watching 1 gateway\(s\) of .*; dashboard (http://\S+)").group(1)
        proc.poll_until("a's first readings", lambda: polled_since(url, {"a": 0}))
        # a good file: b is added, a keeps polling
        replace_file(fleet, fleet_text(tmp_path, {"a": a, "b": b}))
        before = {"a": live_doc(url)["a"]["requests_total"]}
        proc.proc.send_signal(signal.SIGHUP)
        proc.line(r"fleet file .* reloaded: 2 gateway\(s\); added b$")
        proc.poll_until("b's readings, a's on", lambda: polled_since(url, {**before, "b": 0}))
        # a bad file: logged, naming gateway and field; both go on polling
        replace_file(fleet, fleet_text(tmp_path, {"a": a, "b": b}, b='tz = "Nowhere"\nbogus = 1'))
        now = live_doc(url)
        counts = {name: entry["requests_total"] for name, entry in now.items()}
        proc.proc.send_signal(signal.SIGHUP)
        proc.line(r"ERROR .*fleet file \S+ not reloaded \(2 problems\); the running fleet is kept$")
        proc.line(r'ERROR .*fleet file \S+: gateways\[2\] "b": bogus: an unknown key; expected')
        proc.line(r'ERROR .*fleet file \S+: gateways\[2\] "b": tz: .Nowhere.; expected an IANA')
        proc.poll_until("a and b polling on", lambda: polled_since(url, counts))
        assert sorted(live_doc(url)) == ["a", "b"]
        # a good file again: b removed (its live entry with it)
        replace_file(fleet, fleet_text(tmp_path, {"a": a}))
        proc.proc.send_signal(signal.SIGHUP)
        proc.line(r"fleet file .* reloaded: 1 gateway\(s\); removed b$")
        assert sorted(live_doc(url)) == ["a"]
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.err)
    assert "Traceback" not in "\n".join(proc.err)
    assert a.password not in "\n".join(proc.err + proc.out)


def test_fleet_with_per_gateway_options_is_refused_naming_them(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("")
    args = [TEG, "monitor", "--fleet", str(fleet), "--db", str(tmp_path / "m.db")]
    env = clean_env(TEG_CONFIG=str(tmp_path / "config.toml"))
    done = subprocess.run(
        [*args, "--gateway", "x=https://127.0.0.1:1", "--pin", "ab" * 32, "--tz", "UTC"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "leave out --gateway, --pin, --tz" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m.db").exists()


def test_a_bad_fleet_file_at_start_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[gateways]]\nname = "a"\nurl = "http://127.0.0.1:1"\npassword_env = "TEG_PASSWORD"\n'
        '[[gateways]]\nname = "b"\nhost = "127.0.0.1:2"\npassword_env = "NOT_SET"\n'
    )
    # the environment's TEG_PIN and TEG_PASSWORD are not options typed: not refused
    env = clean_env(TEG_CONFIG=str(tmp_path / "c.toml"), TEG_PIN="ab" * 32, TEG_PASSWORD="x")
    done = subprocess.run(
        [TEG, "monitor", "--fleet", str(fleet), "--db", str(tmp_path / "m.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"fleet file {fleet}: 2 problems:" in done.stderr
    assert 'gateways[1] "a": url: ' in done.stderr and "HTTPS only" in done.stderr
    assert 'gateways[2] "b": password_env: NOT_SET is not set' in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m.db").exists()


async def test_mqtt_removes_a_gateway_that_left_and_goes_on_with_the_others(
    tmp_path: Path,
) -> None:
    from mqtt_broker import listening, running_broker

    from tegkit.monitor.mqtt.bridge import MqttSettings

    with running_broker(tmp_path / "broker") as broker:
        mqtt = MqttSettings(
            broker.url, username=broker.username, password=broker.password, min_interval_s=0.0
        )
        async with (
            sims(2) as [(sim_a, _), (sim_b, _)],
            listening(broker, "tegkit/#") as seen,
        ):
            monitor = fleet_monitor([gw(sim_a, "a"), gw(sim_b, "b")], None, mqtt=mqtt)
            async with monitor:
                for name in ("a", "b"):
                    await seen.message(f"tegkit/{name}/availability", lambda m: m.text == "online")
                mark = len(seen.messages)
                change = await monitor.set_gateways([gw(sim_a, "a")])
                assert change.removed == ("b",)
                # b's retained availability is cleared (its entities removed)...
                await seen.message("tegkit/b/availability", lambda m: m.payload == b"", after=mark)
                await seen.message("tegkit/b/state", lambda m: m.payload == b"", after=mark)
                # ...and a's state goes on arriving
                after = len(seen.messages)
                await seen.message("tegkit/a/state", after=after)
                await seen.message("tegkit/a/state", after=len(seen.messages))


PLAN = """
name = "reload-plan"
timezone = "America/Los_Angeles"

[[rules]]
name = "evening"
at = "18:00"
mode = "backup"
backup_reserve_percent = 100
"""


async def test_a_plan_follows_its_gateway_through_restarts_and_removal(tmp_path: Path) -> None:
    from tegkit.automation.planfile import parse_plan

    async with sims(2) as [(sim_a, _), (sim_b, _)]:
        plans = {"a": parse_plan(PLAN)}
        monitor = fleet_monitor([gw(sim_a, "a"), gw(sim_b, "b")], None, plans=plans)
        async with monitor:
            first = monitor.running_plans["a"]
            assert first.poller is monitor.pollers["a"]
            task = monitor._plan_tasks["a"]
            await monitor.set_gateways([gw(sim_a, "a", SLOWER), gw(sim_b, "b")])
            again = monitor.running_plans["a"]
            assert again is not first and again.poller is monitor.pollers["a"]
            assert task.done() and not monitor._plan_tasks["a"].done()
            await monitor.set_gateways([gw(sim_b, "b")])
            assert "a" not in monitor.running_plans and "a" not in monitor._plan_tasks
            await monitor.set_gateways([gw(sim_a, "a"), gw(sim_b, "b")])
            assert monitor.running_plans["a"].poller is monitor.pollers["a"]
            assert "b" not in monitor.running_plans
            await until(lambda: has_reading(monitor, "a"), "a polled again")


async def test_set_gateways_during_start_waits_for_the_pollers(tmp_path: Path) -> None:
    async with sims(2) as [(sim_a, _), (sim_b, req_b)]:
        monitor = fleet_monitor([gw(sim_a, "a")], tmp_path / "m.db")
        starting = asyncio.create_task(monitor.start())  # opens the store in a thread first
        change = asyncio.create_task(monitor.set_gateways([gw(sim_b, "b")]))
        try:
            await starting
            assert await change == FleetChange(added=("b",), removed=("a",))
            assert list(monitor.pollers) == ["b"] and monitor.live.names() == ["b"]
            await until(lambda: req_b.readings > 0, "b polled")
        finally:
            await monitor.close()
