"""Time as the poller sees it: clock steps, pauses, restarts, and what a kill -9 can lose.

Host time is injected (a wall clock and a monotonic one the test moves), the gateway is
the simulator stepped by hand: every step is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_helpers import STEPPED, HostTime, stepped_poller, target

from tegkit.monitor.clock import SLEW_RATIO, ReadingClock
from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import Poller, PollerConfig
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.sim import Simulator

# --- the clock on its own ---------------------------------------------------------------


def test_a_step_forward_is_followed_at_once_and_noted() -> None:
    host = HostTime()
    clock = ReadingClock(host.wall, host.mono)
    assert clock() == host.wall_s
    host.advance(5)
    host.wall_s += 86_400
    assert clock() == host.wall_s
    assert [s.jump_s for s in clock.steps] == [86_400]
    host.advance(5)
    assert clock() == host.wall_s
    assert clock.step_count == 1


def test_a_step_back_is_caught_up_with_slowly_and_never_runs_back() -> None:
    host = HostTime()
    clock = ReadingClock(host.wall, host.mono)
    before = clock()
    host.advance(10)
    host.wall_s -= 3600
    seen = [clock()]
    assert seen[0] > before
    while seen[-1] != host.wall_s:
        host.advance(10)
        seen.append(clock())
        assert len(seen) < 1000, "the clock never caught up"
    assert all(b > a for a, b in pairwise(seen))
    # each 10 s of real time moved the stamps 1 s while catching up
    assert seen[1] - seen[0] == pytest.approx(10 * (1 - SLEW_RATIO))
    assert len(seen) == pytest.approx(3600 / (10 * SLEW_RATIO), abs=2)
    assert [round(s.jump_s) for s in clock.steps] == [-3600]


def test_not_before_keeps_a_restart_after_the_last_stored_reading() -> None:
    host = HostTime()
    clock = ReadingClock(host.wall, host.mono)
    clock.not_before(host.wall_s + 600)  # the last run stamped ten minutes "ahead"
    first = clock()
    assert first > host.wall_s + 600
    host.advance(60)
    assert first < clock() < host.wall_s + 600


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 600), st.floats(-1e6, 1e6) | st.just(0.0)),
        min_size=1,
        max_size=60,
    )
)
def test_stamps_never_go_backwards_whatever_the_wall_clock_does(
    moves: list[tuple[float, float]],
) -> None:
    host = HostTime()
    clock = ReadingClock(host.wall, host.mono)
    last = clock()
    for elapsed_s, step_s in moves:
        host.advance(elapsed_s)
        host.wall_s += step_s
        now = clock()
        assert now >= last
        assert now >= host.wall_s or now - last <= elapsed_s  # behind: slower, never faster
        last = now
    host.advance(1e7)  # long enough to catch up with any step back
    assert clock() == pytest.approx(host.wall_s, abs=1e-6)


# --- the poller across clock steps ------------------------------------------------------


@asynccontextmanager
async def host_clock_poller(
    sim: Simulator, host: HostTime, db: Path, config: PollerConfig = STEPPED
) -> AsyncIterator[Poller]:
    clock = ReadingClock(host.wall, host.mono)
    live = LiveState(clock=clock, stale_after_s=3 * config.fast_interval_s)
    store = AsyncStore(open_store(db))
    poller = Poller.for_target(target(sim), live, store, config, clock=clock, monotonic=host.mono)
    try:
        yield poller
    finally:
        await poller.flush()
        await poller.aclose()
        await store.aclose()


async def test_clock_steps_either_way_lose_and_double_count_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        host = HostTime(sim.now_s)
        async with host_clock_poller(sim, host, db) as poller:
            polls = 0
            for i in range(200):  # 200 minutes, one reading a minute
                if i == 60:
                    host.wall_s += 86_400  # the host clock jumps a day ahead ...
                    before_forward = poller.gateway.reading
                if i == 120:
                    host.wall_s -= 3_600  # ... and later an hour back
                assert await poller.poll_due()
                polls += 1
                if i == 60:
                    after_forward = poller.gateway.reading
                await sim.advance(60)
                host.advance(60)
            last_stamp = poller.gateway.reading.taken_at if poller.gateway.reading else None
            assert last_stamp == host.wall_s - 60  # caught up with the wall clock again
    store = open_store(db)
    try:
        readings = store.readings("home", 0, 2e10)
        first, last = readings[0], readings[-1]
        energy = store.energy("home", first.taken_at, last.taken_at + 1, "minute")
        events = store.events("home", 0, 2e10)
        gaps = store.gaps("home", 0, 2e10)
    finally:
        store.close()
    times = [r.taken_at for r in readings]
    assert len(readings) == polls  # none overwritten
    assert all(b > a for a, b in pairwise(times))  # none out of order
    for name in ("load_imported_wh", "solar_exported_wh", "site_imported_wh"):
        counted = sum(getattr(b, name) for b in energy)
        assert counted == pytest.approx(getattr(last, name) - getattr(first, name), abs=0.01)
    steps = [e for e in events if e.kind == "clock_step"]
    assert [("forward" in e.detail, "back" in e.detail) for e in steps] == [
        (True, False),
        (False, True),
    ]
    assert "86400" in steps[0].detail and "3600" in steps[1].detail
    assert before_forward is not None and after_forward is not None
    assert [(g.start, g.end, g.reason) for g in gaps] == [
        (before_forward.taken_at, after_forward.taken_at, "host clock stepped forward")
    ]


# --- silence: restarts and pauses -------------------------------------------------------


async def test_a_quick_restart_with_a_slow_first_reading_is_still_a_gap(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    stale_s = 3 * STEPPED.fast_interval_s
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        async with stepped_poller(sim, db=db) as poller:
            await poller.poll_due()
            last_at = sim.now_s
        await sim.advance(stale_s - 60)  # back within stale_after_s ...
        async with stepped_poller(sim, db=db) as poller:
            await poller.start()
            await sim.advance(120)  # ... but the first reading comes later than that
            await poller.poll_due()
            back_at = sim.now_s
    store = open_store(db)
    try:
        gaps = store.gaps("home", 0, 2e10)
    finally:
        store.close()
    assert back_at - last_at > stale_s
    assert [(g.start, g.end, g.reason) for g in gaps] == [(last_at, back_at, "monitor not running")]


async def test_a_stalled_monitor_leaves_a_gap_monitor_paused(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, db=db) as poller,
    ):
        await poller.poll_due()
        await sim.advance(60)
        await poller.poll_due()
        last_at = sim.now_s
        await sim.advance(600)  # SIGSTOP, or the event loop blocked: nobody polled
        await poller.poll_due()
        back_at = sim.now_s
        await sim.advance(60)
        await poller.poll_due()  # on time again: no more gaps
    store = open_store(db)
    try:
        gaps = store.gaps("home", 0, 2e10)
        readings = store.readings("home", 0, 2e10)
    finally:
        store.close()
    assert [(g.start, g.end, g.reason) for g in gaps] == [(last_at, back_at, "monitor paused")]
    assert len(readings) == 4


async def test_each_reading_is_committed_before_the_next_poll(tmp_path: Path) -> None:
    # the default batching: a kill -9 can lose the poll in progress, never more
    default = PollerConfig()
    config = dataclasses.replace(
        STEPPED, batch_size=default.batch_size, flush_interval_s=default.flush_interval_s
    )
    db = tmp_path / "m.db"
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, db=db, config=config) as poller,
    ):
        assert poller.store is not None
        for _ in range(5):
            await poller.poll_due()
            assert poller.pending == 0
            stored, shown = await poller.store.latest("home"), poller.gateway.reading
            assert stored is not None and shown is not None
            assert stored.taken_at == shown.taken_at  # the store keeps 1 W, 1 mWh: same reading
            await sim.advance(60)
