"""The decision core: the spec's plan stepped through a DST week, catch-up after downtime,
stale readings and outages held then released, SoE and grid conditions, a long sleep
coalesced, and every branch of the firmware window's decision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sce_plan import FIRMWARE, KEEP_FULL, LA, ON_BATTERY, SCE_PLAN, SCE_TARIFF

from tegkit.automation.engine import (
    Closed,
    Due,
    Engine,
    Held,
    Install,
    Judgement,
    Missed,
    Observation,
    Postpone,
    decide_firmware,
)
from tegkit.automation.plan import (
    WEEKENDS,
    AtTime,
    Days,
    FirmwareWindow,
    Plan,
    Rule,
    Setpoints,
    WhenGrid,
    WhenSoe,
)
from tegkit.automation.schedule import in_force, occurrences
from tegkit.models.vocabulary import GridStatusValue, OperationMode

CONNECTED = GridStatusValue.CONNECTED
ISLANDED = GridStatusValue.ISLANDED_ACTIVE
MINUTE = timedelta(minutes=1)


def la(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in Los Angeles in 2026, as UTC (first occurrence when repeated)."""
    return datetime(2026, month, day, hour, minute, tzinfo=LA).astimezone(UTC)


def seen(
    at_utc: datetime,
    grid: str | None = CONNECTED,
    soe: float | None = 50.0,
    battery_w: float | None = 0.0,
    reserve: float | None = 5.0,
) -> Observation:
    return Observation(
        at_utc,
        soe_app_percent=soe,
        grid_status=grid,
        battery_w=battery_w,
        backup_reserve_app_percent=reserve,
    )


def run(
    engine: Engine,
    start: datetime,
    end: datetime,
    observe: Callable[[datetime], Observation | None] = seen,
) -> list[tuple[datetime, Judgement]]:
    """Step every minute in (start, end], as a runner would; (step time, decision) pairs."""
    out = []
    now = start
    while now < end:
        now += MINUTE
        out += [(now, decision) for decision in engine.step(now, observe(now))]
    return out


def started(plan: Plan, now: datetime, observation: Observation | None = None) -> Engine:
    engine = Engine(plan, LA)
    engine.start(now, observation or seen(now))
    return engine


def rule_at(minute_of_day: int, name: str, **setpoints: object) -> Rule:
    return Rule(name, AtTime(minute_of_day), setpoints=Setpoints(**setpoints))  # type: ignore[arg-type]


# --- the timed plan -------------------------------------------------------------------------


def test_the_spec_plan_runs_each_action_once_on_time_through_a_dst_week() -> None:
    start, end = la(3, 5, 0), la(3, 12, 0)
    engine = Engine(SCE_PLAN, LA)
    assert engine.start(start, seen(start)) == [
        Missed(FIRMWARE, la(3, 4, 7, 15)),
        Due(KEEP_FULL, KEEP_FULL.setpoints, None, la(3, 4, 22, 5), catch_up=True),
    ]
    steps = run(engine, start, end)
    expected = occurrences(SCE_PLAN, LA, start, end)
    assert len(expected) == 21
    assert [(now, d) for now, d in steps] == [
        (
            o.at_utc,
            Due(o.rule, Setpoints(), FIRMWARE.firmware_window, o.at_utc)
            if o.rule is FIRMWARE
            else Due(o.rule, o.rule.setpoints, None, o.at_utc),
        )
        for o in expected
    ]
    # on the spring-forward Sunday the morning's actions are 7 hours from UTC, not 8
    sunday = [now for now, _ in steps if now.day == 8 and now.hour > 12]
    assert sunday == [datetime(2026, 3, 8, 14, 15, tzinfo=UTC), la(3, 8, 7, 55)]


def test_next_actions_are_the_timed_firings_ahead() -> None:
    engine = started(SCE_PLAN, la(3, 9, 8))
    ahead = engine.next_actions(la(3, 9, 8), timedelta(days=1))
    assert [(o.rule, o.at_utc) for o in ahead] == [
        (KEEP_FULL, la(3, 9, 22, 5)),
        (FIRMWARE, la(3, 10, 7, 15)),
        (ON_BATTERY, la(3, 10, 7, 55)),
    ]


