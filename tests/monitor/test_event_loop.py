"""`teg monitor` and `teg demo` on uvloop where it is installed, asyncio's loop otherwise or
when asked: real processes against the simulator that poll, record and stop on a signal
with everything flushed; the server's connection guard on a uvloop loop."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import test_web_limits as web_limits
import uvloop

from teg_process import TegProcess, clean_env
from tegkit.monitor.store import open_store

if TYPE_CHECKING:
    from tegkit.sim.threaded import ThreadedSimulator

#: `teg ARGS...`; with "no-uvloop" first, as where uvloop is not installed (Windows)
_TEG = """
import sys
if sys.argv[1] == "no-uvloop":
    sys.modules["uvloop"] = None  # `import uvloop` raises ImportError from here on
from tegkit.cli import main
main(sys.argv[2:], prog_name="teg")
"""


def _teg(uvloop_installed: bool, *args: str, env: dict[str, str]) -> TegProcess:
    flag = "uvloop" if uvloop_installed else "no-uvloop"
    return TegProcess([sys.executable, "-c", _TEG, flag, *args], env)


def _live(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/live", timeout=30) as reply:
        doc: dict[str, Any] = json.loads(reply.read())
    return {g["gateway"]: g for g in doc["gateways"]}


def _reading_after(url: str, taken_at: float, gateway: str = "home") -> float | None:
    """The time of the gateway's reading when it is later than `taken_at`."""
    entry = _live(url).get(gateway)
    if entry is None or entry["reading"] is None or entry["taken_at"] is None:
        return None
    return float(entry["taken_at"]) if entry["taken_at"] > taken_at else None


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("choice", "installed", "sig", "expected"),
    [
        ("auto", True, signal.SIGTERM, "uvloop"),
        ("auto", True, signal.SIGINT, "uvloop"),
        ("asyncio", True, signal.SIGTERM, "asyncio"),
        ("auto", False, signal.SIGINT, "asyncio"),  # falls back without a word
    ],
)
def test_teg_monitor_polls_on_its_loop_and_flushes_on_a_signal(
    tmp_path: Path,
    teg_sim: ThreadedSimulator,
    choice: str,
    installed: bool,
    sig: signal.Signals,
    expected: str,
) -> None:
    db = tmp_path / "m.db"
    env = clean_env(TEG_CONFIG=str(tmp_path / "none.toml"), TEG_PASSWORD=teg_sim.password)
    proc = _teg(
        installed,
        "--verbose",
        "monitor",
        "--gateway",
        f"home={teg_sim.url}",
        "--pin",
        teg_sim.fingerprint_sha256,
        "--db",
        str(db),
        "--listen",
        "127.0.0.1:0",
        "--fast-interval",
        "0.5",
        "--budget",
        "2000",
        "--event-loop",
        choice,
        env=env,
    )
    try:
        assert proc.line(r"event loop: (\w+)$").group(1) == expected
        url = proc.line(r"dashboard (http://\S+/)").group(1)
        first = proc.poll_until("a reading", lambda: _reading_after(url, 0.0))
        assert isinstance(first, float)
        last = proc.poll_until("a later reading", lambda: _reading_after(url, first))
        assert isinstance(last, float)
    finally:
        code = proc.stop(sig=sig)
    err = "\n".join(proc.err)
    assert code == 0, err
    assert "Traceback" not in err
    assert not [line for line in proc.err if "WARNING" in line or "ERROR" in line], err
    store = open_store(db)
    try:
        latest = store.latest("home")  # what was served before the signal was written
    finally:
        store.close()
    assert latest is not None and latest.taken_at >= last - 0.001  # kept to the millisecond


def test_uvloop_asked_for_where_it_is_not_installed_is_a_usage_error(tmp_path: Path) -> None:
    env = clean_env(TEG_CONFIG=str(tmp_path / "none.toml"))
    for command in (["monitor", "--gateway", "home=https://127.0.0.1:9"], ["demo"]):
        proc = _teg(False, *command, "--listen", "127.0.0.1:0", "--event-loop", "uvloop", env=env)
        assert proc.finish() == 2
        err = "\n".join(proc.err)
        assert "Invalid value for '--event-loop': uvloop is not installed" in err, err
        assert "choose auto or asyncio" in err and "Traceback" not in err


@pytest.mark.timeout(180)
def test_teg_demo_runs_on_uvloop_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = clean_env(TEG_CONFIG=str(tmp_path / "none.toml"))
    proc = _teg(
        True,
        "--verbose",
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--backfill-hours",
        "1",
        "--db",
        str(tmp_path / "demo.db"),
        env=env,
    )
    try:
        assert proc.line(r"event loop: (\w+)$").group(1) == "uvloop"
        url = proc.line(r"dashboard: (http://\S+/)").group(1)
        proc.poll_until("a reading", lambda: _reading_after(url, 0.0, "demo"))
    finally:
        code = proc.stop(sig=signal.SIGINT)
    assert code == 0, "\n".join(proc.err)
    assert "Traceback" not in "\n".join(proc.err)


# The server's guard (tegkit.monitor.edge) against idle, trickling, late and surplus
# connections, on a uvloop loop: its transports are not asyncio.Transport subclasses.
_EDGE_TESTS: list[Callable[[], Coroutine[Any, Any, None]]] = [
    web_limits.test_an_idle_connection_is_closed_after_the_idle_timeout,
    web_limits.test_a_trickled_request_head_is_cut_off,
    web_limits.test_a_late_body_gets_408_and_a_large_one_413_with_the_usual_headers,
    web_limits.test_the_cap_closes_the_oldest_idle_connection_then_refuses_when_all_are_busy,
    web_limits.test_event_streams_are_capped,
    web_limits.test_error_answers_carry_the_security_headers_and_no_versions,
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("edge_test", _EDGE_TESTS, ids=lambda t: t.__name__.removeprefix("test_"))
def test_the_connection_guard_on_uvloop(
    edge_test: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert type(runner.get_loop()).__module__.startswith("uvloop")
        runner.run(edge_test())


@pytest.mark.timeout(180)
def test_readings_go_on_while_200_slow_clients_hold_connections_on_uvloop(
    tmp_path: Path,
) -> None:
    test = web_limits.test_readings_and_answers_go_on_while_200_slow_clients_hold_connections
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(test(tmp_path))
