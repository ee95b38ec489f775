"""A fleet's live state built directly (no simulators): the fleet page and metrics tests.

Gateway i runs firmware 23.44.0 (even i) or 24.4.0 (odd), has asked for soe and grid_status
10 + i times each, and is, by i % 10: 0-5 fresh ("ok"), 6 stale (its reading 10 minutes old), 7
unreachable, 8 stopped, 9 unauthorized; every 50th fresh one has never been read at all
(stale, "no reading yet") instead. Fresh gateways have distinct powers; labels are region
(r0..r3) and customer (c0..c6), and every 11th gateway has no customer label.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from tegkit.models.vocabulary import GridStatusValue
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.live import DurationHistogram, GatewayLive, LiveState
from tegkit.monitor.poller import GatewayTarget
from tegkit.monitor.readings import Reading
from tegkit.monitor.web import WebContext, create_app

NOW_S = 1_750_000_000.0
STALE_AFTER_S = 30.0


@dataclass
class Clock:
    now_s: float = NOW_S

    def __call__(self) -> float:
        return self.now_s


def gateway_name(i: int) -> str:
    return f"gw-{i:04d}"


def labels_of(i: int) -> dict[str, str]:
    labels = {"region": f"r{i % 4}"}
    if i % 11:
        labels["customer"] = f"c{i % 7}"
    return labels


def expected_status(i: int) -> str:
    kind = i % 10
    if kind <= 5:
        return "stale" if i % 50 == 0 else "ok"
    return ("stale", "unreachable", "stopped", "unauthorized")[kind - 6]


def set_state(g: GatewayLive, i: int, now_s: float) -> None:
    """Gateway i's state as the module docstring says."""
    kind = i % 10
    g.version = ("23.44.0", "24.4.0")[i % 2]
    g.counters.requests_total = {"soe": 10 + i, "grid_status": 10 + i}
    g.counters.durations["soe"] = DurationHistogram()
    g.counters.durations["soe"].observe(0.02 * (1 + i % 3))
    if i % 50 == 0:
        return  # never read
    off_grid = i % 13 == 0
    g.reading = Reading(
        gateway=g.name,
        taken_at=now_s - (600.0 if kind == 6 else float(i % 20)),
        site_w=float(3 * i - 1500),
        battery_w=float(1000 - i),
        load_w=float(500 + i),
        solar_w=float(2 * i),
        soe_raw_percent=5.0 + (i % 96),
        grid_status=GridStatusValue.ISLANDED_ACTIVE if off_grid else GridStatusValue.CONNECTED,
    )
    if kind >= 7:
        g.problem = ("unreachable", "stopped", "auth")[kind - 7]
        g.problem_reason = ("connection refused", "the system is stopped", "login refused")[
            kind - 7
        ]
        g.problem_since = now_s - 300.0
        g.counters.errors_total[("soe", g.problem)] = 3


def fleet_context(
    n: int, names: list[str] | None = None, per_gateway: bool | None = None
) -> tuple[WebContext, Clock]:
    """A monitor's web context over `n` gateways in the states above (no pollers, no store)."""
    clock = Clock()
    live = LiveState(clock=clock, stale_after_s=STALE_AFTER_S)
    gateways: dict[str, FleetGateway] = {}
    for i in range(n):
        name = names[i] if names is not None else gateway_name(i)
        url = f"https://127.0.0.1:{10000 + i}"
        set_state(live.add(name, url), i, clock.now_s)
        target = GatewayTarget(name, url, password="not-used")
        gateways[name] = FleetGateway(target, labels=labels_of(i))
    ctx = WebContext(live=live, gateways=gateways, metrics_per_gateway=per_gateway)
    return ctx, clock


@asynccontextmanager
async def serve(ctx: WebContext) -> AsyncIterator[str]:
    """The monitor's app over `ctx` on a loopback port: its base URL."""
    runner = web.AppRunner(create_app(ctx), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()
