"""`teg auto next --plan PLAN`: the next timed actions of a plan, at the site's local times.

Offline from the plan and a time zone: --tz, else the plan's `timezone`. A plan that follows
the gateway's zone needs one of them, or --gateway, whose site time zone is then read (one
request, site_info); nothing else is ever asked. Condition rules (state of energy, grid) are
not listed: they act when a reading meets them, not at a time known in advance.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console

from tegkit.automation.describe import day_text
from tegkit.automation.planfile import load_plan, parse_timezone
from tegkit.cli import app
from tegkit.cli.auto import auto
from tegkit.cli.output import Output, json_option, printable
from tegkit.errors import InvalidInputError
from tegkit.monitor.automation import action_json, planned_actions

MAX_COUNT = 200


@auto.command(name="next")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PLAN",
    help="The plan file (TOML).",
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_COUNT),
    default=10,
    show_default=True,
    help=f"How many actions to list (1..{MAX_COUNT}).",
)
@click.option(
    "--tz",
    "zone_name",
    metavar="ZONE",
    help="The site's IANA time zone (e.g. America/Los_Angeles) [default: the plan's].",
)
@click.option(
    "--gateway",
    metavar="PROFILE_OR_URL",
    help="Read the site's time zone from this gateway (a profile, an https:// URL or "
    "NAME=URL), for a plan without `timezone` and no --tz.",
)
@click.option(
    "--from",
    "after",
    metavar="TIME",
    help="List the actions after this time instead of now: ISO 8601, e.g. 2026-03-07T12:00 "
    "(without an offset: the site's local time).",
)
@json_option
@click.pass_context
def next_(
    ctx: click.Context,
    plan_path: Path,
    count: int,
    zone_name: str | None,
    gateway: str | None,
    after: str | None,
) -> Output:
    """List the next planned actions of PLAN with their site-local times.

    Daylight saving time is followed: a rule at 02:30 on the day the clocks spring forward
    is listed at 03:00, and once on the day they fall back.

    \b
    Example:
      teg auto next --plan examples/plans/sce-tou.toml
      teg auto next --plan my-plan.toml --gateway home --count 5
      teg --json auto next --plan sce-tou.toml --from 2026-03-07T12:00
    """
    plan = load_plan(plan_path)  # a bad plan: exit 8, naming the rule and the field
    if zone_name is not None and gateway is not None:
        raise click.UsageError("give --tz or --gateway, not both")
    if zone_name is not None:
        tz, source = parse_timezone(zone_name, "--tz"), "--tz"
    elif plan.timezone is not None:
        tz, source = plan.timezone, "plan"
    elif gateway is not None:
        tz, source = _gateway_zone(ctx, gateway), "gateway"
    else:
        raise InvalidInputError(
            "--tz",
            "the site's time zone: the plan has no `timezone` (it follows the gateway's); "
            "give --tz ZONE (e.g. America/Los_Angeles) or --gateway PROFILE_OR_URL to read it",
            "not given",
        )
    start = _start(after, tz)
    actions = [action_json(at, rule, tz) for at, rule in planned_actions(plan, tz, start, count)]
    data = {
        "plan": plan.name,
        "tz": tz.key,
        "tz_source": source,
        "from_utc": start.isoformat(),
        "actions": actions,
    }
    return Output(data, _render)


def _start(after: str | None, tz: ZoneInfo) -> dt.datetime:
    if after is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(after)
    except ValueError:
        raise InvalidInputError(
            "--from", "an ISO 8601 time such as 2026-03-07T12:00 or 2026-03-07T20:00Z", after
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.UTC)


def _gateway_zone(ctx: click.Context, value: str) -> ZoneInfo:
    """The time zone the gateway reports in site_info (one request)."""
    from tegkit.cli.monitor import resolve_targets

    [target] = resolve_targets((value,), {}, ctx)

    async def read() -> str | None:
        async with target.client() as gw:
            return (await gw.site_info()).timezone

    name = app.run(read())
    if name is None:
        raise InvalidInputError(
            "--gateway", "a gateway that reports its site's time zone; give --tz", value
        )
    return parse_timezone(name, "the gateway's site time zone")


def _render(console: Console, data: dict[str, Any]) -> None:
    where = {"--tz": "given with --tz", "plan": "the plan's", "gateway": "the gateway's"}
    console.print(
        printable(
            f"Plan {data['plan']!r}: the next {len(data['actions'])} timed actions, "
            f"{data['tz']} time ({where[data['tz_source']]})"
        ),
        soft_wrap=True,
    )
    if not data["actions"]:
        console.print("  none in the next year (condition rules act on readings)")
    for action in data["actions"]:
        local = dt.datetime.fromisoformat(action["at_local"])
        when = f"{day_text(local.date())} {local:%H:%M} {action['zone']}"
        line = f"  {when:<20} {action['rule']}: {action['what']}"
        console.print(printable(line), soft_wrap=True, highlight=False, markup=False)
