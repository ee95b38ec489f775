"""`teg sitemaster run|stop`: start or stop the Powerwall system (stop asks first).

While the sitemaster is stopped the Powerwalls neither charge nor discharge and live
endpoints answer 502; `teg status` then says so and exits with code 6.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from tegkit.cli import app
from tegkit.cli.output import Output, json_option


def _render(console: Console, data: dict[str, Any]) -> None:
    state = {True: "running", False: "stopped", None: "unknown"}[data["running"]]
    console.print(f"The system is {state} ({data['status'] or 'no status'}).")


async def _after(settings: app.Settings, action: str) -> dict[str, Any]:
    async with settings.gateway() as gw:
        if action == "run":
            await gw.sitemaster_run()
        else:
            await gw.sitemaster_stop()
        now = await gw.sitemaster()
    return {"action": action, "running": now.running, "status": now.status}


@click.group()
def sitemaster() -> None:
    """Start or stop the Powerwall system (the gateway's sitemaster).

    \b
    Example:
      teg sitemaster stop --yes
      teg sitemaster run
    """


@sitemaster.command()
@json_option
@click.pass_context
def run(ctx: click.Context) -> Output:
    """Start the system: the Powerwalls charge and discharge again.

    \b
    Example:
      teg sitemaster run
    """
    return Output(app.run(_after(app.settings(ctx), "run")), _render)


@sitemaster.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def stop(ctx: click.Context, yes: bool) -> Output:
    """Stop the system: the Powerwalls stop until `teg sitemaster run`.

    Asks for confirmation; without a terminal on stdin it refuses unless --yes.

    \b
    Example:
      teg sitemaster stop --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("stopping the system needs confirmation: pass --yes")
        click.confirm(
            "Stop the Powerwall system? It will not charge or discharge until "
            "`teg sitemaster run`.",
            abort=True,
            err=True,
        )
    return Output(app.run(_after(app.settings(ctx), "stop")), _render)
