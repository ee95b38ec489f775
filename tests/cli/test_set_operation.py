"""`teg set operation`: mode, reserve and PV export limit in one staged commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from teg_helpers import SimThread, Teg


@pytest.fixture(scope="module")
def simthread() -> Iterator[SimThread]:
    # A gateway that lets the customer change the operation (as installers can).
    st = SimThread(allow_customer_operation=True)
    yield st
    st.close()


def test_mode_reserve_and_export_limit_in_one_commit(teg: Teg, simthread: SimThread) -> None:
    gateway = simthread.sim.gateway
    commits = gateway.settings.commission_count
    data = teg.json(
        "set", "operation", "--mode", "backup", "--reserve", "20", "--max-pv-export-kw", "5.5"
    )
    route = {k: data.pop(k) for k in ("route", "route_reason", "read_back", "note")}
    data.pop("read_back_waited_s")
    assert data == {
        "mode": "backup",
        "backup_reserve_raw_percent": 24,
        "backup_reserve_app_percent": 20.0,
        "max_pv_export_power_kw": 5.5,
    }
    # no cloud is configured: tried locally (this gateway takes it), read back locally
    assert (route["route"], route["read_back"]) == ("local", "confirmed")
    assert (gateway.mode, gateway.backup_reserve_raw_percent) == ("backup", 24)
    assert gateway.settings.max_pv_export_power_kw == 5.5
    assert gateway.settings.commission_count == commits + 1  # one commit for all three
    human = teg("set", "operation", "--mode", "self_consumption")
    assert human.exit_code == 0, human.stderr
    assert "mode self_consumption" in human.stdout
    assert "Maximum PV export: 5.5 kW." in human.stdout  # kept as the gateway had it


def test_dry_run_sends_nothing(teg: Teg, simthread: SimThread) -> None:
    gateway = simthread.sim.gateway
    before = (gateway.mode, gateway.backup_reserve_raw_percent, gateway.settings.commission_count)
    data = teg.json("set", "operation", "--reserve", "50", "--max-pv-export-kw", "0", "--dry-run")
    assert data["requests"][0]["body"] == {
        "mode": gateway.mode,
        "backup_reserve_percent": 52.5,
        "max_pv_export_power_kW": 0,
    }
    assert [r["path"] for r in data["requests"]] == ["/api/operation", "/api/config/completed"]
    after = (gateway.mode, gateway.backup_reserve_raw_percent, gateway.settings.commission_count)
    assert after == before


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--max-pv-export-kw", "-1"], 8, "max_pv_export_power_kw"),
        (["--max-pv-export-kw", "inf"], 8, "max_pv_export_power_kw"),
        (["--reserve", "101"], 8, "backup_reserve_percent"),
        (["--mode", "turbo"], 2, "--mode"),
        ([], 2, "at least one of"),
    ],
)
def test_bad_values_are_refused_before_sending(
    args: list[str], code: int, text: str, teg: Teg, simthread: SimThread
) -> None:
    commits = simthread.sim.gateway.settings.commission_count
    result = teg("set", "operation", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert simthread.sim.gateway.settings.commission_count == commits
