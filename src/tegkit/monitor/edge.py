"""The HTTP edge: what an untrusted peer can make the monitor's server do is bounded.

- a refused parameter or body is a 400 that names the field and what it accepts;
- every connection has a deadline for its next complete request head (idle keep-alive
  and slowly trickled headers alike), a request body has its own deadline and size cap;
- the number of open connections is capped: at the cap the oldest idle connection makes
  room, and when none is idle a new one is answered 503 and closed;
- the server's own error answers (a malformed request) are short, carry the security
  headers and log one line without a traceback;
- lines about the same cause are logged once per interval with a count.

`EdgeSite` serves an aiohttp `AppRunner` through `Connections` on a TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import reprlib
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from aiohttp import web
from aiohttp.web import BaseRequest, RequestHandler

log = logging.getLogger(__name__)

#: a refused value is echoed back this long at most (a body can be a megabyte).
ECHO_MAX_CHARS = 80
#: the Server header: a name, never versions
SERVER_NAME = "tegkit"
#: sent with every answer, errors included
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
#: the names a monitor always answers for (it listens on loopback by default)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
#: accept() failures that mean "no descriptors or memory now", not "that peer left"
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_S = 0.5
_JSON = "application/json"


_ECHO = reprlib.Repr()
_ECHO.maxlevel = 3
_ECHO.maxstring = ECHO_MAX_CHARS
_ECHO.maxother = ECHO_MAX_CHARS


class BadParameter(web.HTTPBadRequest):
    """400 with {"error", "parameter", "allowed"}: the field, and what it accepts."""

    def __init__(self, name: str, allowed: str, value: object = None) -> None:
        shown = _ECHO.repr(value)  # shallow: a value nested 900 deep is not walked
        if len(shown) > ECHO_MAX_CHARS:
            shown = shown[: ECHO_MAX_CHARS - 3] + "..."
        body = {"error": f"{name}: {shown} is not allowed; expected {allowed}"}
        body |= {"parameter": name, "allowed": allowed}
        super().__init__(text=msgspec.json.encode(body).decode(), content_type=_JSON)


def error_text(message: str) -> str:
    return msgspec.json.encode({"error": message}).decode()


def decode_json(body: bytes) -> Any:
    """A request body as JSON; 400 naming "body" for bad JSON, bad UTF-8 or deep nesting
    (the decoder refuses nesting past the interpreter's recursion limit)."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise BadParameter("body", "a JSON object") from None


# --- limits -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long and how much a peer may take. The defaults suit a dashboard on a LAN."""

    #: from connection or last answer to the next complete request head
    idle_timeout_s: float = 15.0
    #: to receive a request body once its head is in
    body_timeout_s: float = 10.0
    #: to hand one event to a stream's reader before the stream is dropped
    write_timeout_s: float = 30.0
    max_connections: int = 256
    max_streams: int = 32
    max_body_bytes: int = 64 * 1024
    max_line_bytes: int = 8190
    max_field_bytes: int = 8190
    #: one log line per cause per this many seconds
    log_interval_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("idle_timeout_s", "body_timeout_s", "write_timeout_s", "log_interval_s"):
            value = getattr(self, name)
            if not 0 < value < 86400:
                raise ValueError(f"{name} must be above 0 and under a day, not {value!r}")
        for name in ("max_connections", "max_streams", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def connection_cap(wanted: int, fd_limit: int | None = None) -> int:
    """`wanted`, but at most half the process's file-descriptor limit: the store, the
    gateway clients and the listening socket need the rest (accept() failing with
    EMFILE is what froze the server before)."""
    if fd_limit is None:
        try:
            import resource

            fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):
            return wanted
    if fd_limit <= 0:  # RLIM_INFINITY
        return wanted
    return max(8, min(wanted, fd_limit // 2))


class Throttle:
    """One log line per cause per interval; the next line says how many were held back."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._seen: dict[str, list[float]] = {}  # cause -> [last logged at, held back]

    def warn(self, cause: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        now = self._clock()
        state = self._seen.get(cause)
        if state is not None and now - state[0] < self.interval_s:
            state[1] += 1
            return
        held = int(state[1]) if state is not None else 0
        self._seen[cause] = [now, 0]
        if len(self._seen) > 256:  # causes are few and fixed; never grow without bound
            self._seen.pop(next(iter(self._seen)))
        suffix = f" ({held} more like it in the last {self.interval_s:g} s)" if held else ""
        log.log(level, message + suffix, *args)


# --- hosts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostCheck:
    """The names the monitor answers for: loopback, the listen address, and extras.

    A browser page can reach a loopback server under any name that resolves there (DNS
    rebinding); it cannot choose the Host header, so only known names are answered. When
    the server listens on every address, IP literals are answered too (a rebound name is
    never an IP literal).
    """

    names: frozenset[str] = LOOPBACK_NAMES
    any_ip: bool = False

    @classmethod
    def for_listen(cls, listen_host: str, extra: Iterable[str] = ()) -> HostCheck:
        names = set(LOOPBACK_NAMES)
        wildcard = listen_host in _WILDCARDS
        if not wildcard:
            names.add(_normal_host(listen_host))
        names.update(_normal_host(h) for h in extra if h)
        return cls(frozenset(names), any_ip=wildcard)

    def allows(self, host_header: str) -> bool:
        name = _host_name(host_header)
        if name is None:
            return False
        if name in self.names:
            return True
        if self.any_ip:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    def describe(self) -> str:
        shown = sorted(f"[{n}]" if ":" in n else n for n in self.names)
        if self.any_ip:
            shown.append("any IP address")
        return ", ".join(shown)


def _normal_host(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


@functools.lru_cache(maxsize=256)  # a handful of distinct headers, each request
def _host_name(header: str) -> str | None:
    """The host of a Host header ("name", "name:port", "[v6]", "[v6]:port"); None if bad."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[1:end], header[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
    else:
        name, sep, port = header.rpartition(":")
        if not sep:
            name = port
        elif not port.isdigit():
            return None
    name = _normal_host(name)
    return name or None


# --- connections ------------------------------------------------------------------------


class _Guard(asyncio.Protocol):
    """One connection: passes everything to aiohttp's handler and enforces the deadline
    for the next request head. The app marks requests in progress (`Connections.busy`)."""

    def __init__(self, edge: Connections, inner: RequestHandler) -> None:
        self._edge = edge
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.busy = 0
        self.answered = 0  # requests answered on this connection
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport; not an isinstance check: uvloop's are not asyncio's subclasses
        self.transport = cast(asyncio.Transport, transport)
        self._edge._opened(self)
        self.arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        self.inner.eof_received()
        return None  # asyncio then closes the transport

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self._edge._closed(self)
        self.transport = None
        self.inner.connection_lost(exc)

    def arm(self) -> None:
        self.disarm()
        loop = self._edge.loop
        self._timer = loop.call_later(self._edge.limits.idle_timeout_s, self._expired)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.busy == 0:
            self._edge.timed_out += 1
            self.drop()

    def drop(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()  # a peer that does not read gets no more time
        else:
            transport.close()


class _Refused(asyncio.Protocol):
    """A connection over the cap while every open one is busy: 503, then closed."""

    BODY = error_text("too many connections; try again shortly").encode()
    ANSWER = (
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
        b"Content-Type: application/json\r\nServer: " + SERVER_NAME.encode() + b"\r\n"
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in SECURITY_HEADERS.items())
        + b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )  # fmt: skip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # asyncio's or uvloop's: see _Guard
        stream.write(self.ANSWER)
        stream.close()


class _EdgeHandler(RequestHandler):
    """aiohttp's handler whose own error answers are short JSON with our headers, and
    whose logging of a malformed request is one throttled line, not a traceback."""

    throttle: Throttle

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # a bug of ours: say it with its traceback (the log handler limits repeats)
            self.logger.error("error handling %s %s", request.method, request.path, exc_info=exc)
            text = "internal error; the monitor's log has the details"
        else:
            reason = type(exc).__name__ if exc is not None else "bad request"
            self.throttle.warn(
                f"malformed:{reason}",
                "refused a malformed request (%s)",
                reason,
                level=logging.INFO,  # a peer's mistake, not the monitor's
            )
            text = f"malformed request: {reason}"
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already started")
        response = web.Response(status=status, text=error_text(text), content_type=_JSON)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Server"] = SERVER_NAME
        response.force_close()
        return response


class Connections:
    """The protocol factory for the server's socket: caps and times out connections."""

    def __init__(
        self,
        server: web.Server,
        limits: ServerLimits,
        *,
        fd_limit: int | None = None,
    ) -> None:
        self.server = server
        self.limits = limits
        self.max_connections = connection_cap(limits.max_connections, fd_limit)
        self.loop = asyncio.get_running_loop()
        self.throttle = Throttle(limits.log_interval_s)
        self._open: dict[asyncio.Transport, _Guard] = {}  # oldest first
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    @property
    def open(self) -> int:
        return len(self._open)

    def __call__(self) -> asyncio.Protocol:
        if len(self._open) >= self.max_connections and not self._make_room():
            self.refused += 1
            self.throttle.warn(
                "refused",
                "%d connections open, all busy: refusing new ones",
                len(self._open),
            )
            return _Refused()
        inner = _EdgeHandler(
            self.server,
            loop=self.loop,
            # Our guard's timer closes idle connections (and counts them); aiohttp's own
            # keep-alive timer is only a backstop, later, so the two never race.
            keepalive_timeout=2 * self.limits.idle_timeout_s + 1.0,
            max_line_size=self.limits.max_line_bytes,
            max_field_size=self.limits.max_field_bytes,
            lingering_time=1.0,
            access_log=None,  # type: ignore[arg-type]  # None: no access log
        )
        inner.throttle = self.throttle
        return _Guard(self, inner)

    def _make_room(self) -> bool:
        """Close one idle connection: the oldest that never sent a whole request (idle or
        trickling), else the oldest idle one. False when every connection is busy."""
        fallback = None
        for guard in self._open.values():
            if guard.busy or guard.transport is None:
                continue
            if guard.answered == 0:
                fallback = guard
                break
            fallback = fallback or guard
        if fallback is None or fallback.transport is None:
            return False
        self.evicted += 1
        self.throttle.warn("evicted", "%d connections open: closing idle ones", self.open)
        self._open.pop(fallback.transport, None)
        fallback.drop()
        return True

    def _opened(self, guard: _Guard) -> None:
        assert guard.transport is not None
        self._open[guard.transport] = guard

    def _closed(self, guard: _Guard) -> None:
        if guard.transport is not None:
            self._open.pop(guard.transport, None)

    def busy(self, request: web.BaseRequest) -> _Busy:
        """`with connections.busy(request):` the connection's deadline waits for the
        answer; once answered, it has `idle_timeout_s` for its next request head."""
        transport = request.transport
        return _Busy(self._open.get(transport) if transport is not None else None)


class _Busy:
    def __init__(self, guard: _Guard | None) -> None:
        self._guard = guard

    def __enter__(self) -> None:
        if self._guard is not None:
            self._guard.busy += 1
            self._guard.disarm()

    def __exit__(self, *exc: object) -> None:
        guard = self._guard
        if guard is not None:
            guard.busy -= 1
            guard.answered += 1
            if guard.busy == 0 and guard.transport is not None:
                guard.arm()


class EdgeSite(web.BaseSite):
    """A TCP site that accepts one connection at a time through `Connections`.

    The accept loop is ours, not asyncio's: asyncio accepts up to `backlog` sockets per
    wake-up before any protocol exists, which can spend every file descriptor at once
    (then each failed accept() logged a traceback). Here a socket is accepted only when
    the cap allows it, and accept() failures back off with one throttled line. Its
    address is `port` / `name`: aiohttp's `runner.addresses` lists only sites that run
    aiohttp's own server.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ServerLimits,
        *,
        backlog: int = 128,
        fd_limit: int | None = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._app_runner = runner  # our own reference: BaseSite keeps its copy private
        self._host = host
        self._port = port
        self._limits = limits
        self._fd_limit = fd_limit
        self._backlog_n = backlog
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self.connections: Connections | None = None

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1]) if self._sock is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None, "call runner.setup() first"
        self.connections = Connections(server, self._limits, fd_limit=self._fd_limit)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(self._backlog_n)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept(sock, self.connections))

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
        await super().stop()

    async def _accept(self, sock: socket.socket, connections: Connections) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
                    raise  # the listening socket itself is gone
                if exc.errno not in _OUT_OF_RESOURCES:
                    continue  # the peer gave up before we accepted: nothing to do
                connections.throttle.warn(
                    f"accept:{exc.errno}", "cannot accept connections: %s; retrying", exc
                )
                await asyncio.sleep(ACCEPT_RETRY_S)  # wait for descriptors to come back
                continue
            try:
                conn.setblocking(False)
                await loop.connect_accepted_socket(connections, conn)
            except OSError:
                conn.close()
