"""`teg sim` as a person runs it: a process that prints how to reach it and stops on SIGINT."""

from __future__ import annotations

import os
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tegkit.cloud import CloudClient
from tegkit.sim import Simulator


def _start(state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tegkit.sim", "--port", "0", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: dict[str, str] = {}
    while "firmware" not in lines:
        line = process.stdout.readline()
        assert line, "the simulator exited before printing how to reach it"
        key, _, value = line.partition(":")
        lines[key.strip()] = value.strip()
    return process, lines


async def test_printed_cloud_tokens_open_the_simulated_owner_api(tmp_path: Path) -> None:
    process, lines = _start(tmp_path)
    try:
        token_file = Path(lines["cloud tokens"].split()[0])
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        context = ssl.create_default_context(cafile=lines["certificate"])
        async with CloudClient.from_token_file(
            token_file, base_url=lines["cloud API"], auth_url=lines["cloud API"], ssl=context
        ) as cloud:
            sites = await cloud.energy_sites()
            assert len(sites) == 1
            live = await cloud.live_status(sites[0].energy_site_id)
            assert live.percentage_charged_app_percent is not None
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "simulator stopped" in out


def _sim_refuses(option: str, value: str) -> str:
    """`python -m tegkit.sim --port 0 OPTION VALUE` must be a usage error: its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "tegkit.sim", "--port", "0", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, (option, value, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stderr


def test_a_speed_that_is_no_number_of_seconds_is_a_usage_error(tmp_path: Path) -> None:
    for speed in ("inf", "nan", "-1", "1e9"):
        assert "--speed" in _sim_refuses("--speed", speed)


def test_the_simulator_refuses_a_speed_it_cannot_keep() -> None:
    for speed in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="speed"):
            Simulator(speed=speed)


def test_a_scenario_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad-value.toml").write_text('seed = "x"\n', encoding="utf-8")
    (tmp_path / "not-toml.toml").write_text("this is [not toml\n", encoding="utf-8")
    for scenario in (
        tmp_path / "missing.toml",
        tmp_path / "bad-value.toml",
        tmp_path / "not-toml.toml",
    ):
        assert "Invalid value for --scenario" in _sim_refuses("--scenario", str(scenario))
