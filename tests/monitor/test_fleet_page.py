"""The fleet page (/fleet, GET /api/fleet) in real headless Chromium (Debian's): a thousand
gateways' live state, sorting, filtering, refreshing, hostile names, the way to a site's
dashboard. The live state is filled directly (fleet_live) except where a real monitor of
simulated gateways is the point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from fleet_live import (
    NOW_S,
    STALE_AFTER_S,
    expected_status,
    fleet_context,
    gateway_name,
    labels_of,
    serve,
)
from monitor_helpers import sim_clock, target
from playwright.async_api import Browser, Page, async_playwright
from test_dashboard import ARGS, CHROMIUM, _need_chromium, watch

from tegkit import percent
from tegkit.models.vocabulary import POWER_NAMES, GridStatusValue
from tegkit.monitor.alerts import AlertBook, AlertConfig, AlertRule
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import Monitor
from tegkit.monitor.web import _CSP_PAGE
from tegkit.sim import Simulator

N = 1000
STATUS_ORDER = ["unauthorized", "stopped", "unreachable", "stale", "ok"]  # worst first


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    _need_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_fleet(
    browser: Browser, url: str, width: int = 1400, height: int = 900
) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": height}, locale="en-US")
    problems = watch(page)
    await page.goto(url)
    await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, problems


async def shown_names(page: Page) -> list[str]:
    """The names of every row that passes the filters, in the page's order."""
    names: list[str] = await page.evaluate("fleet.visible.map((r) => r.gateway)")
    return names


async def drawn_names(page: Page) -> list[str]:
    """The names in the rows drawn in the document, top to bottom."""
    names: list[str] = await page.eval_on_selector_all(
        "#rows tr[data-i] td.name a", "links => links.map((a) => a.textContent)"
    )
    return names


async def sort_by(page: Page, key: str) -> None:
    before = await page.evaluate("fleet.renders")
    await page.click(f"#head button[data-key='{key}']")
    await page.wait_for_function("n => fleet.renders > n", arg=before)


def _power(i: int, name: str) -> float:
    """Gateway i's power `name` as fleet_live sets it."""
    return {
        "site_w": 3 * i - 1500,
        "battery_w": 1000 - i,
        "load_w": 500 + i,
        "solar_w": 2 * i,
    }[name]