# --- catch-up -------------------------------------------------------------------------------


def test_catch_up_applies_what_is_in_force_once_and_never_a_window_that_closed() -> None:
    now = la(3, 9, 10)  # after 07:15 + 30 min and after 07:55
    engine = Engine(SCE_PLAN, LA)
    assert engine.start(now, seen(now)) == [
        Missed(FIRMWARE, la(3, 9, 7, 15)),
        Due(ON_BATTERY, ON_BATTERY.setpoints, None, la(3, 9, 7, 55), catch_up=True),
    ]
    later = run(engine, now, la(3, 9, 23))
    assert later == [(la(3, 9, 22, 5), Due(KEEP_FULL, KEEP_FULL.setpoints, None, la(3, 9, 22, 5)))]


def test_a_window_a_previous_run_outlived_is_not_reported_missed_again() -> None:
    now = la(3, 9, 10)
    ran_until = la(3, 9, 8)  # the last run reported something after today's 07:15 window
    assert Engine(SCE_PLAN, LA).start(now, seen(now), ran_until) == [
        Due(ON_BATTERY, ON_BATTERY.setpoints, None, la(3, 9, 7, 55), catch_up=True),
    ]
    # a run last seen before the window opened did not see it: missed, as without a record
    assert Engine(SCE_PLAN, LA).start(now, seen(now), la(3, 9, 7))[0] == Missed(
        FIRMWARE, la(3, 9, 7, 15)
    )


def test_on_start_a_window_still_open_is_due() -> None:
    now = la(3, 9, 7, 30)
    decisions = Engine(SCE_PLAN, LA).start(now, seen(now))
    assert decisions == [
        Due(KEEP_FULL, KEEP_FULL.setpoints, None, la(3, 8, 22, 5), catch_up=True),
        Due(FIRMWARE, Setpoints(), FIRMWARE.firmware_window, la(3, 9, 7, 15), catch_up=True),
    ]


def test_catch_up_per_setting_is_what_in_force_says() -> None:
    plan = Plan(
        "split",
        (
            rule_at(
                8 * 60,
                "mode and reserve",
                mode=OperationMode.AUTONOMOUS,
                backup_reserve_app_percent=20.0,
            ),
            rule_at(9 * 60, "reserve", backup_reserve_app_percent=40.0),
            Rule(
                "weekend export",
                AtTime(600),
                days=Days(weekdays=WEEKENDS),
                setpoints=Setpoints(grid_charging=True),
            ),
        ),
    )
    now = la(3, 9, 12)  # a Monday: the weekend rule last fired on Sunday
    decisions = Engine(plan, LA).start(now, seen(now))
    assert [(d.rule.name, d.setpoints) for d in decisions if isinstance(d, Due)] == [
        ("weekend export", Setpoints(grid_charging=True)),
        ("mode and reserve", Setpoints(mode=OperationMode.AUTONOMOUS)),
        ("reserve", Setpoints(backup_reserve_app_percent=40.0)),
    ]
    combined = Setpoints()
    for decision in decisions:
        assert isinstance(decision, Due) and decision.catch_up
        combined = combined.then(decision.setpoints)
    assert combined == in_force(plan, LA, now)


# --- stale readings and outages -------------------------------------------------------------


def test_a_stale_reading_holds_a_rule_until_a_fresh_one_arrives() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7, 50))
    stale = seen(la(3, 9, 7, 52))  # 180 s old at 07:55, older than the plan's 120 s
    [held] = engine.step(la(3, 9, 7, 55), stale)
    assert held == Held(
        ON_BATTERY, "the latest reading is 180 s old (limit 120 s)", la(3, 9, 7, 55)
    )
    assert engine.step(la(3, 9, 7, 56), stale) == []  # held once, not at every step
    assert engine.step(la(3, 9, 7, 57), None) == []
    assert engine.step(la(3, 9, 7, 58), seen(la(3, 9, 7, 58))) == [
        Due(ON_BATTERY, ON_BATTERY.setpoints, None, la(3, 9, 7, 55), catch_up=True)
    ]
    assert engine.step(la(3, 9, 7, 59), seen(la(3, 9, 7, 59))) == []


