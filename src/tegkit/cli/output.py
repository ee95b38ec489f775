"""What commands return and the one place that prints it: JSON with --json, else rich text.

A command returns an `Output`: its data (plain JSON types, keys with units and scales in
their names) and a function that draws the same data for people. `emit` prints one or the
other; colour comes from rich only when stdout is a terminal.

Text comes from gateways and users (site names, fingerprints, error messages), so rich never
reads markup or emoji codes in it: `[bold]` and `:AB:` print as they are, and control
characters (a terminal escape sequence in a site name) print as visible `\x1b` escapes.
Negative zero is printed as 0 in both forms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console

Render = Callable[[Console, Any], None]
F = TypeVar("F", bound=Callable[..., Any])

JSON_KEY = "teg.json"


@dataclass(slots=True)
class Output:
    """The result of a command: data for --json, a renderer for people, and how it ended.

    `error` is set when a command printed what it could read but part of it failed: the
    data is still printed, then the error's message and exit code apply.
    """

    data: Any
    render: Render | None = None
    error: BaseException | None = None


def _default(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def normalise(data: Any) -> Any:
    """`data` with every negative zero (-0.0, from a meter or from rounding) made 0.0.

    >>> normalise({"site_power_w": -0.0, "list": [-0.0, -1.5]})
    {'site_power_w': 0.0, 'list': [0.0, -1.5]}
    """
    if isinstance(data, float):
        return 0.0 if data == 0 else data
    if isinstance(data, dict):
        return {key: normalise(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [normalise(value) for value in data]
    return data


# C0 and C1 controls (ESC starts terminal escape sequences; 0x9b is a one-byte CSI) and the
# bidirectional overrides that can make text read differently from what it holds.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(data: Any) -> Any:
    r"""`data` with every control character in its strings shown as an escape, for a terminal.

    >>> printable({"site_name": "Home\x1b[2J"})
    {'site_name': 'Home\\x1b[2J'}
    """
    if isinstance(data, str):
        return _UNPRINTABLE.sub(_escape, data)
    if isinstance(data, dict):
        return {key: printable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [printable(value) for value in data]
    return data


# What json.dumps leaves raw with ensure_ascii=False: it escapes only controls below 0x20.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _json_text(data: Any, **options: Any) -> str:
    text = json.dumps(normalise(data), default=_default, ensure_ascii=False, **options)
    # These can only sit inside strings: \uXXXX is the same value to a JSON reader, and
    # nothing a terminal acts on.
    return _RAW_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def to_json(data: Any) -> str:
    """Indented JSON with keys in the order the command built them (stable per command)."""
    return _json_text(data, indent=2)


def emit_line(data: Any) -> None:
    """One JSON object on one line, flushed (streams such as `teg watch --json`)."""
    click.echo(_json_text(data, separators=(",", ":")))
    sys.stdout.flush()


def say(text: str) -> None:
    """One `teg: ...` line on stderr (errors, warnings), its control characters escaped:
    an error message may quote what a gateway sent."""
    click.echo(f"teg: {printable(text)}", err=True)


def console(*, stderr: bool = False, width: int = 120) -> Console:
    """A rich console: colour on a terminal, plain text when piped (rich decides).

    Markup and emoji codes are off: what a gateway or a user wrote is printed as written
    (styles come from `rich.text.Text`, never from brackets in a string).
    """
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        # Piped or captured: no colour, and wide enough not to fold rows.
        return Console(
            file=stream, width=width, no_color=True, highlight=False, markup=False, emoji=False
        )
    return Console(file=stream, highlight=False, markup=False, emoji=False)


def json_mode(ctx: click.Context | None = None) -> bool:
    ctx = ctx or click.get_current_context()
    return bool(ctx.meta.get(JSON_KEY))


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[JSON_KEY] = True


def json_option(func: F) -> F:
    """`--json` on a command, the same as `teg --json COMMAND`."""
    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the result as JSON (stable keys, units in names).",
    )(func)


def emit(ctx: click.Context, result: object) -> None:
    """Print a command's result; the single printing place for every `teg` command."""
    if result is None:
        return
    if not isinstance(result, Output):
        result = Output(result)
    if json_mode(ctx) or result.render is None:
        if result.data is not None:
            click.echo(to_json(result.data))
    else:
        result.render(console(), printable(normalise(result.data)))
    if result.error is not None:
        raise result.error


__all__ = [
    "Output",
    "console",
    "emit",
    "emit_line",
    "json_mode",
    "json_option",
    "normalise",
    "printable",
    "say",
    "to_json",
]
