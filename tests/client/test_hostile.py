"""A broken or hostile gateway: oversized answers, unusable session values, absurd Retry-After,
paths that need encoding. Every case ends in a typed error, never a crash or unbounded use."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import logging
import math
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegkit import models
from tegkit._headers import MAX_RETRY_AFTER_S, retry_after_s
from tegkit.client import Gateway
from tegkit.client._transport import DEFAULT_MAX_RESPONSE_BYTES, quote_path, quote_segment
from tegkit.errors import (
    AuthenticationError,
    InvalidInputError,
    ParseError,
    RateLimitedError,
    ResponseTooLargeError,
)

PASSWORD = "hunter2-secret"
BRAND = "SolarEdge Technologies"


# --- 1. answers larger than the limit ------------------------------------------------------


async def test_an_endless_answer_stops_at_the_limit(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    limit = 256 * 1024
    fake.fault("GET /api/status", fault(endless=True))
    async with Gateway(address, tls=pinned, max_response_bytes=limit, timeout_s=30) as gw:
        with pytest.raises(ResponseTooLargeError) as caught:
            await gw.status()
        assert caught.value.endpoint == "GET /api/status"
        assert caught.value.limit_bytes == limit
        assert str(limit) in str(caught.value) and "GET /api/status" in str(caught.value)
        assert isinstance(caught.value, ParseError)
        # The connection was closed, not kept: the next request works.
        assert (await gw.status()).version
    # The server could write only what the sockets buffer beyond the limit before the client
    # hung up; reading on until the 30 s timeout would have moved gigabytes.
    assert fake.streamed.done.wait(10)
    assert fake.streamed.sent_bytes < 64 * 1024 * 1024
    assert fake.hits["GET /api/status"] == 2  # a too-large answer is not asked again


async def test_an_announced_oversize_body_is_refused_before_reading(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    big = b"[" + b"1," * (DEFAULT_MAX_RESPONSE_BYTES // 2) + b"1]"
    fake.fault("GET /api/meters", fault(status=200, body=big))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        with pytest.raises(ResponseTooLargeError) as caught:
            await gw.meters()
        assert caught.value.size_bytes == len(big)
        assert caught.value.limit_bytes == DEFAULT_MAX_RESPONSE_BYTES
        assert len(await gw.meters()) >= 1  # a normal answer on the next try


async def test_a_compressed_bomb_is_limited_by_its_decoded_size(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    decoded = b"[" + b"0," * (4 * 1024 * 1024) + b"0]"  # 8 MiB that compress to a few KiB
    packed = gzip.compress(decoded)
    assert len(packed) < 100 * 1024
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    fake.fault("GET /api/status", fault(status=200, body=packed, headers=headers))
    async with Gateway(address, tls=pinned, max_response_bytes=1024 * 1024) as gw:
        with pytest.raises(ResponseTooLargeError):
            await gw.status()


async def test_the_limit_is_configurable(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned, max_response_bytes=1024) as gw:
        assert gw.max_response_bytes == 1024
        with pytest.raises(ResponseTooLargeError, match="1024 bytes"):
            await gw.solar_brands()  # about 6 KiB: fine by default, too large here
        assert (await gw.sitemaster()).running  # a small answer passes
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        assert len(await gw.solar_brands()) > 100


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4MiB"])
def test_a_bad_limit_is_refused(bad: Any, address: str) -> None:
    with pytest.raises(InvalidInputError, match="max_response_bytes"):
        Gateway(address, max_response_bytes=bad)


# --- 2. session values that cannot go into a header ----------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "abc\r\nX-Injected: 1",
        "abc\ndef",
        "tab\there",
        "space inside",
        "nul\x00",
        "é-not-ascii",
        "x" * 5000,
    ],
)
async def test_a_token_that_is_no_header_value_is_an_authentication_error(
    token: str, fake: Any, address: str, pinned: Any, tmp_path: Path
) -> None:
    fake.login_tokens.append(token)
    path = tmp_path / "session.json"
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        with pytest.raises(AuthenticationError) as caught:
            await gw.login()
        assert not gw.logged_in
        # The back-off of a failed login applies; later requests fail typed, never ValueError.
        with pytest.raises(AuthenticationError):
            await gw.operation()
    assert "unusable login answer" in str(caught.value)
    assert token not in str(caught.value)
    assert not path.exists()  # never saved for later commands to trip over
    assert fake.hits["GET /api/operation"] == 1  # sent without the session, refused


@pytest.mark.parametrize("cookie", ['"a b"', '"a;b"', '"quote\\"d"'])
async def test_a_cookie_that_is_no_header_value_is_an_authentication_error(
    cookie: str, fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    login = json.dumps({"token": "good-token"}).encode()
    header = {"Set-Cookie": f"AuthCookie={cookie}; Path=/", "Content-Type": "application/json"}
    fake.fault("POST /api/login/Basic", fault(status=200, body=login, headers=header))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(AuthenticationError, match="AuthCookie cookie"):
            await gw.login()
        assert not gw.logged_in


async def test_a_good_login_after_a_bad_token(fake: Any, address: str, pinned: Any) -> None:
    fake.login_tokens.append("bad\r\ntoken")
    clock = Clock()
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        gw._auth._clock = clock
        with pytest.raises(AuthenticationError):
            await gw.login()
        clock.now_s += 60  # past the login back-off
        await gw.login()
        assert (await gw.operation()).mode
    assert fake.logins == 2


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        "[1, 2]",
        json.dumps({"url": "URL", "token": "abc\r\nX-Evil: 1", "cookies": {}}),
        json.dumps({"url": "URL", "token": None, "cookies": {"AuthCookie": "a\nb"}}),
        json.dumps({"url": "URL", "token": None, "cookies": {"Other": "x"}}),
        json.dumps({"url": "URL", "token": None, "cookies": ["AuthCookie"]}),
        json.dumps({"url": "URL", "token": 42, "cookies": {}}),
        "\udcff",
        "{" + " " * 70_000 + "}",
    ],
)
async def test_a_broken_session_file_is_discarded_with_a_warning(
    content: str,
    fake: Any,
    address: str,
    pinned: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "session.json"
    url = f"https://{address}/"
    path.write_bytes(content.replace("URL", url).encode("utf-8", "surrogateescape"))
    caplog.set_level(logging.WARNING, logger="tegkit.client")
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        await gw.logout()  # always works: nothing usable was kept, so nothing is sent
    assert fake.hits["GET /api/logout"] == 0
    assert not path.exists()
    assert any("session file" in r.getMessage() for r in caplog.records)
    assert "X-Evil" not in caplog.text
    # And a request after a discarded file logs in afresh and keeps the new session.
    path.write_bytes(content.replace("URL", url).encode("utf-8", "surrogateescape"))
    async with Gateway(address, password=PASSWORD, tls=pinned, session_file=path) as gw:
        assert (await gw.operation()).mode
    assert json.loads(path.read_text())["token"] in fake.tokens


async def test_another_gateways_session_file_is_left_alone(
    address: str, pinned: Any, tmp_path: Path
) -> None:
    path = tmp_path / "session.json"
    other = {"url": "https://teg:1/", "token": "other", "cookies": {}}
    path.write_text(json.dumps(other))
    async with Gateway(address, tls=pinned, session_file=path) as gw:
        assert (await gw.sitemaster()).running
        assert not gw.logged_in
    assert json.loads(path.read_text()) == other


# --- 3. Retry-After -------------------------------------------------------------------------


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("1e9", MAX_RETRY_AFTER_S),
        ("3601", MAX_RETRY_AFTER_S),
        ("inf", None),
        ("Infinity", None),
        ("-inf", None),
        ("nan", None),
        ("1e400", None),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_S),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Mon, 99 Foo 2024 99:99:99 GMT", None),
    ],
)
def test_retry_after_is_bounded(value: str | None, expected: float | None) -> None:
    assert retry_after_s(value, now_s=1_000_000) == expected


def test_retry_after_date() -> None:
    later = email.utils.formatdate(1_000_090, usegmt=True)
    assert retry_after_s(later, now_s=1_000_000) == pytest.approx(90)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.floats().map(repr), st.integers().map(str)))
def test_retry_after_is_none_or_a_bounded_wait(value: str) -> None:
    wait_s = retry_after_s(value, now_s=1_000_000)
    assert wait_s is None or (math.isfinite(wait_s) and 0 <= wait_s <= MAX_RETRY_AFTER_S)


@pytest.mark.parametrize(("value", "blocked_s"), [("inf", 30.0), ("1e9", MAX_RETRY_AFTER_S)])
async def test_a_login_429_with_an_absurd_retry_after_does_not_block_for_good(
    value: str, blocked_s: float, fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("POST /api/login/Basic", fault(status=429, headers={"Retry-After": value}))
    clock = Clock()
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        gw._auth._clock = clock
        with pytest.raises(RateLimitedError) as first:
            await gw.login()
        assert first.value.retry_after_s in (None, blocked_s)
        clock.now_s += blocked_s - 1
        with pytest.raises(RateLimitedError):
            await gw.login()  # still cooling down, nothing sent
        clock.now_s += 2
        await gw.login()
        assert gw.logged_in
    assert fake.logins == 2


async def test_an_endpoint_429_with_inf_cools_down_for_the_default(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("GET /api/status", fault(status=429, headers={"Retry-After": "inf"}))
    async with Gateway(address, tls=pinned) as gw:
        with pytest.raises(RateLimitedError) as caught:
            await gw.status()
        assert caught.value.retry_after_s is None
        with pytest.raises(RateLimitedError) as again:
            await gw.status()
    assert again.value.retry_after_s is not None and 0 < again.value.retry_after_s <= 30


# --- 4. paths with characters that need encoding ------------------------------------------


async def test_a_brand_with_a_space_is_sent_encoded(
    fake: Any, address: str, pinned: Any, captures_dir: Path
) -> None:
    expected = json.loads((captures_dir / "solar_edge_models.json").read_text())
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        typed = await gw.solar_brand_models(BRAND)
        plain = await gw.request("GET", f"/api/solars/brands/{BRAND}")
        encoded = await gw.request("GET", "/api/solars/brands/SolarEdge%20Technologies")
    assert plain == encoded == expected
    assert all(isinstance(item, models.Solar) for item in typed)
    assert [item.model for item in typed] == [item["model"] for item in expected]
    assert typed[0].power_rating_w == expected[0]["power_rating_watts"]
    assert fake.hits[f"GET /api/solars/brands/{BRAND}"] == 4  # the first met a 401


@pytest.mark.parametrize("brand", ["", "  ", "a\nb", "x" * 201, None])
async def test_a_bad_brand_is_refused_before_sending(
    brand: Any, fake: Any, address: str, pinned: Any
) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(InvalidInputError, match="brand"):
            await gw.solar_brand_models(brand)
    assert fake.total == 0


async def test_a_brand_with_a_slash_or_percent_stays_one_segment(
    fake: Any, address: str, pinned: Any
) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        for brand in ("A/B Solar", "100% Sun"):
            assert await gw.solar_brand_models(brand) == []
    # The double answers [] for any brand it has no capture of, by its decoded path.
    assert fake.hits["GET /api/solars/brands/A/B Solar"] == 1
    assert fake.hits["GET /api/solars/brands/100% Sun"] == 1


def test_quote_path_forms() -> None:
    assert quote_path("/api/meters/aggregates") == "/api/meters/aggregates"
    assert quote_path(f"/brands/{BRAND}") == "/brands/SolarEdge%20Technologies"
    assert quote_path("/api/solars/brands/SolarEdge%20Technologies").count("%") == 1
    assert quote_path("/a/100%/b") == "/a/100%25/b"
    assert quote_path("/a/Ünï") == "/a/%C3%9Cn%C3%AF"
    assert quote_segment("A/B") == "A%2FB"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_quote_path_round_trips_and_is_not_applied_twice(text: str) -> None:
    path = "/api/x/" + text
    quoted = quote_path(path)
    assert quote_path(quoted) == quoted
    assert all(33 <= ord(ch) < 127 for ch in quoted)
    if "%" not in text and not any(0xD800 <= ord(ch) < 0xE000 for ch in text):
        assert urllib.parse.unquote(quoted) == path


# --- 10. each request is logged, no secret ever -------------------------------------------


async def test_requests_are_logged_without_secrets(
    fake: Any, address: str, pinned: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="tegkit")
    async with Gateway(
        address, password=PASSWORD, tls=pinned, session_file=tmp_path / "s.json"
    ) as gw:
        await gw.operation()
        await gw.set_site_name("Lake House")
        await asyncio.gather(gw.status(), gw.meters_aggregates())
    lines = [r.getMessage() for r in caplog.records if r.name == "tegkit.client"]
    assert any(line.startswith("GET /api/operation -> 401 in ") for line in lines), lines
    assert any(line.startswith("POST /api/login/Basic -> 200 in ") for line in lines), lines
    assert any(line.startswith("GET /api/operation -> 200 in ") for line in lines), lines
    assert any(line.startswith("POST /api/site_info/site_name -> 200") for line in lines)
    assert any(" ms" in line for line in lines)
    secrets_ = [PASSWORD, *fake.tokens, *fake.cookies, "Lake House", "Bearer", "AuthCookie"]
    for secret in secrets_:
        assert secret not in caplog.text, secret


async def test_a_failed_request_is_logged_with_its_cause(
    closed_port: int, pinned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tegkit.client")
    async with Gateway(f"127.0.0.1:{closed_port}", tls=pinned, retries=0) as gw:
        with pytest.raises(Exception, match="refused"):
            await gw.status()
    assert any(
        r.getMessage().startswith("GET /api/status failed after ") for r in caplog.records
    ), caplog.text
