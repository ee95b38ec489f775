"""The poller's in-memory latest state per gateway, read by the HTTP API and the metrics.

The poller is the only writer; web handlers and the Prometheus collector only read, so a
dashboard refresh or a scrape never causes a gateway request. Every change bumps
``LiveState.version`` (the metrics page caches its text by it) and wakes the subscribers of
the server-sent event stream.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from tegkit import percent
from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES
from tegkit.monitor.readings import Reading

Status = Literal["ok", "stale", "stopped", "unreachable", "unauthorized"]
#: why the last fast poll failed, if it did: the sitemaster is stopped (502), no answer,
#: the login refused, or anything else (an error status, an implausible value, a crash).
Problem = Literal["stopped", "unreachable", "auth", "error"]

#: request duration histogram buckets (seconds), as Prometheus' defaults minus the tail.
DURATION_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class DurationHistogram:
    """Request durations of one endpoint: counts per bucket (not cumulative), sum, count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_S) + 1))
    sum_s: float = 0.0
    count: int = 0

    def observe(self, duration_s: float) -> None:
        index = len(DURATION_BUCKETS_S)
        for i, bound in enumerate(DURATION_BUCKETS_S):
            if duration_s <= bound:
                index = i
                break
        self.counts[index] += 1
        self.sum_s += duration_s
        self.count += 1

    def add(self, other: DurationHistogram) -> None:
        """Count `other`'s observations in this one too (a fleet's sum)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum_s += other.sum_s
        self.count += other.count

    def cumulative(self) -> list[tuple[str, float]]:
        """Buckets as Prometheus wants them: (le, cumulative count), ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*DURATION_BUCKETS_S, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


#: poll lateness histogram buckets (seconds): how late a poll group started after its time
LATENESS_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PollLateness:
    """How late each poll group (fast, slow) started after its scheduled time, over every
    gateway of the process: counts per bucket of LATENESS_BUCKETS_S (not cumulative)."""

    __slots__ = ("count", "counts", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENESS_BUCKETS_S) + 1)
        self.sum_s = 0.0
        self.count = 0

    def observe(self, late_s: float) -> None:
        self.counts[bisect.bisect_left(LATENESS_BUCKETS_S, late_s)] += 1
        self.sum_s += late_s
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """Buckets as Prometheus wants them: (le, cumulative count), ending with +Inf."""
        bounds = [repr(b) for b in LATENESS_BUCKETS_S] + ["+Inf"]
        return list(zip(bounds, map(float, itertools.accumulate(self.counts)), strict=True))


@dataclass(slots=True)
class PollerCounters:
    """What the poller asked of one gateway: requests, errors by kind, durations."""

    requests_total: dict[str, int] = field(default_factory=dict)  # endpoint -> n
    errors_total: dict[tuple[str, str], int] = field(default_factory=dict)  # (endpoint, kind)
    durations: dict[str, DurationHistogram] = field(default_factory=dict)
    budget_deferrals_total: int = 0  # polls put off because the minute's budget was spent
    restarts_total: int = 0  # times the supervisor restarted the poller after a failure

    def total_requests(self) -> int:
        return sum(self.requests_total.values())

    def add(self, other: PollerCounters) -> None:
        """Add `other`'s counts to these (what a fleet's pollers asked, summed)."""
        for endpoint, n in other.requests_total.items():
            self.requests_total[endpoint] = self.requests_total.get(endpoint, 0) + n
        for pair, n in other.errors_total.items():
            self.errors_total[pair] = self.errors_total.get(pair, 0) + n
        for endpoint, hist in other.durations.items():
            self.durations.setdefault(endpoint, DurationHistogram()).add(hist)
        self.budget_deferrals_total += other.budget_deferrals_total
        self.restarts_total += other.restarts_total


@dataclass(frozen=True, slots=True)
class PowerwallLive:
    """One Powerwall as the gateway's /api/system_status reported it (a battery block) at
    `taken_at`; None wherever the gateway did not report a value (or an implausible one).

    Only shown live (/api/live, MQTT), never stored: the slow poll reads it once a minute.
    """

    serial: str | None
    taken_at: float
    part_number: str | None = None
    firmware: str | None = None  # the block's own version (a git hash)
    energy_remaining_wh: float | None = None  # nominal energy remaining
    full_pack_wh: float | None = None  # nominal full pack energy
    power_w: float | None = None  # > 0 discharges, like the battery meter
    reactive_power_var: float | None = None
    voltage_v: float | None = None
    frequency_hz: float | None = None
    inverter_state: str | None = None  # pinv_state, e.g. "PINV_GridFollowing"
    backup_ready: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "taken_at": self.taken_at,
            "part_number": self.part_number,
            "firmware": self.firmware,
            "energy_remaining_wh": self.energy_remaining_wh,
            "full_pack_wh": self.full_pack_wh,
            "power_w": self.power_w,
            "reactive_power_var": self.reactive_power_var,
            "voltage_v": self.voltage_v,
            "frequency_hz": self.frequency_hz,
            "inverter_state": self.inverter_state,
            "backup_ready": self.backup_ready,
        }


