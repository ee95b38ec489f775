"""`teg` on a real pseudo-terminal: the live watch, its outage banner, Ctrl-C, confirmations."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import pexpect
import pytest
from teg_helpers import TEG, SimThread

FRAME_END = "Ctrl-C to quit"


@pytest.fixture()
def term_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    return {**base, **env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}


@pytest.fixture()
def spawn(term_env: dict[str, str]) -> Iterator[object]:
    children: list[pexpect.spawn] = []

    def start(*args: str) -> pexpect.spawn:
        child = pexpect.spawn(
            TEG, list(args), env=term_env, encoding="utf-8", timeout=30, dimensions=(40, 100)
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def _frames_until(child: pexpect.spawn, pattern: str, limit: int = 200) -> str:
    """Read whole frames of the live view until one matches `pattern`; return that frame."""
    for _ in range(limit):
        child.expect_exact(FRAME_END)
        frame: str = child.before
        if re.search(pattern, frame):
            return frame
    raise AssertionError(f"no frame matched {pattern!r}")


def test_watch_refreshes_in_place_and_ctrl_c_exits_0(spawn: object) -> None:
    child = spawn("watch", "--interval", "0.1")  # type: ignore[operator]
    frame = _frames_until(child, r"reading 3\b")
    for text in ("Solar", "producing", "Battery", "charging", "Home", "47.4%", "app scale"):
        assert text in frame
    assert re.search(r"[▁▂▃▄▅▆▇█]{3}", frame)  # a sparkline of the readings so far
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's background job inherits it


def test_ctrl_c_ends_a_watch_started_with_sigint_ignored(term_env: dict[str, str]) -> None:
    child = pexpect.spawn(
        TEG,
        ["watch", "--interval", "0.1"],
        env=term_env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 100),
        preexec_fn=_ignore_sigint,
    )
    try:
        _frames_until(child, r"reading 2\b")
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_watch_shows_a_banner_while_unreachable_and_recovers(
    spawn: object, simthread: SimThread
) -> None:
    child = spawn("watch", "--interval", "0.1")  # type: ignore[operator]
    frame = _frames_until(child, r"reading 2\b")
    simthread.run(simthread.sim.inject_fault("drop", count=10_000))  # until cleared
    try:
        frame = _frames_until(child, "gateway unavailable")
        assert "cannot reach the gateway" in frame
        count = int(re.findall(r"reading (\d+)", frame)[-1])
    finally:
        simthread.call(simthread.sim.clear_faults)
    frame = _frames_until(child, rf"reading {count + 1}\b")
    assert "gateway unavailable" not in frame
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_watch_ends_with_exit_3_on_a_wrong_password(spawn: object) -> None:
    child = spawn("--password", "wrong", "watch", "--interval", "0.1")  # type: ignore[operator]
    child.expect("authentication failed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_sitemaster_stop_asks_on_a_terminal(spawn: object, simthread: SimThread) -> None:
    child = spawn("sitemaster", "stop")  # type: ignore[operator]
    child.expect_exact("Stop the Powerwall system?")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1  # aborted
    assert simthread.sim.gateway.running
    child = spawn("sitemaster", "stop")  # type: ignore[operator]
    child.expect_exact("Stop the Powerwall system?")
    child.sendline("y")
    child.expect_exact("The system is stopped")
    child.expect(pexpect.EOF)
    child.close()
    try:
        assert child.exitstatus == 0
        assert not simthread.sim.gateway.running
    finally:
        simthread.call(simthread.sim.run_sitemaster)


def test_setup_asks_for_what_it_was_not_given(
    spawn: object, simthread: SimThread, term_env: dict[str, str]
) -> None:
    sim = simthread.sim
    for key in ("TEG_HOST", "TEG_PASSWORD", "TEG_PIN"):
        term_env.pop(key)
    child = spawn("setup")  # type: ignore[operator]
    child.expect_exact("Gateway host or IP address")
    child.sendline(sim.url)
    child.expect_exact(sim.fingerprint_sha256[:2].upper() + ":")
    child.expect_exact("Trust this certificate")
    child.sendline("y")
    child.expect_exact("Email")
    child.sendline("")
    child.expect_exact("Customer password")
    child.sendline(sim.password)
    child.expect_exact("Saved profile")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # the password was typed, not echoed and not stored
    with open(term_env["TEG_CONFIG"]) as config:
        assert sim.password not in config.read()


def test_status_is_coloured_on_a_terminal(spawn: object) -> None:
    child = spawn("status")  # type: ignore[operator]
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "\x1b[" in (child.before or "")  # rich styles it; piped output has none
    assert "producing" in child.before
