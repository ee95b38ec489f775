"""A typical day of each simulated strategy as a chart: PNG or SVG, by the file's suffix.

Hourly means over the simulated period (`simulate.TypicalDay`): the home's load and the
solar, then per strategy the battery (> 0 discharging), the grid (> 0 importing) and the
state of energy (app scale). Drawn by matplotlib on its Agg backend (no display needed) and
written atomically: a reader sees the old file or the new one, never half of either.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tegkit._private_file import write_atomically
from tegkit.automation.simulate import Result
from tegkit.errors import InvalidInputError

#: suffix -> the format matplotlib writes
FORMATS: Final = {".png": "png", ".svg": "svg"}
_HOURS: Final = list(range(24))


def write_chart(results: Sequence[Result], path: str | Path, title: str = "") -> Path:
    """Draw the typical day of `results` into `path` (.png or .svg); returns the path."""
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InvalidInputError("chart", "a file name ending in .png or .svg", str(path))
    if not results:
        raise InvalidInputError("results", "at least one simulated strategy", [])
    if not target.parent.is_dir():
        raise InvalidInputError("chart", "a file in an existing folder", str(path))
    write_atomically(target, _draw(results, fmt, title))
    return target


def _draw(results: Sequence[Result], fmt: str, title: str) -> bytes:
    # Imported here: matplotlib takes a while to load, and only --chart needs it.
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure on an Agg canvas, not pyplot: no global state, no display, thread-safe.
    figure = Figure(figsize=(12, 10), layout="constrained")
    FigureCanvasAgg(figure)
    inputs, battery, grid, soe = figure.subplots(4, 1, sharex=True)
    day = results[0].typical_day
    inputs.plot(_HOURS, _kw(day.load_w), label="load", color="black")
    inputs.plot(_HOURS, _kw(day.solar_w), label="solar", color="orange")
    inputs.set_ylabel("kW")
    inputs.set_title("home and solar")
    for result in results:
        d = result.typical_day
        battery.plot(_HOURS, _kw(d.battery_w), label=result.label)
        grid.plot(_HOURS, _kw(d.grid_w), label=result.label)
        if result.usable_wh > 0:
            soe.plot(_HOURS, list(d.soe_app_percent), label=result.label)
    battery.set_ylabel("kW")
    battery.set_title("battery (> 0 discharging)")
    grid.set_ylabel("kW")
    grid.set_title("grid (> 0 importing)")
    soe.set_ylabel("%")
    soe.set_ylim(0, 103)  # a full pack stays in sight
    soe.set_title("state of energy (app scale)")
    soe.set_xlabel("local hour of the day (mean over the period)")
    soe.set_xticks(range(0, 24, 2))
    for axes in (inputs, battery, grid, soe):
        axes.grid(True, alpha=0.3)
        axes.axhline(0.0, color="grey", linewidth=0.5)
    # beside the panels, so no line hides behind a legend
    inputs.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    battery.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    if title:
        figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()


def _kw(values_w: Sequence[float]) -> list[float]:
    return [v / 1000.0 for v in values_w]


__all__ = ["FORMATS", "write_chart"]
