"""The load and solar `teg auto simulate` and `teg auto suggest` run on: the same options,
the same checks and the same reading of a monitor database for both."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from tegkit.automation import simulate as sim
from tegkit.automation.planfile import parse_timezone
from tegkit.errors import InvalidInputError
from tegkit.sim.scenario import BUILTIN_SCENARIOS

F = TypeVar("F", bound=Callable[..., Any])


def source_options(use: str, scenario_default: str) -> Callable[[F], F]:
    """--history, --gateway, --scenario, --days, --start, --tz and --powerwalls; `use` says
    what the command does with the load and solar ("replay", "plan for")."""
    options = (
        click.option(
            "--history",
            "history_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"A monitor database (SQLite file) whose recorded load and solar to {use}.",
        ),
        click.option("--gateway", default=None, help="With --history: the gateway's name in it."),
        click.option(
            "--scenario",
            default=None,
            help=f"A built-in scenario ({', '.join(BUILTIN_SCENARIOS)}) or a scenario file"
            f"{scenario_default}.",
        ),
        click.option(
            "--days",
            type=click.IntRange(1, sim.MAX_DAYS),
            default=sim.DEFAULT_DAYS,
            show_default=True,
            help=f"How many days of load and solar to {use} (1..{sim.MAX_DAYS}).",
        ),
        click.option(
            "--start",
            type=click.DateTime(formats=["%Y-%m-%d"]),
            default=None,
            help="First day, YYYY-MM-DD in the site's time zone [default: the scenario's "
            "start; with --history, the DAYS days before the latest reading's day].",
        ),
        click.option(
            "--tz",
            "zone_name",
            default=None,
            help="With --history: the site's IANA time zone [default: the plan's].",
        ),
        click.option(
            "--powerwalls",
            type=click.IntRange(1, 10),
            default=None,
            help="Powerwalls at the site [default: the scenario's; 1 with --history].",
        ),
    )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def load_series(
    *,
    history_path: Path | None,
    gateway: str | None,
    scenario: str | None,
    zone_name: str | None,
    plan_tz: ZoneInfo | None,
    start: datetime | None,
    days: int,
    step_s: int,
    powerwalls: int | None,
    seed: int | None = None,
) -> sim.Series:
    """The series the options ask for, every misuse named by its option."""
    if history_path is not None and scenario is not None:
        raise InvalidInputError("--history/--scenario", "one of them, not both", "both given")
    if gateway is not None and history_path is None:
        raise InvalidInputError("--gateway", "only with --history", gateway)
    first_day = start.date() if start is not None else None
    if history_path is None:
        if scenario is None:
            raise InvalidInputError("--history/--scenario", "one of them", "neither given")
        if zone_name is not None:
            raise InvalidInputError(
                "--tz", "only with --history (a scenario has its zone)", zone_name
            )
        return sim.load_source(
            scenario=scenario,
            start=first_day,
            days=days,
            step_s=step_s,
            powerwalls=powerwalls,
            seed=seed,
        )
    tz = parse_timezone(zone_name, "--tz") if zone_name is not None else plan_tz
    return _history(history_path, gateway, tz, first_day, days, step_s, powerwalls)


def _history(
    path: Path,
    gateway: str | None,
    tz: ZoneInfo | None,
    first_day: date | None,
    days: int,
    step_s: int,
    powerwalls: int | None,
) -> sim.Series:
    if not path.is_file():
        raise InvalidInputError(
            "--history", "an existing monitor database (SQLite file)", str(path)
        )
    if gateway is None:
        raise InvalidInputError("--gateway", "the gateway's name in the database (with --history)")
    if tz is None:
        raise InvalidInputError(
            "--tz", "the site's time zone: the plan has no `timezone`; give --tz", "not given"
        )
    from tegkit.monitor.store import open_store

    try:
        store = open_store(path)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise InvalidInputError(
            "--history", f"a monitor database (SQLite file): {exc}", str(path)
        ) from None
    try:
        return sim.load_source(
            history=store,
            gateway=gateway,
            tz=tz,
            start=first_day,
            days=days,
            step_s=step_s,
            powerwalls=powerwalls,
        )
    except sqlite3.DatabaseError as exc:
        raise InvalidInputError(
            "--history", f"a readable monitor database: {exc}", str(path)
        ) from None
    finally:
        store.close()