def test_without_any_reading_nothing_acts() -> None:
    engine = Engine(SCE_PLAN, LA)
    [missed, held] = engine.start(la(3, 9, 12), None)
    assert missed == Missed(FIRMWARE, la(3, 9, 7, 15))
    assert held == Held(ON_BATTERY, "no reading of the gateway yet", la(3, 9, 7, 55))


def test_off_grid_holds_rules_without_during_outage_and_releases_them_when_the_grid_is_back() -> (
    None
):
    storm = Rule(
        "storm",
        AtTime(8 * 60),
        setpoints=Setpoints(storm_watch=True),
        during_outage=True,
    )
    plan = Plan("outage", (ON_BATTERY, storm))
    engine = started(plan, la(3, 9, 7, 40))
    outage = lambda now: seen(now, grid=ISLANDED if now < la(3, 9, 8, 30) else CONNECTED)  # noqa: E731
    assert run(engine, la(3, 9, 7, 40), la(3, 9, 9), outage) == [
        (la(3, 9, 7, 55), Held(ON_BATTERY, "site is off grid", la(3, 9, 7, 55))),
        (la(3, 9, 8), Due(storm, storm.setpoints, None, la(3, 9, 8))),
        (la(3, 9, 8, 30), Due(ON_BATTERY, ON_BATTERY.setpoints, None, la(3, 9, 7, 55), True)),
    ]


def test_a_held_rule_superseded_during_the_outage_is_never_applied() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7, 50))
    outage_until = la(3, 9, 22, 30)
    grid = lambda now: seen(now, grid=ISLANDED if now < outage_until else CONNECTED)  # noqa: E731
    decisions = [d for _, d in run(engine, la(3, 9, 7, 50), la(3, 9, 23), grid)]
    assert decisions == [
        Held(ON_BATTERY, "site is off grid", la(3, 9, 7, 55)),
        Held(KEEP_FULL, "site is off grid", la(3, 9, 22, 5)),
        Due(KEEP_FULL, KEEP_FULL.setpoints, None, la(3, 9, 22, 5), catch_up=True),
    ]


def test_an_unknown_grid_status_is_not_taken_for_on_grid() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7, 50))
    waiting = seen(la(3, 9, 7, 55), grid=GridStatusValue.WAIT_FOR_USER)
    assert engine.step(la(3, 9, 7, 55), waiting) == [
        Held(
            ON_BATTERY,
            "grid status 'SystemWaitForUser' says neither on nor off grid",
            la(3, 9, 7, 55),
        )
    ]
    assert engine.step(la(3, 9, 7, 56), seen(la(3, 9, 7, 56), grid=None)) == []  # still held


# --- conditions -------------------------------------------------------------------------------


def soe_engine(
    trigger: WhenSoe, first_soe: float, days: Days | None = None
) -> tuple[Engine, list[Judgement]]:
    """An engine for one SoE rule, started at noon on Monday 9 March; its start decisions."""
    rule = Rule("soe", trigger, days=days or Days(), setpoints=Setpoints(grid_charging=True))
    engine = Engine(Plan("soe", (rule,)), LA)
    return engine, engine.start(la(3, 9, 12), seen(la(3, 9, 12), soe=first_soe))


def soe_fires(engine: Engine, readings: list[float | None], first: datetime) -> list[float | None]:
    """The readings at which the rule fired, one reading a minute from `first`."""
    fired = []
    for n, soe in enumerate(readings):
        now = first + n * MINUTE
        if engine.step(now, seen(now, soe=soe)):
            fired.append(soe)
    return fired


def test_soe_below_fires_on_the_crossing_and_rearms_past_the_hysteresis() -> None:
    engine, at_start = soe_engine(WhenSoe(below_app_percent=20.0, hysteresis_app_percent=2.0), 50.0)
    assert at_start == []
    readings = [25.0, 20.0, 19.9, 15.0, None, 21.9, 19.0, 22.0, 30.0, 19.5, 18.0]
    assert soe_fires(engine, readings, la(3, 9, 12, 1)) == [19.9, 19.5]


