"""--verbose shows the client's request log; on firmware 1.x `teg` says it restarted the system."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg, sim_env


def test_verbose_logs_each_request_with_status_and_time(teg: Teg) -> None:
    result = teg("--verbose", "status")
    assert result.exit_code == 0, result.stderr
    for path in ("/api/status", "/api/meters/aggregates", "/api/site_info/site_name"):
        assert re.search(
            rf"tegkit\.client: GET {re.escape(path)} -> 200 in \d+ ms", result.stderr
        ), (
            path,
            result.stderr,
        )
    quiet = teg("status")
    assert "tegkit.client" not in quiet.stderr  # without --verbose: no log lines


@pytest.fixture(scope="module")
def legacy() -> Iterator[SimThread]:
    st = SimThread(firmware="1.40")
    yield st
    st.close()


@pytest.fixture()
def lteg(legacy: SimThread, tmp_path: Path) -> Teg:
    return Teg(sim_env(legacy.sim, tmp_path / "config" / "config.toml"))


def test_a_login_on_firmware_1x_restarts_the_system_and_says_so(
    legacy: SimThread, lteg: Teg
) -> None:
    assert legacy.call(legacy.sim.state)["running"] is True
    result = lteg("--json", "login")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["logged_in"] is True  # stdout stays JSON
    said = " ".join(result.stderr.split())
    assert "a login stops the Powerwalls" in said and "started the system again" in said
    assert legacy.call(legacy.sim.state)["running"] is True


def test_a_failed_restart_on_firmware_1x_says_what_to_run(legacy: SimThread, lteg: Teg) -> None:
    legacy.run(legacy.sim.inject_fault("status", status=503, path_prefix="/api/sitemaster/run"))
    try:
        result = lteg("login")
    finally:
        legacy.call(legacy.sim.clear_faults)
        legacy.call(legacy.sim.run_sitemaster)
    assert result.exit_code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "could not start the system again" in said and "teg sitemaster run" in said
    assert "Traceback" not in result.stderr


def test_setup_on_firmware_1x_says_it_restarted_the_system(legacy: SimThread, lteg: Teg) -> None:
    result = lteg("setup", "--yes", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    assert "started the system again" in " ".join(result.stderr.split())
    assert legacy.call(legacy.sim.state)["running"] is True
