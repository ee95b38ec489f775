"""The dashboard's Plan panel in real headless Chromium: the next planned actions and the
recent outcomes of `teg monitor --plan`, and no panel (and no error) without a plan."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright, expect
from test_automation import planned_monitor, step
from test_dashboard import ARGS, CHROMIUM, _need_chromium, open_page, quiet_dashboard

from tegkit.sim import Simulator


async def test_the_plan_panel_shows_the_next_actions_and_what_was_done(tmp_path: Path) -> None:
    _need_chromium()
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        planned_monitor(sim, tmp_path) as (monitor, plan),
        aiohttp.ClientSession() as http,
    ):
        await step(sim, monitor, plan, 12 * 60)  # 05:12: the catch-up and evening are done
        async with http.get(monitor.url + "api/automation?count=10") as r:
            api = (await r.json())["plan"]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page, problems = await open_page(browser, monitor.url, 1280, 900)
                await expect(page.locator("#plan")).to_be_visible()
                await expect(page.locator("#plan-name")).to_have_text(
                    "test-plan · America/Los_Angeles time"
                )
                rows = page.locator("#plan-next tr")
                await expect(rows).to_have_count(10)
                texts = [await rows.nth(i).inner_text() for i in range(3)]
                cols = [t.split("\t") for t in texts]
                # the next actions at the plan's local times, in en-US words
                assert [c[0] for c in cols] == [
                    "Fri, Jun 21 05:20 PDT",
                    "Sat, Jun 22 05:10 PDT",
                    "Sat, Jun 22 05:20 PDT",
                ]
                assert [c[1] for c in cols] == ["morning", "evening", "morning"]
                assert cols[1][2] == api["next"][1]["what"]
                outcomes = page.locator("#plan-outcomes tr")
                await expect(outcomes).to_have_count(2)
                newest = await outcomes.nth(0).inner_text()
                assert newest.startswith("Fri, Jun 21 05:10 PDT\tevening\tdone")
                assert "set mode backup, reserve 100 %" in newest  # the detail under the result
                assert await outcomes.nth(1).locator(".result.done").count() == 1
                phone, more = await open_page(browser, monitor.url, 390, 844)
                await expect(phone.locator("#plan")).to_be_visible()
                assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
                assert problems == [] and more == []
            finally:
                await browser.close()


async def test_without_a_plan_the_panel_stays_hidden_and_the_page_is_quiet(
    tmp_path: Path,
) -> None:
    async with quiet_dashboard(tmp_path, hours=1) as (browser, url):
        page, problems = await open_page(browser, url, 1280, 900)
        assert await page.is_hidden("#plan")
        asked = await page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
        assert any("api/automation" in u for u in asked)  # asked, and answered "no plan"
        assert problems == []
