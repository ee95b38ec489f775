"""Several `teg monitor` workers sharing one fleet through PostgreSQL: each gateway leased
to exactly one worker at a time.

Tables (store migration 5): ``leases`` (gateway, worker, expires_ms, epoch) and ``workers``
(worker, heartbeat_ms, started_ms). Every time is the database server's clock, so workers
on machines whose clocks disagree still agree on who holds what.

Every ``heartbeat_s`` a worker, in one transaction:

1. stamps its heartbeat;
2. renews the leases it holds (those not yet expired; an expired one is lost);
3. counts the live workers (a heartbeat within ``ttl_s``): its fair share is
   ceil(gateways / live workers);
4. under its share, takes free or expired leases with ``SELECT ... FOR UPDATE SKIP LOCKED``
   (row locks rather than advisory locks: the lease row is the state others must see, and
   SKIP LOCKED lets workers ticking at once take disjoint gateways without waiting), adding
   one to each lease's epoch.

Over its share (a worker joined), it stops polling the excess first, then releases it, so a
gateway is never polled by two workers. A worker that cannot renew stops polling every
gateway ``heartbeat_s`` before its leases can expire, on its own monotonic clock counted
from the moment it sent its last successful renewal (the server stamped the expiry later
than that). Takeover after a worker dies: at most ``ttl_s + heartbeat_s`` (20 s by default).

Writes of readings are fenced too: inside the store's transaction a row lock (FOR SHARE)
checks that this worker still holds each gateway's lease at the epoch it took, so a worker
paused past its lease can never write over the gateway's new holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import psycopg

    from tegkit.monitor.alerts import AlertConfig
    from tegkit.monitor.fleet import FleetGateway
    from tegkit.monitor.service import FleetChange, Monitor

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the server's clock in epoch milliseconds (transaction start: no later than any statement)
_NOW_MS = "(EXTRACT(EPOCH FROM now()) * 1000)::bigint"

#: sets this worker's gateways to exactly these names (stops the others, flushing, first)
OnAssigned = Callable[[frozenset[str]], Awaitable[None]]


def default_worker_id() -> str:
    """hostname:pid, unique among the workers of one fleet."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """How long a lease lasts without renewal and how often a worker renews it."""

    ttl_s: float = 15.0
    heartbeat_s: float = 5.0
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.heartbeat_s > 0:
            raise ValueError(f"heartbeat_s: a positive number of seconds, not {self.heartbeat_s}")
        if not self.ttl_s >= 2 * self.heartbeat_s:
            raise ValueError(
                f"ttl_s: at least twice heartbeat_s ({2 * self.heartbeat_s:g} s), "
                f"not {self.ttl_s:g}: a worker stops polling heartbeat_s before its lease ends"
            )

    @property
    def fence_after_s(self) -> float:
        """Since the last renewal was sent: stop polling, the lease may soon be another's."""
        return self.ttl_s - self.heartbeat_s


