"""Helpers for the recorder, web, metrics and dashboard tests: a poller on the sim's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import Poller, PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.sim import Simulator

# A schedule for stepping by hand: every step of `fast` seconds is one reading.
STEPPED = PollerConfig(
    fast_interval_s=60.0,
    slow_interval_s=600.0,
    jitter_ratio=0.0,
    budget_per_minute=100,
    batch_size=50,
    flush_interval_s=3600.0,
)


def sim_clock(sim: Simulator) -> Any:
    return lambda: sim.now_s


def target(sim: Simulator, name: str = "home") -> GatewayTarget:
    return GatewayTarget(
        name, sim.url, password=sim.password, email=sim.email, pin=sim.fingerprint_sha256
    )


@asynccontextmanager
async def stepped_poller(
    sim: Simulator,
    db: Path | None = None,
    config: PollerConfig = STEPPED,
    name: str = "home",
) -> AsyncIterator[Poller]:
    """A poller on the simulator's clock (schedule, budget and stamps): drive it with
    `await poller.poll_due()` between `await sim.advance(...)`."""
    clock = sim_clock(sim)
    live = LiveState(clock=clock, stale_after_s=3 * config.fast_interval_s)
    store = AsyncStore(open_store(db)) if db is not None else None
    poller = Poller.for_target(target(sim, name), live, store, config, clock=clock, monotonic=clock)
    try:
        yield poller
    finally:
        await poller.flush()
        await poller.aclose()
        if store is not None:
            await store.aclose()


@asynccontextmanager
async def live_monitor(sim: Simulator, db: Path | None, **kwargs: Any) -> AsyncIterator[Monitor]:
    """A Monitor polling the simulator in real time (fast: every 0.2 s) on 127.0.0.1:0."""
    kwargs.setdefault(
        "config",
        PollerConfig(
            fast_interval_s=0.2,
            slow_interval_s=1.0,
            budget_per_minute=1000,
            flush_interval_s=0.5,
            batch_size=5,
        ),
    )
    kwargs.setdefault("stale_after_s", 120.0)
    kwargs.setdefault("tz", dt.UTC)
    kwargs.setdefault("clock", sim_clock(sim))
    monitor = Monitor([target(sim)], db=db, listen=("127.0.0.1", 0), **kwargs)
    async with monitor:
        yield monitor


async def first_reading(monitor: Monitor, name: str = "home", polls: int = 400) -> None:
    """Wait (by polling the live state, not by time) until the gateway has a reading."""
    import asyncio

    for _ in range(polls):
        g = monitor.live.get(name)
        if g is not None and g.reading is not None and g.mode is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the monitor got no reading from the simulator")


class HostTime:
    """The host's wall clock and a monotonic clock, moved by the test."""

    def __init__(self, wall_s: float = 1_750_000_000.0) -> None:
        self.wall_s = wall_s
        self.mono_s = 5_000.0

    def wall(self) -> float:
        return self.wall_s

    def mono(self) -> float:
        return self.mono_s

    def advance(self, seconds: float) -> None:
        self.wall_s += seconds
        self.mono_s += seconds
