"""`teg demo`: the simulator, a day of recorded history, and the monitor watching it live.

The simulator starts with a built-in scenario. Before the dashboard opens, the monitor
records the scenario's first `backfill_h` simulated hours step by step (the simulator's
clock stands still between steps), so history, daily energy and outages are populated at
once; then the simulator runs at `speed` x real time and the monitor polls it live.
The monitor stamps readings with the simulator's clock.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.sim import Simulator
from tegkit.sim.scenario import DEFAULT_SCENARIO
from tegkit.tariff import builtin_tariff

BACKFILL_STEP_S = 60.0  # one reading a minute: the day chart's buckets are full


async def backfill(monitor: Monitor, sim: Simulator, hours: float) -> int:
    """Record `hours` of the simulator (at speed 0) in steps; returns readings written."""
    name = monitor.targets[0].name
    live_poller = monitor.pollers[name]

    def sim_clock() -> float:
        return sim.now_s

    stepper = live_poller.on_schedule(
        PollerConfig(
            fast_interval_s=BACKFILL_STEP_S,
            slow_interval_s=3600.0,
            jitter_ratio=0.0,
            budget_per_minute=10_000,  # simulated minutes: the simulator is ours to load
            batch_size=500,
            flush_interval_s=1e12,  # flushed below, so the count of readings is known
        ),
        clock=sim_clock,
        monotonic=sim_clock,
    )
    sim.set_speed(0)
    await stepper.start()  # takes over a gap an earlier backfill left open
    written = 0
    for _ in range(int(hours * 3600 / BACKFILL_STEP_S)):
        await stepper.poll_due()
        await sim.advance(BACKFILL_STEP_S)
        if stepper.pending >= 200:
            written += await stepper.flush()
    await stepper.poll_due()
    written += await stepper.flush()
    return written


async def run_demo(
    scenario: str = DEFAULT_SCENARIO,
    speed: float = 60.0,
    listen: tuple[str, int] = ("127.0.0.1", 8675),
    db: str | Path | None = None,
    backfill_h: float = 24.0,
    control_token: str | None = None,
    on_ready: Callable[[Monitor, Simulator], None] | None = None,
) -> None:
    """Run the demo until cancelled; `on_ready(monitor, sim)` is called once it serves."""
    with tempfile.TemporaryDirectory(prefix="tegkit-demo-") as tmp:
        path = Path(db) if db is not None else Path(tmp) / "demo.db"
        async with Simulator(
            port=0, scenario=scenario, speed=0, allow_customer_operation=True
        ) as sim:
            target = GatewayTarget(
                "demo",
                sim.url,
                password=sim.password,
                email=sim.email,
                pin=sim.fingerprint_sha256,
            )
            scenario_tariff = sim.scenario.config.tariff if sim.scenario is not None else None
            tariff = scenario_tariff or builtin_tariff("california-tou")
            fast_s = 2.0
            monitor = Monitor(
                [target],
                db=path,
                listen=listen,
                tz=sim.gateway.tz,
                tariff=tariff,
                control_token=control_token,
                config=PollerConfig(fast_interval_s=fast_s, slow_interval_s=20.0),
                clock=lambda: sim.now_s,
                stale_after_s=max(30.0, 4 * fast_s * speed),
            )
            await monitor.start(poll=False)
            try:
                await backfill(monitor, sim, backfill_h)
                sim.set_speed(speed)
                monitor.start_polling()
                if on_ready is not None:
                    on_ready(monitor, sim)
                await monitor.wait()
            finally:
                await asyncio.shield(monitor.close())
