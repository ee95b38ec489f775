"""The dashboard in real headless Chromium (Debian's), against a monitor of the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from monitor_helpers import sim_clock, target
from playwright.async_api import async_playwright, expect

from tegkit.monitor.demo import backfill
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import Monitor
from tegkit.sim import Simulator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# Mean colour (r, g, b, alpha; 0-255) of one pixel column of a chart's plot area at time t.
COLUMN_RGBA = """([chart, t]) => {
  const u = state.charts[chart];
  const x = Math.round(u.valToPos(t, "x", true));
  const px = u.ctx.getImageData(x, Math.round(u.bbox.top), 1, Math.round(u.bbox.height)).data;
  const sum = [0, 0, 0, 0];
  for (let i = 0; i < px.length; i += 4) for (let c = 0; c < 4; c++) sum[c] += px[i + c];
  return sum.map((v) => v / (px.length / 4));
}"""


def _duration(s: float) -> str:
    """As the dashboard's outage list writes a length (app.js duration())."""
    s = round(s)
    h, m, r = s // 3600, s % 3600 // 60, s % 60
    return (f"{h} h " if h else "") + (f"{m} min " if h or m else "") + f"{r} s"


def _kw(watts: float | None) -> str:
    if watts is None:
        return "–"
    v = abs(watts) / 1000
    return (f"{v:.2f}" if v < 10 else f"{v:.1f}") + " kW"


async def test_dashboard_shows_the_live_state_and_history(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium (make sysdeps)")
    async with Simulator(port=0, scenario="evening-outage", speed=0) as sim:
        monitor = Monitor(
            [target(sim)],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            tz=sim.gateway.tz,
            control_token="dashboard-token",
            config=PollerConfig(),
            clock=sim_clock(sim),
            stale_after_s=3600.0,
        )
        await monitor.start(poll=False)  # the state stays as the backfill left it
        try:
            # a day and a half with the outage, and an hour of stopped system: a gap
            written = await backfill(monitor, sim, hours=26)
            stopped_at = sim.gateway.site.epoch_s
            sim.stop_sitemaster()
            await backfill(monitor, sim, hours=1)
            running_at = sim.gateway.site.epoch_s
            sim.run_sitemaster()
            written += await backfill(monitor, sim, hours=3)
            assert written > 300
            async with aiohttp.ClientSession() as http:
                async with http.get(monitor.url + "api/live") as r:
                    live = (await r.json())["gateways"][0]
                async with http.get(monitor.url + "api/gaps") as r:
                    gaps = (await r.json())["gaps"]
                since = str(running_at - 3 * 86400)
                async with http.get(monitor.url + "api/outages", params={"from": since}) as r:
                    [outage] = (await r.json())["outages"]
            assert [(g["start"], g["end"], g["reason"]) for g in gaps] == [
                (stopped_at, running_at, "system stopped")
            ]
            reading = live["reading"]
            errors: list[str] = []
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    page.on(
                        "console",
                        lambda m: errors.append(m.text) if m.type == "error" else None,
                    )
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(monitor.url)
                    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    shown = {
                        name: await page.text_content(f"#v-{name}")
                        for name in ("solar", "grid", "home", "battery")
                    }
                    assert shown == {
                        "solar": _kw(reading["solar_w"]),
                        "grid": _kw(reading["site_w"]),
                        "home": _kw(reading["load_w"]),
                        "battery": _kw(reading["battery_w"]),
                    }
                    soe = await page.text_content("#v-soe")
                    assert soe == f"{round(live['soe']['app_percent'])}%"
                    charts: dict[str, Any] = await page.evaluate(
                        """() => Object.fromEntries(Object.entries(state.charts).map(([k, u]) =>
                              [k, u.data.slice(1).map(s => s.filter(v => v !== null).length)]))"""
                    )
                    assert set(charts) == {"power", "soe", "daily"}
                    assert all(n > 0 for n in charts["power"]), charts
                    assert charts["soe"][0] > 0 and charts["daily"][0] > 0
                    for chart in ("#chart-power", "#chart-soe", "#chart-daily"):
                        assert await page.locator(f"{chart} canvas").count() == 1
                    # today: the stopped hour is shaded grey, the evening after the data is not
                    gap_mid = (stopped_at + running_at) / 2
                    for chart in ("power", "soe"):
                        gap = await page.evaluate(COLUMN_RGBA, [chart, gap_mid])
                        # 22:30, after the last reading and off the 2-hour grid lines
                        empty = await page.evaluate(COLUMN_RGBA, [chart, running_at + 16200])
                        assert gap[3] > empty[3] + 20, (chart, gap, empty)
                        assert gap[2] >= gap[0], (chart, gap)  # grey-blue, not the outage red
                    await expect(page.locator("#gap-note")).to_contain_text("system stopped")
                    assert await page.is_visible("#shade-legend")
                    await page.click("#prev")  # the day before held the 3 h outage
                    await expect(page.locator("#outage-rows")).to_contain_text(
                        _duration(outage["duration_s"])
                    )
                    quarter = outage["start"] + outage["duration_s"] / 4  # off the grid lines
                    red = await page.evaluate(COLUMN_RGBA, ["power", quarter])
                    assert red[3] > 20 and red[0] > red[1] + 60, red  # shaded red
                    await expect(page.locator("#gap-note")).to_be_empty()
                    assert await page.is_visible("#login-open")  # a token: the login exists
                    await page.click("#next")
                    await expect(page.locator("#outage-rows")).not_to_contain_text("3 h")
                    ARTIFACTS.mkdir(exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
                    phone = await browser.new_page(viewport={"width": 390, "height": 844})
                    await phone.goto(monitor.url)
                    await phone.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    width = await phone.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390  # nothing overflows sideways on a phone
                    await phone.screenshot(
                        path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True
                    )
                finally:
                    await browser.close()
            assert errors == []
        finally:
            await monitor.close()


async def test_each_gateways_days_follow_its_own_zone(tmp_path: Path) -> None:
    """Two sites, Los Angeles and Sydney, on a monitor whose own zone is UTC: the charts
    and day labels follow the zone of the gateway chosen in the page."""
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000, flush_interval_s=0.5
    )
    zones = {"la": "America/Los_Angeles", "syd": "Australia/Sydney"}
    async with (
        Simulator(port=0, speed=0) as la,
        Simulator(port=0, speed=0) as syd,
    ):
        la.gateway.set_timezone(zones["la"])
        syd.gateway.set_timezone(zones["syd"])
        monitor = Monitor(
            [target(la, "la"), target(syd, "syd")],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            tz=dt.UTC,
            config=config,
            clock=sim_clock(la),
        )
        async with monitor:
            for _ in range(400):  # until both slow groups have read site_info (20 s at most)
                if all(g.site_tz for g in monitor.live.gateways()):
                    break
                await asyncio.sleep(0.05)
            assert {g.name: g.site_tz for g in monitor.live.gateways()} == zones
            errors: list[str] = []
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(monitor.url)
                    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    assert await page.evaluate("state.gateway") == "la"
                    assert await page.evaluate("state.tz") == zones["la"]
                    await page.select_option("#gateway", "syd")
                    await page.wait_for_function(
                        "tz => state.tz === tz", arg=zones["syd"], timeout=20_000
                    )
                    assert await page.evaluate("state.gateway") == "syd"
                finally:
                    await browser.close()
            assert errors == []
