"""Tariffs: prices by period, season and day kind; coverage and field-naming validation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tegkit.errors import InvalidInputError
from tegkit.tariff import BUILTIN_TARIFFS, Tariff, builtin_tariff, load_tariff

LA = ZoneInfo("America/Los_Angeles")

WEEKEND_TOU = """
currency = "EUR"
[[periods]]
name = "peak"
start = "17:00"
end = "20:00"
days = "weekdays"
buy_per_kwh = 0.50
sell_per_kwh = 0.10
[[periods]]
name = "off_peak"
start = "20:00"
end = "17:00"
days = "weekdays"
buy_per_kwh = 0.25
[[periods]]
name = "weekend"
start = "00:00"
end = "24:00"
days = "weekends"
buy_per_kwh = 0.20
sell_per_kwh = 0.05
"""


def test_california_tou_periods_and_seasons() -> None:
    tariff = builtin_tariff("california-tou")
    assert tariff.currency == "USD"
    summer_peak = tariff.price_at(datetime(2024, 7, 1, 17, 30, tzinfo=LA))
    assert summer_peak.period_name == "peak" and summer_peak.buy_per_kwh == 0.58
    winter_peak = tariff.price_at(datetime(2024, 1, 10, 16, 0, tzinfo=LA))
    assert winter_peak.period_name == "peak" and winter_peak.buy_per_kwh == 0.46
    assert tariff.period_at(datetime(2024, 7, 1, 3, 0)) == "super_off_peak"
    assert tariff.period_at(datetime(2024, 7, 1, 21, 0)) == "off_peak"
    assert tariff.period_at(datetime(2024, 7, 1, 23, 59)) == "off_peak"
    assert tariff.period_at(datetime(2024, 10, 1, 15, 59)) == "off_peak"
    assert set(tariff.period_names()) == {"super_off_peak", "off_peak", "peak"}


def test_every_minute_of_a_year_has_a_price() -> None:
    for name in BUILTIN_TARIFFS:
        tariff = builtin_tariff(name)
        day = datetime(2024, 1, 1)
        for _ in range(366):
            spans = tariff.schedule_for(day.date())
            assert spans[0].start_minute == 0 and spans[-1].end_minute == 1440
            assert all(a.end_minute == b.start_minute for a, b in itertools.pairwise(spans))
            day += timedelta(days=1)


def test_weekdays_weekends_and_wrapping_periods() -> None:
    tariff = Tariff.from_toml(WEEKEND_TOU)
    monday, saturday = datetime(2024, 6, 17), datetime(2024, 6, 22)
    assert tariff.period_at(monday.replace(hour=18)) == "peak"
    assert tariff.period_at(monday.replace(hour=2)) == "off_peak"  # 20:00 -> 17:00 wraps
    assert tariff.period_at(monday.replace(hour=21)) == "off_peak"
    assert tariff.period_at(saturday.replace(hour=18)) == "weekend"
    assert tariff.price_at(monday.replace(hour=2)).sell_per_kwh == 0.0


def test_flat_tariff_and_cost_of() -> None:
    tariff = builtin_tariff("flat")
    at = datetime(2024, 3, 3, 12, 0)
    assert tariff.period_at(at) == "flat"
    price = tariff.price_at(at)
    assert price.cost_of(buy_wh=10_000, sell_wh=4_000) == pytest.approx(3.0 - 0.2)
    assert price.cost_of(buy_wh=10_000) == pytest.approx(3.0)  # nothing sold: no credit


def test_timezone_converts_aware_times() -> None:
    text = WEEKEND_TOU.replace('currency = "EUR"', 'currency = "EUR"\ntimezone = "Europe/Berlin"')
    tariff = Tariff.from_toml(text)
    # 16:30 UTC on a June Monday is 18:30 in Berlin: peak
    assert tariff.period_at(datetime(2024, 6, 17, 16, 30, tzinfo=UTC)) == "peak"


def test_load_tariff_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(WEEKEND_TOU)
    assert load_tariff(path).currency == "EUR"


PERIOD = 'name = "p"\nstart = "{start}"\nend = "{end}"\nbuy_per_kwh = 0.3\n'


def periods(*spans: tuple[str, str]) -> str:
    return 'currency = "USD"\n' + "".join(
        "[[periods]]\n" + PERIOD.format(start=s, end=e) for s, e in spans
    )


@pytest.mark.parametrize(
    ("text", "field", "detail"),
    [
        (
            periods(("00:00", "12:00"), ("12:00", "24:00"), ("25:00", "03:00")),
            "periods[2].start",
            "HH:MM",
        ),
        (periods(("00:00", "12:60")), "periods[0].end", "HH:MM"),
        (periods(("00:00", "13:00"), ("12:00", "24:00")), "periods[1]", "overlaps periods[0]"),
        (periods(("00:00", "12:00"), ("13:00", "24:00")), "periods", "nothing covers 12:00"),
        (periods(("00:00", "00:00")), "periods[0].end", "other than start"),
        ('currency = "dollars"\nbuy_per_kwh = 0.3', "currency", "3-letter"),
        ('currency = "USD"\nbuy_per_kwh = "a lot"', "buy_per_kwh", "a number"),
        ('currency = "USD"', "buy_per_kwh/periods/seasons", "exactly one"),
        ('currency = "USD"\nbuy_per_kwh = 0.3\ncolour = "red"', "colour", "one of"),
        ('currency = "USD"\ntimezone = "Mars/Base"\nbuy_per_kwh = 0.3', "timezone", "IANA"),
        (periods(("00:00", "24:00")) + 'days = "sundays"\n', "periods[0].days", "weekdays"),
        (
            'currency = "USD"\n[[seasons]]\nmonths = [1, 6]\n'
            + "[[seasons.periods]]\n"
            + PERIOD.format(start="00:00", end="24:00"),
            "seasons",
            "missing [7, 8, 9, 10, 11, 12]",
        ),
        ('currency = "USD"\n[[seasons]]\nmonths = [0, 12]\n', "seasons[0].months", "1..12"),
        ("currency = [", "(toml)", "valid TOML"),
    ],
)
def test_invalid_tariffs_name_the_field(text: str, field: str, detail: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Tariff.from_toml(text)
    assert err.value.field == field
    assert detail in str(err.value)
    assert isinstance(err.value, ValueError)


def test_overlapping_seasons_are_rejected() -> None:
    season = "[[seasons]]\nmonths = [{a}, {b}]\n[[seasons.periods]]\n" + PERIOD.format(
        start="00:00", end="24:00"
    )
    text = 'currency = "USD"\n' + season.format(a=1, b=6) + season.format(a=6, b=12)
    with pytest.raises(InvalidInputError, match=r"seasons\[1\].months"):
        Tariff.from_toml(text)


def test_unknown_builtin_tariff_lists_the_names() -> None:
    with pytest.raises(InvalidInputError, match="california-tou"):
        builtin_tariff("nope")
