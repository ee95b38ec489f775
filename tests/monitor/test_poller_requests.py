"""What the poller asks a gateway: only endpoints whose answers something reads.

Each request counts against the gateway's budget and its patience, so an endpoint whose
values nothing shows, stores or exports is not asked at all. /api/system_status is asked
with the slow group: its battery blocks are the per-Powerwall values shown live (/api/live,
MQTT). A firmware without it (404) costs one request per UNSUPPORTED_RETRY_S, never zeros.
"""

from __future__ import annotations

from pathlib import Path

from gateway_double import AGGREGATES, gateway_double
from test_poller_faults import HostTime, double_poller

from tegkit.monitor.poller import PATHS, SLOW, UNSUPPORTED_RETRY_S, PollerConfig

SYSTEM_STATUS = "/api/system_status"


async def test_a_poll_asks_every_used_endpoint_once(tmp_path: Path) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        await poller.poll_due()  # the first poll runs the fast and the slow group
    assert double.hits[AGGREGATES] == 1
    for path in PATHS.values():
        assert double.hits[path] == 1, path  # each polled endpoint once
    assert set(double.hits) == set(PATHS.values())  # and nothing else
    assert PATHS["system_status"] == SYSTEM_STATUS and "system_status" in SLOW


async def test_a_firmware_without_system_status_is_asked_rarely_and_shows_no_powerwalls(
    tmp_path: Path,
) -> None:
    host = HostTime()
    minutely = PollerConfig(fast_interval_s=60.0, jitter_ratio=0.0, budget_per_minute=1000)
    async with (
        gateway_double(tmp_path) as double,
        double_poller(double, host, None, minutely) as poller,
    ):
        minutes, start_s = 0, host.mono_s
        while host.mono_s - start_s < UNSUPPORTED_RETRY_S / 2:  # three hours of polls
            await poller.poll_due()
            host.advance(60)
            minutes += 1
        assert double.hits[SYSTEM_STATUS] == 1  # the 404 is not asked every minute
        assert double.hits[AGGREGATES] >= minutes  # the readings went on
        g = poller.gateway
        assert g.reading is not None and g.problem is None  # a 404 here is no gap
        assert g.powerwalls is None  # not reported: unknown, never a zero Powerwall
        assert poller.live.to_json()["gateways"][0]["powerwalls"] is None
        # asked again once the firmware may have changed
        host.advance(UNSUPPORTED_RETRY_S)
        await poller.poll_due()
        assert double.hits[SYSTEM_STATUS] == 2


def test_the_schedule_counts_the_system_status_request() -> None:
    # three fast endpoints every 5 s, five slow ones (system status one of them) a minute
    assert PollerConfig().needed_per_minute() == 3 * 12 + 5
    assert PollerConfig(slow_interval_s=30.0).needed_per_minute() == 3 * 12 + 10
