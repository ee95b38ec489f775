"""`teg auto suggest`: the least-cost plan for a year of hourly data, and what it saves.

Target (issue 12): suggest for one year of hourly data in <= 10 s on this machine. Rows:

- suggest for one year (365 days of the firmware-peak scenario, 60-minute LP steps): the
  linear programme (HiGHS) and the rules drawn from it, wall and CPU s, and the LP's size;
- the savings table: on each built-in scenario with the SCE tariff, over DAYS days from the
  scenario's start, the simulated cost of the suggested plan, the spec's hand-written plan
  (examples/plans/sce-tou.toml), self_consumption alone and no battery (one row each, the
  same series and firmware releases for all), and the LP's own cost (a bound the rules
  approach).

``TEGKIT_BENCH_SUGGEST_DAYS`` sets DAYS for the savings table (default 365).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tegkit.automation import simulate as sim
from tegkit.automation import suggest as sg
from tegkit.automation.planfile import load_plan
from tegkit.models.vocabulary import OperationMode
from tegkit.sim.scenario import BUILTIN_SCENARIOS
from tegkit.tariff import builtin_tariff

ROOT = Path(__file__).resolve().parents[1]
SCE_PLAN = ROOT / "examples" / "plans" / "sce-tou.toml"
TARIFF = "sce-tou"
YEAR_DAYS = 365
TARGET_S = 10.0
TIMED_SCENARIO = "firmware-peak"

Row = tuple[str, float, str]


def _days() -> int:
    return int(os.environ.get("TEGKIT_BENCH_SUGGEST_DAYS", str(YEAR_DAYS)))


def year_rows() -> list[Row]:
    """One year of hourly data: time the LP and the rules (the data is built beforehand)."""
    tariff = builtin_tariff(TARIFF)
    series = sim.load_source(scenario=TIMED_SCENARIO, days=YEAR_DAYS, step_s=3600)
    wall, cpu = time.perf_counter(), time.process_time()
    suggestion = sg.suggest(series, tariff, step_s=3600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = len(suggestion.optimum.steps)
    tag = f"{TIMED_SCENARIO}, {YEAR_DAYS} d hourly"
    return [
        (f"auto suggest: one year, LP + rules ({tag}) wall (target {TARGET_S:g})", wall, "s"),
        (f"auto suggest: one year, LP + rules ({tag}) cpu", cpu, "s"),
        (f"auto suggest: LP variables ({tag})", float(5 * steps + 1), "vars"),
        (f"auto suggest: rules in the plan ({tag})", float(len(suggestion.plan.rules)), "rules"),
    ]


def savings_rows() -> list[Row]:
    """Cost per strategy per built-in scenario, SCE tariff: suggested vs the hand plan."""
    tariff = builtin_tariff(TARIFF)
    hand = load_plan(SCE_PLAN)
    days = _days()
    rows: list[Row] = []
    for scenario in BUILTIN_SCENARIOS:
        series = sim.load_source(scenario=scenario, days=days)
        suggestion = sg.suggest(series, tariff)
        tag = f"{scenario}, {TARIFF}, {days} d"
        currency = tariff.currency
        results = {
            "suggested plan": sim.simulate(suggestion.plan, series, tariff),
            "hand plan (sce-tou.toml)": sim.simulate(hand, series, tariff),
            "self_consumption": sim.simulate(OperationMode.SELF_CONSUMPTION, series, tariff),
            "no battery": sim.simulate(sim.NO_BATTERY, series, tariff),
        }
        for label, result in results.items():
            rows.append((f"auto suggest: cost, {label} ({tag})", result.cost, currency))
        rows.append((f"auto suggest: cost, the LP's schedule ({tag})", suggestion.optimum.cost,
                     currency))  # fmt: skip
        best_other = min(results["hand plan (sce-tou.toml)"].cost, results["self_consumption"].cost)
        rows.append(
            (f"auto suggest: suggested saves vs the better of hand/self ({tag})",
             best_other - results["suggested plan"].cost, currency)
        )  # fmt: skip
    return rows


ROWS = (year_rows, savings_rows)


def run() -> list[Row]:
    rows: list[Row] = []
    for make in ROWS:
        rows.extend(make())
    return rows