async def test_api_fleet_has_a_row_per_gateway_and_a_gap_is_a_status() -> None:
    ctx, _ = fleet_context(N)
    async with (
        serve(ctx) as url,
        aiohttp.ClientSession() as http,
        http.get(url + "api/fleet") as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        doc = await r.json()
    assert doc["now"] == NOW_S and doc["stale_after_s"] == STALE_AFTER_S
    assert doc["label_names"] == ["customer", "region"]
    assert set(doc["statuses"]) == set(STATUS_ORDER)
    cols = doc["columns"]
    assert cols[:3] == ["gateway", "status", "reason"] and set(POWER_NAMES) <= set(cols)
    assert sorted(p["column"] for p in doc["power"]) == sorted(POWER_NAMES)  # the page's heads
    rows = [dict(zip(cols, row, strict=True)) for row in doc["rows"]]
    assert [r["gateway"] for r in rows] == [gateway_name(i) for i in range(N)]
    for i, row in enumerate(rows):
        assert row["status"] == expected_status(i), row
        labels = labels_of(i)
        assert row["labels"] == [labels.get("customer", ""), labels["region"]]
        assert row["alerts"] == 0
        if row["status"] == "ok":
            assert row["reason"] is None
            soe_raw = 5.0 + (i % 96)
            assert row["soe_app_percent"] == pytest.approx(percent.raw_to_app(soe_raw), abs=0.05)
            for name in POWER_NAMES:
                assert row[name] == _power(i, name)
            assert row["grid_status"] in (
                GridStatusValue.CONNECTED,
                GridStatusValue.ISLANDED_ACTIVE,
            )
        else:  # no fresh data: the status and its reason, no value at all (never a zero)
            assert row["reason"], row
            for name in ("soe_app_percent", *POWER_NAMES, "grid_status"):
                assert row[name] is None, (name, row)
        if i % 50 == 0:
            assert row["taken_at"] is None and "no reading yet" in row["reason"]
        else:
            assert row["taken_at"] is not None and row["taken_at"] <= NOW_S
    reasons = {r["status"]: r["reason"] for r in rows if r["status"] != "ok"}
    assert "connection refused" in reasons["unreachable"]
    assert "login refused" in reasons["unauthorized"]
    assert "stopped" in reasons["stopped"]


async def test_open_alerts_are_counted_per_gateway() -> None:
    """The alerts column is the alert book's open alerts of each gateway."""
    ctx, _ = fleet_context(40)
    rules = (AlertRule("unreachable"), AlertRule("system_stopped"))
    book = AlertBook(AlertConfig(rules=rules), ctx.live)
    book.evaluate()
    ctx.alerts = book
    expected = book.open_counts()
    assert expected  # the unreachable and stopped gateways have one each
    async with (
        serve(ctx) as url,
        aiohttp.ClientSession() as http,
        http.get(url + "api/fleet") as r,
    ):
        doc = await r.json()
    at = doc["columns"].index("alerts")
    counts = {row[0]: row[at] for row in doc["rows"]}
    assert counts == {gateway_name(i): expected.get(gateway_name(i), 0) for i in range(40)}
    for i in range(40):
        if expected_status(i) in ("unreachable", "stopped"):
            assert counts[gateway_name(i)] >= 1


async def test_a_thousand_gateways_in_the_page() -> None:
    ctx, _ = fleet_context(N)
    async with serve(ctx) as url, chromium() as browser:
        response = await browser.new_page()
        answer = await response.goto(url + "fleet")
        assert answer is not None and answer.headers["content-security-policy"] == _CSP_PAGE
        await response.close()
        page, problems = await open_fleet(browser, url + "fleet")
        assert await page.text_content("#count") == f"{N} of {N} gateways"
        chips = await page.eval_on_selector_all(
            "#chips button",
            "bs => bs.map((b) => [b.dataset.status, Number(b.querySelector('.n').textContent)])",
        )
        want = {s: sum(expected_status(i) == s for i in range(N)) for s in STATUS_ORDER}
        assert chips == [[s, want[s]] for s in STATUS_ORDER]  # worst first
        assert len(await shown_names(page)) == N
        # the rows in view are drawn, not a thousand; scrolled to the end, the last ones are
        drawn = await drawn_names(page)
        assert 10 <= len(drawn) < 200
        header = await page.eval_on_selector_all(
            "#head th", "ths => ths.map((t) => t.textContent.replace(/[▲▼]/g, ''))"
        )
        assert header[-2:] == ["customer", "region"]
        await page.eval_on_selector("#wrap", "w => { w.scrollTop = w.scrollHeight; }")
        last = (await shown_names(page))[-1]
        await page.wait_for_function(
            "name => [...document.querySelectorAll('#rows td.name a')]"
            ".some((a) => a.textContent === name)",
            arg=last,
        )
        # one fresh row and one gap, cell by cell
        await page.fill("#filter", "gw-0012")
        await page.wait_for_function("() => fleet.visible.length === 1")
        cells = await page.eval_on_selector_all(
            "#rows tr[data-i] td", "tds => tds.map((t) => t.textContent)"
        )
        app = round(percent.raw_to_app(5.0 + 12))
        assert cells == [
            "gw-0012",
            "ok",
            "",
            str(app),
            "-1.46",  # grid: 3 * 12 - 1500 W (< 0: exporting)
            "0.99",  # Powerwall: discharging
            "0.02",  # solar
            "0.51",  # home
            "connected",
            "12 s",
            "0",
            "c5",
            "r0",
        ]
        await page.fill("#filter", "gw-0017")
        await page.wait_for_function(
            "() => fleet.visible.length === 1 && fleet.visible[0].gateway === 'gw-0017'"
        )
        cells = await page.eval_on_selector_all(
            "#rows tr[data-i] td", "tds => tds.map((t) => t.textContent)"
        )
        assert cells[:3] == ["gw-0017", "unreachable", "connection refused"]
        assert cells[3:9] == ["–"] * 6  # no fresh data: no values, not zeros
        assert cells[9] == "17 s"  # the latest reading is still dated
        assert problems == []


async def test_sorting_by_a_column_keeps_missing_values_last() -> None:
    ctx, _ = fleet_context(N)
    by_name = [gateway_name(i) for i in range(N)]
    ok = [i for i in range(N) if expected_status(i) == "ok"]
    missing = [gateway_name(i) for i in range(N) if expected_status(i) != "ok"]
    async with serve(ctx) as url, chromium() as browser:
        page, problems = await open_fleet(browser, url + "fleet")
        # by default: worst status first, then by name
        rank = {s: k for k, s in enumerate(STATUS_ORDER)}
        want = sorted(by_name, key=lambda n: (rank[expected_status(int(n[3:]))], n))
        assert await shown_names(page) == want
        await sort_by(page, "site_w")
        ascending = [gateway_name(i) for i in sorted(ok, key=lambda i: _power(i, "site_w"))]
        assert await shown_names(page) == ascending + missing
        assert await page.get_attribute("#head th:has(button[data-key='site_w'])", "aria-sort") == (
            "ascending"
        )
        assert (await drawn_names(page))[:5] == ascending[:5]
        await sort_by(page, "site_w")  # again: descending, the gaps still last
        assert await shown_names(page) == ascending[::-1] + missing
        assert (await drawn_names(page))[:5] == ascending[::-1][:5]
        await sort_by(page, "label:customer")
        customer = {gateway_name(i): labels_of(i).get("customer") for i in range(N)}
        with_customer = sorted((n for n in by_name if customer[n]), key=lambda n: (customer[n], n))
        without = [n for n in by_name if not customer[n]]
        assert await shown_names(page) == with_customer + without
        await sort_by(page, "gateway")
        assert await shown_names(page) == by_name
        await sort_by(page, "gateway")
        assert await shown_names(page) == by_name[::-1]
        assert problems == []


async def test_filtering_by_text_and_status_survives_a_reload_and_a_refresh() -> None:
    ctx, clock = fleet_context(N)
    async with serve(ctx) as url, chromium() as browser:
        page, problems = await open_fleet(browser, url + "fleet")
        await page.fill("#filter", "C3")  # a label value, any case
        await page.wait_for_function("() => fleet.q === 'c3'")
        want = [gateway_name(i) for i in range(N) if labels_of(i).get("customer") == "c3"]
        assert sorted(await shown_names(page)) == want
        await page.fill("#filter", "refused")  # a reason: connection or login refused
        await page.wait_for_function("() => fleet.q === 'refused'")
        refused = [
            gateway_name(i)
            for i in range(N)
            if expected_status(i) in ("unreachable", "unauthorized")
        ]
        assert sorted(await shown_names(page)) == refused
        chips = await page.eval_on_selector_all(
            "#chips button", "bs => bs.map((b) => b.querySelector('.n').textContent)"
        )
        assert chips == ["100", "0", "100", "0", "0"]  # the counts follow the text filter
        await page.click("#chips button[data-status='unreachable']")  # switched off
        await page.wait_for_function("() => fleet.hidden.has('unreachable')")
        unauthorized = [n for n in refused if expected_status(int(n[3:])) == "unauthorized"]
        assert sorted(await shown_names(page)) == unauthorized
        await sort_by(page, "gateway")
        await sort_by(page, "gateway")  # descending
        assert await shown_names(page) == unauthorized[::-1]
        assert await page.text_content("#count") == f"100 of {N} gateways"

        # a reload keeps the view: it is in the address
        await page.reload()
        await page.wait_for_selector("body[data-ready='1']")
        assert await page.input_value("#filter") == "refused"
        assert await shown_names(page) == unauthorized[::-1]
        assert await page.get_attribute(
            "#chips button[data-status='unreachable']", "aria-pressed"
        ) == ("false")

        # the live state changes: the periodic refresh shows it and keeps sort and filter
        fixed = ctx.live.get(unauthorized[0])
        assert fixed is not None
        fixed.problem = fixed.problem_reason = None
        broken = ctx.live.get(gateway_name(1))  # ok until now
        assert broken is not None
        broken.problem, broken.problem_reason = "auth", "login refused: wrong password"
        clock.now_s += 1
        before = await page.evaluate("fleet.refreshes")
        # two refreshes: the second began after the change, whatever the first saw
        await page.wait_for_function("n => fleet.refreshes >= n + 2", arg=before, timeout=30_000)
        now_shown = await shown_names(page)
        want_now = sorted({*unauthorized[1:], gateway_name(1)}, reverse=True)
        assert now_shown == want_now
        assert await page.input_value("#filter") == "refused"
        assert await page.get_attribute(
            "#head th:has(button[data-key='gateway'])", "aria-sort"
        ) == ("descending")
        assert problems == []


HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    '"><script>window.__pwned=2</script>',
    "x' onmouseover='window.__pwned=3",
    "&amp; &lt;b&gt; ü ∑ 🔋",
]


