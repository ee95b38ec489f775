"""Serve an ASGI app over TLS with HTTP/2 (and HTTP/1.1) on a loopback port, with hypercorn.

Tesla's cloud speaks HTTP/2 and refuses what comes over HTTP/1.1, so the simulated cloud
must be a real HTTP/2 server. hypercorn is a maintained ASGI server built on the h2 and h11
protocol libraries (the same h2 the client uses through httpx): its connection handler does
the framing, flow control and protocol choice by ALPN.

We accept the connections ourselves and hand each to hypercorn's handler, instead of
calling `hypercorn.asyncio.serve`, for one reason: closing. `serve` waits for clients to
close their keep-alive connections (an idle HTTP/2 client never does) and then cancels them
in a way that logs errors; a simulator must close at once and leave nothing behind, so
`close()` aborts the connections it tracked and waits for their handlers to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework

_LOG = logging.getLogger("tegkit.sim.cloud")

#: what the port offers in the TLS handshake, best first
ALPN_PROTOCOLS = ["h2", "http/1.1"]
#: requests on one connection before the server sends GOAWAY (hypercorn's and nginx's default)
MAX_REQUESTS_PER_CONNECTION = 1000
_CLOSE_WAIT_S = 5.0  # aborted connections end at once; this only bounds a surprise


class CloudServer:
    """An ASGI app on (host, port) over TLS; `await CloudServer.start(...)`, then `close()`."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        sock: socket.socket,
        server: asyncio.Server,
        max_requests_per_connection: int = MAX_REQUESTS_PER_CONNECTION,
    ) -> None:
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._server = server
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._app = ASGIWrapper(cast(ASGIFramework, app))
        self._config = Config()
        self._config.accesslog = None  # request lines would carry nothing useful
        self._config.errorlog = _LOG
        # Then GOAWAY, as real servers rotate connections: clients must open a new one.
        self._config.keep_alive_max_requests = max_requests_per_connection
        self._context = WorkerContext(None)

    @classmethod
    async def start(
        cls,
        app: Callable[..., Awaitable[None]],
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        max_requests_per_connection: int = MAX_REQUESTS_PER_CONNECTION,
    ) -> CloudServer:
        """Listen on (host, port) (0: a free port) with `context`, offering h2 and http/1.1."""
        context.set_alpn_protocols(ALPN_PROTOCOLS)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # hypercorn writes headers and body apart, so Nagle held each answer ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(256)
            sock.setblocking(False)
            holder: list[CloudServer] = []

            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await holder[0]._serve(reader, writer)

            server = await asyncio.start_server(
                accept, sock=sock, ssl=context, ssl_handshake_timeout=10.0
            )
        except BaseException:
            sock.close()
            raise
        holder.append(cls(app, sock, server, max_requests_per_connection))
        return holder[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            loop = asyncio.get_running_loop()
            await TCPServer(self._app, loop, self._config, self._context, {}, reader, writer)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            # a client that goes away (or never finishes TLS shutdown) is not our fault
            _LOG.debug("simulated cloud: a connection ended: %r", exc)
        except Exception:
            _LOG.exception("simulated cloud: a connection failed")
        finally:
            self._connections.pop(task, None)

    async def close(self) -> None:
        """Stop listening, cut every open connection, wait for their handlers; port freed."""
        self._server.close()
        await self._context.terminated.set()
        tasks = list(self._connections)
        for writer in self._connections.values():
            transport = writer.transport
            if transport is not None:
                transport.abort()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=_CLOSE_WAIT_S)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._server.wait_closed()
        self._sock.close()


__all__ = ["ALPN_PROTOCOLS", "CloudServer"]
