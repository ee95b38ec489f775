"""`teg auto ...`: plans that drive the gateway by time, tariff and state of charge.

One module per command (check, next, run, simulate, suggest); each adds itself to `auto`.
"""

from __future__ import annotations

import click


@click.group(name="auto")
def auto() -> None:
    """Automation: check, simulate, optimise and run a plan (a TOML file of rules).

    \b
    Example:
      teg auto check examples/plans/sce-tou.toml
    """


def _register() -> None:
    # Imported after the group exists: each command module decorates itself onto `auto`.
    import importlib

    for name in ("check", "next", "run", "simulate", "suggest"):
        try:
            importlib.import_module(f"tegkit.cli.auto.{name}")
        except ModuleNotFoundError as exc:  # a command not written yet
            if exc.name != f"tegkit.cli.auto.{name}":
                raise


_register()

__all__ = ["auto"]
