"""The Fleet API's partner rate limits, as its answers state them, kept per energy site.

Each answer may carry x-ratelimit-limit / -remaining / -reset (seconds until the window
resets), and a 429 carries Retry-After. From them we know, per site, when the next request
may go: after a 429 not before Retry-After, and with nothing remaining not before the reset.
A request that would go earlier is not sent (RateLimitedError with the wait). Every wait is
capped like Retry-After (tegkit._headers): a peer cannot park us for longer than an hour.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tegkit._headers import MAX_RETRY_AFTER_S, retry_after_s
from tegkit.ownerapi import (
    RATE_LIMIT_LIMIT_HEADER,
    RATE_LIMIT_REMAINING_HEADER,
    RATE_LIMIT_RESET_HEADER,
)

# A reset this large is a Unix time, not a number of seconds.
_EPOCH_THRESHOLD_S = 1e9

_SITE_PATH = re.compile(r"/api/1/(energy_sites|powerwalls)/([^/]+)")


@dataclass(frozen=True, slots=True)
class CloudRateLimit:
    """The limits last stated for one site; times are on the client's clock (seconds)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at_s: float | None = None  # when the window resets, if stated
    retry_at_s: float | None = None  # not before this, after a 429

    def wait_s(self, now_s: float) -> float:
        """How long until a request may go (0: now)."""
        waits = [0.0]
        if self.retry_at_s is not None:
            waits.append(self.retry_at_s - now_s)
        if self.remaining == 0 and self.reset_at_s is not None:
            waits.append(self.reset_at_s - now_s)
        return min(max(waits), MAX_RETRY_AFTER_S)


def site_key(path: str) -> str:
    """What a path's limits are kept under: its energy site or battery, else the account."""
    match = _SITE_PATH.match(path)
    return f"{match[1]}/{match[2]}" if match else "account"


def _count(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _reset_at_s(value: str | None, now_s: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if number >= _EPOCH_THRESHOLD_S:  # a Unix time: our clock may be another, so the delta
        number = max(0.0, number - time.time())
    return now_s + min(number, MAX_RETRY_AFTER_S)


def observe(
    previous: CloudRateLimit | None,
    *,
    status: int,
    headers: Mapping[str, str],
    retry_after: str | None,
    now_s: float,
) -> CloudRateLimit | None:
    """The limits after one answer; None when the answer stated none and none were known."""
    limit = _count(headers.get(RATE_LIMIT_LIMIT_HEADER))
    remaining = _count(headers.get(RATE_LIMIT_REMAINING_HEADER))
    reset_at = _reset_at_s(headers.get(RATE_LIMIT_RESET_HEADER), now_s)
    retry_at: float | None = None
    if status == 429:
        wait = retry_after_s(retry_after)
        if wait is None:  # a 429 without a usable Retry-After: the reset, else a minute
            wait = 60.0 if reset_at is None else reset_at - now_s
        retry_at = now_s + min(wait, MAX_RETRY_AFTER_S)
    if previous is None and limit is None and remaining is None and retry_at is None:
        return None
    return CloudRateLimit(
        limit=limit, remaining=remaining, reset_at_s=reset_at, retry_at_s=retry_at
    )


__all__ = ["CloudRateLimit", "observe", "site_key"]