def test_soe_above_fires_once_and_a_condition_already_true_at_start_fires_once() -> None:
    engine, [due] = soe_engine(WhenSoe(above_app_percent=90.0, hysteresis_app_percent=5.0), 95.0)
    assert due == Due(due.rule, Setpoints(grid_charging=True), None, la(3, 9, 12))
    readings = [96.0, 88.0, 91.0, 85.0, 91.0]  # re-armed at 85 (90 - 5), not at 88
    assert soe_fires(engine, readings, la(3, 9, 12, 1)) == [91.0]


def test_a_stale_reading_never_fires_a_condition() -> None:
    engine, _ = soe_engine(WhenSoe(below_app_percent=20.0), 50.0)
    old = la(3, 9, 12)
    assert engine.step(la(3, 9, 12, 10), seen(old, soe=10.0)) == []
    [due] = engine.step(la(3, 9, 12, 11), seen(la(3, 9, 12, 11), soe=10.0))
    assert isinstance(due, Due)


def test_a_condition_on_a_day_the_rule_skips_waits_armed_for_its_day() -> None:
    # Friday 13 March: below 20 % but the rule is for weekends; it fires on Saturday.
    engine, _ = soe_engine(WhenSoe(below_app_percent=20.0), 50.0, Days(weekdays=WEEKENDS))
    assert engine.step(la(3, 13, 23, 58), seen(la(3, 13, 23, 58), soe=10.0)) == []
    [due] = engine.step(la(3, 14, 0, 1), seen(la(3, 14, 0, 1), soe=10.0))
    assert isinstance(due, Due) and due.scheduled_at_utc == la(3, 14, 0, 1)


def test_grid_rules_fire_on_a_change_of_off_gridness_only() -> None:
    down = Rule("down", WhenGrid("down"), setpoints=Setpoints(storm_watch=True), during_outage=True)
    up = Rule("up", WhenGrid("up"), setpoints=Setpoints(mode=OperationMode.SELF_CONSUMPTION))
    plan = Plan("grid", (down, up))
    engine = started(plan, la(3, 9, 12))
    statuses = [
        CONNECTED,
        ISLANDED,
        GridStatusValue.WAIT_FOR_USER,
        None,
        GridStatusValue.ISLANDED_READY,
        CONNECTED,
        CONNECTED,
    ]
    fired = []
    for n, status in enumerate(statuses):
        now = la(3, 9, 12, n + 1)
        fired += [(status, d.rule.name) for d in engine.step(now, seen(now, grid=status))]
    assert fired == [(ISLANDED, "down"), (CONNECTED, "up")]
    # a grid rule for weekends does not fire on a Monday
    weekend = Rule("down", WhenGrid("down"), days=Days(weekdays=WEEKENDS), setpoints=down.setpoints)
    weekend_down = Plan("w", (weekend,))
    monday = started(weekend_down, la(3, 9, 12))
    assert monday.step(la(3, 9, 12, 1), seen(la(3, 9, 12, 1), grid=ISLANDED)) == []
    # starting in an outage: the grid went down while nobody watched
    [due] = Engine(plan, LA).start(la(3, 9, 12), seen(la(3, 9, 12), grid=ISLANDED))
    assert isinstance(due, Due) and due.rule is down


# --- sleeping and clocks --------------------------------------------------------------------


def test_a_long_sleep_coalesces_state_rules_and_misses_the_windows_that_closed() -> None:
    engine = started(SCE_PLAN, la(3, 9, 6))
    now = la(3, 11, 23)  # slept through two and a half days
    assert engine.step(now, seen(now)) == [
        Missed(FIRMWARE, la(3, 9, 7, 15)),
        Missed(FIRMWARE, la(3, 10, 7, 15)),
        Missed(FIRMWARE, la(3, 11, 7, 15)),
        Due(KEEP_FULL, KEEP_FULL.setpoints, None, la(3, 11, 22, 5), catch_up=True),
    ]


def test_coalescing_keeps_per_setting_the_latest_value() -> None:
    plan = Plan(
        "split",
        (
            rule_at(
                8 * 60,
                "mode and reserve",
                mode=OperationMode.AUTONOMOUS,
                backup_reserve_app_percent=20.0,
            ),
            rule_at(9 * 60, "reserve", backup_reserve_app_percent=40.0),
        ),
    )
    engine = started(plan, la(3, 9, 7))
    now = la(3, 9, 9, 30)
    mode, reserve = engine.step(now, seen(now))
    assert mode == Due(
        plan.rules[0], Setpoints(mode=OperationMode.AUTONOMOUS), None, la(3, 9, 8), catch_up=True
    )
    assert reserve == Due(plan.rules[1], plan.rules[1].setpoints, None, la(3, 9, 9), True)


