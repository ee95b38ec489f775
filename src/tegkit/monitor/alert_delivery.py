"""Webhook delivery of alerts: signed JSON POSTs, retried with back-off, each sent once.

Each webhook has its own bounded queue and worker task, so a webhook that is down delays
neither the others nor the polling (the evaluator only enqueues). A delivery is one
(alert id, state) to one webhook:

- signed: `X-Tegkit-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
  with `X-Tegkit-Timestamp` (epoch seconds, signed with the body so a receiver that refuses
  old timestamps cannot be fed a captured request again: replay protection);
- identified: `X-Tegkit-Delivery` and `Idempotency-Key` are "<alert id>:<state>", the same
  on every attempt, so a receiver can drop the second copy of a request whose answer we
  lost (a timeout after the receiver had it);
- retried on a connection error, a timeout, 5xx and 429 with exponential back-off and
  jitter (a 429's or 503's Retry-After honoured up to a cap), given up after `max_attempts`
  (logged WARNING); another status (4xx, or a redirect, which is never followed) is final;
- deduplicated: a (alert id, state, webhook) once answered 2xx is never sent again, and one
  that waits in the queue or is being sent is not queued twice.

Logs name the webhook and the URL's host, never the secret or the URL's path and query
(a chat service's hook URL carries its own token there).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp

if TYPE_CHECKING:  # alerts imports this module; these are only annotations here
    from tegkit.monitor.alerts import AlertState, Webhook

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Tegkit-Signature"
TIMESTAMP_HEADER: Final = "X-Tegkit-Timestamp"
DELIVERY_HEADER: Final = "X-Tegkit-Delivery"
#: a request that takes longer is abandoned and retried
TIMEOUT_S: Final = 10.0
MAX_ATTEMPTS: Final = 8
#: the first wait after a failure and the longest, doubling in between (before jitter)
BACKOFF_S: Final = (1.0, 120.0)
#: a Retry-After longer than this is not waited for in full
RETRY_AFTER_CAP_S: Final = 300.0
QUEUE_SIZE: Final = 1000  # per webhook; when full the oldest delivery is dropped
REMEMBERED: Final = 20_000  # delivered keys kept for deduplication


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds a Retry-After header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now_s)


def _where(webhook: Webhook) -> str:
    parts = urlsplit(webhook.url)
    return f'webhook "{webhook.name}" ({parts.scheme}://{parts.netloc})'


@dataclass(frozen=True, slots=True)
class _Job:
    webhook: Webhook
    alert_id: str
    state: AlertState
    body: bytes

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.alert_id, self.state, self.webhook.name)

    @property
    def delivery_id(self) -> str:
        return f"{self.alert_id}:{self.state}"


@dataclass(slots=True)
class DeliveryCounters:
    delivered_total: int = 0
    attempts_total: int = 0
    given_up_total: int = 0
    dropped_total: int = 0  # pushed out of a full queue, or pending at shutdown


class _Lane:
    """One webhook's queue and worker."""

    def __init__(self) -> None:
        self.queue: deque[_Job] = deque()
        self.wake = asyncio.Event()
        self.busy: _Job | None = None
        self.task: asyncio.Task[None] | None = None