async def test_hostile_names_and_labels_are_shown_as_text() -> None:
    names = [*HOSTILE, *(gateway_name(i) for i in range(len(HOSTILE), 20))]
    ctx, _ = fleet_context(20, names=names)
    evil = {"region": "<b>west</b>", "customer": '"><svg onload="window.__pwned=4">'}
    for name in HOSTILE:
        settings = ctx.gateways[name]
        ctx.gateways[name] = FleetGateway(settings.target, labels=evil)  # type: ignore[index]
    gw = ctx.live.get(HOSTILE[0])
    assert gw is not None
    gw.problem, gw.problem_reason = "unreachable", "<i>refused</i> & <script>x()</script>"
    async with serve(ctx) as url, chromium() as browser:
        page, problems = await open_fleet(browser, url + "fleet")
        await page.fill("#filter", "")
        assert await page.evaluate("window.__pwned") is None
        markup = await page.eval_on_selector_all(
            "#rows img, #rows script, #rows svg, #rows b, #rows i, #head b", "els => els.length"
        )
        assert markup == 0
        for name in HOSTILE:
            text = await page.evaluate(
                "name => [...document.querySelectorAll('#rows td.name a')]"
                ".filter((a) => a.textContent === name).map((a) => a.getAttribute('href'))",
                name,
            )
            assert len(text) == 1, name
            # the link names the gateway exactly, as a query parameter
            assert parse_qs(urlsplit(text[0]).query)["gateway"] == [name]
        row_cells = await page.evaluate(
            "name => { const a = [...document.querySelectorAll('#rows td.name a')]"
            ".find((x) => x.textContent === name);"
            " return [...a.closest('tr').cells].map((c) => c.textContent); }",
            HOSTILE[0],
        )
        assert row_cells[2] == "<i>refused</i> & <script>x()</script>"
        assert row_cells[-2:] == ['"><svg onload="window.__pwned=4">', "<b>west</b>"]
        await page.fill("#filter", "<b>west")  # the filter takes text too
        await page.wait_for_function("() => fleet.visible.length === 4")
        await page.hover("#rows tr[data-i] td:nth-child(3)")
        assert await page.evaluate("window.__pwned") is None
        assert problems == []


