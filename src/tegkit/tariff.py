"""Electricity tariffs (flat or time of use, seasons, weekdays/weekends): the price at a time.

A tariff is written in TOML. A flat tariff needs only prices::

    name = "flat"
    currency = "USD"
    buy_per_kwh = 0.30
    sell_per_kwh = 0.05

A time-of-use tariff lists periods, optionally grouped in seasons (inclusive month ranges that
may wrap the new year, e.g. ``months = [10, 5]``)::

    currency = "USD"
    [[seasons]]
    name = "summer"
    months = [6, 9]
    [[seasons.periods]]
    name = "peak"            # free text; peak / off_peak / super_off_peak are usual
    start = "16:00"
    end = "21:00"            # "24:00" is the end of the day; end < start wraps past midnight
    days = "all"             # or "weekdays" (Mon-Fri) or "weekends" (Sat, Sun)
    buy_per_kwh = 0.55
    sell_per_kwh = 0.08

Without seasons, ``[[periods]]`` sit at the top level and apply all year. For every season and
every day, the periods that apply must cover the whole day exactly once: a gap or an overlap is
an error that names the period and the clock time. There is no silent default period. Prices
are per kWh in ``currency``. ``price_at(dt)`` reads ``dt``'s wall-clock time, after converting
to the tariff's ``timezone`` when both are given.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tegkit.errors import InvalidInputError

MINUTES_PER_DAY = 1440
DAY_KINDS = ("all", "weekdays", "weekends")
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Price:
    """The price of energy during one period, per kWh in the tariff's currency."""

    buy_per_kwh: float
    sell_per_kwh: float
    period_name: str

    def cost_of(self, buy_wh: float, sell_wh: float = 0.0) -> float:
        """Net cost of importing `buy_wh` and exporting `sell_wh` (negative = credit).

        The one cost formula: the monitor's daily costs and savings are priced with it.
        """
        return (buy_wh * self.buy_per_kwh - sell_wh * self.sell_per_kwh) / 1000.0


@dataclass(frozen=True, slots=True)
class Span:
    """One period on one day: minutes since local midnight, [start_minute, end_minute)."""

    start_minute: int
    end_minute: int
    price: Price


@dataclass(frozen=True, slots=True)
class Period:
    """A period as written: clock times, which days, prices."""

    name: str
    start_minute: int
    end_minute: int
    days: str
    buy_per_kwh: float
    sell_per_kwh: float

    def applies(self, weekend: bool) -> bool:
        """Whether the period applies on a weekend day (True) or a weekday (False)."""
        return self.days == "all" or (self.days == "weekends") == weekend


@dataclass(frozen=True, slots=True)
class Season:
    """Periods that apply in an inclusive month range (wrapping when end < start)."""

    name: str
    first_month: int
    last_month: int
    periods: tuple[Period, ...]

    def has_month(self, month: int) -> bool:
        """Whether `month` (1..12) falls in this season."""
        if self.first_month <= self.last_month:
            return self.first_month <= month <= self.last_month
        return month >= self.first_month or month <= self.last_month


class Tariff:
    """A validated tariff; answers the price and period at a time."""

    def __init__(
        self, name: str, currency: str, seasons: tuple[Season, ...], timezone: str | None = None
    ) -> None:
        self.name = name
        self.currency = currency
        self.seasons = seasons
        self.timezone = timezone
        self._zone = ZoneInfo(timezone) if timezone else None
        # (month, weekend) -> spans sorted by start; 24 small tuples built once.
        self._schedules: dict[tuple[int, bool], tuple[Span, ...]] = {}
        for month in range(1, 13):
            season = next(s for s in seasons if s.has_month(month))
            for weekend in (False, True):
                self._schedules[(month, weekend)] = _spans(season, weekend)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_toml(cls, text: str, field_prefix: str = "") -> Tariff:
        """Parse and validate a tariff written in TOML; errors name the field."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"{field_prefix}(toml)", f"valid TOML ({exc})") from exc
        return cls.from_dict(data, field_prefix)

    @classmethod
    def from_dict(cls, data: dict[str, Any], field_prefix: str = "") -> Tariff:
        """Validate a decoded tariff table; `field_prefix` is prepended to field names."""
        p = field_prefix
        known = {"name", "currency", "timezone", "buy_per_kwh", "sell_per_kwh"}
        known |= {"periods", "seasons"}
        _reject_unknown(data, known, p)
        name = _str(data, "name", p, default="tariff")
        currency = _str(data, "currency", p, default="USD")
        if not _CURRENCY_RE.match(currency):
            raise InvalidInputError(f"{p}currency", "a 3-letter ISO code like 'USD'", currency)
        timezone = data.get("timezone")
        if timezone is not None:
            if not isinstance(timezone, str):
                raise InvalidInputError(f"{p}timezone", "an IANA time zone name", timezone)
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise InvalidInputError(f"{p}timezone", "an IANA time zone name", timezone) from exc
        has_flat = "buy_per_kwh" in data
        has_periods = "periods" in data
        has_seasons = "seasons" in data
        if sum((has_flat, has_periods, has_seasons)) != 1:
            raise InvalidInputError(
                f"{p}buy_per_kwh/periods/seasons",
                "exactly one of: flat prices (buy_per_kwh), [[periods]] or [[seasons]]",
                sorted(k for k in ("buy_per_kwh", "periods", "seasons") if k in data),
            )
        if has_flat:
            buy = _price(data, "buy_per_kwh", p)
            sell = _price(data, "sell_per_kwh", p, default=0.0)
            flat = Period("flat", 0, MINUTES_PER_DAY, "all", buy, sell)
            seasons: tuple[Season, ...] = (Season("all_year", 1, 12, (flat,)),)
        elif has_periods:
            periods = _periods(data["periods"], f"{p}periods")
            seasons = (Season("all_year", 1, 12, periods),)
        else:
            seasons = _seasons(data["seasons"], f"{p}seasons")
        for index, season in enumerate(seasons):
            for weekend in (False, True):
                where = f"{p}seasons[{index}]." if has_seasons else p
                _check_cover(season, weekend, where)
        return cls(name, currency, seasons, timezone)

    # --- queries --------------------------------------------------------------------------

    def schedule_for(self, day: date) -> tuple[Span, ...]:
        """The periods of one local day, sorted by start, covering 0..1440 minutes."""
        return self._schedules[(day.month, day.weekday() >= 5)]

    def price_at(self, dt: datetime) -> Price:
        """The price in force at `dt` (its wall-clock time, in the tariff's zone if set)."""
        if self._zone is not None and dt.tzinfo is not None:
            dt = dt.astimezone(self._zone)
        minute = dt.hour * 60 + dt.minute
        for span in self.schedule_for(dt.date()):
            if span.start_minute <= minute < span.end_minute:
                return span.price
        raise AssertionError("validated schedules cover the whole day")  # pragma: no cover

    def period_at(self, dt: datetime) -> str:
        """The name of the period in force at `dt`."""
        return self.price_at(dt).period_name

    def period_names(self) -> tuple[str, ...]:
        """Every period name the tariff uses, in first-seen order."""
        names: dict[str, None] = {}
        for season in self.seasons:
            for period in season.periods:
                names[period.name] = None
        return tuple(names)

    def __repr__(self) -> str:
        return f"Tariff(name={self.name!r}, currency={self.currency!r})"

    # Equal when written the same, so a plan that holds a tariff compares (and round-trips).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tariff):
            return NotImplemented
        return self._written() == other._written()

    def __hash__(self) -> int:
        return hash(self._written())

    def _written(self) -> tuple[str, str, tuple[Season, ...], str | None]:
        return (self.name, self.currency, self.seasons, self.timezone)


def load_tariff(path: str | Path) -> Tariff:
    """Read and validate a tariff TOML file."""
    return Tariff.from_toml(Path(path).read_text(encoding="utf-8"))


# --- built-in tariffs ---------------------------------------------------------------------

_CALIFORNIA_TOU = """
name = "california-tou"
currency = "USD"

[[seasons]]
name = "summer"
months = [6, 9]

[[seasons.periods]]
name = "super_off_peak"
start = "00:00"
end = "06:00"
buy_per_kwh = 0.28
sell_per_kwh = 0.05

[[seasons.periods]]
name = "off_peak"
start = "06:00"
end = "16:00"
buy_per_kwh = 0.38
sell_per_kwh = 0.05

[[seasons.periods]]
name = "peak"
start = "16:00"
end = "21:00"
buy_per_kwh = 0.58
sell_per_kwh = 0.12

[[seasons.periods]]
name = "off_peak"
start = "21:00"
end = "24:00"
buy_per_kwh = 0.38
sell_per_kwh = 0.05

[[seasons]]
name = "winter"
months = [10, 5]

[[seasons.periods]]
name = "super_off_peak"
start = "00:00"
end = "06:00"
buy_per_kwh = 0.26
sell_per_kwh = 0.04

[[seasons.periods]]
name = "off_peak"
start = "06:00"
end = "16:00"
buy_per_kwh = 0.34
sell_per_kwh = 0.04

[[seasons.periods]]
name = "peak"
start = "16:00"
end = "21:00"
buy_per_kwh = 0.46
sell_per_kwh = 0.08

[[seasons.periods]]
name = "off_peak"
start = "21:00"
end = "24:00"
buy_per_kwh = 0.34
sell_per_kwh = 0.04
"""

_FLAT = """
name = "flat"
currency = "USD"
buy_per_kwh = 0.30
sell_per_kwh = 0.05
"""

# Southern California Edison's time of use as spec 001's owner has it (the older TOU-D
# windows): peak 14:00-20:00, off-peak 08:00-14:00 and 20:00-22:00, super off-peak 22:00-08:00,
# every day of the week (weekends alike). Prices are TOU-D-like; export credits are NEM 2.0
# style: the period's retail price less about 3 cents of non-bypassable charges.
_SCE_TOU = """
name = "sce-tou"
currency = "USD"
timezone = "America/Los_Angeles"

[[seasons]]
name = "summer"
months = [6, 9]

[[seasons.periods]]
name = "super_off_peak"
start = "22:00"
end = "08:00"
buy_per_kwh = 0.25
sell_per_kwh = 0.22

[[seasons.periods]]
name = "off_peak"
start = "08:00"
end = "14:00"
buy_per_kwh = 0.33
sell_per_kwh = 0.30

[[seasons.periods]]
name = "peak"
start = "14:00"
end = "20:00"
buy_per_kwh = 0.56
sell_per_kwh = 0.53

[[seasons.periods]]
name = "off_peak"
start = "20:00"
end = "22:00"
buy_per_kwh = 0.33
sell_per_kwh = 0.30

[[seasons]]
name = "winter"
months = [10, 5]

[[seasons.periods]]
name = "super_off_peak"
start = "22:00"
end = "08:00"
buy_per_kwh = 0.26
sell_per_kwh = 0.23

[[seasons.periods]]
name = "off_peak"
start = "08:00"
end = "14:00"
buy_per_kwh = 0.31
sell_per_kwh = 0.28

[[seasons.periods]]
name = "peak"
start = "14:00"
end = "20:00"
buy_per_kwh = 0.45
sell_per_kwh = 0.42

[[seasons.periods]]
name = "off_peak"
start = "20:00"
end = "22:00"
buy_per_kwh = 0.31
sell_per_kwh = 0.28
"""

BUILTIN_TARIFFS: dict[str, str] = {
    "california-tou": _CALIFORNIA_TOU,
    "flat": _FLAT,
    "sce-tou": _SCE_TOU,
}


def builtin_tariff(name: str) -> Tariff:
    """One of the shipped example tariffs by name (see BUILTIN_TARIFFS)."""
    text = BUILTIN_TARIFFS.get(name)
    if text is None:
        raise InvalidInputError("tariff", f"one of {sorted(BUILTIN_TARIFFS)}", name)
    return Tariff.from_toml(text)


# --- validation helpers -------------------------------------------------------------------


def _reject_unknown(data: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise InvalidInputError(f"{prefix}{key}", f"one of {sorted(known)}", "unknown field")


def _str(data: dict[str, Any], key: str, prefix: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{prefix}{key}", "a non-empty string", value)
    return value


def _price(data: dict[str, Any], key: str, prefix: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{prefix}{key}", "a number (price per kWh)", value)
    if not -10.0 <= value <= 100.0:
        raise InvalidInputError(f"{prefix}{key}", "a price per kWh between -10 and 100", value)
    return float(value)


def _minute(value: object, field: str, allow_24: bool) -> int:
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInputError(field, "a time HH:MM", value)
    hour, minute = int(match.group(1)), int(match.group(2))
    total = hour * 60 + minute
    if minute > 59 or total > MINUTES_PER_DAY or (total == MINUTES_PER_DAY and not allow_24):
        allowed = "a time HH:MM from 00:00 to 24:00" if allow_24 else "a time HH:MM (00:00..23:59)"
        raise InvalidInputError(field, allowed, value)
    return total


def _periods(raw: object, prefix: str) -> tuple[Period, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(prefix, "a non-empty array of period tables", raw)
    periods = []
    known = {"name", "start", "end", "days", "buy_per_kwh", "sell_per_kwh"}
    for index, item in enumerate(raw):
        p = f"{prefix}[{index}]."
        if not isinstance(item, dict):
            raise InvalidInputError(f"{prefix}[{index}]", "a table", item)
        _reject_unknown(item, known, p)
        name = _str(item, "name", p)
        start = _minute(item.get("start"), f"{p}start", allow_24=False)
        end = _minute(item.get("end"), f"{p}end", allow_24=True)
        if start == end:
            raise InvalidInputError(f"{p}end", "a time other than start", item.get("end"))
        days = item.get("days", "all")
        if days not in DAY_KINDS:
            raise InvalidInputError(f"{p}days", f"one of {list(DAY_KINDS)}", days)
        buy = _price(item, "buy_per_kwh", p)
        sell = _price(item, "sell_per_kwh", p, default=0.0)
        periods.append(Period(name, start, end, days, buy, sell))
    return tuple(periods)


def _seasons(raw: object, prefix: str) -> tuple[Season, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(prefix, "a non-empty array of season tables", raw)
    seasons = []
    owner: dict[int, int] = {}
    for index, item in enumerate(raw):
        p = f"{prefix}[{index}]."
        if not isinstance(item, dict):
            raise InvalidInputError(f"{prefix}[{index}]", "a table", item)
        _reject_unknown(item, {"name", "months", "periods"}, p)
        name = _str(item, "name", p, default=f"season{index}")
        months = item.get("months")
        if (
            not isinstance(months, list)
            or len(months) != 2
            or not all(isinstance(m, int) and not isinstance(m, bool) for m in months)
            or not all(1 <= m <= 12 for m in months)
        ):
            raise InvalidInputError(f"{p}months", "[first, last] months, each 1..12", months)
        season = Season(name, months[0], months[1], _periods(item.get("periods"), f"{p}periods"))
        for month in range(1, 13):
            if season.has_month(month):
                if month in owner:
                    raise InvalidInputError(
                        f"{p}months",
                        f"months not already in seasons[{owner[month]}] (month {month} is)",
                        months,
                    )
                owner[month] = index
        seasons.append(season)
    missing = [m for m in range(1, 13) if m not in owner]
    if missing:
        raise InvalidInputError(prefix, "seasons that cover all 12 months", f"missing {missing}")
    return tuple(seasons)


def _pieces(period: Period) -> list[tuple[int, int]]:
    if period.end_minute > period.start_minute:
        return [(period.start_minute, period.end_minute)]
    return [(period.start_minute, MINUTES_PER_DAY), (0, period.end_minute)]


def _check_cover(season: Season, weekend: bool, where: str) -> None:
    owner: list[int | None] = [None] * MINUTES_PER_DAY
    day = "weekends" if weekend else "weekdays"
    for index, period in enumerate(season.periods):
        if not period.applies(weekend):
            continue
        for start, end in _pieces(period):
            for minute in range(start, end):
                if owner[minute] is not None:
                    raise InvalidInputError(
                        f"{where}periods[{index}]",
                        f"periods that do not overlap; on {day} it overlaps "
                        f"periods[{owner[minute]}] at {_clock(minute)}",
                        period.name,
                    )
                owner[minute] = index
    if None in owner:
        first = owner.index(None)
        raise InvalidInputError(
            f"{where}periods",
            f"periods that cover the whole day; on {day} nothing covers {_clock(first)}",
            season.name,
        )


def _spans(season: Season, weekend: bool) -> tuple[Span, ...]:
    spans: list[Span] = []
    for period in season.periods:
        if period.applies(weekend):
            price = Price(period.buy_per_kwh, period.sell_per_kwh, period.name)
            spans.extend(Span(start, end, price) for start, end in _pieces(period))
    return tuple(sorted(spans, key=lambda span: span.start_minute))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


__all__ = [
    "BUILTIN_TARIFFS",
    "Period",
    "Price",
    "Season",
    "Span",
    "Tariff",
    "builtin_tariff",
    "load_tariff",
]
