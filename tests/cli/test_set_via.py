"""`teg set --via auto|local|cloud`: the route of a change, end to end against the simulator.

On 21.44 a customer's change goes through the simulated cloud (the local POST is never sent),
arrives after the cloud's propagation delay and is read back locally; on 1.40 it goes
locally; a change the gateway has not shown within the wait is said so, never as done.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg, sim_env

from tegkit import percent
from tegkit.cli import exit_codes

CLOUD_DELAY_S = 120.0  # simulated: the clock stands still until the test moves it


@pytest.fixture(scope="module")
def modern() -> Iterator[SimThread]:
    # 21.44 whose local POST would work (allow_customer_operation): a change that arrives
    # only after the cloud's delay cannot have been sent locally
    st = SimThread(allow_customer_operation=True, cloud_delay_s=CLOUD_DELAY_S)
    yield st
    st.close()


@pytest.fixture(scope="module")
def strict() -> Iterator[SimThread]:
    st = SimThread(firmware="21.44")  # refuses a customer's POST /api/operation (403)
    yield st
    st.close()


@pytest.fixture(scope="module")
def legacy() -> Iterator[SimThread]:
    st = SimThread(firmware="1.40")
    yield st
    st.close()


def cloud_teg(st: SimThread, tmp_path: Path, *, tokens: bool = True) -> Teg:
    """`teg` for this simulator with its cloud's address and CA; tokens imported if asked."""
    sim = st.sim
    env = {
        **sim_env(sim, tmp_path / "config" / "config.toml"),
        "TEG_CLOUD_URL": sim.cloud_url,
        "TEG_CLOUD_AUTH_URL": sim.cloud_url,
        "TEG_CLOUD_CAFILE": str(sim.cafile),
    }
    teg = Teg(env)
    if tokens:
        pair = st.call(lambda: (sim.cloud_tokens.access_token, sim.cloud_tokens.refresh_token))
        file = tmp_path / "tokens.json"
        file.write_text(json.dumps({"access_token": pair[0], "refresh_token": pair[1]}))
        imported = teg("cloud", "token", "import", str(file))
        assert imported.exit_code == 0, imported.stderr
    return teg


class CloudRelay(threading.Thread):
    """Waits (polling with a deadline) until `commands` cloud changes are pending in the
    simulator, notes what the gateway reports then, and moves the clock past the delay."""

    def __init__(self, st: SimThread, commands: int = 1) -> None:
        super().__init__(daemon=True)
        self.st = st
        self.commands = commands
        self.seen_before: tuple[str, float, int] | None = None
        self.error: str | None = None

    def run(self) -> None:
        gw = self.st.sim.gateway
        deadline = time.monotonic() + 30
        while self.st.call(lambda: len(gw.pending_changes)) < self.commands:
            if time.monotonic() > deadline:
                self.error = "no cloud change arrived"
                return
            time.sleep(0.01)  # polling a condition, not ordering events
        self.seen_before = self.st.call(
            lambda: (gw.mode, gw.backup_reserve_raw_percent, gw.settings.commission_count)
        )
        self.st.run(self.st.sim.advance(CLOUD_DELAY_S + 1))


def test_on_21_44_auto_goes_through_the_cloud_and_reads_back_locally(
    modern: SimThread, tmp_path: Path
) -> None:
    teg = cloud_teg(modern, tmp_path)
    gw = modern.sim.gateway
    before = modern.call(lambda: (gw.mode, gw.backup_reserve_raw_percent))
    commits = gw.settings.commission_count
    relay = CloudRelay(modern, commands=2)  # mode, then reserve
    relay.start()
    try:
        data = teg.json("set", "operation", "--mode", "backup", "--reserve", "35")
    finally:
        relay.join(timeout=60)
    assert relay.error is None
    # while the change was in the cloud, the gateway still had the old values: nothing local
    assert relay.seen_before == (*before, commits)
    assert data["route"] == "cloud" and "20.49" in data["route_reason"]
    assert data["read_back"] == "confirmed"
    assert data["mode"] == "backup" and data["backup_reserve_app_percent"] == 35.0
    assert (gw.mode, gw.backup_reserve_raw_percent) == ("backup", percent.app_to_raw(35))
    assert gw.settings.commission_count == commits  # no local commit either
    assert gw.settings.staged_operation == {}

    relay = CloudRelay(modern)
    relay.start()
    try:
        human = teg("set", "mode", "self_consumption")
    finally:
        relay.join(timeout=60)
    assert human.exit_code == 0, human.stderr
    assert "Route: cloud" in human.stdout and "read back locally" in human.stdout
    assert "mode self_consumption" in human.stdout


