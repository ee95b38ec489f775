"""One `teg monitor` following a simulated fleet (1,000 gateways by default) at the default
poll intervals, each in its own process: `python -m tegkit.sim --gateways N` and
`teg monitor --fleet FLEET.toml --db <tmp sqlite>`.

After a warm-up (every gateway has a fresh reading), over a window (TEG_BENCH_FLEET_WINDOW_S,
default 180 s) of wall time:
- the monitor's average CPU as % of one core (utime + stime from /proc/PID/stat);
- its RSS, the most seen (sampled every 2 s) and at the end;
- poll lateness p50 / p99: how late each poll group started after its scheduled time, from
  the `tegkit_poll_lateness_seconds` histogram in /metrics (difference of the window's two
  scrapes; a quantile is the upper bound of its bucket);
- readings recorded per gateway: counted in the store afterwards, against the window over
  the fast interval (5 s); "on time" means at least 90 % of that (jitter is +-10 % either
  way, so a missed poll shows); every gateway must have readings;
- requests per gateway per minute: the monitor's own count of each gateway's requests
  (/api/live `requests_total`), the most over gateways, against the budget (90 a minute);
- store growth per gateway-day: the database's used pages (page_count - freelist, read
  through a reader connection) over the window, per gateway, scaled to a day. The tails
  (a poll's reading waits there until its gateway has FOLD_READINGS of them to fold into
  the hour block) are a bounded buffer that fills during a short window: their readings
  are counted at the bytes a reading takes in the blocks at the end of the run.

Then a second window (TEG_BENCH_FLEET_FAULT_WINDOW_S, default 120 s) with the first gateway
slow (every
answer 8 s late: longer than the 5 s fast interval) and the second failing (every connection
dropped): the other gateways' lateness and readings, which must not change.

BENCH_FLEET_GATEWAYS sets the fleet's size. Each row's unit says the target and whether it
was met. The window's own scrapes of /api/live and /metrics (two each) are in the CPU figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench._proc import cpu_s, free_port, rss_mb

GATEWAYS = int(os.environ.get("BENCH_FLEET_GATEWAYS", "1000"))
WINDOW_S = float(os.environ.get("TEG_BENCH_FLEET_WINDOW_S", "180"))
FAULT_WINDOW_S = float(os.environ.get("TEG_BENCH_FLEET_FAULT_WINDOW_S", "120"))
WARMUP_MAX_S = 600.0
SETTLE_S = 20.0  # after every gateway has a reading: logins and first slow polls are done
FAST_INTERVAL_S = 5.0  # PollerConfig's default
BUDGET_PER_MINUTE = 90  # PollerConfig's default
ON_TIME_SHARE = 0.9
SLOW_MS = 8000.0

CPU_TARGET_PERCENT = 35.0
RSS_TARGET_MB = 400.0
LATENESS_TARGET_S = 1.0

_MONITOR = "import sys; from tegkit.cli.monitor import monitor; monitor(sys.argv[1:])"


_TAILS = "('block_tails', 'block_tails_by_block')"


def _used_bytes(db: Path) -> tuple[int, int]:
    """(bytes of the database's pages in use but the tails', readings in the tails), as a
    reader sees them (WAL included). The tails are a buffer of at most FOLD_READINGS
    readings a gateway, folded into hour blocks every few minutes: their growth over a
    short window is counted at what their readings take once folded (see run())."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        tails = conn.execute(f"SELECT COUNT(*) FROM dbstat WHERE name IN {_TAILS}").fetchone()[0]
        held = conn.execute("SELECT COALESCE(SUM(n), 0) FROM block_tails").fetchone()[0]
        return int((pages - free - tails) * size), int(held)
    finally:
        conn.close()


def _folded_bytes_per_reading(db: Path) -> float:
    """Bytes a reading takes in the hour blocks (the tails' own size where nothing was
    folded yet: larger, so the growth is not understated)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for table in ("blocks", "block_tails"):
            size, n = conn.execute(
                f"SELECT COALESCE(SUM(length(data)), 0), COALESCE(SUM(n), 0) FROM {table}"
            ).fetchone()
            if n:
                return float(size) / float(n)
        return 0.0
    finally:
        conn.close()


def _lateness(text: str) -> list[tuple[float, float]]:
    """(le, cumulative count) of tegkit_poll_lateness_seconds in a /metrics text."""
    out = []
    for line in text.splitlines():
        if line.startswith("tegkit_poll_lateness_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    return out


def _quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float):
    """The upper bound of the bucket holding quantile q of the observations in between."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return float("nan"), 0
    for le, n in counts:
        if n >= q * total:
            return le, int(total)
    return float("inf"), int(total)


