"""`teg get PATH`: the raw JSON of any catalog endpoint of the local API.

Paths outside the catalog are refused unless --force, so a typo never reaches the gateway.
Endpoints with side effects (anything but a plain read, for example GET
/api/sitemaster/stop) need --yes, or a confirmation on a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tegkit import catalog
from tegkit.catalog import Effect
from tegkit.cli import app
from tegkit.cli.output import Output, json_option

METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")


def normalise_path(path: str) -> str:
    """`meters/aggregates`, `api/meters/aggregates` and `/api/meters/aggregates` are one path.

    >>> normalise_path("meters/aggregates")
    '/api/meters/aggregates'
    """
    path = "/" + path.strip().lstrip("/")
    if not path.startswith("/api/") and path != "/api":
        path = "/api" + path
    return path


def resolve(method: str, path: str, force: bool) -> catalog.Endpoint | None:
    """The catalog entry for the request; a usage error for an unknown one without --force."""
    found = catalog.match(method, path)
    # The generic wizard read /api/{resource} matches any one-segment path; on its own it
    # would let every typo through, so it does not count as "in the catalog".
    if found is not None and (found[0].api != "local" or found[0].path == "/api/{resource}"):
        found = None
    if found is None and not force:
        methods = [m for m in catalog.methods_for(path) if m != method]
        hint = f" (it has {', '.join(methods)}: use -X)" if methods else ""
        raise click.UsageError(
            f"{method} {path} is not in the endpoint catalog{hint}; see `teg endpoints`, "
            "or pass --force to send it anyway"
        )
    return None if found is None else found[0]


def confirm_effect(endpoint: catalog.Endpoint | None, method: str, path: str, yes: bool) -> None:
    """Ask before a request that changes the gateway (refuse without a terminal or --yes)."""
    if yes:
        return
    if endpoint is None:
        if method == "GET":
            return  # --force was given for it; a GET outside the catalog is the user's call
        effect = "has unknown effects"
    elif endpoint.effect is Effect.READ:
        return
    else:
        effect = endpoint.effect.value
    if not sys.stdin.isatty():
        raise click.UsageError(f"{method} {path} {effect}; pass --yes to send it")
    click.confirm(f"{method} {path} {effect}. Send it?", abort=True, err=True)


@click.command()
@click.argument("path")
@click.option(
    "-X",
    "--request",
    "method",
    type=click.Choice(METHODS, case_sensitive=False),
    default="GET",
    show_default=True,
    help="HTTP method.",
)
@click.option("--data", "-d", help="JSON request body (for POST and other non-GET methods).")
@click.option("--force", is_flag=True, help="Send a path that is not in the endpoint catalog.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before a request that changes things.")
@json_option
@click.pass_context
def get(
    ctx: click.Context, path: str, method: str, data: str | None, force: bool, yes: bool
) -> Output:
    """Print the JSON body of one local API endpoint, exactly as the gateway sends it.

    PATH may leave out /api: `meters/aggregates` is /api/meters/aggregates.

    \b
    Example:
      teg get meters/aggregates
      teg get /api/system_status/soe
      teg get -X POST /api/site_info/site_name --data '{"site_name": "Home"}'
    """
    method = method.upper()
    path = normalise_path(path)
    body: object = None
    if data is not None:
        if method == "GET":
            raise click.UsageError("--data needs a method with a body: -X POST")
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    endpoint = resolve(method, path, force)
    confirm_effect(endpoint, method, path, yes)
    settings = app.settings(ctx)

    async def go() -> Any:
        async with settings.gateway() as gw:
            return await gw.request(method, path, body, allow_unknown=force)

    return Output(app.run(go()))  # JSON in both modes
