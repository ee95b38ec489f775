"""The monitor's server against hostile peers: slow and idle connections, too many of
them, large or late bodies, foreign Host headers, login guessing; error answers carry the
same headers as the rest. A real monitor polls the simulator throughout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from monitor_helpers import first_reading, live_monitor

from tegkit.monitor.edge import SECURITY_HEADERS, ServerLimits, connection_cap
from tegkit.monitor.service import Monitor
from tegkit.sim import Simulator

TOKEN = "correct-horse-battery"
#: a safety net for reads that must end (never a timing assertion: they end far sooner)
DEADLINE_S = 60.0


async def _raw(monitor: Monitor) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", monitor.port)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(DEADLINE_S):
            while chunk := await reader.read(65536):
                got += chunk
    return got


async def _wait_for(pred: object, polls: int = 600) -> None:
    for _ in range(polls):
        if pred():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def _trickle(writer: asyncio.StreamWriter, stop: asyncio.Event, every_s: float) -> None:
    """A slow client: a request head one header line at a time, never finished."""
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        n = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):  # paces the trickle; orders nothing
                    await stop.wait()
            n += 1
            writer.write(b"X-Slow-%d: y\r\n" % n)
            await writer.drain()


@contextlib.asynccontextmanager
async def _slow_clients(
    monitor: Monitor, n: int, every_s: float, reconnect_s: float = 1.0
) -> AsyncIterator[list[int]]:
    """`n` connections trickling headers, reopened when the server closes one; yields a
    one-item list counting the reopenings."""
    stop = asyncio.Event()
    reopened = [0]

    async def one() -> None:
        while not stop.is_set():
            try:
                reader, writer = await _raw(monitor)
            except OSError:
                reopened[0] += 1
                continue
            trickle = asyncio.create_task(_trickle(writer, stop, every_s))
            closed = asyncio.create_task(_until_closed(reader))
            await asyncio.wait({trickle, closed}, return_when=asyncio.FIRST_COMPLETED)
            trickle.cancel()
            closed.cancel()
            writer.close()
            if not stop.is_set():
                reopened[0] += 1
                # an attacker comes back, but not thousands of times a second: that would
                # exhaust loopback's ports (TIME_WAIT) for every client, the test's included
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(reconnect_s):
                        await stop.wait()

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    try:
        yield reopened
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_idle_connection_is_closed_after_the_idle_timeout() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, limits=ServerLimits(idle_timeout_s=0.5)) as monitor,
    ):
        reader, writer = await _raw(monitor)  # says nothing at all
        assert await _until_closed(reader) == b""
        writer.close()

        # after an answer, the kept-alive connection gets the same time for the next request
        reader, writer = await _raw(monitor)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = await _until_closed(reader)
        assert got.startswith(b"HTTP/1.1 ") and b"Connection: close" not in got
        writer.close()
        assert monitor.site is not None and monitor.site.connections is not None
        assert monitor.site.connections.timed_out >= 2


async def test_a_trickled_request_head_is_cut_off() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, limits=ServerLimits(idle_timeout_s=0.5)) as monitor,
    ):
        reader, writer = await _raw(monitor)
        stop = asyncio.Event()
        trickle = asyncio.create_task(_trickle(writer, stop, 0.05))
        got = await _until_closed(reader)  # ends although bytes keep coming
        stop.set()
        await trickle
        writer.close()
        assert b"200 OK" not in got


async def test_a_late_body_gets_408_and_a_large_one_413_with_the_usual_headers() -> None:
    limits = ServerLimits(body_timeout_s=0.5, max_body_bytes=1000)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN, limits=limits) as monitor,
    ):
        reader, writer = await _raw(monitor)
        writer.write(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"tok'
        )
        got = await _until_closed(reader)
        writer.close()
        assert got.startswith(b"HTTP/1.1 408 "), got[:200]
        assert b"X-Content-Type-Options: nosniff" in got

        async with aiohttp.ClientSession() as http:
            big = {"token": "x" * 5000}
            async with http.post(monitor.url + "login", json=big) as r:
                assert r.status == 413
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert "1000 bytes" in (await r.json())["error"]


async def test_readings_and_answers_go_on_while_200_slow_clients_hold_connections(
    tmp_path: Path,
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=60) as sim,
        live_monitor(sim, tmp_path / "m.db") as monitor,
        aiohttp.ClientSession() as http,
    ):
        await first_reading(monitor)
        assert monitor.site is not None and monitor.site.connections is not None
        connections = monitor.site.connections
        async with _slow_clients(monitor, 200, every_s=0.5):
            await _wait_for(lambda: connections.open >= 200)
            home = monitor.live.get("home")
            assert home is not None and home.reading is not None
            seen = {home.reading.taken_at}
            answers = 0
            while len(seen) < 6:  # five new readings while the slow clients hang on
                async with http.get(monitor.url + "api/live") as r:
                    assert r.status == 200
                    entry = (await r.json())["gateways"][0]
                answers += 1
                seen.add(entry["taken_at"])
                assert home.reading is not None
                seen.add(home.reading.taken_at)
            assert connections.open >= 200  # they were still there
        assert answers >= 1
        store = monitor.store
        assert store is not None
        for _ in range(200):  # and they were recorded (the batch is flushed every 0.5 s)
            latest = await store.latest("home")
            if latest is not None and latest.taken_at >= sorted(seen)[-2]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the store's latest reading is {latest!r}")


async def test_the_cap_closes_the_oldest_idle_connection_then_refuses_when_all_are_busy() -> None:
    limits = ServerLimits(max_connections=10, max_streams=50)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, limits=limits) as monitor,
        aiohttp.ClientSession() as http,
    ):
        assert monitor.site is not None and monitor.site.connections is not None
        connections = monitor.site.connections
        idle = [await _raw(monitor) for _ in range(10)]
        await _wait_for(lambda: connections.open == 10)
        async with http.get(monitor.url + "api/live") as r:
            assert r.status == 200  # the oldest idle connection made room
        assert connections.evicted >= 1
        assert await _until_closed(idle[0][0]) == b""
        for _, w in idle:
            w.close()

        async with contextlib.AsyncExitStack() as stack:
            streams = []
            for _ in range(10):  # ten event streams: ten busy connections
                s = aiohttp.ClientSession()
                await stack.enter_async_context(s)
                r = await stack.enter_async_context(s.get(monitor.url + "api/live/stream"))
                assert r.status == 200
                streams.append(r)
            await _wait_for(lambda: connections.open == 10)
            reader, writer = await _raw(monitor)
            got = await _until_closed(reader)
            writer.close()
            assert got.startswith(b"HTTP/1.1 503 "), got[:200]
            assert b"Server: tegkit\r\n" in got and b"nosniff" in got
            assert connections.refused >= 1


def test_the_cap_leaves_file_descriptors_for_the_rest() -> None:
    assert connection_cap(256, fd_limit=20000) == 256
    assert connection_cap(256, fd_limit=256) == 128
    assert connection_cap(256, fd_limit=10) == 8


async def test_event_streams_are_capped() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, limits=ServerLimits(max_streams=2)) as monitor,
        aiohttp.ClientSession() as a,
        aiohttp.ClientSession() as b,
        aiohttp.ClientSession() as c,
        a.get(monitor.url + "api/live/stream") as ra,
        b.get(monitor.url + "api/live/stream") as rb,
        c.get(monitor.url + "api/live/stream") as rc,
    ):
        assert (ra.status, rb.status, rc.status) == (200, 200, 503)
        assert "event streams" in (await rc.json())["error"]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LOCALHOST", True),
        ("[::1]:{port}", True),
        ("monitor.lan:{port}", True),  # --allowed-host
        ("evil.example:{port}", False),
        ("127.0.0.1.evil.example", False),
        ("192.0.2.20:{port}", False),  # an address it does not listen on (a Host header value only)
        ("[::1", False),
        ("localhost:port", False),
    ],
)
async def test_only_the_names_it_serves_are_answered(host: str, allowed: bool) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, allowed_hosts=["monitor.lan"]) as monitor,
        aiohttp.ClientSession() as http,
        http.get(monitor.url + "api/live", headers={"Host": host.format(port=monitor.port)}) as r,
    ):
        if allowed:
            assert r.status == 200
        else:
            assert r.status == 421
            doc = await r.json()
            assert "does not answer for host" in doc["error"] and "--allowed-host" in doc["error"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_request_without_host_is_answered_only_in_http_1_0() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None) as monitor,
    ):
        for request, status in [
            (b"GET /api/live HTTP/1.1\r\nConnection: close\r\n\r\n", b"400"),
            (b"GET /api/live HTTP/1.0\r\n\r\n", b"200"),
        ]:
            reader, writer = await _raw(monitor)
            writer.write(request)
            got = await _until_closed(reader)
            writer.close()
            assert got.split(b" ")[1] == status, got[:200]


async def test_error_answers_carry_the_security_headers_and_no_versions() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession() as http,
    ):
        cases = [
            ("GET", "api/history?step=0", {}, 400),
            ("GET", "nope", {}, 404),
            ("POST", "api/live", {}, 405),
            ("POST", "login", {"data": b"x" * 100_000}, 413),
            ("GET", "api/live", {"headers": {"Host": "evil.example"}}, 421),
            ("GET", "", {}, 200),
            ("GET", "static/app.js", {}, 200),
        ]
        for method, path, kwargs, status in cases:
            async with http.request(method, monitor.url + path, **kwargs) as r:  # type: ignore[arg-type]
                assert r.status == status, path
                for name, value in SECURITY_HEADERS.items():
                    assert r.headers.get(name) == value, (path, name)
                assert r.headers["Server"] == "tegkit", path
                assert "Content-Security-Policy" in r.headers

        # the server's own answer to a malformed request
        reader, writer = await _raw(monitor)
        writer.write(b"GET /\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = await _until_closed(reader)
        writer.close()
        head = got.split(b"\r\n\r\n", 1)[0].decode()
        assert head.split(" ")[1] == "400", head
        assert "Server: tegkit\r\n" in head and "X-Content-Type-Options: nosniff" in head
        assert "aiohttp" not in got.decode(errors="replace") and "Python" not in head


async def test_a_guessing_process_does_not_lock_out_a_browser_that_logged_in_before() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as owner,
        aiohttp.ClientSession() as guesser,
    ):
        login = monitor.url + "login"
        async with owner.post(login, json={"token": TOKEN}) as r:
            assert r.status == 200
        statuses = []
        for _ in range(8):  # the same address (127.0.0.1), no device cookie
            async with guesser.post(login, json={"token": "wrong-token"}) as r:
                statuses.append(r.status)
        assert statuses[:5] == [401] * 5 and 429 in statuses  # the guesser is locked out
        async with guesser.post(login, json={"token": TOKEN}) as r:
            assert r.status == 429  # even with the right token: a lockout is a lockout
        async with owner.post(login, json={"token": TOKEN}) as r:
            assert r.status == 200  # the owner's browser counts on its own
        forged = {"Cookie": "tegkit_device=abc.0123456789abcdef"}
        async with guesser.post(login, json={"token": TOKEN}, headers=forged) as r:
            assert r.status == 429  # a made-up device cookie counts as no cookie


_MONITOR_SCRIPT = """
import asyncio, logging, resource, signal, sys
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import GatewayTarget, Monitor

resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
logging.basicConfig(level=logging.WARNING)  # every line, tracebacks included
url, pin, password, email, db = sys.argv[1:6]

async def main():
    config = PollerConfig(fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000,
                          flush_interval_s=0.5, batch_size=5)
    target = GatewayTarget("home", url, password=password, email=email, pin=pin)
    monitor = Monitor([target], db=db, listen=("127.0.0.1", 0), config=config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, monitor.stop)
    async with monitor:
        print(monitor.port, flush=True)
        await monitor.wait()

asyncio.run(main())
"""


async def test_with_few_file_descriptors_it_keeps_answering_and_logs_little(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    log_path = tmp_path / "monitor.log"
    async with Simulator(port=0, scenario="sunny-day", speed=60) as sim:
        args = [sim.url, sim.fingerprint_sha256, sim.password, sim.email, str(tmp_path / "m.db")]
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _MONITOR_SCRIPT, *args,
                stdout=subprocess.PIPE, stderr=log_file,
            )  # fmt: skip
            try:
                assert proc.stdout is not None
                async with asyncio.timeout(DEADLINE_S):
                    port = int(await proc.stdout.readline())
                monitor = Monitor.__new__(Monitor)
                monitor.port = port
                async with (
                    aiohttp.ClientSession() as http,
                    _slow_clients(monitor, 200, every_s=0.5) as reopened,
                ):
                    seen: set[float] = set()
                    while len(seen) < 6:  # new readings keep coming, and are answered
                        async with http.get(f"http://127.0.0.1:{port}/api/live") as r:
                            assert r.status == 200
                            taken = (await r.json())["gateways"][0]["taken_at"]
                        if taken is not None:
                            seen.add(taken)
                    slow_reopened = reopened[0]
            finally:
                proc.terminate()
                await proc.wait()
    text = log_path.read_text(errors="replace")
    assert len(text) < 20_000, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "Too many open files" not in text
    assert slow_reopened > 0  # the cap (half of 128 descriptors) was reached


async def test_logins_in_a_loop_keep_a_bounded_number_of_sessions() -> None:
    from tegkit.monitor.auth import MAX_SESSIONS

    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, control_token=TOKEN) as monitor,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        assert monitor.control is not None
        for _ in range(MAX_SESSIONS + 20):
            async with http.post(monitor.url + "login", json={"token": TOKEN}) as r:
                assert r.status == 200
        assert len(monitor.control._sessions) == MAX_SESSIONS
