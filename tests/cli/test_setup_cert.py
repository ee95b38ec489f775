"""`teg setup`, `teg cert`, profiles and precedence, `teg login`/`logout`; the config file."""

from __future__ import annotations

import socket
import stat
import tomllib
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg

from tegkit.sim import Simulator


def _config(env: dict[str, str]) -> Path:
    return Path(env["TEG_CONFIG"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}"


def test_setup_by_options_pins_tests_and_saves_a_0600_profile(
    teg: Teg, sim: Simulator, env: dict[str, str]
) -> None:
    result = teg("--json", "setup", "--yes", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["pin_sha256"] == sim.fingerprint_sha256
    assert data["firmware_version"] == "21.44 223a56cd"
    assert data["logged_in"] is True and data["password_saved"] is False
    # the fingerprint was shown before it was trusted
    assert ":".join([sim.fingerprint_sha256[:2].upper(), sim.fingerprint_sha256[2:4].upper()]) in (
        result.stderr
    )
    path = _config(env)
    assert _mode(path) == 0o600
    saved = tomllib.loads(path.read_text())
    assert saved["default_profile"] == "default"
    profile = saved["profiles"]["default"]
    assert profile["host"] == sim.url and profile["pin"] == sim.fingerprint_sha256
    assert "password" not in profile
    assert sim.password not in path.read_text()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_setup_without_a_terminal_or_yes_refuses_to_trust(teg: Teg, env: dict[str, str]) -> None:
    result = teg("setup", TEG_PIN="")
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert not _config(env).exists()


def test_setup_with_a_wrong_expected_fingerprint_is_exit_7(teg: Teg, env: dict[str, str]) -> None:
    result = teg("setup", "--expect", "cd" * 32, TEG_PIN="")
    assert result.exit_code == 7
    assert not _config(env).exists()


def test_setup_with_a_wrong_password_saves_nothing(teg: Teg, env: dict[str, str]) -> None:
    result = teg("setup", "--yes", TEG_PIN="", TEG_PASSWORD="wrong")
    assert result.exit_code == 3
    assert not _config(env).exists()


def test_saved_profile_is_used_and_env_and_options_override_it(
    teg: Teg, sim: Simulator, env: dict[str, str]
) -> None:
    assert teg("setup", "--yes", "--save-password", TEG_PIN="").exit_code == 0
    path = _config(env)
    assert _mode(path) == 0o600
    assert tomllib.loads(path.read_text())["profiles"]["default"]["password"] == sim.password
    only_config = {"TEG_HOST": "", "TEG_PASSWORD": "", "TEG_PIN": ""}
    # profile alone
    assert teg("status", **only_config).exit_code == 0
    # environment beats profile
    closed = _closed_port_url()
    assert teg("status", **{**only_config, "TEG_HOST": closed}).exit_code == 4
    # command line beats environment
    result = teg("--host", sim.url, "status", **{**only_config, "TEG_HOST": closed})
    assert result.exit_code == 0
    # a pin from the environment replaces the profile's whole TLS choice
    assert teg("status", **{**only_config, "TEG_PIN": "ab" * 32}).exit_code == 7


def test_named_profiles_for_several_gateways(teg: Teg, sim: Simulator, env: dict[str, str]) -> None:
    assert teg("--profile", "cabin", "setup", "--yes", TEG_PIN="").exit_code == 0
    assert teg("--profile", "home", "--host", _closed_port_url(), "cert", "show").exit_code == 0
    saved = tomllib.loads(_config(env).read_text())
    assert saved["default_profile"] == "cabin"
    assert set(saved["profiles"]) == {"cabin"}  # `cert show` wrote nothing
    unknown = teg("--profile", "nowhere", "status")
    assert unknown.exit_code == 2
    assert "cabin" in unknown.stderr  # names the profiles there are


def test_cert_fetch_pins_and_show_checks(teg: Teg, sim: Simulator, env: dict[str, str]) -> None:
    refused = teg("cert", "fetch", TEG_PIN="")
    assert refused.exit_code == 2  # no terminal to confirm on, no --yes
    fetched = teg.json("cert", "fetch", "--yes", TEG_PIN="")
    assert fetched["sha256"] == sim.fingerprint_sha256
    assert _mode(_config(env)) == 0o600
    shown = teg.json("cert", "show", "--check", TEG_PIN="")
    assert shown["pin_sha256"] == sim.fingerprint_sha256
    assert shown["matches"] is True
    # The profile's pin now protects commands given no pin at all.
    assert teg("status", TEG_PIN="").exit_code == 0


def test_cert_show_check_detects_a_replaced_certificate(
    teg: Teg, simthread: SimThread, env: dict[str, str]
) -> None:
    own = SimThread()  # rotating the certificate must not disturb the module's simulator
    try:
        own_env = {"TEG_HOST": own.sim.url, "TEG_PIN": "", "TEG_PASSWORD": own.sim.password}
        assert teg("cert", "fetch", "--yes", **own_env).exit_code == 0
        own.run(own.sim.inject_fault("rotate_cert"))
        result = teg("cert", "show", "--check", **own_env)
        assert result.exit_code == 7
        assert "teg cert fetch" in result.stderr
        assert teg("status", **own_env).exit_code == 7
        # After replacing a gateway: fetch again, and it works.
        assert teg("cert", "fetch", "--yes", **own_env).exit_code == 0
        assert teg("status", **own_env).exit_code == 0
    finally:
        own.close()


def test_login_keeps_a_0600_session_and_logout_ends_it(teg: Teg, env: dict[str, str]) -> None:
    session = _config(env).parent / "sessions" / "default.json"
    assert teg.json("login") == {
        "host": env["TEG_HOST"],
        "profile": "default",
        "logged_in": True,
        "session_file": str(session),
    }
    assert _mode(session) == 0o600
    # The kept session serves later commands without a password.
    assert teg("status", TEG_PASSWORD="").exit_code == 0
    out = teg.json("logout")
    assert out["logged_in"] is False and out["ended_on_gateway"] is True
    assert out["forgotten"] == [str(session)]
    assert not session.exists()
    assert teg("status", TEG_PASSWORD="").exit_code == 3


@pytest.mark.parametrize("bad", ["host = 3\n", '[profiles.x]\ncolour = "red"\n', "not toml ["])
def test_a_broken_config_file_is_a_usage_error(teg: Teg, env: dict[str, str], bad: str) -> None:
    path = _config(env)
    path.parent.mkdir(parents=True)
    path.write_text(bad if bad.startswith("[") or "=" not in bad else f"[profiles.x]\n{bad}")
    result = teg("status")
    assert result.exit_code == 2
    assert "config file" in result.stderr
