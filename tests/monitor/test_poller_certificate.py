"""A gateway whose certificate changes under a running monitor: never trusted silently."""

from __future__ import annotations

from pathlib import Path

from monitor_helpers import stepped_poller

from tegkit.monitor.store import open_store
from tegkit.sim import Simulator


async def test_a_changed_certificate_is_a_gap_naming_it_never_a_reading(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, db=db) as poller,
    ):
        await poller.poll_due()
        assert poller.gateway.problem is None
        readings_before = poller.gateway.reading
        await sim.inject_fault("rotate_cert")  # for new connections, as after a reboot
        await sim.inject_fault("drop", count=6)  # so no kept connection is reused
        rotated_at = sim.now_s
        for _ in range(5):  # the drops close the kept connections; new ones meet the new cert
            await sim.advance(60)
            await poller.poll_due()
            if "certificate" in (poller.gateway.problem_reason or ""):
                break
        # a gateway that cannot prove who it is cannot be reached: the live reason says why
        assert poller.gateway.problem == "unreachable"
        assert "certificate fingerprint changed" in (poller.gateway.problem_reason or "")
        assert poller.gateway.reading is readings_before  # nothing new was believed
        await poller.flush()
    store = open_store(db)
    try:
        *_, gap = store.gaps("home", 0, 2e10)
        assert gap.reason == "gateway unreachable"
        assert gap.start >= rotated_at and gap.end is None
    finally:
        store.close()
