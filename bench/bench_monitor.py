"""Monitor benchmarks: /api/live and /metrics throughput, gateway requests, memory.

`run()` returns (name, value, unit) rows:
- requests per second of /api/live and of /metrics: 8 concurrent keep-alive clients in
  this process against `teg monitor` in its own process (target >= 3000/s each);
- gateway requests caused by dashboard refreshes (target 0: served from the live state);
- duplicate gateway requests in poll cycles (target 0: single flight);
- RSS of the monitor process watching one gateway (target <= 100 MB);
- /api/live requests per second under wrk while 200 slow clients hold connections open,
  trickling header lines (target >= 3000/s);
- RSS of the monitor after a fuzz of every route, method, parameter and body (target
  <= 100 MB); TEG_BENCH_FUZZ_S sets its length (default 600 s, ten minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench._proc import free_port, rss_mb
from tegkit.monitor.live import LiveState
from tegkit.monitor.poller import Poller, PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor
from tegkit.sim import Simulator

CLIENTS = 8
DURATION_S = 3.0
REFRESHES = 50
SLOW_CONNECTIONS = 200
FUZZ_S = float(os.environ.get("TEG_BENCH_FUZZ_S", "600"))
CONTROL_TOKEN = "bench-control-token"


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


async def _monitor_process(
    sim: Simulator, db: Path, control: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    code = "import sys; from tegkit.cli.monitor import monitor; monitor(sys.argv[1:])"
    port = free_port()
    cmd = [
        sys.executable, "-c", code, "--gateway", f"home={sim.url}",
        "--pin", sim.fingerprint_sha256, "--db", str(db), "--listen", f"127.0.0.1:{port}",
    ]  # fmt: skip
    env = {**os.environ, "TEG_PASSWORD": sim.password, "TEG_EMAIL": sim.email}
    if control:
        env["TEG_MONITOR_CONTROL_TOKEN"] = CONTROL_TOKEN
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


async def _throughput_and_memory(tmp: Path) -> list[tuple[str, float, str]]:
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc, url = await _monitor_process(sim, tmp / "bench.db")
        try:
            live_rps = await _hammer(url + "api/live", DURATION_S)
            metrics_rps = await _hammer(url + "metrics", DURATION_S)
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return [
        ("monitor /api/live requests per second (8 clients)", live_rps, "req/s"),
        ("monitor /metrics requests per second (8 clients)", metrics_rps, "req/s"),
        ("monitor RSS with one gateway", rss, "MB"),
    ]


@contextlib.asynccontextmanager
async def _slow_clients(port: int, n: int) -> AsyncIterator[list[int]]:
    """`n` connections that trickle header lines and never finish a request; each comes
    back a second after the server drops it. Yields [connections open now]."""
    stop = asyncio.Event()
    open_now = [0]

    async def one() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(1)
                continue
            open_now[0] += 1
            try:
                writer.write(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                n_line = 0
                while not stop.is_set() and not reader.at_eof():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await reader.read(1024)  # EOF when the server drops us
                    n_line += 1
                    writer.write(b"X-Slow-%d: y\r\n" % n_line)
                    await writer.drain()
            except OSError:
                pass
            finally:
                open_now[0] -= 1
                writer.close()
            if not stop.is_set():
                await asyncio.sleep(1)

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    try:
        for _ in range(200):  # until they are all connected (or 20 s)
            if open_now[0] >= n:
                break
            await asyncio.sleep(0.1)
        yield open_now
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _wrk(url: str, seconds: float) -> tuple[float, float]:
    """(requests per second, non-2xx answers) of wrk, one thread, CLIENTS connections."""
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{CLIENTS}", f"-d{seconds:g}s", url, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    text = out.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if rate is None:
        raise RuntimeError(f"wrk said: {text}")
    return float(rate.group(1)), float(non_2xx.group(1)) if non_2xx else 0.0


async def _under_slow_clients(tmp: Path) -> list[tuple[str, float, str]]:
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc, url = await _monitor_process(sim, tmp / "slow.db")
        port = int(url.rsplit(":", 1)[1].strip("/"))
        try:
            async with _slow_clients(port, SLOW_CONNECTIONS) as open_now:
                held = open_now[0]
                if shutil.which("wrk"):
                    rate, non_2xx = await _wrk(url + "api/live", DURATION_S)
                    tool = "wrk"
                else:
                    rate, non_2xx = await _hammer(url + "api/live", DURATION_S), 0.0
                    tool = "aiohttp"
                held = min(held, open_now[0])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    name = f"monitor /api/live, {tool} x{CLIENTS}, {SLOW_CONNECTIONS} slow clients held"
    return [
        (f"{name} (target >= 3000)", rate, "req/s"),
        ("monitor non-2xx answers under that load", non_2xx, "count"),
        ("slow connections held open throughout", float(held), "count"),
    ]


_ROUTES = [
    "/", "/api/live", "/api/live/stream", "/api/history", "/api/daily", "/api/outages",
    "/api/gaps", "/api/events", "/api/vocabulary", "/healthz", "/metrics", "/login",
    "/logout", "/api/session", "/api/control/operation", "/static/app.js",
    "/static/index.html", "/nope",
]  # fmt: skip
_VALUES = [
    "0", "-1", "1", "1.0001", "0.5001", "1e-300", "1e300", "nan", "inf", "-inf", "",
    "0001-01-05", "9999-12-31", "2024-05-01T00:00:00Z", "2024-13-01", "home", "nope",
]  # fmt: skip
_METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]


def _fuzz_request(rng: random.Random, now: float) -> tuple[str, str, dict[str, str], bytes | None]:
    """One random request: method, path, query and body (seeded, so runs compare)."""
    path = rng.choice(_ROUTES)
    roll = rng.random()
    if roll < 0.05:
        path = "/static/" + "a" * rng.randrange(1, 6000)
    elif roll < 0.1:
        path += "".join(rng.choice("abc/.%~") for _ in range(rng.randrange(1, 30)))
    query: dict[str, str] = {}
    for name in rng.sample(["gateway", "from", "to", "step", "x"], rng.randrange(0, 4)):
        kind = rng.random()
        if kind < 0.4:
            query[name] = rng.choice(_VALUES)
        elif kind < 0.8:
            query[name] = repr(now - rng.uniform(-1e6, 5e8))
        else:
            query[name] = repr(rng.uniform(-1e12, 1e12))
    body: bytes | None = None
    kind = rng.random()
    if kind < 0.2:
        body = json.dumps({"token": rng.choice([CONTROL_TOKEN, "wrong", 5])}).encode()
    elif kind < 0.35:
        doc = {"mode": rng.choice(["backup", "turbo", None]), "backup_reserve_percent": 150}
        body = json.dumps(doc).encode()
    elif kind < 0.45:
        depth = rng.randrange(1, 40_000)
        body = b"[" * depth + b"]" * depth
    elif kind < 0.55:
        body = rng.randbytes(rng.randrange(0, 2000))
    return rng.choice(_METHODS), path, query, body


async def _fuzz_memory(tmp: Path, seconds: float) -> list[tuple[str, float, str]]:
    async with Simulator(port=0, scenario="sunny-day", speed=1) as sim:
        proc, url = await _monitor_process(sim, tmp / "fuzz.db", control=True)
        base = url.rstrip("/")
        sent = server_errors = 0
        rss_start = rss_mb(proc.pid)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(base + "/login", json={"token": CONTROL_TOKEN}) as r:
                    csrf = (await r.json())["csrf_token"]
                stop_at = time.monotonic() + seconds

                async def worker(seed: int) -> None:
                    nonlocal sent, server_errors
                    rng = random.Random(seed)
                    while time.monotonic() < stop_at:
                        method, path, query, body = _fuzz_request(rng, time.time())
                        headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
                        if rng.random() < 0.05:
                            headers["Host"] = "evil.example"
                        try:
                            async with http.request(
                                method, base + path, params=query, data=body, headers=headers
                            ) as r:
                                if r.content_type != "text/event-stream":
                                    await r.read()
                                meant = (path, r.status) in (
                                    ("/healthz", 503),
                                    ("/api/live/stream", 503),
                                    ("/api/control/operation", 502),
                                )
                                if r.status >= 500 and not meant:
                                    server_errors += 1
                        except (aiohttp.ClientError, ValueError):
                            pass  # a refused oddity of ours (e.g. an URL aiohttp will not send)
                        sent += 1

                await asyncio.gather(*(worker(seed) for seed in range(CLIENTS)))
            rss_end = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return [
        (f"monitor RSS after a {seconds:g} s fuzz of every route (target <= 100)", rss_end, "MB"),
        ("monitor RSS before that fuzz", rss_start, "MB"),
        ("fuzz requests sent", float(sent), "req"),
        ("monitor 5xx answers it did not mean during the fuzz (target 0)", server_errors, "count"),
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
            sent_before = poller.requests_sent
            pages = ["", "api/live", "api/history", "api/daily", "api/outages", "healthz"]
            pages += ["metrics", "static/app.js", "static/vendor/uPlot.iife.min.js"]
            async with aiohttp.ClientSession() as http:
                for _ in range(REFRESHES):
                    for page in pages:
                        async with http.get(monitor.url + page) as r:
                            await r.read()
            refresh_requests = poller.requests_sent - sent_before
        finally:
            await monitor.close()

        # duplicates: every cycle asks each due endpoint once, even with a slow gateway
        clock = lambda: sim.now_s  # noqa: E731
        live = LiveState(clock=clock)
        config = PollerConfig(fast_interval_s=5, slow_interval_s=60, jitter_ratio=0.0)
        stepper = Poller.for_target(target, live, None, config, clock=clock, monotonic=clock)
        await stepper.poll_due()  # includes the login
        duplicates = 0
        await sim.inject_fault("latency", latency_ms=20, probability=0.5)
        for _ in range(60):
            await sim.advance(5)
            before = stepper.requests_sent
            cycles = await asyncio.gather(stepper.poll_due(), stepper.poll_due())
            asked = sum(len(c) for c in cycles)
            duplicates += stepper.requests_sent - before - asked
            duplicates += asked - len({e for c in cycles for e in c})
        await stepper.aclose()
    return [
        (f"gateway requests caused by {REFRESHES} dashboard refreshes", refresh_requests, "req"),
        ("duplicate gateway requests in 60 poll cycles", duplicates, "req"),
    ]


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-") as tmp:
        rows = asyncio.run(_throughput_and_memory(Path(tmp)))
        rows += asyncio.run(_gateway_requests(Path(tmp)))
        rows += asyncio.run(_under_slow_clients(Path(tmp)))
        rows += asyncio.run(_fuzz_memory(Path(tmp), FUZZ_S))
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<58} {value:>10.1f} {unit}")