@dataclass(slots=True)
class GatewayLive:
    """The latest known state of one gateway; None wherever nothing is known yet."""

    name: str
    url: str
    reading: Reading | None = None
    problem: Problem | None = None  # set while the last fast poll failed
    problem_reason: str | None = None
    problem_since: float | None = None
    mode: str | None = None
    backup_reserve_raw_percent: float | None = None
    version: str | None = None
    din: str | None = None  # the gateway's part and serial number ("1232100-00-E--TG12...")
    site_name: str | None = None
    site_tz: str | None = None  # the site's IANA time zone, as the gateway reports it
    tz_override: dt.tzinfo | None = None  # the zone the owner chose instead (--tz)
    sitemaster_running: bool | None = None
    connected_to_tesla: bool | None = None  # as /api/sitemaster says
    #: each Powerwall of the last /api/system_status answer; None while the gateway has not
    #: reported them (no answer yet, a firmware without the endpoint or its battery_blocks)
    powerwalls: list[PowerwallLive] | None = None
    counters: PollerCounters = field(default_factory=PollerCounters)

    def freshness_s(self, now: float) -> float | None:
        """Seconds since the latest reading was taken; None without a reading."""
        return None if self.reading is None else max(0.0, now - self.reading.taken_at)

    def status(self, now: float, stale_after_s: float) -> tuple[Status, str | None]:
        """ok / stale / stopped / unreachable / unauthorized, and the reason when not ok."""
        if self.problem == "auth":  # nothing will come until the credentials change
            return "unauthorized", self.problem_reason or "authentication failed"
        if self.problem == "stopped":
            return "stopped", self.problem_reason or "the system is stopped"
        if self.problem == "unreachable":
            return "unreachable", self.problem_reason or "the gateway does not answer"
        age_s = self.freshness_s(now)
        if age_s is None:
            return "stale", self.problem_reason or "no reading yet"
        if age_s > stale_after_s:
            reason = self.problem_reason or "no new reading"
            return "stale", f"{reason} (last reading {age_s:.0f} s ago)"
        return "ok", None

    def to_json(self, now: float, stale_after_s: float) -> dict[str, Any]:
        """The /api/live entry of this gateway: reading, freshness, status, mode, reserve, soe."""
        status, reason = self.status(now, stale_after_s)
        reading = self.reading
        soe_raw = reading.soe_raw_percent if reading is not None else None
        reserve_raw = self.backup_reserve_raw_percent
        return {
            "gateway": self.name,
            "status": status,
            "reason": reason,
            "problem_since": self.problem_since,
            "freshness_s": _round(self.freshness_s(now), 1),
            "taken_at": reading.taken_at if reading is not None else None,
            "reading": _reading_json(reading) if reading is not None else None,
            "soe": _both_scales(soe_raw),
            "backup_reserve": _both_scales(reserve_raw),
            "mode": self.mode,
            "version": self.version,
            "din": self.din,
            "site_name": self.site_name,
            "sitemaster_running": self.sitemaster_running,
            "connected_to_tesla": self.connected_to_tesla,
            "powerwalls": (
                None if self.powerwalls is None else [p.to_json() for p in self.powerwalls]
            ),
            "requests_total": self.counters.total_requests(),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _both_scales(raw_percent: float | None) -> dict[str, float | None]:
    if raw_percent is None:
        return {"raw_percent": None, "app_percent": None}
    return {
        "raw_percent": round(raw_percent, 2),
        "app_percent": round(percent.raw_to_app(raw_percent), 2),
    }


def _reading_json(reading: Reading) -> dict[str, Any]:
    return {
        "taken_at": reading.taken_at,
        **{name: getattr(reading, name) for name in POWER_NAMES},
        "soe_raw_percent": reading.soe_raw_percent,
        "grid_status": reading.grid_status,
        **{name: getattr(reading, name) for name in COUNTER_NAMES},
    }


class LiveState:
    """Latest state of every watched gateway, with change notification.

    `clock` gives epoch seconds; tests on a simulated clock pass the simulator's.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        stale_after_s: float = 30.0,
        queue_size: int = 32,
    ) -> None:
        self.clock = clock
        self.stale_after_s = stale_after_s
        self.version = 0
        #: every poller's lateness (tegkit_poll_lateness_seconds)
        self.poll_lateness = PollLateness()
        self._gateways: dict[str, GatewayLive] = {}
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._queue_size = queue_size

    def add(self, name: str, url: str) -> GatewayLive:
        if name in self._gateways:
            raise ValueError(f"gateway {name!r} is already watched")
        gateway = GatewayLive(name=name, url=url)
        self._gateways[name] = gateway
        self.version += 1
        return gateway

    def remove(self, name: str) -> None:
        """Stop showing gateway `name` (the monitor no longer watches it)."""
        if self._gateways.pop(name, None) is not None:
            self.version += 1

    def get(self, name: str) -> GatewayLive | None:
        return self._gateways.get(name)

    def gateways(self) -> list[GatewayLive]:
        return list(self._gateways.values())

    def names(self) -> list[str]:
        return list(self._gateways)

    def to_json(self) -> dict[str, Any]:
        """The /api/live document: the time now and one entry per gateway."""
        now = self.clock()
        return {
            "now": now,
            "stale_after_s": self.stale_after_s,
            "gateways": [g.to_json(now, self.stale_after_s) for g in self._gateways.values()],
        }

    def changed(self, gateway: GatewayLive, push: bool = False) -> None:
        """Record that `gateway` changed; with push, send its entry to stream subscribers."""
        self.version += 1
        if push and self._queues:
            entry = gateway.to_json(self.clock(), self.stale_after_s)
            for queue in self._queues:
                if queue.full():  # a slow client loses the oldest update, not the newest
                    queue.get_nowait()
                queue.put_nowait(entry)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue that receives each pushed gateway entry until the block ends."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
