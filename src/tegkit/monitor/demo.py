"""`teg demo`: the simulator, a day of recorded history, and the monitor watching it live.

The simulator starts with a built-in scenario. Before the dashboard opens, the monitor
records the scenario's first `backfill_h` simulated hours step by step (the simulator's
clock stands still between steps), so history, daily energy and outages are populated at
once; then the simulator runs at `speed` x real time and the monitor polls it live.
The monitor stamps readings with the simulator's clock.

The gateway is as a customer meets it on 21.44: it refuses the customer's local change of
mode or reserve (403). The simulator's cloud is configured as a user would configure
Tesla's: tokens minted by its token endpoint, kept 0600 in the demo's own temporary folder
(never the user's config), so the dashboard's controls go through the cloud and are read
back locally once the change arrives (`DEMO_CLOUD_DELAY_S` later).
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from tegkit._private_file import make_private_dir
from tegkit.cloud import CloudClient, Tokens, write_token_file
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.route import CloudTarget
from tegkit.sim import Simulator
from tegkit.sim.scenario import DEFAULT_SCENARIO
from tegkit.tariff import builtin_tariff

BACKFILL_STEP_S = 60.0  # one reading a minute: the day chart's buckets are full
#: real seconds a change made through the simulated cloud takes to reach the gateway
DEMO_CLOUD_DELAY_S = 3.0


def cloud_delay_sim_s(speed: float) -> float:
    """The simulator's cloud delay (simulated seconds) that lasts DEMO_CLOUD_DELAY_S at `speed`."""
    return min(86400.0, DEMO_CLOUD_DELAY_S * speed)


async def demo_cloud(sim: Simulator, state_dir: Path) -> CloudTarget:
    """The simulator's cloud as a user configures Tesla's: fresh tokens from its token
    endpoint (over HTTP/2), written 0600 under `state_dir/cloud`, and a client that trusts
    the simulator's CA and keeps the file in step when it refreshes."""
    folder = state_dir / "cloud"
    make_private_dir(folder)
    token_file = folder / "demo.json"
    tokens = sim.cloud_tokens  # the account's grant, as a login tool would hand it over
    write_token_file(token_file, Tokens(tokens.access_token, tokens.refresh_token, None))
    context = ssl.create_default_context(cafile=str(sim.cafile))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the simulator signs its own
    client = CloudClient.from_token_file(
        token_file, base_url=sim.cloud_url, auth_url=sim.cloud_url, ssl=context
    )
    try:
        await client.refresh()  # minted by the token endpoint; rotated pair saved first
    except BaseException:
        await client.close()
        raise
    return CloudTarget(client, site_id=sim.cloud_site.energy_site_id)


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
        # 21.44 as a customer meets it: the local POST /api/operation is refused (403)
        async with Simulator(
            port=0, scenario=scenario, speed=0, cloud_delay_s=cloud_delay_sim_s(speed)
        ) as sim:
            target = GatewayTarget(
                "demo",
                sim.url,
                password=sim.password,
                email=sim.email,
                pin=sim.fingerprint_sha256,
                cloud=await demo_cloud(sim, Path(tmp)),
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
