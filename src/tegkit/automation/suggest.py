"""The cheapest plan for a site: a linear programme over its load and solar, made into rules.

`optimise` finds, for a run of load and solar, the battery trajectory that costs least under
a tariff: a linear programme over steps of `step_s` (an hour by default), solved by HiGHS
(scipy.optimize.linprog). Per step it chooses how much solar surplus and grid energy charge
the battery and how much of the home's deficit the battery covers; the state of energy links
the steps. The battery's limits are the gateway's:

- usable energy, 13.5 kWh per Powerwall, is the span from raw 5 % to raw 100 %: the hidden
  5 % at the bottom is never used on grid, so app 0 % (tegkit.percent) is the LP's empty;
- power, 5 kW per Powerwall, charging and discharging; the charge tapers above raw 95 %;
- round-trip loss (90 %), split evenly into charge and discharge efficiency;
- the battery discharges only into the home (a customer mode never exports battery energy),
  and charges from the grid only by a raised reserve, at the rate the gateway uses then
  (1.7 kW per Powerwall, sim/physics.py), and only when grid charging is allowed;
- solar surplus is stored whenever the pack has room: no customer mode exports it instead,
  so the LP may let surplus pass a pack only as far as the pack is full (the tightest
  linear form of that either/or, a relaxation: the LP's cost is a bound the gateway nears);
- the export rule and an optional export limit (solar beyond them is curtailed).

The gateway takes modes and reserves, not power set-points, so `plan_from` turns the optimal
trajectory into a few timed rules per month (or tariff season) and day kind, at the tariff's
period boundaries, all in self_consumption: a raised reserve with grid charging on where the
LP charges from the grid (the gateway then charges at that rate up to the reserve), the
reserve at the level the LP keeps where it holds energy for a dearer period, and app 0 % (or
the owner's minimum) where the LP lets the battery serve every deficit. `suggest` does both;
`teg auto suggest` then proves the plan with `tegkit.automation.simulate` on the same load
and solar against self_consumption alone and the owner's plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linprog

from tegkit.automation.plan import (
    ALL_DAYS,
    WEEKDAYS,
    WEEKENDS,
    AtTime,
    Days,
    FirmwareWindow,
    Plan,
    Rule,
    Setpoints,
)
from tegkit.automation.planfile import dump_plan
from tegkit.automation.simulate import Series
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.percent import HIDDEN_BOTTOM_PERCENT, raw_to_app
from tegkit.tariff import Tariff

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int_]
#: a block of constraint rows: row indices, column indices and coefficient (a number or one
#: per row) for each set of columns, then the rows' upper bounds
_Block = tuple[list[IntArray], list[IntArray], list[float | FloatArray], FloatArray]

USABLE_KWH_PER_POWERWALL: Final = 13.5
POWER_KW_PER_POWERWALL: Final = 5.0
ROUND_TRIP_EFFICIENCY: Final = 0.90
#: the gateway charges from the grid up to a raised reserve at about this rate
#: (sim/physics.py BELOW_RESERVE_CHARGE_W_PER_POWERWALL; a test keeps the two equal)
GRID_CHARGE_W_PER_POWERWALL: Final = 1700.0
#: the charge tapers linearly from this raw percent to nothing at 100 (sim/battery.py)
TAPER_START_RAW_PERCENT: Final = 95.0
#: LP steps: divisors of an hour that `simulate`'s steps divide
STEP_S: Final = (300, 600, 900, 1800, 3600)
#: 400 days of the finest steps: the LP's size stays bounded
MAX_STEPS: Final = 24 * 60 // 5 * 400
#: surplus below this (W) is too small to matter for the rule that the pack stores it
MIN_SURPLUS_W: Final = 50.0
#: "full" for that rule: the charge tapers, so the pack nears raw 100 % only slowly
FULL_MARGIN_RAW_PERCENT: Final = 1.0
#: cycling the battery for less than this per kWh is not worth its wear (and breaks ties)
WEAR_PER_KWH: Final = 0.0005


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """The site's Powerwalls as one pack, with the limits the gateway gives them."""

    powerwalls: int = 1
    usable_kwh_per_powerwall: float = USABLE_KWH_PER_POWERWALL
    power_kw_per_powerwall: float = POWER_KW_PER_POWERWALL
    round_trip_efficiency: float = ROUND_TRIP_EFFICIENCY
    grid_charge_w_per_powerwall: float = GRID_CHARGE_W_PER_POWERWALL

    def __post_init__(self) -> None:
        if isinstance(self.powerwalls, bool) or not isinstance(self.powerwalls, int):
            raise InvalidInputError("powerwalls", "an integer 1..10", self.powerwalls)
        if not 1 <= self.powerwalls <= 10:
            raise InvalidInputError("powerwalls", "an integer 1..10", self.powerwalls)
        _check("usable_kwh_per_powerwall", self.usable_kwh_per_powerwall, 1.0, 100.0)
        _check("power_kw_per_powerwall", self.power_kw_per_powerwall, 0.5, 50.0)
        _check("round_trip_efficiency", self.round_trip_efficiency, 0.5, 1.0)
        _check("grid_charge_w_per_powerwall", self.grid_charge_w_per_powerwall, 0.0, 50_000.0)

    @property
    def usable_wh(self) -> float:
        """Energy from app 0 % (raw 5 %) to full."""
        return self.powerwalls * self.usable_kwh_per_powerwall * 1000.0

    @property
    def full_pack_wh(self) -> float:
        """Energy from raw 0 % to full: the usable span is 95 % of it."""
        return self.usable_wh / (1.0 - HIDDEN_BOTTOM_PERCENT / 100.0)

    @property
    def power_w(self) -> float:
        return self.powerwalls * self.power_kw_per_powerwall * 1000.0

    @property
    def grid_charge_w(self) -> float:
        return min(self.power_w, self.powerwalls * self.grid_charge_w_per_powerwall)

    @property
    def charge_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)

    @property
    def discharge_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)

    def app_percent(self, usable_wh: float) -> float:
        """The app percent of an energy above the hidden bottom (through the raw scale)."""
        raw = (usable_wh + self.full_pack_wh - self.usable_wh) * 100.0 / self.full_pack_wh
        return raw_to_app(raw)

    def usable_wh_at(self, app_percent: float) -> float:
        return self.usable_wh * app_percent / 100.0


