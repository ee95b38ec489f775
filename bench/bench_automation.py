"""`teg auto simulate`: one simulated year of a plan, at full speed on the simulator's physics.

Target (issue 12): one simulated year with a plan in <= 30 s on this machine. Rows, each for
a year (365 days from the scenario's start, 300 s steps, 4 firmware releases):

- the scenario's load and solar, built once from the physics' models (wall and CPU s);
- the SCE plan (examples/plans/sce-tou.toml) alone on it (wall and CPU s);
- all six strategies (`compare`: plan, plan without its firmware window, three modes alone,
  no battery) (wall s);
- the whole command, `teg auto simulate ... --days 365 --json`, in a new process (wall s);
- what each strategy costs over the year, and the plan's saving vs self_consumption.

``TEGKIT_BENCH_AUTOMATION_SCENARIO`` picks the scenario (default firmware-peak: the spec's
SCE owner). More rows: add a function returning rows and list it in ROWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tegkit.automation import simulate as sim
from tegkit.automation.planfile import load_plan

ROOT = Path(__file__).resolve().parents[1]
SCE_PLAN = ROOT / "examples" / "plans" / "sce-tou.toml"
TEG = str(Path(sys.executable).with_name("teg"))
DAYS = 365
TARGET_S = 30.0

Row = tuple[str, float, str]


def _scenario() -> str:
    return os.environ.get("TEGKIT_BENCH_AUTOMATION_SCENARIO", "firmware-peak")


def simulate_rows() -> list[Row]:
    """Build a year, simulate the plan alone, then compare every strategy; time each."""
    scenario = _scenario()
    plan = load_plan(SCE_PLAN)
    assert plan.tariff is not None
    wall, cpu = time.perf_counter(), time.process_time()
    series = sim.load_source(scenario=scenario, days=DAYS)
    series_wall, series_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    sim.simulate(plan, series, plan.tariff)
    plan_wall, plan_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    results = sim.compare(plan, series, plan.tariff)
    compare_wall = time.perf_counter() - wall
    tag = f"{scenario}, {DAYS} d"
    rows: list[Row] = [
        (f"auto simulate: build load+solar ({tag}) wall", series_wall, "s"),
        (f"auto simulate: build load+solar ({tag}) cpu", series_cpu, "s"),
        (f"auto simulate: sce-tou plan ({tag}) wall", plan_wall, "s"),
        (f"auto simulate: sce-tou plan ({tag}) cpu", plan_cpu, "s"),
        (f"auto simulate: year with the plan, build + plan (target {TARGET_S:g})",
         series_wall + plan_wall, "s"),
        (f"auto simulate: all {len(results)} strategies ({tag}) wall", compare_wall, "s"),
    ]  # fmt: skip
    currency = results[0].currency
    for result in results:
        rows.append((f"auto simulate: cost, {result.label} ({tag})", result.cost, currency))
    saving = sim.saving(results, sim.PLAN, sim.BASELINE_MODES[0].value)
    if saving is not None:
        rows.append((f"auto simulate: plan saving vs self_consumption ({tag})", saving, currency))
    window = sim.saving(results, sim.PLAN, sim.PLAN_WITHOUT_FIRMWARE_WINDOW)
    if window is not None:
        rows.append((f"auto simulate: firmware window saving ({tag})", window, currency))
    return rows


def command_rows() -> list[Row]:
    """The whole command in a new process: imports, the year, six strategies, JSON out."""
    args = [TEG, "auto", "simulate", "--plan", str(SCE_PLAN), "--scenario", _scenario()]
    wall = time.perf_counter()
    done = subprocess.run(
        [*args, "--days", str(DAYS), "--json"], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - wall
    if done.returncode != 0:
        raise SystemExit(f"bench automation: teg auto simulate failed: {done.stderr.strip()}")
    strategies = len(json.loads(done.stdout)["strategies"])
    return [(f"teg auto simulate --days {DAYS} ({strategies} strategies) wall", elapsed, "s")]


ROWS: tuple[Callable[[], list[Row]], ...] = (simulate_rows, command_rows)


def run() -> list[Row]:
    rows: list[Row] = []
    for rows_of in ROWS:
        rows.extend(rows_of())
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<70} {value:12.2f} {unit}")