class WebhookSender:
    """Delivers submitted alert bodies to webhooks in the background (`start()`/`close()`)."""

    def __init__(
        self,
        *,
        timeout_s: float = TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: tuple[float, float] = BACKOFF_S,
        retry_after_cap_s: float = RETRY_AFTER_CAP_S,
        queue_size: int = QUEUE_SIZE,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.retry_after_cap_s = retry_after_cap_s
        self.queue_size = queue_size
        self.wall_clock = wall_clock  # signs the timestamp: the receiver compares it to its own
        self.counters = DeliveryCounters()
        self._rng = rng or random.Random()
        self._sleep = sleep  # the back-off's wait (tests record the waits asked for)
        self._lanes: dict[str, _Lane] = {}
        self._queued: set[tuple[str, str, str]] = set()
        self._delivered: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None  # made at the first delivery
        self._running = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Deliver from now on (what was submitted before too) until `close()`."""
        self._running = True
        for name, lane in self._lanes.items():  # what was submitted before the start
            if lane.queue and (lane.task is None or lane.task.done()):
                lane.task = asyncio.create_task(self._work(lane), name=f"webhook-{name}")

    def delivered(self, alert_id: str, state: AlertState, webhook: str) -> bool:
        return (alert_id, state, webhook) in self._delivered

    def pending(self) -> int:
        """Deliveries waiting or being sent."""
        return len(self._queued)

    def submit(self, webhook: Webhook, alert_id: str, state: AlertState, body: bytes) -> bool:
        """Queue one delivery; False when it was delivered or is queued already."""
        job = _Job(webhook, alert_id, state, body)
        if job.key in self._delivered or job.key in self._queued:
            return False
        lane = self._lanes.get(webhook.name)
        if lane is None:
            lane = self._lanes[webhook.name] = _Lane()
        if len(lane.queue) >= self.queue_size:
            dropped = lane.queue.popleft()
            self._queued.discard(dropped.key)
            self.counters.dropped_total += 1
            log.warning(
                "%s: queue full (%d); dropped the oldest delivery %s",
                _where(webhook),
                self.queue_size,
                dropped.delivery_id,
            )
        lane.queue.append(job)
        self._queued.add(job.key)
        self._idle.clear()
        lane.wake.set()
        if self._running and (lane.task is None or lane.task.done()):
            lane.task = asyncio.create_task(self._work(lane), name=f"webhook-{webhook.name}")
        return True

    async def wait_idle(self) -> None:
        """Until nothing is queued or being sent (tests, and the grace at shutdown)."""
        await self._idle.wait()

    async def _work(self, lane: _Lane) -> None:
        while True:
            if not lane.queue:
                lane.wake.clear()
                await lane.wake.wait()
                continue
            job = lane.queue.popleft()
            lane.busy = job
            try:
                await self._deliver(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one delivery must not stop the lane
                log.exception("%s: delivery %s failed", _where(job.webhook), job.delivery_id)
            finally:
                lane.busy = None
                self._queued.discard(job.key)
                if not self._queued:
                    self._idle.set()

    async def _deliver(self, job: _Job) -> None:
        if self._session is None:  # a monitor without webhooks never makes one
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                trust_env=False,  # no proxy from the environment: the URL is where it goes
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        first_s, most_s = self.backoff_s
        where = _where(job.webhook)
        for attempt in range(1, self.max_attempts + 1):
            asked_s: float | None = None
            timestamp = str(int(self.wall_clock()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "tegkit-monitor",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(job.webhook.secret, timestamp, job.body),
                DELIVERY_HEADER: job.delivery_id,
                "Idempotency-Key": job.delivery_id,
            }
            self.counters.attempts_total += 1
            try:
                async with self._session.post(
                    job.webhook.url, data=job.body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    asked_s = retry_after_s(response.headers.get("Retry-After"), time.time())
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = type(exc).__name__
            else:
                if 200 <= status < 300:
                    self._remember(job.key)
                    self.counters.delivered_total += 1
                    log.info("%s: delivered %s", where, job.delivery_id)
                    return
                if status != 429 and status < 500:
                    self.counters.given_up_total += 1
                    why = "a redirect, not followed" if 300 <= status < 400 else "not retried"
                    log.warning(
                        "%s: delivery %s answered HTTP %d (%s); given up",
                        where,
                        job.delivery_id,
                        status,
                        why,
                    )
                    return
                failure = f"HTTP {status}"
            if attempt == self.max_attempts:
                break
            wait_s = min(most_s, first_s * 2 ** (attempt - 1))
            wait_s *= self._rng.uniform(0.5, 1.0)  # jitter: many monitors do not retry in step
            if asked_s is not None:
                wait_s = max(wait_s, min(asked_s, self.retry_after_cap_s))
            log.info(
                "%s: delivery %s failed (%s), attempt %d of %d; again in %.1f s",
                where,
                job.delivery_id,
                failure,
                attempt,
                self.max_attempts,
                wait_s,
            )
            await self._sleep(wait_s)
        self.counters.given_up_total += 1
        log.warning(
            "%s: delivery %s given up after %d attempts (last: %s)",
            where,
            job.delivery_id,
            self.max_attempts,
            failure,
        )

    def _remember(self, key: tuple[str, str, str]) -> None:
        self._delivered[key] = None
        while len(self._delivered) > REMEMBERED:
            self._delivered.popitem(last=False)

    async def close(self, grace_s: float = 2.0) -> None:
        """Give pending deliveries `grace_s` to finish, drop the rest (logged), stop."""
        if self._queued and grace_s > 0 and self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        left = len(self._queued)
        if left:
            self.counters.dropped_total += left
            log.warning("alerts: %d webhook deliveries still pending at shutdown, dropped", left)
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
                lane.task = None
            lane.queue.clear()
        self._queued.clear()
        self._idle.set()
        self._running = False
        if self._session is not None:
            await self._session.close()
            self._session = None
