"""Fleet leases (tegkit.monitor.lease) against the suite's real PostgreSQL: workers in one
process, each a FleetLeases whose `on_assigned` is checked at every change.

The checks that hold at every moment (recorded, asserted at the end of each test):
- no gateway is assigned to two workers at once;
- a worker stops polling a gateway while it still holds the lease (released after);
- a worker cut from the database stops polling before its leases expire (server clock).
Timing comes from short leases (LeaseSettings) and conditions polled with deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from conftest import pg_schema_url
from tegkit.monitor.lease import FleetLeases, LeaseSettings
from tegkit.monitor.readings import Reading
from tegkit.monitor.store.postgres import PostgresStore
from tegkit.monitor.store.sqlite import SqliteStore

FAST = LeaseSettings(ttl_s=3.0, heartbeat_s=0.5, connect_timeout_s=1.0)
GATEWAYS = [f"gw{i:02d}" for i in range(10)]
DEADLINE_S = 60.0


@pytest.fixture
def lease_url(pg_url: str) -> str:
    url = pg_schema_url(pg_url)
    PostgresStore(url).close()  # the schema, migration 5 included
    return url


async def until(what: str, check: Callable[[], object], deadline_s: float = DEADLINE_S) -> None:
    """Poll `check` (every 50 ms) until truthy; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not check():
        if loop.time() > end:
            raise AssertionError(f"waited {deadline_s:.0f} s for {what}")
        await asyncio.sleep(0.05)


