"""`teg cloud login --fleet` end to end: the real `teg` in a subprocess, the simulator's
authorization endpoint over HTTP/2, and this test as the browser that follows the redirect."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from teg_helpers import TEG, SimThread, Teg

from tegkit.cli import exit_codes
from tegkit.sim import Simulator

APP = "my-fleet-app-0a1b2c"
SECRET = "client-secret-value-123"
DEADLINE_S = 60.0  # a bound on each wait of this test, never a measured time


@pytest.fixture()
def cloud_env(env: dict[str, str], sim: Simulator) -> dict[str, str]:
    return {
        **env,
        "TEG_CLOUD_URL": sim.cloud_url,
        "TEG_CLOUD_AUTH_URL": sim.cloud_url,
        "TEG_CLOUD_CAFILE": str(sim.cafile),
    }


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    url: str | None


def _sim_ssl(sim: Simulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sim.cafile))


async def _teg_login(
    env: dict[str, str],
    *args: str,
    browser: Callable[[str], object] | None = None,
) -> Run:
    """Run `teg --json cloud login ARGS`; `browser(url)` (a coroutine) plays the browser."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    proc = await asyncio.create_subprocess_exec(
        TEG,
        "--json",
        "cloud",
        "login",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    url = None
    lines: list[str] = []
    async with asyncio.timeout(DEADLINE_S):
        while True:
            line = (await proc.stderr.readline()).decode()
            if not line:
                break
            lines.append(line)
            if line.startswith("https://"):
                url = line.strip()
                break
        if url is not None and browser is not None:
            await browser(url)  # type: ignore[misc]
        rest_err = await proc.stderr.read()
        out = await proc.stdout.read()
        await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), "".join(lines) + rest_err.decode(), url)


def _browser(sim: Simulator, tamper: Callable[[str], str] = lambda u: u) -> Callable[[str], object]:
    async def visit(url: str) -> None:
        async with httpx.AsyncClient(verify=_sim_ssl(sim), http2=True) as tesla:
            approved = await tesla.get(url)  # the simulated user approves at once
        assert approved.status_code == 302, approved.text
        async with httpx.AsyncClient() as local:
            await local.get(tamper(approved.headers["location"]))

    return visit


def _token_file(env: dict[str, str]) -> Path:
    return Path(env["TEG_CONFIG"]).parent / "cloud" / "default.json"


async def test_fleet_login_end_to_end_then_the_cli_uses_fleet_tokens(
    cloud_env: dict[str, str], sim: Simulator, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    run = await _teg_login(
        cloud_env,
        "--fleet",
        "--client-id",
        APP,
        "--region",
        "eu",
        "--client-secret-file",
        str(secret_file),
        browser=_browser(sim),
    )
    assert run.returncode == 0, run.stderr
    assert run.url is not None and "code_challenge_method=S256" in run.url
    data = json.loads(run.stdout)
    assert data["flavour"] == "fleet" and data["client_id"] == APP and data["region"] == "eu"
    assert data["has_refresh_token"] is True
    assert sim.cloud_tokens.client_id == APP  # the simulator minted a fleet token

    token_file = _token_file(cloud_env)
    assert Path(data["token_file"]) == token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    stored = json.loads(token_file.read_text())
    assert stored["flavour"] == "fleet" and stored["client_id"] == APP
    assert stored["access_token"] == sim.cloud_tokens.access_token
    for secret in (SECRET, sim.cloud_tokens.access_token, sim.cloud_tokens.refresh_token):
        assert secret not in run.stdout + run.stderr
    assert SECRET not in token_file.read_text()

    # the next commands speak for the application: a refresh names it (else invalid_client)
    # (in-process `teg` runs its own event loop: in a thread, away from this test's)
    cteg = Teg(cloud_env)
    refreshed = await asyncio.to_thread(cteg, "--json", "cloud", "token", "refresh")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert json.loads(token_file.read_text())["client_id"] == APP
    assert sim.cloud_tokens.refresh_count >= 1
    status = await asyncio.to_thread(cteg.json, "cloud", "status")
    assert status["site_id"] == sim.cloud_site.energy_site_id


async def test_a_foreign_state_fails_the_cli_login(
    cloud_env: dict[str, str], sim: Simulator
) -> None:
    browser = _browser(sim, tamper=lambda url: url.replace("state=", "state=forged"))
    run = await _teg_login(cloud_env, "--fleet", "--client-id", APP, browser=browser)
    assert run.returncode != 0
    assert "state" in run.stderr and "teg cloud login" in run.stderr
    assert "Traceback" not in run.stderr
    assert not _token_file(cloud_env).exists()


async def test_no_browser_times_out_with_a_clear_error(cloud_env: dict[str, str]) -> None:
    run = await _teg_login(cloud_env, "--fleet", "--client-id", APP, "--timeout", "1")
    assert run.returncode != 0
    assert "no answer from the browser within 1 s" in run.stderr
    assert "Traceback" not in run.stderr
    assert not _token_file(cloud_env).exists()


def test_login_needs_fleet_and_a_client_id(cloud_env: dict[str, str]) -> None:
    cteg = Teg(cloud_env)
    owner = cteg("cloud", "login")
    assert owner.exit_code == exit_codes.USAGE and "--fleet" in owner.stderr
    assert "token import" in owner.stderr
    no_id = cteg("cloud", "login", "--fleet")
    assert no_id.exit_code == exit_codes.USAGE and "--client-id" in no_id.stderr


def test_a_secret_file_others_can_read_is_refused(
    cloud_env: dict[str, str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)
    result = Teg(cloud_env)(
        "cloud", "login", "--fleet", "--client-id", APP, "--client-secret-file", str(secret_file)
    )
    assert result.exit_code == exit_codes.REJECTED_INPUT
    assert "chmod 600" in result.stderr and SECRET not in result.stderr
    assert not _token_file(cloud_env).exists()


def test_token_import_keeps_a_fleet_token_file_fleet(
    cloud_env: dict[str, str], simthread: SimThread, sim: Simulator, tmp_path: Path
) -> None:
    # Fleet tokens saved elsewhere (another machine's login) are imported as Fleet tokens:
    # the refresh still names the application, which the simulator insists on.
    simthread.call(sim.cloud_tokens.issue, APP)
    exported = tmp_path / "fleet.json"
    exported.write_text(
        json.dumps(
            {
                "access_token": sim.cloud_tokens.access_token,
                "refresh_token": sim.cloud_tokens.refresh_token,
                "flavour": "fleet",
                "client_id": APP,
                "region": "eu",
            }
        )
    )
    cteg = Teg(cloud_env)
    assert cteg("cloud", "token", "import", str(exported)).exit_code == 0
    stored = json.loads(_token_file(cloud_env).read_text())
    assert stored["flavour"] == "fleet" and stored["client_id"] == APP
    simthread.call(sim.cloud_tokens.expire_access_token)
    status = cteg("--json", "cloud", "status")
    assert status.exit_code == 0, status.stderr
    assert json.loads(_token_file(cloud_env).read_text())["client_id"] == APP

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"access_token": "x", "flavour": "fleet"}))
    refused = cteg("cloud", "token", "import", str(broken))
    assert refused.exit_code == exit_codes.REJECTED_INPUT and "client_id" in refused.stderr
