"""Requests per second a replayed gateway (`teg sim --replay DIR`) serves, lenient and strict.

A `python -m tegkit.sim` (21.44, seed 1) is dumped with `teg dump`; then `python -m tegkit.sim
--replay DIR` serves the dump while a load generator keeps CONCURRENCY keep-alive HTTPS
connections busy for DURATION_S: wrk when installed (C: it leaves the most CPU to the
simulator), else an aiohttp client in another process. Measured: the live aggregates (the
physics laid over the captured body each clock tick), a static captured answer (/api/status)
and, strict, the captured aggregates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

CONCURRENCY = 8
DURATION_S = 5.0
_LOADGEN = r"""
import asyncio, json, ssl, sys, time
import aiohttp

async def main(url, token, cafile, concurrency, duration_s):
    ctx = ssl.create_default_context(cafile=cafile)
    conn = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
    headers = {"Authorization": "Bearer " + token}
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
        count = errors = 0
        end = time.perf_counter() + duration_s
        async def worker():
            nonlocal count, errors
            while time.perf_counter() < end:
                async with s.get(url) as r:
                    await r.read()
                    if r.status == 200:
                        count += 1
                    else:
                        errors += 1
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(json.dumps({"requests": count, "errors": errors,
                          "seconds": time.perf_counter() - start}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
"""


class _Sim:
    """A `python -m tegkit.sim ARGS` process and what it printed (URL, certificate, login)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tegkit.sim", "--port", "0", "--cloud-port", "0", "--seed", "1",
             "--cert-loopback-names", *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        lines: dict[str, str] = {}
        while "firmware" not in lines:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the simulator exited before printing its URL")
            key, _, value = line.partition(":")
            lines[key.strip()] = value.strip()
        self.url = lines["local API"]
        self.cafile = lines["certificate"]
        self.fingerprint = lines["fingerprint"].removeprefix("sha256:")
        self.password = re.search(r"password=(\S+)", lines["login"]).group(1)  # type: ignore[union-attr]

    def token(self) -> str:
        body = json.dumps(
            {"username": "customer", "email": "owner@example.com", "password": self.password}
        ).encode()
        request = urllib.request.Request(
            self.url + "/api/login/Basic", data=body, headers={"Content-Type": "application/json"}
        )
        context = ssl.create_default_context(cafile=self.cafile)
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            token: str = json.load(response)["token"]
        return token

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _dump(folder: Path) -> None:
    sim = _Sim("--speed", "1")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
        env.update(
            TEG_HOST=sim.url,
            TEG_PASSWORD=sim.password,
            TEG_PIN=sim.fingerprint,
            TEG_CONFIG=str(folder.parent / "config.toml"),
        )
        teg = str(Path(sys.executable).with_name("teg"))
        subprocess.run(
            [teg, "--json", "dump", str(folder)],
            env=env,
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        sim.stop()


def _rate(sim: _Sim, path: str) -> float:
    """Requests per second `sim` answers 200 on GET `path`."""
    token, url = sim.token(), sim.url + path
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{DURATION_S:g}s", "-H",
             f"Authorization: Bearer {token}", url],
            capture_output=True, text=True, timeout=DURATION_S * 6, check=True,
        ).stdout  # fmt: skip
        if re.search(r"Non-2xx or 3xx responses:\s+\d+", out):
            raise RuntimeError(f"{path}: the replayed gateway answered errors under load")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    out = subprocess.run(
        [sys.executable, "-c", _LOADGEN, url, token, sim.cafile, str(CONCURRENCY),
         str(DURATION_S)],
        capture_output=True, text=True, timeout=DURATION_S * 6, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out)
    if result["errors"]:
        raise RuntimeError(f"{path}: the replayed gateway answered errors under load")
    return float(result["requests"] / result["seconds"])


def run() -> list[tuple[str, float, str]]:
    tool = "wrk" if shutil.which("wrk") else "aiohttp client"
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        folder = Path(tmp) / "dump"
        _dump(folder)
        rows = []
        for strict, paths in ((False, ("/api/meters/aggregates", "/api/status")),
                              (True, ("/api/meters/aggregates",))):  # fmt: skip
            sim = _Sim("--replay", str(folder), *(["--replay-strict"] if strict else []))
            try:
                for path in paths:
                    mode = "strict" if strict else "lenient"
                    name = f"replay {mode} {path}, HTTPS keep-alive, {tool} x{CONCURRENCY}"
                    rows.append((name, _rate(sim, path), "req/s"))
            finally:
                sim.stop()
        return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name, value, unit in run():
        print(f"{name:<72} {value:10.1f} {unit}")
