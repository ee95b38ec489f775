"""`teg login` and `teg logout`: keep a gateway session between runs, or end it.

`teg login` checks the password and saves the session cookies in the config directory
(0600, one file per profile), so later commands need no password until the session ends.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from tegkit.cli import app
from tegkit.cli.output import Output, json_option


def _render(console: Console, data: dict[str, Any]) -> None:
    if data["logged_in"]:
        console.print(
            f"Logged in to {data['host']}; the session is kept for profile {data['profile']!r}."
        )
    else:
        console.print(f"Logged out of {data['host']}.")


@click.command()
@json_option
@click.pass_context
def login(ctx: click.Context) -> Output:
    """Log in to the gateway now and keep the session for later commands.

    \b
    Example:
      TEG_PASSWORD=... teg login
    """
    settings = app.settings(ctx)
    settings.ask_password()  # a kept session is what this replaces, so always ask

    async def go() -> bool:
        async with settings.gateway() as gw:
            await gw.login()
            return gw.logged_in

    logged_in = app.run(go())
    data = {"host": settings.host, "profile": settings.profile_name, "logged_in": logged_in}
    return Output(data, _render)


@click.command()
@json_option
@click.pass_context
def logout(ctx: click.Context) -> Output:
    """End the gateway session and forget it here.

    \b
    Example:
      teg logout
    """
    settings = app.settings(ctx)

    async def go() -> None:
        async with settings.gateway(password=False) as gw:
            await gw.logout()

    app.run(go())
    settings.session_file.unlink(missing_ok=True)
    data = {"host": settings.host, "profile": settings.profile_name, "logged_in": False}
    return Output(data, _render)
