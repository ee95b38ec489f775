"""The event loop of the long-running commands (`teg monitor`, `teg demo`).

uvloop (libuv) spends less CPU than asyncio's own loop on each of the monitor's TLS polls
(1,000 simulated gateways: about 50 % of a core down to 42 %). It is a dependency where it
builds (not on Windows); where it is not installed asyncio's loop runs, unasked.
`--event-loop asyncio` chooses asyncio's loop anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

import click

log = logging.getLogger(__name__)

EVENT_LOOPS: Final[tuple[str, ...]] = ("auto", "asyncio", "uvloop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def _uvloop_factory() -> LoopFactory | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_factory(choice: str) -> LoopFactory | None:
    """The loop factory for --event-loop `choice` (None: asyncio's own loop). "auto" is
    uvloop when it can be imported; "uvloop" when it cannot is for the option to refuse."""
    if choice == "asyncio":
        return None
    factory = _uvloop_factory()
    if factory is None and choice == "uvloop":
        raise RuntimeError("uvloop is not installed")
    return factory


def _check(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == "uvloop" and _uvloop_factory() is None:
        raise click.BadParameter(
            "uvloop is not installed here (pip install uvloop; not on Windows); "
            "choose auto or asyncio",
            ctx,
            param,
        )
    return value


event_loop_option = click.option(
    "--event-loop",
    type=click.Choice(EVENT_LOOPS),
    default="auto",
    show_default=True,
    callback=_check,
    help="auto: uvloop where it is installed (less CPU per poll), else asyncio's own loop; "
    "asyncio: Python's own loop in any case.",
)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """The kind of loop that runs ("uvloop" or "asyncio"), from its class."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def _logged(main: Coroutine[Any, Any, T]) -> T:
    log.info("event loop: %s", loop_name(asyncio.get_running_loop()))
    return await main


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """asyncio.run(main) on the loop that --event-loop `choice` names; the loop that runs
    is logged (INFO, seen with --verbose)."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(_logged(main))
