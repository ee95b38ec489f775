"""Timed rules as instants: the spec's plan across both DST changes, gaps and repeated hours
(also Lord Howe's 30-minute shift), tariff period starts, days, ranges and what is in force."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sce_plan import FIRMWARE, KEEP_FULL, LA, ON_BATTERY, SCE_PLAN, SCE_TARIFF

from tegkit.automation.plan import (
    WEEKDAYS,
    AtTime,
    Days,
    Plan,
    Rule,
    Setpoints,
    WhenPriceAbove,
    WhenSoe,
    WhenTariffPeriod,
)
from tegkit.automation.schedule import in_force, local_instant, occurrences
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import OperationMode
from tegkit.tariff import Tariff

LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
ZONES = (
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fired(plan: Plan, start: datetime, end: datetime, tz: ZoneInfo = LA) -> list[tuple]:
    return [(o.at_utc, o.rule.name) for o in occurrences(plan, tz, start, end)]


def at(minute_of_day: int, name: str = "rule", **kwargs: object) -> Rule:
    return Rule(name, AtTime(minute_of_day), **kwargs)  # type: ignore[arg-type]


def plan_of(*rules: Rule, tariff: Tariff | None = None) -> Plan:
    return Plan("test", rules, tariff=tariff)


# --- the spec's plan over a week with a DST change -----------------------------------------


def sce_week(first_day: int, month: int, utc_offsets_h: list[int]) -> list[tuple]:
    """The plan's three firings on seven local days; utc_offsets_h[n] is -UTC offset of day n
    (22:05 local is the next UTC day)."""
    expected = []
    for n, offset_h in enumerate(utc_offsets_h):
        day = datetime(2026, month, first_day, tzinfo=UTC) + timedelta(days=n)
        for rule, minute in ((FIRMWARE, 435), (ON_BATTERY, 475), (KEEP_FULL, 1325)):
            expected.append((day + timedelta(hours=offset_h, minutes=minute), rule.name))
    return expected


def test_the_spec_plan_fires_at_the_local_times_across_spring_forward() -> None:
    # Thursday 5 March to Wednesday 11 March 2026; PST (UTC-8) until Sunday 8 March 02:00.
    start, end = utc(2026, 3, 5, 8), utc(2026, 3, 12, 7)  # local midnights
    assert fired(SCE_PLAN, start, end) == sce_week(5, 3, [8, 8, 8, 7, 7, 7, 7])
    # spelled out around the change: 07:15 PST is 15:15 UTC, 07:15 PDT is 14:15 UTC
    times = [t for t, _ in fired(SCE_PLAN, utc(2026, 3, 7, 12), utc(2026, 3, 8, 16))]
    assert times == [
        utc(2026, 3, 7, 15, 15),
        utc(2026, 3, 7, 15, 55),
        utc(2026, 3, 8, 6, 5),
        utc(2026, 3, 8, 14, 15),
        utc(2026, 3, 8, 14, 55),
    ]


def test_the_spec_plan_fires_at_the_local_times_across_fall_back() -> None:
    # Thursday 29 October to Wednesday 4 November 2026; PDT (UTC-7) until 1 November 02:00.
    start, end = utc(2026, 10, 29, 7), utc(2026, 11, 5, 8)
    assert fired(SCE_PLAN, start, end) == sce_week(29, 10, [7, 7, 7, 8, 8, 8, 8])


def test_a_time_in_the_spring_gap_fires_once_right_after_it() -> None:
    plan = plan_of(at(2 * 60 + 30))
    assert fired(plan, utc(2026, 3, 7, 8), utc(2026, 3, 10, 7)) == [
        (utc(2026, 3, 7, 10, 30), "rule"),  # 02:30 PST
        (utc(2026, 3, 8, 10, 0), "rule"),  # 02:30 does not exist: 03:00 PDT
        (utc(2026, 3, 9, 9, 30), "rule"),  # 02:30 PDT
    ]
    assert local_instant(date(2026, 3, 8), 150, LA).astimezone(LA).time() == time(3, 0)


def test_on_fall_back_day_each_time_fires_once_and_a_repeated_one_at_its_first_occurrence() -> None:
    plan = plan_of(at(60 + 30, "01:30"), at(2 * 60 + 30, "02:30"))
    assert fired(plan, utc(2026, 11, 1, 7), utc(2026, 11, 2, 8)) == [
        (utc(2026, 11, 1, 8, 30), "01:30"),  # 01:30 PDT; 01:30 PST (09:30 UTC) does not fire
        (utc(2026, 11, 1, 10, 30), "02:30"),  # 02:30 PST
    ]


def test_lord_howe_shifts_by_half_an_hour_and_is_exact() -> None:
    # 4 October 2026: 02:00 (+10:30) becomes 02:30 (+11); 5 April 2026: 02:00 (+11) -> 01:30.
    plan = plan_of(at(2 * 60 + 15, "02:15"), at(60 + 45, "01:45"))
    assert fired(plan, utc(2026, 10, 3, 13), utc(2026, 10, 4, 13), LORD_HOWE) == [
        (utc(2026, 10, 3, 15, 15), "01:45"),
        (utc(2026, 10, 3, 15, 30), "02:15"),  # 02:30 +11, the first instant after the gap
    ]
    assert fired(plan, utc(2026, 4, 4, 13), utc(2026, 4, 5, 13), LORD_HOWE) == [
        (utc(2026, 4, 4, 14, 45), "01:45"),  # +11, the first of two 01:45s
        (utc(2026, 4, 4, 15, 45), "02:15"),  # +10:30
    ]


def test_a_day_the_zone_skips_whole_fires_once_at_the_first_instant_after_it() -> None:
    # Samoa crossed the date line: 29 December 2011 (-10:00) was followed by 31 December (+14)
    apia = ZoneInfo("Pacific/Apia")
    plan = plan_of(at(0, "midnight"), at(12 * 60, "noon"))
    assert fired(plan, utc(2011, 12, 29, 10), utc(2011, 12, 31, 10), apia) == [
        (utc(2011, 12, 29, 10), "midnight"),
        (utc(2011, 12, 29, 22), "noon"),
        (utc(2011, 12, 30, 10), "midnight"),  # 31 December 00:00 +14, once
        (utc(2011, 12, 30, 10), "noon"),  # noon of the skipped day, right after the gap
        (utc(2011, 12, 30, 22), "noon"),
    ]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    # half the draws in the small hours, where every DST gap and repeat of these zones lies
    minute=st.one_of(st.integers(0, 1439), st.integers(0, 179)),
    first=st.dates(date(2010, 1, 1), date(2030, 1, 1)),
)
def test_every_local_day_fires_once_at_its_time_or_right_after_the_gap(
    zone: str, minute: int, first: date
) -> None:
    tz = ZoneInfo(zone)
    days = [first + timedelta(days=n) for n in range(370)]  # a year: every DST change
    start = datetime.combine(first - timedelta(days=2), time(), UTC)
    end = datetime.combine(days[-1] + timedelta(days=3), time(), UTC)
    found = occurrences(plan_of(at(minute)), tz, start, end)
    per_day = Counter(o.at_utc.astimezone(tz).date() for o in found)
    assert [per_day[day] for day in days] == [1] * len(days)
    target = time(minute // 60, minute % 60)
    for occurrence in found:
        local = occurrence.at_utc.astimezone(tz)
        if local.time() == target:
            assert local.fold == 0  # a repeated time fires at its first occurrence
            continue
        # not the rule's time: only when that time does not exist; then right after the gap
        event("a time in a DST gap")
        just_before = (occurrence.at_utc - timedelta(seconds=1)).astimezone(tz)
        wanted = datetime.combine(local.date(), target)
        assert just_before.utcoffset() != local.utcoffset()
        assert just_before.replace(tzinfo=None) < wanted < local.replace(tzinfo=None)


# --- days, order, ranges ------------------------------------------------------------------


def test_days_are_local_dates() -> None:
    # 23:30 on weekdays in Los Angeles is the next UTC day; Friday's fires, Saturday's not.
    plan = plan_of(at(23 * 60 + 30, days=Days(weekdays=WEEKDAYS)))
    found = fired(plan, utc(2026, 1, 2, 8), utc(2026, 1, 6, 8))  # Fri 2 .. Mon 5 January
    assert found == [(utc(2026, 1, 3, 7, 30), "rule"), (utc(2026, 1, 6, 7, 30), "rule")]
    dated = plan_of(at(600, days=Days(dates=frozenset({date(2026, 12, 25)}), months=(12, 1))))
    assert fired(dated, utc(2026, 12, 1), utc(2027, 1, 31)) == [(utc(2026, 12, 25, 18), "rule")]


def test_simultaneous_rules_come_in_plan_order_and_condition_rules_never_appear() -> None:
    plan = plan_of(
        Rule("soe", WhenSoe(below_app_percent=20)),
        at(600, "second"),
        at(600, "first"),
    )
    assert [name for _, name in fired(plan, utc(2026, 1, 1, 8), utc(2026, 1, 2, 8))] == [
        "second",
        "first",
    ]


def test_the_range_is_half_open_capped_and_aware() -> None:
    plan = plan_of(at(600))
    ten_am = utc(2026, 1, 1, 18)
    assert fired(plan, ten_am, ten_am + timedelta(days=1)) == [(ten_am, "rule")]
    assert fired(plan, ten_am - timedelta(days=1), ten_am) == [(ten_am - timedelta(days=1), "rule")]
    assert fired(plan, ten_am, ten_am) == []
    assert fired(plan, ten_am, ten_am - timedelta(days=3)) == []
    with pytest.raises(InvalidInputError, match=r"end_utc.*at most 400 days"):
        occurrences(plan, LA, ten_am, ten_am + timedelta(days=401))
    with pytest.raises(InvalidInputError, match="start_utc"):
        occurrences(plan, LA, datetime(2026, 1, 1), ten_am)


def test_a_year_in_one_call_has_every_firing() -> None:
    found = occurrences(SCE_PLAN, LA, utc(2026, 1, 1, 8), utc(2027, 1, 1, 8))
    assert Counter(o.rule.name for o in found) == {r.name: 365 for r in SCE_PLAN.rules}


# --- tariff triggers ----------------------------------------------------------------------


def test_a_tariff_period_fires_at_its_start_but_not_where_it_runs_on_past_midnight() -> None:
    plan = plan_of(
        Rule("peak", WhenTariffPeriod("peak")),
        Rule("night", WhenTariffPeriod("super_off_peak")),
        tariff=SCE_TARIFF,
    )
    # 14:00 and 22:00 local (PST); super off-peak runs 22:00-08:00, so never at 00:00
    assert fired(plan, utc(2026, 1, 5, 8), utc(2026, 1, 7, 8)) == [
        (utc(2026, 1, 5, 22), "peak"),
        (utc(2026, 1, 6, 6), "night"),
        (utc(2026, 1, 6, 22), "peak"),
        (utc(2026, 1, 7, 6), "night"),
    ]


def test_a_price_trigger_fires_where_the_price_rises_above_the_threshold() -> None:
    plan = plan_of(
        Rule("above 0.30", WhenPriceAbove(0.30)),  # 08:00 (0.35); stays above until 22:00
        Rule("above 0.40", WhenPriceAbove(0.40)),  # 14:00 (0.55)
        tariff=SCE_TARIFF,
    )
    assert fired(plan, utc(2026, 1, 5, 8), utc(2026, 1, 6, 8)) == [
        (utc(2026, 1, 5, 16), "above 0.30"),
        (utc(2026, 1, 5, 22), "above 0.40"),
    ]


def test_a_period_that_starts_at_midnight_after_a_different_day_kind_does_fire() -> None:
    tariff = Tariff.from_toml(
        """
