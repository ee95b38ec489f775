"""The Fleet API flavour over real HTTP/2 against the simulated cloud: the application's own
client id, regional hosts, the PKCE login through a loopback redirect, and partner rate limits."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from owner_cloud import SITE_ID, Cloud

from tegkit._headers import MAX_RETRY_AFTER_S
from tegkit.cloud import (
    CloudClient,
    LoginError,
    TokenOrigin,
    Tokens,
    login,
    read_token_file,
    read_token_origin,
    write_token_file,
)
from tegkit.cloud._login import Pkce, new_pkce, s256
from tegkit.cloud._ratelimit import observe
from tegkit.errors import AuthenticationError, InvalidInputError, RateLimitedError
from tegkit.ownerapi import (
    AUTHORIZE_PATH,
    FLEET_API_URLS,
    FLEET_AUTH_URLS,
    FLEET_SCOPE,
    OWNER_API_URL,
    TOKEN_PATH,
)
from tegkit.sim.owner_api import CloudTokens

APP = "my-fleet-app-0a1b2c"
SITE_KEY = f"energy_sites/{SITE_ID}"

Factory = Callable[..., Awaitable[Cloud]]


class Clock:
    """Seconds on a clock only the test moves (the client's and the simulator's limiter)."""

    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def _fleet_client(cloud: Cloud, token_file: Path | None = None, **kw: Any) -> CloudClient:
    # region "eu" with both hosts overridden to the simulator: nothing leaves loopback
    return CloudClient(
        cloud.tokens.access_token,
        cloud.tokens.refresh_token,
        flavour="fleet",
        client_id=APP,
        region="eu",
        base_url=cloud.base_url,
        auth_url=cloud.base_url,
        ssl=cloud.ssl,
        token_file=token_file,
        **kw,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- flavours -------------------------------------------------------------------------------


def test_hosts_follow_flavour_and_region_without_contacting_them() -> None:
    owner = CloudClient("at", "rt")
    assert owner.flavour == "owner" and OWNER_API_URL in repr(owner)
    assert owner.origin == TokenOrigin()  # the Owner API stays the default
    for region in ("na", "eu", "cn"):
        fleet = CloudClient("at", "rt", flavour="fleet", client_id=APP, region=region)
        assert FLEET_API_URLS[region] in repr(fleet)
        assert fleet._keeper._auth_url == FLEET_AUTH_URLS[region]
        assert fleet.origin.client_id == APP and fleet.origin.region == region


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flavour": "fleet"}, "client_id"),
        ({"flavour": "fleet", "client_id": "  "}, "client_id"),
        ({"flavour": "partner"}, "flavour"),
        ({"flavour": "fleet", "client_id": APP, "region": "us"}, "region"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"flavour": "fleet", "client_id": APP, "client_secret": ""}, "client_secret"),
        ({"rate_limit_wait_s": -1}, "rate_limit_wait_s"),
    ],
)
def test_bad_flavour_settings_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        CloudClient("at", "rt", **kwargs)
    assert caught.value.field == field


async def test_both_flavours_read_the_same_site_over_h2(cloud_factory: Factory) -> None:
    owner_cloud = await cloud_factory()
    async with owner_cloud.client() as owner:
        owner_live = await owner.live_status(SITE_ID)
        assert owner.last_http_version == "HTTP/2"
        assert owner.last_rate_limit is None  # Tesla's app is not a rate-limited partner

    fleet_cloud = await cloud_factory(tokens=CloudTokens(client_id=APP))
    async with _fleet_client(fleet_cloud) as fleet:
        fleet_live = await fleet.live_status(SITE_ID)
        info = await fleet.site_info(SITE_ID)
        assert fleet.last_http_version == "HTTP/2"
        assert fleet.last_rate_limit is not None
        assert fleet.last_rate_limit.limit == 60 and fleet.last_rate_limit.remaining == 58
        assert fleet.rate_limits[SITE_KEY].remaining == 58
    assert fleet_live.percentage_charged_app_percent == owner_live.percentage_charged_app_percent
    assert info.site_name == "My Home"
    assert fleet_cloud.http_versions == ["2", "2"]


async def test_fleet_refresh_names_the_application_and_keeps_it_in_the_file(
    cloud_factory: Factory, tmp_path: Path
) -> None:
    cloud = await cloud_factory(tokens=CloudTokens(client_id=APP))
    token_file = tmp_path / "cloud" / "fleet.json"
    cloud.tokens.expire_access_token()
    async with _fleet_client(cloud, token_file, client_secret="s3cret-value") as client:
        await client.live_status(SITE_ID)
        assert client.refresh_count == 1
    assert cloud.count(TOKEN_PATH) == 1
    assert _mode(token_file) == 0o600 and _mode(token_file.parent) == 0o700
    stored = json.loads(token_file.read_text())
    assert stored["flavour"] == "fleet" and stored["client_id"] == APP
    assert stored["region"] == "eu" and stored["base_url"] == cloud.base_url
    assert stored["access_token"] == cloud.tokens.access_token
    assert "s3cret-value" not in token_file.read_text()  # the secret never lands in the file

    # a client built from the file speaks for the same application to the same hosts
    cloud.tokens.expire_access_token()
    async with CloudClient.from_token_file(token_file, ssl=cloud.ssl) as again:
        assert again.origin == read_token_origin(token_file)
        await again.live_status(SITE_ID)
        assert again.refresh_count == 1


async def test_an_owner_refresh_cannot_renew_fleet_tokens(cloud_factory: Factory) -> None:
    # The refresh grant must carry the application's client id: Tesla's app id is refused.
    cloud = await cloud_factory(tokens=CloudTokens(client_id=APP))
    cloud.tokens.expire_access_token()
    async with cloud.client() as owner:
        with pytest.raises(AuthenticationError) as caught:
            await owner.live_status(SITE_ID)
    assert caught.value.error == "invalid_client"


def test_token_file_without_origin_is_the_owner_api(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_token_file(path, Tokens("at", "rt", None))
    assert read_token_origin(path) == TokenOrigin()
    path.write_text(json.dumps({"access_token": "secret-access", "flavour": "fleet"}))
    with pytest.raises(InvalidInputError) as caught:
        read_token_origin(path)
    assert "client_id" in str(caught.value) and "secret-access" not in str(caught.value)


# --- rate limits ----------------------------------------------------------------------------


async def test_nothing_is_sent_while_remaining_is_zero_before_the_reset(
    cloud_factory: Factory,
) -> None:
    clock = Clock()
    cloud = await cloud_factory(
        tokens=CloudTokens(client_id=APP), fleet_rate_limit_per_minute=2, rate_clock_s=clock
    )
    async with _fleet_client(cloud, clock_s=clock) as client:
        await client.live_status(SITE_ID)
        await client.site_info(SITE_ID)
        state = client.rate_limits[SITE_KEY]
        assert (state.limit, state.remaining, state.reset_at_s) == (2, 0, clock.now_s + 60)
        sent = cloud.count()
        with pytest.raises(RateLimitedError) as caught:
            await client.live_status(SITE_ID)
        assert cloud.count() == sent  # refused here, nothing reached the cloud
        assert caught.value.retry_after_s == 60
        clock.now_s += 30
        with pytest.raises(RateLimitedError) as caught:
            await client.site_info(SITE_ID)
        assert caught.value.retry_after_s == 30 and cloud.count() == sent
        clock.now_s += 30  # the window resets on both sides
        await client.live_status(SITE_ID)
        assert cloud.count() == sent + 1
        assert client.rate_limits[SITE_KEY].remaining == 1


async def test_a_429_retry_after_is_honoured_per_site_and_capped_at_an_hour(
    cloud_factory: Factory,
) -> None:
    clock = Clock()
    cloud = await cloud_factory(
        tokens=CloudTokens(client_id=APP),
        fleet_rate_limit_per_minute=1,
        rate_limit_window_s=86_400,  # a day: the simulator asks for Retry-After: 86400
        rate_clock_s=clock,
    )
    async with _fleet_client(cloud, clock_s=clock) as first:
        await first.live_status(SITE_ID)  # spends the one request
    async with _fleet_client(cloud, clock_s=clock) as client:  # knows nothing of the limit
        with pytest.raises(RateLimitedError) as caught:
            await client.live_status(SITE_ID)
        assert cloud.seen[-1][2] == 429
        assert caught.value.retry_after_s == MAX_RETRY_AFTER_S  # 86400 capped to an hour
        state = client.rate_limits[SITE_KEY]
        assert state.retry_at_s == clock.now_s + MAX_RETRY_AFTER_S
        sent = cloud.count()
        clock.now_s += 600
        with pytest.raises(RateLimitedError) as caught:
            await client.live_status(SITE_ID)
        assert caught.value.retry_after_s == MAX_RETRY_AFTER_S - 600
        assert cloud.count() == sent  # failed fast, nothing sent
        # another site's limits are its own: the account's product list is still asked
        with pytest.raises(RateLimitedError):
            await client.products()
        assert cloud.count() == sent + 1


async def test_a_short_wait_is_waited_instead_of_refused(cloud_factory: Factory) -> None:
    # One request per 0.2 s; the simulator states a reset of 1 s (whole seconds, at least 1),
    # within the 5 s the client may wait: the call waits for the reset and then goes.
    cloud = await cloud_factory(
        tokens=CloudTokens(client_id=APP), fleet_rate_limit_per_minute=1, rate_limit_window_s=0.2
    )
    async with _fleet_client(cloud, rate_limit_wait_s=5) as client:
        await client.live_status(SITE_ID)
        assert client.rate_limits[SITE_KEY].remaining == 0
        await client.live_status(SITE_ID)
    assert [status for _, _, status in cloud.seen] == [200, 200]


# --- login (authorization code with PKCE) ---------------------------------------------------


class Browser:
    """Plays the user's browser: opens the authorize URL and follows its redirect."""

    def __init__(self, cloud: Cloud, tamper: Callable[[str], str] | None = None) -> None:
        self.cloud = cloud
        self.tamper = tamper
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.callback_status: int | None = None
        self.second_visit: BaseException | None = None

    def show(self, url: str) -> None:
        self.url.set_result(url)

    async def run(self) -> None:
        url = await self.url
        async with httpx.AsyncClient(verify=self.cloud.ssl, http2=True) as tesla:
            approved = await tesla.get(url)
        assert approved.status_code == 302
        location = approved.headers["location"]
        assert location.startswith("http://127.0.0.1:")
        if self.tamper is not None:
            location = self.tamper(location)
        async with httpx.AsyncClient() as local:
            answer = await local.get(location)
            self.callback_status = answer.status_code
            # one answer only: the callback server is gone once the login has its code
            for _ in range(200):
                try:
                    await local.get(location)
                except httpx.TransportError as exc:  # refused, or cut while closing
                    self.second_visit = exc
                    return
                await asyncio.sleep(0.01)  # polling the condition "server closed", bounded


