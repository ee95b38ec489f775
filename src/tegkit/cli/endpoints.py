"""`teg endpoints`: print the endpoint catalog as a table or as JSON."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tegkit import catalog
from tegkit.cli import output
from tegkit.cli.output import Output, json_option


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


def _render(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(show_lines=False, box=None, pad_edge=False)
    for column in ("method", "path", "auth", "effect", "model", "summary"):
        table.add_column(column, overflow="fold")
    for e in rows:
        table.add_row(
            e["method"], e["path"], e["auth"], e["effect"], e["model"] or "-", e["summary"]
        )
    if not console.is_terminal:  # piped: do not fold rows at 80 columns
        console = output.console(width=200)
    console.print(table)
    console.print(f"{len(rows)} endpoints")


@click.command()
@json_option
@click.option(
    "--api",
    type=click.Choice(["local", "cloud"]),
    default=None,
    help="Only the gateway's local API or only the Owner API.",
)
def endpoints(api: str | None) -> Output:
    """Print every endpoint tegkit knows: method, path, auth, side effects, model.

    \b
    Example:
      teg endpoints --api local
      teg endpoints --json | jq '.[] | select(.live)'
    """
    selected = catalog.endpoints(api)  # type: ignore[arg-type]
    return Output([_as_dict(e) for e in selected], _render)
