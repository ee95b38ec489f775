"""Log lines of the long-running commands (`teg monitor`, `teg sim`) on stderr.

Warnings and errors are shown by default, one line each; --verbose adds the debug lines
and tracebacks. Lines about the same cause (the same logger, level and message once its
numbers are set aside) are rate-limited: one per interval, and the next one that passes
says how many were suppressed, so a failure repeated every few seconds (or thousands of
times a second) costs one line a minute, not the disk.

The gateway a line is about comes from `extra={"gateway": name}` or from the task that
logged it (`set_gateway`, called by each poller at the start of its task), so lines from
the client ("login failed") name the gateway too.

text:  2024-06-01T19:00:00.123Z WARNING tegkit.monitor.poller: home: gateway unreachable
json:  {"time": "...", "level": "warning", "logger": "...", "message": "...", "gateway": "home"}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, Final, Literal, TextIO

import click
import msgspec

__all__ = [
    "FORMATS",
    "LogFormat",
    "RateLimit",
    "log_format_option",
    "set_gateway",
    "to_stderr",
]

LogFormat = Literal["text", "json"]
FORMATS: Final[tuple[str, ...]] = ("text", "json")

#: `--log-format` of the commands that run for long (`teg monitor`, `teg demo`, `teg sim`)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    envvar="TEG_LOG_FORMAT",
    show_envvar=True,
    show_default=True,
    help="How log lines on stderr look: text, or json (one object a line, for journald "
    "and containers).",
)
#: one line per cause per this many seconds
DEFAULT_INTERVAL_S: Final = 60.0
#: causes remembered at once; the least recently seen is forgotten first
MAX_CAUSES: Final = 1024
#: the loggers whose lines are shown; aiohttp and asyncio report server and loop failures
LOGGERS: Final[tuple[str, ...]] = ("tegkit", "aiohttp", "asyncio")
_MAX_MESSAGE_CHARS: Final = 2000

_gateway: ContextVar[str | None] = ContextVar("tegkit_log_gateway", default=None)

# a number on its own (not part of a name such as home-2): "retry in 3.5 s", "HTTP 429"
_NUMBER = re.compile(r"(?<![\w-])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w-])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def set_gateway(name: str | None) -> None:
    """Name the gateway of every line logged from now on in this task (or thread)."""
    _gateway.set(name)


def _gateway_of(record: logging.LogRecord) -> str | None:
    name = getattr(record, "gateway", None)
    if isinstance(name, str) and name:
        return name
    return getattr(record, "tegkit_gateway", None)


class _GatewayFilter(logging.Filter):
    """Stamps the task's gateway on the record (the filter runs in the logging task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "tegkit_gateway"):
            record.tegkit_gateway = _gateway.get()
        return True


def _cause(record: logging.LogRecord) -> tuple[str, int, str | None, str, str]:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is still one cause
        message = str(record.msg)
    exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    text = _NUMBER.sub("#", message[:_MAX_MESSAGE_CHARS])
    return (record.name, record.levelno, _gateway_of(record), text, exc)


class RateLimit(logging.Filter):
    """Lets one line per cause through every `interval_s`; counts the ones it holds back.

    Only lines at `min_level` and above are limited (debug lines of --verbose pass). The
    line that passes after others were held back carries their number in
    `record.tegkit_suppressed`, which the formatters print as "(N more suppressed)".
    """

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        min_level: int = logging.WARNING,
        max_causes: int = MAX_CAUSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.min_level = min_level
        self.max_causes = max_causes
        self._clock = clock
        # cause -> [time the last line passed, lines held back since]
        self._seen: OrderedDict[tuple[Any, ...], list[float]] = OrderedDict()
        # filters run outside the handler's lock, and store threads log too
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = _cause(record)
        with self._lock:
            return self._admit(key, record)

    def _admit(self, key: tuple[Any, ...], record: logging.LogRecord) -> bool:
        now = self._clock()
        state = self._seen.get(key)
        if state is not None and now - state[0] < self.interval_s:
            state[1] += 1
            self._seen.move_to_end(key)
            return False
        record.tegkit_suppressed = int(state[1]) if state is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_causes:
            self._seen.popitem(last=False)
        return True


def _one_line(text: str) -> str:
    """No line breaks or control characters: a peer's text cannot forge a log line."""
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _utc(created: float) -> str:
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _exception(record: logging.LogRecord) -> str | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    return f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE_CHARS]


class _Formatter(logging.Formatter):
    def __init__(self, fmt: LogFormat, tracebacks: bool) -> None:
        super().__init__()
        self.fmt = fmt
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg!s} (unformattable arguments)"
        gateway = _gateway_of(record)
        suppressed = int(getattr(record, "tegkit_suppressed", 0) or 0)
        exc = _exception(record)
        trace = None
        if self.tracebacks and record.exc_info:
            trace = self.formatException(record.exc_info)
        if self.fmt == "json":
            doc: dict[str, Any] = {
                "time": _utc(record.created),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message[:_MAX_MESSAGE_CHARS],
            }
            if gateway:
                doc["gateway"] = gateway
            if exc:
                doc["exception"] = exc
            if trace:
                doc["traceback"] = trace
            if suppressed:
                doc["suppressed"] = suppressed
            return msgspec.json.encode(doc).decode()
        # the poller's lines begin with the gateway already
        if gateway and not message.startswith(f"{gateway}:"):
            message = f"{gateway}: {message}"
        if exc and not trace:
            message = f"{message} ({exc})"
        if suppressed:
            message = f"{message} ({suppressed} more suppressed)"
        line = f"{_utc(record.created)} {record.levelname} {record.name}: {_one_line(message)}"
        return f"{line}\n{trace}" if trace else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (click's runner swaps it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream or sys.stderr)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed or sys.stderr
        super().emit(record)


def _ours(handler: logging.Handler) -> bool:
    """Handlers tegkit itself installs (its CLI's stderr handler, the NullHandler)."""
    return isinstance(handler, logging.NullHandler) or type(handler).__module__.startswith(
        "tegkit."
    )


@contextlib.contextmanager
def to_stderr(
    fmt: LogFormat = "text",
    *,
    verbose: bool = False,
    interval_s: float = DEFAULT_INTERVAL_S,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[logging.Handler]:
    """Show warnings and errors (with `verbose`, debug lines and tracebacks too) until the
    block ends; then the loggers are as they were."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = _StderrHandler(stream)
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(_Formatter(fmt, tracebacks=verbose))
    handler.addFilter(_GatewayFilter())
    handler.addFilter(RateLimit(interval_s, clock=clock))
    saved: list[tuple[logging.Logger, list[logging.Handler], int]] = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level))
        for old in [h for h in logger.handlers if _ours(h)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        if name == "tegkit":
            logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    try:
        yield handler
    finally:
        for logger, handlers, level in saved:
            logger.removeHandler(handler)
            for old in handlers:
                if old not in logger.handlers:
                    logger.addHandler(old)
            logger.setLevel(level)