async def _login(cloud: Cloud, token_file: Path, browser: Browser | None, **kw: Any) -> Tokens:
    show = browser.show if browser is not None else (lambda url: None)
    task = asyncio.create_task(browser.run()) if browser is not None else None
    try:
        return await login(
            origin=TokenOrigin("fleet", APP, "eu", cloud.base_url, cloud.base_url),
            authorize_base_url=cloud.base_url + AUTHORIZE_PATH,
            auth_url=cloud.base_url,
            token_file=token_file,
            show_url=show,
            scope=FLEET_SCOPE,
            audience=cloud.base_url,
            ssl_context=cloud.ssl,
            **kw,
        )
    finally:
        if task is not None:
            await task


async def test_login_with_pkce_mints_fleet_tokens_and_saves_them_0600(
    cloud_factory: Factory, tmp_path: Path
) -> None:
    cloud = await cloud_factory()
    browser = Browser(cloud)
    token_file = tmp_path / "cfg" / "cloud" / "default.json"
    tokens = await _login(cloud, token_file, browser)
    assert browser.callback_status == 200 and browser.second_visit is not None
    query = parse_qs(urlsplit(browser.url.result()).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [APP]
    assert query["scope"] == [FLEET_SCOPE]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["redirect_uri"][0].endswith("/callback")

    assert cloud.tokens.client_id == APP and cloud.tokens.fleet
    assert tokens.access_token == cloud.tokens.access_token
    assert _mode(token_file) == 0o600
    assert read_token_file(token_file) == tokens
    assert read_token_origin(token_file).client_id == APP
    async with CloudClient.from_token_file(token_file, ssl=cloud.ssl) as client:
        await client.live_status(SITE_ID)
        assert client.last_rate_limit is not None  # a fleet token: partner limits apply


async def test_a_foreign_state_fails_the_login_and_saves_nothing(
    cloud_factory: Factory, tmp_path: Path
) -> None:
    cloud = await cloud_factory()
    browser = Browser(cloud, tamper=lambda url: url.replace("state=", "state=x"))
    token_file = tmp_path / "t.json"
    with pytest.raises(LoginError, match="state"):
        await _login(cloud, token_file, browser)
    assert browser.callback_status == 400
    assert not token_file.exists()
    assert cloud.count(TOKEN_PATH) == 0  # the code was never exchanged


async def test_a_wrong_verifier_is_refused_like_oauth(
    cloud_factory: Factory, tmp_path: Path
) -> None:
    cloud = await cloud_factory()
    other = new_pkce()
    token_file = tmp_path / "t.json"
    with pytest.raises(AuthenticationError) as caught:
        await _login(cloud, token_file, Browser(cloud), pkce=Pkce("v" * 64, other.challenge))
    assert caught.value.status == 400 and caught.value.error == "invalid_grant"
    assert "verifier" in str(caught.value) and "v" * 64 not in str(caught.value)
    assert not token_file.exists()
    assert cloud.tokens.client_id != APP  # nothing was minted


async def test_no_browser_means_a_clear_time_out(cloud_factory: Factory, tmp_path: Path) -> None:
    cloud = await cloud_factory()
    with pytest.raises(LoginError, match=r"no answer from the browser within 0\.3 s"):
        await _login(cloud, tmp_path / "t.json", None, timeout_s=0.3)
    assert cloud.count() == 0 and not (tmp_path / "t.json").exists()


async def test_authorize_refuses_foreign_redirects_and_codes_work_once(
    cloud_factory: Factory,
) -> None:
    cloud = await cloud_factory()
    pair = new_pkce()
    fields = {
        "response_type": "code",
        "client_id": APP,
        "scope": FLEET_SCOPE,
        "state": "s1",
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    authorize = cloud.base_url + AUTHORIZE_PATH
    # Redirects are never followed (follow_redirects=False): the foreign addresses below are
    # only text the simulator must refuse; reserved names and the documentation range
    # (RFC 2606, RFC 5737), so nothing could be reached even by mistake.
    async with httpx.AsyncClient(verify=cloud.ssl, http2=True, follow_redirects=False) as http:
        for foreign in (
            "https://example.com:443/cb",
            "http://192.0.2.1:80/cb",
            "http://127.0.0.1/",
        ):
            refused = await http.get(
                authorize + "?" + urlencode({**fields, "redirect_uri": foreign})
            )
            assert refused.status_code == 400 and "location" not in refused.headers
        redirect = "http://127.0.0.1:9/callback"
        plain = await http.get(
            authorize
            + "?"
            + urlencode({**fields, "redirect_uri": redirect, "code_challenge_method": "plain"})
        )
        assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]
        approved = await http.get(authorize + "?" + urlencode({**fields, "redirect_uri": redirect}))
        code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
        grant = {
            "grant_type": "authorization_code",
            "client_id": APP,
            "code": code,
            "code_verifier": pair.verifier,
            "redirect_uri": redirect,
        }
        first = await http.post(cloud.base_url + TOKEN_PATH, data=grant)
        assert first.status_code == 200 and first.json()["refresh_token"]
        again = await http.post(cloud.base_url + TOKEN_PATH, data=grant)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert s256(pair.verifier) == pair.challenge


@pytest.mark.parametrize(
    ("headers", "retry_after", "status", "wait_s"),
    [
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, None, 200, 30.0),
        ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "30"}, None, 200, 0.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1e400"}, None, 200, 0.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "-5"}, None, 200, 0.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "nan"}, None, 200, 0.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999"}, None, 200, 3600.0),
        ({"x-ratelimit-remaining": "-1", "x-ratelimit-reset": "30"}, None, 200, 0.0),
        ({}, "inf", 429, 60.0),  # unusable Retry-After: a minute
        ({}, "120", 429, 120.0),
        ({}, "86400", 429, 3600.0),
        ({"x-ratelimit-reset": "15"}, None, 429, 15.0),
    ],
)
def test_stated_limits_are_read_defensively(
    headers: dict[str, str], retry_after: str | None, status: int, wait_s: float
) -> None:
    state = observe(None, status=status, headers=headers, retry_after=retry_after, now_s=100.0)
    assert (0.0 if state is None else state.wait_s(100.0)) == wait_s


def test_a_reset_given_as_a_unix_time_counts_from_now() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 120)}
    state = observe(None, status=200, headers=headers, retry_after=None, now_s=0.0)
    assert state is not None and 0.0 < state.wait_s(0.0) <= 120.0
