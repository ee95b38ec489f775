"""`teg auto run --plan PLAN` as an owner runs it: a process against the simulator that applies
the plan's settings in force at start, reports each outcome as a line (and JSON with --json),
changes nothing in a dry run, refuses a bad plan, and stops cleanly on SIGINT / SIGTERM.

The runner acts on this machine's clock; the plan's one rule fires every day, so whatever
the time, its settings are the ones in force when the process starts.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg, sim_env

from teg_process import TegProcess, clean_env
from tegkit import percent
from tegkit.cli import exit_codes

PLAN = """
name = "overnight"
[[rules]]
name = "hold for the night"
at = "03:00"
mode = "backup"
backup_reserve_percent = 42
"""


def start(args: list[str], env: dict[str, str]) -> TegProcess:
    return TegProcess.teg(*args, env=clean_env(**env))


def line_with(proc: TegProcess, text: str) -> str:
    """The first stderr line containing `text`, waiting for it."""
    return proc.line(re.escape(text)).string


@pytest.fixture
def st() -> Iterator[SimThread]:
    # 21.44 that takes a customer's local change: the local route, with no cloud
    thread = SimThread(allow_customer_operation=True)
    yield thread
    thread.close()


def plan_file(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def reported(st: SimThread) -> tuple[str, float, int]:
    gw = st.sim.gateway
    return st.call(lambda: (gw.mode, gw.backup_reserve_raw_percent, gw.settings.commission_count))


def test_run_applies_the_settings_in_force_reports_them_and_stops_on_sigterm(
    st: SimThread, tmp_path: Path
) -> None:
    env = sim_env(st.sim, tmp_path / "config.toml")
    proc = start(["--json", "auto", "run", "--plan", str(plan_file(tmp_path))], env)
    try:
        # no time zone in the plan: the gateway's site time zone is used
        assert "in America/Los_Angeles" in line_with(proc, "plan 'overnight'")
        done = line_with(proc, "'hold for the night': done:")
        assert "set mode backup, reserve 42 %" in done and "catching up" in done
        proc.wait_for("the JSON line", lambda: bool(proc.out))
        code = proc.stop(sig=signal.SIGTERM)
    finally:
        proc.close()
    assert code == 0, proc.err
    assert proc.err[-1] == "teg auto: stopped"
    event = json.loads(proc.out[0])
    assert event["rule"] == "hold for the night" and event["result"] == "done"
    assert event["setpoints"] == {"mode": "backup", "backup_reserve_app_percent": 42.0}
    mode, raw, _ = reported(st)
    assert mode == "backup" and raw == pytest.approx(percent.app_to_raw(42))


def test_a_second_run_finds_it_in_force_and_skips(st: SimThread, tmp_path: Path) -> None:
    env = sim_env(st.sim, tmp_path / "config.toml")
    plan = str(plan_file(tmp_path))
    for expected in ("done", "skipped"):
        proc = start(["auto", "run", "--plan", plan], env)
        try:
            line_with(proc, f"'hold for the night': {expected}:")
            commits = reported(st)[2]
            code = proc.stop(sig=signal.SIGINT)
        finally:
            proc.close()
        assert code == 0, proc.err
    assert reported(st)[2] == commits  # the second run committed nothing


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(st: SimThread, tmp_path: Path) -> None:
    before = reported(st)
    env = sim_env(st.sim, tmp_path / "config.toml")
    proc = start(["auto", "run", "--plan", str(plan_file(tmp_path)), "--dry-run"], env)
    try:
        assert "dry run: nothing will be changed" in line_with(proc, "plan 'overnight'")
        line = line_with(proc, "'hold for the night': dry_run:")
        code = proc.stop(sig=signal.SIGTERM)
    finally:
        proc.close()
    assert code == 0
    assert "would set mode backup, reserve 42 %" in line
    assert reported(st) == before


def test_a_bad_plan_is_refused_naming_the_rule_and_field(st: SimThread, tmp_path: Path) -> None:
    before = reported(st)
    bad = plan_file(tmp_path, PLAN.replace("= 42", "= 142"))
    teg = Teg(sim_env(st.sim, tmp_path / "config.toml"))
    result = teg("auto", "run", "--plan", str(bad))
    assert result.exit_code == exit_codes.REJECTED_INPUT, result.stderr
    assert "hold for the night" in result.stderr and "backup_reserve_percent" in result.stderr
    assert "Traceback" not in result.stderr
    missing = teg("auto", "run", "--plan", str(tmp_path / "nowhere.toml"))
    assert missing.exit_code != 0 and "Traceback" not in missing.stderr
    assert reported(st) == before


def test_through_the_cloud_on_a_gateway_that_refuses_local_changes(tmp_path: Path) -> None:
    strict = SimThread(firmware="21.44")  # a customer's local POST is refused (403)
    try:
        sim = strict.sim
        env = {
            **sim_env(sim, tmp_path / "config" / "config.toml"),
            "TEG_CLOUD_URL": sim.cloud_url,
            "TEG_CLOUD_AUTH_URL": sim.cloud_url,
            "TEG_CLOUD_CAFILE": str(sim.cafile),
        }
        tokens = strict.call(
            lambda: (sim.cloud_tokens.access_token, sim.cloud_tokens.refresh_token)
        )
        file = tmp_path / "tokens.json"
        file.write_text(json.dumps({"access_token": tokens[0], "refresh_token": tokens[1]}))
        imported = Teg(env)("cloud", "token", "import", str(file))
        assert imported.exit_code == 0, imported.stderr
        proc = start(["auto", "run", "--plan", str(plan_file(tmp_path))], env)
        try:
            done = line_with(proc, "'hold for the night': done:")
            code = proc.stop(sig=signal.SIGTERM)
        finally:
            proc.close()
        assert code == 0
        assert "through Tesla's cloud" in done and "read back locally" in done
        mode, raw, _ = reported(strict)
        assert mode == "backup" and raw == pytest.approx(percent.app_to_raw(42))
    finally:
        strict.close()
