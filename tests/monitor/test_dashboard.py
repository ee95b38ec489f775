"""The dashboard in real headless Chromium (Debian's), against a monitor of the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
import pytest
from monitor_helpers import sim_clock, target
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tegkit import percent
from tegkit.models.vocabulary import (
    CUSTOMER_MODES,
    MODE_LABELS,
    GridStatusValue,
    OperationMode,
)
from tegkit.monitor.demo import backfill, run_demo
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


# Mean colour (r, g, b, alpha; 0-255) of one pixel column of a chart's plot area at time t,
# read from a copy (reading the chart's own canvas again and again warns in the console).
COLUMN_RGBA = """([chart, t]) => {
  const u = state.charts[chart];
  const x = Math.round(u.valToPos(t, "x", true));
  const h = Math.round(u.bbox.height);
  const copy = Object.assign(document.createElement("canvas"), { width: 1, height: h });
  const ctx = copy.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(u.ctx.canvas, x, Math.round(u.bbox.top), 1, h, 0, 0, 1, h);
  const px = ctx.getImageData(0, 0, 1, h).data;
  const sum = [0, 0, 0, 0];
  for (let i = 0; i < px.length; i += 4) for (let c = 0; c < 4; c++) sum[c] += px[i + c];
  return sum.map((v) => v / (px.length / 4));
}"""


# Per chart: the y axis labels now shown, the widest one's width and the room the axis
# leaves left of its ticks (CSS px). A label wider than its room is cut at the canvas edge.
Y_LABELS_FIT = """() => Object.entries(state.charts).map(([chart, u]) => {
  const axis = u.axes[1];
  u.ctx.font = axis.font[0];
  const labels = axis._values.filter((v) => v !== null);
  const widths = labels.map((v) => u.ctx.measureText(v).width / devicePixelRatio);
  const room = u.bbox.left / devicePixelRatio - axis.ticks.size - axis.gap;
  return { chart, labels, widest: Math.max(...widths), room, left: u.bbox.left };
})"""


def watch(page: Page) -> list[str]:
    """Everything a page complains about: console errors and warnings, uncaught errors,
    failed requests and answers of 400 or more. A healthy dashboard leaves it empty."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    return problems


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium (make sysdeps)")


@asynccontextmanager
async def sunny_dashboard(
    tmp_path: Path, hours: float = 4, control_token: str | None = None
) -> AsyncIterator[tuple[Browser, Monitor]]:
    """A monitor (controls only with `control_token`) of a gateway that lets a customer
    change its operation, `hours` of a sunny day recorded: a browser and the monitor."""
    _need_chromium()
    async with Simulator(
        port=0, scenario="sunny-day", speed=0, allow_customer_operation=True
    ) as sim:
        monitor = Monitor(
            [target(sim)],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            tz=sim.gateway.tz,
            control_token=control_token,
            config=PollerConfig(),
            clock=sim_clock(sim),
            stale_after_s=3600.0,
        )
        await monitor.start(poll=False)
        try:
            assert await backfill(monitor, sim, hours=hours) > 0
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    yield browser, monitor
                finally:
                    await browser.close()
        finally:
            await monitor.close()


@asynccontextmanager
async def quiet_dashboard(tmp_path: Path, hours: float = 4) -> AsyncIterator[tuple[Browser, str]]:
    """A monitor without a control token, `hours` of a sunny day recorded: a browser and
    the dashboard's address."""
    async with sunny_dashboard(tmp_path, hours) as (browser, monitor):
        yield browser, monitor.url


def set_grid_status(monitor: Monitor, grid_status: str) -> None:
    """The monitor's latest reading, as if the gateway had reported `grid_status`."""
    [gateway] = monitor.live.gateways()
    assert gateway.reading is not None
    gateway.reading = msgspec.structs.replace(gateway.reading, grid_status=grid_status)
    monitor.live.changed(gateway)


