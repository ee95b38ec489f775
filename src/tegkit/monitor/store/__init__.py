"""Where the monitor keeps readings: the Store interface, ``open_store`` and an async facade.

The store is synchronous and thread-safe: writes are serialised on one writer connection,
one transaction per call (so a batch is all or nothing); reads use a connection per
thread and never wait for writes. ``close()`` waits for the reads in flight before it
closes a connection; any call after it raises :class:`StoreClosedError`. The poller runs
on asyncio, so :class:`AsyncStore` sends writes, in order, to one dedicated writer
thread, and reads to a few reader threads of its own. A batch passed to
``write_readings`` is one commit: the poller batches.

    store = open_store("~/.local/share/tegkit/monitor.db")      # SQLite
    store = open_store("postgresql://user@host/tegkit")          # PostgreSQL
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
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
        return await self._write(self._store.write_readings, list(batch))

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
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, lambda: None)
        # close() refuses reads not yet started and waits for those running
        await asyncio.to_thread(self._store.close)
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        await asyncio.to_thread(self._writer.shutdown, wait=True)
