"""`teg auto suggest --tariff TARIFF`: the plan that costs least for this site, proven.

The battery schedule of least cost for the recorded (--history) or modelled (--scenario)
load and solar is found by a linear programme, written as a plan file of timed rules
(--out), then carried out by `teg auto simulate`'s engine on the same data beside
self_consumption alone, no battery and, with --compare, the owner's own plan. Offline: never
contacts a gateway.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tegkit._private_file import write_atomically
from tegkit.automation import simulate as sim
from tegkit.automation import suggest as sg
from tegkit.automation.planfile import load_plan, parse_plan
from tegkit.cli.auto import auto
from tegkit.cli.auto._source import load_series, source_options
from tegkit.cli.output import Output, json_option, printable
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode

SUGGESTED = "suggested"
COMPARED = "compared"
STEP_MINUTES = tuple(str(s // 60) for s in sg.STEP_S)
#: the data is read in steps of this size and both the LP and the simulation use it
DATA_STEP_S = 300


@auto.command(name="suggest")
@click.option(
    "--tariff",
    "tariff_name",
    required=True,
    help="A built-in tariff name or a tariff file: the prices the plan minimises.",
)
@source_options("plan for", "")
@click.option(
    "--step-min",
    type=click.Choice(STEP_MINUTES),
    default="60",
    show_default=True,
    help="The linear programme's step, minutes.",
)
@click.option(
    "--by",
    type=click.Choice(sg.GROUP_BY),
    default="month",
    show_default=True,
    help="Rules per month and day kind, or per tariff season and day kind (fewer rules).",
)
@click.option(
    "--min-reserve",
    type=click.FloatRange(0, 100),
    default=0.0,
    show_default=True,
    help="Never set the reserve below this, % as the Tesla app shows it (backup for outages).",
)
@click.option(
    "--grid-charging/--no-grid-charging",
    default=True,
    show_default=True,
    help="Whether the battery may charge from the grid (some incentives forbid it).",
)
@click.option(
    "--export-rule",
    type=click.Choice([rule.value for rule in ExportRule]),
    default=ExportRule.PV_ONLY.value,
    show_default=True,
    help="What the site may export (never: solar the home and battery cannot take is lost).",
)
@click.option(
    "--export-limit-kw",
    type=click.FloatRange(0, 10_000),
    default=None,
    help="At most this much export, kW [default: no limit].",
)
@click.option(
    "--firmware-window/--no-firmware-window",
    default=True,
    show_default=True,
    help="Add a daily firmware window where the battery idles, well before the dearest period.",
)
@click.option("--name", "plan_name", default=SUGGESTED, show_default=True, help="The plan's name.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan to this TOML file (replaced whole) [default: print it].",
)
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also simulate this plan (e.g. the one you run now) on the same data.",
)
@json_option
def suggest(
    tariff_name: str,
    history_path: Path | None,
    gateway: str | None,
    scenario: str | None,
    days: int,
    start: datetime | None,
    step_min: str,
    zone_name: str | None,
    powerwalls: int | None,
    by: sg.GroupBy,
    min_reserve: float,
    grid_charging: bool,
    export_rule: str,
    export_limit_kw: float | None,
    firmware_window: bool,
    plan_name: str,
    out_path: Path | None,
    compare_path: Path | None,
) -> Output:
    """Compute the plan of least cost for the site's load and solar under a tariff, write it
    as a plan file, and prove it in simulation against self_consumption alone, no battery
    and (--compare) your own plan.

    The battery schedule comes from a linear programme (HiGHS) with the Powerwall's real
    limits: 13.5 kWh and 5 kW per Powerwall, 90 % round trip, the hidden 5 % below the app's
    0 %, solar stored whenever there is room, grid charging only by a raised reserve. The
    gateway then follows it with timed mode and reserve rules. A bad option is named (exit
    8). Never contacts a gateway.

    \b
    Example:
      teg auto suggest --tariff sce-tou --scenario sunny-day --days 30 \\
        --out suggested.toml --compare examples/plans/sce-tou.toml
    """
    if out_path is not None and not out_path.parent.is_dir():
        raise InvalidInputError("--out", "a file in an existing folder", str(out_path))
    tariff = sim.tariff_named(tariff_name, "--tariff")
    compared = load_plan(compare_path) if compare_path is not None else None
    grid = sg.GridRules(
        grid_charging=grid_charging,
        export_rule=ExportRule(export_rule),
        export_limit_w=None if export_limit_kw is None else export_limit_kw * 1000.0,
        min_reserve_app_percent=min_reserve,
    )
    series = load_series(
        history_path=history_path,
        gateway=gateway,
        scenario=scenario,
        zone_name=zone_name,
        plan_tz=None,
        start=start,
        days=days,
        step_s=DATA_STEP_S,
        powerwalls=powerwalls,
    )
    suggestion = sg.suggest(
        series,
        tariff,
        step_s=int(step_min) * 60,
        grid=grid,
        name=plan_name,
        by=by,
        firmware_window=firmware_window,
    )
    text = sg.plan_text(suggestion, series.source)
    parse_plan(text)  # what is written must read back: a bug here is no half-good file
    if out_path is not None:
        try:
            write_atomically(out_path, text.encode())
        except OSError as exc:
            raise InvalidInputError(
                "--out", f"a writable file ({exc.strerror})", str(out_path)
            ) from None
    results = _prove(suggestion, series, tariff, compared)
    data = _data(suggestion, series, tariff.name, results, out_path, compare_path)
    if out_path is None:
        data["plan_toml"] = text
    return Output(data, _render)


def _prove(
    suggestion: sg.Suggestion, series: sim.Series, tariff: Any, compared: Any
) -> list[tuple[str, sim.Result]]:
    """The suggested plan, the compared plan, self_consumption alone and no battery over the
    same series and the same firmware releases."""
    runs: list[tuple[str, sim.Result]] = [
        (SUGGESTED, sim.simulate(suggestion.plan, series, tariff))
    ]
    if compared is not None:
        runs.append((COMPARED, sim.simulate(compared, series, tariff)))
    runs.append(
        (
            OperationMode.SELF_CONSUMPTION.value,
            sim.simulate(OperationMode.SELF_CONSUMPTION, series, tariff),
        )
    )
    runs.append((sim.NO_BATTERY, sim.simulate(sim.NO_BATTERY, series, tariff)))
    return runs


def _data(
    suggestion: sg.Suggestion,
    series: sim.Series,
    tariff_name: str,
    results: list[tuple[str, sim.Result]],
    out_path: Path | None,
    compare_path: Path | None,
) -> dict[str, Any]:
    optimum = suggestion.optimum
    by_name = dict(results)
    self_cost = by_name[OperationMode.SELF_CONSUMPTION.value].cost
    compared_cost = by_name[COMPARED].cost if COMPARED in by_name else None
    return {
        "plan": suggestion.plan.name,
        "source": series.source,
        "start": series.start_utc.astimezone(series.tz).isoformat(),
        "days": round((series.end_utc - series.start_utc).total_seconds() / 86400.0, 3),
        "tariff": tariff_name,
        "step_min": optimum.steps.step_s // 60,
        "gap_hours": round(series.gap_hours, 3),
        "out": None if out_path is None else str(out_path),
        "compared_plan": None if compare_path is None else str(compare_path),
        "optimum_cost": round(optimum.cost, 4),
        "rules": [
            {"name": rule.name, "why": why}
            for rule, why in zip(suggestion.plan.rules, suggestion.explanations, strict=True)
        ],
        "strategies": [
            {
                **result.as_dict(),
                "strategy": name,
                "label": _label(name, suggestion.plan.name, compare_path),
                "saving_vs_self_consumption": round(self_cost - result.cost, 2),
                "saving_vs_compared": None
                if compared_cost is None
                else round(compared_cost - result.cost, 2),
            }
            for name, result in results
        ],
        "beats_self_consumption": by_name[SUGGESTED].cost < self_cost,
        "beats_compared": None
        if compared_cost is None
        else by_name[SUGGESTED].cost < compared_cost,
    }


def _label(strategy: str, plan_name: str, compare_path: Path | None) -> str:
    if strategy == SUGGESTED:
        return f"suggested ({plan_name})"
    if strategy == COMPARED and compare_path is not None:
        return f"compared ({compare_path.name})"
    return strategy


def _render(console: Console, data: Any) -> None:
    if "plan_toml" in data:
        console.print(printable(data["plan_toml"]), soft_wrap=True, highlight=False)
    console.print(
        printable(
            f"Suggested plan {data['plan']} for {data['source']}: {data['days']:g} days from "
            f"{data['start'][:10]}, tariff {data['tariff']}, {data['step_min']}-minute steps, "
            f"{len(data['rules'])} rules"
        ),
        soft_wrap=True,
    )
    if data["gap_hours"]:
        console.print(
            f"{data['gap_hours']:g} h of gaps in the history were skipped, not counted as zero.",
            soft_wrap=True,
        )
    if data["out"]:
        console.print(printable(f"written to {data['out']}:"), soft_wrap=True)
        for rule in data["rules"]:
            console.print(printable(f"  {rule['why']}"), soft_wrap=True, highlight=False)
    rows = data["strategies"]
    currency = rows[0]["currency"] if rows else ""
    table = Table(show_edge=False)
    table.add_column("strategy", no_wrap=True)
    table.add_column(f"cost {currency}", justify="right")
    table.add_column("import kWh", justify="right")
    table.add_column("export kWh", justify="right")
    table.add_column("cycles", justify="right")
    table.add_column("vs self_cons.", justify="right")
    if data["compared_plan"] is not None:
        table.add_column("vs compared", justify="right")
    for row in rows:
        cells = [
            printable(row["label"]),
            f"{row['cost']:,.2f}",
            f"{row['grid_import_kwh']:,.0f}",
            f"{row['grid_export_kwh']:,.0f}",
            f"{row['battery_cycles']:.1f}",
            f"{row['saving_vs_self_consumption']:,.2f}",
        ]
        if data["compared_plan"] is not None:
            cells.append(f"{row['saving_vs_compared']:,.2f}")
        table.add_row(*cells)
    console.print(table)
    verdict = "beats" if data["beats_self_consumption"] else "does NOT beat"
    line = f"The suggested plan {verdict} self_consumption alone"
    if data["beats_compared"] is not None:
        line += " and " + ("beats" if data["beats_compared"] else "does NOT beat")
        line += " the compared plan"
    console.print(
        f"{line} in simulation (the schedule's own cost, before the gateway's rules: "
        f"{data['optimum_cost']:,.2f} {currency}).",
        soft_wrap=True,
    )
