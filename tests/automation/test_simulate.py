"""The full-speed simulation (automation/simulate.py): a plan, each mode alone and no battery
on the simulator's physics, over a few days of a built-in scenario or a real monitor database.

Identities the physics keeps are checked exactly (the meters are the integral of the powers,
load = grid + battery + solar at every instant); behaviour (backup never discharges on grid,
a rule's change at its instant, gaps skipped) is read from the step-by-step trace."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sce_plan import KEEP_FULL, LA, ON_BATTERY, SCE_PLAN, SCE_TARIFF

from tegkit.automation import simulate as sim
from tegkit.automation.plan import AtTime, Plan, Rule, Setpoints, WhenSoe
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import OperationMode
from tegkit.monitor.readings import Gap, Reading
from tegkit.monitor.store import open_store
from tegkit.sim.physics import TRANSITION_S
from tegkit.tariff import builtin_tariff

SC, BACKUP, AUTONOMOUS = (
    OperationMode.SELF_CONSUMPTION,
    OperationMode.BACKUP,
    OperationMode.AUTONOMOUS,
)


@pytest.fixture(scope="module")
def sunny() -> sim.Series:
    return sim.load_source(scenario="sunny-day", days=2)


@pytest.fixture(scope="module")
def sunny_results(sunny: sim.Series) -> list[sim.Result]:
    return sim.compare(SCE_PLAN, sunny, SCE_TARIFF)


def test_compare_runs_the_plan_the_modes_and_no_battery(sunny_results: list[sim.Result]) -> None:
    assert [r.strategy for r in sunny_results] == [
        sim.PLAN,
        sim.PLAN_WITHOUT_FIRMWARE_WINDOW,
        SC.value,
        BACKUP.value,
        AUTONOMOUS.value,
        sim.NO_BATTERY,
    ]
    plan = sunny_results[0]
    # the settings in force at the start (catch-up, as the runner does), then 07:55 and
    # 22:05 on each of the two days
    assert plan.actions == 1 + 4
    # every strategy saw the same home and the same sun
    loads = {round(r.load_wh, 6) for r in sunny_results}
    solars = {round(r.solar_wh, 6) for r in sunny_results if r.strategy != sim.NO_BATTERY}
    assert len(loads) == 1 and len(solars) == 1


def test_the_grid_carries_what_the_sun_and_battery_do_not(
    sunny_results: list[sim.Result],
) -> None:
    # load = grid + battery + solar at every instant, so over the run:
    # import - export = load - solar - (discharged - charged)
    for r in sunny_results:
        net_grid = r.import_wh - r.export_wh
        expected = r.load_wh - r.solar_wh - (r.battery_discharged_wh - r.battery_charged_wh)
        assert net_grid == pytest.approx(expected, rel=1e-9, abs=1e-6), r.strategy


def test_the_pack_keeps_what_went_in_minus_the_round_trip_loss(
    sunny: sim.Series, sunny_results: list[sim.Result]
) -> None:
    one_way = math.sqrt(sunny.site.round_trip_efficiency)
    for r in sunny_results:
        if r.strategy == sim.NO_BATTERY:
            continue
        stored = r.battery_charged_wh * one_way - r.battery_discharged_wh / one_way
        assert stored == pytest.approx(r.stored_change_wh, abs=1e-3), r.strategy
        assert r.cycles == pytest.approx(r.battery_discharged_wh / 13_500.0)


def test_prices_follow_the_tariffs_own_clock_not_the_sites() -> None:
    # A Phoenix site (no DST) on a Los Angeles tariff in winter: the clocks differ by an
    # hour, and the peak is Los Angeles' peak, as Tariff.price_at says.
    series = sim.load_source(scenario="evening-outage", start=date(2024, 12, 2), days=1)
    assert series.tz == ZoneInfo("America/Phoenix")
    tariff = builtin_tariff("sce-tou")
    result = sim.simulate(sim.NO_BATTERY, series, tariff)
    expected_cost = 0.0
    for i in range(series.steps):
        at = series.start_utc + timedelta(seconds=i * series.step_s)
        net_wh = (series.load_w[i] - series.solar_w[i]) * series.step_s / 3600.0
        expected_cost += tariff.price_at(at).cost_of(max(net_wh, 0.0), max(-net_wh, 0.0))
    assert result.cost == pytest.approx(expected_cost, rel=1e-12)


def test_without_a_battery_the_cost_is_the_tariff_on_the_net_load(sunny: sim.Series) -> None:
    tariff = builtin_tariff("california-tou")
    result = sim.simulate(sim.NO_BATTERY, sunny, tariff)
    expected_cost = imported = exported = 0.0
    for i in range(sunny.steps):
        at = sunny.start_utc + timedelta(seconds=i * sunny.step_s)
        price = tariff.price_at(at.astimezone(sunny.tz))
        net_wh = (sunny.load_w[i] - sunny.solar_w[i]) * sunny.step_s / 3600.0
        buy, sell = max(net_wh, 0.0), max(-net_wh, 0.0)
        expected_cost += price.cost_of(buy, sell)
        imported += buy
        exported += sell
    assert result.cost == pytest.approx(expected_cost, rel=1e-12)
    assert (result.import_wh, result.export_wh) == (
        pytest.approx(imported, rel=1e-12),
        pytest.approx(exported, rel=1e-12),
    )
    assert result.cycles == 0.0 and result.battery_discharged_wh == 0.0
    assert result.self_powered_percent == pytest.approx(100.0 * (1 - imported / result.load_wh))


def test_backup_alone_never_discharges_on_grid() -> None:
    series = sim.load_source(scenario="evening-outage", days=2)
    (outage,) = series.outages
    assert outage.hours == 3.0
    result = sim.simulate(BACKUP, series, builtin_tariff("flat"), trace=True)
    assert result.trace is not None
    discharging = [i for i, wh in enumerate(result.trace.discharged_wh) if wh > 0.0]
    assert discharging, "the battery carries the home through the outage"
    # islanded until the gateway has resynchronised, TRANSITION_S after the grid is back
    islanded_until = outage.end_utc + timedelta(seconds=TRANSITION_S)
    for i in discharging:
        lo = series.start_utc + timedelta(seconds=i * series.step_s)
        hi = lo + timedelta(seconds=series.step_s)
        assert lo < islanded_until and hi > outage.start_utc, f"discharged on grid at {lo}"
    # on a day without an outage it never discharges at all
    sunny = sim.load_source(scenario="sunny-day", days=2)
    assert sim.simulate(BACKUP, sunny, builtin_tariff("flat")).battery_discharged_wh == 0.0


def _local(series: sim.Series, day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=series.tz).astimezone(UTC)


def test_a_plan_switching_to_backup_at_22_05_shows_it_in_the_days_trace(
    sunny: sim.Series,
) -> None:
    result = sim.simulate(SCE_PLAN, sunny, SCE_TARIFF, trace=True)
    trace = result.trace
    assert trace is not None
    day = sunny.start_utc.astimezone(sunny.tz).date()
    before = trace.index(_local(sunny, day, 22, 0))  # the step 22:00-22:05
    after = before + 1  # 22:05-22:10
    assert trace.mode[before] == SC and trace.mode[after] == BACKUP
    # backup refills the pack from the grid at full power from 22:05 on
    assert trace.battery_wh[before] > 0.0  # still serving the house
    assert trace.battery_wh[after] == pytest.approx(-5000.0 * 300 / 3600, rel=1e-9)
    assert trace.grid_wh[after] > -trace.battery_wh[after]
    morning = trace.index(_local(sunny, day + timedelta(days=1), 7, 55))
    assert trace.mode[morning - 1] == BACKUP and trace.mode[morning] == SC


def test_the_plans_times_follow_the_local_clock_across_a_dst_change() -> None:
    # 3 November 2024: Los Angeles falls back from 02:00 PDT to 01:00 PST
    series = sim.load_source(scenario="sunny-day", start=date(2024, 11, 1), days=5)
    assert series.steps == (5 * 24 + 1) * 3600 // series.step_s
    trace = sim.simulate(SCE_PLAN, series, SCE_TARIFF, trace=True).trace
    assert trace is not None
    for offset in range(5):
        day = date(2024, 11, 1) + timedelta(days=offset)
        at_22_05 = trace.index(_local(series, day, 22, 5))
        assert (trace.mode[at_22_05 - 1], trace.mode[at_22_05]) == (SC, BACKUP), day
        if offset:
            at_07_55 = trace.index(_local(series, day, 7, 55))
            assert (trace.mode[at_07_55 - 1], trace.mode[at_07_55]) == (BACKUP, SC), day


def test_a_rule_between_steps_acts_at_its_own_minute(sunny: sim.Series) -> None:
    at_22_07 = replace(KEEP_FULL, trigger=AtTime(22 * 60 + 7))
    plan = Plan("late", (ON_BATTERY, at_22_07), timezone=LA, tariff=SCE_TARIFF)
    trace = sim.simulate(plan, sunny, SCE_TARIFF, trace=True).trace
    assert trace is not None
    day = sunny.start_utc.astimezone(sunny.tz).date()
    step = trace.index(_local(sunny, day, 22, 5))  # 22:05-22:10: two minutes, then backup
    assert trace.mode[step] == BACKUP
    charged_wh = trace.discharged_wh[step] - trace.battery_wh[step]
    assert charged_wh == pytest.approx(5000.0 * 180 / 3600, rel=1e-9)


def test_a_condition_rule_acts_after_the_step_that_crossed_it(sunny: sim.Series) -> None:
    plan = Plan(
        "keep some",
        (
            Rule("low reserve", AtTime(0), setpoints=Setpoints(backup_reserve_app_percent=5.0)),
            Rule(
                "refill when low",
                WhenSoe(below_app_percent=20.0),
                setpoints=Setpoints(backup_reserve_app_percent=100.0),
            ),
        ),
        timezone=LA,
        tariff=SCE_TARIFF,
    )
    result = sim.simulate(plan, sunny, SCE_TARIFF, trace=True)
    trace = result.trace
    assert trace is not None
    # on start, at the crossing, at 00:00 of day 2 (not at the span's end, 00:00 of day 3)
    soe = trace.soe_app_percent
    assert sum(1 for i in range(1, len(soe)) if soe[i - 1] >= 20.0 > soe[i]) == 1
    assert result.actions == 3
    crossed = next(i for i, soe in enumerate(trace.soe_app_percent) if soe < 20.0)
    assert all(wh > 0.0 for wh in trace.battery_wh[crossed - 3 : crossed + 1])  # discharging
    # reserve 100: the pack refills from the grid at the below-reserve rate from then on
    assert trace.battery_wh[crossed + 1] == pytest.approx(-1700.0 * 300 / 3600, rel=1e-9)


def test_the_firmware_window_installs_before_the_gateway_would_in_the_peak() -> None:
    series = sim.load_source(scenario="firmware-peak", days=1)
    results = {r.strategy: r for r in sim.compare(SCE_PLAN, series, SCE_TARIFF)}
    (by_plan,) = results[sim.PLAN].installs
    assert by_plan.by == "plan"
    assert by_plan.started_utc.astimezone(LA).strftime("%H:%M") == "07:15"
    (by_itself,) = results[sim.PLAN_WITHOUT_FIRMWARE_WINDOW].installs
    # the scenario's release installs itself at its seeded instant, as `teg sim` plays it
    assert by_itself.by == "gateway" and by_itself.stop_period == "peak"
    assert by_itself.started_utc.astimezone(LA).strftime("%H:%M:%S") == "18:44:47"
    for mode in (SC, BACKUP, AUTONOMOUS):
        assert results[mode.value].installs == (by_itself,)
    # the stop in the peak costs money; the window saves it
    assert results[sim.PLAN].cost < results[sim.PLAN_WITHOUT_FIRMWARE_WINDOW].cost


def test_the_same_seed_gives_the_same_releases_and_installs() -> None:
    series = sim.load_source(scenario="sunny-day", days=5)
    first = sim.simulate(SC, series, SCE_TARIFF, releases_per_year=365.0, seed=5)
    again = sim.simulate(SC, series, SCE_TARIFF, releases_per_year=365.0, seed=5)
    assert first.installs and first.installs == again.installs and first.cost == again.cost
    assert all(i.by == "gateway" for i in first.installs)
    other = sim.simulate(SC, series, SCE_TARIFF, releases_per_year=365.0, seed=6)
    assert other.installs != first.installs
    none = sim.simulate(SC, series, SCE_TARIFF, releases_per_year=0.0)
    assert none.installs == ()


# --- a real monitor database --------------------------------------------------------------------


GW = "home"
DAY = date(2024, 7, 1)


def _write_history(path: Path) -> tuple[float, float]:
    """Two days of readings every 60 s (1 kW of load, solar by day), with 3 hours missing;
    returns the hole's bounds."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=LA).timestamp()
    hole = (start + 30 * 3600, start + 33 * 3600)
    readings = []
    for k in range(2 * 1440):
        t = start + 60 * k
        if hole[0] <= t < hole[1]:
            continue
        hour = ((t - start) / 3600) % 24
        solar = max(0.0, 3000.0 * math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
        readings.append(
            Reading(
                gateway=GW,
                taken_at=t,
                load_w=1000.0,
                solar_w=round(solar),
                site_w=round(1000.0 - solar),
                battery_w=0.0,
                soe_raw_percent=62.0,
                grid_status="SystemGridConnected",
            )
        )
    store = open_store(path)
    try:
        store.write_readings(readings)
        store.write_gap(Gap(GW, hole[0], hole[1], "gateway unreachable"))
    finally:
        store.close()
    return hole


def test_history_from_a_monitor_database_reports_and_skips_its_gaps(tmp_path: Path) -> None:
    hole = _write_history(tmp_path / "monitor.db")
    store = open_store(tmp_path / "monitor.db")
    try:
        series = sim.load_source(history=store, gateway=GW, tz=LA, start=DAY, days=2)
    finally:
        store.close()
    (gap,) = series.gaps
    assert (gap.start_utc.timestamp(), gap.end_utc.timestamp()) == hole
    assert gap.reason == "gateway unreachable" and series.gap_hours == 3.0
    assert series.site.initial_soe_raw_percent == 62.0
    recorded = [v for v in series.load_w if not math.isnan(v)]
    assert len(recorded) == series.steps - 36 and set(recorded) == {1000.0}
    for result in sim.compare(SCE_PLAN, series, SCE_TARIFF):
        # the 3 hours are skipped, never counted as a home using nothing
        assert result.load_wh == pytest.approx(1000.0 * 45, rel=1e-9), result.strategy
    hourly = series.hourly()
    assert len(hourly.load_w) == 48 and hourly.load_w.count(None) == 3
    assert hourly.load_w[0] == 1000.0 and hourly.solar_w[12] == pytest.approx(3000.0, rel=0.02)


def test_history_without_readings_in_range_is_a_clear_error(tmp_path: Path) -> None:
    _write_history(tmp_path / "monitor.db")
    store = open_store(tmp_path / "monitor.db")
    try:
        with pytest.raises(InvalidInputError) as caught:
            sim.load_source(history=store, gateway="other", tz=LA, start=DAY, days=2)
        assert caught.value.field == "history" and "'other'" in caught.value.allowed
        # by default the days before the latest reading's (which may not be over yet)
        latest = sim.load_source(history=store, gateway=GW, tz=LA, days=1)
        assert latest.start_utc.astimezone(LA).date() == DAY
    finally:
        store.close()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"scenario": "sunny-day", "step_s": 7}, "step_s"),
        ({"scenario": "sunny-day", "days": 0}, "days"),
        ({"scenario": "sunny-day", "days": 1000}, "days"),
        ({"scenario": "nowhere"}, "scenario"),
        ({}, "source"),
        ({"scenario": "sunny-day", "powerwalls": 0}, "powerwalls"),
        ({"scenario": "sunny-day", "seed": -1}, "seed"),
    ],
)
def test_bad_sources_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        sim.load_source(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_bad_strategies_and_release_rates_name_the_field(sunny: sim.Series) -> None:
    with pytest.raises(InvalidInputError) as caught:
        sim.simulate("nonsense", sunny, SCE_TARIFF)
    assert caught.value.field == "strategy"
    with pytest.raises(InvalidInputError) as caught:
        sim.simulate(SC, sunny, SCE_TARIFF, releases_per_year=-1.0)
    assert caught.value.field == "releases"
    with pytest.raises(InvalidInputError) as caught:
        sim.tariff_named("no-such-tariff", "--tariff")
    assert caught.value.field == "--tariff"