@dataclass(frozen=True, slots=True)
class GridRules:
    """What the site may do with the grid."""

    #: the battery may charge from the grid (a raised reserve); False: from solar only
    grid_charging: bool = True
    #: PV_ONLY and BATTERY_OK export solar (customer modes never export the battery);
    #: NEVER curtails what the home and battery cannot take
    export_rule: ExportRule = ExportRule.PV_ONLY
    #: at most this much export, W (None: no limit); solar beyond it is curtailed
    export_limit_w: float | None = None
    #: the plan never sets the reserve below this (app scale): the owner's backup wish
    min_reserve_app_percent: float = 0.0

    def __post_init__(self) -> None:
        if self.export_limit_w is not None:
            _check("export_limit_w", self.export_limit_w, 0.0, 1e7)
        _check("min_reserve_app_percent", self.min_reserve_app_percent, 0.0, 100.0)


@dataclass(frozen=True, slots=True)
class Steps:
    """The LP's input: per step, what the home needs beyond solar and what solar has spare
    (averages of the positive parts, so both can occur in one step), and the prices."""

    start_utc: datetime
    step_s: int
    deficit_w: FloatArray
    surplus_w: FloatArray
    buy_per_kwh: FloatArray
    sell_per_kwh: FloatArray
    #: the tariff period's name at each step
    period: tuple[str, ...]
    #: steps with missing data: nothing flows in them
    gap: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.deficit_w)

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    def at_utc(self, index: int) -> datetime:
        return self.start_utc + timedelta(seconds=index * self.step_s)