@dataclass
class Window:
    cpu_percent: float
    sim_cpu_percent: float
    rss_max_mb: float
    rss_end_mb: float
    p50_s: float
    p99_s: float
    polls: int
    requests_per_min: dict[str, float]
    growth_bytes: int  # used pages but the tails'
    tail_readings: int  # readings that went into the tails (less those folded out)
    start: float  # epoch s
    end: float


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "monitor.db"
        self.sim: subprocess.Popen[str] | None = None
        self.mon: subprocess.Popen[bytes] | None = None
        self.start_line: dict[str, Any] = {}
        self.url = ""

    def start_sim(self) -> None:
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "tegkit.sim", "--gateways", str(GATEWAYS), "--port", "0",
             "--json", "--seed", "1", "--state-dir", str(self.tmp / "sim")],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.sim.stdout is not None
        line = self.sim.stdout.readline()
        if not line:
            raise RuntimeError("the simulated fleet exited before its start line")
        self.start_line = json.loads(line)

    def start_monitor(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        log = open(self.tmp / "monitor.log", "wb")  # noqa: SIM115 (the process keeps it)
        self.mon = subprocess.Popen(
            [sys.executable, "-c", _MONITOR, "--fleet", self.start_line["fleet_file"],
             "--db", str(self.db), "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip

    def stop(self) -> None:
        for proc in (self.mon, self.sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.mon, self.sim):
            if proc is not None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    async def get(self, http: aiohttp.ClientSession, path: str) -> bytes:
        async with http.get(self.url + path) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status}")
            return body

    async def warm_up(self, http: aiohttp.ClientSession) -> float:
        """Seconds until every gateway has a fresh reading (then SETTLE_S more)."""
        began = time.monotonic()
        while True:
            assert self.mon is not None
            if self.mon.poll() is not None:
                raise RuntimeError(f"the monitor exited; see {self.tmp / 'monitor.log'}")
            try:
                live = json.loads(await self.get(http, "api/live"))
                ok = sum(1 for g in live["gateways"] if g["status"] == "ok")
                if ok == GATEWAYS:
                    break
            except (aiohttp.ClientError, RuntimeError):
                pass
            if time.monotonic() - began > WARMUP_MAX_S:
                raise RuntimeError(f"not every gateway had a reading after {WARMUP_MAX_S} s")
            await asyncio.sleep(2)
        took = time.monotonic() - began
        await asyncio.sleep(SETTLE_S)
        return took

    async def window(self, http: aiohttp.ClientSession, seconds: float) -> Window:
        assert self.mon is not None
        pid = self.mon.pid

        async def snapshot() -> tuple[float, float, list[tuple[float, float]], dict[str, int]]:
            metrics = (await self.get(http, "metrics")).decode()
            live = json.loads(await self.get(http, "api/live"))
            counts = {g["gateway"]: g["requests_total"] for g in live["gateways"]}
            return time.time(), time.monotonic(), _lateness(metrics), counts

        start, t0, late0, req0 = await snapshot()
        assert self.sim is not None
        cpu0, used0, sim0 = cpu_s(pid), _used_bytes(self.db), cpu_s(self.sim.pid)
        rss_max = rss_mb(pid)
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(2)
            rss_max = max(rss_max, rss_mb(pid))
        cpu1, used1, sim1 = cpu_s(pid), _used_bytes(self.db), cpu_s(self.sim.pid)
        end, t1, late1, req1 = await snapshot()
        rss_end = rss_mb(pid)
        elapsed = t1 - t0
        p50, polls = _quantile(late0, late1, 0.50)
        p99, _ = _quantile(late0, late1, 0.99)
        per_min = {n: (req1[n] - req0.get(n, 0)) * 60.0 / elapsed for n in req1}
        return Window(
            100.0 * (cpu1 - cpu0) / elapsed, 100.0 * (sim1 - sim0) / elapsed,
            max(rss_max, rss_end), rss_end, p50, p99, polls,
            per_min, used1[0] - used0[0], used1[1] - used0[1], start, end,
        )  # fmt: skip

    async def fault(self, http: aiohttp.ClientSession, name: str, body: dict[str, Any]) -> None:
        member = next(m for m in self.start_line["members"] if m["name"] == name)
        pin = aiohttp.Fingerprint(bytes.fromhex(member["fingerprint_sha256"]))
        headers = {"Authorization": f"Bearer {self.start_line['control_token']}"}
        async with http.post(
            member["control_url"] + "/faults", json=body, headers=headers, ssl=pin
        ) as r:
            if r.status != 200:
                raise RuntimeError(f"{name}: fault refused: HTTP {r.status} {await r.text()}")


def _readings_per_gateway(db: Path, names: list[str], start: float, end: float) -> dict[str, int]:
    from tegkit.monitor.store.sqlite import SqliteStore

    store = SqliteStore(db)
    try:
        return {n: len(store.readings(n, start, end)) for n in names}
    finally:
        store.close()


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


async def _run(tmp: Path) -> list[tuple[str, float, str]]:
    bench = Bench(tmp)
    rows: list[tuple[str, float, str]] = []
    n = GATEWAYS
    try:
        bench.start_sim()
        bench.start_monitor()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            warm_s = await bench.warm_up(http)
            calm = await bench.window(http, WINDOW_S)
            first, second = (m["name"] for m in bench.start_line["members"][:2])
            await bench.fault(http, first, {"kind": "latency", "latency_ms": SLOW_MS})
            await bench.fault(http, second, {"kind": "drop", "count": 1_000_000})
            await asyncio.sleep(10)  # the faults' first effects (back-offs) settle
            faulty = await bench.window(http, FAULT_WINDOW_S)
    finally:
        bench.stop()
    names = [m["name"] for m in bench.start_line["members"]]
    calm_counts = _readings_per_gateway(bench.db, names, calm.start, calm.end)
    fault_counts = _readings_per_gateway(bench.db, names, faulty.start, faulty.end)
    slow, failing = names[0], names[1]
    others = names[2:]

    def on_time(counts: dict[str, int], window: Window, among: list[str]) -> tuple[float, int]:
        expected = (window.end - window.start) / FAST_INTERVAL_S
        low = [g for g in among if counts[g] < ON_TIME_SHARE * expected]
        return min(counts[g] for g in among) / expected, len(low)

    calm_share, calm_late = on_time(calm_counts, calm, names)
    fault_share, fault_late = on_time(fault_counts, faulty, others)
    missing = sum(1 for g in names if calm_counts[g] == 0)
    max_rpm = max(calm.requests_per_min.values())
    folded = calm.growth_bytes + calm.tail_readings * _folded_bytes_per_reading(bench.db)
    growth = folded / n / (calm.end - calm.start) * 86400
    t = f"{n} gw"
    rows += [
        (f"fleet {t}: warm-up until every gateway has a reading", warm_s, "s"),
        (f"fleet {t}: monitor CPU", calm.cpu_percent,
         f"% of a core (target <= {CPU_TARGET_PERCENT:g}: "
         f"{_met(calm.cpu_percent <= CPU_TARGET_PERCENT)})"),
        (f"fleet {t}: the simulated fleet's CPU (context)", calm.sim_cpu_percent,
         "% of a core"),
        (f"fleet {t}: load average of the machine (context)", os.getloadavg()[0],
         f"runnable processes on {os.cpu_count()} cores"),
        (f"fleet {t}: monitor RSS, most seen", calm.rss_max_mb,
         f"MB (target <= {RSS_TARGET_MB:g}: {_met(calm.rss_max_mb <= RSS_TARGET_MB)})"),
        (f"fleet {t}: monitor RSS at the window's end", calm.rss_end_mb, "MB"),
        (f"fleet {t}: poll lateness p50 ({calm.polls} polls)", calm.p50_s, "s (bucket bound)"),
        (f"fleet {t}: poll lateness p99", calm.p99_s,
         f"s (target <= {LATENESS_TARGET_S:g}: {_met(calm.p99_s <= LATENESS_TARGET_S)})"),
        (f"fleet {t}: fewest readings of a gateway / expected", calm_share,
         f"(expected {WINDOW_S / FAST_INTERVAL_S:.0f}; {calm_late} gateways under "
         f"{ON_TIME_SHARE:.0%}, {missing} without any: {_met(calm_late == 0 and not missing)})"),
        (f"fleet {t}: most requests of a gateway per minute", max_rpm,
         f"req/min (budget {BUDGET_PER_MINUTE}: {_met(max_rpm <= BUDGET_PER_MINUTE)})"),
        (f"fleet {t}: store growth per gateway-day", growth / 1e6, "MB"),
        (f"fleet {t}, {slow} slow + {failing} failing: monitor CPU",
         faulty.cpu_percent, "% of a core"),
        (f"fleet {t}, faults: poll lateness p50", faulty.p50_s, "s (bucket bound)"),
        (f"fleet {t}, faults: poll lateness p99 (all gateways)", faulty.p99_s,
         f"s (calm {calm.p99_s:g}; target <= {LATENESS_TARGET_S:g}: "
         f"{_met(faulty.p99_s <= LATENESS_TARGET_S)})"),
        (f"fleet {t}, faults: fewest readings of another gateway / expected", fault_share,
         f"({fault_late} others under {ON_TIME_SHARE:.0%}: {_met(fault_late == 0)})"),
        (f"fleet {t}, faults: readings of the slow gateway {slow}",
         float(fault_counts[slow]), "readings"),
        (f"fleet {t}, faults: readings of the failing gateway {failing}",
         float(fault_counts[failing]), "readings (0: a gap, never zeros)"),
    ]  # fmt: skip
    return rows


def run() -> list[tuple[str, float, str]]:
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-fleet-") as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    for row in run():
        print(*row)
