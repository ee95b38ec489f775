"""A runner on a simulated gateway over real HTTPS, on the simulator's clock.

The simulator runs at speed 0: simulated time moves only when the runner sleeps, and the
runner's sleep moves it (to the next thing the runner has to do, or to the next step of
the test's script, whichever comes first). So a simulated week takes a few seconds, and
the order of everything is set by simulated time, never by real sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tegkit import percent
from tegkit.automation.actuator import GatewayActuator
from tegkit.automation.plan import Plan, Setpoints
from tegkit.automation.runner import ActionEvent, RetryPolicy, Runner
from tegkit.client import Gateway, PinnedCertificate
from tegkit.monitor.demo import demo_cloud
from tegkit.sim import Simulator

#: a step of a test's script: at a simulated instant, do something to the simulator
Step = tuple[dt.datetime, Callable[[Simulator], Any]]


@dataclass
class Rig:
    sim: Simulator
    gateway: Gateway
    actuator: GatewayActuator
    events: list[ActionEvent] = field(default_factory=list)
    #: what the simulated gateway reported at each event (mode, raw reserve), read directly
    seen: list[tuple[str, float]] = field(default_factory=list)
    #: called with each event, after it is recorded (a test arms its next fault here)
    on_event: Callable[[ActionEvent], None] | None = None

    def sink(self, event: ActionEvent) -> None:
        self.events.append(event)
        gw = self.sim.gateway
        self.seen.append((gw.mode, gw.backup_reserve_raw_percent))
        if self.on_event is not None:
            self.on_event(event)

    def runner(self, plan: Plan, **options: Any) -> Runner:
        options.setdefault("retry", RetryPolicy(first_delay_s=15.0))
        options.setdefault("max_sleep_s", 6 * 3600.0)
        options.setdefault("rng", __import__("random").Random(1))
        return Runner(plan, self.actuator, plan.timezone, self.sink, now=self.now, **options)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.sim.now_s, dt.UTC)

    async def run_until(
        self, runner: Runner, end_utc: dt.datetime, script: list[Step] | None = None
    ) -> None:
        """Run the runner until the simulated clock reaches `end_utc`; each script step runs
        when the clock gets to its instant (before the runner's next tick)."""
        steps = sorted(script or [], key=lambda s: s[0])
        stop = asyncio.Event()

        async def sleep(delay_s: float, _stop: asyncio.Event) -> None:
            target = min(self.sim.now_s + delay_s, end_utc.timestamp())
            while steps and steps[0][0].timestamp() <= target:
                at, act = steps.pop(0)
                await self.sim.advance(max(0.0, at.timestamp() - self.sim.now_s))
                outcome = act(self.sim)
                if asyncio.iscoroutine(outcome):
                    await outcome
            await self.sim.advance(max(0.0, target - self.sim.now_s))
            if self.sim.now_s >= end_utc.timestamp():
                stop.set()

        runner.sleep = sleep
        await runner.run(stop)

    def of(self, rule: str) -> list[ActionEvent]:
        return [e for e in self.events if e.rule == rule]


def shows(setpoints: Setpoints, seen: tuple[str, float]) -> bool:
    """True when the gateway's (mode, raw reserve) are the setpoints' mode and reserve."""
    mode, raw = seen
    want = setpoints.backup_reserve_app_percent
    assert want is not None
    return mode == setpoints.mode and abs(raw - percent.app_to_raw(want)) < 0.1


@asynccontextmanager
async def rig(
    tmp_path: Path,
    start: dt.datetime,
    *,
    cloud: bool = False,
    firmware: str = "21.44",
    timeout_s: float = 10.0,
    **sim_options: Any,
) -> AsyncIterator[Rig]:
    """A simulated 21.44 gateway at `start`; mode and reserve go locally (the gateway is
    told to take a customer's change) or, with `cloud`, through the simulator's cloud."""
    sim = Simulator(
        port=0,
        speed=0,
        seed=5,
        start=start,
        firmware=firmware,
        allow_customer_operation=not cloud,
        **sim_options,
    )
    async with sim:
        gw = Gateway(
            sim.url,
            password=sim.password,
            email=sim.email,
            tls=PinnedCertificate(sim.fingerprint_sha256),
            timeout_s=timeout_s,
            clock=lambda: sim.now_s,
        )
        target = await demo_cloud(sim, tmp_path) if cloud else None
        actuator = GatewayActuator(
            gw,
            target,
            via="cloud" if cloud else "local",
            now=lambda: dt.datetime.fromtimestamp(sim.now_s, dt.UTC),
            readback_wait_s=0.0,  # one read back; not seen yet is the runner's to retry
            readback_poll_s=0.0,
            monotonic=lambda: sim.now_s,
        )
        try:
            yield Rig(sim, gw, actuator)
        finally:
            await gw.close()
            if target is not None:
                await target.client.close()
