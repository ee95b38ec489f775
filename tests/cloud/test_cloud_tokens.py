"""Token refresh against the simulated auth host: retry once, rotate, persist 0600, one flight."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from owner_cloud import SITE_ID, Asgi, Cloud

from tegkit.cloud import CloudClient, Tokens, read_token_file, write_token_file
from tegkit.errors import AuthenticationError, InvalidInputError
from tegkit.sim.owner_api import CloudTokens


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_expired_token_is_refreshed_once_and_the_call_retried(
    cloud: Cloud, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    first_access, first_refresh = cloud.tokens.access_token, cloud.tokens.refresh_token
    async with cloud.client(token_file) as client:
        cloud.tokens.expire_access_token()
        live = await client.live_status(SITE_ID)
        assert live.load_power_w == 1450.0
        assert cloud.tokens.refresh_count == 1
        # the client took the rotated pair
        assert client.tokens.access_token == cloud.tokens.access_token != first_access
        assert client.tokens.refresh_token == cloud.tokens.refresh_token != first_refresh
    statuses = [(m, p, s) for m, p, s in cloud.seen]
    assert statuses == [
        ("GET", f"/api/1/energy_sites/{SITE_ID}/live_status", 401),
        ("POST", "/oauth2/v3/token", 200),
        ("GET", f"/api/1/energy_sites/{SITE_ID}/live_status", 200),
    ]
    # persisted: mode 0600, the rotated pair and a future expiry
    assert _mode(token_file) == 0o600
    saved = json.loads(token_file.read_text())
    assert saved["access_token"] == cloud.tokens.access_token
    assert saved["refresh_token"] == cloud.tokens.refresh_token
    assert saved["expires_at"] == pytest.approx(time.time() + cloud.tokens.access_ttl_s, abs=60)
    assert os.listdir(tmp_path) == ["tokens.json"]  # no temporary file left behind


async def test_rotated_refresh_token_is_used_for_the_next_refresh(
    cloud: Cloud, tmp_path: Path
) -> None:
    # The simulator forgets an old refresh token at rotation: a second refresh only works
    # if the client kept the rotated one.
    async with cloud.client(tmp_path / "t.json") as client:
        for _ in range(2):
            cloud.tokens.expire_access_token()
            await client.products()
    assert cloud.tokens.refresh_count == 2


async def test_token_file_round_trip_and_from_token_file(cloud: Cloud, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    async with cloud.client(token_file) as client:
        cloud.tokens.expire_access_token()
        await client.products()
    # a new process: start from the file alone
    async with CloudClient.from_token_file(
        token_file, base_url=cloud.base_url, auth_url=cloud.base_url, ssl=cloud.ssl
    ) as client:
        assert client.tokens == read_token_file(token_file)
        cloud.tokens.expire_access_token()
        assert len(await client.energy_sites()) == 1
    assert cloud.tokens.refresh_count == 2
    assert read_token_file(token_file).refresh_token == cloud.tokens.refresh_token


async def test_passed_expiry_refreshes_before_sending(cloud: Cloud, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    write_token_file(
        token_file,
        Tokens(cloud.tokens.access_token, cloud.tokens.refresh_token, time.time() - 10),
    )
    async with CloudClient.from_token_file(
        token_file, base_url=cloud.base_url, auth_url=cloud.base_url, ssl=cloud.ssl
    ) as client:
        await client.products()
    # no 401 first: the refresh came before the request
    assert [(p, s) for _, p, s in cloud.seen] == [
        ("/oauth2/v3/token", 200),
        ("/api/1/products", 200),
    ]


async def test_refresh_failure_is_an_authentication_error(cloud: Cloud) -> None:
    client = CloudClient(
        cloud.tokens.access_token,
        "a-refresh-token-the-auth-host-never-issued",
        base_url=cloud.base_url,
        auth_url=cloud.base_url,
        ssl=cloud.ssl,
    )
    cloud.tokens.expire_access_token()
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.site_info(SITE_ID)
        # a second call does not storm the auth host with the same dead refresh token
        with pytest.raises(AuthenticationError):
            await client.site_info(SITE_ID)
    assert info.value.error == "invalid_grant"
    assert info.value.path == "/oauth2/v3/token"
    assert "a-refresh-token-the-auth-host-never-issued" not in str(info.value)
    assert cloud.count("/oauth2/v3/token") == 1
    assert cloud.tokens.refresh_count == 0


async def test_without_refresh_token_a_401_is_an_authentication_error(cloud: Cloud) -> None:
    cloud.tokens.expire_access_token()
    async with CloudClient(
        cloud.tokens.access_token, base_url=cloud.base_url, ssl=cloud.ssl
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.products()
    assert info.value.status == 401
    assert info.value.error == "invalid bearer token"
    assert info.value.message == "bearer token expired"
    assert cloud.tokens.access_token not in str(info.value)
    assert cloud.count("/oauth2/v3/token") == 0


async def test_concurrent_requests_share_one_refresh(
    cloud_factory: Callable[..., Awaitable[Cloud]], tmp_path: Path
) -> None:
    concurrent = 8
    arrived = 0
    all_arrived = asyncio.Event()

    def hold_first_wave(app: Asgi) -> Asgi:
        # Answer none of the first wave until all of it has arrived with the stale token,
        # so every request sees a 401 and asks for a refresh at the same time.
        async def held(scope: Any, receive: Any, send: Any) -> None:
            nonlocal arrived
            live = scope["type"] == "http" and scope["path"].endswith("/live_status")
            if live and not all_arrived.is_set():
                arrived += 1
                if arrived == concurrent:
                    all_arrived.set()
                await all_arrived.wait()
            await app(scope, receive, send)

        return held

    cloud = await cloud_factory(middleware=hold_first_wave)
    async with cloud.client(tmp_path / "t.json") as client:
        cloud.tokens.expire_access_token()
        results = await asyncio.gather(*(client.live_status(SITE_ID) for _ in range(concurrent)))
    assert all(r.solar_power_w == 3470.0 for r in results)
    statuses = [s for _, p, s in cloud.seen if p.endswith("/live_status")]
    assert sorted(statuses) == [200] * concurrent + [401] * concurrent
    assert cloud.count("/oauth2/v3/token") == 1
    assert cloud.tokens.refresh_count == 1


async def test_short_lived_tokens_from_the_auth_host_refresh_proactively(
    cloud_factory: Callable[..., Awaitable[Cloud]], tmp_path: Path
) -> None:
    # expires_in of 1 s lies within the client's safety margin: every call refreshes first
    cloud = await cloud_factory(tokens=CloudTokens(access_ttl_s=1))
    async with cloud.client(tmp_path / "t.json") as client:
        cloud.tokens.expire_access_token()
        await client.products()  # 401, refresh, retry
        await client.products()  # expiry known and passed: refresh first
    assert [(p, s) for _, p, s in cloud.seen] == [
        ("/api/1/products", 401),
        ("/oauth2/v3/token", 200),
        ("/api/1/products", 200),
        ("/oauth2/v3/token", 200),
        ("/api/1/products", 200),
    ]


def test_token_file_is_written_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{}")
    path.chmod(0o644)  # an older, too open file is replaced, not reused
    old = os.umask(0o000)
    try:
        write_token_file(path, Tokens("acc", "ref", 123.5))
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == {
        "access_token": "acc",
        "refresh_token": "ref",
        "expires_at": 123.5,
    }
    assert read_token_file(path) == Tokens("acc", "ref", 123.5)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"refresh_token": "r"}',
        '{"access_token": 5}',
        '{"access_token": "a", "expires_at": "soon"}',
    ],
)
def test_bad_token_file_names_the_file_not_the_tokens(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError) as info:
        read_token_file(path)
    assert info.value.field == "token_file"
    assert str(path) in str(info.value)


def test_missing_token_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        CloudClient.from_token_file(tmp_path / "absent.json")


async def test_refresh_on_demand_rotates_and_saves(cloud: Cloud, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    write_token_file(token_file, Tokens(cloud.tokens.access_token, cloud.tokens.refresh_token))
    old_refresh = cloud.tokens.refresh_token
    async with CloudClient.from_token_file(
        token_file, base_url=cloud.base_url, auth_url=cloud.base_url, ssl=cloud.ssl
    ) as client:
        fresh = await client.refresh()
    assert fresh.refresh_token == cloud.tokens.refresh_token != old_refresh
    assert read_token_file(token_file).access_token == cloud.tokens.access_token
    assert [p for _, p, _ in cloud.seen] == ["/oauth2/v3/token"]
