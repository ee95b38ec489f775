"""What the poller asks a gateway: only endpoints whose answers something reads.

Each request counts against the gateway's budget and its patience, so an endpoint whose
values nothing shows, stores or exports is not asked at all.
"""

from __future__ import annotations

from pathlib import Path

from gateway_double import AGGREGATES, gateway_double
from test_poller_faults import HostTime, double_poller

from tegkit.monitor.poller import PATHS


async def test_a_poll_asks_every_used_endpoint_and_not_system_status(tmp_path: Path) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        await poller.poll_due()  # the first poll runs the fast and the slow group
    assert double.hits[AGGREGATES] == 1
    for path in PATHS.values():
        assert double.hits[path] == 1, path  # each polled endpoint once
    # /api/system_status carries the pack's nominal energies, which nothing reads
    assert "/api/system_status" not in PATHS.values()
    assert double.hits["/api/system_status"] == 0
