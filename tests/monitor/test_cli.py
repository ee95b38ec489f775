"""`teg monitor` options: the control token from the environment, checked before any start."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from teg_process import TEG, clean_env
from tegkit.cli.monitor import CONTROL_TOKEN_ENV, demo, monitor, parse_listen

GATEWAY = ["--gateway", "home=https://192.0.2.10"]


@pytest.mark.parametrize("command", [monitor, demo])
def test_the_control_token_comes_from_the_environment(
    command: click.Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONTROL_TOKEN_ENV, "from-the-environment")
    args = GATEWAY if command is monitor else []
    ctx = command.make_context(command.name, list(args))
    assert ctx.params["control_token"] == "from-the-environment"
    monkeypatch.delenv(CONTROL_TOKEN_ENV)
    assert command.make_context(command.name, list(args)).params["control_token"] is None


@pytest.mark.parametrize("command", [monitor, demo])
def test_a_short_control_token_is_refused_before_anything_starts(
    command: click.Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONTROL_TOKEN_ENV, "short")
    args = GATEWAY if command is monitor else []
    with pytest.raises(click.BadParameter, match="at least 8 characters"):
        command.make_context(command.name, list(args))


def test_the_help_names_the_variable_and_the_loopback_default() -> None:
    result = CliRunner().invoke(monitor, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    assert CONTROL_TOKEN_ENV in result.output
    assert "127.0.0.1:8675" in result.output


def test_listen_defaults_to_loopback_and_names_what_it_expects() -> None:
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:8675") == ("::1", 8675)
    for bad in ("8675", "host:port", "127.0.0.1:70000"):
        with pytest.raises(click.BadParameter, match="HOST:PORT"):
            parse_listen(bad)


@pytest.mark.parametrize("kind", ["not-a-database", "postgres-down"])
def test_a_database_that_cannot_be_opened_is_one_line_naming_db(tmp_path: Path, kind: str) -> None:
    """An unusable --db is the user's to fix: one line naming --db, exit 1, no traceback and
    no "bug in tegkit"; the password in a database URL is never repeated."""
    if kind == "not-a-database":
        db = tmp_path / "monitor.db"
        db.write_bytes(b"this is no SQLite file " * 64)
        url = str(db)
    else:
        with socket.socket() as s:  # a loopback port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"postgresql://teg:s3cret-pw@127.0.0.1:{port}/tegkit"
    gateway = ["--gateway", "home=https://127.0.0.1:9", "--password", "x"]
    pin = ["--pin", "sha256:" + "a" * 64]
    done = subprocess.run(
        [TEG, "monitor", *gateway, *pin, "--db", url, "--listen", "127.0.0.1:0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "cannot start: the database (--db):" in done.stderr
    assert "Traceback" not in done.stderr and "bug in tegkit" not in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
