"""`teg sim --json` / `python -m tegkit.sim --json` as a harness in another language runs it:
a real process, one JSON line on stdout, then everything it says is used over real HTTPS."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import stat
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from teg_process import TegProcess, clean_env
from tegkit.sim.cli import START_LINE_FORMAT
from tegkit.sim.replay import concrete

KEYS = {
    "format",
    "pid",
    "host",
    "local_url",
    "cloud_url",
    "control_url",
    "openapi_url",
    "http_url",
    "local_port",
    "cloud_port",
    "http_port",
    "fingerprint_sha256",
    "cafile",
    "certificate_names",
    "email",
    "password",
    "control_token",
    "cloud_tokens_file",
    "firmware",
    "speed",
    "seed",
    "state_dir",
    "release",
    "replay",
}


def _start_line(process: TegProcess) -> dict[str, Any]:
    process.wait_for("the JSON start line", lambda: process.out)
    line = json.loads(process.out[0])
    assert isinstance(line, dict)
    assert line["format"] == START_LINE_FORMAT
    assert set(line) == KEYS
    return line


def _python_m_sim(*args: str) -> TegProcess:
    return TegProcess([sys.executable, "-m", "tegkit.sim", "--json", *args], clean_env())


def _stop_cleanly(process: TegProcess) -> None:
    """SIGTERM ends it with 0, having printed nothing on stdout but the start line."""
    assert process.stop(sig=signal.SIGTERM) == 0, "\n".join(process.err)
    assert len(process.out) == 1, process.out
    assert "simulator stopped" in process.err
    assert not any("Traceback" in line for line in process.err)


async def test_python_m_sim_json_line_logs_in_and_drives_the_control_api() -> None:
    process = _python_m_sim("--port", "0", "--speed", "0", "--firmware", "23.44")
    try:
        line = _start_line(process)
        assert line["pid"] == process.proc.pid
        assert line["host"] == "127.0.0.1"
        assert line["local_url"] == f"https://127.0.0.1:{line['local_port']}"
        assert line["cloud_url"] == f"https://127.0.0.1:{line['cloud_port']}"
        assert line["control_url"] == line["local_url"] + "/sim"
        assert (line["http_url"], line["http_port"]) == (None, None)
        assert (line["firmware"], line["speed"], line["release"]) == ("23.44", 0.0, None)
        assert line["replay"] is None
        assert len(line["fingerprint_sha256"]) == 64
        # a real gateway's names only: a client verifying the certificate sends one as SNI
        name = line["certificate_names"][0]
        assert "127.0.0.1" not in line["certificate_names"]
        context = ssl.create_default_context(cafile=line["cafile"])
        login = {"username": "customer", "email": line["email"], "password": line["password"]}
        async with aiohttp.ClientSession() as session:
            url = line["local_url"]
            async with session.post(
                f"{url}/api/login/Basic", json=login, ssl=context, server_hostname=name
            ) as reply:
                assert reply.status == 200
                token = (await reply.json())["token"]
            async with session.get(
                f"{url}/api/system_status/soe",
                headers={"Authorization": f"Bearer {token}"},
                ssl=context,
                server_hostname=name,
            ) as reply:
                assert reply.status == 200
                assert 0 <= (await reply.json())["percentage"] <= 100
            control = {"Authorization": f"Bearer {line['control_token']}"}
            async with session.get(
                f"{line['control_url']}/state", headers=control, ssl=context, server_hostname=name
            ) as reply:
                before = await reply.json()
            async with session.post(
                f"{line['control_url']}/advance",
                json={"seconds": 3600},
                headers=control,
                ssl=context,
                server_hostname=name,
            ) as reply:
                assert reply.status == 200
                after = await reply.json()
            async with session.get(
                f"{line['control_url']}/state", ssl=context, server_hostname=name
            ) as reply:
                assert reply.status == 403  # no token, no control
        assert before["fingerprint_sha256"] == line["fingerprint_sha256"]
        assert before["firmware"] == "23.44"
        # speed 0: the clock moved by exactly what was asked
        elapsed_s = _seconds_between(before["now"], after["now"])
        assert elapsed_s == 3600
        _stop_cleanly(process)
    finally:
        process.close()  # kill only if an assertion above left it running


def test_sigterm_ends_it_cleanly_and_removes_its_temporary_state() -> None:
    process = _python_m_sim("--port", "0")
    try:
        line = _start_line(process)
        state_dir = Path(line["state_dir"])
        assert Path(line["cafile"]).parent == state_dir
        assert state_dir.is_dir()
        _stop_cleanly(process)
        assert not state_dir.exists()  # its own temporary directory: gone with it
    finally:
        process.close()


def test_teg_sim_json_with_loopback_names_works_with_plain_stdlib_https(tmp_path: Path) -> None:
    process = TegProcess.teg(
        "sim",
        "--json",
        "--port",
        "0",
        "--http-port",
        "0",
        "--speed",
        "0",
        "--cert-loopback-names",
        "--state-dir",
        str(tmp_path),
        "--release-firmware",
        "23.44@+2h",
        env=clean_env(),
    )
    try:
        line = _start_line(process)
        assert line["state_dir"] == str(tmp_path)
        assert "127.0.0.1" in line["certificate_names"]
        assert line["release"].startswith("23.44 released at ")
        # what curl --cacert does: the certificate file verifies the address itself
        context = ssl.create_default_context(cafile=line["cafile"])
        request = urllib.request.Request(
            f"{line['local_url']}/api/login/Basic",
            data=json.dumps(
                {"username": "customer", "email": line["email"], "password": line["password"]}
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as reply:
            assert json.loads(reply.read())["token"]
        # the plain-HTTP port sends clients to the HTTPS one
        plain = http.client.HTTPConnection(line["host"], line["http_port"], timeout=30)
        plain.request("GET", "/api/status")
        redirect = plain.getresponse()
        assert redirect.status == 301
        assert redirect.getheader("Location") == f"{line['local_url']}/api/status"
        plain.close()
        assert line["http_url"] == f"http://127.0.0.1:{line['http_port']}"
        # the cloud tokens file opens the simulated Owner API
        tokens_file = Path(line["cloud_tokens_file"])
        assert stat.S_IMODE(os.stat(tokens_file).st_mode) == 0o600
        access_token = json.loads(tokens_file.read_text())["access_token"]
        products = urllib.request.Request(
            f"{line['cloud_url']}/api/1/products",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        with urllib.request.urlopen(products, context=context, timeout=30) as reply:
            assert len(json.loads(reply.read())["response"]) >= 1
        _stop_cleanly(process)
        assert Path(line["cafile"]).exists()  # a state directory of the caller's is kept
    finally:
        process.close()


def test_a_usage_error_in_json_mode_prints_nothing_on_stdout() -> None:
    process = _python_m_sim("--port", "0", "--release-firmware", "9.99")
    try:
        assert process.finish() == 2
        assert process.out == []
        assert any("--release-firmware" in line for line in process.err)
        assert not any("Traceback" in line for line in process.err)
    finally:
        process.close()


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_a_replay_started_with_json_says_so_and_serves_the_dump(tmp_path: Path) -> None:
    """The simulator dumped by `teg dump`, then replayed strictly with --json."""
    original = _python_m_sim("--port", "0", "--speed", "0", "--cert-loopback-names")
    try:
        line = _start_line(original)
        folder = tmp_path / "dump"
        dumped = TegProcess.teg(
            "--json",
            "dump",
            str(folder),
            env=clean_env(
                TEG_HOST=line["local_url"],
                TEG_PASSWORD=line["password"],
                TEG_PIN=line["fingerprint_sha256"],
                TEG_CONFIG=str(tmp_path / "config.toml"),
            ),
        )
        assert dumped.finish() == 0, "\n".join(dumped.err)
        _stop_cleanly(original)
    finally:
        original.close()
    replay = _python_m_sim(
        "--port", "0", "--cert-loopback-names", "--replay", str(folder), "--replay-strict"
    )  # fmt: skip
    try:
        line = _start_line(replay)
        assert line["replay"]["folder"] == str(folder)
        assert line["replay"]["strict"] is True
        assert line["replay"]["endpoints"] > 10
        context = ssl.create_default_context(cafile=line["cafile"])
        with urllib.request.urlopen(
            f"{line['local_url']}/api/status", context=context, timeout=30
        ) as reply:
            served = json.loads(reply.read())
        # exactly the captured body, its redacted serials made concrete
        assert served == json.loads(concrete((folder / "status.json").read_text()))
        _stop_cleanly(replay)
    finally:
        replay.close()
