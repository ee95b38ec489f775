"""What each day cost under a tariff, and what solar and battery saved against none.

cost = grid import x buy price - grid export x sell price, priced per period;
baseline = home consumption x buy price (the same home with neither solar nor battery);
savings = baseline - cost. Energy comes from the counter rollups: each hour is priced at
the tariff's price for that hour; an hour in which the price changes (a period starting
at :30, say) is priced minute by minute from the minute rollups, or, where retention has
removed those, split in proportion to the minutes of each price.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from tegkit.monitor.readings import EnergyBucket
from tegkit.monitor.store import AsyncStore
from tegkit.tariff import Price, Tariff

__all__ = ["DailyCost", "daily_costs"]

# prices are sampled at these minutes of an hour to find hours where a period changes;
# tariff periods are whole quarter hours in practice
_PROBE_MINUTES = (0, 15, 30, 45, 59)


class DailyCost(msgspec.Struct, frozen=True):
    """One local day: the cost, the cost without solar and battery, and the savings.

    Amounts are in ``currency``; None when the day has no recorded energy.
    """

    day: dt.date
    cost: float | None
    baseline_cost: float | None
    savings: float | None
    currency: str
    grid_in_wh: float | None = None
    grid_out_wh: float | None = None
    home_wh: float | None = None


def _price(tariff: Tariff, t: float, tz: dt.tzinfo) -> Price:
    return tariff.price_at(dt.datetime.fromtimestamp(t, tz))


def _add(acc: list[float], bucket: EnergyBucket, price: Price, share: float = 1.0) -> None:
    grid_in = bucket.site_imported_wh * share
    grid_out = bucket.site_exported_wh * share
    home = bucket.load_imported_wh * share
    acc[0] += price.cost_of(grid_in, grid_out)
    acc[1] += price.cost_of(home)  # the baseline buys all the home uses and sells nothing
    acc[2] += grid_in
    acc[3] += grid_out
    acc[4] += home


async def daily_costs(
    store: AsyncStore,
    gateway: str,
    start_day: dt.date,
    end_day: dt.date,
    tariff: Tariff,
    tz: dt.tzinfo,
) -> list[DailyCost]:
    """Cost, baseline and savings for each local day from start_day to end_day inclusive.

    The energy is read through the store's async facade (its reader threads): the event
    loop never waits on the database.
    """
    out = []
    day = start_day
    while day <= end_day:
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp()
        end = dt.datetime.combine(day + dt.timedelta(1), dt.time(), tzinfo=tz).timestamp()
        acc = [0.0] * 5
        hours = await store.energy(gateway, start, end, "hour")
        minutes: dict[float, EnergyBucket] | None = None
        # a zone whose midnight is not on a whole UTC hour (India, Adelaide): the day's
        # edges cut hours, so the day is priced minute by minute where minutes are kept
        in_day = await store.energy(gateway, start, end, "minute") if start % 3600 else []
        if in_day:
            for minute in in_day:
                _add(acc, minute, _price(tariff, minute.start, tz))
            out.append(_day_cost(day, acc, tariff))
            day += dt.timedelta(1)
            continue
        for hour in hours:
            prices = [_price(tariff, hour.start + 60 * m, tz) for m in _PROBE_MINUTES]
            if all(p == prices[0] for p in prices):
                _add(acc, hour, prices[0])
                continue
            if minutes is None:
                found = await store.energy(gateway, start, end, "minute")
                minutes = {b.start: b for b in found}
            in_hour = [minutes[t] for t in (hour.start + 60 * m for m in range(60)) if t in minutes]
            if in_hour:
                for minute in in_hour:
                    _add(acc, minute, _price(tariff, minute.start, tz))
            else:
                for m in range(60):
                    _add(acc, hour, _price(tariff, hour.start + 60 * m, tz), 1 / 60)
        out.append(_day_cost(day, acc, tariff) if hours else _no_cost(day, tariff))
        day += dt.timedelta(1)
    return out


def _day_cost(day: dt.date, acc: list[float], tariff: Tariff) -> DailyCost:
    cost, baseline = acc[0], acc[1]
    return DailyCost(day, cost, baseline, baseline - cost, tariff.currency, acc[2], acc[3], acc[4])


def _no_cost(day: dt.date, tariff: Tariff) -> DailyCost:
    return DailyCost(day, None, None, None, tariff.currency)
