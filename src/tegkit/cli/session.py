"""`teg login` and `teg logout`: keep a gateway session between runs, or end it.

`teg login` checks the password and saves the session cookies in the config directory
(0600, one file per profile), so later commands need no password until the session ends.
`teg logout` always forgets the kept session here, whatever state the session file, the
config file or the gateway is in; it tells the gateway when it can and says when it could not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tegkit.cli import app, exit_codes, output
from tegkit.cli.output import Output, json_option
from tegkit.errors import GatewayError


def _render(console: Console, data: dict[str, Any]) -> None:
    if data["logged_in"]:
        console.print(
            f"Logged in to {data['host']}; the session is kept for profile {data['profile']!r} "
            f"in {data['session_file']} (mode 0600) until the gateway ends it or you run "
            "`teg logout`.",
            soft_wrap=True,  # a path folded over two lines cannot be copied
        )
        return
    forgotten = ", ".join(data["forgotten"])
    if data["ended_on_gateway"]:
        console.print(f"Logged out of {data['host']}; removed {forgotten}.", soft_wrap=True)
    elif forgotten:
        console.print(
            f"Removed the kept session {forgotten}. The gateway was not told, so the session "
            "stays valid there until it expires.",
            soft_wrap=True,
        )
    else:
        console.print(f"No session is kept for profile {data['profile']!r}; nothing to do.")


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
    data = {
        "host": settings.host,
        "profile": settings.profile_name,
        "logged_in": logged_in,
        "session_file": str(settings.session_file) if logged_in else None,
    }
    return Output(data, _render)


def _end_on_gateway(settings: app.Settings) -> tuple[bool, str | None]:
    """Tell the gateway the session ends: (told, why it was not told when it should be)."""
    if settings.config_problem is not None:
        return False, settings.config_problem
    host = settings.host
    if not host or not settings.has_session(host):
        return False, None  # nothing usable kept for this gateway: nothing to end there

    async def go() -> None:
        async with settings.gateway(password=False) as gw:
            await gw.logout()

    try:
        app.run(go())
    except GatewayError as exc:
        return False, exit_codes.message(exc, settings.error_context())
    except click.BadParameter as exc:  # a malformed --pin: the gateway cannot be trusted
        return False, exc.format_message()
    return True, None


def _forget(path: Path) -> bool:
    """Remove a kept session file; True when there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise click.ClickException(
            f"cannot remove the kept session {path}: {exc.strerror or exc}"
        ) from None
    return True


@click.command()
@json_option
@click.pass_context
def logout(ctx: click.Context) -> Output:
    """End the gateway session and forget it here.

    The kept session is always removed from this computer, even when the gateway cannot
    be reached or the session or config file is damaged; a warning then says that the
    gateway was not told.

    \b
    Example:
      teg logout
    """
    settings = app.settings(ctx)
    kept = [path for path in settings.session_files() if path.is_file()]
    told = False
    problem: str | None = None
    try:
        if kept:
            told, problem = _end_on_gateway(settings)
    finally:
        # Whatever happened above, the session is forgotten here.
        forgotten = [str(path) for path in settings.session_files() if _forget(path)]
    removed_by_client = [str(path) for path in kept if str(path) not in forgotten]
    forgotten += removed_by_client  # the client removes the file when it ends the session
    if problem is not None:
        output.say(f"warning: the gateway was not told of the logout: {problem}")
    data = {
        "host": settings.host,
        "profile": None if settings.all_profiles else settings.profile_name,
        "logged_in": False,
        "ended_on_gateway": told,
        "forgotten": forgotten,
    }
    return Output(data, _render)