async def open_page(
    browser: Browser, url: str, width: int, height: int, pixel_ratio: float = 1
) -> tuple[Page, list[str]]:
    """The dashboard, loaded, in en-US (dates read the same on every machine), and the
    list its complaints go to."""
    page = await browser.new_page(
        viewport={"width": width, "height": height},
        device_scale_factor=pixel_ratio,
        locale="en-US",
    )
    problems = watch(page)
    await page.goto(url)
    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    return page, problems


async def test_dashboard_shows_the_live_state_and_history(tmp_path: Path) -> None:
    _need_chromium()
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
            stopped_at = sim.now_s
            sim.stop_sitemaster()
            await backfill(monitor, sim, hours=1)
            running_at = sim.now_s
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
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    errors = watch(page)
                    await page.goto(monitor.url)
                    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    meters = {"solar": "solar_w", "grid": "site_w", "home": "load_w"}
                    for name, field in {**meters, "battery": "battery_w"}.items():
                        # each meter's reading in its place, written by the page's own kw()
                        written = await page.evaluate("w => kw(w)", reading[field])
                        assert await page.text_content(f"#v-{name}") == written, name
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
                    # 3 h off grid, seen a reading (a minute) late
                    assert outage["duration_s"] == 3 * 3600 + 60
                    await expect(page.locator("#outage-rows")).to_contain_text("3 h 1 min 0 s")
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
                    errors += watch(phone)
                    await phone.goto(monitor.url)
                    await phone.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    width = await phone.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390  # nothing overflows sideways on a phone
                    await phone.screenshot(
                        path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True
                    )
                    assert errors == []  # before closing: a closed page aborts its stream
                finally:
                    await browser.close()
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
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1280, "height": 900})
                    errors = watch(page)
                    await page.goto(monitor.url)
                    await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
                    assert await page.evaluate("state.gateway") == "la"
                    assert await page.evaluate("state.tz") == zones["la"]
                    await page.select_option("#gateway", "syd")
                    await page.wait_for_function(
                        "tz => state.tz === tz", arg=zones["syd"], timeout=20_000
                    )
                    assert await page.evaluate("state.gateway") == "syd"
                    assert errors == []
                finally:
                    await browser.close()


async def test_a_monitor_without_controls_loads_with_an_empty_console(tmp_path: Path) -> None:
    """No control token: the page knows it from /api/live and never asks for the session
    (a 404 in the console on every load before)."""
    async with quiet_dashboard(tmp_path) as (browser, url):
        for width, height in ((1280, 900), (390, 844)):
            page, problems = await open_page(browser, url, width, height)
            await page.click("button[data-span='week']")
            await page.click("#prev")
            await page.click("#next")
            # every range asks three things: wait until the last range's answers are in
            await page.wait_for_function(
                """() => ["api/history", "api/outages", "api/daily"].every((path, i) =>
                     performance.getEntriesByType("resource")
                       .filter((e) => e.name.includes(path)).length >= [4, 5, 5][i])"""
            )
            assert await page.is_hidden("#login-open")
            assert await page.is_hidden("#control")
            asked = await page.evaluate(
                "performance.getEntriesByType('resource').map((e) => e.name)"
            )
            assert any("api/history" in u for u in asked), asked  # the list is the page's
            assert not [u for u in asked if "session" in u or "login" in u], asked
            # turned to a narrow window, every chart follows its box
            await page.set_viewport_size({"width": 360, "height": 800})
            await page.wait_for_function(
                """() => Object.entries(state.charts)
                     .every(([key, u]) => u.width === chartEl(key).clientWidth)""",
                timeout=10_000,
            )
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
            assert problems == []
            await page.close()


