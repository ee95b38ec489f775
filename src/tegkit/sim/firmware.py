"""Firmware updates as time: how long each step takes, and when a gateway updates by itself.

Pure facts and one pure function, shared by the simulated gateway (sim/gateway.py, played over
HTTPS by `teg sim`) and the full-speed simulation (automation/simulate.py), so both put an
unattended update at the same instant and stop the battery for the same time.

An update walks: check (UPDATE_CHECK_S), download (UPDATE_DOWNLOAD_S), a pause ready to
install (UPDATE_READY_S), then the install, which stops the Powerwalls for BATTERY_STOP_S: the
grid carries the home, then the gateway comes back on the new firmware. So the battery stops
`STOP_AFTER_START_S` after an update starts, for `BATTERY_STOP_S` (see `battery_stop`).

A firmware release (a scenario's `firmware_release` event, or POST /sim/firmware_release) makes
the gateway's update check find the new version. If nobody starts an update within
`auto_install_within_h` hours (the owner, POST /api/system/update, a plan's firmware window),
the gateway starts one by itself at `auto_install_at(...)`: an instant drawn uniformly at
random (whole seconds) in [release, release + auto_install_within_h), from a generator seeded
by the scenario's seed and the release instant. Uniform, because nothing tells a real gateway
to avoid the expensive hours: spec 001's owner found his had installed during peak. The same
seed gives the same instant in every run and in both simulations. A gateway never starts an
update by itself while off grid (stopping the Powerwalls would black the home out): it looks
again every AUTO_RETRY_S until the grid is back.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Final

from tegkit.errors import InvalidInputError

UPDATE_CHECK_S: Final = 2.0
UPDATE_DOWNLOAD_S: Final = 60.0
UPDATE_READY_S: Final = 5.0
# Spec 001: the owner's gateway "self-upgraded during peak hours, resulting around 15 minutes
# stop of battery". The whole stop is the install: the Powerwalls stop when it begins and run
# again when the gateway is back on the new firmware.
BATTERY_STOP_S: Final = 15 * 60.0
# From the start of an update (its check) to the moment the Powerwalls stop.
STOP_AFTER_START_S: Final = UPDATE_CHECK_S + UPDATE_DOWNLOAD_S + UPDATE_READY_S

# A release installs itself within this many hours unless the scenario says otherwise.
DEFAULT_AUTO_INSTALL_WITHIN_H: Final = 48.0
MAX_AUTO_INSTALL_WITHIN_H: Final = 366 * 24.0
# Off grid at its chosen instant, the gateway tries its own update again this much later.
AUTO_RETRY_S: Final = 15 * 60.0


def auto_install_at(release_utc: datetime, within_h: float, seed: int) -> datetime | None:
    """When a gateway starts an update of a release by itself; None when `within_h` is 0
    (the release then waits for someone to start it). Uniform over whole seconds in
    [release_utc, release_utc + within_h), the same for the same (release, within_h, seed)."""
    if release_utc.tzinfo is None or release_utc.utcoffset() is None:
        raise InvalidInputError("release_utc", "an aware datetime", release_utc)
    if (
        isinstance(within_h, bool)
        or not isinstance(within_h, int | float)
        or not 0 <= within_h <= MAX_AUTO_INSTALL_WITHIN_H  # False for nan
    ):
        allowed = f"a number of hours from 0 (never by itself) to {MAX_AUTO_INSTALL_WITHIN_H:g}"
        raise InvalidInputError("auto_install_within_h", allowed, within_h)
    span_s = int(within_h * 3600.0)
    if span_s <= 0:
        return None
    # A string seed is hashed with SHA-512 by `random`, so the draw does not depend on
    # PYTHONHASHSEED, the platform or the Python version.
    rng = random.Random(f"tegkit-auto-install:{seed}:{release_utc.timestamp():.6f}")
    return release_utc.astimezone(UTC) + timedelta(seconds=rng.randrange(span_s))


def battery_stop(update_started_utc: datetime) -> tuple[datetime, datetime]:
    """The interval [start, end) in which an update started at `update_started_utc` (and not
    failing) holds the Powerwalls stopped."""
    stop = update_started_utc + timedelta(seconds=STOP_AFTER_START_S)
    return stop, stop + timedelta(seconds=BATTERY_STOP_S)


__all__ = [
    "AUTO_RETRY_S",
    "BATTERY_STOP_S",
    "DEFAULT_AUTO_INSTALL_WITHIN_H",
    "MAX_AUTO_INSTALL_WITHIN_H",
    "STOP_AFTER_START_S",
    "UPDATE_CHECK_S",
    "UPDATE_DOWNLOAD_S",
    "UPDATE_READY_S",
    "auto_install_at",
    "battery_stop",
]
