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
from owner_cloud import SITE_ID, FakeSite, TlsPair

from tegkit.cloud import CloudClient
from tegkit.sim.cloud_server import CloudServer
from tegkit.sim.owner_api import CloudTokens, make_owner_api_app

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


async def test_reads_go_on_when_the_server_rotates_its_http2_connection(tls: TlsPair) -> None:
    """A server sends GOAWAY after so many requests on a connection (Tesla's front ends as
    nginx and hypercorn do, after 1,000); a long-running client must simply go on."""
    site, tokens = FakeSite(), CloudTokens()
    app = make_owner_api_app(site, tokens)
    server = await CloudServer.start(
        app, "127.0.0.1", 0, tls.server_context(), max_requests_per_connection=5
    )
    url = f"https://127.0.0.1:{server.port}"
    try:
        async with CloudClient(
            tokens.access_token, base_url=url, auth_url=url, ssl=tls.client_context()
        ) as client:
            for _ in range(23):  # four rotations, each with a request caught in it
                status = await client.live_status(SITE_ID)
                assert status.percentage_charged_app_percent is not None
            assert client.last_http_version == "HTTP/2"
    finally:
        await server.close()
