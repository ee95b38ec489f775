"""A simulated fleet: 1,000 gateways in one `teg sim --gateways` process.

Measured: the time from launching `python -m tegkit.sim --gateways 1000 --json` to its start
line (imports included) and the fleet's own start time; RSS idle; CPU idle (the one clock
task moving every gateway, speed 1); then a load generator in another process, one
keep-alive TLS client per gateway (each pinned to its gateway's certificate, logged in with
its password file), GET /api/meters/aggregates in a loop: requests/s across the fleet, the
slowest gateway's share, RSS under load; and the time SIGTERM takes to stop everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bench._proc import cpu_s, rss_mb

GATEWAYS = int(os.environ.get("BENCH_FLEET_GATEWAYS", "1000"))
DURATION_S = 10.0
IDLE_S = 10.0
_LOADGEN = r"""
import asyncio, json, sys, time
from pathlib import Path
import aiohttp

async def gateway(member, opening, ready, go, window, counts, errors):
    # one keep-alive connection, pinned to this gateway's certificate (SHA-256, as tegkit)
    pin = aiohttp.Fingerprint(bytes.fromhex(member["fingerprint_sha256"]))
    conn = aiohttp.TCPConnector(limit=1, ssl=pin)
    async with aiohttp.ClientSession(connector=conn,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        url = member["url"]
        async with opening:  # a few handshakes and logins at a time, then all at once
            async with s.get(url + "/api/status") as r:
                await r.read()
            if member["firmware"] != "1.40":  # 1.x serves live data without a login
                password = Path(member["password_file"]).read_text().strip()
                async with s.post(url + "/api/login/Basic", json={"username": "customer",
                                  "email": "owner@example.com", "password": password}) as r:
                    assert r.status == 200, (member["name"], r.status)
        ready.append(member["name"])
        await go.wait()
        n = bad = 0
        while time.perf_counter() < window[1]:
            async with s.get(url + "/api/meters/aggregates") as r:
                await r.read()
                if r.status == 200:
                    n += 1
                else:
                    bad += 1
        counts.append(n)
        errors.append(bad)

async def main(line, duration_s):
    members = json.loads(line)["members"]
    counts, errors, ready, window = [], [], [], [0.0, 0.0]
    opening, go = asyncio.Semaphore(20), asyncio.Event()
    tasks = [asyncio.create_task(gateway(m, opening, ready, go, window, counts, errors))
             for m in members]
    began = time.perf_counter()
    while len(ready) < len(members):  # every gateway connected and logged in
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)  # one failed: say why
        await asyncio.sleep(0.05)
    ready_s = time.perf_counter() - began
    window[0] = time.perf_counter()
    window[1] = window[0] + duration_s
    print("ready", flush=True)
    go.set()
    await asyncio.gather(*tasks)
    print(json.dumps({"requests": sum(counts), "errors": sum(errors), "ready_s": ready_s,
                      "min_per_gateway": min(counts), "max_per_gateway": max(counts),
                      "seconds": time.perf_counter() - window[0]}))

asyncio.run(main(sys.stdin.read(), float(sys.argv[1])))
"""


def run() -> list[tuple[str, float, str]]:
    n = GATEWAYS
    began = time.perf_counter()
    sim = subprocess.Popen(
        [sys.executable, "-m", "tegkit.sim", "--gateways", str(n), "--port", "0", "--json",
         "--speed", "1", "--seed", "1"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        if not line:
            raise RuntimeError("the fleet exited before its start line")
        launched_s = time.perf_counter() - began
        start = json.loads(line)
        rss_idle_mb = rss_mb(sim.pid)
        cpu_before = cpu_s(sim.pid)
        time.sleep(IDLE_S)  # a bench measures over wall time; no test orders events by it
        idle_cpu_percent = 100 * (cpu_s(sim.pid) - cpu_before) / IDLE_S
        load = subprocess.Popen(
            [sys.executable, "-c", _LOADGEN, str(DURATION_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdin is not None
        load.stdin.write(line)
        load.stdin.close()
        assert load.stdout is not None
        if load.stdout.readline().strip() != "ready":  # every client connected, logged in
            raise RuntimeError("the load generator failed before its clients were ready")
        cpu_before, asking = cpu_s(sim.pid), time.perf_counter()
        rss_load_mb = rss_mb(sim.pid)
        result = json.loads(load.stdout.readline())
        load_cpu_percent = 100 * (cpu_s(sim.pid) - cpu_before) / (time.perf_counter() - asking)
        rss_load_mb = max(rss_load_mb, rss_mb(sim.pid))
        load.wait(timeout=60)
        stopping = time.perf_counter()
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=120)
        stop_s = time.perf_counter() - stopping
    finally:
        if sim.poll() is None:
            sim.kill()
    return [
        (f"fleet of {n}: launch to start line (imports included)", launched_s, "s"),
        (f"fleet of {n}: start() itself", float(start["start_s"]), "s"),
        (f"fleet of {n}: RSS idle", rss_idle_mb, "MB"),
        (f"fleet of {n}: CPU idle at speed 1 (one clock task)", idle_cpu_percent, "% core"),
        (
            f"fleet of {n}: aggregates over TLS keep-alive, a client per gateway",
            result["requests"] / result["seconds"],
            "req/s",
        ),
        (
            f"fleet of {n}: fewest requests served to one gateway",
            result["min_per_gateway"],
            "count",
        ),
        (f"fleet of {n}: non-200 answers under load", float(result["errors"]), "count"),
        (f"fleet of {n}: its CPU while asked", load_cpu_percent, "% core"),
        (  # the client is the bottleneck here: what one core of the fleet serves
            f"fleet of {n}: requests served per CPU second of the fleet",
            result["requests"] / result["seconds"] / max(load_cpu_percent / 100, 1e-9),
            "req/s",
        ),
        (f"fleet of {n}: RSS under load", rss_load_mb, "MB"),
        (f"fleet of {n}: every client connected and logged in", result["ready_s"], "s"),
        (f"fleet of {n}: SIGTERM to exit", stop_s, "s"),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name, value, unit in run():
        print(f"{name:<64} {value:10.2f} {unit}")