async def test_the_page_formats_with_its_own_code(tmp_path: Path) -> None:
    async with quiet_dashboard(tmp_path, hours=1) as (browser, url):
        page, problems = await open_page(browser, url, 1280, 900)
        written = {
            expr: await page.evaluate(expr)
            for expr in (
                "duration(0)", "duration(59.6)", "duration(125)", "duration(3600)",
                "duration(10805)", "kw(null)", "kw(undefined)", "kw(0)", "kw(-400)",
                "kw(9994)", "kw(12345)", "kwh(null)", "kwh(12345)", "kwh(123456)",
                "pct(null)", "pct(42.4)", "pct(30.04, 1)", "ago(null)", "ago(5)", "ago(600)",
                "ago(7200)", "money(null, 'USD')", "money(1.5, 'USD')", "money(1.5, 'bogus')",
                "axis('kW').values(null, [0.4, -12.5])", "color('solar')",
                "color('danger', 0.16)",
            )
        }  # fmt: skip
        assert written == {
            "duration(0)": "0 s",
            "duration(59.6)": "1 min 0 s",
            "duration(125)": "2 min 5 s",
            "duration(3600)": "1 h 0 min 0 s",
            "duration(10805)": "3 h 0 min 5 s",
            "kw(null)": "–",
            "kw(undefined)": "–",
            "kw(0)": "0.00 kW",
            "kw(-400)": "0.40 kW",  # the sign is the flow's direction, drawn on the line
            "kw(9994)": "9.99 kW",
            "kw(12345)": "12.3 kW",
            "kwh(null)": "–",
            "kwh(12345)": "12.3 kWh",
            "kwh(123456)": "123 kWh",
            "pct(null)": "–",
            "pct(42.4)": "42 %",
            "pct(30.04, 1)": "30.0 %",
            "ago(null)": "no reading yet",
            "ago(5)": "updated 5 s ago",
            "ago(600)": "updated 10 min ago",
            "ago(7200)": "updated 2.0 h ago",
            "money(null, 'USD')": "–",
            "money(1.5, 'USD')": "$1.50",
            "money(1.5, 'bogus')": "1.50 bogus",
            "axis('kW').values(null, [0.4, -12.5])": ["0.4 kW", "-12.5 kW"],
            "color('solar')": "#f7c948",  # read from style.css
            "color('danger', 0.16)": "rgba(255, 93, 93, 0.16)",
        }
        # each meter's node is drawn in its colour, by the one rule per meter
        strokes = await page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll(".node")].map((n) =>
                 [n.dataset.meter, getComputedStyle(n.querySelector("circle, rect")).stroke]))"""
        )
        assert strokes == {
            "solar": "rgb(247, 201, 72)",
            "grid": "rgb(163, 173, 187)",
            "home": "rgb(79, 168, 255)",
            "battery": "rgb(61, 220, 132)",
        }
        # Ranges in Los Angeles around the spring change (a 23-hour day), moved by steps.
        ranges = await page.evaluate(
            """() => {
              const kept = state.tz;
              state.tz = "America/Los_Angeles";
              const at = Date.parse("2024-03-10T12:00:00-07:00") / 1000;
              const iso = (r) => [r.start, r.end].map((t) => new Date(t * 1000).toISOString());
              const out = {};
              for (const span of ["day", "week", "month", "year"])
                for (const steps of [-1, 0, 1])
                  out[span + " " + steps] = iso(rangeOf(span, at, steps));
              out.day = isoDay(at);
              state.tz = kept;
              return out;
            }"""
        )
        assert ranges == {
            "day": "2024-03-10",
            "day -1": ["2024-03-09T08:00:00.000Z", "2024-03-10T08:00:00.000Z"],
            "day 0": ["2024-03-10T08:00:00.000Z", "2024-03-11T07:00:00.000Z"],
            "day 1": ["2024-03-11T07:00:00.000Z", "2024-03-12T07:00:00.000Z"],
            "week -1": ["2024-02-26T08:00:00.000Z", "2024-03-04T08:00:00.000Z"],
            "week 0": ["2024-03-04T08:00:00.000Z", "2024-03-11T07:00:00.000Z"],
            "week 1": ["2024-03-11T07:00:00.000Z", "2024-03-18T07:00:00.000Z"],
            "month -1": ["2024-02-01T08:00:00.000Z", "2024-03-01T08:00:00.000Z"],
            "month 0": ["2024-03-01T08:00:00.000Z", "2024-04-01T07:00:00.000Z"],
            "month 1": ["2024-04-01T07:00:00.000Z", "2024-05-01T07:00:00.000Z"],
            "year -1": ["2023-01-01T08:00:00.000Z", "2024-01-01T08:00:00.000Z"],
            "year 0": ["2024-01-01T08:00:00.000Z", "2025-01-01T08:00:00.000Z"],
            "year 1": ["2025-01-01T08:00:00.000Z", "2026-01-01T08:00:00.000Z"],
        }
        # The arrows step whole ranges: back two months and forward one is last month.
        today = dt.datetime.fromtimestamp(
            await page.evaluate("state.serverNow"), ZoneInfo(await page.evaluate("state.tz"))
        )
        last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%B %Y")
        await page.click("button[data-span='month']")
        for arrow in ("#prev", "#prev", "#next"):
            await page.click(arrow)
        await expect(page.locator("#range-label")).to_have_text(last_month)
        await page.click("button[data-span='week']")
        await page.click("#next")  # the week after the one that ends on the month's middle
        label = await page.text_content("#range-label")
        assert label is not None and " – " in label
        assert problems == []


async def test_y_axis_labels_fit_at_desktop_and_phone_widths(tmp_path: Path) -> None:
    """Every chart's y axis is as wide as its labels, at the day's own scale and at the
    scales that cut them before ("0.4 kW" showed as ".4 kW" on a quiet night)."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with quiet_dashboard(tmp_path) as (browser, url):
        # a phone's canvas has three device pixels to a CSS pixel
        for width, height, ratio, name in ((1280, 900, 1, "desktop"), (390, 844, 3, "phone")):
            page, problems = await open_page(browser, url, width, height, ratio)
            assert await page.evaluate("devicePixelRatio") == ratio
            fits = await page.evaluate(Y_LABELS_FIT)
            assert {f["chart"] for f in fits} == {"power", "soe", "daily"}
            # the two history charts share one time axis: their plots start at the same x
            [power_left] = [f["left"] for f in fits if f["chart"] == "power"]
            assert [f["left"] for f in fits if f["chart"] == "soe"] == [power_left]
            for y_min, y_max in ((-0.45, 0.45), (-12.5, 12.5), (-1234.5, 0.5)):
                await page.evaluate(
                    """([lo, hi]) => { for (const k of ["power", "daily"])
                         state.charts[k].setScale("y", { min: lo, max: hi }); }""",
                    [y_min, y_max],
                )
                fits += await page.evaluate(Y_LABELS_FIT)
                if y_max == 0.45:
                    await page.locator("#chart-power").screenshot(
                        path=str(ARTIFACTS / f"dashboard-axis-{name}.png")
                    )
            for fit in fits:
                assert fit["labels"], fit
                assert fit["widest"] <= fit["room"], (width, fit)
            quiet = [
                f["labels"] for f in fits if f["chart"] == "power" and "-0.4 kW" in f["labels"]
            ]
            assert quiet, fits  # the quiet scale was shown
            assert problems == []
            await page.close()


