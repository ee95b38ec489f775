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
    assert "TEG_PASSWORD" in result.stderr and "TEG_EMAIL" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr  # never echo a secret
    _no_traceback(result)


def test_no_password_and_no_kept_session_says_how_to_give_one(teg: Teg) -> None:
    result = teg("status", TEG_PASSWORD="")
    assert result.exit_code == 3
    assert "no password was given" in result.stderr
    assert "teg login" in result.stderr and "TEG_PASSWORD" in result.stderr
    assert "Grid" not in result.stdout  # no screen of dashes before the error
    _no_traceback(result)


def test_an_unpinned_self_signed_gateway_is_exit_7_and_says_to_pin_it(teg: Teg) -> None:
    result = teg("status", TEG_PIN="")
    assert result.exit_code == 7
    assert "does not trust" in result.stderr and "teg cert fetch" in result.stderr
    assert "PinnedCertificate" not in result.stderr  # library advice is not for the CLI
    _no_traceback(result)


def test_a_malformed_pin_is_a_usage_error_naming_the_option(teg: Teg) -> None:
    result = teg("status", TEG_PIN="abc")
    assert result.exit_code == 2
    assert "--pin" in result.stderr and "64 hex digits" in result.stderr


def test_the_fingerprint_as_teg_sim_prints_it_is_accepted(teg: Teg, sim: Simulator) -> None:
    result = teg("status", TEG_PIN=f"sha256:{sim.fingerprint_sha256}")
    assert result.exit_code == 0, result.stderr


def test_insecure_warns_once_in_one_line(teg: Teg) -> None:
    result = teg("--insecure", "status", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("certificate checks are off") == 1
    assert "teg cert fetch" in result.stderr
    assert "InsecureTlsWarning" not in result.stderr


def test_a_failed_login_is_said_once_without_log_lines(teg: Teg) -> None:
    result = teg("login", TEG_PASSWORD="not-the-password")
    assert result.exit_code == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("teg: "), result.stderr


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
