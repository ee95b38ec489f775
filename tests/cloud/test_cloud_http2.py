"""The cloud as Tesla runs it today, over real HTTP/2: h2 works, HTTP/1.1 tokens are refused,
tokens are renewed before they expire, rotate, are saved first, and can be revoked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from click.testing import CliRunner, Result
from owner_cloud import SITE_ID, Asgi, Cloud, TlsPair, serve

from tegkit.cli import main
from tegkit.cloud import CloudClient, Tokens, read_token_file, write_token_file
from tegkit.cloud._tokens import EXPIRY_MARGIN_S, TokenFileError
from tegkit.errors import AuthenticationError, ConnectionFailedError, PermissionDeniedError
from tegkit.sim import Simulator
from tegkit.sim.owner_api import CloudTokens

# What Tesla's Owner API answered to tokens refreshed over HTTP/1.1 (June 2026), as reported.
TESLA_403 = {
    "response": None,
    "error": "forbidden, see https://developer.tesla.com/docs/fleet-api",
    "error_description": "",
}
GRANT = {"grant_type": "refresh_token", "client_id": "ownerapi", "scope": "openid"}
EIGHT_HOURS_S = 8 * 3600.0


class Clock:
    """A clock both sides read (Unix seconds), moved only by the test."""

    def __init__(self) -> None:
        self.now_s = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now_s


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(speed=0) as simulator:
        yield simulator


def _ssl(sim: Simulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sim.cafile))


def _sim_client(sim: Simulator, token_file: Path | None = None, **kw: Any) -> CloudClient:
    tokens = sim.cloud_tokens
    return CloudClient(
        tokens.access_token,
        tokens.refresh_token,
        base_url=sim.cloud_url,
        auth_url=sim.cloud_url,
        ssl=_ssl(sim),
        token_file=token_file,
        **kw,
    )


# --- HTTP/2 ---------------------------------------------------------------------------------


async def test_the_client_speaks_http2_to_the_token_endpoint_and_the_api(cloud: Cloud) -> None:
    async with cloud.client() as client:
        await client.refresh()
        await client.live_status(SITE_ID)
        assert client.last_http_version == "HTTP/2"
    # as the server saw it
    assert cloud.http_versions == ["2", "2"]
    assert [s for _, _, s in cloud.seen] == [200, 200]


async def test_http1_is_an_explicit_opt_in(cloud: Cloud) -> None:
    async with cloud.client(http1=True) as client:
        await client.products()
        assert client.last_http_version == "HTTP/1.1"
        assert "HTTP/1.1" in repr(client)
    assert cloud.http_versions == ["1.1"]


async def test_no_silent_fallback_to_http1(tls: TlsPair) -> None:
    # A server that only speaks HTTP/1.1 (aiohttp's): the default client does not quietly
    # downgrade (a token refreshed that way would be refused by Tesla); --http1 reaches it.
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"response": []})

    app = web.Application()
    app.router.add_get("/api/1/products", handle)
    server = serve(app, tls)
    url = await anext(server)
    try:
        token = "access-token-that-must-never-leak"
        async with CloudClient(token, base_url=url, ssl=tls.client_context()) as client:
            with pytest.raises(ConnectionFailedError) as info:
                await client.products()
        assert "/api/1/products" in str(info.value) and token not in str(info.value)
        assert "--http1" in str(info.value)
        assert hits == []
        async with CloudClient(token, base_url=url, ssl=tls.client_context(), http1=True) as h1:
            assert await h1.products() == []
            assert h1.last_http_version == "HTTP/1.1"
        assert hits == ["/api/1/products"]
    finally:
        await server.aclose()


async def test_the_simulator_offers_h2_and_http11_by_alpn(sim: Simulator) -> None:
    context = _ssl(sim)
    context.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.cloud_port, ssl=context)
    chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
    writer.close()
    await writer.wait_closed()
    del reader
    assert chosen == "h2"


async def test_over_http2_the_simulators_cloud_works_end_to_end(sim: Simulator) -> None:
    sim.cloud_tokens.expire_access_token()
    async with _sim_client(sim) as client:
        live = await client.live_status(sim.cloud_site.energy_site_id)
        assert client.last_http_version == "HTTP/2"
    assert live.percentage_charged_app_percent is not None
    assert sim.cloud_tokens.minted_over == "2"
    assert sim.cloud_tokens.refresh_count == 1


# --- HTTP/1.1 refused as Tesla refuses it ---------------------------------------------------------


async def test_our_client_over_http1_fails_exactly_as_users_saw(sim: Simulator) -> None:
    sim.cloud_tokens.expire_access_token()
    async with _sim_client(sim, http1=True) as client:
        # the refresh over HTTP/1.1 is answered; the API then refuses the token it minted
        with pytest.raises(PermissionDeniedError) as info:
            await client.products()
    assert info.value.status == 403
    assert info.value.error == TESLA_403["error"]
    assert "refuses tokens refreshed over HTTP/1.1" in str(info.value)  # and what to do
    assert sim.cloud_tokens.minted_over == "1.1"
    # the same account over HTTP/2 recovers with a refresh
    async with _sim_client(sim) as client:
        await client.refresh()
        assert len(await client.products()) == 1


async def test_a_plain_http1_client_gets_teslas_403_body(sim: Simulator) -> None:
    connector = aiohttp.TCPConnector(ssl=_ssl(sim))
    async with aiohttp.ClientSession(base_url=sim.cloud_url, connector=connector) as http:
        grant = {**GRANT, "refresh_token": sim.cloud_tokens.refresh_token}
        async with http.post("/oauth2/v3/token", json=grant) as resp:
            assert resp.status == 200
            assert resp.version == aiohttp.HttpVersion11
            access = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        async with http.get("/api/1/products", headers=headers) as resp:
            assert resp.status == 403
            assert await resp.json() == TESLA_403
    # the very same token request over HTTP/2 gives a token the API takes
    async with httpx.AsyncClient(base_url=sim.cloud_url, verify=_ssl(sim), http2=True) as h2:
        answer = await h2.post(
            "/oauth2/v3/token", json={**GRANT, "refresh_token": sim.cloud_tokens.refresh_token}
        )
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        resp = await h2.get("/api/1/products", headers=headers)
        assert (resp.http_version, resp.status_code) == ("HTTP/2", 200)


async def test_a_token_minted_over_http1_is_renewed_once_over_http2(sim: Simulator) -> None:
    # tokens saved by an older tool that refreshed over HTTP/1.1: refused until renewed
    async with _sim_client(sim, http1=True) as old_tool:
        await old_tool.refresh()
    async with _sim_client(sim) as client:
        assert len(await client.products()) == 1
        assert len(await client.products()) == 1
        assert client.refresh_count == 1
    assert sim.cloud_tokens.minted_over == "2"


def _always_tesla_403(app: Asgi) -> Asgi:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await app(scope, receive, send)
            return
        body = json.dumps(TESLA_403).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return refuse


async def test_a_refusal_a_renewal_does_not_cure_is_reported_not_retried_forever(
    cloud_factory: Callable[..., Awaitable[Cloud]],
) -> None:
    cloud = await cloud_factory(middleware=_always_tesla_403)
    async with cloud.client() as client:
        for _ in range(3):
            with pytest.raises(PermissionDeniedError) as info:
                await client.products()
            assert info.value.error == TESLA_403["error"]
        assert client.refresh_count == 1
    assert cloud.count("/oauth2/v3/token") == 1


def _teg(env: dict[str, str], *args: str) -> Result:
    clean = {k: None for k in os.environ if k.startswith("TEG_")}
    return CliRunner().invoke(main, list(args), env={**clean, **env}, prog_name="teg")


async def test_teg_cloud_speaks_http2_and_http1_only_with_the_flag(
    sim: Simulator, tmp_path: Path
) -> None:
    env = {
        "TEG_CONFIG": str(tmp_path / "config" / "config.toml"),
        "TEG_CLOUD_URL": sim.cloud_url,
        "TEG_CLOUD_AUTH_URL": sim.cloud_url,
        "TEG_CLOUD_CAFILE": str(sim.cafile),
    }
    tokens = tmp_path / "import.json"
    tokens.write_text(
        json.dumps(
            {
                "access_token": sim.cloud_tokens.access_token,
                "refresh_token": sim.cloud_tokens.refresh_token,
                "expires_in": 3600,
            }
        )
    )
    # the CLI runs its own event loop: in a thread, while this loop serves the simulator
    result = await asyncio.to_thread(_teg, env, "cloud", "token", "import", str(tokens))
    assert result.exit_code == 0, result.stderr
    sim.cloud_tokens.expire_access_token()
    result = await asyncio.to_thread(_teg, env, "cloud", "--http1", "products")
    assert result.exit_code != 0
    assert "forbidden, see https://developer.tesla.com/docs/fleet-api" in result.stderr
    assert "HTTP/1.1" in result.stderr
    assert sim.cloud_tokens.minted_over == "1.1"
    result = await asyncio.to_thread(_teg, env, "--json", "cloud", "products")
    assert result.exit_code == 0, result.stderr
    assert sim.cloud_tokens.minted_over == "2"


# --- renewal before expiry, rotation, the file first ----------------------------------------------


def _written_before_use(
    tokens: CloudTokens, token_file: Path, checks: list[bool]
) -> Callable[[Asgi], Asgi]:
    """An ASGI wrapper: at every API request, does the file hold the refresh token in force?"""

    def wrap(app: Asgi) -> Asgi:
        async def check(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/api/"):
                saved = read_token_file(token_file)
                checks.append(saved.refresh_token == tokens.refresh_token)
            await app(scope, receive, send)

        return check

    return wrap


async def test_tokens_are_renewed_before_they_expire_and_saved_before_use(
    cloud_factory: Callable[..., Awaitable[Cloud]], tmp_path: Path
) -> None:
    clock = Clock()
    token_file = tmp_path / "tokens.json"
    checks: list[bool] = []
    tokens = CloudTokens(clock_s=clock)
    cloud = await cloud_factory(
        tokens=tokens, middleware=_written_before_use(tokens, token_file, checks)
    )
    first = Tokens(tokens.access_token, tokens.refresh_token, clock() + EIGHT_HOURS_S)
    write_token_file(token_file, first)
    async with CloudClient.from_token_file(
        token_file, base_url=cloud.base_url, auth_url=cloud.base_url, ssl=cloud.ssl, clock_s=clock
    ) as client:
        await client.products()
        clock.now_s += EIGHT_HOURS_S - EXPIRY_MARGIN_S + 60  # 4 min left: still valid...
        assert cloud.tokens.access_problem(first.access_token) is None
        await client.products()  # ...but renewed first, never met as a 401
        await client.products()
        assert client.refresh_count == 1
    assert [(p, s) for _, p, s in cloud.seen] == [
        ("/api/1/products", 200),
        ("/oauth2/v3/token", 200),
        ("/api/1/products", 200),
        ("/api/1/products", 200),
    ]
    # rotated: the first refresh token is dead, the file holds the new pair, 0600
    assert cloud.tokens.refresh_token != first.refresh_token
    saved = read_token_file(token_file)
    assert saved.refresh_token == cloud.tokens.refresh_token
    assert saved.access_token == cloud.tokens.access_token
    assert saved.expires_at_s == pytest.approx(clock() + EIGHT_HOURS_S)
    assert _mode(token_file) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["tokens.json"]
    assert checks == [True, True, True]  # every API call came after the file was written


async def test_concurrent_callers_near_expiry_share_one_renewal(
    cloud_factory: Callable[..., Awaitable[Cloud]], tmp_path: Path
) -> None:
    clock = Clock()
    cloud = await cloud_factory(tokens=CloudTokens(clock_s=clock))
    async with cloud.client(
        tmp_path / "t.json", clock_s=clock, expires_at_s=clock() + EIGHT_HOURS_S
    ) as client:
        clock.now_s += EIGHT_HOURS_S - 10
        await asyncio.gather(*(client.live_status(SITE_ID) for _ in range(8)))
        assert client.refresh_count == 1
    assert cloud.count("/oauth2/v3/token") == 1
    assert [s for _, p, s in cloud.seen if "live_status" in p] == [200] * 8


async def test_a_token_file_that_cannot_be_written_is_a_clear_error(
    cloud: Cloud, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    token_file = blocker / "tokens.json"  # its folder is a file: the write must fail
    cloud.tokens.expire_access_token()
    async with cloud.client(token_file) as client:
        with pytest.raises(TokenFileError) as info:
            await client.products()
        # the rotated pair is kept in memory: this process goes on working
        assert len(await client.products()) == 1
    assert str(token_file) in str(info.value)
    for secret in (cloud.tokens.access_token, cloud.tokens.refresh_token):
        assert secret not in str(info.value)
    assert cloud.tokens.refresh_count == 1


async def test_access_tokens_expire_during_a_long_run_on_the_simulated_clock(
    sim: Simulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    site_id = sim.cloud_site.energy_site_id
    first_refresh = sim.cloud_tokens.refresh_token
    async with _sim_client(sim, token_file) as client:
        for _hour in range(10):  # ten simulated hours, one reading an hour
            await client.live_status(site_id)
            await sim.advance(3600)
        await client.live_status(site_id)
        assert client.refresh_count == 1
        assert client.last_http_version == "HTTP/2"
    assert sim.cloud_tokens.refresh_count == 1
    assert sim.cloud_tokens.refresh_token != first_refresh
    assert read_token_file(token_file).refresh_token == sim.cloud_tokens.refresh_token
    assert _mode(token_file) == 0o600


async def test_the_access_ttl_is_configurable(tmp_path: Path) -> None:
    async with Simulator(speed=0, cloud_access_ttl_s=600) as sim:
        async with _sim_client(sim) as client:
            await client.products()
            await sim.advance(601)
            await client.products()
            assert client.refresh_count == 1
        assert sim.cloud_tokens.access_ttl_s == 600


# --- refusal: revoked or expired refresh tokens --------------------------------------------------


async def _revoke(sim: Simulator) -> None:
    connector = aiohttp.TCPConnector(ssl=False)  # the control API of a local test simulator
    headers = {"Authorization": f"Bearer {sim.control_token}"}
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(f"{sim.url}/sim/cloud/revoke", headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def test_revoked_tokens_end_in_an_error_that_says_how_to_get_new_ones(
    sim: Simulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    async with _sim_client(sim, token_file) as client:
        await client.products()
        await _revoke(sim)
        for _ in range(2):  # the second call does not ask the auth host again
            with pytest.raises(AuthenticationError) as info:
                await client.products()
    message = str(info.value)
    assert info.value.error == "invalid_grant"
    assert "revoked" in message
    assert "teg cloud login" in message and "teg cloud token import" in message
    for secret in (sim.cloud_tokens.access_token, sim.cloud_tokens.refresh_token):
        assert secret not in message
    assert sim.cloud_tokens.refresh_count == 0
    assert not token_file.exists()  # nothing half-written


async def test_an_expired_refresh_token_says_how_to_get_new_ones(
    cloud_factory: Callable[..., Awaitable[Cloud]],
) -> None:
    clock = Clock()
    cloud = await cloud_factory(tokens=CloudTokens(refresh_ttl_s=45 * 86400, clock_s=clock))
    async with cloud.client(clock_s=clock) as client:
        clock.now_s += 46 * 86400
        with pytest.raises(AuthenticationError) as info:
            await client.site_info(SITE_ID)
    assert "the refresh token has expired" in str(info.value)
    assert "teg cloud token import" in str(info.value)
    assert cloud.tokens.refresh_count == 0


# --- secrets and shutdown ---------------------------------------------------------------------


async def test_no_token_reaches_the_log_even_at_debug(
    cloud: Cloud, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old = (cloud.tokens.access_token, cloud.tokens.refresh_token)
    cloud.tokens.expire_access_token()
    async with cloud.client(tmp_path / "t.json") as client:
        await client.products()
    assert cloud.tokens.refresh_count == 1
    assert caplog.records  # the log was on
    for secret in (*old, cloud.tokens.access_token, cloud.tokens.refresh_token):
        assert secret not in caplog.text


async def test_the_cloud_server_closes_with_the_simulator(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    sim = Simulator(speed=0)
    await sim.start()
    port = sim.cloud_port
    client = _sim_client(sim)
    await client.products()  # an HTTP/2 connection is open when the simulator closes
    await sim.close()
    await client.close()
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert left == set()
    with socket.socket() as probe, contextlib.suppress(OSError):
        probe.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_token_answers_and_files_share_one_parser(tmp_path: Path) -> None:
    from tegkit.cloud._tokens import TokenFormatError, parse_tokens, tokens_from_grant

    assert parse_tokens(b'{"access_token": "a", "expires_in": 60}', now_s=100.0) == Tokens(
        "a", None, 160.0
    )
    assert parse_tokens({"access_token": "a", "expires_in": 60, "created_at": 5}) == Tokens(
        "a", None, 65.0
    )
    kept = tokens_from_grant({"access_token": "b"}, Tokens("a", "r"), now_s=1.0)
    assert kept == Tokens("b", "r", None)
    for bad, says in (
        ({"access_token": ""}, "access_token"),
        ({"access_token": "a", "refresh_token": 5}, "refresh_token"),
        ({"access_token": "a", "expires_at": True}, "expires_at"),
        ({"access_token": "a", "expires_in": -1}, "expires_in"),
        ([], "object"),
    ):
        with pytest.raises(TokenFormatError, match=says):
            parse_tokens(bad)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"access_token": "a", "refresh_token": "secret-r"}))
    assert read_token_file(path) == Tokens("a", "secret-r", None)
