"""Help texts: every command shows an example; the exit codes, env vars and completion."""

from __future__ import annotations

import os
import subprocess

import click
import pytest
from click.testing import CliRunner
from teg_helpers import TEG

from tegkit.cli import exit_codes, main
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    CertificateMismatchError,
    ConnectionFailedError,
    EndpointNotSupportedError,
    GatewayBusyError,
    GatewayTimeoutError,
    InvalidInputError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
    SystemStoppedError,
)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(main)


def test_the_command_tree_has_every_family() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in (
        "setup", "cert fetch", "cert show", "status", "watch", "get", "set reserve", "set mode",
        "set site-name", "sitemaster run", "sitemaster stop", "login", "logout", "endpoints",
        "cloud token import", "cloud token refresh", "cloud products", "cloud status",
        "cloud set reserve", "cloud set mode", "cloud set site-name", "dump", "sim", "completion",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "teg")
def test_every_help_shows_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], prog_name="teg", env={})
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_root_help_documents_exit_codes_env_vars_and_completion() -> None:
    result = CliRunner().invoke(main, ["--help"], prog_name="teg")
    text = result.output
    for code, meaning in exit_codes.TABLE:
        assert f"{code:>2}  {meaning}" in text
    for var in ("TEG_HOST", "TEG_PASSWORD", "TEG_EMAIL", "TEG_CAFILE", "TEG_PIN", "TEG_INSECURE",
                "TEG_SNI", "TEG_TIMEOUT", "TEG_PROFILE"):  # fmt: skip
        assert var in text
    assert "_TEG_COMPLETE=bash_source teg" in text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AuthenticationError(401, "POST", "/api/login/Basic"), 3),
        (ConnectionFailedError("refused"), 4),
        (GatewayTimeoutError("slow"), 4),
        (RateLimitedError(429, "GET", "/api/status", retry_after_s=5), 5),
        (SystemStoppedError(502, "GET", "/api/meters/aggregates"), 6),
        (CertificateMismatchError("aa" * 32, "bb" * 32), 7),
        (InvalidInputError("mode", "one of ...", "turbo"), 8),
        (ApiError(400, "POST", "/api/operation"), 8),
        (PermissionDeniedError(403, "POST", "/api/operation"), 9),
        (EndpointNotSupportedError(404, "GET", "/api/devices/vitals"), 10),
        (GatewayBusyError(503, "GET", "/api/status"), 1),
        (ParseError("GET /api/status", "bad"), 1),
        (ApiError(500, "GET", "/api/status"), 1),
    ],
)
def test_each_error_class_has_its_documented_code(error: Exception, code: int) -> None:
    assert exit_codes.exit_code(error) == code
    assert exit_codes.message(error)  # every one says something


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_click_would(shell: str) -> None:
    printed = CliRunner().invoke(main, ["completion", shell], prog_name="teg")
    assert printed.exit_code == 0
    env = {**os.environ, "_TEG_COMPLETE": f"{shell}_source"}
    native = subprocess.run([TEG], env=env, capture_output=True, text=True, check=True)
    assert printed.output.strip() == native.stdout.strip()
    assert "_TEG_COMPLETE" in printed.output


def test_completion_completes_subcommands() -> None:
    env = {
        **os.environ,
        "_TEG_COMPLETE": "bash_complete",
        "COMP_WORDS": "teg sit",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([TEG], env=env, capture_output=True, text=True, check=True)
    assert "sitemaster" in done.stdout
