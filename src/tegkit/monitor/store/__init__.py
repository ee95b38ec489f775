"""Where the monitor keeps readings: the Store interface, ``open_store`` and an async facade.

The store is synchronous and thread-safe: writes are serialised on one writer connection,
one transaction per call (so a batch is all or nothing); reads use a connection per
thread and never wait for writes. ``close()`` waits for the reads in flight before it
closes a connection; any call after it raises :class:`StoreClosedError`. The poller runs
on asyncio, so :class:`AsyncStore` sends writes, in order, to one dedicated writer
thread, and reads to a few reader threads of its own. Following many gateways
(`GROUP_COMMIT_MIN_GATEWAYS` or more wrote readings in the last minute), readings are
committed in groups: the batches passed to ``AsyncStore.write_readings`` within
`GROUP_COMMIT_S` of each other go into one transaction, and each call returns once that
transaction has committed, so a caller's durability is the same as alone (its reading is
on disk when the call returns); it only waits up to GROUP_COMMIT_S longer.

    store = open_store("~/.local/share/tegkit/monitor.db")      # SQLite
    store = open_store("postgresql://user@host/tegkit")          # PostgreSQL
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from tegkit._private_file import make_private_dir
from tegkit.monitor.readings import (
    CloudDay,
    DailyEnergy,
    EnergyBucket,
    Event,
    Gap,
    History,
    Outage,
    Reading,
    RetentionPolicy,
)
from tegkit.monitor.store.errors import StoreClosedError

__all__ = ["AsyncStore", "Store", "StoreClosedError", "open_store"]
#: reader threads of an AsyncStore: each holds one database connection
READER_THREADS = 4
#: readings batches that arrive within this many seconds share one commit when following
#: at least GROUP_COMMIT_MIN_GATEWAYS gateways: one commit per reading of every gateway of
#: a large fleet costs the monitor a good share of its CPU (bench fleet)
GROUP_COMMIT_S = 0.25
GROUP_COMMIT_MIN_GATEWAYS = 20
#: the gateways that wrote readings are counted afresh this often (seconds)
_WRITERS_WINDOW_S = 60.0

T = TypeVar("T")


@runtime_checkable
class Store(Protocol):
    """What every backend offers. Times are epoch seconds (float, UTC)."""

    def write_readings(self, batch: Iterable[Reading]) -> int: ...
    def write_gap(self, gap: Gap) -> None: ...
    def write_event(self, event: Event) -> None: ...
    def write_cloud_days(self, days: Iterable[CloudDay]) -> int: ...
    def write_cloud_outages(self, outages: Iterable[Outage]) -> int: ...
    def cloud_days(self, gateway: str, start: float, end: float) -> list[CloudDay]: ...
    def gateways(self) -> list[str]: ...
    def readings(self, gateway: str, start: float, end: float) -> list[Reading]: ...
    def latest(self, gateway: str) -> Reading | None: ...
    def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
        tz: dt.tzinfo | None = None,
    ) -> History: ...
    def energy(
        self, gateway: str, start: float, end: float, resolution: str = "hour"
    ) -> list[EnergyBucket]: ...
    def daily(
        self, gateway: str, start_day: dt.date, end_day: dt.date, tz: dt.tzinfo
    ) -> list[DailyEnergy]: ...
    def outages(self, gateway: str, start: float, end: float) -> list[Outage]: ...
    def gaps(self, gateway: str, start: float, end: float) -> list[Gap]: ...
    def events(
        self, gateway: str, start: float, end: float, kinds: Iterable[str] | None = None
    ) -> list[Event]: ...
    def retention(self, policy: RetentionPolicy, now: float | None = None) -> dict[str, int]: ...
    def schema_version(self) -> int: ...
    def size_bytes(self) -> int: ...
    def close(self) -> None: ...


def open_store(url_or_path: str | Path) -> Store:
    """Open (creating and migrating) a store: a postgresql:// URL or a SQLite file path."""
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        from tegkit.monitor.store.postgres import PostgresStore

        return PostgresStore(text)
    from tegkit.monitor.store.sqlite import SqliteStore

    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    path = Path(text).expanduser()
    make_private_dir(path.parent)
    return SqliteStore(path)


def _consume_failure(job: asyncio.Future[Any]) -> None:
    if not job.cancelled():
        job.exception()  # marks it retrieved; the awaiting caller, if any, still gets it