def test_a_change_not_seen_in_time_is_said_so(modern: SimThread, tmp_path: Path) -> None:
    teg = cloud_teg(modern, tmp_path)
    gw = modern.sim.gateway
    before = modern.call(lambda: gw.backup_reserve_raw_percent)
    try:
        result = teg("--json", "set", "reserve", "80", "--wait-s", "0.3")
        assert result.exit_code == exit_codes.GATEWAY_ERROR, result.stderr
        data = json.loads(result.stdout)
        assert data["route"] == "cloud" and data["read_back"] == "not_seen"
        # what is printed is what the gateway reports: the old reserve, not the one asked for
        assert data["backup_reserve_raw_percent"] == before
        assert "not yet seen locally" in result.stderr
        assert "done" not in result.stderr.lower()
    finally:
        modern.run(modern.sim.advance(CLOUD_DELAY_S + 1))  # the pending change lands
    assert gw.backup_reserve_raw_percent == percent.app_to_raw(80)
    modern.call(setattr, gw.site, "backup_reserve_raw_percent", before)


def test_on_21_44_without_a_cloud_the_error_says_how_to_configure_it(
    strict: SimThread, tmp_path: Path
) -> None:
    teg = cloud_teg(strict, tmp_path, tokens=False)
    before = strict.sim.gateway.backup_reserve_raw_percent
    result = teg("set", "reserve", "30")
    assert result.exit_code == exit_codes.PERMISSION_DENIED
    assert "20.49" in result.stderr and "teg cloud token import" in result.stderr
    assert strict.sim.gateway.backup_reserve_raw_percent == before
    forced = teg("set", "reserve", "30", "--via", "cloud")
    assert forced.exit_code == exit_codes.AUTHENTICATION  # no token kept: nothing was sent
    assert "teg cloud token import" in forced.stderr


def test_via_local_is_forced_and_refused_honestly_on_21_44(
    strict: SimThread, tmp_path: Path
) -> None:
    teg = cloud_teg(strict, tmp_path)  # a cloud is configured, but local is asked for
    result = teg("set", "reserve", "30", TEG_VIA="local")
    assert result.exit_code == exit_codes.PERMISSION_DENIED
    assert strict.sim.gateway.pending_changes == {}  # nothing went to the cloud


def test_on_1_40_auto_goes_locally_even_with_a_cloud(legacy: SimThread, tmp_path: Path) -> None:
    teg = cloud_teg(legacy, tmp_path)
    gw = legacy.sim.gateway
    commits = gw.settings.commission_count
    data = teg.json("set", "reserve", "25")
    assert data["route"] == "local" and "before 20.49" in data["route_reason"]
    assert data["read_back"] == "confirmed"
    assert gw.backup_reserve_raw_percent == percent.app_to_raw(25)
    assert gw.settings.commission_count == commits + 1  # staged and committed locally
    assert gw.pending_changes == {}


def test_via_is_checked_before_anything_is_sent(strict: SimThread, tmp_path: Path) -> None:
    teg = cloud_teg(strict, tmp_path, tokens=False)
    result = teg("set", "reserve", "30", "--via", "pigeon")
    assert result.exit_code == exit_codes.USAGE and "--via" in result.stderr


def test_the_pv_export_limit_is_refused_on_the_cloud_route(
    strict: SimThread, tmp_path: Path
) -> None:
    teg = cloud_teg(strict, tmp_path)
    result = teg("set", "operation", "--reserve", "30", "--max-pv-export-kw", "5")
    assert result.exit_code == exit_codes.REJECTED_INPUT
    assert "max_pv_export_power_kw" in result.stderr and "--via local" in result.stderr
    assert strict.sim.gateway.pending_changes == {}  # neither change went anywhere


def test_dry_run_via_cloud_shows_the_cloud_commands_and_sends_nothing(
    strict: SimThread, tmp_path: Path
) -> None:
    teg = cloud_teg(strict, tmp_path)
    gw = strict.sim.gateway
    before = (gw.mode, gw.backup_reserve_raw_percent)
    data = teg.json("set", "operation", "--mode", "backup", "--reserve", "20", "--via", "cloud",
                    "--dry-run")  # fmt: skip
    base = "/api/1/energy_sites/{site_id}"  # not configured: the only site is found when sent
    assert data["requests"] == [
        {"method": "POST", "path": f"{base}/operation", "body": {"default_real_mode": "backup"}},
        {"method": "POST", "path": f"{base}/backup", "body": {"backup_reserve_percent": 20}},
    ]
    human = teg("set", "reserve", "20", "--via", "cloud", "--dry-run")
    assert "app scale" in human.stdout and "nothing was sent" in human.stdout
    assert gw.pending_changes == {} and (gw.mode, gw.backup_reserve_raw_percent) == before
