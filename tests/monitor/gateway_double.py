"""A small gateway double over real TLS on 127.0.0.1 for what the simulator will not send.

It serves the three live endpoints the poller reads each fast poll (aggregates, state of
energy, grid status) from the 21.44 captures, without a login, and answers the slow ones
404. A test sets `power_w` (any float: 1e20, nan) or scripts answers to the aggregates
(`answers`: status and headers, used in order; empty means the capture).
"""

from __future__ import annotations

import json
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tegkit.client import Gateway, PinnedCertificate
from tegkit.sim.certs import fingerprint_sha256, generate_certificate

CAPTURES = (
    Path(__file__).resolve().parents[3]
    / "shared/reference/vloschiavo-powerwall2/samples/21.44-foogod/running"
)
AGGREGATES = "/api/meters/aggregates"


@dataclass
class Answer:
    """A scripted answer: status and headers, no body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class GatewayDouble:
    url: str
    fingerprint: str
    power_w: float | None = None  # replaces the site meter's instant_power when set
    answers: list[Answer] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def client(self) -> Gateway:
        return Gateway(self.url, tls=PinnedCertificate(self.fingerprint), retries=0)


def _body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CAPTURES / name).read_text())
    return loaded


@asynccontextmanager
async def gateway_double(tmp_path: Path) -> AsyncIterator[GatewayDouble]:
    cert, key = tmp_path / "double.crt", tmp_path / "double.key"
    generate_certificate(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    double = GatewayDouble("", fingerprint_sha256(cert.read_bytes()))
    aggregates = _body("meters.aggregates.json")
    soe = _body("system_status.soe.json")
    grid = _body("system_status.grid_status.json")

    async def handle(request: web.Request) -> web.Response:
        double.hits[request.path] += 1
        if request.path == AGGREGATES:
            if double.answers:
                answer = double.answers.pop(0)
                return web.Response(status=answer.status, headers=answer.headers)
            body = json.loads(json.dumps(aggregates))
            if double.power_w is not None:
                body["site"]["instant_power"] = double.power_w
            # json.dumps writes nan and inf as NaN and Infinity, as a broken peer might
            return web.Response(body=json.dumps(body), content_type="application/json")
        if request.path == "/api/system_status/soe":
            return web.json_response(soe)
        if request.path == "/api/system_status/grid_status":
            return web.json_response(grid)
        return web.json_response({"code": 404, "error": "not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    double.url = f"https://127.0.0.1:{port}"
    try:
        yield double
    finally:
        await runner.cleanup()
