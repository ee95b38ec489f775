"""`teg watch`: the status screen refreshed in place, with a sparkline of recent power per meter.

An unreachable or stopped gateway shows a banner over the last good reading and the loop
keeps asking; the banner goes when the gateway answers again. Failures that waiting cannot
fix (wrong password, changed certificate) end the command with their exit code. Ctrl-C ends
it with 0. With --json each reading is printed as one JSON line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import click
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from tegkit import errors
from tegkit.cli import app, exit_codes, output, status
from tegkit.cli.output import json_option

BLOCKS: Final = "▁▂▃▄▅▆▇█"
HISTORY: Final = 30

# Waiting helps with these; anything else (password, certificate, permission) ends the watch.
TRANSIENT: Final = (
    errors.ConnectionFailedError,
    errors.GatewayTimeoutError,
    errors.SystemStoppedError,
    errors.GatewayBusyError,
    errors.RateLimitedError,
)


def sparkline(values: Sequence[float | None]) -> str:
    """Block characters for a series, scaled from min(values, 0) to max(values, 0).

    Zero stays on the scale, so a battery swinging between charging and discharging shows
    which side it is on. Missing readings are blanks.

    >>> sparkline([0, 50, 100])
    '▁▅█'
    >>> sparkline([None, 0.0])
    ' ▁'
    """
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low = min(*known, 0.0)
    high = max(*known, 0.0)
    span = high - low
    top = len(BLOCKS) - 1
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif span == 0:
            out.append(BLOCKS[0])
        else:
            out.append(BLOCKS[round((value - low) / span * top)])
    return "".join(out)


class View:
    """The watch screen: the last reading, its history, and a banner while something fails."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.data: dict[str, Any] | None = None
        self.history: dict[str, deque[float | None]] = {
            m: deque(maxlen=HISTORY) for m in status.METERS
        }
        self.banner: str | None = None
        self.failing_since: dt.datetime | None = None
        self.readings = 0

    def good(self, data: dict[str, Any], failure: errors.GatewayError | None) -> None:
        self.readings += 1
        self.data = data = output.printable(output.normalise(data))
        for meter in status.METERS:
            self.history[meter].append(data[f"{meter}_power_w"])
        if failure is None:
            self.banner = None
            self.failing_since = None
        else:
            self.bad(failure)

    def bad(self, failure: errors.GatewayError) -> None:
        if self.failing_since is None:
            self.failing_since = dt.datetime.now().astimezone()
        since = self.failing_since.strftime("%H:%M:%S")
        self.banner = output.printable(f"since {since}: {exit_codes.message(failure)}")

    def renderable(self) -> Group:
        parts: list[Any] = []
        if self.banner is not None:
            parts.append(
                Panel(
                    Text(self.banner), title="gateway unavailable", style="bold red", expand=False
                )
            )
        if self.data is not None:
            lines = {m: sparkline(list(h)) for m, h in self.history.items()}
            parts.append(status.table(self.data, lines))
        now = dt.datetime.now().astimezone().strftime("%H:%M:%S")
        parts.append(
            Text(
                f"updated {now} · reading {self.readings} · every {self.interval_s:g} s · "
                "Ctrl-C to quit",
                style="dim",
            )
        )
        return Group(*parts)


async def _loop(
    settings: app.Settings,
    interval_s: float,
    count: int | None,
    show: Callable[[dict[str, Any] | None, errors.GatewayError | None], None],
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reading: asyncio.Future[Any] | None = None

    def ctrl_c() -> None:
        # Ctrl-C ends the watch here, by a flag the loop checks, rather than by cancelling
        # the whole run: a cancellation that some library absorbs must not keep it going.
        stop.set()
        if reading is not None:
            reading.cancel()

    loop.add_signal_handler(signal.SIGINT, ctrl_c)
    try:
        async with settings.gateway() as gw:
            done = 0
            while not stop.is_set() and (count is None or done < count):
                reading = asyncio.ensure_future(status.read_status(gw))
                try:
                    data, failures = await reading
                except asyncio.CancelledError:
                    if stop.is_set():
                        break
                    raise
                except TRANSIENT as exc:
                    show(None, exc)
                else:
                    failure = failures[0] if failures else None
                    if failure is not None and not isinstance(failure, TRANSIENT):
                        raise failure
                    show(data, failure)
                done += 1
                if count is None or done < count:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between readings.",
)
@click.option(
    "--count", type=click.IntRange(min=1), default=None, help="Stop after this many readings."
)
@json_option
@click.pass_context
def watch(ctx: click.Context, interval: float, count: int | None) -> None:
    """Watch the power flow live, refreshed in place, with a sparkline per meter.

    An unreachable gateway shows a banner and the watch carries on until it answers again.
    Ctrl-C quits (exit code 0). With --json, one JSON object per reading and line.

    \b
    Example:
      teg watch --interval 5
      teg --json watch --count 3 | jq -c '{t: .read_at, soe: .soe_app_percent}'
    """
    settings = app.settings(ctx)
    try:
        if output.json_mode(ctx):

            def line(data: dict[str, Any] | None, failure: errors.GatewayError | None) -> None:
                if data is not None:
                    output.emit_line(data)
                elif failure is not None:
                    output.say(exit_codes.message(failure))

            app.run(_loop(settings, interval, count, line))
            return
        view = View(interval)
        with Live(
            view.renderable(), console=output.console(), auto_refresh=False, transient=False
        ) as live:

            def update(data: dict[str, Any] | None, failure: errors.GatewayError | None) -> None:
                if data is not None:
                    view.good(data, failure)
                elif failure is not None:
                    view.bad(failure)
                live.update(view.renderable(), refresh=True)

            app.run(_loop(settings, interval, count, update))
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends
