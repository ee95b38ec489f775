"""The `teg` command line: one click group, one module per command family."""

from __future__ import annotations

import click

from tegkit.cli.endpoints import endpoints


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tegkit")
def main() -> None:
    """tegkit: the Tesla Energy Gateway (Powerwall 2) from the command line."""


main.add_command(endpoints)

__all__ = ["main"]
