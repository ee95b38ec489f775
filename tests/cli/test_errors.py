"""Bad input and failures end with their documented exit code and a message saying what next."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg

from tegkit.sim import Simulator


def _no_traceback(result: object) -> None:
    text = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in text


def test_wrong_password_is_exit_3_and_says_what_to_check(teg: Teg, sim: Simulator) -> None:
    result = teg("login", TEG_PASSWORD="not-the-password")
    assert result.exit_code == 3
    assert "authentication failed" in result.stderr
    assert "TEG_PASSWORD" in result.stderr and "teg login" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr  # never echo a secret
    _no_traceback(result)


def test_closed_port_is_exit_4(teg: Teg) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = teg("status", TEG_HOST=f"https://127.0.0.1:{port}")
    assert result.exit_code == 4
    assert "cannot reach the gateway" in result.stderr
    assert "TEG_HOST" in result.stderr
    _no_traceback(result)


def test_pinned_fingerprint_that_does_not_match_is_exit_7(teg: Teg, sim: Simulator) -> None:
    result = teg("status", TEG_PIN="ab" * 32)
    assert result.exit_code == 7
    assert "certificate changed" in result.stderr
    assert "teg cert fetch" in result.stderr
    assert sim.fingerprint_sha256 in result.stderr  # what it presents, to compare
    _no_traceback(result)


def test_reserve_out_of_range_is_exit_8_and_nothing_is_sent(teg: Teg) -> None:
    before = teg.json("status")["backup_reserve_raw_percent"]
    result = teg("set", "reserve", "150")
    assert result.exit_code == 8
    assert "0 to 100" in result.stderr and "app scale" in result.stderr
    assert "Nothing was sent" in result.stderr
    assert teg.json("status")["backup_reserve_raw_percent"] == before
    _no_traceback(result)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["set", "reserve", "abc"], "'abc' is not a valid float"),
        (["set", "mode", "turbo"], "'turbo' is not one of"),
        (["set", "reserve", "20", "--scale", "percent"], "--scale"),
        (["get", "/api/not/a/thing"], "not in the endpoint catalog"),
        (["get", "/api/foo"], "not in the endpoint catalog"),  # not the generic /api/{resource}
        (["get", "-X", "POST", "/api/status"], "it has GET"),
        (["watch", "--interval", "0"], "--interval"),
        (["--pin", "ab" * 32, "--insecure", "status"], "choose one of"),
    ],
)
def test_usage_errors_are_exit_2(teg: Teg, args: list[str], needle: str) -> None:
    result = teg(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    _no_traceback(result)


def test_no_host_anywhere_is_a_usage_error_naming_the_ways_to_give_one(teg: Teg) -> None:
    result = teg("status", TEG_HOST="")
    assert result.exit_code == 2
    assert "--host" in result.stderr and "teg setup" in result.stderr


def test_customer_may_not_set_the_mode_locally_exit_9(teg: Teg) -> None:
    # The simulator plays 21.44: POST /api/operation is installer-only, as on real gateways.
    result = teg("set", "mode", "backup")
    assert result.exit_code == 9
    assert "permission denied" in result.stderr
    assert "teg cloud set" in result.stderr
    _no_traceback(result)


def test_a_400_from_the_gateway_is_exit_8(teg: Teg) -> None:
    result = teg("get", "-X", "POST", "/api/site_info/site_name", "--data", '{"x": 1}', "--yes")
    assert result.exit_code == 8
    assert "rejected" in result.stderr


def test_verbose_shows_the_traceback(teg: Teg) -> None:
    result = teg("--verbose", "status", TEG_PIN="ab" * 32)
    assert result.exit_code == 7
    assert "Traceback" in result.stderr
    assert "CertificateMismatchError" in result.stderr


def test_a_slow_gateway_is_exit_4_and_names_the_timeout(teg: Teg, simthread: SimThread) -> None:
    simthread.run(simthread.sim.inject_fault("latency", latency_ms=3000, count=20))
    try:
        result = teg("--timeout", "0.5", "status")
    finally:
        simthread.call(simthread.sim.clear_faults)
    assert result.exit_code == 4
    assert "did not answer in time" in result.stderr and "--timeout" in result.stderr


def test_verbose_logging_shows_no_secret(teg: Teg, sim: Simulator, env: dict[str, str]) -> None:
    result = teg("--verbose", "login")
    assert result.exit_code == 0
    assert "logged in" in result.stderr  # the log is there
    session = Path(env["TEG_CONFIG"]).parent / "sessions" / "default.json"
    token = json.loads(session.read_text())["token"]
    for secret in (sim.password, token):
        assert secret not in result.stdout + result.stderr