def test_a_window_still_open_after_a_short_sleep_is_due_and_marked_late_past_the_grace() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7))
    [due] = engine.step(la(3, 9, 7, 19), seen(la(3, 9, 7, 19)))
    assert due == Due(FIRMWARE, Setpoints(), FIRMWARE.firmware_window, la(3, 9, 7, 15))
    engine = started(SCE_PLAN, la(3, 9, 7))
    [due] = engine.step(la(3, 9, 7, 44), seen(la(3, 9, 7, 44)))
    assert due.catch_up  # 29 minutes late, more than the 300 s grace, still open


extra_rules = st.lists(
    st.builds(
        lambda minute, setpoints: Rule("extra", AtTime(minute), setpoints=setpoints),
        st.integers(0, 1439),
        st.one_of(
            st.builds(Setpoints, grid_charging=st.booleans()),
            st.builds(Setpoints, backup_reserve_app_percent=st.sampled_from([20.0, 40.0])),
        ),
    ),
    max_size=3,
)


@settings(max_examples=100, deadline=None)
@given(
    extra=extra_rules,
    start=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 1), timezones=st.just(UTC)),
    gaps_min=st.lists(st.integers(1, 3 * 24 * 60), min_size=1, max_size=25),
)
def test_however_it_is_stepped_what_was_applied_is_what_is_in_force(
    extra: list[Rule], start: datetime, gaps_min: list[int]
) -> None:
    """On fresh readings on grid, after every step the state Dues so far add up to exactly
    what in_force says; nothing is applied twice; a window is due only while open, else
    Missed, and each opening is reported once."""
    extra = [replace(rule, name=f"extra {n}") for n, rule in enumerate(extra)]
    plan = Plan("p", (*SCE_PLAN.rules, *extra), tariff=SCE_TARIFF)
    engine = Engine(plan, LA)
    applied = Setpoints()
    seen_state: set[tuple[str, datetime]] = set()
    windows: list[datetime] = []
    now = start
    decisions = engine.start(now, seen(now))
    for gap in [0, *gaps_min]:
        now += gap * MINUTE
        if gap:
            decisions = engine.step(now, seen(now))
        for decision in decisions:
            assert not isinstance(decision, Held)
            if isinstance(decision, Due) and decision.firmware_window is None:
                key = (decision.rule.name, decision.scheduled_at_utc)
                assert key not in seen_state
                seen_state.add(key)
                applied = applied.then(decision.setpoints)
                late = (now - decision.scheduled_at_utc).total_seconds() > 300
                assert decision.catch_up == (late or not gap)
            else:
                open_until = decision.scheduled_at_utc + 30 * MINUTE
                assert isinstance(decision, Due) == (now < open_until)
                windows.append(decision.scheduled_at_utc)
        assert applied == in_force(plan, LA, now)
    openings = [
        o.at_utc
        for o in occurrences(plan, LA, start - timedelta(days=8), now + timedelta(microseconds=1))
        if o.rule is FIRMWARE
    ]
    at_start = [at for at in openings if at <= start][-1:]  # only the latest, on start
    assert windows == at_start + [at for at in openings if at > start]
    assert len(windows) == len(set(windows))


def test_a_clock_set_back_fires_nothing_twice() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7, 50))
    assert len(engine.step(la(3, 9, 8), seen(la(3, 9, 8)))) == 1
    assert engine.step(la(3, 9, 7, 50), seen(la(3, 9, 7, 50))) == []
    assert engine.step(la(3, 9, 8, 1), seen(la(3, 9, 8, 1))) == []


def test_start_comes_first_and_once() -> None:
    engine = Engine(SCE_PLAN, LA)
    with pytest.raises(RuntimeError, match="start"):
        engine.step(la(3, 9, 8), None)
    engine.start(la(3, 9, 8), None)
    with pytest.raises(RuntimeError, match="start"):
        engine.start(la(3, 9, 8), None)


# --- the firmware window ------------------------------------------------------------------