def make_steps(
    start_utc: datetime,
    sample_s: float,
    load_w: Sequence[float] | FloatArray,
    solar_w: Sequence[float] | FloatArray,
    tariff: Tariff,
    tz: ZoneInfo,
    step_s: int = 3600,
) -> Steps:
    """Average samples of load and solar (taken every `sample_s`, from `start_utc`) into LP
    steps of `step_s`, priced by the tariff at each step's local start time. A trailing
    partial step is dropped. A step with a missing sample (NaN) is a gap: nothing flows in
    it (as `simulate` skips it) and no rule is drawn from it; it is never taken as zero."""
    if start_utc.tzinfo is None:
        raise InvalidInputError("start_utc", "an aware datetime", start_utc)
    if not sample_s > 0 or step_s % sample_s > 1e-9 or step_s < sample_s:
        raise InvalidInputError(
            "step", f"a whole multiple of the data's {sample_s:g} s samples", step_s
        )
    load = np.asarray(load_w, dtype=np.float64)
    solar = np.asarray(solar_w, dtype=np.float64)
    if load.shape != solar.shape or load.ndim != 1:
        raise InvalidInputError("samples", "as many solar samples as load samples", solar.shape)
    per = round(step_s / sample_s)
    count = len(load) // per
    if count == 0:
        raise InvalidInputError("days", f"data for at least one step of {step_s} s", len(load))
    if count > MAX_STEPS:
        raise InvalidInputError("days", f"at most {MAX_STEPS} steps of {step_s} s", count)
    net = (load[: count * per] - solar[: count * per]).reshape(count, per)
    gap: npt.NDArray[np.bool_] = np.asarray(~np.isfinite(net).all(axis=1), dtype=np.bool_)
    net[gap] = 0.0
    if gap.all():
        raise InvalidInputError("samples", "some data that is not a gap", "all gaps")
    deficit = np.maximum(net, 0.0).mean(axis=1)
    surplus = np.maximum(-net, 0.0).mean(axis=1)
    buy = np.empty(count)
    sell = np.empty(count)
    period = []
    start_utc = start_utc.astimezone(UTC)
    for index in range(count):
        local = (start_utc + timedelta(seconds=index * step_s)).astimezone(tz)
        price = tariff.price_at(local)
        buy[index] = price.buy_per_kwh
        sell[index] = price.sell_per_kwh
        period.append(price.period_name)
    return Steps(start_utc, step_s, deficit, surplus, buy, sell, tuple(period), gap)


@dataclass(frozen=True, slots=True)
class Optimum:
    """The cheapest battery trajectory: powers per step (W, averages), energies at step
    edges (Wh above the hidden bottom, len + 1), and what it costs."""

    steps: Steps
    battery: BatteryLimits
    solar_charge_w: FloatArray
    grid_charge_w: FloatArray
    discharge_w: FloatArray
    curtail_w: FloatArray
    usable_wh: FloatArray
    #: energy cost (imports less export credit) with this trajectory, in the tariff currency
    cost: float
    #: the same without a battery (solar still serves the home first)
    cost_without_battery: float

    @property
    def import_w(self) -> FloatArray:
        return self.steps.deficit_w - self.discharge_w + self.grid_charge_w

    @property
    def export_w(self) -> FloatArray:
        return self.steps.surplus_w - self.solar_charge_w - self.curtail_w

    def soe_app_percent(self) -> FloatArray:
        return np.array([self.battery.app_percent(float(e)) for e in self.usable_wh])