class AsyncStore:
    """A store for asyncio code: writes in order on one thread, reads on a few of its own.

    It offers the reads the monitor's callers need (the web API, the costs, the poller);
    the store behind it is its own: callers never reach through to it.

    ``aclose`` finishes the queued writes and waits for the reads in flight before the
    store closes; a call after it raises :class:`StoreClosedError`.
    """

    def __init__(self, store: Store, reader_threads: int = READER_THREADS) -> None:
        self._store = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tegkit-store-w")
        self._readers = ThreadPoolExecutor(
            max_workers=reader_threads, thread_name_prefix="tegkit-store-r"
        )
        self._closing = False
        # readings waiting for the group commit, each with the future its caller awaits
        self._group: list[tuple[list[Reading], asyncio.Future[int]]] = []
        self._group_timer: asyncio.TimerHandle | None = None
        self._writers: set[str] = set()  # gateways that wrote readings since _writers_since
        self._writers_since = time.monotonic()

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
        if self._closing:
            raise StoreClosedError("use")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(fn, *args))

    async def _write(self, fn: Callable[..., T], *args: object) -> T:
        """Queue a write; once queued it runs, even if the caller is cancelled meanwhile.

        A cancelled await would otherwise cancel the executor job still in the queue, and a
        reading already shown live would never reach the store (shutdown, a poller restart).
        """
        if self._closing:
            raise StoreClosedError("use")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._writer, functools.partial(fn, *args))
        job.add_done_callback(_consume_failure)  # the caller may be gone: nobody else looks
        return await asyncio.shield(job)

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        return await self._run(self._readers, fn, *args)

    async def write_readings(self, batch: Iterable[Reading]) -> int:
        """Commit `batch` with the other batches that come within GROUP_COMMIT_S; returns
        once committed: how many of its readings were stored (when the commit was shared
        and the store left some reading out, the batch's length less the commit's shortfall,
        at least 0). The write goes on if the caller is cancelled."""
        if self._closing:
            raise StoreClosedError("use")
        rows = list(batch)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        done.add_done_callback(_consume_failure)  # the caller may be gone: nobody else looks
        self._group.append((rows, done))
        fleet_sized = self._fleet_sized(rows)
        if self._group_timer is None:
            if fleet_sized:
                self._group_timer = loop.call_later(GROUP_COMMIT_S, self._commit_group)
            else:
                self._commit_group()
        return await asyncio.shield(done)

    def _fleet_sized(self, rows: list[Reading]) -> bool:
        """Whether GROUP_COMMIT_MIN_GATEWAYS or more gateways wrote readings lately."""
        now = time.monotonic()
        if now - self._writers_since > _WRITERS_WINDOW_S:
            self._writers.clear()
            self._writers_since = now
        self._writers.update(r.gateway for r in rows)
        return len(self._writers) >= GROUP_COMMIT_MIN_GATEWAYS

    def _commit_group(self) -> None:
        """Send the waiting readings to the writer thread as one transaction."""
        if self._group_timer is not None:
            self._group_timer.cancel()
            self._group_timer = None
        group, self._group = self._group, []
        if not group:
            return
        rows = [r for batch, _ in group for r in batch]
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._writer, self._store.write_readings, rows)

        def settle(job: asyncio.Future[int]) -> None:
            error = None if job.cancelled() else job.exception()
            shortfall = 0 if error is not None or job.cancelled() else len(rows) - job.result()
            for batch, done in group:
                if done.done():
                    continue
                if job.cancelled():
                    done.cancel()
                elif error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(max(0, len(batch) - shortfall))

        job.add_done_callback(settle)  # aclose's own job waits behind it on the writer

    async def write_gap(self, gap: Gap) -> None:
        await self._write(self._store.write_gap, gap)

    async def write_event(self, event: Event) -> None:
        await self._write(self._store.write_event, event)

    async def write_cloud_days(self, days: Iterable[CloudDay]) -> int:
        return await self._write(self._store.write_cloud_days, list(days))

    async def write_cloud_outages(self, outages: Iterable[Outage]) -> int:
        return await self._write(self._store.write_cloud_outages, list(outages))

    async def cloud_days(self, gateway: str, start: float, end: float) -> list[CloudDay]:
        return await self._read(self._store.cloud_days, gateway, start, end)

    async def readings(self, gateway: str, start: float, end: float) -> list[Reading]:
        return await self._read(self._store.readings, gateway, start, end)

    async def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
        tz: dt.tzinfo | None = None,
    ) -> History:
        return await self._read(self._store.history, gateway, start, end, step_s, max_points, tz)

    async def daily(
        self, gateway: str, start_day: dt.date, end_day: dt.date, tz: dt.tzinfo
    ) -> list[DailyEnergy]:
        return await self._read(self._store.daily, gateway, start_day, end_day, tz)

    async def energy(
        self, gateway: str, start: float, end: float, resolution: str = "hour"
    ) -> list[EnergyBucket]:
        return await self._read(self._store.energy, gateway, start, end, resolution)

    async def latest(self, gateway: str) -> Reading | None:
        return await self._read(self._store.latest, gateway)

    async def outages(self, gateway: str, start: float, end: float) -> list[Outage]:
        return await self._read(self._store.outages, gateway, start, end)

    async def events(
        self, gateway: str, start: float, end: float, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        chosen = None if kinds is None else list(kinds)  # read once, here, not on the thread
        return await self._read(self._store.events, gateway, start, end, chosen)

    async def gaps(self, gateway: str, start: float, end: float) -> list[Gap]:
        return await self._read(self._store.gaps, gateway, start, end)

    # fleet workers (tegkit.monitor.lease): only the SQL stores share a database
    async def forget(self, gateways: list[str]) -> None:
        """After the queued writes: re-read these gateways' positions before writing."""
        forget = getattr(self._store, "forget", None)
        if forget is not None:
            await self._write(forget, gateways)

    def set_write_fence(self, fence: Callable[..., Iterable[str]] | None) -> None:
        """Check each readings transaction's gateways with `fence` (see SqlStore)."""
        if not hasattr(self._store, "write_fence"):
            raise TypeError(f"{type(self._store).__name__} cannot fence its writes")
        self._store.write_fence = fence

    async def retention(self, policy: RetentionPolicy, now: float) -> dict[str, int]:
        return await self._write(self._store.retention, policy, now)

    async def aclose(self) -> None:
        """Finish queued writes, wait for reads in flight, then close the store. A read
        cancelled on the asyncio side still runs to its end in its thread: the store's
        own close() waits for it."""
        if self._closing:
            return
        self._closing = True
        self._commit_group()  # readings waiting for their group commit go now
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, lambda: None)
        # close() refuses reads not yet started and waits for those running
        await asyncio.to_thread(self._store.close)
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        await asyncio.to_thread(self._writer.shutdown, wait=True)
