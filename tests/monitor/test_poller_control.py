"""Changes the poller makes for its callers: the operation (budget, commit, read-back) and
the login check, each inside the gateway's request budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from gateway_double import gateway_double
from monitor_helpers import HostTime, stepped_poller, target
from test_poller_faults import FAST, double_poller

from tegkit import percent
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    InvalidInputError,
    RequestBudgetExceededError,
)
from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import Poller
from tegkit.sim import Simulator


async def test_set_operation_commits_reads_back_and_shows_it_at_once() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        assert poller.gateway.mode == "self_consumption"
        after = await poller.set_operation(mode="backup", backup_reserve_percent=50, scale="app")
        state = sim.state()
        assert after.mode == "backup" == state["mode"]
        assert after.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(50))
        # the live state has the read-back now, not after the next slow poll
        assert poller.gateway.mode == "backup"
        assert poller.gateway.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(50))
        # the simulator's clock stands still: every request sent is in the budget's window
        assert poller.budget.in_window() == poller.requests_sent


async def test_a_spent_budget_refuses_the_change_and_nothing_is_sent(tmp_path: Path) -> None:
    host = HostTime()
    # room for a change (4 calls x 3 requests) only while nothing else was sent
    config = dataclasses.replace(FAST, budget_per_minute=15)
    async with (
        gateway_double(tmp_path) as double,
        double_poller(double, host, None, config) as poller,
    ):
        await poller.poll_due()
        hits = sum(double.hits.values())
        assert hits == poller.requests_sent and 15 - 12 < hits <= 15
        with pytest.raises(RequestBudgetExceededError) as refused:
            await poller.set_operation(mode="backup")
        assert sum(double.hits.values()) == hits  # nothing reached the gateway
        assert not isinstance(refused.value, ApiError)  # no status the gateway never sent
        assert "429" not in str(refused.value)
        assert 0 < refused.value.wait_s <= 60  # the window of the budget
        host.advance(60)  # the window has passed: the budget has room again
        assert poller.budget.wait_s(12) == 0


async def test_refused_values_send_nothing_and_spend_no_budget(
    tmp_path: Path,
) -> None:
    host = HostTime()
    async with gateway_double(tmp_path) as double, double_poller(double, host, None) as poller:
        for kwargs, field in [
            ({"mode": "scheduler"}, "mode"),  # the client sends it; the monitor does not
            ({"mode": "turbo"}, "mode"),
            ({"backup_reserve_percent": 50}, "scale"),
            ({"backup_reserve_percent": 150, "scale": "app"}, "backup_reserve_percent"),
            ({}, "mode"),
        ]:
            with pytest.raises(InvalidInputError) as refused:
                await poller.set_operation(**kwargs)  # type: ignore[arg-type]
            assert refused.value.field == field, kwargs
        assert sum(double.hits.values()) == 0
        assert poller.budget.in_window() == 0  # the reservations were released


async def test_check_credentials_tells_a_refused_login_from_a_good_one() -> None:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        live = LiveState()
        good = Poller.for_target(target(sim, "good"), live)
        wrong = dataclasses.replace(target(sim, "wrong"), password="not-the-password")
        bad = Poller.for_target(wrong, live)
        try:
            assert await good.check_credentials() is None
            refused = await bad.check_credentials()
            assert isinstance(refused, AuthenticationError)
            assert "not-the-password" not in str(refused)
            for poller in (good, bad):  # each check was inside its own budget
                assert 0 < poller.budget.in_window() == poller.requests_sent
        finally:
            await good.aclose()
            await bad.aclose()