def optimise(
    steps: Steps,
    battery: BatteryLimits,
    grid: GridRules,
    initial_soe_app_percent: float,
    *,
    keep_final_energy: bool = True,
) -> Optimum:
    """The trajectory of least cost (see the module docstring); with `keep_final_energy`
    the battery ends at least as full as it started, so no energy is spent for free."""
    _check("initial_soe_app_percent", initial_soe_app_percent, 0.0, 100.0)
    n = len(steps)
    h = steps.step_h
    usable = battery.usable_wh
    power = battery.power_w
    eta_c, eta_d = battery.charge_efficiency, battery.discharge_efficiency
    deficit, surplus = steps.deficit_w, steps.surplus_w
    buy, sell = steps.buy_per_kwh, steps.sell_per_kwh
    # variables: solar charge, grid charge, discharge, curtailment (W, n each), then the
    # energy above the hidden bottom at each step edge (Wh, n + 1)
    cs, cg, dis, cur, en = (np.arange(n) + k * n for k in range(5))
    en = np.arange(4 * n, 5 * n + 1)
    size = 5 * n + 1
    kwh = h / 1000.0
    cost = np.zeros(size)
    cost[cs] = sell * kwh + WEAR_PER_KWH * kwh  # stored solar is export credit forgone
    cost[cg] = buy * kwh + WEAR_PER_KWH * kwh
    cost[dis] = -buy * kwh + WEAR_PER_KWH * kwh
    cost[cur] = sell * kwh
    floor = battery.usable_wh_at(grid.min_reserve_app_percent)
    start = battery.usable_wh_at(initial_soe_app_percent)
    lower = np.zeros(size)
    upper = np.empty(size)
    upper[cs] = np.minimum(surplus, power)
    upper[cg] = battery.grid_charge_w if grid.grid_charging else 0.0
    upper[dis] = np.minimum(deficit, power)
    upper[cur] = surplus
    for var in (cs, cg, dis, cur):
        upper[var[steps.gap]] = 0.0
    lower[en] = min(floor, start)  # a battery below the owner's floor may stay there
    upper[en] = usable
    lower[en[0]] = upper[en[0]] = start
    rows = np.arange(n)
    # e[t+1] - e[t] - h eta_c (cs + cg) + h / eta_d dis = 0
    eq = sparse.coo_matrix(
        (
            np.concatenate(
                [
                    np.ones(n),
                    -np.ones(n),
                    np.full(n, -h * eta_c),
                    np.full(n, -h * eta_c),
                    np.full(n, h / eta_d),
                ]
            ),
            (np.tile(rows, 5), np.concatenate([en[1:], en[:-1], cs, cg, dis])),
        ),
        shape=(n, size),
    ).tocsr()
    # the taper: cs + cg <= P (usable - e[t+1]) / (taper span); with the power bound
    span_wh = battery.full_pack_wh * (100.0 - TAPER_START_RAW_PERCENT) / 100.0
    ub_parts: list[_Block] = [
        ([rows, rows], [cs, cg], [1.0, 1.0], np.full(n, power)),
        ([rows, rows, rows], [cs, cg, en[1:]], [1.0, 1.0, power / span_wh],
         np.full(n, power * usable / span_wh)),
        ([rows, rows], [cs, cur], [1.0, 1.0], surplus),
    ]  # fmt: skip
    if grid.export_rule == ExportRule.NEVER:
        ub_parts.append(([rows, rows], [cs, cur], [-1.0, -1.0], -surplus))
    elif grid.export_limit_w is not None:
        ub_parts.append(([rows, rows], [cs, cur], [-1.0, -1.0], grid.export_limit_w - surplus))
    # The gateway stores solar surplus whenever the pack has room (no customer mode lets it
    # export instead), so surplus may only go past a pack that is (nearly) full. "Spilling a
    # share f of what the pack could take ends the step at least f full" is the tightest
    # linear form of that rule.
    takes = np.minimum(surplus, power)
    sunny = np.flatnonzero(takes >= MIN_SURPLUS_W)
    full_wh = usable - battery.full_pack_wh * FULL_MARGIN_RAW_PERCENT / 100.0
    local = np.arange(len(sunny))
    ub_parts.append(
        ([local, local], [cs[sunny], en[sunny + 1]], [-full_wh / takes[sunny], -1.0],
         np.full(len(sunny), -full_wh))
    )  # fmt: skip
    if keep_final_energy:
        # as full as at the start, or as full as the taper lets a pack get again
        keep = min(start, full_wh)
        ub_parts.append(([np.zeros(1, dtype=int)], [en[-1:]], [-1.0], np.array([-keep])))
    a_ub, b_ub = _stack(ub_parts, size)
    result = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=eq,
        b_eq=np.zeros(n),
        bounds=np.column_stack([lower, upper]),
        method="highs",
    )
    if result.status != 0:
        raise InvalidInputError("steps", "data the battery can follow", result.message)
    x = np.asarray(result.x, dtype=np.float64)
    base = float(np.sum(buy * deficit - sell * surplus) * kwh)
    out = Optimum(
        steps=steps,
        battery=battery,
        solar_charge_w=x[cs],
        grid_charge_w=x[cg],
        discharge_w=x[dis],
        curtail_w=x[cur],
        usable_wh=x[en],
        cost=0.0,
        cost_without_battery=base,
    )
    energy_cost = float(np.sum(buy * out.import_w - sell * out.export_w) * kwh)
    return _with_cost(out, energy_cost)


def _with_cost(out: Optimum, cost: float) -> Optimum:
    return Optimum(
        out.steps, out.battery, out.solar_charge_w, out.grid_charge_w, out.discharge_w,
        out.curtail_w, out.usable_wh, cost, out.cost_without_battery,
    )  # fmt: skip


