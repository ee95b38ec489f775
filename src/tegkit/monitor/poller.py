"""Polls one gateway politely and turns its answers into readings, gaps and events.

Two groups of endpoints: the fast group (meters, state of energy, grid status) makes a
reading every few seconds; the slow group (operation, site info, status, sitemaster, and
system status for each Powerwall's energy and power) refreshes settings, identity and the
per-Powerwall values about once a minute. Nothing else is asked: each request
costs the gateway, so an endpoint is polled only if something reads what it answers. Each
group runs on its own jittered schedule; an endpoint that fails backs off on its own (its
429 Retry-After wins) and never has more than one request in flight. Every request first
takes room in the gateway's `RequestBudget`, so the gateway never sees more than the
budget in any minute. No back-off outlasts `max_probe_interval_s` (five minutes by
default): whatever a Retry-After asked for, the endpoint is asked again within that time,
so a gateway that has recovered is seen to recover.

A reading is checked against physical ranges (`tegkit.monitor.plausible`) before it is
shown or stored. A stopped system (502), an unreachable gateway, a refused login or a value
out of range opens a `Gap` with its reason, never a zero reading; the gap closes at the next
reading. Any other span without readings longer than `stale_after_s` (the monitor was not
running, the process was paused or its event loop blocked, the host clock stepped forward)
becomes a gap with its reason when the next reading arrives.

Durability: each poll's reading is committed to the store before the next poll starts
(`batch_size` 1, the default), so a kill -9 loses at most the reading of the poll in
progress: one fast interval of data. A larger `batch_size` trades that window for fewer
commits. Readings are stamped by a `ReadingClock` (never backwards within a run) unless the
caller passes its own clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

from tegkit import models
from tegkit.client import Gateway, Insecure, PinnedCertificate, TlsPolicy, VerifyCertificate
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    CertificateMismatchError,
    ConnectionFailedError,
    EndpointNotSupportedError,
    GatewayError,
    GatewayTimeoutError,
    InvalidInputError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
    RequestBudgetExceededError,
    SystemStoppedError,
)
from tegkit.logs import set_gateway as set_log_gateway
from tegkit.models import CUSTOMER_MODES
from tegkit.monitor import plausible
from tegkit.monitor.clock import ReadingClock
from tegkit.monitor.live import DurationHistogram, GatewayLive, LiveState, PowerwallLive, Problem
from tegkit.monitor.readings import Event, Gap, Reading
from tegkit.monitor.store import AsyncStore
from tegkit.route import (
    DEFAULT_READBACK_POLL_S,
    DEFAULT_READBACK_WAIT_S,
    ChangeOutcome,
    CloudTarget,
    LocalSide,
    OperationChange,
    Via,
    change_operation,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FAST: Final[tuple[str, ...]] = ("meters_aggregates", "soe", "grid_status")
SLOW: Final[tuple[str, ...]] = ("operation", "site_info", "status", "sitemaster", "system_status")
ENDPOINTS: Final[tuple[str, ...]] = FAST + SLOW
#: the path of each polled endpoint (to clear the client's memory of a 429 or 404).
PATHS: Final[dict[str, str]] = {
    "meters_aggregates": "/api/meters/aggregates",
    "soe": "/api/system_status/soe",
    "grid_status": "/api/system_status/grid_status",
    "operation": "/api/operation",
    "site_info": "/api/site_info",
    "status": "/api/status",
    "sitemaster": "/api/sitemaster",
    "system_status": "/api/system_status",
}

#: gateway requests one poll can cause at most: the request, a login, the request again.
REQUESTS_PER_CALL_MAX = 3
#: client calls of a change of operation: read (for a value left out), write, commit, read back
SET_OPERATION_CALLS = 4
#: an endpoint the firmware lacks (404) is asked again only after this long.
UNSUPPORTED_RETRY_S = 6 * 3600.0
RESERVE_TOLERANCE_PERCENT = 0.01
#: how often (s) the event loop watch ticks while polling; a late tick is a stalled process.
WATCH_TICK_S = 0.5
#: readings kept in memory while the store refuses them; older ones are dropped (and said so).
MAX_UNSAVED_READINGS = 720
_UNREACHABLE: Final = frozenset({"unreachable", "timeout", "certificate"})
#: kept-alive connections of a poller's client to its gateway
POLLER_CONNECTIONS: Final = 2


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """One gateway to watch: where it is, how to trust it, how to log in."""

    name: str
    url: str
    password: str | None = None
    email: str = ""
    pin: str | None = None  # SHA-256 of the certificate
    cafile: str | None = None
    sni: str | None = None
    insecure: bool = False
    timeout_s: float = 10.0
    session_file: Path | None = None  # a profile's kept session (`teg login`, `teg setup`)
    tz: dt.tzinfo | None = None  # the site's time zone, when it overrides the gateway's own
    # Tesla's cloud for changes the gateway refuses locally (a customer on 20.49 and later);
    # the poller that gets it closes its client
    cloud: CloudTarget | None = None
    via: Via = "auto"

    def __repr__(self) -> str:  # the password (and the cloud's tokens) never reach a log
        return f"GatewayTarget(name={self.name!r}, url={self.url!r})"

    def tls(self) -> TlsPolicy:
        if self.pin:
            return PinnedCertificate(self.pin)
        if self.insecure:
            return Insecure()
        return VerifyCertificate(self.cafile)

    def client(self) -> Gateway:
        """A client for the poller: no retries of its own (the poller backs off itself;
        client retries would break the request budget)."""
        return Gateway(
            self.url,
            password=self.password,
            email=self.email,
            tls=self.tls(),
            sni=self.sni,
            timeout_s=self.timeout_s,
            session_file=self.session_file,
            retries=0,
            # two kept-alive TLS connections: the fast group's three requests need not wait
            # for each other's round trips, and a fleet of a thousand gateways stays within
            # its memory (each connection holds buffers of tens of kilobytes)
            connections=POLLER_CONNECTIONS,
        )


@dataclass(frozen=True, slots=True)
class PollerConfig:
    """Intervals in seconds of the poller's clock; the budget is gateway requests a minute."""

    fast_interval_s: float = 5.0
    slow_interval_s: float = 60.0
    jitter_ratio: float = 0.1  # each group's interval varies by this fraction either way
    budget_per_minute: int = 90
    max_backoff_s: float = 120.0
    #: no back-off and no Retry-After keeps an endpoint unasked for longer than this
    max_probe_interval_s: float = 300.0
    batch_size: int = 1  # readings per store commit; 1 keeps a kill -9's loss to one poll
    flush_interval_s: float = 15.0  # ... or after this long, whichever comes first

    def __post_init__(self) -> None:
        for name in ("fast_interval_s", "slow_interval_s", "max_probe_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0 <= self.jitter_ratio < 1:
            raise ValueError("jitter_ratio must be in [0, 1)")
        if self.budget_per_minute < REQUESTS_PER_CALL_MAX:
            raise ValueError(f"budget_per_minute must be at least {REQUESTS_PER_CALL_MAX}")

    def needed_per_minute(self) -> float:
        """Requests a minute the schedule asks for (without jitter, errors or logins)."""
        return 60.0 * (len(FAST) / self.fast_interval_s + len(SLOW) / self.slow_interval_s)


class RequestBudget:
    """At most `per_minute` gateway requests in any window of `window_s` seconds.

    A sliding log rather than a token bucket: a bucket of size B refilled at B a minute lets
    up to 2B through in one minute after an idle spell, and the point is a hard ceiling.
    A caller reserves the most requests a call can cause, then settles what it really sent.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        window_s: float = 60.0,
    ) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._reserved = 0

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()

    def in_window(self) -> int:
        """Requests sent in the current window plus those reserved."""
        self._prune(self._clock())
        return len(self._sent) + self._reserved

    def try_reserve(self, n: int) -> bool:
        """Reserve room for n requests now; False (nothing reserved) if the window is full."""
        if self.in_window() + n > self.per_minute:
            return False
        self._reserved += n
        return True

    def settle(self, reserved: int, sent: int) -> None:
        """Release a reservation and record the `sent` requests it really caused (now)."""
        self._reserved -= reserved
        now = self._clock()
        self._sent.extend([now] * sent)

    def wait_s(self, n: int) -> float:
        """Seconds until n requests fit (0 if they fit now; reservations assumed to settle)."""
        now = self._clock()
        self._prune(now)
        excess = len(self._sent) + self._reserved + n - self.per_minute
        if excess <= 0:
            return 0.0
        if excess > len(self._sent):
            return self.window_s  # waiting on reservations: look again later
        return max(0.0, self._sent[excess - 1] + self.window_s - now)


def error_kind(exc: BaseException) -> str:
    """The `kind` label of a failed request."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (SystemStoppedError, "stopped"),
        (ConnectionFailedError, "unreachable"),
        (GatewayTimeoutError, "timeout"),
        (CertificateMismatchError, "certificate"),
        (RateLimitedError, "rate_limited"),
        (AuthenticationError, "auth"),
        (PermissionDeniedError, "forbidden"),
        (EndpointNotSupportedError, "not_supported"),
        (ParseError, "parse"),
        (plausible.Implausible, "implausible"),
    )
    for cls, kind in kinds:
        if isinstance(exc, cls):
            return kind
    if isinstance(exc, ApiError):
        return f"http_{exc.status}"
    return "error"


