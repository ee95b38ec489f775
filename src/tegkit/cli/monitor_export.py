"""`teg monitor export`: the store's readings or rollups to a CSV, Parquet or line-protocol
file, streamed, with a progress bar on a terminal (see `tegkit.monitor.export`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from tegkit._private_file import atomic_file
from tegkit.errors import InvalidInputError
from tegkit.monitor import export as ex

_EPILOG = (
    "\b\nExample:\n"
    "  teg monitor export --from 2024-01-01 --to 2024-12-31 --format parquet --out 2024.parquet\n"
    "  teg monitor export --from 2024-06-01 --to 2024-06-30 --format csv --what hour --out -\n"
    "  teg monitor export --from 2024-01-01T00:00Z --to 2024-02-01T00:00Z --format influx \\\n"
    "      --gateway home --out home.lp"
)
_OPTION_OF = {"from": "--from", "to": "--to", "gateway": "--gateway"}


def _bad(exc: InvalidInputError) -> click.BadParameter:
    return click.BadParameter(
        f"{exc.value!s}: expected {exc.allowed}", param_hint=_OPTION_OF.get(exc.field, exc.field)
    )


def _zone(value: str | None) -> dt.tzinfo:
    if value is None:
        return dt.UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise click.BadParameter(
            f"{value!r}: expected a time zone name such as Europe/Berlin", param_hint="--tz"
        ) from None


def _db(value: str | None) -> str:
    """The database as `teg monitor` and `teg monitor backfill` choose it; a SQLite file must
    exist (an export never creates an empty database)."""
    from tegkit.cli.monitor import default_db

    db = value or str(default_db())
    if not db.startswith(("postgresql://", "postgres://")):
        path = Path(db.removeprefix("sqlite:///")).expanduser()
        if not path.is_file():
            raise click.BadParameter(f"no monitor database at {path}", param_hint="--db")
    return db


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """A progress callback: a rich bar when stderr is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    with Progress(
        "export",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("export", total=1.0)
        yield lambda done: bar.update(task, completed=done)


@click.command("export", epilog=_EPILOG)
@click.option(
    "--from", "first", required=True, metavar="DATE_OR_TIME", help="Start: a date or a time."
)
@click.option(
    "--to",
    "last",
    required=True,
    metavar="DATE_OR_TIME",
    help="End: a date (included) or a time (excluded).",
)
@click.option(
    "--format", "fmt", required=True, type=click.Choice(ex.FORMATS), help="The file's format."
)
@click.option(
    "--what",
    type=click.Choice(ex.WHATS),
    default="readings",
    show_default=True,
    help="Full-resolution readings, or the minute, quarter-hour, hour or (UTC) day rollups.",
)
@click.option(
    "--gateway",
    metavar="NAME",
    help="The gateway's name in the monitor [default: every gateway in the database].",
)
@click.option(
    "--out",
    default="-",
    show_default=True,
    metavar="FILE|-",
    help="Where to write; '-' is stdout. A file appears only once it is complete.",
)
@click.option(
    "--tz",
    metavar="ZONE",
    help="Zone of dates and of times without an offset [default: UTC]. Output is UTC.",
)
@click.option(
    "--db", envvar="TEG_MONITOR_DB", show_envvar=True, help="SQLite path or postgresql:// URL."
)
def export_command(**opts: Any) -> None:
    """Export readings or rollups from the monitor's database as CSV, Parquet or InfluxDB
    line protocol.

    The database is read in chunks and each is written at once, so any range runs in
    little memory. Times without data have no row (gaps are not filled); a value the
    gateway did not report is an empty cell, a Parquet null or an absent InfluxDB field,
    never 0. Column and field names carry their units; see docs/cli.md.
    """
    from tegkit.monitor.store import open_store

    tz = _zone(opts["tz"])
    try:
        start = ex.parse_when("from", opts["first"], tz)
        end = ex.parse_when("to", opts["last"], tz, end=True)
        ex.check_range(start, end)
    except InvalidInputError as exc:
        raise _bad(exc) from None
    to_stdout = opts["out"] == "-"
    if to_stdout and opts["fmt"] == "parquet" and sys.stdout.isatty():
        raise click.BadParameter(
            "Parquet is binary: give a file, or redirect stdout", param_hint="--out"
        )
    out_path = None if to_stdout else Path(opts["out"]).expanduser()
    if out_path is not None and not out_path.parent.is_dir():
        raise click.BadParameter(f"no folder {out_path.parent}", param_hint="--out")
    store = open_store(_db(opts["db"]))
    try:
        known = store.gateways()
        if opts["gateway"] is None:
            gateways = known
        elif opts["gateway"] in known:
            gateways = [opts["gateway"]]
        else:
            names = ", ".join(known) or "none yet"
            raise click.BadParameter(
                f"no gateway {opts['gateway']!r} in the database (gateways: {names})",
                param_hint="--gateway",
            )
        with _progress() as progress:
            count = _write(store, out_path, gateways, start, end, opts, progress)
    except InvalidInputError as exc:
        raise _bad(exc) from None
    except BrokenPipeError:  # `| head`: the reader has all it wanted; end quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {opts['out']}: {exc.strerror or exc}") from None
    finally:
        store.close()
    where = "stdout" if out_path is None else str(out_path)
    click.echo(f"teg monitor export: {count} rows to {where}", err=True)


def _write(
    store: Any,
    out_path: Path | None,
    gateways: list[str],
    start: float,
    end: float,
    opts: dict[str, Any],
    progress: Any,
) -> int:
    def run(out: IO[bytes]) -> int:
        return ex.export(
            store,
            out,
            gateways=gateways,
            start=start,
            end=end,
            what=opts["what"],
            fmt=opts["fmt"],
            on_progress=progress,
        )

    if out_path is None:
        count = run(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return count
    with atomic_file(out_path) as out:  # a failure leaves no half file
        return run(out)


__all__ = ["export_command"]
