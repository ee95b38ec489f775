"""Fixtures of the CLI tests: one simulator per module (over real HTTPS) and `teg` against it.

The simulator runs in its own event loop thread, so click's CliRunner (which runs each
command's own asyncio loop in the test thread) and pexpect subprocesses talk to it over real
HTTPS, exactly as to a gateway. Tests that change the gateway restore what they changed or
use their own simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg, sim_env

from tegkit.sim import Simulator


@pytest.fixture(scope="module")
def simthread() -> Iterator[SimThread]:
    st = SimThread()
    yield st
    st.close()


@pytest.fixture()
def sim(simthread: SimThread) -> Simulator:
    return simthread.sim


@pytest.fixture()
def env(sim: Simulator, tmp_path: Path) -> dict[str, str]:
    return sim_env(sim, tmp_path / "config" / "config.toml")


@pytest.fixture()
def teg(env: dict[str, str]) -> Teg:
    return Teg(env)
