"""Simulator throughput and memory: GET /api/meters/aggregates over HTTPS keep-alive.

One `python -m tegkit.sim --port 0` process serves; a separate process runs an aiohttp
client with 8 concurrent keep-alive connections for ~5 s. Targets: >= 3000 requests/s,
simulator RSS <= 100 MB under load.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

CONCURRENCY = 8
DURATION_S = 5.0
_LOADGEN = r"""
import asyncio, json, ssl, sys, time
import aiohttp

async def main(url, password, cafile, concurrency, duration_s):
    ctx = ssl.create_default_context(cafile=cafile)
    conn = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
    async with aiohttp.ClientSession(connector=conn,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(url + "/api/login/Basic", json={"username": "customer",
                          "email": "owner@example.com", "password": password}) as r:
            assert r.status == 200, r.status
        count = errors = 0
        end = time.perf_counter() + duration_s
        async def worker():
            nonlocal count, errors
            while time.perf_counter() < end:
                async with s.get(url + "/api/meters/aggregates") as r:
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


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run() -> list[tuple[str, float, str]]:
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tegkit.sim",
            "--port",
            "0",
            "--cloud-port",
            "0",
            "--speed",
            "1",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        lines: dict[str, str] = {}
        while len(lines) < 5:
            line = sim.stdout.readline()
            if not line:
                raise RuntimeError("the simulator exited before printing its URL")
            key, _, value = line.partition(":")
            lines[key.strip()] = value.strip()
        url = lines["local API"]
        password = re.search(r"password=(\S+)", lines["login"]).group(1)  # type: ignore[union-attr]
        cafile = lines["certificate"]
        load = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LOADGEN,
                url,
                password,
                cafile,
                str(CONCURRENCY),
                str(DURATION_S),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(DURATION_S / 2)
        rss_mb = _rss_mb(sim.pid)
        out, _ = load.communicate(timeout=DURATION_S * 6)
        rss_mb = max(rss_mb, _rss_mb(sim.pid))
        result = json.loads(out)
        rate = result["requests"] / result["seconds"]
        return [
            (
                "sim GET /api/meters/aggregates, HTTPS keep-alive, aiohttp client x8 (req/s)",
                rate,
                "target >= 3000",
            ),
            ("sim process RSS under load (MB)", rss_mb, "target <= 100"),
            ("sim non-200 answers during the run", float(result["errors"]), "target 0"),
        ]
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name, value, note in run():
        print(f"{name}: {value:.1f} ({note})")
