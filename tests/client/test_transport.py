"""Transport behaviour against a real server: cool-downs, timeouts, retries, coalescing, cache."""

from __future__ import annotations

import asyncio
import email.utils
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tegkit._headers import retry_after_s
from tegkit.client import Gateway
from tegkit.client._transport import base_url
from tegkit.errors import (
    ConnectionFailedError,
    GatewayBusyError,
    GatewayTimeoutError,
    InvalidInputError,
    RateLimitedError,
)

PASSWORD = "hunter2-secret"
AGGREGATES = "GET /api/meters/aggregates"


@pytest.fixture
async def gw(address: str, pinned: Any) -> Any:
    async with Gateway(address, password=PASSWORD, tls=pinned, timeout_s=2.0) as client:
        await client.login()
        yield client


async def test_rate_limit_cools_down_that_endpoint_only(fake: Any, gw: Any, fault: Any) -> None:
    fake.fault(AGGREGATES, fault(status=429, headers={"Retry-After": "60"}))
    with pytest.raises(RateLimitedError) as first:
        await gw.meters_aggregates()
    assert first.value.retry_after_s == 60
    with pytest.raises(RateLimitedError) as again:
        await gw.meters_aggregates()
    assert again.value.retry_after_s is not None and 0 < again.value.retry_after_s <= 60
    assert fake.hits[AGGREGATES] == 1  # the second call sent nothing
    assert (await gw.state_of_energy()).raw_percent > 0  # other endpoints are not frozen
    gw.forget("GET", "/api/meters/aggregates")
    assert (await gw.meters_aggregates()).site is not None
    assert fake.hits[AGGREGATES] == 2


async def test_timeout_is_also_an_asyncio_timeout(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("GET /api/sitemaster", fault(delay_s=5))
    async with Gateway(address, tls=pinned, timeout_s=0.2) as gw:
        with pytest.raises(asyncio.TimeoutError) as caught:
            await gw.sitemaster()
    assert isinstance(caught.value, GatewayTimeoutError)
    assert fake.hits["GET /api/sitemaster"] == 1  # a timeout is not retried


async def test_connection_refused(closed_port: int, pinned: Any) -> None:
    async with Gateway(f"127.0.0.1:{closed_port}", tls=pinned) as gw:
        with pytest.raises(ConnectionFailedError, match="cannot connect: Connection refused"):
            await gw.sitemaster()


async def test_identical_reads_in_flight_share_one_request(fake: Any, gw: Any) -> None:
    before = fake.hits[AGGREGATES]
    results = await asyncio.gather(*(gw.meters_aggregates() for _ in range(10)))
    assert fake.hits[AGGREGATES] == before + 1
    assert all(r == results[0] for r in results)
    await gw.meters_aggregates()  # nothing is cached by default
    assert fake.hits[AGGREGATES] == before + 2


def _joined(gw: Any, key: str) -> bool:
    """Whether a second caller waits on the running read for key (the single-flight's state)."""
    flight = gw._flight._running.get(key)
    return flight is not None and flight.shared is not None


async def _until(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    """Yields to the loop until condition holds; fails after deadline_s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0)


async def test_a_cancelled_leader_hands_the_read_to_a_waiter(
    fake: Any, gw: Any, fault: Any
) -> None:
    arrived, release = threading.Event(), threading.Event()
    fake.fault(AGGREGATES, fault(arrived=arrived, hold=release))
    before = fake.hits[AGGREGATES]
    leader = asyncio.ensure_future(gw.meters_aggregates())
    try:
        assert await asyncio.to_thread(arrived.wait, 5.0)  # the leader's request is in flight
        waiter = asyncio.ensure_future(gw.meters_aggregates())
        await _until(lambda: _joined(gw, AGGREGATES))
        leader.cancel()
        aggregates = await waiter  # not cancelled itself: it takes over and gets an answer
    finally:
        release.set()  # the double stops holding the leader's abandoned request
    assert aggregates.site is not None
    assert leader.cancelled()
    assert fake.hits[AGGREGATES] == before + 2


async def test_cache_ttl_per_endpoint(fake: Any, address: str, pinned: Any) -> None:
    ttl = {"/api/meters/aggregates": 60.0}
    async with Gateway(address, password=PASSWORD, tls=pinned, cache_ttl_s=ttl) as gw:
        await gw.login()
        for _ in range(3):
            await gw.meters_aggregates()
            await gw.state_of_energy()
    assert fake.hits[AGGREGATES] == 1
    assert fake.hits["GET /api/system_status/soe"] == 3


async def test_dropped_read_is_retried(fake: Any, gw: Any, fault: Any) -> None:
    fake.fault(AGGREGATES, fault(drop=True))
    aggregates = await gw.meters_aggregates()
    assert aggregates.site is not None
    assert fake.hits[AGGREGATES] == 2


async def test_dropped_post_is_never_retried(fake: Any, gw: Any, fault: Any) -> None:
    fake.fault("POST /api/operation", fault(drop=True))
    with pytest.raises(ConnectionFailedError):
        await gw.set_operation(mode="backup", backup_reserve_percent=20, scale="app")
    assert fake.hits["POST /api/operation"] == 1
    assert fake.hits["GET /api/config/completed"] == 0


async def test_dropped_get_with_a_side_effect_is_never_retried(
    fake: Any, gw: Any, fault: Any
) -> None:
    # GET /api/config/completed commits staged settings: it may have been applied.
    fake.fault("GET /api/config/completed", fault(drop=True))
    with pytest.raises(ConnectionFailedError):
        await gw.config_completed()
    assert fake.hits["GET /api/config/completed"] == 1


async def test_busy_gateway(fake: Any, gw: Any, fault: Any) -> None:
    fake.fault("GET /api/status", fault(status=503))
    with pytest.raises(GatewayBusyError):
        await gw.status()
    assert (await gw.status()).version  # 503 does not cool the endpoint down


def test_base_url_forms() -> None:
    assert str(base_url("192.0.2.7")) == "https://192.0.2.7/"  # parsed only, never contacted
    assert str(base_url("teg:8443")) == "https://teg:8443/"
    assert str(base_url("::1")) == "https://[::1]/"
    assert str(base_url("https://powerwall/")) == "https://powerwall/"
    assert str(base_url("http://powerwall")) == "https://powerwall/"  # the gateway's 301
    for bad in ("", "http://powerwall:80", "ftp://teg", "https://teg/api", "https://u:p@teg"):
        with pytest.raises(InvalidInputError, match="host"):
            base_url(bad)


def test_base_url_never_repeats_credentials() -> None:
    for given in ("https://admin:s3cret@teg", "https://s3cret@teg", "https://:s3cret@teg/api"):
        with pytest.raises(InvalidInputError, match="user or password") as caught:
            base_url(given)
        assert "s3cret" not in str(caught.value)
        assert "s3cret" not in repr(caught.value.value)


def test_retry_after_forms() -> None:
    assert retry_after_s("30") == 30
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None
    later = email.utils.formatdate(1_000_090, usegmt=True)
    assert retry_after_s(later, now_s=1_000_000) == pytest.approx(90)
