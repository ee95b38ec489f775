"""The two percent scales: the gateway's raw percent and the app percent (raw = 5 + 0.95 x app).

The gateway keeps a hidden 5% at the bottom of the pack. `/api/system_status/soe` and the
`backup_reserve_percent` of `/api/operation` are on the raw scale; Tesla's app and the Owner
API show the app scale. Every tegkit API that takes or returns a percent says which one.

The conversion is exact both ways; only the app rounds, to the whole percent it displays
(`app_percent_shown`). docs/reserve.md sets this rule beside the spec's table of tested
values: six of its seven pairs fit, and why the seventh and the spec's 20 -> 24.6 do not.
"""

from __future__ import annotations

import math
from typing import Literal

Scale = Literal["raw", "app"]
SCALES: tuple[Scale, ...] = ("raw", "app")

HIDDEN_BOTTOM_PERCENT = 5.0
_APP_SPAN = 0.95


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))


def app_to_raw(app_percent: float) -> float:
    """App percent (0..100) to the gateway's raw percent (5..100), clamped to 0..100."""
    return _clamp(HIDDEN_BOTTOM_PERCENT + _APP_SPAN * app_percent)


def raw_to_app(raw_percent: float) -> float:
    """Gateway raw percent to the app percent, clamped to 0..100 (raw below 5 reads as 0)."""
    return _clamp((raw_percent - HIDDEN_BOTTOM_PERCENT) / _APP_SPAN)


def to_raw(percent: float, scale: Scale) -> float:
    """A percent on `scale` expressed on the raw scale."""
    return percent if scale == "raw" else app_to_raw(percent)


def to_app(percent: float, scale: Scale) -> float:
    """A percent on `scale` expressed on the app scale."""
    return percent if scale == "app" else raw_to_app(percent)


def app_percent_shown(raw_percent: float) -> int:
    """The whole percent Tesla's app displays for a raw percent: the app value rounded half up.

    >>> app_percent_shown(24.6), app_percent_shown(24.0), app_percent_shown(10)
    (21, 20, 5)
    """
    return math.floor(raw_to_app(raw_percent) + 0.5)
