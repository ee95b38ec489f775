"""`teg monitor --gateway PROFILE` reaches the gateway as every other `teg` command does.

The README's own flow, run for real: `teg sim`, `teg setup` without --save-password (the
login's session is kept for the profile), then `teg monitor --gateway home` with no
password anywhere. It records, because it uses the profile's kept session; when that
session ends, the refusal is a line on stderr. When every gateway refuses the credentials
at start-up the monitor ends with the authentication exit code and says what to do.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teg_process import TEG, SimProcess, TegProcess, clean_env
from tegkit.cli.exit_codes import AUTHENTICATION

pytestmark = pytest.mark.timeout(240)

LISTEN = ["--listen", "127.0.0.1:0"]
FAST = ["--fast-interval", "0.5", "--slow-interval", "2", "--budget", "1000"]


@pytest.fixture()
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    # one simulator a test: refused logins lock the simulated gateway's logins out
    sim = SimProcess(tmp_path / "sim")
    try:
        yield sim
    finally:
        sim.close()


def _config(tmp_path: Path) -> str:
    return str(tmp_path / "config" / "config.toml")


def _setup(sim: SimProcess, config: str, profile: str = "home") -> None:
    """`teg setup` as the README says: the password by environment, not saved."""
    done = subprocess.run(
        [TEG, "--profile", profile, "--host", sim.url, "setup", "--yes"],
        env=clean_env(TEG_CONFIG=config, TEG_PASSWORD=sim.password),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "password" not in Path(config).read_text()


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _monitor(*args: str, env: dict[str, str]) -> tuple[TegProcess, str]:
    proc = TegProcess.teg(*args, env=env)
    url = proc.line(r"dashboard (http://\S+/)").group(1)
    return proc, url


def _until_healthy(proc: TegProcess, url: str) -> dict[str, Any]:
    def healthy() -> dict[str, Any] | None:
        status, doc = _get(url + "healthz")
        return doc if status == 200 else None

    found = proc.poll_until("/healthz to answer 200", healthy)
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("how", ["--gateway home", "teg --profile home monitor"])
def test_the_readme_flow_records_with_the_profiles_kept_session(
    sim: SimProcess, tmp_path: Path, how: str
) -> None:
    config = _config(tmp_path)
    _setup(sim, config)
    env = clean_env(TEG_CONFIG=config)  # no TEG_PASSWORD: the kept session is all there is
    db = str(tmp_path / "monitor.db")
    common = ["--db", db, "--listen", "127.0.0.1:0", *FAST]
    if how == "--gateway home":
        args = ["monitor", "--gateway", "home", *common]
    else:
        args = ["--profile", "home", "monitor", *common]
    proc, url = _monitor(*args, env=env)
    try:
        health = _until_healthy(proc, url)
        assert health["gateways"][0]["gateway"] == "home"
        status, live = _get(url + "api/live")
        assert status == 200
        assert live["gateways"][0]["reading"]["load_w"] is not None
        # the session ends (simulated time moves past its lifetime); no password to renew it
        sim.control("/advance", {"seconds": 7200})
        line = proc.line(r"(WARNING|ERROR) .*home.*(auth|401|login|password|session)")
        assert "\\n" not in line.string
        assert sim.password not in "\n".join(proc.err)
    finally:
        assert proc.stop() == 0


def _refused_run(sim: SimProcess, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # a profile as `teg setup` leaves it, without a kept session
    config.write_text(
        f'default_profile = "home"\n[profiles.home]\nhost = "{sim.url}"\n'
        f'pin = "{sim.fingerprint}"\n'
    )
    return subprocess.run(
        [TEG, "monitor", "--gateway", "home", "--db", str(tmp_path / "m.db"), *LISTEN, *FAST],
        env=clean_env(TEG_CONFIG=str(config), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_refused_password_at_start_up_ends_with_the_authentication_code(
    sim: SimProcess, tmp_path: Path
) -> None:
    done = _refused_run(sim, tmp_path, TEG_PASSWORD="not-the-password")
    assert done.returncode == AUTHENTICATION, done.stderr
    assert "every gateway refused the credentials" in done.stderr
    assert re.search(
        r"home \(https://127\.0\.0\.1:\d+\): the password given was refused", done.stderr
    )
    assert "teg --profile home login" in done.stderr
    assert "not-the-password" not in done.stderr
    assert "Traceback" not in done.stderr


def test_no_password_and_no_session_ends_with_the_authentication_code(
    sim: SimProcess, tmp_path: Path
) -> None:
    done = _refused_run(sim, tmp_path)
    assert done.returncode == AUTHENTICATION, done.stderr
    assert "no password was given and no kept session is valid" in done.stderr
    assert "--password or TEG_PASSWORD" in done.stderr


def test_one_refusing_gateway_of_two_is_logged_and_the_other_recorded(
    sim: SimProcess, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    _setup(sim, config)
    env = clean_env(TEG_CONFIG=config)
    proc, url = _monitor(
        "monitor",
        "--gateway",
        "home",
        "--gateway",
        f"wrong={sim.url}",
        "--password",
        "not-the-password",
        "--pin",
        sim.fingerprint,
        "--db",
        str(tmp_path / "m.db"),
        "--listen",
        "127.0.0.1:0",
        *FAST,
        env=env,
    )
    try:
        proc.line(r"ERROR tegkit\.cli\.monitor: wrong: the gateway refused the credentials")
        _, live = _get(url + "api/live")
        names = [g["gateway"] for g in live["gateways"]]
        assert names == ["home", "wrong"]
    finally:
        assert proc.stop() == 0
