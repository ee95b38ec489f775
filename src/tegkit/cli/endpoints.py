"""`teg endpoints`: print the endpoint catalog as a table or as JSON."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from tegkit import catalog


def _as_dict(endpoint: catalog.Endpoint) -> dict[str, object]:
    return {
        "method": endpoint.method,
        "path": endpoint.path,
        "api": endpoint.api,
        "summary": endpoint.summary,
        "auth": endpoint.auth.value,
        "login_legacy": endpoint.auth.needs_login("legacy"),
        "login_modern": endpoint.auth.needs_login("modern"),
        "effect": endpoint.effect.value,
        "model": endpoint.model,
        "live": endpoint.live,
        "source": endpoint.source,
        "unknowns": endpoint.unknowns or None,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option(
    "--api",
    type=click.Choice(["local", "cloud"]),
    default=None,
    help="Only the gateway's local API or only the Owner API.",
)
def endpoints(as_json: bool, api: str | None) -> None:
    """Print every endpoint tegkit knows: method, path, auth, side effects, model.

    \b
    Example:
      teg endpoints --api local
      teg endpoints --json | jq '.[] | select(.live)'
    """
    selected = catalog.endpoints(api)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([_as_dict(e) for e in selected], indent=2))
        return
    table = Table(show_lines=False, box=None, pad_edge=False)
    for column in ("method", "path", "auth", "effect", "model", "summary"):
        table.add_column(column, overflow="fold")
    for e in selected:
        table.add_row(e.method, e.path, e.auth.value, e.effect.value, e.model or "-", e.summary)
    console = Console()
    if not console.is_terminal:  # piped: do not fold rows at 80 columns
        console = Console(width=200)
    console.print(table)
    click.echo(f"{len(selected)} endpoints")
