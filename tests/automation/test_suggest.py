"""The least-cost schedule (a linear programme solved by HiGHS) and the plan drawn from it.

Small programmes whose optimum is known by hand, the battery's limits on random data, the
hidden 5 %, and the plan: it reads back, it simulates, and on a built-in scenario with the
SCE tariff it costs less than self_consumption alone and the spec's hand-written plan."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tegkit.automation import simulate as sim
from tegkit.automation import suggest as sg
from tegkit.automation.plan import AtTime
from tegkit.automation.planfile import load_plan, parse_plan
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.percent import app_to_raw
from tegkit.sim import physics
from tegkit.tariff import Tariff, builtin_tariff

LA = ZoneInfo("America/Los_Angeles")
MIDNIGHT = datetime(2024, 3, 12, tzinfo=LA).astimezone(UTC)  # a Tuesday, no DST change near
HAND_PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "sce-tou.toml"


def two_periods(cheap: float, dear: float, sell: float = 0.0) -> Tariff:
    """cheap 00:00-12:00, dear 12:00-24:00, every day."""
    return Tariff.from_toml(
        f"""
        [[periods]]
        name = "cheap"
        start = "00:00"
        end = "12:00"
        buy_per_kwh = {cheap}
        sell_per_kwh = {sell}
        [[periods]]
        name = "dear"
        start = "12:00"
        end = "24:00"
        buy_per_kwh = {dear}
        sell_per_kwh = {sell}
        """
    )


def flat_load(days: int, load_w: float = 1000.0, solar_w: float = 0.0) -> tuple[list[float], ...]:
    return [load_w] * (24 * days), [solar_w] * (24 * days)


def optimum_for(
    tariff: Tariff,
    load: list[float] | np.ndarray,
    solar: list[float] | np.ndarray,
    *,
    soe_app: float = 0.0,
    battery: sg.BatteryLimits | None = None,
    grid: sg.GridRules | None = None,
) -> sg.Optimum:
    steps = sg.make_steps(MIDNIGHT, 3600, load, solar, tariff, LA)
    return sg.optimise(steps, battery or sg.BatteryLimits(), grid or sg.GridRules(), soe_app)


# --- optima known by hand -----------------------------------------------------------------


def test_a_flat_tariff_leaves_nothing_to_arbitrage() -> None:
    flat = builtin_tariff("flat")
    opt = optimum_for(flat, *flat_load(3), soe_app=50.0)
    assert opt.grid_charge_w.max() < 1e-6
    assert opt.discharge_w.max() < 1e-6
    assert opt.cost == pytest.approx(opt.cost_without_battery)
    assert opt.cost_without_battery == pytest.approx(3 * 24 * 0.30)


def test_a_big_spread_charges_cheap_and_discharges_in_the_dear_hours() -> None:
    tariff = two_periods(0.10, 0.50)
    opt = optimum_for(tariff, *flat_load(3))
    hours = np.arange(len(opt.steps)) % 24
    cheap, dear = hours < 12, hours >= 12
    assert opt.grid_charge_w[dear].max() < 1e-6
    assert opt.discharge_w[cheap].max() < 1e-6
    # every dear hour's 1 kWh comes from the battery: 12 kWh a day out is 12 / sqrt(0.9)
    # stored, bought at 12 / 0.9 kWh in the cheap hours (the pack holds 13.5)
    assert opt.discharge_w[dear] == pytest.approx(1000.0, abs=1e-3)
    bought_kwh = 12 / 0.9
    per_day = 12 * 0.10 + bought_kwh * 0.10
    assert opt.cost == pytest.approx(3 * per_day, rel=1e-6)
    assert opt.cost_without_battery == pytest.approx(3 * (12 * 0.10 + 12 * 0.50))


def test_a_spread_below_the_round_trip_loss_is_not_worth_cycling() -> None:
    # 0.30 bought is 0.30 / 0.9 = 0.333 per kWh given back: dearer than 0.32
    opt = optimum_for(two_periods(0.30, 0.32), *flat_load(3))
    assert opt.grid_charge_w.max() < 1e-6 and opt.discharge_w.max() < 1e-6
    # ... and one above it is
    wide = optimum_for(two_periods(0.30, 0.36), *flat_load(3))
    assert wide.grid_charge_w.sum() > 0 and wide.cost < wide.cost_without_battery


def test_the_round_trip_loss_is_split_into_charge_and_discharge() -> None:
    battery = sg.BatteryLimits(round_trip_efficiency=0.81)
    assert battery.charge_efficiency == pytest.approx(0.9)
    assert battery.discharge_efficiency == pytest.approx(0.9)
    opt = optimum_for(two_periods(0.10, 0.50), *flat_load(1), battery=battery)
    stored = np.diff(opt.usable_wh)
    expected = 0.9 * (opt.solar_charge_w + opt.grid_charge_w) - opt.discharge_w / 0.9
    assert stored == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_the_battery_never_exceeds_its_capacity_or_power(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = 4
    hours = np.arange(24 * days) % 24
    load = 300 + 4000 * rng.random(24 * days)
    solar = np.maximum(0, np.sin((hours - 6) / 12 * math.pi)) * 9000 * rng.random(24 * days)
    battery = sg.BatteryLimits(powerwalls=int(rng.integers(1, 4)))
    opt = optimum_for(
        two_periods(0.1, 0.6, sell=0.05), load, solar, soe_app=float(rng.uniform(0, 100)),
        battery=battery,
    )  # fmt: skip
    tol = 1e-6
    steps = opt.steps
    assert opt.usable_wh.min() >= -tol and opt.usable_wh.max() <= battery.usable_wh + tol
    charge = opt.solar_charge_w + opt.grid_charge_w
    assert charge.max() <= battery.power_w + tol
    assert opt.discharge_w.max() <= battery.power_w + tol
    assert np.all(opt.discharge_w <= steps.deficit_w + tol)  # the battery only serves the home
    assert np.all(opt.solar_charge_w <= steps.surplus_w + tol)
    assert opt.grid_charge_w.max() <= 1700.0 * battery.powerwalls + tol
    assert opt.import_w.min() >= -tol and opt.export_w.min() >= -tol
    # the charge tapers above raw 95 %: the pack is never quite full
    soe = opt.soe_app_percent()
    assert soe.max() <= 100.0 + tol and soe.min() >= -tol


def test_the_hidden_five_percent_is_never_used() -> None:
    battery = sg.BatteryLimits()
    # usable energy is raw 5 .. 100: app 0 % is raw 5 %, the full pack is usable / 0.95
    assert battery.full_pack_wh == pytest.approx(13_500 / 0.95)
    assert battery.app_percent(0.0) == pytest.approx(0.0, abs=1e-9)
    assert app_to_raw(battery.app_percent(0.0)) == pytest.approx(5.0)
    assert battery.app_percent(battery.usable_wh) == pytest.approx(100.0)
    # drained in the dear hours, the pack stops at app 0 %, i.e. raw 5 %, never below
    opt = optimum_for(two_periods(0.10, 0.50), *flat_load(2, load_w=3000.0), soe_app=100.0)
    assert opt.usable_wh.min() == pytest.approx(0.0, abs=1e-6)
    assert opt.soe_app_percent().min() >= 0.0


def test_the_owners_minimum_reserve_is_kept_by_the_schedule_and_the_plan() -> None:
    tariff = two_periods(0.10, 0.50)
    grid = sg.GridRules(min_reserve_app_percent=20.0)
    opt = optimum_for(tariff, *flat_load(3, load_w=2000.0), soe_app=60.0, grid=grid)
    assert opt.soe_app_percent().min() >= 20.0 - 1e-6
    plan = sg.plan_from(opt, LA, grid, tariff).plan
    reserves = [r.setpoints.backup_reserve_app_percent for r in plan.rules if r.sets_state]
    assert reserves and min(r for r in reserves if r is not None) >= 20.0


def test_without_grid_charging_only_solar_fills_the_battery() -> None:
    tariff = two_periods(0.10, 0.50)
    grid = sg.GridRules(grid_charging=False)
    opt = optimum_for(tariff, *flat_load(2), grid=grid)
    assert opt.grid_charge_w.max() == 0.0
    plan = sg.plan_from(opt, LA, grid, tariff).plan
    assert all(rule.setpoints.grid_charging is not True for rule in plan.rules)


def test_solar_is_stored_whenever_the_pack_has_room() -> None:
    # The gateway cannot export solar while the pack has room. Even with a sell price above
    # every buy price the LP may export a share of the surplus only if the pack ends the
    # step at least that share full (the linear form of "spill only when full").
    tariff = two_periods(0.10, 0.20, sell=0.50)
    load, solar = [500.0] * 24, [0.0] * 24
    solar[12] = 3000.0
    grid = sg.GridRules(grid_charging=False)
    opt = optimum_for(tariff, load, solar, soe_app=0.0, grid=grid)
    battery = opt.battery
    full_wh = battery.usable_wh - battery.full_pack_wh * sg.FULL_MARGIN_RAW_PERCENT / 100
    spilled_share = 1.0 - opt.solar_charge_w[12] / 2500.0
    assert spilled_share <= opt.usable_wh[13] / full_wh + 1e-9
    # with no such rule it would export it all: 0.50 a kWh beats 0.20 later
    assert opt.solar_charge_w[12] >= 2000.0


def test_export_never_curtails_what_the_home_and_battery_cannot_take() -> None:
    tariff = two_periods(0.10, 0.50, sell=0.05)
    load, solar = flat_load(1, load_w=500.0, solar_w=8000.0)
    opt = optimum_for(tariff, load, solar, grid=sg.GridRules(export_rule=ExportRule.NEVER))
    assert opt.export_w.max() == pytest.approx(0.0, abs=1e-6)
    limited = optimum_for(tariff, load, solar, grid=sg.GridRules(export_limit_w=2000.0))
    assert limited.export_w.max() <= 2000.0 + 1e-6


def test_a_gap_in_the_data_is_no_energy_and_no_rule() -> None:
    tariff = two_periods(0.10, 0.50)
    load, solar = flat_load(2)
    load[14] = math.nan
    opt = optimum_for(tariff, load, solar, soe_app=50.0)
    assert opt.steps.gap[14] and opt.steps.deficit_w[14] == 0.0
    assert opt.discharge_w[14] == 0.0 and opt.import_w[14] == 0.0
    with pytest.raises(InvalidInputError, match="samples"):
        optimum_for(tariff, [math.nan] * 24, [0.0] * 24)


def test_the_grid_charge_rate_is_the_simulators() -> None:
    assert physics.BELOW_RESERVE_CHARGE_W_PER_POWERWALL == sg.GRID_CHARGE_W_PER_POWERWALL


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("powerwalls", {"powerwalls": 0}),
        ("round_trip_efficiency", {"round_trip_efficiency": 1.5}),
        ("usable_kwh_per_powerwall", {"usable_kwh_per_powerwall": math.nan}),
    ],
)
def test_bad_battery_values_are_named(field: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        sg.BatteryLimits(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


# --- the plan -------------------------------------------------------------------------------


def test_the_plan_charges_cheap_and_lets_the_battery_serve_the_dear_hours() -> None:
    tariff = two_periods(0.10, 0.50)
    opt = optimum_for(tariff, *flat_load(7))
    plan = sg.plan_from(opt, LA, sg.GridRules(), tariff, firmware_window=False).plan
    rules = {
        (r.trigger.minute_of_day, r.setpoints.backup_reserve_app_percent, r.setpoints.grid_charging)
        for r in plan.rules
        if isinstance(r.trigger, AtTime)
    }
    # weekdays and weekends agree, so each rule is written once for all days
    assert all(len(r.days.weekdays) == 7 for r in plan.rules)
    (charge,) = [r for r in rules if r[0] == 0]
    (serve,) = [r for r in rules if r[0] == 12 * 60]
    assert charge[2] is True and charge[1] >= 85  # the reserve raised: grid charging to it
    assert serve == (720, 0.0, False)  # the battery serves the home down to app 0 %
    assert all(r.setpoints.mode == OperationMode.SELF_CONSUMPTION for r in plan.rules)


def test_rules_keep_their_clock_times_across_a_daylight_saving_change() -> None:
    tariff = two_periods(0.10, 0.50)
    spring = datetime(2024, 3, 7, tzinfo=LA).astimezone(UTC)  # Sunday 10 March springs forward
    end = datetime(2024, 3, 14, tzinfo=LA).astimezone(UTC)
    hours = int((end - spring).total_seconds() // 3600)
    steps = sg.make_steps(spring, 3600, [1000.0] * hours, [0.0] * hours, tariff, LA)
    assert len(steps) == 7 * 24 - 1  # the day that springs forward has 23 hours
    opt = sg.optimise(steps, sg.BatteryLimits(), sg.GridRules(), 0.0)
    plan = sg.plan_from(opt, LA, sg.GridRules(), tariff, firmware_window=False).plan
    assert {r.trigger.minute_of_day for r in plan.rules if isinstance(r.trigger, AtTime)} == {
        0,
        720,
    }
    assert opt.discharge_w[~np.array([p == "dear" for p in steps.period])].max() < 1e-6


def test_months_without_data_follow_the_nearest_month_with_data() -> None:
    tariff = two_periods(0.10, 0.50)
    march = optimum_for(tariff, *flat_load(3))  # March data only: its rules hold all year
    plan = sg.plan_from(march, LA, sg.GridRules(), tariff).plan
    assert {r.days.months for r in plan.rules} == {None}
    start = datetime(2024, 6, 28, tzinfo=LA).astimezone(UTC)
    steps = sg.make_steps(start, 3600, *flat_load(6), tariff, LA)
    opt = sg.optimise(steps, sg.BatteryLimits(), sg.GridRules(), 0.0)
    two = sg.plan_from(opt, LA, sg.GridRules(), tariff, firmware_window=False).plan
    assert {r.days.months for r in two.rules} == {(1, 6), (7, 12)}
    assert {r.name.split()[0] for r in two.rules} == {"jan-jun", "jul-dec"}


@pytest.fixture(scope="module")
def firmware_peak_week() -> tuple[sim.Series, Tariff]:
    return sim.load_source(scenario="firmware-peak", days=4), builtin_tariff("sce-tou")


def test_the_written_plan_reads_back_and_simulates(
    firmware_peak_week: tuple[sim.Series, Tariff],
) -> None:
    series, tariff = firmware_peak_week
    suggestion = sg.suggest(series, tariff)
    text = sg.plan_text(suggestion, series.source)
    assert text.startswith("# Suggested by `teg auto suggest` from scenario firmware-peak")
    for why in suggestion.explanations:
        assert f"#   {why}" in text
    back = parse_plan(text)
    assert back.rules == suggestion.plan.rules
    assert back.timezone == LA and back.tariff == tariff
    ran = sim.simulate(back, series, tariff)
    assert ran.cost == pytest.approx(sim.simulate(suggestion.plan, series, tariff).cost)
    # its firmware window installs the scenario's release before the gateway would
    assert [i.by for i in ran.installs] == ["plan"]


@pytest.mark.parametrize("scenario", ["cloudy-day", "firmware-peak", "sunny-day"])
def test_on_a_built_in_scenario_the_plan_beats_self_consumption_and_the_hand_plan(
    scenario: str,
) -> None:
    tariff = builtin_tariff("sce-tou")
    series = sim.load_source(scenario=scenario, days=5)
    suggestion = sg.suggest(series, tariff)
    suggested = sim.simulate(suggestion.plan, series, tariff).cost
    alone = sim.simulate(OperationMode.SELF_CONSUMPTION, series, tariff).cost
    hand = sim.simulate(load_plan(HAND_PLAN), series, tariff).cost
    assert suggested < alone and suggested < hand, (suggested, alone, hand)


def test_steps_must_fit_the_data_and_the_day(
    firmware_peak_week: tuple[sim.Series, Tariff],
) -> None:
    series, tariff = firmware_peak_week
    with pytest.raises(InvalidInputError) as caught:
        sg.suggest(series, tariff, step_s=1234)
    assert caught.value.field == "step"
    with pytest.raises(InvalidInputError):
        sg.make_steps(MIDNIGHT, 3600, [1.0] * 10, [0.0] * 10, tariff, LA, step_s=900)
    with pytest.raises(InvalidInputError) as short:
        sg.make_steps(MIDNIGHT - timedelta(0), 3600, [], [], tariff, LA)
    assert short.value.field == "days"