async def test_a_row_opens_its_sites_dashboard(tmp_path: Path) -> None:
    """A monitor of two simulated gateways with fleet labels: both rows come from their
    pollers, and a click on a row opens the dashboard of that gateway."""
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000, flush_interval_s=0.5
    )
    async with Simulator(port=0, speed=0) as north, Simulator(port=0, speed=0) as south:
        gateways = [
            FleetGateway(target(north, "north"), config, labels={"region": "n"}),
            FleetGateway(target(south, "south"), config, labels={"region": "s"}),
        ]
        monitor = Monitor(
            gateways=gateways,
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            clock=sim_clock(north),
            stale_after_s=3600.0,
        )
        async with monitor:
            for _ in range(400):  # until both have a reading (20 s at most)
                if all(g.reading is not None for g in monitor.live.gateways()):
                    break
                await asyncio.sleep(0.05)
            async with chromium() as browser:
                page, problems = await open_fleet(browser, monitor.url + "fleet")
                assert await shown_names(page) == ["north", "south"]
                statuses = await page.evaluate("fleet.visible.map((r) => [r.status, r.labels])")
                assert statuses == [["ok", ["n"]], ["ok", ["s"]]]
                # a click on the row, not on the link: the whole row leads there
                await page.click("#rows tr[data-i='1'] td:nth-child(4)")
                await page.wait_for_url("**/?gateway=south")
                await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                assert parse_qs(urlsplit(page.url).query) == {"gateway": ["south"]}
                assert await page.evaluate("state.gateway") == "south"
                assert await page.input_value("#gateway") == "south"
                assert await page.is_visible("#fleet-link")
                await page.click("#fleet-link")  # and back to the fleet
                await page.wait_for_url("**/fleet")
                await page.wait_for_selector("body.fleet-page[data-ready='1']")
                await page.click("#rows tr[data-i='0'] td.name a")
                await page.wait_for_url("**/?gateway=north")
                await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                assert await page.evaluate("state.gateway") == "north"
                # the dashboard's choice is in the address too
                await page.select_option("#gateway", "south")
                await page.wait_for_function("() => location.search === '?gateway=south'")
                # leaving the dashboard ends its event stream: the only request cut short
                left = [p for p in problems if not p.endswith("api/live/stream net::ERR_ABORTED")]
                assert left == []


async def test_a_monitor_without_gateways_says_so() -> None:
    """A worker waiting for its leases watches nothing yet: the page says it, no error."""
    ctx, _ = fleet_context(0)
    async with serve(ctx) as url, chromium() as browser:
        page, problems = await open_fleet(browser, url + "fleet")
        assert await page.text_content("#count") == "0 of 0 gateways"
        assert await page.is_visible("#empty")
        assert await page.text_content("#empty") == "No gateway is watched."
        await page.fill("#filter", "anything")
        await page.wait_for_function("() => fleet.q === 'anything'")
        assert await page.text_content("#empty") == "No gateway is watched."
        assert problems == []
