"""Login over real HTTPS: cookies and token, lazy login, one re-login, no storms, session file."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tegkit.client import Gateway
from tegkit.errors import AuthenticationError, PermissionDeniedError, RateLimitedError

PASSWORD = "hunter2-secret"


@pytest.mark.parametrize("accept", ["cookie", "token"])
async def test_lazy_login_with_cookie_or_token(
    accept: str, fake: Any, address: str, pinned: Any
) -> None:
    fake.accept = accept
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        assert not gw.logged_in
        first = await gw.meters()
        second = await gw.operation()
    assert first is not None and second.mode
    # The first request met a 401 and asked for the login; later ones carry the session.
    assert fake.logins == 1
    assert fake.hits["GET /api/meters"] == 2
    assert fake.hits["GET /api/operation"] == 1


async def test_explicit_login_validates_at_once(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        assert gw.logged_in
    assert fake.logins == 1
    body = dict(fake.bodies[0][1])
    assert body == {
        "username": "customer",
        "email": "",
        "password": PASSWORD,
        "force_sm_off": False,
    }


async def test_expired_session_logs_in_again_once(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        fake.expire_sessions()
        operation = await gw.operation()
    assert operation.mode == "autonomous"
    assert fake.logins == 2
    assert fake.hits["GET /api/operation"] == 2


async def test_second_401_is_an_error_without_more_logins(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    unauthorised = fault(status=401, body=b'{"code":401,"error":"bad credentials","message":"x"}')
    fake.fault("GET /api/operation", unauthorised, unauthorised)
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        with pytest.raises(AuthenticationError) as caught:
            await gw.operation()
        assert caught.value.status == 401
        assert fake.logins == 2  # the first login and exactly one re-login
        assert fake.hits["GET /api/operation"] == 2
        # A fresh session was refused: the next 401 backs off instead of logging in again.
        fake.fault("GET /api/operation", unauthorised)
        with pytest.raises(AuthenticationError, match="next try allowed"):
            await gw.operation()
    assert fake.logins == 2
    assert fake.hits["GET /api/operation"] == 3


async def test_a_403_that_a_fresh_session_meets_is_not_logged_in_for_again(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    forbidden = fault(status=403, body=b'{"code":403,"error":"forbidden","message":"role"}')
    fake.fault("GET /api/customer", forbidden, forbidden, forbidden)
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        for _ in range(2):
            with pytest.raises(PermissionDeniedError):
                await gw.customer()
        assert fake.logins == 2  # one re-login on the first 403, none on the second
        assert fake.hits["GET /api/customer"] == 3
        assert (await gw.operation()).mode  # the session itself is fine
    assert fake.logins == 2


async def test_installer_only_403_does_not_log_in_again(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("POST /api/operation", fault(status=403))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        with pytest.raises(PermissionDeniedError):
            await gw.set_operation(mode="backup")
    assert fake.logins == 1
    assert fake.hits["POST /api/operation"] == 1


async def test_wrong_password_is_one_login_for_many_callers(
    fake: Any, address: str, pinned: Any
) -> None:
    async with Gateway(address, password="wrong", tls=pinned) as gw:
        results = await asyncio.gather(*(gw.operation() for _ in range(8)), return_exceptions=True)
        assert all(isinstance(r, AuthenticationError) for r in results), results
        assert fake.logins == 1
        # Backing off: an explicit login now fails at once, without a request.
        with pytest.raises(AuthenticationError, match="next try allowed"):
            await gw.login()
    assert fake.logins == 1
    assert "wrong" not in " ".join(str(r) for r in results)


async def test_login_rate_limit_cools_login_down(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("POST /api/login/Basic", fault(status=429, headers={"Retry-After": "120"}))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(RateLimitedError) as first:
            await gw.login()
        with pytest.raises(RateLimitedError) as second:
            await gw.login()
        # Endpoints that need no login still work while login cools down.
        assert (await gw.sitemaster()).running
    assert first.value.retry_after_s == 120
    assert second.value.retry_after_s is not None and 0 < second.value.retry_after_s <= 120
    assert fake.logins == 1


async def test_logout_ends_the_session(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        await gw.logout()
        assert not gw.logged_in
    assert fake.hits["GET /api/logout"] == 1
    assert not fake.tokens


async def test_session_file_is_private_and_reused(
    fake: Any, address: str, pinned: Any, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "session.json"
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        await gw.login()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["token"] in fake.tokens
    assert PASSWORD not in path.read_text()
    # A new client starts from the saved session: no login needed.
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        await gw.operation()
    assert fake.logins == 1
    assert fake.hits["GET /api/operation"] == 1


async def test_concurrent_first_requests_all_use_the_saved_session(
    fake: Any, address: str, pinned: Any, tmp_path: Path
) -> None:
    path = tmp_path / "session.json"
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        await gw.login()
    # No password this time: only the saved session can answer these.
    async with Gateway(address, tls=pinned, session_file=path) as gw:
        await asyncio.gather(gw.operation(), gw.installer(), gw.customer(), gw.meters())
    assert fake.logins == 1


async def test_borrowed_session_is_left_open(fake: Any, address: str, pinned: Any) -> None:
    # A default cookie jar ignores cookies from IP hosts; the session still works.
    fake.accept = "cookie"
    async with aiohttp.ClientSession() as session:
        async with Gateway(address, password=PASSWORD, tls=pinned, session=session) as gw:
            await gw.operation()
        assert not session.closed
    assert fake.logins == 1


async def test_no_secret_in_repr_or_errors(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        token = next(iter(fake.tokens))
        fake.password = "changed"
        fake.expire_sessions()
        with pytest.raises(AuthenticationError) as caught:
            await gw.operation()
        text = " ".join([repr(gw), repr(gw._auth), repr(gw._auth.state), str(caught.value)])
    assert PASSWORD not in text and token not in text