def test_colours_are_written_once_in_the_stylesheet() -> None:
    """The page's colours are variables in style.css's :root; the script and the page
    read them from there instead of writing them again."""
    static = Path(__file__).resolve().parents[2] / "src/tegkit/monitor/static"
    literal = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(\s*\d")
    for name in ("app.js", "index.html"):
        assert literal.findall((static / name).read_text(encoding="utf-8")) == [], name
    css = (static / "style.css").read_text(encoding="utf-8")
    root_end = css.index("}", css.index(":root {"))
    assert literal.findall(css[root_end:]) == []
    assert len(literal.findall(css[:root_end])) >= 10  # the palette itself


async def test_the_mode_choices_come_from_the_monitors_vocabulary(tmp_path: Path) -> None:
    """The mode select offers what the models let a customer choose, in their order and
    words; the mode shown and the answer to a change use the same words."""
    async with sunny_dashboard(tmp_path, hours=1, control_token="dashboard-token") as (
        browser,
        monitor,
    ):
        page, problems = await open_page(browser, monitor.url, 1280, 900)
        options = await page.eval_on_selector_all(
            "#c-mode option", "os => os.map((o) => [o.value, o.textContent])"
        )
        assert options == [[str(m), MODE_LABELS[m]] for m in CUSTOMER_MODES]
        await expect(page.locator("#mode")).to_have_text(
            MODE_LABELS[OperationMode.SELF_CONSUMPTION]
        )
        await page.click("#login-open")
        await page.fill("#token", "dashboard-token")
        await page.click("#login-form button[type='submit']")
        await expect(page.locator("#control")).to_be_visible()
        assert await page.input_value("#c-mode") == OperationMode.SELF_CONSUMPTION
        await page.select_option("#c-mode", str(OperationMode.BACKUP))
        await page.click("#c-apply")
        await expect(page.locator("#c-result")).to_contain_text(
            "Gateway reports: " + MODE_LABELS[OperationMode.BACKUP] + ", reserve"
        )
        assert problems == []
        await page.close()
        # the choices are the API's, whatever it says: a monitor offering every mode, in
        # another order and its own words, is followed as it is
        offered = await browser.new_page(viewport={"width": 1280, "height": 900})
        problems = watch(offered)
        served: list[str] = []

        async def every_mode(route: Route) -> None:
            answer = await route.fetch()
            vocabulary = await answer.json()
            vocabulary["modes"].reverse()
            for mode in vocabulary["modes"]:
                mode["customer"] = True
                mode["label"] = "say " + mode["label"]
                served.append(mode["value"])
            await route.fulfill(response=answer, json=vocabulary)

        await offered.route("**/api/vocabulary", every_mode)
        await offered.goto(monitor.url)
        await offered.wait_for_selector("body[data-ready='1']", timeout=20_000)
        options = await offered.eval_on_selector_all(
            "#c-mode option", "os => os.map((o) => [o.value, o.textContent])"
        )
        assert set(served) == set(OperationMode) and len(served) > len(CUSTOMER_MODES)
        assert options == [[v, "say " + MODE_LABELS[OperationMode(v)]] for v in served]
        assert problems == []


async def test_the_grid_chip_says_what_the_vocabulary_says(tmp_path: Path) -> None:
    """Label and colour from /api/vocabulary: reconnecting is still off grid; a status the
    monitor cannot place (waiting for the user, or one it has never heard of) is shown in
    no colour, an unknown one as sent and as text."""
    unknown = "SystemSomethingNew<b>bold</b>"
    cases = [
        (GridStatusValue.TRANSITION_TO_GRID, "reconnecting", "off-grid"),
        (GridStatusValue.ISLANDED_ACTIVE, "off grid (islanded)", "off-grid"),
        (GridStatusValue.CONNECTED, "connected", "on-grid"),
        (GridStatusValue.WAIT_FOR_USER, "waiting for the user", "neutral"),
        (unknown, unknown, "neutral"),
    ]
    async with sunny_dashboard(tmp_path, hours=1) as (browser, monitor):
        for status, text, tone in cases:
            set_grid_status(monitor, status)
            page, problems = await open_page(browser, monitor.url, 1280, 900)
            chip = page.locator("#grid-chip")
            await expect(chip).to_have_text(text)
            assert await chip.get_attribute("class") == "chip " + tone, status
            assert await page.locator("#grid-chip *").count() == 0  # text, never markup
            assert problems == []
            await page.close()


async def test_without_the_vocabulary_the_page_shows_raw_values_and_no_controls(
    tmp_path: Path,
) -> None:
    """/api/vocabulary unavailable: readings, the raw grid status and mode still show; the
    controls are there but disabled, with the reason; nothing else goes wrong."""
    async with sunny_dashboard(tmp_path, hours=1, control_token="dashboard-token") as (
        browser,
        monitor,
    ):
        set_grid_status(monitor, GridStatusValue.TRANSITION_TO_GRID)
        [gateway] = monitor.live.gateways()
        assert gateway.reading is not None
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        problems = watch(page)
        await page.route("**/api/vocabulary", lambda route: route.fulfill(status=503, body="{}"))
        await page.goto(monitor.url)
        await page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        written = await page.evaluate("w => kw(w)", gateway.reading.solar_w)
        assert await page.text_content("#v-solar") == written
        chip = page.locator("#grid-chip")
        await expect(chip).to_have_text(str(GridStatusValue.TRANSITION_TO_GRID))
        assert await chip.get_attribute("class") == "chip neutral"
        await expect(page.locator("#mode")).to_have_text(str(OperationMode.SELF_CONSUMPTION))
        await expect(page.locator("#control")).to_be_visible()
        for control in ("#c-mode", "#c-reserve", "#c-apply", "#logout"):
            assert await page.is_disabled(control), control
        await expect(page.locator("#c-result")).to_contain_text("could not be loaded")
        assert await page.is_hidden("#login-open")
        # the one failed answer, which the browser itself reports; nothing else
        assert [p for p in problems if "api/vocabulary" not in p] == [
            "console error: Failed to load resource: the server responded with a status of 503"
            " (Service Unavailable)"
        ], problems
        assert any("api/vocabulary" in p for p in problems), problems


async def test_on_the_21_44_demo_a_reserve_change_goes_through_the_cloud_and_is_read_back(
    tmp_path: Path,
) -> None:
    """`teg demo`'s gateway refuses a customer's local change, as 21.44 does: the dashboard's
    change reaches it through the simulated cloud, after the cloud's delay, and the page
    shows the value the monitor read back from the gateway locally."""
    _need_chromium()
    started: asyncio.Future[tuple[Monitor, Simulator]] = asyncio.get_running_loop().create_future()
    demo = asyncio.create_task(
        run_demo(
            "sunny-day",
            speed=60.0,
            listen=("127.0.0.1", 0),
            db=tmp_path / "demo.db",
            backfill_h=1,
            control_token="demo-token",
            on_ready=lambda monitor, sim: started.set_result((monitor, sim)),
        )
    )
    try:
        await asyncio.wait({demo, started}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        assert started.done(), demo.exception() if demo.done() else "the demo did not start"
        monitor, sim = started.result()
        gw = sim.gateway
        assert gw.profile.name == "21.44" and not gw.allow_customer_operation
        assert sim.cloud_site.cloud_delay_s > 0  # a change takes time to arrive
        commits = gw.settings.commission_count
        wanted = 35 if round(percent.raw_to_app(gw.backup_reserve_raw_percent)) != 35 else 45
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page, problems = await open_page(browser, monitor.url, 1280, 900)
                await page.click("#login-open")
                await page.fill("#token", "demo-token")
                await page.click("#login-form button[type='submit']")
                await expect(page.locator("#control")).to_be_visible()
                await page.fill("#c-reserve", str(wanted))
                await page.click("#c-apply")
                result = page.locator("#c-result")
                await expect(result).to_contain_text(
                    "sent through Tesla's cloud; the gateway reports it (read back locally)",
                    timeout=90_000,
                )
                await expect(result).to_contain_text(f"reserve {wanted} %")
                # the live view shows the read-back too (pushed by the monitor at once)
                await expect(page.locator("#reserve")).to_contain_text(f"{wanted} %")
                assert problems == []
            finally:
                await browser.close()
        assert gw.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(wanted))
        assert gw.settings.commission_count == commits  # not through the local wizard
        assert gw.settings.staged_operation == {}
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