class FleetLeases:
    """This worker's share of the fleet `gateways`, kept by heartbeat until cancelled.

    `on_assigned(names)` is awaited with the full set of gateways this worker must poll
    whenever it changes; it returns once those no longer named stopped polling.
    """

    def __init__(
        self,
        url: str,
        gateways: Iterable[str],
        on_assigned: OnAssigned,
        *,
        worker_id: str | None = None,
        settings: LeaseSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.worker_id = worker_id or default_worker_id()
        self.settings = settings or LeaseSettings()
        self.on_assigned = on_assigned
        self.monotonic = monotonic
        self._fleet = sorted(set(gateways))
        self._fleet_changed = True  # the lease rows of new gateways are made on the next tick
        #: gateway -> the epoch this worker took it at (what the write fence checks)
        self.held: dict[str, int] = {}
        self._assigned: frozenset[str] = frozenset()  # what on_assigned last said
        self._fence_at: float | None = None  # monotonic: stop polling then without renewal
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._failing = False
        self._generation = 0  # of the tick running now; a timed-out tick's result is ignored
        #: how many workers were live at the last tick, and this worker's share then
        self.live_workers = 0
        self.share = 0
        self.ticks = 0

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Heartbeat until cancelled. A clean stop then calls `release_all()`; without it
        (a crash) the leases expire after `ttl_s` and the others take them over."""
        while True:
            await self._step()
            await self._pause()

    async def _step(self) -> None:
        """One tick, bounded so it never outlasts the fence; then the fence if it is due."""
        self._generation += 1
        tick = asyncio.create_task(self._tick(self._generation), name="lease-tick")
        timeout_s = self.settings.heartbeat_s
        if self._fence_at is not None:
            timeout_s = min(timeout_s, max(0.0, self._fence_at - self.monotonic()))
        done, _ = await asyncio.wait({tick}, timeout=timeout_s)
        if not done:
            # not awaited: psycopg may wait long for the server to confirm the cancel; a
            # late tick finds its generation gone and changes nothing (see _tick)
            tick.cancel()
            tick.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._fail("the database did not answer in time")
        elif (exc := tick.exception()) is not None:
            self._fail(f"{type(exc).__name__}: {str(exc)[:200]}")
        else:
            if self._failing:
                log.info("leases: the database answers again (worker %s)", self.worker_id)
            self._failing = False
            renewed, taken, share = tick.result()
            try:  # outside the tick's time limit: stopping pollers flushes their readings
                await self._apply(renewed, taken, share)
            except Exception as exc:
                self._fail(f"{type(exc).__name__}: {str(exc)[:200]}")
        if self._fence_at is not None and self.monotonic() >= self._fence_at and self.held:
            await self._self_fence()

    async def _pause(self) -> None:
        """Until the next heartbeat, or the fence if it comes first."""
        wait_s = self.settings.heartbeat_s
        if self._fence_at is not None and self.held:
            wait_s = min(wait_s, max(0.0, self._fence_at - self.monotonic()))
        await asyncio.sleep(wait_s)

    def _fail(self, why: str) -> None:
        if not self._failing:
            log.warning(
                "leases: cannot renew (worker %s, %d gateway(s) held): %s",
                self.worker_id,
                len(self.held),
                why,
            )
        self._failing = True
        conn, self._conn = self._conn, None
        if conn is not None:  # a fresh connection next time: this one may be half-way
            task = asyncio.ensure_future(conn.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _self_fence(self) -> None:
        names = sorted(self.held)
        log.warning(
            "leases: no renewal for %.1f s: worker %s stops polling %d gateway(s) before "
            "its leases can expire: %s",
            self.settings.fence_after_s,
            self.worker_id,
            len(names),
            _few(names),
        )
        self._fence_at = None
        try:
            # the leases are still valid (a heartbeat's margin): the stopped pollers' last
            # readings may be written, and the store's fence refuses them once they are not
            await self._assign(frozenset())
        except Exception as exc:  # the pollers were cancelled before anything else failed
            log.error("leases: stopping the pollers failed: %s: %s", type(exc).__name__, exc)
        finally:
            self.held = {}

    async def _assign(self, names: frozenset[str]) -> None:
        if names != self._assigned:
            await self.on_assigned(names)
            self._assigned = names

    # --- the database --------------------------------------------------------------------
    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            import psycopg

            timeout_s = self.settings.connect_timeout_s
            self._conn = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, math.ceil(timeout_s)),
                application_name=f"tegkit-lease {self.worker_id}"[:63],
            )
            # a statement that hangs is cut by the server too, not only by our timeout
            await self._conn.execute(
                f"SET statement_timeout = {int(self.settings.heartbeat_s * 1000)}"
            )
        return self._conn

    async def _tick(self, generation: int) -> tuple[dict[str, int], dict[str, int], int]:
        """The heartbeat's transaction: (leases renewed, leases taken, this worker's share)."""
        sent = self.monotonic()  # before anything reaches the server: a safe lower bound
        conn = await self._connection()
        ttl_ms = int(self.settings.ttl_s * 1000)
        me = self.worker_id
        async with conn.transaction():
            if self._fleet_changed:
                await conn.execute(
                    "INSERT INTO leases (gateway, worker, expires_ms, epoch) "
                    "SELECT g, NULL, 0, 0 FROM unnest(%s::text[]) AS g ON CONFLICT DO NOTHING",
                    (self._fleet,),
                )
            await conn.execute(
                f"INSERT INTO workers (worker, heartbeat_ms, started_ms) "
                f"VALUES (%s, {_NOW_MS}, {_NOW_MS}) "
                f"ON CONFLICT (worker) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                (me,),
            )
            cur = await conn.execute(
                f"UPDATE leases SET expires_ms = {_NOW_MS} + %s "
                f"WHERE worker = %s AND expires_ms > {_NOW_MS} RETURNING gateway, epoch",
                (ttl_ms, me),
            )
            renewed = {str(g): int(e) for g, e in await cur.fetchall()}
            cur = await conn.execute(
                f"SELECT count(*) FROM workers WHERE heartbeat_ms > {_NOW_MS} - %s", (ttl_ms,)
            )
            row = await cur.fetchone()
            live = max(1, int(row[0]) if row else 1)
            share = math.ceil(len(self._fleet) / live)
            taken: dict[str, int] = {}
            want = share - len(renewed)
            if want > 0:
                cur = await conn.execute(
                    f"WITH free AS (SELECT gateway FROM leases "
                    f"WHERE gateway = ANY(%s) AND (worker IS NULL OR expires_ms <= {_NOW_MS}) "
                    f"ORDER BY gateway LIMIT %s FOR UPDATE SKIP LOCKED) "
                    f"UPDATE leases l SET worker = %s, expires_ms = {_NOW_MS} + %s, "
                    f"epoch = l.epoch + 1 FROM free WHERE l.gateway = free.gateway "
                    f"RETURNING l.gateway, l.epoch",
                    (self._fleet, want, me, ttl_ms),
                )
                taken = {str(g): int(e) for g, e in await cur.fetchall()}
        if generation == self._generation:  # else timed out and given up: changes nothing
            self._fleet_changed = False
            self.live_workers, self.share, self.ticks = live, share, self.ticks + 1
            self._fence_at = sent + self.settings.fence_after_s
        return renewed, taken, share

    async def _apply(self, renewed: dict[str, int], taken: dict[str, int], share: int) -> None:
        """Poll what was renewed and taken; release what is over the share or left the
        fleet (polling stopped first)."""
        lost = sorted(self.held.keys() - renewed.keys())
        if lost:
            log.warning(
                "leases: worker %s lost %d lease(s) it could not renew in time: %s",
                self.worker_id,
                len(lost),
                _few(lost),
            )
        if taken:
            log.info(
                "leases: worker %s took %d gateway(s): %s",
                self.worker_id,
                len(taken),
                _few(sorted(taken)),
            )
        self.held = {**renewed, **taken}  # the fence admits the new ones from now on
        fleet = set(self._fleet)
        gone = sorted(self.held.keys() - fleet)
        keep = sorted(self.held.keys() & fleet)
        excess = gone + keep[share:] if len(keep) > share else gone
        await self._assign(frozenset(self.held.keys() - set(excess)))
        if excess:
            await self._release(excess)

    async def _release(self, names: Sequence[str]) -> None:
        """Give up leases whose gateways this worker no longer polls (already stopped)."""
        released = {n: self.held[n] for n in names if n in self.held}
        # replaced, never edited in place: the store's thread reads it (write_fence)
        self.held = {n: e for n, e in self.held.items() if n not in released}
        if not released:
            return
        conn = await self._connection()
        await _bounded(
            conn.execute(
                "UPDATE leases l SET worker = NULL, expires_ms = 0 "
                "FROM unnest(%s::text[], %s::bigint[]) AS r(gateway, epoch) "
                "WHERE l.gateway = r.gateway AND l.epoch = r.epoch AND l.worker = %s",
                (list(released), list(released.values()), self.worker_id),
            ),
            self.settings.heartbeat_s,
        )
        log.info(
            "leases: worker %s released %d gateway(s) to the others (share %d of %d "
            "gateway(s), %d live worker(s)): %s",
            self.worker_id,
            len(released),
            self.share,
            len(self._fleet),
            self.live_workers,
            _few(sorted(released)),
        )

    async def release_all(self) -> None:
        """Stop polling everything, then give every lease back and leave the worker list
        (a clean stop: the others take the gateways over at their next heartbeat)."""
        self._fence_at = None
        try:
            await self._assign(frozenset())
        except Exception as exc:  # then the leases are left to expire: nothing is released
            log.error("leases: stopping the pollers failed: %s: %s", type(exc).__name__, exc)
            self.held = {}
        names = sorted(self.held)
        try:
            await self._release(names)
            conn = await _bounded(self._connection(), self.settings.connect_timeout_s)
            await _bounded(
                conn.execute("DELETE FROM workers WHERE worker = %s", (self.worker_id,)),
                self.settings.heartbeat_s,
            )
        except Exception as exc:  # the leases expire by themselves
            log.warning(
                "leases: could not release (worker %s): %s; they expire within %.0f s",
                self.worker_id,
                str(exc)[:200],
                self.settings.ttl_s,
            )
        finally:
            self.held = {}
            await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def set_fleet(self, gateways: Iterable[str]) -> None:
        """The fleet changed (a reload): gateways that left are stopped and released at the
        next heartbeat, new ones shared out."""
        self._fleet = sorted(set(gateways))
        self._fleet_changed = True

    # --- the store's write fence -------------------------------------------------------
    def write_fence(
        self, execute: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]], names: list[str]
    ) -> list[str]:
        """Which of `names` this worker may write now: leased to it, at the epoch it took,
        not expired; the rows stay share-locked until the store's transaction ends, so no
        other worker takes them over meanwhile. Runs on the store's writer thread."""
        held = dict(self.held)  # a snapshot: the event loop replaces the dict, never edits it
        mine = [n for n in names if n in held]
        if not mine:
            return []
        rows = execute(
            "SELECT l.gateway FROM leases l "
            "JOIN unnest(?::text[], ?::bigint[]) AS h(gateway, epoch) "
            "ON l.gateway = h.gateway AND l.epoch = h.epoch "
            f"WHERE l.worker = ? AND l.expires_ms > {_NOW_MS} FOR SHARE OF l",
            (mine, [held[n] for n in mine], self.worker_id),
        )
        return [str(r[0]) for r in rows]


