"""Client CPU per GET /api/meters/aggregates over HTTPS keep-alive, beside two peer clients.

The gateway stand-in runs in a subprocess (this file with --serve), so `time.process_time`
in this process counts the client alone: request, TLS, response and parse into the model.
The same request is timed through tesla-powerwall 0.5.3 and pypowerwall 0.22.2 against the
same server and reported as ratios. Target for tegkit: <= 300 us of CPU per request.
``TEGKIT_BENCH_CLIENT_N`` sets the number of sequential requests (default 2000).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from tegkit.client import Gateway, PinnedCertificate
from tegkit.sim.certs import fingerprint_sha256, generate_certificate

PATH = "/api/meters/aggregates"
PASSWORD = "bench-password"
TARGET_US = 300.0
CAPTURES = (
    Path(__file__).resolve().parents[2]
    / "shared/reference/vloschiavo-powerwall2/samples/21.44-foogod/running"
)


# --- the server (runs in the subprocess) ---------------------------------------------------


def _serve(cert: str, key: str) -> None:
    from aiohttp import web

    bodies = {
        "/api/meters/aggregates": (CAPTURES / "meters.aggregates.json").read_bytes(),
        "/api/status": (CAPTURES / "status.json").read_bytes(),
        "/api/site_info/site_name": (CAPTURES / "site_info.site_name.json").read_bytes(),
    }
    sessions: set[str] = set()

    async def login(request: web.Request) -> web.Response:
        # pypowerwall posts the login as a form; the others send JSON.
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        if body.get("password") != PASSWORD:
            return web.json_response({"code": 401, "error": "bad credentials"}, status=401)
        token = secrets.token_urlsafe(16)
        sessions.add(token)
        response = web.json_response(
            {
                "email": body.get("email") or "",
                "firstname": "Tesla",
                "lastname": "Energy",
                "roles": ["Home_Owner"],
                "token": token,
                "provider": "Basic",
                "loginTime": "2021-12-26T13:09:22-07:00",
            }
        )
        response.set_cookie("AuthCookie", token, path="/", secure=True)
        response.set_cookie("UserRecord", "record", path="/", secure=True)
        return response

    async def read(request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in sessions and request.cookies.get("AuthCookie") not in sessions:
            return web.json_response({"code": 401, "error": "bad credentials"}, status=401)
        body = bodies.get(request.path)
        if body is None:
            return web.json_response({"code": 404, "error": "not found"}, status=404)
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/login/Basic", login)
        app.router.add_route("*", "/{tail:.*}", read)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the clients (this process) ------------------------------------------------------------


def _make_cert(directory: Path) -> tuple[Path, Path, str]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_certificate(cert, key)
    return cert, key, fingerprint_sha256(cert.read_bytes())


def _cpu_us(count: int, step: Callable[[], object]) -> float:
    start = time.process_time()
    for _ in range(count):
        step()
    return (time.process_time() - start) / count * 1e6


async def _async_cpu_us(count: int, step: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(CPU us, wall us) per awaited call."""
    wall = time.perf_counter()
    start = time.process_time()
    for _ in range(count):
        await step()
    cpu = (time.process_time() - start) / count * 1e6
    return cpu, (time.perf_counter() - wall) / count * 1e6


ROUNDS = 7  # interleaved, median taken: a busy second core moves all clients alike


async def _compare(address: str, fingerprint: str, count: int, auth_dir: Path) -> dict[str, float]:
    """Median CPU us per request of each client over interleaved rounds, plus tegkit's wall."""
    import statistics

    import tesla_powerwall

    per_round = max(1, count // ROUNDS)
    samples: dict[str, list[float]] = {"tegkit": [], "wall": [], "tesla-powerwall": []}
    samples["pypowerwall"] = []
    pypw_step = _pypowerwall_step(address, auth_dir)
    async with Gateway(address, password=PASSWORD, tls=PinnedCertificate(fingerprint)) as gw:
        pw = tesla_powerwall.Powerwall(address)
        try:
            await gw.login()
            await pw.login(PASSWORD)
            for _ in range(50):  # warm up: connections, decoders
                await gw.meters_aggregates()
                await pw.get_meters()
                if pypw_step is not None:
                    pypw_step()
            for _ in range(ROUNDS):
                cpu, wall = await _async_cpu_us(per_round, gw.meters_aggregates)
                samples["tegkit"].append(cpu)
                samples["wall"].append(wall)
                samples["tesla-powerwall"].append(
                    (await _async_cpu_us(per_round, pw.get_meters))[0]
                )
                if pypw_step is not None:
                    samples["pypowerwall"].append(_cpu_us(per_round, pypw_step))
        finally:
            await pw.close()
    return {name: statistics.median(values) for name, values in samples.items() if values}


def _pypowerwall_step(address: str, auth_dir: Path) -> Callable[[], object] | None:
    """One pypowerwall read of the aggregates, or None (reported) if it cannot run here."""
    try:
        import pypowerwall
        import urllib3

        urllib3.disable_warnings()
        logging.getLogger("pypowerwall").setLevel(logging.CRITICAL)
        pw = pypowerwall.Powerwall(
            address,
            PASSWORD,
            "bench@example.com",
            "UTC",
            pwcacheexpire=0,
            cachefile=str(auth_dir / ".powerwall"),
            authpath=str(auth_dir),
        )
    except Exception as exc:  # a peer that cannot run is reported, not fatal
        print(f"pypowerwall: not measured: {exc!r}", file=sys.stderr)
        return None

    def step() -> object:
        payload = pw.poll(PATH, force=True)
        if not isinstance(payload, dict):
            raise RuntimeError(f"pypowerwall got no aggregates: {payload!r}")
        return payload

    return step


def run(count: int | None = None) -> list[tuple[str, float, str]]:
    """(name, value, unit) rows: CPU per request for tegkit and the peers, and the ratios."""
    count = count or int(os.environ.get("TEGKIT_BENCH_CLIENT_N", "2000"))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cert, key, fingerprint = _make_cert(directory)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(cert), str(key)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            address = f"127.0.0.1:{port}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cpu = asyncio.run(_compare(address, fingerprint, count, directory))
            ours = cpu["tegkit"]
            rows = [
                (f"client: GET {PATH} CPU per request (target <= {TARGET_US:.0f})", ours, "us"),
                (f"client: GET {PATH} wall time per request (local)", cpu["wall"], "us"),
            ]
            for name in ("tesla-powerwall", "pypowerwall"):
                if name in cpu:
                    version = {"tesla-powerwall": "0.5.3", "pypowerwall": "0.22.2"}[name]
                    rows.append((f"client: {name} {version} CPU per request", cpu[name], "us"))
                    rows.append(
                        (
                            f"client: {name} {version} CPU / tegkit CPU (target >= 1)",
                            cpu[name] / ours,
                            "x",
                        )
                    )
            return rows
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], sys.argv[3])
    else:
        results = run()
        width = max(len(name) for name, _, _ in results)
        for name, value, unit in results:
            print(f"{name:<{width}}  {value:10.2f} {unit}")
