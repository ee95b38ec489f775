"""Daily costs under a time-of-use tariff, checked against numbers worked out by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tegkit.monitor.costs import DailyCost, daily_costs
from tegkit.monitor.readings import Reading, RetentionPolicy
from tegkit.monitor.store import AsyncStore
from tegkit.monitor.store.sqlite import SqliteStore
from tegkit.tariff import Tariff

TOU = """
name = "test tou"
currency = "EUR"
[[periods]]
name = "off_peak"
start = "00:00"
end = "16:00"
buy_per_kwh = 0.20
sell_per_kwh = 0.05
[[periods]]
name = "peak"
start = "16:00"
end = "21:30"
buy_per_kwh = 0.50
sell_per_kwh = 0.10
[[periods]]
name = "shoulder"
start = "21:30"
end = "24:00"
buy_per_kwh = 0.30
sell_per_kwh = 0.05
"""
TZ = ZoneInfo("Europe/Berlin")
DAY = dt.date(2024, 1, 15)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """One local day of readings each minute: 10 Wh imported, 4 exported, 20 used per minute.

    A reading one minute before midnight starts the counters, so every minute of the day,
    00:00 to 23:59, carries exactly the energy of the minute that ends with its reading.
    """
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=TZ).timestamp() - 60
    rows = [
        Reading(
            gateway="g",
            taken_at=start + 60 * m,
            site_imported_wh=10.0 * m,
            site_exported_wh=4.0 * m,
            load_imported_wh=20.0 * m,
        )
        for m in range(1441)
    ]
    s = SqliteStore(tmp_path / "m.db")
    s.write_readings(rows)
    yield s
    s.close()


async def costs(store: SqliteStore, *args: Any) -> list[DailyCost]:
    """daily_costs through the store's async facade, as the web API asks for them."""
    facade = AsyncStore(store)
    try:
        return await daily_costs(facade, *args)
    finally:
        await facade.aclose()


# by hand: off-peak 960 min, peak 330 min (16:00-21:30), shoulder 150 min
COST = (9.6 * 0.20 + 3.3 * 0.50 + 1.5 * 0.30) - (3.84 * 0.05 + 1.32 * 0.10 + 0.6 * 0.05)
BASELINE = 19.2 * 0.20 + 6.6 * 0.50 + 3.0 * 0.30


async def test_a_tou_day_is_priced_per_period(store: SqliteStore) -> None:
    tariff = Tariff.from_toml(TOU)
    [day] = await costs(store, "g", DAY, DAY, tariff, TZ)
    assert pytest.approx(3.666) == COST
    assert pytest.approx(8.04) == BASELINE
    assert day.day == DAY and day.currency == "EUR"
    assert day.cost == pytest.approx(COST)
    assert day.baseline_cost == pytest.approx(BASELINE)
    assert day.savings == pytest.approx(BASELINE - COST)
    assert (day.grid_in_wh, day.grid_out_wh, day.home_wh) == (14400, 5760, 28800)


async def test_the_half_hour_boundary_is_split_without_minute_rollups(store: SqliteStore) -> None:
    # retention removed the minutes: the 21:00 hour is split 30/30 by its minutes' prices
    store.retention(RetentionPolicy(raw_days=None, minute_days=0), now=2e9)
    assert store.energy("g", 0, 2e9, "minute") == []
    [day] = await costs(store, "g", DAY, DAY, Tariff.from_toml(TOU), TZ)
    assert day.cost == pytest.approx(COST)
    assert day.baseline_cost == pytest.approx(BASELINE)


async def test_days_without_data_have_no_cost_not_zero(store: SqliteStore) -> None:
    tariff = Tariff.from_toml(TOU)
    empty, primed, _ = await costs(store, "g", DAY - dt.timedelta(2), DAY, tariff, TZ)
    assert empty == DailyCost(DAY - dt.timedelta(2), None, None, None, "EUR")
    # the priming reading at 23:59 is data: a recorded minute in which nothing flowed yet
    assert (primed.cost, primed.baseline_cost, primed.home_wh) == (0.0, 0.0, 0.0)
