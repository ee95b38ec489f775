"""docs/simulator.md stays true: its tables name what exists, and its examples run.

The bash example, the CI job's shell steps and the pytest example are run as written,
against real simulator processes (the bash ones need curl and jq, as the doc says).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tegkit.cli.monitor import monitor as monitor_command
from tegkit.sim import Simulator, pytest_plugin
from tegkit.sim.cli import sim as sim_command
from tegkit.sim.cli import start_line
from tegkit.sim.control_openapi import ROUTES

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
TIMEOUT_S = 120


def _section(title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}.*?\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert found is not None, title
    return found.group(1)


def _block(language: str, section: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", _section(section), re.S)
    assert found is not None, (language, section)
    return found.group(1)


def _first_cells(section: str) -> list[str]:
    """The first column of each table row (the header and the rule excluded)."""
    rows = re.findall(r"^\| (.*?) \|", _section(section), re.M)
    return [row for row in rows[1:] if not set(row) <= {"-", "|"}]


async def test_the_start_line_table_names_every_key() -> None:
    sim = Simulator(port=0, cloud_port=None)
    try:
        keys = set(start_line(sim, sim.state_dir / "tokens.json", None))
    finally:
        await sim.close()
    shown = {
        key
        for cell in _first_cells("From another language")
        for key in re.findall(r"`(\w+)`", cell)
    }
    assert shown == keys


def test_the_control_table_names_every_route() -> None:
    shown = {
        (method.lower(), path)
        for cell in _first_cells("The control API")
        for method, path in re.findall(r"`(GET|POST|DELETE) (/\S+)`", cell)
    }
    assert shown == {(op.method, op.path) for op in ROUTES}


def test_the_fixture_table_names_the_plugins_fixtures() -> None:
    shown = {re.sub(r"`", "", cell) for cell in _first_cells("From pytest")}
    assert shown == {"teg_sim", "teg_sim_factory", "teg_sim_session", "teg_sim_factory_session"}
    for name in shown:
        assert hasattr(pytest_plugin, name)


def test_every_teg_sim_option_shown_exists() -> None:
    options = {opt for param in sim_command.params for opt in param.opts}
    shown = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", DOC))
    not_ours = {"--cacert", "--check", "--pid"}  # curl, derive_sim_captures.py, tail
    not_ours |= {"--only"}  # python -m bench
    monitor_options = {opt for param in monitor_command.params for opt in param.opts}
    assert "--fleet" in monitor_options  # the fleet section's `teg monitor --fleet`
    assert sorted(shown - not_ours - options - {"--help", "--fleet"}) == []


def test_every_file_named_exists() -> None:
    for name in re.findall(r"`((?:tests|src|scripts|examples)/[\w./]+)`", DOC):
        assert (ROOT / name).exists(), name


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `python` is this interpreter
    return env


def _needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    # `make test` installs them (Makefile: sysdeps): a missing one is a broken set-up
    assert not missing, f"the doc's shell examples use {', '.join(missing)}: run `make sysdeps`"


def test_the_bash_example_runs() -> None:
    _needs("bash", "curl", "jq")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block("bash", "From another language")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    before, now, after = done.stdout.split()
    assert float(after) > float(before)  # the sun shone for the ten minutes advanced
    assert re.match(r"\d{4}-\d\d-\d\dT", now)
    assert "simulator stopped" in done.stderr


def _run_steps(yaml: str) -> dict[str, str]:
    """The `run: |` steps of the CI example, each as its own bash, as a runner does."""
    return {
        name: textwrap.dedent(body)
        for name, body in re.findall(
            r"- name: (.+)\n\s+(?:if: .+\n\s+)?run: \|\n((?:\s{10}.*\n)+)", yaml
        )
    }


def test_the_ci_steps_start_and_stop_the_simulator(tmp_path: Path) -> None:
    _needs("bash", "curl", "jq", "timeout", "tail")
    steps = _run_steps(_block("yaml", "In a CI job"))
    assert set(steps) == {"Start a simulated gateway", "Stop the simulator"}
    env = {**_env(), "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(tmp_path / "github_env")}

    def run(step: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", steps[step]],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )

    started = run("Start a simulated gateway")
    exported = dict(
        line.split("=", 1) for line in (tmp_path / "github_env").read_text().splitlines()
    )
    try:
        assert started.returncode == 0, started.stderr
        assert set(exported) == {
            "GATEWAY_URL",
            "GATEWAY_CAFILE",
            "GATEWAY_PASSWORD",
            "SIM_CONTROL_TOKEN",
            "SIM_PID",
        }
        status = subprocess.run(
            [
                "curl",
                "-sf",
                "--cacert",
                exported["GATEWAY_CAFILE"],
                exported["GATEWAY_URL"] + "/api/status",
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert status.returncode == 0 and '"version"' in status.stdout
        env.update(exported)
        stopped = run("Stop the simulator")
        assert stopped.returncode == 0, stopped.stderr
        assert "simulator stopped" in stopped.stdout  # the log it printed on stderr
    finally:
        if "SIM_PID" in exported:
            with_pid = int(exported["SIM_PID"])
            if Path(f"/proc/{with_pid}").exists():
                os.kill(with_pid, 9)


def test_the_pytest_example_runs(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(_block("python", "From pytest"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
