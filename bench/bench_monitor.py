"""Monitor benchmarks: /api/live and /metrics throughput, gateway requests, memory.

`run()` returns (name, value, unit) rows:
- requests per second of /api/live and of /metrics: 8 concurrent keep-alive clients in
  this process against `teg monitor` in its own process (target >= 3000/s each);
- gateway requests caused by dashboard refreshes (target 0: served from the live state);
- duplicate gateway requests in poll cycles (target 0: single flight);
- RSS of the monitor process watching one gateway (target <= 100 MB).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import Poller, PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.sim import Simulator

CLIENTS = 8
DURATION_S = 3.0
REFRESHES = 50


async def _hammer(url: str, seconds: float) -> float:
    """Requests per second that CLIENTS keep-alive connections get from `url`."""
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        done = 0
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                async with http.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: HTTP {r.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return done / (time.perf_counter() - started)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _monitor_process(sim: Simulator, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    code = "import sys; from tegkit.monitor.cli import monitor; monitor(sys.argv[1:])"
    port = _free_port()
    cmd = [
        sys.executable, "-c", code, "--gateway", f"home={sim.url}",
        "--pin", sim.fingerprint_sha256, "--db", str(db), "--listen", f"127.0.0.1:{port}",
    ]  # fmt: skip
    env = {**os.environ, "TEG_PASSWORD": sim.password, "TEG_EMAIL": sim.email}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url + "healthz") as r:
                    if r.status == 200:
                        return proc, url
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("the monitor did not become healthy")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _throughput_and_memory(tmp: Path) -> list[tuple[str, float, str]]:
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc, url = await _monitor_process(sim, tmp / "bench.db")
        try:
            live_rps = await _hammer(url + "api/live", DURATION_S)
            metrics_rps = await _hammer(url + "metrics", DURATION_S)
            rss = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return [
        ("monitor /api/live requests per second (8 clients)", live_rps, "req/s"),
        ("monitor /metrics requests per second (8 clients)", metrics_rps, "req/s"),
        ("monitor RSS with one gateway", rss, "MB"),
    ]


async def _gateway_requests(tmp: Path) -> list[tuple[str, float, str]]:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        target = GatewayTarget(
            "home", sim.url, password=sim.password, email=sim.email, pin=sim.fingerprint_sha256
        )
        monitor = Monitor([target], db=tmp / "refresh.db", listen=("127.0.0.1", 0))
        await monitor.start(poll=False)
        try:
            poller = monitor.pollers["home"]
            await poller.poll_due()
            await poller.flush()
            sent_before = poller.client.requests_sent
            pages = ["", "api/live", "api/history", "api/daily", "api/outages", "healthz"]
            pages += ["metrics", "static/app.js", "static/vendor/uPlot.iife.min.js"]
            async with aiohttp.ClientSession() as http:
                for _ in range(REFRESHES):
                    for page in pages:
                        async with http.get(monitor.url + page) as r:
                            await r.read()
            refresh_requests = poller.client.requests_sent - sent_before
        finally:
            await monitor.close()

        # duplicates: every cycle asks each due endpoint once, even with a slow gateway
        clock = lambda: sim.gateway.site.epoch_s  # noqa: E731
        live = LiveState(clock=clock)
        from tegkit.client import Gateway, PinnedCertificate

        client = Gateway(
            sim.url,
            password=sim.password,
            email=sim.email,
            tls=PinnedCertificate(sim.fingerprint_sha256),
            retries=0,
        )
        config = PollerConfig(fast_interval_s=5, slow_interval_s=60, jitter_ratio=0.0)
        stepper = Poller(
            live.add("home", sim.url), client, live, None, config, clock=clock, monotonic=clock
        )
        await stepper.poll_due()  # includes the login
        duplicates = 0
        await sim.inject_fault("latency", latency_ms=20, probability=0.5)
        for _ in range(60):
            await sim.advance(5)
            before = client.requests_sent
            cycles = await asyncio.gather(stepper.poll_due(), stepper.poll_due())
            asked = sum(len(c) for c in cycles)
            duplicates += client.requests_sent - before - asked
            duplicates += asked - len({e for c in cycles for e in c})
        await client.close()
    return [
        (f"gateway requests caused by {REFRESHES} dashboard refreshes", refresh_requests, "req"),
        ("duplicate gateway requests in 60 poll cycles", duplicates, "req"),
    ]


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-") as tmp:
        rows = asyncio.run(_throughput_and_memory(Path(tmp)))
        rows += asyncio.run(_gateway_requests(Path(tmp)))
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<58} {value:>10.1f} {unit}")
