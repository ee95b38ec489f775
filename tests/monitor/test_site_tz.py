"""Each gateway's days follow its own site's time zone, not the machine's.

The monitor here runs "on a UTC host" (its default zone is Etc/UTC) and watches a Los
Angeles site and a Sydney site. Daily energy, daily costs under a time-of-use tariff and
day-long history buckets are cut at each site's midnights, across both DST transitions
of each site: the 23-hour and 25-hour days hold 23 and 25 hours of energy, and the days
add up to the energy of the whole span. The zone comes from the gateway (site_info) and
an owner's --tz overrides it, per gateway or for all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import click
import pytest
from aiohttp import web
from monitor_helpers import sim_clock, target

from tegkit.cli.monitor import apply_tz
from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.readings import Reading
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.monitor.web import WebContext, create_app
from tegkit.sim import Simulator
from tegkit.tariff import load_tariff

HOST_TZ = ZoneInfo("Etc/UTC")
LA = "America/Los_Angeles"
SYDNEY = "Australia/Sydney"
ADELAIDE = "Australia/Adelaide"
LOAD_W = 1200.0  # the home draws this all the time, all of it from the grid
STEP_S = 300  # one reading every five minutes, on whole UTC minutes

# (site, zone, the local day of a DST change, hours in that day)
TRANSITIONS = [
    ("la", LA, dt.date(2024, 3, 10), 23),
    ("la", LA, dt.date(2024, 11, 3), 25),
    ("syd", SYDNEY, dt.date(2024, 4, 7), 25),
    ("syd", SYDNEY, dt.date(2024, 10, 6), 23),
    # midnight on a half hour of UTC: the day's edges cut the hour rollups
    ("adl", ADELAIDE, dt.date(2024, 10, 6), 23),
]

TOU = """
currency = "USD"
[[periods]]
name = "off_peak"
start = "21:00"
end = "16:00"
buy_per_kwh = 0.10
sell_per_kwh = 0.0
[[periods]]
name = "peak"
start = "16:00"
end = "21:00"
buy_per_kwh = 0.50
sell_per_kwh = 0.0
"""


def _midnight(day: dt.date, zone: str) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(zone)).timestamp()


def _readings(gateway: str, zone: str, day: dt.date) -> list[Reading]:
    """Readings from an hour before the local midnight before `day` to an hour after the
    one after the next day: three whole local days around the DST change."""
    start = int(_midnight(day - dt.timedelta(1), zone)) - 3600
    end = int(_midnight(day + dt.timedelta(2), zone)) + 3600
    wh_per_s = LOAD_W / 3600
    base = 1_000_000.0
    return [
        Reading(
            gateway=gateway,
            taken_at=float(t),
            site_w=LOAD_W,
            battery_w=0.0,
            load_w=LOAD_W,
            solar_w=0.0,
            soe_raw_percent=50.0,
            grid_status="SystemGridConnected",
            site_imported_wh=base + (t - start) * wh_per_s,
            site_exported_wh=0.0,
            battery_imported_wh=0.0,
            battery_exported_wh=0.0,
            load_imported_wh=base + (t - start) * wh_per_s,
            solar_exported_wh=0.0,
        )
        for t in range(start, end + 1, STEP_S)
    ]


@asynccontextmanager
async def _served(tmp_path: Path, overrides: dict[str, str] | None = None) -> AsyncIterator[str]:
    """The monitor's HTTP API on loopback over a store holding both sites' readings; the
    sites' zones are as the poller learns them from site_info."""
    store = AsyncStore(open_store(tmp_path / "tz.db"))
    for gateway, zone, day, _hours in TRANSITIONS:
        await store.write_readings(_readings(gateway, zone, day))
    live = LiveState(clock=lambda: _midnight(dt.date(2024, 12, 1), LA))
    for gateway, zone in (("la", LA), ("syd", SYDNEY), ("adl", ADELAIDE)):
        g = live.add(gateway, f"https://{gateway}.invalid")
        g.site_tz = zone  # what the slow group's site_info brought
        if overrides and gateway in overrides:
            g.tz_override = ZoneInfo(overrides[gateway])
    tariff_file = tmp_path / "tou.toml"
    tariff_file.write_text(TOU)
    ctx = WebContext(live=live, store=store, tz=HOST_TZ, tariff=load_tariff(tariff_file))
    runner = web.AppRunner(create_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()
        await store.aclose()


async def _get(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


def _expected_cost(day: dt.date, zone: str) -> float:
    """Every local hour of `day` at its price: 1.2 kWh an hour from the grid."""
    tz = ZoneInfo(zone)
    start, end = _midnight(day, zone), _midnight(day + dt.timedelta(1), zone)
    total = 0.0
    t = start
    while t < end:
        hour = dt.datetime.fromtimestamp(t, tz).hour
        total += LOAD_W / 1000 * (0.50 if 16 <= hour < 21 else 0.10)
        t += 3600
    return total


@pytest.mark.parametrize(("gateway", "zone", "day", "hours"), TRANSITIONS)
async def test_days_follow_the_sites_zone_across_dst(
    tmp_path: Path, gateway: str, zone: str, day: dt.date, hours: int
) -> None:
    before, after = day - dt.timedelta(1), day + dt.timedelta(1)
    async with _served(tmp_path) as url, aiohttp.ClientSession() as http:
        doc = await _get(
            http, url + "api/daily", gateway=gateway, **{"from": str(before), "to": str(after)}
        )
        assert doc["tz"] == zone
        days = {d["day"]: d for d in doc["days"]}
        assert list(days) == [str(before), str(day), str(after)]
        home = [days[str(d)]["home_wh"] for d in (before, day, after)]
        assert home == pytest.approx([24 * LOAD_W, hours * LOAD_W, 24 * LOAD_W])
        # the days add up to the energy between the first and the last local midnight
        span_h = (_midnight(after + dt.timedelta(1), zone) - _midnight(before, zone)) / 3600
        assert sum(home) == pytest.approx(span_h * LOAD_W)
        assert [days[str(d)]["grid_in_wh"] for d in (before, day, after)] == pytest.approx(home)
        # time-of-use prices by the site's clock: five peak hours whatever the day's length
        for d in (before, day, after):
            assert days[str(d)]["cost"] == pytest.approx(_expected_cost(d, zone))

        # day-long history buckets start at the site's midnights and hold its hours
        span = {
            "from": str(_midnight(before, zone)),
            "to": str(_midnight(after + dt.timedelta(1), zone) - 1),
        }
        hist = await _get(http, url + "api/history", gateway=gateway, step="86400", **span)
        assert hist["t"] == [_midnight(d, zone) for d in (before, day, after)]
        assert hist["load_w"] == pytest.approx([LOAD_W] * 3)


async def test_an_owners_zone_overrides_the_gateways(tmp_path: Path) -> None:
    day = dt.date(2024, 3, 10)  # Los Angeles changes its clocks; Berlin does not that day
    async with (
        _served(tmp_path, overrides={"la": "Europe/Berlin"}) as url,
        aiohttp.ClientSession() as http,
    ):
        doc = await _get(
            http, url + "api/daily", gateway="la", **{"from": str(day), "to": str(day)}
        )
        assert doc["tz"] == "Europe/Berlin"
        live = await _get(http, url + "api/live")
        assert [(g["gateway"], g["tz"]) for g in live["gateways"]] == [
            ("la", "Europe/Berlin"),
            ("syd", SYDNEY),
            ("adl", ADELAIDE),
        ]
        # a naive time in a query is the gateway's own local time
        hist = await _get(
            http,
            url + "api/history",
            gateway="syd",
            step="3600",
            **{"from": "2024-04-07T00:00:00", "to": "2024-04-07T12:00:00"},
        )
        assert hist["from"] == _midnight(dt.date(2024, 4, 7), SYDNEY)


def test_tz_option_for_every_gateway_and_for_one() -> None:
    home = GatewayTarget("home", "https://127.0.0.1:1")
    cabin = GatewayTarget("cabin", "https://127.0.0.1:2")
    both = apply_tz([home, cabin], ("America/Los_Angeles", "cabin=Australia/Sydney"))
    assert [t.tz for t in both] == [ZoneInfo(LA), ZoneInfo(SYDNEY)]
    assert apply_tz([home, cabin], ()) == [home, cabin]  # each follows its gateway
    with pytest.raises(click.BadParameter, match="no gateway named 'garage'"):
        apply_tz([home], ("garage=Europe/Berlin",))
    with pytest.raises(click.BadParameter, match="not a time zone name"):
        apply_tz([home], ("home=Mars/Olympus_Mons",))


async def test_the_zone_comes_from_each_simulated_gateway(tmp_path: Path) -> None:
    """Two simulators, one in Los Angeles and one in Sydney, and a monitor on UTC."""
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000, flush_interval_s=0.5
    )
    async with (
        Simulator(port=0, speed=0) as la,
        Simulator(port=0, speed=0) as syd,
        aiohttp.ClientSession() as http,
    ):
        syd.gateway.set_timezone(SYDNEY)
        la.gateway.set_timezone(LA)
        monitor = Monitor(
            [target(la, "la"), target(syd, "syd")],
            db=tmp_path / "m.db",
            listen=("127.0.0.1", 0),
            tz=HOST_TZ,
            config=config,
            clock=sim_clock(la),
        )
        async with monitor:
            for _ in range(400):  # until both slow groups have read site_info
                if all(g.site_tz for g in monitor.live.gateways()):
                    break
                await asyncio.sleep(0.05)
            for name, zone in (("la", LA), ("syd", SYDNEY)):
                doc = await _get(http, monitor.url + "api/daily", gateway=name)
                assert doc["tz"] == zone
                today = dt.datetime.fromtimestamp(sim_clock(la)(), ZoneInfo(zone)).date()
                assert doc["days"][-1]["day"] == str(today)


async def test_a_targets_zone_wins_over_what_its_gateway_says(tmp_path: Path) -> None:
    """`--tz home=Europe/Berlin` reaches the monitor as the target's zone."""
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000, flush_interval_s=0.5
    )
    async with Simulator(port=0, speed=0) as sim, aiohttp.ClientSession() as http:
        sim.gateway.set_timezone(LA)
        [home] = apply_tz([target(sim, "home")], ("home=Europe/Berlin",))
        monitor = Monitor(
            [home], db=tmp_path / "m.db", listen=("127.0.0.1", 0), tz=HOST_TZ, config=config
        )
        async with monitor:
            for _ in range(400):  # until the slow group has read site_info
                if monitor.live.gateways()[0].site_tz:
                    break
                await asyncio.sleep(0.05)
            assert monitor.live.gateways()[0].site_tz == LA
            doc = await _get(http, monitor.url + "api/daily", gateway="home")
            assert doc["tz"] == "Europe/Berlin"