class Fleet:
    """Workers of one fleet in this process; the invariants checked at every change."""

    def __init__(self, url: str, gateways: list[str]) -> None:
        self.url = url
        self.gateways = gateways
        self.polling: dict[str, str] = {}  # gateway -> the worker polling it now
        self.violations: list[str] = []
        self.workers: dict[str, Worker] = {}
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def db(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        return self._conn

    async def leases(self) -> dict[str, tuple[str | None, int, bool]]:
        """gateway -> (worker, epoch, still valid by the server's clock)."""
        cur = await (await self.db()).execute(
            "SELECT gateway, worker, epoch, expires_ms > (EXTRACT(EPOCH FROM now()) * 1000) "
            "FROM leases"
        )
        return {str(g): (w, int(e), bool(v)) for g, w, e, v in await cur.fetchall()}

    def start(self, name: str, url: str | None = None) -> Worker:
        worker = Worker(self, name, url or self.url)
        self.workers[name] = worker
        return worker

    def shares(self) -> dict[str, int]:
        return {n: len(w.polling) for n, w in self.workers.items() if w.task is not None}

    def covered(self) -> bool:
        return sorted(self.polling) == sorted(self.gateways)

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.stop()
        if self._conn is not None:
            await self._conn.close()


class Worker:
    def __init__(self, fleet: Fleet, name: str, url: str) -> None:
        self.fleet, self.name = fleet, name
        self.polling: frozenset[str] = frozenset()
        self.changes = 0
        self.fenced_with_valid_leases: list[bool] = []
        self.leases = FleetLeases(
            url, fleet.gateways, self.on_assigned, worker_id=name, settings=FAST
        )
        self.task: asyncio.Task[None] | None = asyncio.create_task(self.leases.run())

    async def on_assigned(self, names: frozenset[str]) -> None:
        fleet = self.fleet
        stopped, started = self.polling - names, names - self.polling
        if stopped:
            # stopping comes first: the leases must still be this worker's (checked on
            # a connection of the test's own, which a cut worker's proxy does not carry)
            leases = await fleet.leases()
            for g in sorted(stopped):
                worker, _, valid = leases[g]
                if worker != self.name or not valid:
                    fleet.violations.append(f"{self.name} stopped {g} after losing it")
                fleet.polling.pop(g, None)
            if not names:
                self.fenced_with_valid_leases.append(True)
        for g in sorted(started):
            other = fleet.polling.get(g)
            if other is not None:
                fleet.violations.append(f"{self.name} started {g} while {other} polls it")
            fleet.polling[g] = self.name
        self.polling = names
        self.changes += 1

    def kill(self) -> None:
        """As kill -9: the task is gone, nothing released, nothing polled any more."""
        assert self.task is not None
        self.task.cancel()
        self.task = None
        for g in self.polling:
            self.fleet.polling.pop(g, None)
        self.polling = frozenset()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
            await self.leases.release_all()
        await self.leases.aclose()


@pytest.fixture
async def fleet(lease_url: str) -> AsyncIterator[Fleet]:
    f = Fleet(lease_url, GATEWAYS)
    try:
        yield f
    finally:
        await f.close()


def fair(shares: dict[str, int], total: int) -> bool:
    most = -(-total // len(shares))
    return sum(shares.values()) == total and all(0 < n <= most for n in shares.values())


async def test_workers_share_the_fleet_fairly_and_a_joining_worker_gets_a_share(
    fleet: Fleet,
) -> None:
    a = fleet.start("a")
    await until("a alone polls every gateway", lambda: len(a.polling) == 10)
    fleet.start("b")
    await until("a and b poll 5 each", lambda: fleet.shares() == {"a": 5, "b": 5})
    assert fleet.covered()
    fleet.start("c")
    await until("a share for c", lambda: fair(fleet.shares(), 10) and fleet.covered())
    assert max(fleet.shares().values()) == 4
    leases = await fleet.leases()
    assert {g: w for g, (w, _, _) in leases.items()} == fleet.polling
    # a take-over counts in the epoch: every gateway changed hands at least once
    assert all(epoch >= 1 for _, epoch, _ in leases.values())
    assert fleet.violations == []


async def test_a_clean_stop_hands_the_gateways_over_at_once(fleet: Fleet) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    await until("5 each", lambda: fleet.shares() == {"a": 5, "b": 5})
    await a.stop()
    # released, not expired: b takes them at its next heartbeat
    await until("b polls every gateway", lambda: len(b.polling) == 10)
    leases = await fleet.leases()
    assert {w for w, _, _ in leases.values()} == {"b"}
    cur = await (await fleet.db()).execute("SELECT worker FROM workers")
    assert [r[0] for r in await cur.fetchall()] == ["b"]
    assert fleet.violations == []


async def test_a_dead_worker_s_leases_expire_and_the_others_take_them_over(
    fleet: Fleet,
) -> None:
    a, b, c = fleet.start("a"), fleet.start("b"), fleet.start("c")
    await until("a fair share each", lambda: fair(fleet.shares(), 10) and fleet.covered())
    before = await fleet.leases()
    victims = sorted(a.polling)
    a.kill()
    await until("b and c poll every gateway", lambda: fleet.covered())
    assert set(fleet.polling.values()) == {"b", "c"}
    assert fair({"b": len(b.polling), "c": len(c.polling)}, 10)
    after = await fleet.leases()
    for g in victims:
        assert after[g][0] in ("b", "c") and after[g][1] == before[g][1] + 1, g
    assert fleet.violations == []


class Proxy:
    """A TCP relay to PostgreSQL that can be cut into a black hole (nothing passes, no
    connection closes): a database that stops answering, as behind a lost network."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cut = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(self.host, self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if not self.cut.is_set():
                        dst.write(data)
                        await dst.drain()
            dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # the test ended: so does the relay
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_a_worker_cut_from_the_database_stops_polling_before_its_leases_expire(
    fleet: Fleet,
) -> None:
    parts = urlsplit(fleet.url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    try:
        a, b = fleet.start("a", via_proxy), fleet.start("b")
        await until("5 each", lambda: fleet.shares() == {"a": 5, "b": 5})
        held = dict(a.leases.held)
        proxy.cut.set()
        await until("a stops polling", lambda: not a.polling)
        # on_assigned(empty) checked that a's leases were still valid when it stopped
        assert a.fenced_with_valid_leases == [True]
        await until("b polls every gateway", lambda: len(b.polling) == 10)
        after = await fleet.leases()
        assert all(after[g][1] == held[g] + 1 for g in held)
        proxy.cut.clear()  # the database answers a again: it rejoins and gets a share
        await until("a gets a share again", lambda: fleet.shares() == {"a": 5, "b": 5})
        assert fleet.covered()
        assert fleet.violations == []
    finally:
        await proxy.close()


async def test_the_write_fence_keeps_readings_of_gateways_this_worker_holds(
    fleet: Fleet,
) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    await until("5 each", lambda: fleet.shares() == {"a": 5, "b": 5})
    mine, theirs = sorted(a.polling)[0], sorted(b.polling)[0]
    store = PostgresStore(fleet.url)
    try:
        store.write_fence = a.leases.write_fence
        batch = [Reading(gateway=g, taken_at=100.0, load_w=1.0) for g in (mine, theirs)]
        assert await asyncio.to_thread(store.write_readings, batch) == 1
        assert store.readings(mine, 0, 200) == [batch[0]]
        assert store.readings(theirs, 0, 200) == []
        # after a's leases are gone, nothing of a's is written any more
        a.kill()
        await until("b polls every gateway", lambda: len(b.polling) == 10)
        later = [Reading(gateway=mine, taken_at=101.0, load_w=2.0)]
        assert await asyncio.to_thread(store.write_readings, later) == 0
        assert store.readings(mine, 0, 200) == [batch[0]]
    finally:
        store.close()


async def test_forget_makes_the_store_read_a_gateway_s_position_again(lease_url: str) -> None:
    # two workers' stores, one gateway handed from one to the other and back: the energy
    # counted while the other held it is not counted again
    first, second = PostgresStore(lease_url), PostgresStore(lease_url)
    try:

        def r(t: float, wh: float) -> Reading:
            return Reading(gateway="g", taken_at=t, load_w=1.0, load_imported_wh=wh)

        first.write_readings([r(0.0, 0.0), r(10.0, 10.0)])
        second.write_readings([r(20.0, 20.0), r(30.0, 30.0)])  # it read first's position
        first.forget(["g"])
        first.write_readings([r(40.0, 40.0)])
        total = sum(b.load_imported_wh or 0.0 for b in first.energy("g", 0, 60, "minute"))
        assert total == 40.0
    finally:
        first.close()
        second.close()


def test_lease_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="ttl_s: at least twice heartbeat_s"):
        LeaseSettings(ttl_s=5.0, heartbeat_s=3.0)
    with pytest.raises(ValueError, match="heartbeat_s: a positive"):
        LeaseSettings(heartbeat_s=0.0)


def test_migration_5_is_harmless_on_sqlite(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "m.db").close()
    conn = sqlite3.connect(tmp_path / "m.db")
    try:
        for table in ("leases", "workers"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    finally:
        conn.close()
