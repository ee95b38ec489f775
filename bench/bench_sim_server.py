"""Simulator throughput and memory: GET /api/meters/aggregates over HTTPS keep-alive.

One `python -m tegkit.sim --port 0` process serves; a separate process runs an aiohttp
client with 8 concurrent keep-alive connections for ~5 s. Targets: >= 3000 requests/s,
simulator RSS <= 100 MB under load.
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
import time
import urllib.request

from bench._proc import rss_mb

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


def _login_token(url: str, password: str, cafile: str) -> str:
    """Log in once (customer, 21.44 profile) and return the session token for wrk's header."""
    body = json.dumps(
        {"username": "customer", "email": "owner@example.com", "password": password}
    ).encode()
    request = urllib.request.Request(
        url + "/api/login/Basic", data=body, headers={"Content-Type": "application/json"}
    )
    context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        token: str = json.load(response)["token"]
    return token


def _with_wrk(url: str, password: str, cafile: str, pid: int) -> list[tuple[str, float, str]]:
    """wrk (C, one thread) as the load generator: it leaves the most CPU to the simulator."""
    token = _login_token(url, password, cafile)
    wrk = subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{CONCURRENCY}",
            f"-d{DURATION_S:g}s",
            "-H",
            f"Authorization: Bearer {token}",
            url + "/api/meters/aggregates",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(DURATION_S / 2)
    peak_rss_mb = rss_mb(pid)
    out, _ = wrk.communicate(timeout=DURATION_S * 6)
    peak_rss_mb = max(peak_rss_mb, rss_mb(pid))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return [
        (f"sim aggregates, HTTPS keep-alive, wrk x{CONCURRENCY} (target >= 3000)", rate, "req/s"),
        ("sim RSS under wrk load (target <= 100)", peak_rss_mb, "MB"),
        ("sim non-2xx answers under wrk", float(non_2xx.group(1)) if non_2xx else 0.0, "count"),
    ]


def _with_aiohttp(url: str, password: str, cafile: str, pid: int) -> list[tuple[str, float, str]]:
    """An aiohttp client in another process: what a Python poller fleet would see."""
    load = subprocess.Popen(
        [sys.executable, "-c", _LOADGEN, url, password, cafile, str(CONCURRENCY), str(DURATION_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(DURATION_S / 2)
    peak_rss_mb = rss_mb(pid)
    out, _ = load.communicate(timeout=DURATION_S * 6)
    peak_rss_mb = max(peak_rss_mb, rss_mb(pid))
    result = json.loads(out)
    rate = result["requests"] / result["seconds"]
    return [
        (f"sim aggregates, HTTPS keep-alive, aiohttp client x{CONCURRENCY}", rate, "req/s"),
        ("sim RSS under aiohttp load (target <= 100)", peak_rss_mb, "MB"),
        ("sim non-200 answers under aiohttp", float(result["errors"]), "count"),
    ]


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
            "--cert-loopback-names",  # the load generators dial 127.0.0.1 and verify the name
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
        rows = []
        if shutil.which("wrk"):
            rows += _with_wrk(url, password, cafile, sim.pid)
        rows += _with_aiohttp(url, password, cafile, sim.pid)
        return rows
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name, value, unit in run():
        print(f"{name:<64} {value:10.1f} {unit}")
