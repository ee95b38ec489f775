"""The fleet page with 1,000 gateways: render in headless Chromium, GET /api/fleet, /metrics.

Target (issue 13): the page renders 1,000 rows in < 300 ms in Chromium. The monitor's app
runs in this process over a live state filled directly (1,000 gateways: fresh, stale,
unreachable, stopped, unauthorized; labels region x customer), no gateway behind it. Rows:

- render: the page's own measure of its first render (rows filtered, sorted, written and
  laid out; fleet.renderMs), median and p95 of LOADS page loads;
- load to rows: from navigation start to the rows laid out (fetch of /api/fleet and the
  vocabulary included; fleet.loadMs), median and p95;
- re-sort: a click on a column head to the new order laid out, median and p95;
- GET /api/fleet: response time (median, p95 of REQUESTS) and size;
- /metrics: size and series with per-gateway series and without (aggregates per label
  combination), and the time to build each.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from tegkit.models.vocabulary import GridStatusValue
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.live import LiveState
from tegkit.monitor.metrics import MetricsPage
from tegkit.monitor.poller import GatewayTarget
from tegkit.monitor.readings import Reading
from tegkit.monitor.web import WebContext, create_app

GATEWAYS = 1000
LOADS = 20
SORTS = 20
REQUESTS = 50
TARGET_MS = 300.0
NOW_S = 1_750_000_000.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SORT_KEYS = ("site_w", "gateway", "status", "soe_app_percent", "label:region", "age_s")

Row = tuple[str, float, str]


def _context(n: int) -> WebContext:
    """n gateways, by i % 10: 0-6 fresh, 7 stale, 8 unreachable, 9 stopped; every 97th
    refuses the password; labels region (8 values) and customer (25)."""
    live = LiveState(clock=lambda: NOW_S, stale_after_s=30.0)
    gateways: dict[str, FleetGateway] = {}
    for i in range(n):
        name = f"site-{i:05d}"
        url = f"https://127.0.0.1:{20000 + i}"
        g = live.add(name, url)
        kind = i % 10
        g.version = "24.4.0"
        g.reading = Reading(
            gateway=name,
            taken_at=NOW_S - (300.0 if kind == 7 else i % 15),
            site_w=float((i * 37) % 6000 - 3000),
            battery_w=float((i * 53) % 5000 - 2500),
            load_w=float(300 + (i * 11) % 4000),
            solar_w=float((i * 29) % 7000),
            soe_raw_percent=5.0 + i % 96,
            grid_status=GridStatusValue.CONNECTED,
        )
        g.counters.requests_total = {"soe": 100 + i, "grid_status": 100 + i}
        if kind in (8, 9):
            g.problem = "unreachable" if kind == 8 else "stopped"
            g.problem_reason = "connection refused" if kind == 8 else "the system is stopped"
        if i % 97 == 0:
            g.problem, g.problem_reason = "auth", "login refused"
        labels = {"region": f"region-{i % 8}", "customer": f"customer-{i % 25}"}
        gateways[name] = FleetGateway(GatewayTarget(name, url, password="-"), labels=labels)
    return WebContext(live=live, gateways=gateways)


@asynccontextmanager
async def _served(ctx: WebContext) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(ctx), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def _browser_rows(url: str) -> list[Row]:
    from playwright.async_api import async_playwright

    renders: list[float] = []
    loads: list[float] = []
    sorts: list[float] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            for _ in range(LOADS):
                await page.goto(url + "fleet")
                await page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                shown, render_ms, load_ms = await page.evaluate(
                    "[fleet.visible.length, fleet.renderMs, fleet.loadMs]"
                )
                if shown != GATEWAYS:
                    raise RuntimeError(f"the page shows {shown} rows, not {GATEWAYS}")
                renders.append(render_ms)
                loads.append(load_ms)
            for k in range(SORTS):
                key = SORT_KEYS[k % len(SORT_KEYS)]
                before = await page.evaluate("fleet.renders")
                await page.click(f"#head button[data-key='{key}']")
                await page.wait_for_function("n => fleet.renders > n", arg=before)
                sorts.append(await page.evaluate("fleet.renderMs"))
        finally:
            await browser.close()
    label = f"fleet page {GATEWAYS} rows"
    return [
        (f"{label}: render median (target < {TARGET_MS:.0f})", statistics.median(renders), "ms"),
        (f"{label}: render p95", _p95(renders), "ms"),
        (f"{label}: load to rows median", statistics.median(loads), "ms"),
        (f"{label}: load to rows p95", _p95(loads), "ms"),
        (f"{label}: re-sort median", statistics.median(sorts), "ms"),
        (f"{label}: re-sort p95", _p95(sorts), "ms"),
    ]


async def _api_rows(url: str) -> list[Row]:
    times: list[float] = []
    size = 0
    async with aiohttp.ClientSession() as http:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            async with http.get(url + "api/fleet") as r:
                body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"/api/fleet: HTTP {r.status}")
            times.append((time.perf_counter() - start) * 1000)
            size = len(body)
    return [
        (f"GET /api/fleet {GATEWAYS} gateways: median", statistics.median(times), "ms"),
        (f"GET /api/fleet {GATEWAYS} gateways: p95", _p95(times), "ms"),
        (f"GET /api/fleet {GATEWAYS} gateways: size", size / 1024, "KiB"),
    ]


def _metrics_rows(ctx: WebContext) -> list[Row]:
    rows: list[Row] = []
    for per_gateway, how in ((True, "per gateway"), (False, "aggregated")):
        page = MetricsPage(ctx.live, labels=ctx.fleet_labels, per_gateway=per_gateway)
        start = time.perf_counter()
        body = page.render()
        build_ms = (time.perf_counter() - start) * 1000
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        name = f"/metrics {GATEWAYS} gateways {how}"
        rows += [
            (f"{name}: size", len(body) / 1024, "KiB"),
            (f"{name}: series", float(series), "series"),
            (f"{name}: build", build_ms, "ms"),
        ]
    return rows


async def _run() -> list[Row]:
    ctx = _context(GATEWAYS)
    async with _served(ctx) as url:
        rows = await _browser_rows(url)
        rows += await _api_rows(url)
    return rows + _metrics_rows(ctx)


def run() -> list[Row]:
    return asyncio.run(_run())


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<60} {value:10.1f} {unit}")