[[periods]]
name = "peak"
start = "17:00"
end = "20:00"
days = "weekdays"
buy_per_kwh = 0.50
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
"""
    )
    plan = plan_of(Rule("off", WhenTariffPeriod("off_peak")), tariff=tariff)
    # Fri 20:00, then Monday 00:00 (after the weekend), Mon 20:00: never Sat/Sun
    assert fired(plan, utc(2026, 1, 2, 8), utc(2026, 1, 6, 8)) == [
        (utc(2026, 1, 3, 4), "off"),
        (utc(2026, 1, 5, 8), "off"),
        (utc(2026, 1, 6, 4), "off"),
    ]


def test_a_tariff_with_its_own_zone_is_read_in_that_zone() -> None:
    tariff = Tariff.from_toml(
        """
timezone = "UTC"
[[periods]]
name = "peak"
start = "14:00"
end = "20:00"
buy_per_kwh = 0.5
[[periods]]
name = "off_peak"
start = "20:00"
end = "14:00"
buy_per_kwh = 0.2
"""
    )
    plan = plan_of(Rule("peak", WhenTariffPeriod("peak")), tariff=tariff)
    assert fired(plan, utc(2026, 1, 5), utc(2026, 1, 6)) == [(utc(2026, 1, 5, 14), "peak")]


# --- what is in force -----------------------------------------------------------------------


def test_in_force_is_per_setting_the_latest_rule_that_set_it() -> None:
    assert in_force(SCE_PLAN, LA, utc(2026, 3, 8, 18)) == ON_BATTERY.setpoints  # 11:00 PDT
    assert in_force(SCE_PLAN, LA, utc(2026, 3, 8, 14, 54)) == KEEP_FULL.setpoints  # 07:54
    assert in_force(SCE_PLAN, LA, utc(2026, 3, 8, 14, 55)) == ON_BATTERY.setpoints  # at 07:55
    weekly = plan_of(
        at(
            600,
            "monday reserve",
            days=Days(weekdays=frozenset({1})),
            setpoints=Setpoints(backup_reserve_app_percent=30.0),
        ),
        at(660, "daily mode", setpoints=Setpoints(mode=OperationMode.AUTONOMOUS)),
    )
    sunday = utc(2026, 1, 11, 20)
    assert in_force(weekly, LA, sunday) == Setpoints(
        mode=OperationMode.AUTONOMOUS, backup_reserve_app_percent=30.0
    )
    # more than LOOKBACK (8 days) after the only firing: nothing is known to be in force
    once = plan_of(
        at(
            600,
            days=Days(dates=frozenset({date(2026, 1, 1)})),
            setpoints=Setpoints(storm_watch=True),
        )
    )
    assert in_force(once, LA, utc(2026, 1, 8, 20)) == Setpoints(storm_watch=True)
    assert in_force(once, LA, utc(2026, 1, 10, 20)) == Setpoints()
