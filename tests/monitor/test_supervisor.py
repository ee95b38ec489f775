"""The running monitor under failure: refused passwords, a poller that crashes, kill -9.

Everything waits on conditions with a deadline (the live state, the store), never on time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from monitor_helpers import sim_clock

from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator

QUICK = PollerConfig(
    fast_interval_s=0.2,
    slow_interval_s=2.0,
    jitter_ratio=0.0,
    budget_per_minute=2000,
    max_backoff_s=0.4,
)


async def until(condition: Callable[[], bool], what: str, deadline_s: float = 30.0) -> None:
    """Wait for `condition` by looking every 20 ms; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline_s
    while not condition():
        if loop.time() > ends:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.text()


@pytest.mark.parametrize("password", ["not-the-password", None])
async def test_a_refused_login_is_a_gap_an_unhealthy_monitor_and_one_log_line(
    tmp_path: Path, password: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tegkit.monitor.poller")
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        target = GatewayTarget(
            "home", sim.url, password=password, email=sim.email, pin=sim.fingerprint_sha256
        )
        monitor = Monitor(
            [target],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            tz=dt.UTC,
            config=QUICK,
            clock=sim_clock(sim),
            stale_after_s=120.0,
        )
        async with monitor:
            poller = monitor.pollers["home"]
            errors = poller.gateway.counters.errors_total
            # several fast polls refused (the grid status endpoint needs no login and answers)
            await until(lambda: errors.get(("meters_aggregates", "auth"), 0) >= 3, "refusals")
            assert poller.gateway.reading is None  # not one of nulls and a grid status
            status, body = await _get(monitor.url + "healthz")
            metrics = (await _get(monitor.url + "metrics"))[1]
            to = sim.now_s + 60  # the simulated clock stands still
            gaps = (await _get(monitor.url + f"api/gaps?gateway=home&to={to}"))[1]
            refusal = poller.auth_error  # what `teg monitor` reads to say what to do
    assert status == 503
    assert '"status":"unauthorized"' in body and "authentication failed" in body
    assert 'powerwall_up{gateway="home"} 0.0' in metrics
    assert '"reason":"authentication failed: ' in gaps
    said = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(said) == 1, said
    assert refusal is not None and refusal.status == 401


async def test_a_crashing_poller_is_restarted_and_the_other_gateway_keeps_recording(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:

        def target(name: str) -> GatewayTarget:
            pin = sim.fingerprint_sha256
            return GatewayTarget(name, sim.url, password=sim.password, email=sim.email, pin=pin)

        monitor = Monitor(
            [target("good"), target("bad")],
            db=db,
            listen=("127.0.0.1", 0),
            tz=dt.UTC,
            config=QUICK,
            stale_after_s=60.0,
            restart_backoff_s=(0.05, 0.2),
        )
        await monitor.start(poll=False)
        try:
            good, bad = monitor.pollers["good"], monitor.pollers["bad"]
            good_polls = good.gateway.counters.requests_total
            real_poll_due = bad.poll_due
            crashes = 0
            polls_at_first_crash = 0

            async def poll_due_that_fails_three_times() -> list[str]:
                nonlocal crashes, polls_at_first_crash
                crashes += 1
                if crashes == 1:
                    polls_at_first_crash = good_polls.get("meters_aggregates", 0)
                if crashes == 3:  # the other gateway goes on while this one is down
                    await until(
                        lambda: good_polls.get("meters_aggregates", 0) >= polls_at_first_crash + 5,
                        "the good gateway's polls",
                    )
                if crashes == 2:  # a library's stray cancellation: the task was not cancelled
                    raise asyncio.CancelledError
                if crashes <= 3:
                    raise RuntimeError("a bug in the poller")
                return await real_poll_due()

            bad.poll_due = poll_due_that_fails_three_times  # type: ignore[method-assign]
            monitor.start_polling()
            await until(lambda: bad.gateway.reading is not None, "the restarted poller's reading")
            assert crashes == 4
            assert bad.gateway.counters.restarts_total == 3
            assert bad.gateway.problem is None
            assert not any(task.done() for task in monitor._tasks)  # nothing stopped
            await until(lambda: bad.pending == 0, "the reading's commit")  # sent to the store
        finally:
            await monitor.close()
    store = open_store(db)
    try:
        bad_gaps = store.gaps("bad", 0, 2e10)
        bad_readings = store.readings("bad", 0, 2e10)
        good_readings = store.readings("good", 0, 2e10)
    finally:
        store.close()
    assert [g.reason for g in bad_gaps] == [
        "poller failed: RuntimeError",
        "poller failed: CancelledError",
        "poller failed: RuntimeError",
    ]
    assert all(a.end == b.start for a, b in pairwise(bad_gaps))  # down the whole time
    down_from, down_to = bad_gaps[0].start, bad_gaps[-1].end
    assert down_to is not None and down_to == bad_readings[0].taken_at
    during = [r for r in good_readings if down_from <= r.taken_at <= down_to]
    assert len(during) >= 5


_MONITOR_SCRIPT = """
import asyncio, os, sys
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor

async def main():
    url, pin, db, stale_after_s = sys.argv[1:5]
    target = GatewayTarget(
        "home", url, password=os.environ["SIM_PASSWORD"], email=os.environ["SIM_EMAIL"], pin=pin
    )
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=5.0, jitter_ratio=0.0, budget_per_minute=2000
    )
    monitor = Monitor(
        [target], db=db, listen=("127.0.0.1", 0), config=config, stale_after_s=float(stale_after_s)
    )
    async with monitor:
        print(monitor.url, flush=True)
        await monitor.wait()

asyncio.run(main())
"""


def _start_monitor(sim: Simulator, db: Path, stale_after_s: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIM_PASSWORD": sim.password, "SIM_EMAIL": sim.email}
    args = [sim.url, sim.fingerprint_sha256, str(db), str(stale_after_s)]
    return subprocess.Popen(
        [sys.executable, "-c", _MONITOR_SCRIPT, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


async def _url_of(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    url = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return url


async def test_kill_9_loses_at_most_the_poll_in_progress(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc = _start_monitor(sim, db, stale_after_s=15.0)
        try:
            url = await _url_of(proc)
            shown: list[float] = []  # reading times /api/live showed, in order
            async with aiohttp.ClientSession() as http:
                loop = asyncio.get_running_loop()
                ends = loop.time() + 60
                while len(shown) < 15:
                    assert loop.time() < ends, "the monitor showed no readings"
                    async with http.get(url + "api/live") as r:
                        [entry] = (await r.json())["gateways"]
                    taken_at = entry["taken_at"]
                    if taken_at is not None and (not shown or taken_at > shown[-1]):
                        shown.append(taken_at)
                    await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    store = open_store(db)
    try:
        stored = {r.taken_at for r in store.readings("home", 0, 2e10)}
    finally:
        store.close()
    # a reading that was followed by another on the live page was committed by then:
    # only the one shown last may be lost
    missing = [t for t in shown[:-1] if round(t, 3) not in stored]
    assert not missing


async def test_a_stopped_process_leaves_a_gap_monitor_paused(tmp_path: Path) -> None:
    stale_s = 1.0
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc = _start_monitor(sim, tmp_path / "pause.db", stale_after_s=stale_s)
        try:
            url = await _url_of(proc)
            async with aiohttp.ClientSession() as http:

                async def live_taken_at() -> float | None:
                    async with http.get(url + "api/live") as r:
                        [entry] = (await r.json())["gateways"]
                    return entry["taken_at"]  # type: ignore[no-any-return]

                first = None
                loop = asyncio.get_running_loop()
                ends = loop.time() + 60
                while first is None or await live_taken_at() == first:  # two readings seen
                    assert loop.time() < ends, "the monitor showed no readings"
                    first = first or await live_taken_at()
                    await asyncio.sleep(0.02)
                stopped_at = time.time()
                proc.send_signal(signal.SIGSTOP)
                paused = time.monotonic()
                await until(lambda: time.monotonic() - paused > 3 * stale_s, "the pause")
                proc.send_signal(signal.SIGCONT)
                resumed_at = time.time()

                async def paused_gaps() -> list[dict[str, Any]]:
                    async with http.get(url + "api/gaps?gateway=home") as r:
                        gaps = (await r.json())["gaps"]
                    return [g for g in gaps if g["reason"] == "monitor paused"]

                found: list[dict[str, Any]] = []
                ends = loop.time() + 60
                while not found:
                    assert loop.time() < ends, "no gap for the pause"
                    found = await paused_gaps()
                    await asyncio.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    [gap] = [g for g in found if g["start"] <= stopped_at and g["end"] >= resumed_at]
    assert gap["end"] - gap["start"] > 3 * stale_s