@dataclass(slots=True)
class _Outcome:
    endpoint: str
    value: Any = None
    error: BaseException | None = None


class Poller:
    """Polls one gateway into `live` and `store`; `run()` forever or `poll_due()` by step.

    Made by `Poller.for_target` (which also makes its client and its live entry).
    `clock` stamps readings, gaps and events (epoch s; a `ReadingClock` by default);
    `monotonic` drives the schedule and the budget. Tests on a simulated gateway pass the
    simulator's clock for both. Every request to the gateway goes through the poller, inside
    its budget: the polls, `set_operation` and `check_credentials`.
    """

    def __init__(
        self,
        gateway: GatewayLive,
        client: Gateway,
        live: LiveState,
        store: AsyncStore | None,
        config: PollerConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        owns_client: bool = True,
        cloud: CloudTarget | None = None,
        via: Via = "auto",
    ) -> None:
        self.gateway = gateway
        self._client = client
        self._owns_client = owns_client
        #: where a change goes when the gateway refuses it locally (see `tegkit.route`)
        self.cloud = cloud
        self.via: Via = via
        self.readback_wait_s = DEFAULT_READBACK_WAIT_S
        self.readback_poll_s = DEFAULT_READBACK_POLL_S
        self.live = live
        self.store = store
        self.config = config or PollerConfig()
        self.clock: Callable[[], float] = clock if clock is not None else ReadingClock()
        self.monotonic = monotonic
        self.budget = RequestBudget(self.config.budget_per_minute, monotonic)
        self._rng = rng or random.Random()
        now = monotonic()
        self._group_next = {"fast": now, "slow": now}
        self._blocked_until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._last_error: dict[str, BaseException] = {}  # of endpoints that failed last time
        self._in_flight: set[str] = set()
        self._batch: list[Reading] = []
        self._last_flush = now
        self._open_gap: Gap | None = None
        self._started = False
        # Silence: the time up to which every span without readings is accounted for (the
        # last reading, or where the last gap began), and why the span since may be silent.
        self._covered_until: float | None = None
        self._silence_cause: str | None = None
        self._expected_at: float | None = None  # when the next poll_due should come
        self._watch: _LoopWatch | None = None  # while run() runs
        self._steps_seen = self.clock.step_count if isinstance(self.clock, ReadingClock) else 0
        self._forget_before_asking: set[str] = set()  # 429 / 404 remembered by the client
        self._auth_error: AuthenticationError | None = None
        self._logged_cause: tuple[str, str] | None = None
        self._store_error: str | None = None
        self._calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "meters_aggregates": client.meters_aggregates,
            "soe": client.state_of_energy,
            "grid_status": client.grid_status,
            "operation": client.operation,
            "site_info": client.site_info,
            "status": client.status,
            "sitemaster": client.sitemaster,
            "system_status": client.system_status,
        }

    @classmethod
    def for_target(
        cls,
        target: GatewayTarget,
        live: LiveState,
        store: AsyncStore | None = None,
        config: PollerConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> Poller:
        """The poller of `target`: its client, and its entry in `live` under target.name.

        The poller owns the client: `aclose()` closes it.
        """
        gateway = live.add(target.name, target.url)
        gateway.tz_override = target.tz
        return cls(
            gateway,
            target.client(),
            live,
            store,
            config,
            clock=clock,
            monotonic=monotonic,
            rng=rng,
            cloud=target.cloud,
            via=target.via,
        )

    def on_schedule(
        self,
        config: PollerConfig,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> Poller:
        """Another poller of the same gateway (its live entry, client and store) on its own
        schedule, budget and clocks: `teg demo` records simulated hours with one before
        the live polling starts. Run one of the two at a time; this one's `aclose()`
        leaves the shared client open."""
        return Poller(
            self.gateway,
            self._client,
            self.live,
            self.store,
            config,
            clock=clock,
            monotonic=monotonic,
            owns_client=False,
            cloud=self.cloud,
            via=self.via,
        )

    async def aclose(self) -> None:
        """Close the clients this poller owns (after `flush()`, once polling has stopped)."""
        if self._owns_client:
            await self._client.close()
            if self.cloud is not None:
                await self.cloud.client.close()

    @property
    def name(self) -> str:
        return self.gateway.name

    @property
    def requests_sent(self) -> int:
        """Gateway requests the client has sent so far (logins included)."""
        return self._client.requests_sent

    @property
    def pending(self) -> int:
        """Readings buffered for the next store commit."""
        return len(self._batch)

    @property
    def auth_error(self) -> AuthenticationError | None:
        """The refusal that failed the last fast poll, if a refused login failed it.

        None once a reading arrives. The gateway's live state then has problem "auth" and
        status "unauthorized"; a gap "authentication failed: ..." is open.
        """
        return self._auth_error

    # --- scheduling -----------------------------------------------------------------------

    def _due(self, now: float) -> list[str]:
        due: list[str] = []
        for group, names in (("fast", FAST), ("slow", SLOW)):
            if self._group_next[group] > now:
                continue
            due += [
                e
                for e in names
                if e not in self._in_flight and self._blocked_until.get(e, 0.0) <= now
            ]
        return due

    def next_due_in_s(self) -> float:
        """Seconds until something may be polled (a group comes due or a back-off ends)."""
        now = self.monotonic()
        times = list(self._group_next.values())
        times += [t for t in self._blocked_until.values() if t > now]
        return max(0.0, min(times) - now)

    def spread_first_poll(self, fraction: float) -> None:
        """Begin `fraction` (0..1) of a fast interval later, if nothing was polled yet: a
        monitor starting many gateways at once spreads their first polls (their logins and
        TLS handshakes) over one interval instead of sending them all at the same moment."""
        if self._expected_at is None and 0 < fraction <= 1:
            delay_s = fraction * self.config.fast_interval_s
            self._group_next = {g: t + delay_s for g, t in self._group_next.items()}

    def _reschedule(self, group: str, now: float) -> None:
        interval = self.config.fast_interval_s if group == "fast" else self.config.slow_interval_s
        j = self.config.jitter_ratio
        self._group_next[group] = now + interval * self._rng.uniform(1 - j, 1 + j)

    def _interval(self, endpoint: str) -> float:
        fast = endpoint in FAST
        return self.config.fast_interval_s if fast else self.config.slow_interval_s

    def _back_off(self, endpoint: str, exc: BaseException, now: float) -> None:
        n = self._failures.get(endpoint, 0) + 1
        self._failures[endpoint] = n
        cap_s = self.config.max_probe_interval_s
        retry_s = exc.retry_after_s if isinstance(exc, RateLimitedError) else None
        if isinstance(exc, EndpointNotSupportedError):
            # a settings endpoint the firmware lacks is asked again rarely; a live one every
            # firmware has (a 404 during an update, say) as soon as the cap allows
            wait_s = UNSUPPORTED_RETRY_S if endpoint in SLOW else cap_s
        elif retry_s is not None and math.isfinite(retry_s) and retry_s >= 0:
            # obeyed up to the cap: a gateway asking for a day is asked again in minutes
            wait_s = min(cap_s, max(retry_s, self._interval(endpoint)))
        else:
            doubling = self._interval(endpoint) * 2.0 ** min(n - 1, 32)
            wait_s = min(cap_s, self.config.max_backoff_s, doubling)
        if isinstance(exc, RateLimitedError | EndpointNotSupportedError):
            # the client remembers these itself (up to an hour, or for good): the next
            # probe must really reach the gateway
            self._forget_before_asking.add(endpoint)
        self._blocked_until[endpoint] = now + wait_s

    def _notice_pause(self, now: float) -> None:
        """A poll that comes much later than scheduled: the process or its loop stalled."""
        if self._expected_at is not None and now - self._expected_at > self.live.stale_after_s:
            self._silence_cause = self._silence_cause or "monitor paused"

    def _notice_stall(self, now: float) -> None:
        """The event loop watch has not ticked for long: the process or its loop stalled
        (seen also while a poll waited for its answer, when `_notice_pause` cannot)."""
        if self._last_tick is not None and now - self._last_tick > self._stall_s():
            self._silence_cause = self._silence_cause or "monitor paused"

    def _stall_s(self) -> float:
        return WATCH_TICK_S + self.live.stale_after_s

    @property
    def _last_tick(self) -> float | None:
        """The event loop watch's last tick while this poller runs (else None)."""
        return None if self._watch is None else self._watch.last_tick

    # --- one step -------------------------------------------------------------------------

    async def poll_due(self) -> list[str]:
        """Poll every endpoint that is due now, concurrently; returns the endpoints asked.

        The reading this makes is committed before it returns (with `batch_size` 1).
        """
        self._notice_pause(self.monotonic())
        try:
            return await self._poll_due()
        finally:
            self._expected_at = self.monotonic() + self.next_due_in_s()

    async def _poll_due(self) -> list[str]:
        now = self.monotonic()
        due = self._due(now)
        for group in ("fast", "slow"):
            if self._group_next[group] <= now:
                self.live.poll_lateness.observe(now - self._group_next[group])
                self._reschedule(group, now)
        asked: list[str] = []
        for endpoint in due:
            if self.budget.try_reserve(REQUESTS_PER_CALL_MAX):
                asked.append(endpoint)
            else:
                self.gateway.counters.budget_deferrals_total += 1
                wait_s = self.budget.wait_s(REQUESTS_PER_CALL_MAX)
                self._blocked_until[endpoint] = now + max(0.5, wait_s)
        if not asked:
            if due:
                self.live.changed(self.gateway)
            return []
        for endpoint in asked:
            if endpoint in self._forget_before_asking:
                self._forget_before_asking.discard(endpoint)
                self._client.forget("GET", PATHS[endpoint])
        sent_before = self.requests_sent
        try:
            outcomes = await asyncio.gather(*(self._call(e) for e in asked))
        finally:
            # The cycle's calls share the client's counter: settle them together.
            sent = max(0, self.requests_sent - sent_before)
            self.budget.settle(REQUESTS_PER_CALL_MAX * len(asked), sent)
        results = {o.endpoint: o for o in outcomes}
        fast = {e: results[e] for e in FAST if e in results}
        if fast:
            await self._fast_done(fast)
        for endpoint in SLOW:
            if endpoint in results:
                await self._slow_done(results[endpoint])
        if self._batch and (
            len(self._batch) >= self.config.batch_size
            or self.monotonic() - self._last_flush >= self.config.flush_interval_s
        ):
            await self.flush()
        return asked

    async def _call(self, endpoint: str) -> _Outcome:
        counters = self.gateway.counters
        self._in_flight.add(endpoint)
        started = time.perf_counter()
        try:
            outcome = _Outcome(endpoint, value=await self._calls[endpoint]())
        except (TimeoutError, GatewayError) as exc:
            outcome = _Outcome(endpoint, error=exc)
        finally:
            self._in_flight.discard(endpoint)
        counters.requests_total[endpoint] = counters.requests_total.get(endpoint, 0) + 1
        hist = counters.durations.get(endpoint)
        if hist is None:
            hist = counters.durations[endpoint] = DurationHistogram()
        hist.observe(time.perf_counter() - started)
        if outcome.error is not None:
            key = (endpoint, error_kind(outcome.error))
            counters.errors_total[key] = counters.errors_total.get(key, 0) + 1
            self._back_off(endpoint, outcome.error, self.monotonic())
            self._last_error[endpoint] = outcome.error
        else:
            self._failures.pop(endpoint, None)
            self._blocked_until.pop(endpoint, None)
            self._last_error.pop(endpoint, None)
        return outcome

    async def _within_budget(self, calls: int, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` (at most `calls` client calls) inside the gateway's request budget.

        RequestBudgetExceededError, and nothing sent, when the budget has no room for it.
        """
        reserve = calls * REQUESTS_PER_CALL_MAX
        if not self.budget.try_reserve(reserve):
            raise RequestBudgetExceededError(self.budget.wait_s(reserve), what)
        sent_before = self.requests_sent
        try:
            return await work()
        finally:
            self.budget.settle(reserve, max(0, self.requests_sent - sent_before))

    async def set_operation(
        self,
        *,
        mode: str | None = None,
        backup_reserve_percent: float | None = None,
        scale: Literal["raw", "app"] | None = None,
    ) -> models.Operation:
        """`change_operation`, returning only what the gateway reports afterwards."""
        outcome = await self.change_operation(
            mode=mode, backup_reserve_percent=backup_reserve_percent, scale=scale
        )
        if outcome.operation is None:  # sent through the cloud, no local read got through
            raise RequestBudgetExceededError(self.budget.wait_s(REQUESTS_PER_CALL_MAX))
        return outcome.operation

    async def change_operation(
        self,
        *,
        mode: str | None = None,
        backup_reserve_percent: float | None = None,
        scale: Literal["raw", "app"] | None = None,
    ) -> ChangeOutcome:
        """Change the operation mode and/or backup reserve by the route `tegkit.route` picks,
        and read the gateway back locally.

        Locally: set, commit and read back in one reservation of the request budget
        (RequestBudgetExceededError, nothing sent, when there is none). Through the cloud
        (`self.cloud`, when the gateway refuses a customer's local change): the gateway is
        read every `readback_poll_s` until it shows the change or `readback_wait_s` passes,
        each read inside the budget. The read-back becomes the live state at once. Values
        are checked first (InvalidInputError, nothing sent). Only the modes the app offers
        are set: the client would send "scheduler" too.
        """
        if mode is not None and mode not in CUSTOMER_MODES:
            raise InvalidInputError("mode", "one of " + ", ".join(CUSTOMER_MODES), mode)
        if mode is None and backup_reserve_percent is None:
            raise InvalidInputError("mode", "a mode and/or a backup reserve to set", None)
        wanted = OperationChange.of(mode, backup_reserve_percent, scale)
        # Room for the whole change (and the firmware check it may need) before anything is
        # sent, so a spent budget sends nothing at all.
        calls = SET_OPERATION_CALLS + (1 if self.gateway.version is None else 0)
        wait_s = self.budget.wait_s(calls * REQUESTS_PER_CALL_MAX)
        if wait_s > 0:
            raise RequestBudgetExceededError(wait_s, "the operation change")
        just_read: list[models.Operation] = []  # the read that came with a local change

        async def firmware_version() -> str | None:
            if self.gateway.version is not None:
                return self.gateway.version  # the slow poll's /api/status
            try:
                status = await self._within_budget(1, "the firmware check", self._client.status)
            except (GatewayError, TimeoutError):
                return None
            return status.version

        async def set_locally(_: OperationChange) -> object:
            async def change() -> models.Operation:
                await self._client.set_operation(
                    mode=mode, backup_reserve_percent=backup_reserve_percent, scale=scale
                )
                return await self._client.operation()

            just_read.append(
                await self._within_budget(SET_OPERATION_CALLS, "the operation change", change)
            )
            return just_read[-1]

        async def read_back() -> models.Operation:
            if just_read:
                return just_read.pop()
            return await self._within_budget(1, "the read-back", self._client.operation)

        outcome = await change_operation(
            LocalSide(firmware_version, set_locally, read_back),
            wanted,
            via=self.via,
            cloud=self.cloud,
            wait_s=self.readback_wait_s,
            poll_s=self.readback_poll_s,
        )
        if outcome.operation is not None:
            self._apply_operation(outcome.operation)
        log.info("%s: operation change %s", self.name, outcome.note)
        return outcome

    async def read_operation(self) -> models.Operation:
        """Mode and reserve as the gateway reports them now (one read inside the budget),
        taken as the live state: the owner's plan acts on settings of now, not of the last
        slow poll."""
        operation = await self._within_budget(1, "the operation read", self._client.operation)
        self._apply_operation(operation)
        return operation

    async def update_state(self) -> str:
        """The firmware update state (GET /api/system/update/status), inside the budget."""
        status = await self._within_budget(1, "the update check", self._client.update_status)
        return status.state

    async def start_update(self) -> None:
        """Check for a firmware update and install it (POST /api/system/update), inside the
        budget."""

        async def start() -> None:
            await self._client.request("POST", "/api/system/update")

        await self._within_budget(1, "the update start", start)

    async def check_credentials(self) -> AuthenticationError | None:
        """One live read inside the budget: the refusal if the gateway refuses the login.

        None otherwise: an unreachable or busy gateway (or a spent budget) is not a refusal,
        and the polls retry it.
        """
        try:
            await self._within_budget(1, "the login check", self._client.meters_aggregates)
        except AuthenticationError as exc:
            return exc
        except (GatewayError, TimeoutError):
            return None
        return None

    # --- what the answers mean ------------------------------------------------------------

    async def _stamp(self) -> float:
        """The time now on the poller's clock; a step the clock saw becomes an event."""
        now = self.clock()
        clock = self.clock
        if isinstance(clock, ReadingClock) and clock.step_count != self._steps_seen:
            for step in clock.new_steps(self._steps_seen):
                if step.jump_s > 0:
                    self._silence_cause = self._silence_cause or "host clock stepped forward"
                log.warning("%s: %s", self.name, step.describe())
                await self._event(step.at, "clock_step", step.describe(), quiet=True)
            self._steps_seen = clock.step_count
        return now

    async def _fast_done(self, results: dict[str, _Outcome]) -> None:
        ok = {e: o.value for e, o in results.items() if o.error is None}
        g = self.gateway
        now = await self._stamp()
        errors = [o.error for o in results.values() if o.error is not None]
        # a refused login is a failure even when an open endpoint (grid status) answered,
        # also while the refused endpoints wait out their back-off
        refused: list[BaseException] = [
            e for name in FAST if isinstance(e := self._last_error.get(name), AuthenticationError)
        ]
        if not ok or refused:
            await self._failed(refused or errors, now)
            return
        reading = _reading(g.name, now, ok)
        try:
            plausible.check_reading(reading)
        except plausible.Implausible as exc:
            key = (_FIELD_SOURCE.get(exc.field, "meters_aggregates"), "implausible")
            g.counters.errors_total[key] = g.counters.errors_total.get(key, 0) + 1
            await self._failed([exc], now)
            return
        self._auth_error = None
        if g.problem == "stopped" and g.sitemaster_running is not True:
            await self._event(now, "sitemaster_run", "live data is back")
            g.sitemaster_running = True
        if g.problem is not None or self._logged_cause is not None:
            log.info("%s: readings again", g.name)
        # the gap is closed in the store before the reading shows: what is seen is recorded
        if self._open_gap is not None:
            await self._write_gap(Gap(g.name, self._open_gap.start, now, self._open_gap.reason))
            self._open_gap = None
            self._silence_cause = None
        else:
            await self._cover_silence(now)
        self._covered_until = now
        g.reading = reading
        g.problem = g.problem_reason = g.problem_since = None
        self._logged_cause = None
        self._batch.append(reading)
        self.live.changed(g, push=True)

    @property
    def silence_s(self) -> float:
        """A span without readings longer than this is a gap: stale_after_s, or two fast
        intervals where the poller is slower than that (its own cadence is no silence)."""
        cadence_s = self.config.fast_interval_s * (1 + self.config.jitter_ratio)
        return max(self.live.stale_after_s, 2 * cadence_s)

    async def _cover_silence(self, until: float) -> None:
        """The span since the last reading, if longer than `silence_s`, is a gap."""
        start = self._covered_until
        self._notice_stall(self.monotonic())  # the watch may not have run since
        if start is not None and until - start > self.silence_s:
            reason = self._silence_cause or "no readings"
            log.warning("%s: no readings for %.0f s: %s", self.name, until - start, reason)
            await self._write_gap(Gap(self.name, start, until, reason))
        self._silence_cause = None

    async def _failed(self, errors: list[BaseException], now: float) -> None:
        g = self.gateway
        problem, reason, gap_reason = self._diagnose(errors)
        if (problem, gap_reason) != self._logged_cause:
            log.warning("%s: %s", g.name, reason)  # once per cause, not once per poll
            self._logged_cause = (problem, gap_reason)
        if problem == "stopped" and g.sitemaster_running is not False:
            g.sitemaster_running = False
            await self._event(now, "sitemaster_stop", "live data answers 502")
        if g.problem != problem:
            g.problem_since = now
        g.problem, g.problem_reason = problem, reason
        await self._open(gap_reason, now)
        self.live.changed(g, push=True)

    def _diagnose(self, errors: list[BaseException]) -> tuple[Problem, str, str]:
        """(problem, reason shown live, gap reason) of a failed fast poll.

        The gap reason stays the same while the cause does (a new gap per changing detail
        would split one outage into hundreds), the live reason carries the detail.
        """
        kinds = {error_kind(e) for e in errors}
        first = errors[0]
        if isinstance(first, AuthenticationError):
            self._auth_error = first
            g = self.gateway
            if g.problem == "auth" and g.problem_reason:  # keep the first words of a spell
                return "auth", g.problem_reason, g.problem_reason
            reason = f"authentication failed: {_auth_detail(first)}"
            return "auth", reason, reason
        if "stopped" in kinds:
            return "stopped", "the system is stopped (live data answers 502)", "system stopped"
        if kinds & _UNREACHABLE:
            found = next(e for e in errors if error_kind(e) in _UNREACHABLE)
            return "unreachable", f"gateway unreachable: {_short(found)}", "gateway unreachable"
        if isinstance(first, plausible.Implausible):
            return "error", str(first), first.reason
        kind = error_kind(first)
        if kind == "rate_limited":
            return "error", f"rate limited: {_short(first)}", "rate limited"
        return "error", f"{kind}: {_short(first)}", f"gateway error: {kind}"

    async def _open(self, reason: str, now: float) -> None:
        """Make sure a gap with `reason` is open from now (or from before, if it already is)."""
        if self._open_gap is not None and self._open_gap.reason == reason:
            return
        if self._open_gap is not None:
            await self._write_gap(Gap(self.name, self._open_gap.start, now, self._open_gap.reason))
        else:
            await self._cover_silence(now)
        self._open_gap = Gap(self.name, now, None, reason)
        await self._write_gap(self._open_gap)

    async def crashed(self, exc: BaseException) -> None:
        """Told by the supervisor that `run()` failed with `exc`: a gap opens until a reading.

        Never raises: it runs on the way to a restart.
        """
        g = self.gateway
        g.counters.restarts_total += 1
        self._in_flight.clear()
        try:
            now = self.clock()
            reason = f"poller failed: {type(exc).__name__}"
            if g.problem != "error":
                g.problem_since = now
            g.problem, g.problem_reason = "error", f"{reason}: {_short(exc)}"
            self._logged_cause = ("error", reason)
            await self._open(reason, now)
            self.live.changed(g, push=True)
        except Exception:  # the store may be why it failed; the restart goes on regardless
            log.debug("%s: could not record the poller's failure", self.name, exc_info=True)

    async def _slow_done(self, outcome: _Outcome) -> None:
        if outcome.error is not None:
            return
        g = self.gateway
        now = await self._stamp()
        value = outcome.value
        if isinstance(value, models.Operation):
            mode = plausible.text(value.mode)
            reserve = plausible.number(value.backup_reserve_raw_percent, 0.0, 100.0)
            if g.mode is not None and mode is not None and mode != g.mode:
                await self._event(now, "operation_mode", f"{g.mode} -> {mode}")
            if (
                g.backup_reserve_raw_percent is not None
                and reserve is not None
                and abs(reserve - g.backup_reserve_raw_percent) > RESERVE_TOLERANCE_PERCENT
            ):
                detail = f"{g.backup_reserve_raw_percent:.2f} -> {reserve:.2f} raw percent"
                await self._event(now, "backup_reserve", detail)
            g.mode = mode if mode is not None else g.mode
            g.backup_reserve_raw_percent = (
                reserve if reserve is not None else g.backup_reserve_raw_percent
            )
        elif isinstance(value, models.GatewayStatus):
            version = plausible.text(value.version)
            if g.version is not None and version is not None and version != g.version:
                await self._event(now, "firmware", f"{g.version} -> {version}")
            g.version = version or g.version
            g.din = plausible.text(value.din) or g.din
        elif isinstance(value, models.Sitemaster):
            if g.sitemaster_running is not None and value.running != g.sitemaster_running:
                kind = "sitemaster_run" if value.running else "sitemaster_stop"
                await self._event(now, kind, f"sitemaster reports running={value.running}")
            g.sitemaster_running = value.running
            g.connected_to_tesla = value.connected_to_tesla
        elif isinstance(value, models.SiteInfo):
            g.site_name = plausible.text(value.site_name) or g.site_name
            g.site_tz = plausible.text(value.timezone) or g.site_tz
        elif isinstance(value, models.SystemStatus):
            blocks = value.battery_blocks
            g.powerwalls = None if blocks is None else [_powerwall(b, now) for b in blocks]
        self.live.changed(g)

    def _apply_operation(self, operation: models.Operation) -> None:
        """Take an operation the gateway reported after a control request as current."""
        g = self.gateway
        g.mode = plausible.text(operation.mode) or g.mode
        reserve = plausible.number(operation.backup_reserve_raw_percent, 0.0, 100.0)
        if reserve is not None:
            g.backup_reserve_raw_percent = reserve
        self.live.changed(g, push=True)

    # --- store ----------------------------------------------------------------------------

    async def _event(self, at: float, kind: str, detail: str, quiet: bool = False) -> None:
        if not quiet:
            log.info("%s: %s: %s", self.name, kind, detail)
        if self.store is not None:
            await self._store_call(self.store.write_event(Event(self.name, at, kind, detail)))

    async def _write_gap(self, gap: Gap) -> None:
        if self.store is not None:
            await self._store_call(self.store.write_gap(gap))

    async def _store_call(self, write: Awaitable[object]) -> bool:
        """Await a store write; a failure is logged once per cause, never raised.

        The write is shielded: cancelling the poller (shutdown, a restart) must not cancel
        a write still queued for the store's thread, or a reading already shown is lost.
        """
        try:
            await asyncio.shield(write)
        except Exception as exc:
            text = _short(exc)
            if text != self._store_error:
                log.error("%s: the store refused a write: %s", self.name, text)
                self._store_error = text
            return False
        if self._store_error is not None:
            log.warning("%s: the store accepts writes again", self.name)
            self._store_error = None
        return True

    async def flush(self) -> int:
        """Write the buffered readings in one commit; returns how many.

        Readings the store refuses are kept (at most MAX_UNSAVED_READINGS, the oldest are
        dropped first) and offered again with the next flush.
        """
        batch, self._batch = self._batch, []
        self._last_flush = self.monotonic()
        if not batch or self.store is None:
            return 0
        if await self._store_call(self.store.write_readings(batch)):
            return len(batch)
        kept = (batch + self._batch)[-MAX_UNSAVED_READINGS:]
        dropped = len(batch) + len(self._batch) - len(kept)
        if dropped:
            log.error("%s: %d reading(s) the store refused are dropped", self.name, dropped)
        self._batch = kept
        return 0

    async def start(self) -> None:
        """Before the first poll: mark the time the monitor was not running as a gap.

        A gap the previous run left open (it stopped while the gateway was unreachable or
        the system stopped) is taken over and closed by the next reading: there has been
        no reading since its start, and when that run ended is not known. Otherwise the
        span from the last stored reading to the first new one is a gap "monitor not
        running" if it is longer than stale_after_s (opened now if it already is).
        """
        if self.store is None:
            return
        latest = await self.store.latest(self.name)
        if latest is not None and isinstance(self.clock, ReadingClock):
            self.clock.not_before(latest.taken_at)  # a clock set back meanwhile
        now = self.clock()
        since = latest.taken_at if latest is not None else 0.0
        gaps = await self.store.gaps(self.name, since, max(now, since) + 1.0)
        left_open = [g for g in gaps if g.end is None]
        if left_open:
            self._open_gap = left_open[-1]
        if latest is None:
            return
        self._covered_until = latest.taken_at
        self._silence_cause = "monitor not running"
        if self.gateway.reading is None:
            self.gateway.reading = latest  # shown as stale until the first poll
        if not left_open and now - latest.taken_at > self.live.stale_after_s:
            self._open_gap = Gap(self.name, latest.taken_at, None, "monitor not running")
            await self._write_gap(self._open_gap)

    async def run(self) -> None:
        """Poll until cancelled; buffered readings are written on the way out.

        Run again after a failure (the supervisor does), it goes on where it stopped.
        """
        set_log_gateway(self.name)  # log lines of this task (the client's too) name it
        if not self._started:
            await self.start()
            self._started = True
        self._watch = _LoopWatch.join(self)
        try:
            while True:
                await self.poll_due()
                await asyncio.sleep(max(0.05, self.next_due_in_s()))
        finally:
            self._watch.leave(self)
            self._watch = None
            await asyncio.shield(self.flush())


class _LoopWatch:
    """Ticks every WATCH_TICK_S while pollers run: a tick that comes late means the process
    or its event loop stood still, and every running poller is told.

    One per event loop and poller clock, shared by its pollers (a task each would wake the
    loop twice a second per gateway: 2,000 times a second for a fleet of a thousand).
    """

    _running: ClassVar[
        weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, _LoopWatch]]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self.pollers: set[Poller] = set()
        self.last_tick: float | None = monotonic()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def join(cls, poller: Poller) -> _LoopWatch:
        watches = cls._running.setdefault(asyncio.get_running_loop(), {})
        watch = watches.get(poller.monotonic)
        if watch is None:
            watch = watches[poller.monotonic] = cls(poller.monotonic)
            watch.task = asyncio.create_task(watch._tick(), name="poller-watch")
        watch.pollers.add(poller)
        return watch

    def leave(self, poller: Poller) -> None:
        self.pollers.discard(poller)
        if self.pollers:
            return
        if self.task is not None:
            self.task.cancel()
        watches = self._running.get(asyncio.get_running_loop(), {})
        if watches.get(self.monotonic) is self:
            del watches[self.monotonic]

    async def _tick(self) -> None:
        while True:
            self.last_tick = self.monotonic()
            await asyncio.sleep(WATCH_TICK_S)
            now = self.monotonic()
            if now - self.last_tick > 2 * WATCH_TICK_S:  # late: each poller judges the stall
                for poller in list(self.pollers):
                    poller._notice_stall(now)


def _short(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else "unknown error"
    return text if len(text) <= 160 else text[:157] + "..."


def _auth_detail(exc: AuthenticationError) -> str:
    """What the gateway said about a refused login, without the client's retry counts
    (a login blocked after failures repeats the first refusal's `error` field)."""
    return _short(Exception(exc.error or exc.message or f"HTTP {exc.status}"))


#: a Powerwall block's energy: ~14 kWh; a megawatt-hour is no Powerwall
POWERWALL_ENERGY_MAX_WH: Final = 1e6


def _powerwall(block: models.BatteryBlock, taken_at: float) -> PowerwallLive:
    """One battery block as the live record; a value out of physical range is not known."""
    power_max_w = plausible.POWER_MAX_W
    return PowerwallLive(
        serial=plausible.text(block.package_serial_number) or None,
        taken_at=taken_at,
        part_number=plausible.text(block.package_part_number) or None,
        firmware=plausible.text(block.version) or None,
        energy_remaining_wh=plausible.number(
            block.nominal_energy_remaining_wh, 0.0, POWERWALL_ENERGY_MAX_WH
        ),
        full_pack_wh=plausible.number(
            block.nominal_full_pack_energy_wh, 0.0, POWERWALL_ENERGY_MAX_WH
        ),
        power_w=plausible.number(block.p_out_w, -power_max_w, power_max_w),
        reactive_power_var=plausible.number(block.q_out_var, -power_max_w, power_max_w),
        voltage_v=plausible.number(block.v_out_v, 0.0, 1000.0),
        frequency_hz=plausible.number(block.f_out_hz, 0.0, 100.0),
        inverter_state=plausible.text(block.pinv_state) or None,
        backup_ready=block.backup_ready,
    )


#: the endpoint a reading's field comes from (for the error counters).
_FIELD_SOURCE: Final[dict[str, str]] = {
    "soe_raw_percent": "soe",
    "grid_status": "grid_status",
    "taken_at": "clock",
}


def _reading(gateway: str, taken_at: float, ok: dict[str, Any]) -> Reading:
    meters: models.MetersAggregates | None = ok.get("meters_aggregates")
    soe: models.StateOfEnergy | None = ok.get("soe")
    grid: models.GridStatus | None = ok.get("grid_status")

    def power(m: models.MeterAggregate | None) -> float | None:
        return None if m is None else m.instant_power_w

    def counter(m: models.MeterAggregate | None, imported: bool) -> float | None:
        if m is None:
            return None
        return m.energy_imported_wh if imported else m.energy_exported_wh

    site = meters.site if meters else None
    battery = meters.battery if meters else None
    load = meters.load if meters else None
    solar = meters.solar if meters else None
    return Reading(
        gateway=gateway,
        taken_at=taken_at,
        site_w=power(site),
        battery_w=power(battery),
        load_w=power(load),
        solar_w=power(solar),
        soe_raw_percent=soe.raw_percent if soe else None,
        grid_status=grid.grid_status if grid else None,
        site_imported_wh=counter(site, True),
        site_exported_wh=counter(site, False),
        battery_imported_wh=counter(battery, True),
        battery_exported_wh=counter(battery, False),
        load_imported_wh=counter(load, True),
        solar_exported_wh=counter(solar, False),
    )
