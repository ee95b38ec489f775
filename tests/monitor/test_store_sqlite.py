"""The store contract on SQLite, plus what only a file can show: crash safety, pragmas."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from _store_contract import *  # noqa: F403 - the shared contract tests run here too

from tegkit.monitor.readings import Reading
from tegkit.monitor.store import AsyncStore, StoreClosedError, open_store
from tegkit.monitor.store._sql import FOLD_READINGS
from tegkit.monitor.store.sqlite import SqliteStore


@pytest.fixture
def backend() -> str:
    return "sqlite"


WRITER = textwrap.dedent(
    """
    import sys
    from tegkit.monitor.readings import Reading
    from tegkit.monitor.store.sqlite import SqliteStore

    store = SqliteStore(sys.argv[1])
    batch_size = int(sys.argv[2])
    for b in range(10**6):
        t0 = 1_704_067_200 + b * batch_size * 5
        store.write_readings(
            Reading(gateway="gw", taken_at=t0 + 5 * i, load_w=float(b),
                    load_imported_wh=float((b * batch_size + i) * 2))
            for i in range(batch_size)
        )
        print(b, flush=True)  # only after the commit returned
    """
)


@pytest.mark.parametrize(
    ("batch_size", "batches"),
    [(500, 30), (1, 3 * FOLD_READINGS + 7)],  # whole hours; the poller's one reading a write
)
def test_every_reported_commit_survives_kill_9(
    tmp_path: Path, batch_size: int, batches: int
) -> None:
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(batch_size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    reported = -1
    for line in proc.stdout:
        reported = int(line)
        if reported >= batches:
            break
    os.kill(proc.pid, signal.SIGKILL)  # mid-way through the next batch
    proc.wait()
    assert reported >= batches, "the writer died before committing enough"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    store = SqliteStore(db)
    rows = store.readings("gw", 0, 2e9)
    kept = {int(r.load_w or 0) for r in rows}
    assert set(range(reported + 1)) <= kept
    assert len(rows) == batch_size * len(kept)  # whole batches: a commit is all or nothing
    # rollups committed with their readings: energy adds up to the stored counters
    total = sum(b.load_imported_wh for b in store.energy("gw", 0, 2e9, "hour"))
    assert total == (rows[-1].load_imported_wh or 0) - (rows[0].load_imported_wh or 0)
    # the recorder goes on where the killed one stopped: its tails fold into the blocks
    t = rows[-1].taken_at
    for i in range(1, FOLD_READINGS + 1):
        store.write_readings([Reading(gateway="gw", taken_at=t + 5 * i, load_w=-1.0)])
    assert store.readings("gw", 0, 2e9) == rows + store.readings("gw", t + 1, 2e9)
    assert len(store.readings("gw", t + 1, 2e9)) == FOLD_READINGS
    store.close()


def test_wal_and_synchronous_normal(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    store.write_readings([Reading(gateway="g", taken_at=1.0)])
    conn = store._new_reader()  # the pragmas every connection gets
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    conn.close()
    store.close()


def test_open_store_takes_a_path_or_sqlite_url(tmp_path: Path) -> None:
    for where in (tmp_path / "a" / "m.db", f"sqlite:///{tmp_path}/b.db"):
        store = open_store(where)
        assert isinstance(store, SqliteStore)
        store.close()
    assert (tmp_path / "a" / "m.db").exists() and (tmp_path / "b.db").exists()


async def test_async_store_writes_in_order_and_reads(tmp_path: Path) -> None:
    store = AsyncStore(open_store(tmp_path / "m.db"))
    for i in range(20):
        await store.write_readings(
            [Reading(gateway="g", taken_at=float(i), load_w=float(i), load_imported_wh=float(i))]
        )
    latest = await store.latest("g")
    assert latest is not None and latest.load_w == 19.0
    h = await store.history("g", 0, 20, step_s=5)
    assert [p.load_w for p in h.points] == [2.0, 7.0, 12.0, 17.0]
    await store.aclose()


def test_a_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    store.write_readings([Reading(gateway="g", taken_at=1.0, load_imported_wh=1.0)])
    # a real failure half-way through the transaction: blocks and rollups are written
    # by then, and the writer's position is refused by a trigger
    other = sqlite3.connect(tmp_path / "m.db")
    for when in ("INSERT", "UPDATE"):
        other.execute(
            f"CREATE TRIGGER refuse_{when.lower()} BEFORE {when} ON gateway_state "
            "WHEN NEW.last_ms = 2000 BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    other.commit()
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.write_readings([Reading(gateway="g", taken_at=2.0, load_imported_wh=2.0)])
    assert [r.taken_at for r in store.readings("g", 0, 10)] == [1.0]
    store.write_readings([Reading(gateway="g", taken_at=3.0, load_imported_wh=5.0)])
    assert sum(b.load_imported_wh for b in store.energy("g", 0, 10, "minute")) == 4.0
    other.close()
    store.close()


def test_the_database_is_created_0600_in_folders_created_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask, which would make them 0644 and 0755
    try:
        store = open_store(tmp_path / "a" / "b" / "monitor.db")
        store.write_readings([Reading(gateway="g", taken_at=1.0, load_w=5.0)])
        files = [tmp_path / "a" / "b" / f"monitor.db{suffix}" for suffix in ("", "-wal", "-shm")]
        modes = {p.name: p.stat().st_mode & 0o777 for p in files}
        store.close()
    finally:
        os.umask(old_umask)
    assert modes == dict.fromkeys(("monitor.db", "monitor.db-wal", "monitor.db-shm"), 0o600)
    for folder in (tmp_path / "a", tmp_path / "a" / "b"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_failed_fold_leaves_the_tails_as_they_were(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    rows = [Reading(gateway="g", taken_at=5.0 * i, load_w=float(i)) for i in range(FOLD_READINGS)]
    for r in rows[:-1]:
        store.write_readings([r])
    other = sqlite3.connect(tmp_path / "m.db")
    other.execute(  # the write that makes FOLD_READINGS folds: refuse its block
        "CREATE TRIGGER refuse_fold BEFORE INSERT ON blocks BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    other.commit()
    with pytest.raises(sqlite3.IntegrityError, match="no"):
        store.write_readings([rows[-1]])
    assert store.readings("g", 0, 1e9) == rows[:-1]
    other.execute("DROP TRIGGER refuse_fold")
    other.commit()
    other.close()
    store.write_readings([rows[-1]])  # the writer's tail count rolled back with the rest
    assert store._read("SELECT COUNT(*) FROM block_tails") == [(0,)]
    assert store._read("SELECT n FROM blocks") == [(FOLD_READINGS,)]
    assert store.readings("g", 0, 1e9) == rows
    store.close()


async def test_aclose_waits_for_reads_in_flight_then_refuses(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    seed = open_store(db)
    seed.write_readings([Reading(gateway="g", taken_at=5.0 * i, load_w=1.0) for i in range(1440)])
    seed.close()
    for _trial in range(25):
        store = AsyncStore(open_store(db))
        first_done = asyncio.Event()

        async def read(store: AsyncStore = store, first_done: asyncio.Event = first_done) -> str:
            try:
                while True:
                    await store.history("g", 0, 7200, step_s=5)
                    first_done.set()
            except StoreClosedError:
                return "closed"

        readers = [asyncio.create_task(read()) for _ in range(12)]
        await first_done.wait()
        await store.aclose()
        assert await asyncio.gather(*readers) == ["closed"] * 12
        with pytest.raises(StoreClosedError, match="closed"):
            await store.latest("g")
        with pytest.raises(StoreClosedError, match="closed"):
            store._store.history("g", 0, 60)  # the store behind the facade too


async def test_a_queued_write_is_kept_when_its_caller_is_cancelled(tmp_path: Path) -> None:
    store = AsyncStore(open_store(tmp_path / "m.db"))
    writer_busy, release = threading.Event(), threading.Event()

    def hold_the_writer() -> None:
        writer_busy.set()
        release.wait(timeout=30)

    holding = asyncio.create_task(store._write(hold_the_writer))
    await asyncio.to_thread(writer_busy.wait, 30)
    # queued behind the held job, then its caller goes away (a poller restart, shutdown)
    queued = asyncio.create_task(store.write_readings([Reading(gateway="g", taken_at=60.0)]))
    await asyncio.sleep(0)  # one loop turn: the new task runs up to its await
    assert store._writer._work_queue.qsize() == 1  # type: ignore[attr-defined]  # it is queued
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    await holding
    await store.aclose()
    reopened = open_store(tmp_path / "m.db")
    try:
        assert [r.taken_at for r in reopened.readings("g", 0, 120)] == [60.0]
    finally:
        reopened.close()
