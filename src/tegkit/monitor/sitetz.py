"""Which time zone a gateway's days, tariff periods and daily history buckets are in.

The owner's choice (`--tz`) first, then the zone the gateway reports in site_info, then
the monitor's default (this machine's zone): a monitor in a UTC container next to a
Los Angeles site still ends that site's days at Los Angeles midnight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tegkit.monitor.live import GatewayLive

__all__ = ["gateway_tz", "zone"]

_MAX_NAME_CHARS = 64  # the longest IANA names are about 30 characters


@functools.lru_cache(maxsize=64)
def zone(name: str | None) -> dt.tzinfo | None:
    """The zone of an IANA name such as "America/Los_Angeles"; None if it is not one."""
    if not name or len(name) > _MAX_NAME_CHARS:
        return None
    with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo(name)
    return None


def gateway_tz(gateway: GatewayLive | None, default: dt.tzinfo) -> dt.tzinfo:
    """The zone of this gateway's site: the override, the gateway's own, else `default`."""
    if gateway is None:
        return default
    if gateway.tz_override is not None:
        return gateway.tz_override
    return zone(gateway.site_tz) or default


def tz_name(tz: dt.tzinfo) -> str:
    """The IANA name where there is one (browsers need it), else the zone's own text."""
    return getattr(tz, "key", None) or str(tz)
