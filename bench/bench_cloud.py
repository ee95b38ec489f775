"""The cloud path: client CPU per live_status call, and a dashboard change to its read-back.

`run()` returns (name, value, unit) rows:
- the cloud client's process CPU per `live_status` call (request, TLS, HTTP/2 framing,
  envelope and model) against the simulator's cloud, which runs in a subprocess (this file
  with --serve) so `time.process_time` here counts the client alone; the same over the
  HTTP/1.1 opt-in for comparison. Interleaved rounds, median taken.
  ``TEGKIT_BENCH_CLOUD_N`` sets the calls per flavour (default 2000).
- in the demo set-up (`teg demo`'s simulator and monitor, started as `run_demo` starts
  them), the wall time from a control change POSTed to the monitor's web API (logged in
  with a control token, with the session's CSRF token, the body the dashboard sends) to
  its answer, which carries the reserve read back from the gateway locally.
  ``TEGKIT_BENCH_CHANGES`` sets the number of timed changes (default 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tegkit.cloud import CloudClient

ROUNDS = 7  # interleaved, median taken: a busy second core moves both flavours alike
WARM_UP_CALLS = 20
LONG_TOKEN_CHARS = 1500  # of the order of Tesla's JWT access tokens
CONTROL_TOKEN = "bench-control-token"
RESERVES_APP_PERCENT = (30.0, 40.0)  # alternated, so every change is a change
CHANGE_TIMEOUT_S = 180.0  # a change (read-back included) that takes longer is a failure


# --- the simulator (runs in the subprocess) --------------------------------------------------


def _serve(token_chars: int | None) -> None:
    """A simulator with its cloud; prints what a client needs, runs until stdin closes.

    `token_chars`: the access token gets that many characters (Tesla's are JWTs, far
    longer than the simulator's own), to show what the header's size costs the client.
    """
    from tegkit.sim import Simulator

    async def main() -> None:
        async with Simulator(port=0, cloud_port=0, speed=0, seed=1) as sim:
            if token_chars is not None:
                sim.cloud_tokens.access_token = secrets.token_urlsafe(token_chars)[:token_chars]
            doc = {
                "cloud_url": sim.cloud_url,
                "cafile": str(sim.cafile),
                "access_token": sim.cloud_tokens.access_token,
                "refresh_token": sim.cloud_tokens.refresh_token,
                "site_id": sim.cloud_site.energy_site_id,
            }
            print(json.dumps(doc), flush=True)
            await asyncio.to_thread(sys.stdin.read)  # the parent closes it when done

    asyncio.run(main())


@contextlib.contextmanager
def _simulator(*args: str) -> Iterator[dict[str, Any]]:
    """A simulator in a subprocess (its CPU is not ours): what a client needs to reach it."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start (see its stderr above)")
        yield json.loads(line)
    finally:
        if server.stdin is not None:
            with contextlib.suppress(OSError):
                server.stdin.close()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- CPU per live_status (this process) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flavour:
    """One way of calling: a simulator to call and the HTTP version to speak."""

    label: str
    server: dict[str, Any]
    http1: bool

    def client(self) -> CloudClient:
        return CloudClient(
            self.server["access_token"],
            self.server["refresh_token"],
            base_url=self.server["cloud_url"],
            auth_url=self.server["cloud_url"],
            ssl=_trust(self.server["cafile"]),
            http1=self.http1,
        )


def _trust(cafile: str) -> ssl.SSLContext:
    # the simulator's cloud certificate is issued by its (self-signed) gateway certificate
    context = ssl.create_default_context(cafile=cafile)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


async def _round(flavour: Flavour, count: int) -> tuple[float, float]:
    """(CPU us, wall us) per live_status call on one fresh, warmed-up connection.

    A fresh client each round: the simulator's HTTP/2 server (hypercorn) ends a connection
    after 1,000 requests, and what the client does then is not what is measured here.
    """
    site_id = int(flavour.server["site_id"])
    async with flavour.client() as client:
        for _ in range(WARM_UP_CALLS):  # connection, TLS, decoders
            live = await client.live_status(site_id)
        spoken = client.last_http_version
        if spoken != ("HTTP/1.1" if flavour.http1 else "HTTP/2"):  # measured what we say
            raise RuntimeError(f"{flavour.label}: the client spoke {spoken}")
        if live.percentage_charged_app_percent is None:
            raise RuntimeError(f"{flavour.label}: live_status has no charge: {live!r}")
        wall = time.perf_counter()
        cpu = time.process_time()
        for _ in range(count):
            await client.live_status(site_id)
        cpu_us = (time.process_time() - cpu) / count * 1e6
        wall_us = (time.perf_counter() - wall) / count * 1e6
        if client.refresh_count:  # a token refresh would be measured as a call
            raise RuntimeError(f"{flavour.label}: the tokens were refreshed while measured")
    return cpu_us, wall_us


