"""`teg status`: one screen of power flow, charge, grid, mode, reserve and firmware.

`read_status` is shared with `teg watch`. A reading that fails is left out (None), never
shown as zero; the failure is named, the rest still printed, and the exit code is the
failure's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tegkit.cli import app, exit_codes
from tegkit.cli.output import Output, json_option
from tegkit.client import Gateway
from tegkit.errors import AuthenticationError, GatewayError, RequestError
from tegkit.models.vocabulary import GRID_STATUS_LABELS, GridStatusValue, MeterName

T = TypeVar("T")
PARTS: Final = 6  # requests behind one status screen

# Below this a meter reads "idle": meter noise of a few watts is no power flow.
IDLE_W: Final = 10.0

# the order and names the Tesla app shows the meters in
METERS: Final = (MeterName.SITE, MeterName.SOLAR, MeterName.BATTERY, MeterName.LOAD)
LABELS: Final = {
    MeterName.SITE: "Grid",
    MeterName.SOLAR: "Solar",
    MeterName.BATTERY: "Battery",
    MeterName.LOAD: "Home",
}


def direction(meter: str, power_w: float | None) -> str | None:
    """The word for which way power flows (signs as the gateway reports them)."""
    if power_w is None:
        return None
    if abs(power_w) < IDLE_W:
        return "idle"
    words = {
        MeterName.SITE: ("importing", "exporting"),
        MeterName.BATTERY: ("discharging", "charging"),
        MeterName.SOLAR: ("producing", "consuming"),
        MeterName.LOAD: ("consuming", "producing"),
    }[MeterName(meter)]
    return words[0] if power_w > 0 else words[1]


async def read_status(gw: Gateway) -> tuple[dict[str, Any], list[GatewayError]]:
    """Every field of the status screen; failed parts are None and their errors returned."""
    failures: list[GatewayError] = []

    async def part(call: Awaitable[T]) -> T | None:
        try:
            return await call
        except GatewayError as exc:
            failures.append(exc)
            return None

    # /api/status first and alone: it needs no login, and the client loads a kept session
    # (`teg login`) on its first request; concurrent first requests would not all see it.
    status = await part(gw.status())
    meters, soe, grid, operation, site_name = await asyncio.gather(
        part(gw.meters_aggregates()),
        part(gw.state_of_energy()),
        part(gw.grid_status()),
        part(gw.operation()),
        part(gw.site_name()),
    )
    if len(failures) == PARTS:
        raise failures[0]  # nothing could be read: that error alone says it best
    for failure in failures:
        # A refused login or a lost connection leaves nothing worth a half-empty screen;
        # a stopped system or a missing endpoint still leaves the rest worth showing.
        if isinstance(failure, AuthenticationError | RequestError):
            raise failure
    data: dict[str, Any] = {"reading_time": None}
    for name in METERS:
        meter = getattr(meters, name) if meters is not None else None
        power = meter.instant_power_w if meter is not None else None
        data[f"{name}_power_w"] = power
        data[f"{name}_direction"] = direction(name, power)
    site = meters.site if meters is not None else None
    if site is not None and site.last_communication_time is not None:
        data["reading_time"] = site.last_communication_time.isoformat()
    data["soe_raw_percent"] = _round(soe.raw_percent) if soe is not None else None
    data["soe_app_percent"] = _round(soe.app_percent) if soe is not None else None
    data["grid_status"] = grid.grid_status if grid is not None else None
    data["mode"] = operation.mode if operation is not None else None
    data["backup_reserve_raw_percent"] = (
        _round(operation.backup_reserve_raw_percent) if operation is not None else None
    )
    data["backup_reserve_app_percent"] = (
        _round(operation.backup_reserve_app_percent) if operation is not None else None
    )
    data["site_name"] = site_name.site_name if site_name is not None else None
    data["firmware_version"] = status.version if status is not None else None
    data["uptime_s"] = status.uptime_s if status is not None else None
    data["read_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # Several live endpoints fail the same way when the system is stopped: say it once.
    data["errors"] = list(dict.fromkeys(exit_codes.message(e) for e in failures))
    return data, failures


def _round(value: float | None) -> float | None:
    """Percents to 1/100: more digits are float noise (49.99999999999999)."""
    return None if value is None else round(value, 2)


def kw(power_w: float | None) -> str:
    return "—" if power_w is None else f"{abs(power_w) / 1000:.2f} kW"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:z.1f}%"


_STYLE: Final = {
    "importing": "red",
    "exporting": "green",
    "producing": "yellow",
    "charging": "green",
    "discharging": "cyan",
    "consuming": "magenta",
    "idle": "dim",
}


def uptime_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"


def grid_text(grid_status: str | None) -> str:
    """The vocabulary's label of a grid status; a status it does not know, as sent."""
    if not grid_status:
        return "—"
    if grid_status in GRID_STATUS_LABELS:
        return GRID_STATUS_LABELS[GridStatusValue(grid_status)]
    return grid_status


