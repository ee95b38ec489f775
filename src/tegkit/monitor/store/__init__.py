"""Where the monitor keeps readings: the Store interface, ``open_store`` and an async facade.

The store is synchronous and thread-safe: writes are serialised on one writer connection,
one transaction per call (so a batch is all or nothing); reads use a connection per
thread and never wait for writes. The poller runs on asyncio, so :class:`AsyncStore`
sends writes, in order, to one dedicated writer thread, and reads to the default
executor. A batch passed to ``write_readings`` is one commit: the poller batches.

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
from typing import Protocol, TypeVar, runtime_checkable

from tegkit.monitor.readings import (
    DailyEnergy,
    EnergyBucket,
    Event,
    Gap,
    History,
    Outage,
    Reading,
    RetentionPolicy,
)

__all__ = ["AsyncStore", "Store", "open_store"]

T = TypeVar("T")


@runtime_checkable
class Store(Protocol):
    """What every backend offers. Times are epoch seconds (float, UTC)."""

    def write_readings(self, batch: Iterable[Reading]) -> int: ...
    def write_gap(self, gap: Gap) -> None: ...
    def write_event(self, event: Event) -> None: ...
    def readings(self, gateway: str, start: float, end: float) -> list[Reading]: ...
    def latest(self, gateway: str) -> Reading | None: ...
    def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
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
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)


class AsyncStore:
    """A store for asyncio code: writes in order on one thread, reads in the executor."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tegkit-store")

    async def _write(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args))

    async def write_readings(self, batch: Iterable[Reading]) -> int:
        return await self._write(self.store.write_readings, list(batch))

    async def write_gap(self, gap: Gap) -> None:
        await self._write(self.store.write_gap, gap)

    async def write_event(self, event: Event) -> None:
        await self._write(self.store.write_event, event)

    async def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
    ) -> History:
        return await asyncio.to_thread(self.store.history, gateway, start, end, step_s, max_points)

    async def daily(
        self, gateway: str, start_day: dt.date, end_day: dt.date, tz: dt.tzinfo
    ) -> list[DailyEnergy]:
        return await asyncio.to_thread(self.store.daily, gateway, start_day, end_day, tz)

    async def latest(self, gateway: str) -> Reading | None:
        return await asyncio.to_thread(self.store.latest, gateway)

    async def outages(self, gateway: str, start: float, end: float) -> list[Outage]:
        return await asyncio.to_thread(self.store.outages, gateway, start, end)

    async def events(self, gateway: str, start: float, end: float) -> list[Event]:
        return await asyncio.to_thread(self.store.events, gateway, start, end)

    async def gaps(self, gateway: str, start: float, end: float) -> list[Gap]:
        return await asyncio.to_thread(self.store.gaps, gateway, start, end)

    async def retention(self, policy: RetentionPolicy, now: float) -> dict[str, int]:
        return await self._write(self.store.retention, policy, now)

    async def aclose(self) -> None:
        """Finish queued writes, then close the store."""
        await self._write(lambda: None)
        self._writer.shutdown(wait=True)
        await asyncio.to_thread(self.store.close)
