"""SIGTERM to the real `teg monitor` while it serves many long history requests: exit 0.

The store's connections used to be closed under the threads still reading from them,
which ended the process with a segfault (-11) in about one shutdown of four. The
store-level tests (the contract's close-while-reading, AsyncStore's aclose) catch that
race reliably; this one checks the whole shutdown path of the real process under load.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tegkit.monitor.readings import Reading
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
YEAR_S = 366 * 86400
CLIENTS = 30
ROUNDS = 2


def _fill_a_year(db: Path) -> None:
    """A year of hourly readings, and a day of readings every 5 seconds, for gateway home."""
    store = open_store(db)
    try:
        sparse = [Reading(gateway="home", taken_at=T0 + 3600 * i, load_w=1.0) for i in range(8784)]
        dense = [
            Reading(gateway="home", taken_at=T0 + 5 * i + 1, load_w=2.0, site_w=3.0)
            for i in range(17280)
        ]
        store.write_readings(sparse + dense)
    finally:
        store.close()


def _queries() -> list[dict[str, str]]:
    year = {"from": str(T0), "to": str(T0 + YEAR_S)}
    # the longest range still answered from raw blocks: 2,000 buckets of 30 s
    raw = {"from": str(T0 + 3600), "to": str(T0 + 3600 + 60_000), "step": "30"}
    return [year, raw, {**year, "step": "86400"}, raw]


async def _hammer(
    http: aiohttp.ClientSession, url: str, k: int, served: list[int], enough: asyncio.Event
) -> None:
    queries = _queries()
    for n in range(10**9):
        try:
            async with http.get(url + "api/history", params=queries[(k + n) % len(queries)]) as r:
                await r.read()
        except (TimeoutError, aiohttp.ClientError):
            return  # the server went away: the shutdown under test
        served[0] += 1
        if served[0] >= 3 * CLIENTS:
            enough.set()


async def _one_shutdown(sim: Simulator, db: Path, env: dict[str, str]) -> tuple[int, str]:
    code = "import sys; from tegkit.cli.monitor import monitor; monitor(sys.argv[1:])"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        "--gateway", f"home={sim.url}", "--pin", sim.fingerprint_sha256, "--db", str(db),
        "--listen", "127.0.0.1:0", "--fast-interval", "0.5", "--slow-interval", "5",
        "--budget", "2000",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log: list[str] = []
    url = ""
    try:
        while not url:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "the monitor ended before serving:\n" + "".join(log)
            log.append(line)
            found = re.search(r"dashboard (http://\S+/)", line)
            url = found.group(1) if found else ""

        async def drain() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                log.append(raw.decode(errors="replace"))

        drainer = asyncio.create_task(drain())
        served, enough = [0], asyncio.Event()
        limits = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(connector=limits) as http:
            clients = [
                asyncio.create_task(_hammer(http, url, k, served, enough)) for k in range(CLIENTS)
            ]
            await asyncio.wait_for(enough.wait(), 120)  # every client is busy by now
            proc.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(proc.wait(), 60)
            await asyncio.gather(*clients)
        await drainer
        return returncode, "".join(log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sigterm_while_serving_long_histories_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    await asyncio.to_thread(_fill_a_year, db)
    env = {**os.environ, "TEG_CONFIG": str(tmp_path / "none.toml")}
    async with Simulator(port=0, scenario="sunny-day", speed=60) as sim:
        env["TEG_PASSWORD"], env["TEG_EMAIL"] = sim.password, sim.email
        for round_ in range(ROUNDS):
            returncode, log = await _one_shutdown(sim, db, env)
            # -11 is the segfault of a connection closed under a reading thread
            assert returncode == 0, f"round {round_}: exit {returncode}\n{log[-4000:]}"
            assert "Traceback" not in log, log[-4000:]