WINDOW = FirmwareWindow(duration_min=30, avoid_periods=("peak",), margin_min=60)


def firmware(
    now: datetime,
    observation: Observation | None = None,
    opened: datetime | None = None,
    tariff: object = SCE_TARIFF,
) -> object:
    opened = opened or now - 10 * MINUTE
    obs = observation if observation is not None else seen(now)
    return decide_firmware(WINDOW, opened, now, obs, tariff, LA)  # type: ignore[arg-type]


def postponed(now: datetime, **kwargs: object) -> str:
    decision = firmware(now, **kwargs)  # type: ignore[arg-type]
    assert isinstance(decision, Postpone), decision
    return decision.reason


def test_firmware_installs_on_grid_idle_and_far_from_peak() -> None:
    now = la(3, 9, 7, 20)
    assert firmware(now) == Install()
    assert firmware(now, seen(now, battery_w=-240.0)) == Install()  # idle is |W| <= 250
    # busy but not needed: at (or within 1 % of) its reserve
    assert firmware(now, seen(now, battery_w=3000.0, soe=6.0, reserve=5.0)) == Install()


def test_firmware_is_postponed_with_a_plain_reason() -> None:
    now = la(3, 9, 7, 20)
    assert postponed(now, observation=seen(now, grid=ISLANDED)) == "site is off grid"
    assert postponed(now, observation=seen(now, grid=None)) == "the grid status is not reported"
    assert "180 s old" in postponed(now, observation=seen(now - 3 * MINUTE))
    busy = postponed(now, observation=seen(now, battery_w=2000.0, soe=60.0))
    assert busy.startswith("the battery is discharging 2000 W")
    charging = postponed(now, observation=seen(now, battery_w=-900.0, soe=60.0, reserve=None))
    assert charging.startswith("the battery is charging 900 W")
    unknown = postponed(now, observation=seen(now, battery_w=None, soe=60.0))
    assert unknown == "the battery's power is not known"


def test_firmware_avoids_a_period_in_force_or_starting_within_the_margin() -> None:
    assert postponed(la(3, 9, 14, 10)) == "peak is in force"
    assert postponed(la(3, 9, 13, 0)) == "peak starts at 14:00, within 60 min"
    assert firmware(la(3, 9, 12, 59)) == Install()  # 61 minutes before
    # without a tariff only the grid and the battery are judged
    assert firmware(la(3, 9, 14, 10), tariff=None) == Install()


def test_a_postponement_retries_every_few_minutes_but_never_past_the_window() -> None:
    opened = la(3, 9, 7, 15)
    off = seen(la(3, 9, 7, 20), grid=ISLANDED)
    assert decide_firmware(WINDOW, opened, la(3, 9, 7, 20), off, SCE_TARIFF, LA) == Postpone(
        "site is off grid", la(3, 9, 7, 25)
    )
    late = seen(la(3, 9, 7, 43), grid=ISLANDED)
    decision = decide_firmware(WINDOW, opened, la(3, 9, 7, 43), late, SCE_TARIFF, LA)
    assert isinstance(decision, Postpone) and decision.retry_at_utc == la(3, 9, 7, 45)
    closed = decide_firmware(WINDOW, opened, la(3, 9, 7, 45), seen(la(3, 9, 7, 45)), None, LA)
    assert closed == Closed("the 30-minute window opened at 07:15 has closed")


def test_the_engine_decides_a_due_window_with_the_plan_tariff_and_staleness() -> None:
    engine = started(SCE_PLAN, la(3, 9, 7))
    [due] = engine.step(la(3, 9, 7, 15), seen(la(3, 9, 7, 15)))
    assert isinstance(due, Due)
    assert engine.decide_firmware(due, la(3, 9, 7, 16), seen(la(3, 9, 7, 16))) == Install()
    assert engine.decide_firmware(due, la(3, 9, 7, 16), None) == Postpone(
        "no reading of the gateway yet", la(3, 9, 7, 21)
    )
    [state] = engine.step(la(3, 9, 7, 55), seen(la(3, 9, 7, 55)))
    with pytest.raises(ValueError, match="peak on the battery"):
        engine.decide_firmware(state, la(3, 9, 7, 55), None)  # type: ignore[arg-type]