def _stack(
    parts: list[_Block],
    size: int,
) -> tuple[sparse.csr_matrix, FloatArray]:
    """Row blocks (row indices, column indices, coefficient per column set, bounds) as one
    sparse matrix and its right-hand side."""
    data, row_index, col_index, bounds = [], [], [], []
    offset = 0
    for rows, cols, coefs, bound in parts:
        for r, c, coef in zip(rows, cols, coefs, strict=True):
            row_index.append(r + offset)
            col_index.append(c)
            data.append(np.broadcast_to(np.asarray(coef, dtype=np.float64), (len(c),)))
        bounds.append(np.asarray(bound, dtype=np.float64))
        offset += len(bound)
    matrix = sparse.coo_matrix(
        (np.concatenate(data), (np.concatenate(row_index), np.concatenate(col_index))),
        shape=(offset, size),
    ).tocsr()
    return matrix, np.concatenate(bounds)


def _check(name: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not low <= value <= high
    ):
        raise InvalidInputError(name, f"a number from {low:g} to {high:g}", value)


# --- from a trajectory to rules the gateway can follow -------------------------------------

#: rules per tariff season and day kind, or per month and day kind (finer: more rules)
GroupBy = Literal["season", "month"]
GROUP_BY: Final = ("season", "month")
MONTH_NAMES: Final = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
#: a span counts as a grid-charging one when a typical day buys at least this share of the
#: usable energy in it
CHARGE_SHARE: Final = 0.02
#: weekday and weekend rules that differ by no more than this are written once for all days
MERGE_APP_PERCENT: Final = 5.0
#: the firmware window opens where the battery idles, between this hour and the dear period
FIRMWARE_EARLIEST_HOUR: Final = 5


@dataclass(frozen=True, slots=True)
class Setting:
    """What one rule puts in force from `minute_of_day` on, and why."""

    minute_of_day: int
    reserve_app_percent: float
    grid_charging: bool | None
    period: str
    why: str

    def same_as(self, other: Setting) -> bool:
        return (
            abs(self.reserve_app_percent - other.reserve_app_percent) < 0.5
            and self.grid_charging == other.grid_charging
        )


