"""Kept sessions: what `teg setup` and `teg login` keep and where, and `teg logout` always works."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from teg_helpers import SimThread, Teg

from tegkit.client._transport import base_url
from tegkit.sim import Simulator


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _session(env: dict[str, str]) -> Path:
    return Path(env["TEG_CONFIG"]).parent / "sessions" / "default.json"


def _no_traceback(result: object) -> None:
    text = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]


HOSTILE_SESSIONS = {
    "crlf token": lambda url: json.dumps({"url": url, "token": "abc\r\nX-Evil: 1", "cookies": {}}),
    "crlf cookie": lambda url: json.dumps(
        {"url": url, "token": None, "cookies": {"AuthCookie": "a\r\nSet-Cookie: b"}}
    ),
    "not json": lambda url: "{{{ not json",
    "not an object": lambda url: "[1, 2, 3]",
    "binary": lambda url: "\x00\xff\xfe garbage",
    "cookies a list": lambda url: json.dumps({"url": url, "token": "t", "cookies": [1]}),
}


@pytest.mark.parametrize("kind", HOSTILE_SESSIONS)
def test_a_hostile_session_file_is_discarded_with_a_warning(
    teg: Teg, sim: Simulator, env: dict[str, str], kind: str
) -> None:
    session = _session(env)
    session.parent.mkdir(parents=True)
    session.write_text(HOSTILE_SESSIONS[kind](str(base_url(sim.url))))
    result = teg("status")
    assert result.exit_code == 0, (result.stdout, result.stderr)  # logs in with the password
    assert "unusable" in result.stderr and str(session) in result.stderr
    _no_traceback(result)
    assert "X-Evil" not in result.stderr and "Set-Cookie" not in result.stderr


@pytest.mark.parametrize("kind", HOSTILE_SESSIONS)
def test_logout_works_with_a_hostile_session_file(
    teg: Teg, sim: Simulator, env: dict[str, str], kind: str
) -> None:
    session = _session(env)
    session.parent.mkdir(parents=True)
    session.write_text(HOSTILE_SESSIONS[kind](str(base_url(sim.url))))
    result = teg("--json", "logout", TEG_PASSWORD="")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    _no_traceback(result)
    assert not session.exists()
    data = json.loads(result.stdout)
    assert data["logged_in"] is False and data["forgotten"] == [str(session)]
    assert data["ended_on_gateway"] is False  # nothing usable to end there


@pytest.mark.parametrize(
    "config",
    [
        b"not toml [",
        b'[profiles.default]\nhost = "https://a:b@127.0.0.1"\n',
        b"[profiles.x]\nhost = 3",
        b"\xff\xfe\x00 not text",
        None,  # a folder where the file should be
    ],
)
def test_logout_works_with_a_broken_config_file(
    teg: Teg, env: dict[str, str], config: bytes | None
) -> None:
    config_path = Path(env["TEG_CONFIG"])
    sessions = config_path.parent / "sessions"
    sessions.mkdir(parents=True)
    if config is None:
        config_path.mkdir()
    else:
        config_path.write_bytes(config)
    for name in ("default", "cabin"):
        (sessions / f"{name}.json").write_text('{"url": "https://x/", "token": "t"}')
    # Other commands refuse the config, naming it; logout forgets every kept session and
    # says so.
    refused = teg("status", TEG_HOST="")
    assert refused.exit_code == 2 and "config" in refused.stderr
    _no_traceback(refused)
    result = teg("--json", "logout", TEG_HOST="")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    _no_traceback(result)
    assert list(sessions.iterdir()) == []
    assert "the gateway was not told" in result.stderr
    assert "b@" not in result.stderr  # the URL's password is not repeated
    data = json.loads(result.stdout)
    assert sorted(data["forgotten"]) == [
        str(sessions / "cabin.json"),
        str(sessions / "default.json"),
    ]


def test_logout_forgets_the_session_when_the_gateway_does_not_answer(
    teg: Teg, env: dict[str, str], simthread: SimThread
) -> None:
    assert teg("login").exit_code == 0
    session = _session(env)
    assert session.exists()
    simthread.run(simthread.sim.inject_fault("drop", path_prefix="/api/logout", count=10))
    try:
        result = teg("logout")
    finally:
        simthread.call(simthread.sim.clear_faults)
    assert result.exit_code == 0, result.stderr
    assert not session.exists()
    assert "the gateway was not told" in result.stderr
    assert "stays valid there until it expires" in result.stdout


def test_logout_without_a_host_or_a_session_is_fine(teg: Teg) -> None:
    result = teg("logout", TEG_HOST="")
    assert result.exit_code == 0, result.stderr
    assert "nothing to do" in result.stdout


def test_setup_says_what_it_keeps_and_where(teg: Teg, env: dict[str, str]) -> None:
    result = teg("setup", "--yes", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    session = _session(env)
    assert session.exists() and _mode(session) == 0o600
    said = " ".join(result.stdout.split())
    assert "The password was not stored" in said
    assert f"A login session is kept in {session} (mode 0600)" in said
    assert "until the gateway ends it or you run `teg logout`" in said
    data = teg.json("setup", "--yes", TEG_PIN="")
    assert data["session_file"] == str(session)


def test_every_folder_teg_creates_is_0700(teg: Teg, tmp_path: Path, sim: Simulator) -> None:
    # A fresh home: login first (sessions/ below a config folder that does not exist yet),
    # then the config, cloud tokens and a dump.
    home = tmp_path / "home"
    config = home / ".config" / "tegkit" / "config.toml"
    old_umask = os.umask(0o022)
    try:
        assert teg("login", TEG_CONFIG=str(config)).exit_code == 0
        assert teg("setup", "--yes", TEG_CONFIG=str(config), TEG_PIN="").exit_code == 0
        assert (
            teg("cloud", "token", "import", "--access-token", "x", TEG_CONFIG=str(config)).exit_code
            == 0
        )
        dump = home / "dumps" / "one"
        assert teg("dump", str(dump), TEG_CONFIG=str(config)).exit_code == 0
    finally:
        os.umask(old_umask)
    folders = [
        home / ".config",
        home / ".config" / "tegkit",
        home / ".config" / "tegkit" / "sessions",
        home / ".config" / "tegkit" / "cloud",
        home / "dumps",
        dump,
    ]
    assert {str(f): oct(_mode(f)) for f in folders} == {str(f): "0o700" for f in folders}
    for secret in (config, config.parent / "sessions" / "default.json",
                   config.parent / "cloud" / "default.json"):  # fmt: skip
        assert _mode(secret) == 0o600, secret


def test_tegkits_own_config_folder_is_made_0700_when_wider(teg: Teg, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    own = xdg / "tegkit"
    own.mkdir(parents=True)
    os.chmod(own, 0o755)  # as an older tegkit left it
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    assert teg("status", TEG_CONFIG="", XDG_CONFIG_HOME=str(xdg)).exit_code == 0
    assert _mode(own) == 0o700
    # A folder named by TEG_CONFIG may be shared on purpose: its mode is left alone.
    assert teg("status", TEG_CONFIG=str(shared / "config.toml")).exit_code == 0
    assert _mode(shared) == 0o755


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden", " "])
def test_a_profile_name_cannot_reach_outside_the_config_folder(
    teg: Teg, env: dict[str, str], name: str
) -> None:
    result = teg("--profile", name, "setup", "--yes", TEG_PIN="")
    assert result.exit_code == 2
    assert "profile name" in result.stderr
    assert not Path(env["TEG_CONFIG"]).parent.exists()  # nothing written anywhere
    outside = Path(env["TEG_CONFIG"]).parent.parent / "outside.json"
    outside.write_text("{}")
    refused = teg("--profile", "../../outside", "logout")
    assert refused.exit_code == 2 and outside.exists()  # logout removes no file outside
