"""`teg auto run --plan PLAN`: carry a plan out on the gateway until SIGINT/SIGTERM.

The gateway is the profile's (or --host ...), as for every command; changes of mode and
reserve take the route `--via` picks (locally, or through the profile's `teg cloud`
settings), grid charging, export rule and storm watch go through the cloud. Each outcome is
one line on stderr (`teg auto: ...`), and with --json one JSON object per line on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from tegkit.automation.actuator import GatewayActuator
from tegkit.automation.plan import Plan
from tegkit.automation.planfile import load_plan
from tegkit.automation.runner import ActionEvent, Runner, describe
from tegkit.cli import app, exit_codes
from tegkit.cli.auto import auto
from tegkit.cli.change import profile_cloud, via_options
from tegkit.cli.output import emit_line, json_mode, json_option, printable
from tegkit.client import Gateway
from tegkit.cloud import CloudClient
from tegkit.errors import CloudTokenMissingError, InvalidInputError
from tegkit.route import CloudTarget, Via

#: how many upcoming actions are named when the runner starts
_ANNOUNCED = 3


@auto.command(name="run")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PLAN",
    help="The plan file (TOML); check it first with `teg auto check PLAN`.",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be done at each step; change nothing."
)
@via_options
@json_option
@click.pass_context
def run_(ctx: click.Context, plan_path: Path, dry_run: bool, via: Via, wait_s: float) -> None:
    """Run PLAN on the gateway: each rule at its time, checked, retried, reported.

    An action whose settings are already in force is skipped; a change is read back, and
    tried again with back-off when the gateway is busy, rate limited or unreachable. On
    start, the settings the plan has in force now are applied once (a missed firmware
    window is not run late). Stops on Ctrl-C or SIGTERM.

    \b
    Example:
      teg auto run --plan examples/plans/sce-tou.toml --dry-run
      teg --json auto run --plan sce-tou.toml --via cloud
    """
    settings = app.settings(ctx)
    plan = load_plan(plan_path)  # a bad plan: exit 8, naming the rule and the field
    app.run(_run(settings, plan, dry_run, via, wait_s, json_mode(ctx)))


async def _run(
    settings: app.Settings, plan: Plan, dry_run: bool, via: Via, wait_s: float, as_json: bool
) -> None:
    cs = profile_cloud(settings)
    # auto goes to the cloud only when tokens are kept; --via cloud without them is told how
    use_cloud = via == "cloud" or (via == "auto" and cs.token_file.is_file())
    cloud: CloudClient | None = None
    if use_cloud:
        try:
            cloud = cs.client()
        except CloudTokenMissingError:
            # the cloud's failure: its message says how to get tokens for this profile
            context = exit_codes.Context(service="cloud", where=cs.base_url)
            click.get_current_context().find_root().meta[exit_codes.CONTEXT_KEY] = context
            raise
    try:
        async with settings.gateway() as gw:
            tz = plan.timezone or await _site_zone(gw)
            target = None if cloud is None else CloudTarget(cloud, cs.site_id, cs.battery_id)
            actuator = GatewayActuator(gw, target, via=via, readback_wait_s=wait_s)

            def sink(event: ActionEvent) -> None:
                click.echo(f"teg auto: {printable(event.line())}", err=True)
                if as_json:
                    emit_line(event.fields())

            runner = Runner(plan, actuator, tz, sink, dry_run=dry_run)
            _announce(runner, plan, tz, dry_run)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                await runner.run(stop)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.remove_signal_handler(sig)
            click.echo("teg auto: stopped", err=True)
    finally:
        if cloud is not None:
            await cloud.close()


def _announce(runner: Runner, plan: Plan, tz: ZoneInfo, dry_run: bool) -> None:
    how = "dry run: nothing will be changed" if dry_run else "running"
    click.echo(f"teg auto: plan {printable(plan.name)!r} in {tz.key}, {how}", err=True)
    for at_utc, rule in runner.next_actions(_ANNOUNCED):
        what = "firmware window" if rule.firmware_window else describe(rule.setpoints)
        local = at_utc.astimezone(tz)
        click.echo(
            f"teg auto: next: {local:%a %Y-%m-%d %H:%M %Z} {printable(rule.name)!r}: "
            f"{printable(what)}",
            err=True,
        )


async def _site_zone(gw: Gateway) -> ZoneInfo:
    """The gateway's site time zone (the plan gives none)."""
    name = (await gw.site_info()).timezone
    try:
        if name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise InvalidInputError(
        "timezone", "an IANA time zone in the plan (the gateway reports none usable)", name
    )
