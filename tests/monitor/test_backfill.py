"""`teg monitor backfill` end to end: the simulator runs some days with an outage, the monitor
records only the last one, and the earlier days come from the simulated cloud over HTTP/2.

The cloud's days must equal the simulator's counters' deltas over each local day (to the
store's 1 mWh), the locally recorded day must stay as recorded, the outage must be listed
once with source 'cloud', and a second run must change nothing. Bad dates are usage errors
(exit code 2) that reach neither the cloud nor the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from click.testing import CliRunner, Result
from monitor_helpers import live_monitor, stepped_poller

from tegkit.cli import main
from tegkit.cloud import CloudClient
from tegkit.monitor.backfill import backfill
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.readings import DailyEnergy, Outage
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.sim import Simulator

LA = ZoneInfo("America/Los_Angeles")
FIRST = dt.date(2024, 6, 10)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(4)]  # the last one is recorded locally
OUTAGE_AT = dt.datetime(2024, 6, 11, 13, 0, tzinfo=LA)
OUTAGE_S = 45 * 60 + 30  # 45 minutes off grid and the gateway's 30 s to resynchronise
STEP_S = 300.0
# daily field -> counter of the simulator
DAILY_VS_COUNTERS = {
    "home_wh": ("load", "imported_wh"),
    "solar_wh": ("solar", "exported_wh"),
    "battery_in_wh": ("battery", "imported_wh"),
    "battery_out_wh": ("battery", "exported_wh"),
    "grid_in_wh": ("site", "imported_wh"),
    "grid_out_wh": ("site", "exported_wh"),
}


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), LA)


@dataclass
class Site:
    sim: Simulator
    db: str  # a SQLite file or a postgresql:// URL
    counters: list[dict[str, dict[str, float]]]  # at each midnight from FIRST on
    env: dict[str, str]

    def client(self) -> CloudClient:
        return CloudClient(
            self.sim.cloud_tokens.access_token,
            self.sim.cloud_tokens.refresh_token,
            base_url=self.sim.cloud_url,
            auth_url=self.sim.cloud_url,
            ssl=ssl.create_default_context(cafile=str(self.sim.cafile)),
        )

    async def teg(self, *args: str) -> Result:
        """`teg monitor backfill ARGS` in a thread, so this loop keeps serving the cloud."""
        argv = ["monitor", "backfill", "--gateway", "home", "--db", str(self.db), *args]
        return await asyncio.to_thread(CliRunner().invoke, main, argv, env=self.env)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # a test parametrized with "postgresql" runs on the suite's server


@pytest.fixture
async def site(tmp_path: Path, store_url: str) -> AsyncIterator[Site]:
    """Three days unrecorded (an outage on the second), then a day the monitor records."""
    db = store_url
    config = PollerConfig(
        fast_interval_s=STEP_S,
        slow_interval_s=3600.0,
        jitter_ratio=0.0,
        budget_per_minute=100,
        batch_size=100,
    )
    async with Simulator(port=0, cloud_port=0, speed=0, start=midnight(FIRST)) as sim:
        counters = [sim.state()["counters"]]
        await sim.advance(86400.0)
        counters.append(sim.state()["counters"])
        await sim.advance((OUTAGE_AT - midnight(DAYS[1])).total_seconds())
        sim.start_outage(minutes=45)
        await sim.advance((midnight(DAYS[2]) - OUTAGE_AT).total_seconds())
        counters.append(sim.state()["counters"])
        await sim.advance(86400.0)
        counters.append(sim.state()["counters"])
        assert sim.now == midnight(DAYS[3])
        async with stepped_poller(sim, db=db, config=config) as poller:  # type: ignore[arg-type]
            for _ in range(int(86400 / STEP_S)):
                await poller.poll_due()
                await sim.advance(STEP_S)
            await poller.poll_due()  # the reading at midnight closes the day
        counters.append(sim.state()["counters"])
        tokens = tmp_path / "tokens.json"
        tokens.write_text(
            json.dumps(
                {
                    "access_token": sim.cloud_tokens.access_token,
                    "refresh_token": sim.cloud_tokens.refresh_token,
                }
            )
        )
        tokens.chmod(0o600)
        env = {
            "TEG_CONFIG": str(tmp_path / "config.toml"),
            "TEG_TOKEN_FILE": str(tokens),
            "TEG_CLOUD_URL": sim.cloud_url,
            "TEG_CLOUD_AUTH_URL": sim.cloud_url,
            "TEG_CLOUD_CAFILE": str(sim.cafile),
        }
        yield Site(sim, db, counters, env)


def read_store(db: str) -> tuple[list[DailyEnergy], list[Outage], int]:
    store = open_store(db)
    try:
        days = store.daily("home", DAYS[0], DAYS[-1], LA)
        outages = store.outages("home", 0, 4e9)
        readings = len(store.readings("home", 0, 4e9))
    finally:
        store.close()
    return days, outages, readings


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_backfill_fills_unrecorded_days_from_the_cloud_once(site: Site) -> None:
    before_days, before_outages, readings = read_store(site.db)
    assert [d.source for d in before_days] == [None, None, None, "local"]
    assert before_outages == []  # the monitor was not running during the outage

    result = await site.teg("--from", "2024-06-10", "--to", "2024-06-13", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["filled"] == ["2024-06-10", "2024-06-11", "2024-06-12"]
    assert report["local"] == ["2024-06-13"]
    assert report["time_zone"] == "America/Los_Angeles"
    assert (report["outages_added"], report["outages_skipped"]) == (1, 0)

    days, outages, readings_after = read_store(site.db)
    assert [d.source for d in days] == ["cloud", "cloud", "cloud", "local"]
    assert days[-1] == before_days[-1]  # the local day is untouched
    assert readings_after == readings  # and so are its readings
    # each cloud day equals the simulator's counters over that local day (1 mWh kept)
    for i in range(3):
        start, end = site.counters[i], site.counters[i + 1]
        for name, (meter, direction) in DAILY_VS_COUNTERS.items():
            expected = end[meter][direction] - start[meter][direction]
            assert getattr(days[i], name) == pytest.approx(expected, abs=0.002), (i, name)
    assert days[0].solar_wh is not None and days[0].solar_wh > 10_000  # a sunny day
    assert outages == [
        Outage("home", OUTAGE_AT.timestamp(), OUTAGE_AT.timestamp() + OUTAGE_S, "cloud")
    ]

    again = await site.teg("--from", "2024-06-10", "--to", "2024-06-13", "--json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["filled"] == [] and second["unchanged"] == report["filled"]
    assert (second["outages_added"], second["outages_skipped"]) == (0, 1)
    assert read_store(site.db) == (days, outages, readings)


async def test_the_recorded_day_is_checked_against_the_counters_too(site: Site) -> None:
    # the local day is the monitor's own: its totals match the counters as recorded
    days, _, _ = read_store(site.db)
    start, end = site.counters[3], site.counters[4]
    for name, (meter, direction) in DAILY_VS_COUNTERS.items():
        expected = end[meter][direction] - start[meter][direction]
        assert getattr(days[3], name) == pytest.approx(expected, rel=0.005, abs=1.0), name


async def test_an_outage_the_monitor_recorded_is_not_added_again(site: Site) -> None:
    # the monitor's store already lists the same outage (as if it had been running then)
    store = open_store(site.db)
    try:
        sql_store: Any = store
        with sql_store._write_lock, sql_store._write_tx():  # an old recorder's own row
            gid = sql_store._gateway_id("home")
            sql_store._wexec(
                "INSERT INTO outages (gateway_id, start_ms, end_ms) VALUES (?, ?, ?)",
                (gid, round(OUTAGE_AT.timestamp() * 1000) + 4000, None),
            )
    finally:
        store.close()
    async with site.client() as client:
        async_store = AsyncStore(open_store(site.db))
        try:
            report = await backfill(
                async_store,
                client,
                site_id=site.sim.cloud_site.energy_site_id,
                gateway="home",
                first=DAYS[0],
                last=DAYS[2],
            )
        finally:
            await async_store.aclose()
    assert (report.outages_added, report.outages_skipped) == (0, 1)
    _, outages, _ = read_store(site.db)
    assert [o.source for o in outages] == ["local"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2024-13-01"], "--from"),
        (["--from", "yesterday"], "--from"),
        (["--from", "2024-06-12", "--to", "2024-06-10"], "--to"),
        (["--from", "2020-01-01", "--to", "2024-06-10"], "at most 400 days"),
        (["--from", "2024-06-10", "--to", "2024-06-11", "--tz", "Mars/Olympus"], "--tz"),
        (["--to", "2024-06-11"], "--from"),
    ],
)
async def test_bad_dates_are_usage_errors_that_ask_nothing_of_the_cloud(
    site: Site, args: list[str], words: str
) -> None:
    seen: list[str] = []
    site.sim.cloud_site.calendar_history = _refuse(seen)  # type: ignore[method-assign]
    before = read_store(site.db)
    result = await site.teg(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert seen == []
    assert read_store(site.db) == before


def _refuse(seen: list[str]) -> Any:
    def answer(*args: object) -> dict[str, Any]:
        seen.append(repr(args))
        raise AssertionError("the cloud was asked")

    return answer


async def test_the_web_api_shows_cloud_days_and_outages_with_their_source(site: Site) -> None:
    result = await site.teg("--from", "2024-06-10", "--to", "2024-06-13")
    assert result.exit_code == 0, result.output
    assert "3 days filled from the cloud" in result.stdout  # the text form says what it did
    days, _, _ = read_store(site.db)
    start = midnight(DAYS[0]).timestamp()
    end = midnight(DAYS[-1] + dt.timedelta(days=1)).timestamp()
    async with (
        live_monitor(site.sim, site.db, tz=LA) as monitor,
        aiohttp.ClientSession() as http,
    ):
        query = "gateway=home&from=2024-06-10&to=2024-06-13"
        async with http.get(f"{monitor.url}api/daily?{query}") as r:
            assert r.status == 200
            daily = (await r.json())["days"]
        async with http.get(f"{monitor.url}api/outages?gateway=home&from={start}&to={end}") as r:
            assert r.status == 200
            listed = (await r.json())["outages"]
    # the dashboard's bars: every day has its energy, each marked with where it came from
    assert [d["source"] for d in daily] == ["cloud", "cloud", "cloud", "local"]
    assert [d["home_wh"] for d in daily] == [d.home_wh for d in days]
    assert all(d["home_wh"] for d in daily)
    assert listed == [
        {
            "start": OUTAGE_AT.timestamp(),
            "end": OUTAGE_AT.timestamp() + OUTAGE_S,
            "duration_s": OUTAGE_S,
            "source": "cloud",
        }
    ]


async def test_the_dashboard_says_which_days_came_from_the_cloud(site: Site) -> None:
    from playwright.async_api import async_playwright, expect

    result = await site.teg("--from", "2024-06-10", "--to", "2024-06-13")
    assert result.exit_code == 0, result.output
    async with live_monitor(site.sim, site.db, tz=LA) as monitor, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(monitor.url)
            # the week of bars before the day shown: three cloud days, one local
            await expect(page.locator("#daily-total")).to_contain_text("3 days from the cloud")
        finally:
            await browser.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def test_a_fleet_api_client_backfills_the_same_outage_by_year(site: Site) -> None:
    fresh = site.sim.cloud_tokens.refresh(site.sim.cloud_tokens.refresh_token)
    assert fresh is not None
    asked: list[str] = []
    own = site.sim.cloud_site.calendar_history

    def calendar(kind: str, period: str, end: dt.datetime | None = None) -> dict[str, Any]:
        asked.append(f"{kind}/{period}")
        return own(kind, period, end)

    def no_owner_path() -> Any:
        raise AssertionError("the Fleet API has no /history path")

    site.sim.cloud_site.calendar_history = calendar  # type: ignore[method-assign]
    site.sim.cloud_site.backup_history = no_owner_path  # type: ignore[method-assign]
    fleet = CloudClient(
        fresh["access_token"],
        flavour="fleet",
        client_id="my-fleet-app",
        base_url=site.sim.cloud_url,
        auth_url=site.sim.cloud_url,
        ssl=ssl.create_default_context(cafile=str(site.sim.cafile)),
    )
    store = AsyncStore(open_store(site.db))
    try:
        async with fleet:
            report = await backfill(
                store,
                fleet,
                site_id=site.sim.cloud_site.energy_site_id,
                gateway="home",
                first=DAYS[0],
                last=DAYS[-1],
            )
    finally:
        await store.aclose()
    assert report.filled == DAYS[:3] and report.local == [DAYS[3]]
    assert report.outages_added == 1
    assert asked == ["energy/day"] * 3 + ["backup/year"]
    _, outages, _ = read_store(site.db)
    assert outages == [
        Outage("home", OUTAGE_AT.timestamp(), OUTAGE_AT.timestamp() + OUTAGE_S, "cloud")
    ]
