"""A webhook receiver for the alert tests: a real aiohttp server on 127.0.0.1 that checks
each request's signature the way the docs tell a receiver to, and answers as scripted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tegkit.monitor.alert_delivery import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

SECRET = "receiver-shared-secret-0123456789"
MAX_SKEW_S = 300


@dataclass
class Receiver:
    """A webhook endpoint: answers each request as `script` says (then "ok"), keeps what
    it got and whether the signature was right."""

    url: str = ""
    script: list[str] = field(default_factory=list)
    got: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        expected = (
            "sha256="
            + hmac.new(
                SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        signature = request.headers.get(SIGNATURE_HEADER, "")
        fresh = timestamp.isdigit() and abs(int(timestamp) - _now()) <= MAX_SKEW_S
        action = self.script.pop(0) if self.script else "ok"
        async with self.arrived:
            self.got.append(
                {
                    "valid": hmac.compare_digest(signature, expected) and fresh,
                    "delivery": request.headers.get(DELIVERY_HEADER),
                    "idempotency": request.headers.get("Idempotency-Key"),
                    "body": json.loads(body),
                    "raw": body,
                    "headers": dict(request.headers),
                    "path": request.path,
                    "action": action,
                }
            )
            self.arrived.notify_all()
        if action == "ok":
            return web.Response(status=204)
        if action == "drop":  # the connection cut before any answer
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=204)
        if action == "hang":  # no answer until the test releases it
            await self.release.wait()
            return web.Response(status=204)
        if action.startswith("429"):
            return web.Response(status=429, headers={"Retry-After": action.split(":")[1]})
        if action == "302":
            raise web.HTTPFound("/elsewhere")
        return web.Response(status=int(action))

    async def wait_for(self, count: int) -> None:
        await self.wait_until(lambda got: len(got) >= count)

    async def wait_until(self, pred: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Until `pred(self.got)` holds (woken by each request; a deadline, not a sleep)."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: pred(self.got)), 30)


def _now() -> int:
    return int(time.time())


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    app.router.add_post("/elsewhere", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()
