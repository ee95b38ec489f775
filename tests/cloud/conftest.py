"""Fixtures for the cloud tests: a self-signed TLS pair and the simulated Owner API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from owner_cloud import Cloud, FakeSite, TlsPair, make_tls_pair, record, serve_asgi

from tegkit.sim.owner_api import CloudTokens, make_owner_api_app


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    return make_tls_pair(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def cloud_factory(tls: TlsPair) -> AsyncIterator[Callable[..., Awaitable[Cloud]]]:
    """Start simulated Owner APIs; keyword arguments go to make_owner_api_app.

    `middleware` wraps the ASGI app (app -> app), e.g. to hold requests back.
    """
    running: list[AsyncGenerator[str, None]] = []

    async def start(
        tokens: CloudTokens | None = None, *, middleware: Any = None, **kw: Any
    ) -> Cloud:
        site = FakeSite()
        tokens = tokens or CloudTokens()
        app = make_owner_api_app(site, tokens, **kw)
        cloud = Cloud("", site, tokens, tls.client_context())
        record(app, cloud)  # sees 401s too
        server = serve_asgi(app if middleware is None else middleware(app), tls)
        running.append(server)
        cloud.base_url = await anext(server)
        return cloud

    yield start
    for server in running:
        await server.aclose()


@pytest.fixture
async def cloud(cloud_factory: Callable[..., Awaitable[Cloud]]) -> Cloud:
    return await cloud_factory()
