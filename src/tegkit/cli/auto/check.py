"""`teg auto check PLAN`: validate a plan and say what it will do over the next days.

Offline: it reads the plan (and a tariff file it names), never a gateway. Times are the
site's local times: --tz, else the plan's `timezone`; a plan that follows the gateway's zone
needs --tz here, since the gateway is not asked.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tegkit.automation.describe import MAX_DAYS, describe
from tegkit.automation.planfile import load_plan, parse_timezone
from tegkit.cli.auto import auto
from tegkit.cli.output import Output, json_option, printable
from tegkit.errors import InvalidInputError


@auto.command(name="check")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=3,
    show_default=True,
    help=f"How many days to show (1..{MAX_DAYS}).",
)
@click.option(
    "--from",
    "first_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day to show, YYYY-MM-DD in the site's time zone [default: today there].",
)
@click.option(
    "--tz",
    "zone_name",
    default=None,
    help="The site's IANA time zone (e.g. America/Los_Angeles) [default: the plan's].",
)
@json_option
def check(plan_path: Path, days: int, first_day: datetime | None, zone_name: str | None) -> Output:
    """Check a plan file and print what it will do, day by day, in site-local time.

    Exits 0 when the plan is valid; a mistake is named by rule and field (exit 8).
    Never contacts a gateway.

    \b
    Example:
      teg auto check examples/plans/sce-tou.toml
      teg auto check my-plan.toml --tz Europe/Berlin --from 2026-03-27 --days 4
    """
    plan = load_plan(plan_path)
    if zone_name is not None:
        tz = parse_timezone(zone_name, "--tz")
    elif plan.timezone is not None:
        tz = plan.timezone
    else:
        raise InvalidInputError(
            "--tz",
            "the site's time zone: the plan has no `timezone` (it follows the gateway's), "
            "and check does not ask the gateway; give --tz, e.g. --tz America/Los_Angeles",
            "not given",
        )
    start = first_day.date() if first_day is not None else datetime.now(tz).date()
    description = describe(plan, tz, start, days)
    return Output(description.to_json(), _render(description.lines()))


def _render(lines: list[str]) -> Any:
    def render(console: Console, _data: Any) -> None:
        for line in lines:
            console.print(printable(line), soft_wrap=True)

    return render
