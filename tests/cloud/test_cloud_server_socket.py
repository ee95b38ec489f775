"""The simulated cloud's connections send at once (TCP_NODELAY), as asyncio's own servers do.

hypercorn writes an answer's headers and body apart; without TCP_NODELAY the body waited
for the client's delayed ACK (about 40 ms an answer on loopback), which made every cloud
call and the demo's cloud route look far slower than the code is.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from owner_cloud import TlsPair

from tegkit.sim.cloud_server import CloudServer

Scope = MutableMapping[str, Any]


async def _ok(
    scope: Scope,
    receive: Callable[[], Awaitable[Scope]],
    send: Callable[[Scope], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def test_every_accepted_connection_has_tcp_nodelay(tls: TlsPair) -> None:
    server = await CloudServer.start(_ok, "127.0.0.1", 0, tls.server_context())
    try:
        for http2 in (True, False):
            async with httpx.AsyncClient(
                http2=http2, http1=not http2, verify=tls.client_context()
            ) as client:
                answer = await client.get(f"https://127.0.0.1:{server.port}/")
                assert answer.status_code == 200
                assert answer.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
                # the server's side of the connections open now (this one at least)
                open_now = [w for w in server._connections.values() if not w.is_closing()]
                assert open_now
                for writer in open_now:
                    sock = writer.get_extra_info("socket")
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await server.close()
