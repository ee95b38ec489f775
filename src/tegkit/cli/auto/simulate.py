"""`teg auto simulate --plan PLAN`: what a plan is worth, before it runs.

Offline and at full speed: the plan, each mode alone and no battery are carried out on the
simulator's physics over a monitor's recorded load and solar (--history) or a built-in
scenario's models (--scenario), and compared by cost, grid energy, self-powered share and
battery cycles. Never contacts a gateway.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tegkit.automation import simulate as sim
from tegkit.automation.planfile import load_plan
from tegkit.cli.auto import auto
from tegkit.cli.auto._source import load_series, source_options
from tegkit.cli.output import Output, json_option, printable
from tegkit.errors import InvalidInputError
from tegkit.percent import raw_to_app
from tegkit.sim.scenario import DEFAULT_SCENARIO

_GAPS_SHOWN = 5


@auto.command(name="simulate")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The plan file (TOML).",
)
@click.option(
    "--tariff",
    "tariff_name",
    default=None,
    help="A built-in tariff name or a tariff file [default: the plan's, else the scenario's].",
)
@source_options("replay", f" [default: {DEFAULT_SCENARIO} when no --history]")
@click.option(
    "--step-s",
    type=click.Choice([str(s) for s in sim.STEPS_S]),
    default=str(sim.DEFAULT_STEP_S),
    show_default=True,
    help="Simulation step, seconds (load and solar are its means).",
)
@click.option(
    "--releases",
    type=click.FloatRange(0, sim.MAX_RELEASES_PER_YEAR),
    default=sim.DEFAULT_RELEASES_PER_YEAR,
    show_default=True,
    help="Firmware releases a year (each installs itself unless the plan installs it first).",
)
@click.option("--seed", type=click.IntRange(0), default=None, help="Seed [default: the source's].")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the typical day of each strategy into this .png or .svg file.",
)
@json_option
def simulate(
    plan_path: Path,
    tariff_name: str | None,
    days: int,
    history_path: Path | None,
    gateway: str | None,
    scenario: str | None,
    start: datetime | None,
    zone_name: str | None,
    powerwalls: int | None,
    step_s: str,
    releases: float,
    seed: int | None,
    chart_path: Path | None,
) -> Output:
    """Simulate a plan against the simulator's physics and compare it with each mode alone
    and with no battery: cost, grid import/export, self-powered share, battery cycles.

    A bad option or plan is named (exit 8). Never contacts a gateway.

    \b
    Example:
      teg auto simulate --plan examples/plans/sce-tou.toml --scenario firmware-peak
      teg auto simulate --plan my-plan.toml --history ~/.local/share/tegkit/monitor.db \\
          --gateway home --days 90 --chart typical-day.svg
    """
    if chart_path is not None:
        _check_chart_path(chart_path)
    plan = load_plan(plan_path)
    series = load_series(
        history_path=history_path,
        gateway=gateway,
        scenario=scenario if scenario is not None or history_path else DEFAULT_SCENARIO,
        zone_name=zone_name,
        plan_tz=plan.timezone,
        start=start,
        days=days,
        step_s=int(step_s),
        powerwalls=powerwalls,
        seed=seed,
    )
    tariff = _tariff(tariff_name, plan, series)
    results = sim.compare(plan, series, tariff, releases_per_year=releases, seed=seed)
    data = _data(plan.name, series, tariff.name, results)
    data["baseline_reserve_app_percent"] = round(raw_to_app(series.reserve_raw_percent), 2)
    data["firmware_releases"] = [
        r.at_utc.astimezone(series.tz).isoformat()
        for r in sim.firmware_releases(series, releases, seed)
    ]
    if chart_path is not None:
        from tegkit.automation.chart import write_chart

        title = f"{plan.name}: a typical day, {series.source}, {days} days"
        data["chart"] = str(write_chart(results, chart_path, title))
    return Output(data, _render)


def _check_chart_path(path: Path) -> None:
    from tegkit.automation.chart import FORMATS

    if path.suffix.lower() not in FORMATS:
        raise InvalidInputError("--chart", "a file name ending in .png or .svg", str(path))
    if not path.parent.is_dir():
        raise InvalidInputError("--chart", "a file in an existing folder", str(path))


def _tariff(name: str | None, plan: Any, series: sim.Series) -> Any:
    if name is not None:
        return sim.tariff_named(name, "--tariff")
    if plan.tariff is not None:
        return plan.tariff
    if series.site.tariff is not None:
        return series.site.tariff
    raise InvalidInputError(
        "--tariff", "a tariff: neither the plan nor the scenario names one", "not given"
    )


def _data(
    plan_name: str, series: sim.Series, tariff_name: str, results: list[sim.Result]
) -> dict[str, Any]:
    end = series.end_utc
    return {
        "plan": plan_name,
        "source": series.source,
        "start": series.start_utc.astimezone(series.tz).isoformat(),
        "end": end.astimezone(series.tz).isoformat(),
        "days": (
            end.astimezone(series.tz).date() - series.start_utc.astimezone(series.tz).date()
        ).days,
        "step_s": series.step_s,
        "tariff": tariff_name,
        "gap_hours": round(series.gap_hours, 3),
        "gaps": [
            {
                "start": g.start_utc.astimezone(series.tz).isoformat(),
                "end": g.end_utc.astimezone(series.tz).isoformat(),
                "reason": g.reason,
            }
            for g in series.gaps
        ],
        "strategies": [
            {
                **r.as_dict(),
                "saving_vs_no_battery": _rounded(sim.saving(results, r.strategy, sim.NO_BATTERY)),
                "saving_vs_self_consumption": _rounded(
                    sim.saving(results, r.strategy, sim.BASELINE_MODES[0].value)
                ),
            }
            for r in results
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _render(console: Console, data: Any) -> None:
    days = data["days"]
    console.print(
        printable(
            f"Plan {data['plan']} on {data['source']}: {days:g} days from {data['start'][:10]}, "
            f"tariff {data['tariff']}, {data['step_s']} s steps"
        ),
        soft_wrap=True,
    )
    if data["gaps"]:
        console.print(
            f"{len(data['gaps'])} gaps in the history ({data['gap_hours']:g} h) were skipped, "
            "not counted as zero:",
            soft_wrap=True,
        )
        for gap in data["gaps"][:_GAPS_SHOWN]:
            console.print(f"  {gap['start']} .. {gap['end']}: {gap['reason']}", soft_wrap=True)
        if len(data["gaps"]) > _GAPS_SHOWN:
            console.print(f"  ... and {len(data['gaps']) - _GAPS_SHOWN} more", soft_wrap=True)
    console.print(
        f"Firmware releases: {len(data['firmware_releases'])}; each mode alone keeps a "
        f"{data['baseline_reserve_app_percent']:g} % reserve",
        soft_wrap=True,
    )
    rows = data["strategies"]
    currency = rows[0]["currency"] if rows else ""
    table = Table(show_edge=False)
    table.add_column("strategy", no_wrap=True)
    table.add_column(f"cost {currency}", justify="right")
    table.add_column("import kWh", justify="right")
    table.add_column("export kWh", justify="right")
    table.add_column("self %", justify="right")
    table.add_column("cycles", justify="right")
    table.add_column("saving", justify="right")
    table.add_column("vs self_cons.", justify="right")
    table.add_column("self-updates", justify="right")
    for row in rows:
        installs = row["firmware_installs"]
        by_gateway = [i for i in installs if i["by"] == "gateway"]
        in_peak = [i for i in by_gateway if i["stop_period"] == "peak"]
        share = row["self_powered_percent"]
        table.add_row(
            row["label"],
            f"{row['cost']:,.2f}",
            f"{row['grid_import_kwh']:,.0f}",
            f"{row['grid_export_kwh']:,.0f}",
            "-" if share is None else f"{share:.1f}",
            f"{row['battery_cycles']:.1f}",
            _money(row["saving_vs_no_battery"]),
            _money(row["saving_vs_self_consumption"]),
            "-" if row["strategy"] == sim.NO_BATTERY else f"{len(by_gateway)} ({len(in_peak)})",
        )
    console.print(table)
    console.print(
        "self %: share of the home's use not from the grid; saving: cost below no battery; "
        "vs self_cons.: cost below self_consumption alone; self-updates: updates the gateway "
        "installed by itself (of them in peak)",
        soft_wrap=True,
    )
    if "chart" in data:
        console.print(printable(f"chart: {data['chart']}"), soft_wrap=True)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