async def _bounded(work: Awaitable[T], timeout_s: float) -> T:
    """`work`, or TimeoutError after `timeout_s`, without waiting for psycopg to confirm
    the cancellation with the server (which may not answer at all)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    return task.result()


def _few(names: Sequence[str], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


class WorkerFleet:
    """The whole fleet as one worker sees it: `monitor` (started, its store on the shared
    database) polls the gateways leased to this worker, with their settings from the fleet.

    `set_gateways` takes a reloaded fleet file (SIGHUP, as `Monitor.set_gateways` does for a
    monitor of its own): the gateways polled now get their new settings at once, those
    that left the file stop, and the leases share the new list out at the next heartbeat.
    """

    def __init__(
        self,
        monitor: Monitor,
        fleet: Sequence[FleetGateway],
        url: str,
        *,
        worker_id: str | None = None,
        settings: LeaseSettings | None = None,
    ) -> None:
        self.monitor = monitor
        self._by_name = {g.name: g for g in fleet}
        self._order = [g.name for g in fleet]
        self._polled: frozenset[str] = frozenset()  # what the leases last assigned
        self._lock = asyncio.Lock()  # a lease change and a reload never interleave
        self.leases = FleetLeases(
            url, self._order, self._on_assigned, worker_id=worker_id, settings=settings
        )
        if monitor.store is not None:
            monitor.store.set_write_fence(self.leases.write_fence)

    async def _on_assigned(self, names: frozenset[str]) -> None:
        async with self._lock:
            self._polled = names
            await self._apply()

    async def _apply(self) -> FleetChange:
        monitor = self.monitor
        wanted = [self._by_name[n] for n in self._order if n in self._polled]
        if monitor.store is not None:  # another worker may have written them since
            await monitor.store.forget(
                sorted(g.name for g in wanted if g.name not in monitor.pollers)
            )
        return await monitor.set_gateways(wanted)

    async def set_gateways(self, gateways: Sequence[FleetGateway]) -> FleetChange:
        async with self._lock:
            self._by_name = {g.name: g for g in gateways}
            self._order = [g.name for g in gateways]
            self._polled = self._polled & self._by_name.keys()  # the rest are released
            self.leases.set_fleet(self._order)
            return await self._apply()

    def set_alerts(self, alerts: AlertConfig | None) -> None:
        self.monitor.set_alerts(alerts)


def run_worker(
    monitor: Monitor,
    fleet: Sequence[FleetGateway],
    url: str,
    *,
    worker_id: str | None = None,
    settings: LeaseSettings | None = None,
) -> FleetLeases:
    """Start sharing `fleet` with the other workers on the PostgreSQL database `url` (see
    WorkerFleet). Returns the leases: run `leases.run()` as a task; to stop, cancel it and
    await `leases.release_all()`."""
    return WorkerFleet(monitor, fleet, url, worker_id=worker_id, settings=settings).leases


async def serve_worker(
    monitor: Monitor,
    fleet: Sequence[FleetGateway],
    url: str,
    *,
    worker_id: str | None = None,
    settings: LeaseSettings | None = None,
    ready: Callable[[WorkerFleet], None] | None = None,
) -> None:
    """Poll this worker's share of `fleet` with `monitor` (started, without gateways of its
    own) until `monitor.stop()` or a failure; then stop polling, give the leases back and
    close the monitor. `ready(worker)` is called once it runs (worker.set_gateways takes a
    reloaded fleet)."""
    worker = WorkerFleet(monitor, fleet, url, worker_id=worker_id, settings=settings)
    leases = worker.leases
    monitor.start_polling()
    heartbeat = asyncio.create_task(leases.run(), name="leases")
    waiter = asyncio.create_task(monitor.wait(), name="monitor-wait")
    if ready is not None:
        ready(worker)
    try:
        await asyncio.wait({heartbeat, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for task in (heartbeat, waiter):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in (heartbeat, waiter):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await leases.release_all()
        await monitor.close()
