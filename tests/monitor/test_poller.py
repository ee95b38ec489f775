"""The poller against the simulator: budget, single flight, back-off, gaps and events."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_helpers import STEPPED, stepped_poller

from tegkit.monitor.poller import FAST, SLOW, PollerConfig, RequestBudget
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=200, deadline=None)
@given(
    per_minute=st.integers(3, 40),
    steps=st.lists(
        st.tuples(st.floats(0, 30), st.integers(1, 4), st.floats(0, 1)), min_size=1, max_size=120
    ),
)
def test_budget_never_lets_more_than_per_minute_through_any_window(
    per_minute: int, steps: list[tuple[float, int, float]]
) -> None:
    clock = _Clock()
    budget = RequestBudget(per_minute, clock)
    sent_at: list[float] = []
    for advance_s, want, used_share in steps:
        clock.t += advance_s
        if budget.try_reserve(want):
            sent = round(want * used_share)
            budget.settle(want, sent)
            sent_at += [clock.t] * sent
        # every window of 60 s that ends at a send time holds at most per_minute sends
        window: deque[float] = deque()
        for t in sent_at:
            window.append(t)
            while window[0] <= t - 60.0:
                window.popleft()
            assert len(window) <= per_minute


def test_budget_wait_says_when_room_returns() -> None:
    clock = _Clock()
    budget = RequestBudget(5, clock)
    assert budget.try_reserve(5)
    budget.settle(5, 5)
    assert not budget.try_reserve(1)
    assert budget.wait_s(1) == 60.0
    clock.t += 60.0
    assert budget.try_reserve(1)


async def test_a_poll_cycle_asks_each_endpoint_once_and_makes_one_reading() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim) as poller,
    ):
        asked = await poller.poll_due()
        assert sorted(asked) == sorted(FAST + SLOW)
        counters = poller.gateway.counters
        assert counters.requests_total == dict.fromkeys(FAST + SLOW, 1)
        reading = poller.gateway.reading
        assert reading is not None
        state = sim.state()
        assert reading.taken_at == sim.now_s
        assert reading.load_w is not None and reading.soe_raw_percent is not None
        assert reading.load_imported_wh is not None
        assert abs(reading.load_imported_wh - state["counters"]["load"]["imported_wh"]) < 1
        assert poller.gateway.mode == state["mode"]
        # nothing is due until the clock moves
        assert await poller.poll_due() == []
        await sim.advance(60)
        assert sorted(await poller.poll_due()) == sorted(FAST)


async def test_slow_answers_never_cause_a_second_request_for_an_endpoint_in_flight() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()  # logs in
        await sim.advance(60)
        await sim.inject_fault("latency", latency_ms=300, count=3)
        first = asyncio.create_task(poller.poll_due())
        await asyncio.sleep(0.1)  # the first cycle is now waiting on the gateway
        await sim.advance(60)  # the fast group is due again while its requests hang
        assert await poller.poll_due() == []
        assert sorted(await first) == sorted(FAST)
        assert poller.gateway.counters.requests_total["meters_aggregates"] == 2


async def test_the_budget_holds_when_the_schedule_asks_for_more() -> None:
    config = PollerConfig(
        fast_interval_s=5.0, slow_interval_s=60.0, jitter_ratio=0.0, budget_per_minute=12
    )
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, config=config) as poller,
    ):
        sends: list[tuple[float, int]] = []
        for _ in range(120):  # ten simulated minutes in 5 s steps
            before = poller.requests_sent
            await poller.poll_due()
            sends.append((sim.now_s, poller.requests_sent - before))
            await sim.advance(5)
        for t0, _ in sends:
            in_window = sum(n for t, n in sends if t0 <= t < t0 + 60)
            assert in_window <= 12
        assert poller.gateway.counters.budget_deferrals_total > 0
        # the budget is used, not wasted: each call keeps room for a login (3 requests)
        assert sum(n for _, n in sends) >= 10 * (12 - 3)


async def test_rate_limit_backs_off_that_endpoint_only(tmp_path: Path) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        await sim.inject_fault("rate_limit", count=1, path_prefix="/api/system_status/soe")
        await sim.advance(60)
        await poller.poll_due()
        counters = poller.gateway.counters
        assert counters.errors_total == {("soe", "rate_limited"): 1}
        reading = poller.gateway.reading
        assert reading is not None and reading.soe_raw_percent is None  # missing, not 0
        assert reading.load_w is not None
        await sim.advance(60)
        assert "soe" in await poller.poll_due()  # Retry-After 1 s passed; asked again


async def test_stopped_system_is_a_gap_with_events_never_zeros(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, db=db) as poller,
    ):
        await poller.poll_due()
        await sim.advance(60)
        sim.stop_sitemaster()
        stopped_at = sim.now_s
        await poller.poll_due()
        g = poller.gateway
        assert g.problem == "stopped"
        assert g.status(stopped_at, 180)[0] == "stopped"
        assert g.sitemaster_running is False
        for _ in range(5):  # it keeps trying, backing off, and writes nothing
            await sim.advance(60)
            await poller.poll_due()
        assert g.counters.errors_total[("meters_aggregates", "stopped")] >= 2
        sim.run_sitemaster()
        back_at = None
        for _ in range(4):  # the fast group comes back within its back-off (<= 120 s)
            await sim.advance(60)
            await poller.poll_due()
            if g.problem is None and back_at is None:
                back_at = g.reading.taken_at if g.reading else None
        assert back_at is not None and back_at > stopped_at
    store = open_store(db)
    try:
        readings = store.readings("home", 0, 2e10)
        assert all(not (stopped_at <= r.taken_at < back_at) for r in readings)
        assert all(r.load_w != 0 for r in readings)
        gaps = store.gaps("home", 0, 2e10)
        assert [(gap.start, gap.end, gap.reason) for gap in gaps] == [
            (stopped_at, back_at, "system stopped")
        ]
        kinds = [e.kind for e in store.events("home", 0, 2e10)]
        assert kinds == ["sitemaster_stop", "sitemaster_run"]
    finally:
        store.close()


async def test_mode_and_reserve_changes_are_events(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, db=db) as poller,
    ):
        await poller.poll_due()
        sim.gateway.set_operation_now(mode="backup", backup_reserve_raw_percent=62.0)
        await sim.advance(STEPPED.slow_interval_s)
        await poller.poll_due()
        assert poller.gateway.mode == "backup"
        assert poller.gateway.backup_reserve_raw_percent == 62.0
    store = open_store(db)
    try:
        events = {e.kind: e.detail for e in store.events("home", 0, 2e10)}
        assert events["operation_mode"].endswith("-> backup")
        assert events["backup_reserve"].startswith(f"{24.0:.2f} -> 62.00")
    finally:
        store.close()


async def test_unreachable_gateway_is_a_gap_with_its_reason(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    sim = Simulator(port=0, scenario="sunny-day", speed=0)
    await sim.start()
    async with stepped_poller(sim, db=db) as poller:
        await poller.poll_due()
        await sim.advance(60)
        clock_at_close = sim.now_s
        await sim.close()
        await poller.poll_due()
        assert poller.gateway.problem == "unreachable"
        assert "unreachable" in (poller.gateway.problem_reason or "")
        assert poller.gateway.counters.errors_total[("meters_aggregates", "unreachable")] == 1
    store = open_store(db)
    try:
        gaps = store.gaps("home", 0, 2e10)
        assert [(g.start, g.end, g.reason) for g in gaps] == [
            (clock_at_close, None, "gateway unreachable")
        ]
    finally:
        store.close()


async def test_a_restart_takes_over_the_gap_the_last_run_left_open(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        async with stepped_poller(sim, db=db) as poller:
            await poller.poll_due()
            await sim.advance(60)
            sim.stop_sitemaster()
            stopped_at = sim.now_s
            await poller.poll_due()  # the gap opens; then the monitor stops
        await sim.advance(600)
        sim.run_sitemaster()
        async with stepped_poller(sim, db=db) as poller:
            await poller.start()
            await poller.poll_due()
            back_at = sim.now_s
            assert poller.gateway.problem is None
    store = open_store(db)
    try:
        gaps = store.gaps("home", 0, 2e10)
    finally:
        store.close()
    assert [(g.start, g.end, g.reason) for g in gaps] == [(stopped_at, back_at, "system stopped")]


async def test_a_restart_after_a_quiet_spell_records_monitor_not_running(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        async with stepped_poller(sim, db=db) as poller:
            await poller.poll_due()
            last_at = sim.now_s
        await sim.advance(3600)
        async with stepped_poller(sim, db=db) as poller:
            await poller.start()
            await poller.poll_due()
            back_at = sim.now_s
    store = open_store(db)
    try:
        gaps = store.gaps("home", 0, 2e10)
    finally:
        store.close()
    assert [(g.start, g.end, g.reason) for g in gaps] == [(last_at, back_at, "monitor not running")]


async def test_a_failing_endpoint_backs_off_doubling_to_the_cap() -> None:
    config = PollerConfig(
        fast_interval_s=60.0,
        slow_interval_s=3600.0,
        jitter_ratio=0.0,
        budget_per_minute=100,
        max_backoff_s=240.0,
    )
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim, config=config) as poller,
    ):
        await poller.poll_due()
        await sim.inject_fault("status", status=503, path_prefix="/api/meters/aggregates")
        asked_at: list[float] = []
        for _ in range(10):  # t = 60 .. 600 in steps of the fast interval
            await sim.advance(60)
            if "meters_aggregates" in await poller.poll_due():
                asked_at.append(sim.now_s)
        start = asked_at[0]
        # waits of 60, 120, 240 and then 240 (the cap) seconds between attempts
        assert [t - start for t in asked_at] == [0, 60, 180, 420]
        counters = poller.gateway.counters
        assert counters.errors_total[("meters_aggregates", "http_503")] == 4
        assert counters.requests_total["soe"] == 11  # the other endpoints kept their pace
        sim.clear_faults()
        await sim.advance(240)
        assert "meters_aggregates" in await poller.poll_due()
        await sim.advance(60)
        assert "meters_aggregates" in await poller.poll_due()  # success ends the back-off


async def test_a_long_retry_after_holds_the_endpoint_back_that_long() -> None:
    # the simulated gateway allows one soe request per 600 s and says so in Retry-After;
    # below the probe cap (here 900 s) the poller waits all of it
    config = dataclasses.replace(STEPPED, max_probe_interval_s=900.0)
    async with (
        Simulator(
            port=0,
            scenario="sunny-day",
            speed=0,
            rate_limits={"GET /api/system_status/soe": (1, 600.0)},
        ) as sim,
        stepped_poller(sim, config=config) as poller,
    ):
        assert "soe" in await poller.poll_due()
        await sim.advance(60)
        assert "soe" in await poller.poll_due()
        limited_at = sim.now_s
        error = poller.gateway.counters.errors_total
        assert error == {("soe", "rate_limited"): 1}
        while sim.now_s < limited_at + 600 - 60:
            await sim.advance(60)
            assert "soe" not in await poller.poll_due()
        await sim.advance(60)
        assert "soe" in await poller.poll_due()


async def test_each_powerwall_is_shown_live_as_the_gateway_reports_it() -> None:
    # The simulator splits the pack evenly over its Powerwalls, each block's energy rounded
    # to a watt-hour: the blocks add up to the pack within half a watt-hour each.
    async with (
        Simulator(port=0, powerwalls=3, speed=0) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        for _ in range(3):  # the first slow poll, and the next two
            state = sim.state()
            entry = poller.live.to_json()["gateways"][0]
            walls = entry["powerwalls"]
            assert [w["serial"] for w in walls] == sim.gateway.battery_serials
            assert len(set(sim.gateway.battery_serials)) == 3
            tolerance = 0.5 * len(walls)
            remaining = sum(w["energy_remaining_wh"] for w in walls)
            assert abs(remaining - state["energy_remaining_wh"]) <= tolerance
            full = sum(w["full_pack_wh"] for w in walls)
            assert abs(full - state["full_pack_wh"]) <= tolerance
            power = sum(w["power_w"] for w in walls)  # > 0 discharges, as the battery meter
            assert abs(power - state["battery_w"]) <= 0.01 * len(walls)
            for wall in walls:
                assert wall["taken_at"] == sim.now_s
                assert 0 < wall["energy_remaining_wh"] <= wall["full_pack_wh"]
                assert wall["voltage_v"] and wall["frequency_hz"] and wall["firmware"]
            for _ in range(10):  # to the next slow poll (STEPPED: every 600 s)
                await sim.advance(60)
                await poller.poll_due()
        # once per slow poll, nothing more
        counters = poller.gateway.counters.requests_total
        assert counters["system_status"] == 4 and counters["meters_aggregates"] == 31
