"""The recorder against the simulator: a simulated day's energy, an outage, a kill -9."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from monitor_helpers import stepped_poller

from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator

LA = ZoneInfo("America/Los_Angeles")
DAY_STEP_S = 300.0

# daily field -> (meter, direction) of the simulator's counters
DAILY_VS_COUNTERS = {
    "home_wh": ("load", "imported_wh"),
    "solar_wh": ("solar", "exported_wh"),
    "battery_in_wh": ("battery", "imported_wh"),
    "battery_out_wh": ("battery", "exported_wh"),
    "grid_in_wh": ("site", "imported_wh"),
    "grid_out_wh": ("site", "exported_wh"),
}


async def test_a_recorded_day_matches_the_simulators_counters(tmp_path: Path) -> None:
    db = tmp_path / "day.db"
    config = PollerConfig(
        fast_interval_s=DAY_STEP_S,
        slow_interval_s=3600.0,
        jitter_ratio=0.0,
        budget_per_minute=100,
        batch_size=100,
    )
    midnight = dt.datetime(2024, 6, 21, tzinfo=LA)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, start=midnight) as sim,
        stepped_poller(sim, db=db, config=config) as poller,
    ):
        start_counters = sim.state()["counters"]
        for _ in range(int(86400 / DAY_STEP_S)):
            await poller.poll_due()
            await sim.advance(DAY_STEP_S)
        await poller.poll_due()  # the reading at midnight closes the day
        end_counters = sim.state()["counters"]
        assert sim.now_s == (midnight + dt.timedelta(days=1)).timestamp()
    store = open_store(db)
    try:
        [day] = store.daily("home", midnight.date(), midnight.date(), LA)
    finally:
        store.close()
    for name, (meter, direction) in DAILY_VS_COUNTERS.items():
        expected = end_counters[meter][direction] - start_counters[meter][direction]
        recorded = getattr(day, name)
        assert recorded is not None, name
        assert recorded == pytest.approx(expected, rel=0.005, abs=1.0), name
    assert day.solar_wh is not None and day.solar_wh > 10_000  # a sunny day really was recorded


async def test_an_outage_is_recorded_once_with_its_length_to_the_second(tmp_path: Path) -> None:
    db = tmp_path / "outage.db"
    phoenix = ZoneInfo("America/Phoenix")
    down = dt.datetime(2024, 8, 10, 18, 30, tzinfo=phoenix).timestamp()
    up = dt.datetime(2024, 8, 10, 21, 30, tzinfo=phoenix).timestamp()
    every_step = PollerConfig(
        fast_interval_s=1.0, slow_interval_s=600.0, jitter_ratio=0.0, budget_per_minute=10_000
    )
    async with (
        Simulator(port=0, scenario="evening-outage", speed=0) as sim,
        stepped_poller(sim, db=db, config=every_step) as poller,
    ):
        started = sim.now_s
        end = dt.datetime(2024, 8, 10, 23, 0, tzinfo=phoenix).timestamp()
        truth: list[float] = []  # when the simulator itself says the grid went and came back
        while sim.now_s < end:
            await poller.poll_due()
            now = sim.now_s
            connected = sim.state()["grid_status"] == "SystemGridConnected"
            if connected == (len(truth) % 2 == 1):
                truth.append(now)
            near_an_edge = abs(now - down) <= 90 or abs(now - up) <= 90
            await sim.advance(1 if near_an_edge else 60)
    store = open_store(db)
    try:
        outages = store.outages("home", started, end)
    finally:
        store.close()
    assert [(o.start, o.end) for o in outages] == [tuple(truth)]
    # the scenario's 18:30 .. 21:30, plus the simulator's resynchronisation with the grid
    assert down <= truth[0] <= down + 1
    assert up <= truth[1] <= up + 60


def _monitor_cmd(sim: Simulator, db: Path) -> list[str]:
    code = "import sys; from tegkit.cli.monitor import monitor; monitor(sys.argv[1:])"
    return [
        sys.executable, "-c", code,
        "--gateway", f"home={sim.url}", "--pin", sim.fingerprint_sha256, "--db", str(db),
        "--listen", "127.0.0.1:0", "--fast-interval", "0.2", "--slow-interval", "5",
        "--budget", "2000",
    ]  # fmt: skip


def _committed(db: Path) -> list[tuple[float, float | None, float | None]]:
    store = open_store(db)
    try:
        return [(r.taken_at, r.load_w, r.load_imported_wh) for r in store.readings("home", 0, 2e10)]
    finally:
        store.close()


def _committed_count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        if not conn.execute("SELECT name FROM sqlite_master").fetchall():
            return 0  # the recorder has not created its schema yet
    finally:
        conn.close()
    return len(_committed(db))


async def _wait_for_rows(db: Path, proc: subprocess.Popen[bytes], at_least: int) -> None:
    for _ in range(300):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        if await asyncio.to_thread(_committed_count, db) >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the recorder did not commit {at_least} readings")


async def test_kill_9_mid_write_loses_no_committed_reading(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    env = {**os.environ, "TEG_PASSWORD": "", "TEG_CONFIG": str(tmp_path / "none.toml")}
    async with Simulator(port=0, scenario="sunny-day", speed=60) as sim:
        env["TEG_PASSWORD"] = sim.password
        env["TEG_EMAIL"] = sim.email
        proc = subprocess.Popen(_monitor_cmd(sim, db), env=env, stderr=subprocess.PIPE)  # noqa: ASYNC220
        try:
            await _wait_for_rows(db, proc, 24)
            before = await asyncio.to_thread(_committed, db)
            proc.send_signal(signal.SIGKILL)  # mid-run: commits arrive every few readings
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
        after_kill = await asyncio.to_thread(_committed, db)
        assert set(before) <= set(after_kill)

        proc = subprocess.Popen(_monitor_cmd(sim, db), env=env, stderr=subprocess.PIPE)  # noqa: ASYNC220
        try:
            await _wait_for_rows(db, proc, len(after_kill) + 12)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    final = await asyncio.to_thread(_committed, db)
    assert set(after_kill) <= set(final)
    times = [t for t, _, _ in final]
    assert times == sorted(times) and len(times) == len(set(times))
