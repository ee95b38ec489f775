"""Helpers for the simulator's network tests: a started Simulator and a plain aiohttp client."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tegkit.sim import Simulator

START = dt.datetime(2024, 6, 1, 19, 0, tzinfo=dt.UTC)  # noon in Los Angeles: the sun is up
CAPTURES = Path(__file__).resolve().parents[3] / "shared/reference/vloschiavo-powerwall2/samples"


@asynccontextmanager
async def simulator(**options: Any) -> AsyncIterator[Simulator]:
    """A simulator with a standing clock (speed 0) unless told otherwise."""
    options.setdefault("speed", 0)
    options.setdefault("start", START)
    async with Simulator(**options) as sim:
        yield sim


# A real gateway's certificate names teg, powerwall and powerpack, not its address: a client
# that verifies it sends one of those names (SNI), and so do these tests.
SNI = "teg"


class Client:
    """Plain HTTPS requests to a simulator, verifying its certificate with its cafile and the
    name a gateway's certificate carries (`SNI`)."""

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session
        self.ssl = ssl.create_default_context(cafile=str(sim.cafile))

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.sim.url + path, data=data, headers=hdrs, ssl=self.ssl, server_hostname=SNI
        ) as resp:
            content = await resp.read()
            parsed: Any = (
                json.loads(content)
                if content and resp.content_type == "application/json"
                else content
            )
            return resp.status, parsed, resp

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        return await self.request("GET", path, **kw)

    async def post(
        self, path: str, body: Any = None, **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        return await self.request("POST", path, body=body, **kw)

    async def login(self, password: str | None = None) -> dict[str, Any]:
        status, body, _ = await self.post(
            "/api/login/Basic",
            {
                "username": "customer",
                "email": self.sim.email,
                "password": self.sim.password if password is None else password,
                "force_sm_off": False,
            },
        )
        assert status == 200, body
        return dict(body)

    async def control(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        status, parsed, _ = await self.request(
            method,
            "/sim" + path,
            body=body,
            raw=raw,
            headers={"Authorization": f"Bearer {self.sim.control_token}"},
        )
        return status, parsed


@asynccontextmanager
async def client(sim: Simulator) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Client(sim, session)


def capture(path: str) -> Any:
    return json.loads((CAPTURES / path).read_text())


def same_shape(ours: Any, theirs: Any, where: str = "$") -> list[str]:
    """Differences in keys and value types between two JSON values (lists: first items)."""
    problems: list[str] = []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: expected an object"]
        if set(ours) != set(theirs):
            problems.append(
                f"{where}: keys differ: ours-only {sorted(set(ours) - set(theirs))}, "
                f"capture-only {sorted(set(theirs) - set(ours))}"
            )
        for key in set(ours) & set(theirs):
            problems += same_shape(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{where}: expected a list"]
        if theirs and ours:
            problems += same_shape(ours[0], theirs[0], f"{where}[0]")
    elif isinstance(theirs, bool):
        if not isinstance(ours, bool):
            problems.append(f"{where}: expected a boolean, got {ours!r}")
    elif isinstance(theirs, int | float):
        if isinstance(ours, bool) or not isinstance(ours, int | float):
            problems.append(f"{where}: expected a number, got {ours!r}")
    elif isinstance(theirs, str) and not isinstance(ours, str):
        problems.append(f"{where}: expected a string, got {ours!r}")
    return problems