async def _live_status_cost(flavours: list[Flavour], count: int) -> dict[str, dict[str, float]]:
    """Median CPU and wall us per live_status call of each flavour, rounds interleaved."""
    samples: dict[str, dict[str, list[float]]] = {
        f.label: {"cpu": [], "wall": []} for f in flavours
    }
    per_round = max(1, count // ROUNDS)
    for _ in range(ROUNDS):
        for flavour in flavours:
            cpu, wall = await _round(flavour, per_round)
            samples[flavour.label]["cpu"].append(cpu)
            samples[flavour.label]["wall"].append(wall)
    return {
        label: {kind: statistics.median(values) for kind, values in kinds.items()}
        for label, kinds in samples.items()
    }


def _cloud_rows(count: int) -> list[tuple[str, float, str]]:
    with _simulator() as server, _simulator("--token-chars", str(LONG_TOKEN_CHARS)) as long:
        cost = asyncio.run(
            _live_status_cost(
                [
                    Flavour("HTTP/2", server, http1=False),
                    Flavour("HTTP/1.1", server, http1=True),
                    Flavour("long token", long, http1=False),
                ],
                count,
            )
        )
    h2, h1, jwt = cost["HTTP/2"], cost["HTTP/1.1"], cost["long token"]
    calls = f"{count // ROUNDS * ROUNDS} calls, median of {ROUNDS} rounds"
    return [
        (f"cloud: live_status CPU per call, HTTP/2 ({calls})", h2["cpu"], "us"),
        ("cloud: live_status wall time per call, HTTP/2 (loopback)", h2["wall"], "us"),
        ("cloud: live_status CPU per call, HTTP/1.1 opt-in", h1["cpu"], "us"),
        ("cloud: live_status wall time per call, HTTP/1.1 opt-in", h1["wall"], "us"),
        ("cloud: live_status CPU, HTTP/2 / HTTP/1.1", h2["cpu"] / h1["cpu"], "x"),
        (
            f"cloud: live_status CPU per call, HTTP/2, {LONG_TOKEN_CHARS}-character token",
            jwt["cpu"],
            "us",
        ),
    ]


# --- a dashboard change to the local read-back, in the demo ---------------------------------


async def _post_change(
    http: aiohttp.ClientSession, url: str, csrf: str, body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """(seconds, answer) of one change as the dashboard sends it; a spent request budget
    (the monitor's 429) is waited out untimed, anything else but 200 is a failure."""
    headers = {"X-CSRF-Token": csrf}
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        started = time.perf_counter()
        async with asyncio.timeout(CHANGE_TIMEOUT_S):
            async with http.post(url + "api/control/operation", json=body, headers=headers) as r:
                answer = await r.json()
                status, retry_after = r.status, r.headers.get("Retry-After")
        elapsed = time.perf_counter() - started
        if status == 429 and retry_after is not None and time.monotonic() < deadline:
            await asyncio.sleep(float(retry_after))  # the budget refills with time
            continue
        if status != 200:
            raise RuntimeError(f"the change was refused: HTTP {status} {answer}")
        return elapsed, answer


async def _time_changes(monitor_url: str, gateway: str, changes: int) -> tuple[list[float], str]:
    """Seconds per timed change through the monitor's web API, and the route its answers
    name; each change must come back read from the gateway."""
    times: list[float] = []
    routes: set[str] = set()
    # unsafe: the session cookie comes from 127.0.0.1, which aiohttp's jar skips by default
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(monitor_url + "login", json={"token": CONTROL_TOKEN}) as r:
            if r.status != 200:
                raise RuntimeError(f"control login refused: HTTP {r.status}")
            csrf = (await r.json())["csrf_token"]
        for i in range(changes + 1):  # the first is a warm-up (logins, connections)
            reserve = RESERVES_APP_PERCENT[i % 2]
            body = {
                "gateway": gateway,
                "mode": "self_consumption",
                "backup_reserve_percent": reserve,
                "scale": "app",
            }
            elapsed, answer = await _post_change(http, monitor_url, csrf, body)
            read_back = (answer.get("backup_reserve") or {}).get("app_percent")
            if read_back is None or abs(read_back - reserve) > 0.5:
                raise RuntimeError(f"asked for {reserve} % (app), read back {answer}")
            if answer.get("read_back", "confirmed") != "confirmed":
                raise RuntimeError(f"the change was not seen locally: {answer}")
            route = answer.get("route")
            routes.add(route if isinstance(route, str) else "not named in the answer")
            if i:
                times.append(elapsed)
    return times, ",".join(sorted(routes))


async def _demo_change_times(changes: int) -> tuple[list[float], str]:
    """Seconds per timed change in `teg demo` (started as `teg demo` starts it)."""
    from tegkit.monitor.demo import run_demo
    from tegkit.monitor.service import Monitor
    from tegkit.sim import Simulator

    ready = asyncio.Event()
    started: list[Monitor] = []

    def on_ready(monitor: Monitor, sim: Simulator) -> None:
        started.append(monitor)
        ready.set()

    demo = asyncio.create_task(
        run_demo(
            listen=("127.0.0.1", 0),
            backfill_h=0.0,  # history is not what is measured
            control_token=CONTROL_TOKEN,
            on_ready=on_ready,
        )
    )
    try:
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({demo, waiter}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            if demo.done():
                demo.result()  # its exception, if it failed
            raise RuntimeError("the demo did not start in 120 s")
        monitor = started[0]
        return await _time_changes(monitor.url, monitor.targets[0].name, changes)
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo


async def _local_change_times(changes: int) -> tuple[list[float], str]:
    """The same, on the demo's set-up but with a gateway that takes the customer's change
    locally (as before 20.49): what the cloud path costs beside it."""
    from tegkit.monitor.demo import cloud_delay_sim_s
    from tegkit.monitor.poller import PollerConfig
    from tegkit.monitor.service import GatewayTarget, Monitor
    from tegkit.sim import Simulator

    speed = 60.0  # as run_demo's default
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-") as tmp:
        async with Simulator(
            port=0,
            speed=speed,
            allow_customer_operation=True,
            cloud_delay_s=cloud_delay_sim_s(speed),
        ) as sim:
            target = GatewayTarget(
                "demo", sim.url, password=sim.password, email=sim.email, pin=sim.fingerprint_sha256
            )
            monitor = Monitor(
                [target],
                db=Path(tmp) / "local.db",
                listen=("127.0.0.1", 0),
                control_token=CONTROL_TOKEN,
                config=PollerConfig(fast_interval_s=2.0, slow_interval_s=20.0),
                clock=lambda: sim.now_s,
            )
            await monitor.start()
            try:
                return await _time_changes(monitor.url, target.name, changes)
            finally:
                await monitor.close()


def _demo_rows(changes: int) -> list[tuple[str, float, str]]:
    from tegkit.monitor.demo import DEMO_CLOUD_DELAY_S

    times, route = asyncio.run(_demo_change_times(changes))
    local_times, local_route = asyncio.run(_local_change_times(changes))
    median_s = statistics.median(times)
    name = f"demo: dashboard change to local read-back (route {route}, {changes} changes)"
    rows = [
        (f"{name}, median", median_s * 1e3, "ms"),
        ("demo: dashboard change to local read-back, slowest", max(times) * 1e3, "ms"),
    ]
    if route == "cloud":  # the demo's cloud holds each change back on purpose
        rows.append(
            (
                f"demo: of the median, beyond the demo's {DEMO_CLOUD_DELAY_S:g} s cloud delay",
                (median_s - DEMO_CLOUD_DELAY_S) * 1e3,
                "ms",
            )
        )
    rows.append(
        (
            f"demo set-up, a gateway that takes it locally (route {local_route}), median",
            statistics.median(local_times) * 1e3,
            "ms",
        )
    )
    return rows


def run() -> list[tuple[str, float, str]]:
    count = int(os.environ.get("TEGKIT_BENCH_CLOUD_N", "2000"))
    changes = int(os.environ.get("TEGKIT_BENCH_CHANGES", "10"))
    return _cloud_rows(count) + _demo_rows(changes)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(int(sys.argv[3]) if sys.argv[2:3] == ["--token-chars"] else None)
    else:
        results = run()
        width = max(len(name) for name, _, _ in results)
        for name, value, unit in results:
            print(f"{name:<{width}}  {value:10.2f} {unit}")
