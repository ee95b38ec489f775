"""10,000 gateways over 3 workers sharing one PostgreSQL (issue 13, item 4).

Two parts, because this 2-core machine cannot run 10,000 simulated gateways beside three
monitors:

1. Leases at full size: three FleetLeases (tegkit.monitor.lease, the default 15 s lease and
   5 s heartbeat) share 10,000 gateway names on a PostgreSQL server of the bench's own;
   `on_assigned` records the assignment and polls nothing. Measured: how long the fleet
   takes to be shared out, a heartbeat's transaction (renewal) and a take-over's, per
   1,000 leases, the failover after one worker dies without a word (its leases expire),
   and the write fence's check in a readings transaction.
2. Polling at reduced size: one `teg monitor --worker` process polls
   TEGKIT_BENCH_FLEET_GATEWAYS (default 100) gateways of `teg sim --gateways N` (another
   process) at the default 5 s interval for TEGKIT_BENCH_FLEET_SECONDS (default 60 s);
   readings recorded per second and the worker's CPU are measured, and the extrapolation
   to 3,334 gateways per worker (10,000 / 3) printed: CPU cores one worker needs for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._proc import cpu_s
from tegkit.monitor.lease import FleetLeases, LeaseSettings
from tegkit.monitor.store.postgres import PostgresStore

FLEET = 10_000
WORKERS = 3
Row = tuple[str, float, str]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; yields its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("bench_fleet_workers: PostgreSQL is not installed (apt install it)")
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="tegkit-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to postgres
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


class TimedLeases(FleetLeases):
    """FleetLeases noting each heartbeat transaction's duration and what it took."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[tuple[float, int, int]] = []  # (seconds, renewed, taken)

    async def _tick(self, generation: int) -> tuple[dict[str, int], dict[str, int], int]:
        began = time.perf_counter()
        renewed, taken, share = await super()._tick(generation)
        self.timings.append((time.perf_counter() - began, len(renewed), len(taken)))
        return renewed, taken, share


