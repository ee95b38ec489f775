"""HTTP header values both clients read: how long a Retry-After asks us to wait."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

# A peer may ask for any wait at all ("inf", a date in 9999); no answer of a gateway is worth
# waiting longer than an hour for, and a poller that waits longer looks dead.
MAX_RETRY_AFTER_S = 3600.0


def retry_after_s(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), or None.

    The wait is capped at MAX_RETRY_AFTER_S. A value that is not a finite, non-negative
    number of seconds or a date (inf, nan, -5, garbage) is None: the caller's own default
    applies. A date in the past is 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # float() reads "inf", "nan" and "1e400" (inf) too.
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return min(seconds, MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    now = time.time() if now_s is None else now_s
    try:
        wait_s = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    if not math.isfinite(wait_s):
        return None
    return min(max(0.0, wait_s), MAX_RETRY_AFTER_S)


__all__ = ["MAX_RETRY_AFTER_S", "retry_after_s"]
