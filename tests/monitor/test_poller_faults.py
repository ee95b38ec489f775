"""The poller against a hostile gateway: implausible values, absurd Retry-After, refusals.

The gateway double serves what the simulator never would (instant_power 1e20, a 429 asking
for a billion seconds); host time is a fake the test moves, so nothing waits on real time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from gateway_double import AGGREGATES, Answer, GatewayDouble, gateway_double
from monitor_helpers import HostTime

from tegkit.monitor.clock import ReadingClock
from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import GatewayTarget, Poller, PollerConfig
from tegkit.monitor.store import AsyncStore, open_store

FAST = PollerConfig(
    fast_interval_s=5.0, slow_interval_s=60.0, jitter_ratio=0.0, budget_per_minute=1000
)
#: the poller's default max_probe_interval_s: "asked again at least every few minutes"
PROBE_CAP_S = 300.0


@asynccontextmanager
async def double_poller(
    double: GatewayDouble, host: HostTime, db: Path | None, config: PollerConfig = FAST
) -> AsyncIterator[Poller]:
    clock = ReadingClock(host.wall, host.mono)
    live = LiveState(clock=clock, stale_after_s=15.0)
    store = AsyncStore(open_store(db)) if db is not None else None
    home = GatewayTarget("home", double.url, pin=double.fingerprint)
    poller = Poller.for_target(home, live, store, config, clock=clock, monotonic=host.mono)
    try:
        yield poller
    finally:
        await poller.flush()
        await poller.aclose()
        if store is not None:
            await store.aclose()


async def test_an_implausible_value_is_a_gap_logged_once_and_never_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tegkit.monitor.poller")
    db = tmp_path / "m.db"
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, db) as poller:
        g = poller.gateway
        double.power_w = 1200.0
        await poller.poll_due()
        good_at = host.wall_s
        double.power_w = 1e20
        host.advance(5)
        bad_at = host.wall_s
        for _ in range(6):  # half a minute of the same nonsense
            await poller.poll_due()
            host.advance(5)
        assert g.reading is not None and g.reading.site_w == 1200.0  # the last believable one
        assert g.problem == "error" and g.problem_reason is not None
        assert "site_w" in g.problem_reason and "1e+20" in g.problem_reason
        assert g.counters.errors_total[("meters_aggregates", "implausible")] == 6
        double.power_w = -1e300  # another wrong value of the same field: the same gap
        await poller.poll_due()
        host.advance(5)
        double.power_w = 1300.0
        await poller.poll_due()
        back_at = host.wall_s
        assert g.problem is None and g.reading is not None and g.reading.site_w == 1300.0
    said = [r.getMessage() for r in caplog.records if "implausible" in r.getMessage()]
    assert len(said) == 1 and "site_w" in said[0]
    store = open_store(db)
    try:
        readings = store.readings("home", 0, 2e10)
        gaps = store.gaps("home", 0, 2e10)
    finally:
        store.close()
    assert [(r.taken_at, r.site_w) for r in readings] == [(good_at, 1200.0), (back_at, 1300.0)]
    assert [(x.start, x.end, x.reason) for x in gaps] == [
        (bad_at, back_at, "implausible value: site_w")
    ]


@pytest.mark.parametrize(
    "retry_after", ["1000000000", "inf", "1e400", "-5", "Fri, 31 Dec 9999 23:59:59 GMT"]
)
async def test_an_absurd_retry_after_is_capped_and_the_gateway_asked_again(
    tmp_path: Path, retry_after: str
) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        g = poller.gateway
        await poller.poll_due()
        double.answers = [Answer(429, {"Retry-After": retry_after})]
        host.advance(5)
        await poller.poll_due()
        assert g.counters.errors_total[("meters_aggregates", "rate_limited")] == 1
        assert double.hits[AGGREGATES] == 2
        limited_at = host.mono_s
        asked_at = None
        while host.mono_s < limited_at + 3600:  # an hour, in steps of the fast interval
            host.advance(5)
            if "meters_aggregates" in await poller.poll_due():
                asked_at = host.mono_s
                break
        assert asked_at is not None, "the poller never asked again"
        assert asked_at - limited_at <= PROBE_CAP_S
        assert double.hits[AGGREGATES] == 3  # the probe reached the gateway
        assert g.problem is None and g.reading is not None and g.reading.site_w is not None


async def test_the_probe_cap_holds_while_the_gateway_keeps_refusing(tmp_path: Path) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        await poller.poll_due()
        double.answers = [Answer(429, {"Retry-After": "inf"}) for _ in range(4)]
        asked: list[float] = []
        while len(asked) < 5:
            host.advance(5)
            if "meters_aggregates" in await poller.poll_due():
                asked.append(host.mono_s)
        waits = [b - a for a, b in pairwise(asked)]
        assert all(5 <= w <= PROBE_CAP_S for w in waits), waits
        assert double.hits[AGGREGATES] == 6
        assert poller.gateway.reading is not None and poller.gateway.problem is None


async def test_a_store_that_refuses_writes_costs_no_reading_and_no_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tegkit.monitor.poller")
    db = tmp_path / "m.db"
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, db) as poller:
        await poller.poll_due()
        assert poller.store is not None
        await poller.store.aclose()  # every write now fails
        for _ in range(4):
            host.advance(5)
            await poller.poll_due()
        assert poller.pending == 4  # kept for the next flush
        poller.store = AsyncStore(open_store(db))  # the store is back
        host.advance(5)
        await poller.poll_due()
        assert poller.pending == 0
        await poller.store.aclose()
        poller.store = None
    said = [r.getMessage() for r in caplog.records if "store refused" in r.getMessage()]
    assert len(said) == 1
    store = open_store(db)
    try:
        assert len(store.readings("home", 0, 2e10)) == 6
    finally:
        store.close()


async def test_a_live_endpoint_that_answered_404_once_is_asked_again_within_the_cap(
    tmp_path: Path,
) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        await poller.poll_due()
        double.answers = [Answer(404)]  # e.g. during a firmware update
        host.advance(5)
        await poller.poll_due()
        limited_at = host.mono_s
        while "meters_aggregates" not in await poller.poll_due():
            host.advance(5)
            assert host.mono_s - limited_at <= PROBE_CAP_S, "not asked again within the cap"
        assert double.hits[AGGREGATES] == 3  # the client's memory of the 404 was cleared
        assert poller.gateway.problem is None and poller.gateway.reading is not None