async def _until(check: Any, deadline_s: float = 300.0) -> float:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > deadline_s:
            raise SystemExit("bench_fleet_workers: the leases did not settle in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def _leases(url: str) -> list[Row]:
    names = [f"gw{i:05d}" for i in range(FLEET)]
    polling: dict[str, frozenset[str]] = {}
    settings = LeaseSettings()  # the defaults: 15 s lease, 5 s heartbeat

    def worker(name: str) -> TimedLeases:
        async def on_assigned(assigned: frozenset[str]) -> None:
            polling[name] = assigned

        return TimedLeases(url, names, on_assigned, worker_id=name, settings=settings)

    workers = [worker(f"w{i + 1}") for i in range(WORKERS)]
    tasks = [asyncio.create_task(w.run()) for w in workers]

    def shared(alive: list[str]) -> bool:
        counts = [len(polling.get(w, ())) for w in alive]
        return sum(counts) == FLEET and max(counts) <= math.ceil(FLEET / len(alive))

    rows: list[Row] = []
    try:
        settle_s = await _until(lambda: shared([w.worker_id for w in workers]))
        rows.append((f"fleet leases: {FLEET} over {WORKERS} workers shared out", settle_s, "s"))
        # steady state: a few heartbeats that only renew
        for w in workers:
            w.timings.clear()
        await asyncio.sleep(3 * settings.heartbeat_s)
        renew = [t / (n / 1000) for w in workers for t, n, k in w.timings if n and not k]
        rows.append(("fleet leases: renewal per 1,000 leases", 1000 * _mean(renew), "ms"))
        share = math.ceil(FLEET / WORKERS)
        rows.append((f"fleet leases: a heartbeat renewing a worker's {share}",
                     share * _mean(renew), "ms"))  # fmt: skip
        # one worker dies without a word: its leases expire and the others take them over
        dead = workers[0]
        tasks[0].cancel()
        polling[dead.worker_id] = frozenset()
        for w in workers[1:]:
            w.timings.clear()
        failover_s = await _until(lambda: shared([w.worker_id for w in workers[1:]]))
        rows.append(("fleet leases: failover after a worker died (15 s lease)", failover_s, "s"))
        took = [t / (k / 1000) for w in workers[1:] for t, _, k in w.timings if k >= 100]
        rows.append(("fleet leases: take-over per 1,000 leases", 1000 * _mean(took), "ms"))
        rows.append(("fleet leases: largest share after failover (fair: 5,000)",
                     max(len(polling[w.worker_id]) for w in workers[1:]), "gateways"))  # fmt: skip
        # on a thread: the heartbeats go on meanwhile
        rows += await asyncio.to_thread(_fence_rows, url, workers[1])
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for w in workers[1:]:
            await w.release_all()
        await dead.aclose()
    return rows


def _fence_rows(url: str, holder: FleetLeases) -> list[Row]:
    """The write fence's check inside a readings transaction: for one gateway (a poller's
    flush) and for 1,000 gateways in one transaction."""
    store = PostgresStore(url)
    try:
        names = sorted(holder.held)
        one: list[float] = []
        for name in names[:200]:
            with store._write_lock, store._write_tx():
                began = time.perf_counter()
                assert holder.write_fence(store._wexec, [name]) == [name]
                one.append(time.perf_counter() - began)
        with store._write_lock, store._write_tx():
            began = time.perf_counter()
            allowed = holder.write_fence(store._wexec, names[:1000])
            many_s = time.perf_counter() - began
        assert len(allowed) == 1000, len(allowed)
    finally:
        store.close()
    return [
        ("fleet leases: write fence, one gateway's flush", 1000 * _mean(one), "ms"),
        ("fleet leases: write fence, 1,000 gateways in one write", 1000 * many_s, "ms"),
    ]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _polling(url: str) -> list[Row]:
    """One worker process polling a simulated fleet in another: readings/s and CPU."""
    gateways = int(os.environ.get("TEGKIT_BENCH_FLEET_GATEWAYS", "100"))
    window_s = float(os.environ.get("TEGKIT_BENCH_FLEET_SECONDS", "60"))
    teg = str(Path(sys.executable).with_name("teg"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    state = Path(tempfile.mkdtemp(prefix="tegkit-bench-fleet-"))
    sim = subprocess.Popen(
        [teg, "sim", "--gateways", str(gateways), "--port", "0", "--firmware", "23.44",
         "--state-dir", str(state), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    worker: subprocess.Popen[str] | None = None
    try:
        assert sim.stdout is not None
        line = json.loads(sim.stdout.readline())
        fleet_file = _find_fleet_file(line, state)
        worker = subprocess.Popen(
            [teg, "monitor", "--fleet", str(fleet_file), "--db", url, "--worker", "bench",
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        store = PostgresStore(url)
        try:
            # wait for the worker to poll everything, then measure a window
            _wait(lambda: _held(store, "bench") == gateways, 300)
            _wait(lambda: _readings(store) >= 2 * gateways, 300)
            cpu0, n0, t0 = cpu_s(worker.pid), _readings(store), time.monotonic()
            threading.Event().wait(window_s)  # the measured window (a bench, not a test)
            cpu1, n1, t1 = cpu_s(worker.pid), _readings(store), time.monotonic()
        finally:
            store.close()
    finally:
        for proc in (worker, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(state, ignore_errors=True)
    rate = (n1 - n0) / (t1 - t0)
    cpu = (cpu1 - cpu0) / (t1 - t0)
    per_core = rate / cpu * 5.0 if cpu > 0 else math.nan  # gateways at 5 s per CPU core
    share = math.ceil(FLEET / WORKERS)
    return [
        (f"fleet workers: 1 worker polling {gateways} simulated gateways, readings/s", rate,
         "readings/s"),
        ("fleet workers: that worker's CPU", 100 * cpu, "% of a core"),
        ("fleet workers: gateways one core polls at 5 s (extrapolated)", per_core, "gateways"),
        (f"fleet workers: cores a worker needs for {share} gateways (10,000 / 3)",
         share / per_core, "cores"),
        (f"fleet workers: poll interval for {share} gateways on one core a worker",
         5.0 * share / per_core, "s"),
    ]  # fmt: skip


def _find_fleet_file(start_line: dict[str, Any], state: Path) -> Path:
    for key in ("fleet_file", "fleet"):
        value = start_line.get(key)
        if isinstance(value, str) and value.endswith(".toml"):
            return Path(value)
    found = sorted(state.rglob("*.toml"))
    if not found:
        raise SystemExit(f"bench_fleet_workers: no fleet file in {state}")
    return found[0]


def _wait(check: Any, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    pause = threading.Event()
    while not check():
        if time.monotonic() > end:
            raise SystemExit("bench_fleet_workers: the worker did not start polling in time")
        pause.wait(0.5)


def _held(store: PostgresStore, worker: str) -> int:
    rows = store._read(
        "SELECT count(*) FROM leases WHERE worker = ? AND expires_ms > "
        "EXTRACT(EPOCH FROM now()) * 1000",
        (worker,),
    )
    return int(rows[0][0])


def _readings(store: PostgresStore) -> int:
    rows = store._read(
        "SELECT (SELECT COALESCE(SUM(n), 0) FROM blocks) "
        "+ (SELECT COALESCE(SUM(n), 0) FROM block_tails)"  # readings not yet folded
    )
    return int(rows[0][0])


def run() -> list[Row]:
    with postgres() as url:
        PostgresStore(url).close()  # migrated: leases and workers tables
        rows = asyncio.run(_leases(url))
        rows += _polling(url)
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<72} {value:12.2f} {unit}")