@dataclass(frozen=True, slots=True)
class DayGroup:
    """Local days that share one set of rules: a tariff season and a day kind."""

    season: str
    months: tuple[int, int] | None
    weekdays: frozenset[int]
    settings: tuple[Setting, ...]

    @property
    def kind(self) -> str:
        if self.weekdays == WEEKDAYS:
            return "weekdays"
        return "weekends" if self.weekdays == WEEKENDS else "all days"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The suggested plan, the optimum it follows, and one line of explanation per rule."""

    plan: Plan
    optimum: Optimum
    groups: tuple[DayGroup, ...]
    explanations: tuple[str, ...]


# local date -> {slot of the day: step index}
_Calendar = dict[date, dict[int, int]]


def plan_from(
    optimum: Optimum,
    tz: ZoneInfo,
    grid: GridRules,
    tariff: Tariff,
    name: str = "suggested",
    *,
    by: GroupBy = "month",
    firmware_window: bool = True,
) -> Suggestion:
    """Rules the gateway can follow that track the optimum: per tariff season and day kind,
    a rule at the start of each tariff period where the setting changes (module docstring)."""
    steps = optimum.steps
    slot_min = steps.step_s // 60
    calendar: _Calendar = {}
    for index in range(len(steps)):
        if steps.gap[index]:
            continue
        local = steps.at_utc(index).astimezone(tz)
        # the repeated hour of a fall-back day keeps its first step
        calendar.setdefault(local.date(), {}).setdefault(
            (local.hour * 60 + local.minute) // slot_min, index
        )

    def key_of(month: int) -> int:
        if by == "month":
            return month
        return next(i for i, s in enumerate(tariff.seasons) if s.has_month(month))

    by_group: dict[tuple[int, bool], list[date]] = {}
    for day in calendar:
        by_group.setdefault((key_of(day.month), day.weekday() >= 5), []).append(day)
    seen = {key for key, _ in by_group}
    # a season with data covers all its months; a month covers itself
    ranges = _month_ranges({m: key_of(m) for m in range(1, 13) if key_of(m) in seen})
    groups = []
    for (key, weekend), group_days in sorted(by_group.items()):
        months = ranges[key]
        label = _months_label(months) if by == "month" else tariff.seasons[key].name
        settings = _settings(optimum, grid, calendar, group_days, slot_min)
        groups.append(DayGroup(label, months, WEEKENDS if weekend else WEEKDAYS, settings))
    groups = _merge_day_kinds(groups)
    rules, explanations = _rules(groups)
    if firmware_window and rules:
        window = _firmware_rule(optimum, calendar, slot_min)
        if window is not None:
            rules.append(window[0])
            explanations.append(window[1])
    plan = Plan(name=name, rules=tuple(rules), timezone=tz, tariff=tariff)
    return Suggestion(plan, optimum, tuple(groups), tuple(explanations))


def _month_ranges(covered: dict[int, int]) -> dict[int, tuple[int, int] | None]:
    """Each group's months, as an inclusive range that may wrap the new year (None: all
    year): its own months with data, and every month without data goes to the group of the
    nearest month with data, so the plan never leaves a month to the last rule of another."""
    owner: dict[int, int] = {}
    for month in range(1, 13):
        nearest = min(
            covered, key=lambda m: (min((month - m) % 12, (m - month) % 12), (month - m) % 12)
        )
        owner[month] = covered[nearest]
    ranges: dict[int, tuple[int, int] | None] = {}
    for key in set(owner.values()):
        months = [m for m in range(1, 13) if owner[m] == key]
        if len(months) == 12:
            ranges[key] = None
            continue
        # the first month of the run is the one whose previous month is someone else's
        first = next(m for m in months if owner[(m - 2) % 12 + 1] != key)
        last = next(m for m in months if owner[m % 12 + 1] != key)
        ranges[key] = (first, last)
    return ranges


def _months_label(months: tuple[int, int] | None) -> str:
    if months is None:
        return "all year"
    first, last = months
    if first == last:
        return MONTH_NAMES[first - 1]
    return f"{MONTH_NAMES[first - 1]}-{MONTH_NAMES[last - 1]}"


def _spans(
    steps: Steps, calendar: _Calendar, group_days: list[date], slots: int
) -> list[tuple[int, int, str, float]]:
    """The tariff periods of the group's day as [first slot, end slot, name, buy price): at
    each slot the period most of the group's days have there."""
    labels: list[tuple[str, float] | None] = []
    for slot in range(slots):
        seen: dict[tuple[str, float], int] = {}
        for day in group_days:
            index = calendar[day].get(slot)
            if index is not None:
                key = (steps.period[index], float(steps.buy_per_kwh[index]))
                seen[key] = seen.get(key, 0) + 1
        labels.append(max(seen, key=lambda k: seen[k]) if seen else None)
    spans: list[tuple[int, int, str, float]] = []
    for slot, label in enumerate(labels):
        if label is None:
            continue
        if spans and spans[-1][1] == slot and (spans[-1][2], spans[-1][3]) == label:
            spans[-1] = (spans[-1][0], slot + 1, label[0], label[1])
        else:
            spans.append((slot, slot + 1, label[0], label[1]))
    return spans


