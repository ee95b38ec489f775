"""Serve an ASGI app over TLS with HTTP/2 (and HTTP/1.1) on a loopback port, with hypercorn.

Tesla's cloud speaks HTTP/2 and refuses what comes over HTTP/1.1, so the simulated cloud
must be a real HTTP/2 server. hypercorn is a maintained ASGI server built on the h2 and h11
protocol libraries (the same h2 the client uses through httpx): it does the framing, flow
control and ALPN; we only give it the app, a socket and the TLS context.

The socket is bound here (port 0 picks a free one, known before the first request), and
the TLS context is the simulator's own object, so a certificate reload applies at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

from hypercorn.asyncio import serve
from hypercorn.config import Config, Sockets
from hypercorn.typing import ASGIFramework

_LOG = logging.getLogger("tegkit.sim.cloud")

#: what the port offers in the TLS handshake, best first
ALPN_PROTOCOLS = ["h2", "http/1.1"]


class _Config(Config):
    """hypercorn's Config with our socket and our TLS context instead of files on disk."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__()
        self._sock = sock
        self._context = context

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._context

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[self._sock], insecure_sockets=[], quic_sockets=[])


class CloudServer:
    """One hypercorn server task on (host, port); `close()` ends it and frees the port."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], host: str, port: int, context: ssl.SSLContext
    ) -> None:
        context.set_alpn_protocols(ALPN_PROTOCOLS)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock.bind((host, port))
            self._sock.listen(256)
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self.port = int(self._sock.getsockname()[1])
        config = _Config(self._sock, context)
        config.accesslog = None  # request lines would carry nothing useful, and cost time
        config.errorlog = _LOG
        config.graceful_timeout = 1.0  # at close, open requests get this long to finish
        config.backlog = 256
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            serve(cast(ASGIFramework, app), config, shutdown_trigger=self._stop.wait, mode="asgi"),
            name="tegkit-sim-cloud",
        )

    async def close(self) -> None:
        """Stop accepting, let open requests finish (bounded), close the listening socket."""
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except Exception:
            _LOG.exception("the simulated cloud server ended with an error")
        finally:
            self._sock.close()


__all__ = ["ALPN_PROTOCOLS", "CloudServer"]