def reading_text(iso: str | None) -> str:
    """The gateway's time of the reading, to the second, with its UTC offset."""
    if iso is None:
        return "—"
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%d %H:%M:%S %z").strip()


# Wide enough for every label, so the two grids below line up.
_LABEL_CHARS: Final = 9


def _grid(columns: int) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(min_width=_LABEL_CHARS)
    for _ in range(columns - 1):
        grid.add_column()
    return grid


def table(data: dict[str, Any], sparklines: dict[str, str] | None = None) -> Group:
    """The status screen (also the body of `teg watch`): power and charge, then the rest.

    Numbers sit in a right-aligned column of their own; text values get a grid of their
    own, so a long firmware version does not push the numbers away from their labels.
    """
    flow = _grid(3 if sparklines is None else 4)
    for name in METERS:
        word = data[f"{name}_direction"]
        row = [
            Text(LABELS[name], style="bold"),
            Text(kw(data[f"{name}_power_w"]), justify="right"),
            Text(word or "—", style=_STYLE.get(word or "", "")),
        ]
        if sparklines is not None:
            row.append(Text(sparklines.get(name, ""), style="blue"))
        flow.add_row(*row)
    flow.add_row("", "", "")
    flow.add_row(
        Text("Charge", style="bold"),
        Text(pct(data["soe_app_percent"]), justify="right"),
        Text(f"app scale ({pct(data['soe_raw_percent'])} raw)"),
    )
    flow.add_row(
        Text("Reserve", style="bold"),
        Text(pct(data["backup_reserve_app_percent"]), justify="right"),
        Text(f"app scale ({pct(data['backup_reserve_raw_percent'])} raw)"),
    )
    facts = _grid(2)
    # Values from the gateway go in as Text (never as markup): a site named "[b]x[/b]" or
    # ":AB:" prints as named.
    facts.add_row(Text("Site", style="bold"), Text(data["site_name"] or "—"))
    facts.add_row(Text("Mode", style="bold"), Text(data["mode"] or "—"))
    facts.add_row(Text("Grid link", style="bold"), Text(grid_text(data["grid_status"])))
    facts.add_row(
        Text("Firmware", style="bold"),
        Text(f"{data['firmware_version'] or '—'}, up {uptime_text(data['uptime_s'])}"),
    )
    facts.add_row(Text("Reading", style="bold"), Text(reading_text(data["reading_time"])))
    return Group(flow, Text(""), facts)


def render(console: Console, data: dict[str, Any]) -> None:
    console.print(table(data))
    # The first failure becomes the command's error message (on stderr); the others here.
    for message in data["errors"][1:]:
        console.print(Text(f"! {message}", style="bold red"))


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context) -> Output:
    """Show power flow (kW), charge, grid, mode, reserve and firmware on one screen.

    Percents are shown on the app scale with the gateway's raw scale beside them. With
    --json every value carries its unit and scale in its name (site_power_w,
    soe_app_percent, ...); a value that could not be read is null, never 0.

    \b
    Example:
      teg status
      teg --json status | jq '{soe: .soe_app_percent, grid: .site_power_w}'
    """
    settings = app.settings(ctx)

    async def go() -> tuple[dict[str, Any], list[GatewayError]]:
        async with settings.gateway() as gw:
            return await read_status(gw)

    data, failures = app.run(go())
    return Output(data, render, failures[0] if failures else None)