def _settings(
    optimum: Optimum,
    grid: GridRules,
    calendar: _Calendar,
    group_days: list[date],
    slot_min: int,
) -> tuple[Setting, ...]:
    steps = optimum.steps
    battery = optimum.battery
    energy = optimum.usable_wh
    floor_wh = battery.usable_wh_at(grid.min_reserve_app_percent)
    slack_wh = CHARGE_SHARE * battery.usable_wh
    settings: list[Setting] = []
    for first, end, period, buy in _spans(steps, calendar, group_days, 1440 // slot_min):
        bought, levels, lows, kept = [], [], [], []
        for day in group_days:
            inside = [index for slot, index in sorted(calendar[day].items()) if first <= slot < end]
            if not inside:
                continue
            grid_wh = optimum.grid_charge_w[inside] * steps.step_h
            bought.append(float(grid_wh.sum()))
            charged = [index for index, wh in zip(inside, grid_wh, strict=True) if wh > 1.0]
            if charged:
                # the level the grid brings it to; solar may add to it afterwards
                levels.append(float(energy[charged[-1] + 1]))
            edges = np.append(energy[inside], energy[inside[-1] + 1])
            lows.append(float(edges.min()))
            # what the home bought although the pack had energy and power to spare: the LP
            # keeps that energy for later, on purpose
            spare = (energy[np.array(inside) + 1] > floor_wh + slack_wh) & (
                optimum.discharge_w[inside] < battery.power_w - 1.0
            )
            unserved = steps.deficit_w[inside] - optimum.discharge_w[inside]
            kept.append(float(np.sum(unserved[spare]) * steps.step_h))
        if not bought:
            continue
        typical_wh = float(np.mean(bought))
        charging: bool | None
        if grid.grid_charging and typical_wh >= CHARGE_SHARE * battery.usable_wh and levels:
            reserve = round(battery.app_percent(float(np.median(levels))))
            charging = True
            why = (
                f"charge from the grid up to {reserve} % at {buy:g}/kWh: a typical day buys "
                f"{typical_wh / 1000:.1f} kWh for the battery here"
            )
        elif float(np.mean(kept)) >= slack_wh:
            # rounded down, so a day that starts a little lower buys nothing to reach it
            reserve = math.floor(battery.app_percent(float(np.median(lows))))
            charging = False if grid.grid_charging else None
            why = f"keep {reserve} % for later, when energy is dearer (buy now {buy:g}/kWh)"
        else:
            # the LP serves every deficit here: the battery may go as low as allowed
            reserve = 0
            charging = False if grid.grid_charging else None
            why = f"the battery serves the home (buy now {buy:g}/kWh)"
        reserve_app = max(grid.min_reserve_app_percent, min(100.0, float(reserve)))
        setting = Setting(first * slot_min, reserve_app, charging, period, why)
        if settings and settings[-1].same_as(setting):
            continue
        settings.append(setting)
    return tuple(settings)


def _merge_day_kinds(groups: list[DayGroup]) -> list[DayGroup]:
    """A season's weekday and weekend rules written once when they (nearly) agree."""
    out: list[DayGroup] = []
    for group in groups:
        twin = next(
            (
                g
                for g in out
                if g.season == group.season
                and g.weekdays | group.weekdays == ALL_DAYS
                and _alike(g.settings, group.settings)
            ),
            None,
        )
        if twin is None:
            out.append(group)
            continue
        settings = tuple(
            Setting(
                a.minute_of_day,
                float(max(a.reserve_app_percent, b.reserve_app_percent)),
                a.grid_charging,
                a.period,
                a.why if a.reserve_app_percent >= b.reserve_app_percent else b.why,
            )
            for a, b in zip(twin.settings, group.settings, strict=True)
        )
        out[out.index(twin)] = DayGroup(twin.season, twin.months, ALL_DAYS, settings)
    return out


def _alike(a: tuple[Setting, ...], b: tuple[Setting, ...]) -> bool:
    return len(a) == len(b) and all(
        x.minute_of_day == y.minute_of_day
        and x.grid_charging == y.grid_charging
        and abs(x.reserve_app_percent - y.reserve_app_percent) <= MERGE_APP_PERCENT
        for x, y in zip(a, b, strict=True)
    )


def _rules(groups: list[DayGroup]) -> tuple[list[Rule], list[str]]:
    rules: list[Rule] = []
    explanations: list[str] = []
    for group in groups:
        season = f"{group.season} "
        for setting in group.settings:
            clock = f"{setting.minute_of_day // 60:02d}:{setting.minute_of_day % 60:02d}"
            name = f"{season}{group.kind} {clock} {setting.period}"
            rules.append(
                Rule(
                    name=name,
                    trigger=AtTime(setting.minute_of_day),
                    days=Days(weekdays=group.weekdays, months=group.months),
                    setpoints=Setpoints(
                        mode=OperationMode.SELF_CONSUMPTION,
                        backup_reserve_app_percent=setting.reserve_app_percent,
                        grid_charging=setting.grid_charging,
                    ),
                )
            )
            explanations.append(f"{name}: {setting.why}")
    return rules, explanations


def _firmware_rule(optimum: Optimum, calendar: _Calendar, slot_min: int) -> tuple[Rule, str] | None:
    """A daily firmware window where the battery idles most, after FIRMWARE_EARLIEST_HOUR and
    an hour before the dearest period: a release that came overnight is installed there,
    before the gateway would install it by itself (perhaps in the peak, stopping the battery)."""
    steps = optimum.steps
    dearest = steps.period[int(np.argmax(steps.buy_per_kwh))]
    window = FirmwareWindow(duration_min=60, avoid_periods=(dearest,), margin_min=60)
    activity = np.abs(optimum.solar_charge_w + optimum.grid_charge_w - optimum.discharge_w)
    slots = 1440 // slot_min
    dear_from = slots
    total = np.zeros(slots)
    count = np.zeros(slots)
    for day_slots in calendar.values():
        for slot, index in day_slots.items():
            total[slot] += activity[index]
            count[slot] += 1
            if steps.period[index] == dearest:
                dear_from = min(dear_from, slot)
    last = dear_from - math.ceil(window.margin_min / slot_min)
    first = FIRMWARE_EARLIEST_HOUR * 60 // slot_min
    candidates = [s for s in range(first, last) if count[s] > 0]
    if not candidates:
        return None
    slot = min(candidates, key=lambda s: total[s] / count[s])
    minute = slot * slot_min
    clock = f"{minute // 60:02d}:{minute % 60:02d}"
    rule = Rule(name=f"firmware window {clock}", trigger=AtTime(minute), firmware_window=window)
    why = (
        f"{rule.name}: install a waiting firmware update while the battery idles "
        f"(about {total[slot] / count[slot]:.0f} W here), never near the {dearest} period"
    )
    return rule, why


# --- the whole: a source of load and solar in, a plan out -----------------------------------


def battery_of(series: Series) -> BatteryLimits:
    """The LP's battery for the site a series was recorded or modelled at."""
    site = series.site
    return BatteryLimits(
        powerwalls=site.powerwalls,
        usable_kwh_per_powerwall=site.usable_kwh_per_powerwall,
        power_kw_per_powerwall=site.powerwall_power_kw,
        round_trip_efficiency=site.round_trip_efficiency,
    )


def suggest(
    series: Series,
    tariff: Tariff,
    *,
    step_s: int = 3600,
    grid: GridRules | None = None,
    name: str = "suggested",
    by: GroupBy = "month",
    firmware_window: bool = True,
) -> Suggestion:
    """The cheapest plan for the load and solar of `series` (the same source `simulate`
    runs on): the LP over steps of `step_s`, made into rules (`plan_from`)."""
    grid = GridRules() if grid is None else grid
    if isinstance(step_s, bool) or step_s not in STEP_S:
        raise InvalidInputError("step", f"one of {list(STEP_S)} seconds", step_s)
    if step_s < series.step_s:
        raise InvalidInputError(
            "step", f"at least the data's own step of {series.step_s} s", step_s
        )
    steps = make_steps(
        series.start_utc, series.step_s, series.load_w, series.solar_w, tariff, series.tz, step_s
    )
    initial = raw_to_app(series.site.initial_soe_raw_percent)
    optimum = optimise(steps, battery_of(series), grid, initial)
    return plan_from(optimum, series.tz, grid, tariff, name, by=by, firmware_window=firmware_window)


def plan_text(suggestion: Suggestion, source: str) -> str:
    """The plan file: a header that says where it comes from and why each rule is there,
    then the plan as `planfile.dump_plan` writes it (so it reads back to the same plan)."""
    optimum = suggestion.optimum
    steps = optimum.steps
    days = len(steps) * steps.step_s / 86400.0
    currency = "" if suggestion.plan.tariff is None else f" {suggestion.plan.tariff.currency}"
    lines = [
        f"# Suggested by `teg auto suggest` from {source}: {days:g} days in {steps.step_s // 60}"
        "-minute steps.",
        "# A linear programme (HiGHS) found the battery schedule of least cost under the",
        "# battery's limits; these rules make the gateway follow it with modes and reserves.",
        "# Months without data follow the rules of the nearest month with data.",
        f"# Cost with that schedule: {optimum.cost:,.2f}{currency}; without a battery: "
        f"{optimum.cost_without_battery:,.2f}{currency}.",
        "# Prove it before running it: teg auto simulate --plan THIS_FILE ...",
        "#",
        "# Why each rule:",
        *(f"#   {line}" for line in suggestion.explanations),
        "",
    ]
    return "\n".join(lines) + "\n" + dump_plan(suggestion.plan)


__all__ = [
    "BatteryLimits",
    "DayGroup",
    "GridRules",
    "Optimum",
    "Setting",
    "Steps",
    "Suggestion",
    "battery_of",
    "make_steps",
    "optimise",
    "plan_from",
    "plan_text",
    "suggest",
]
