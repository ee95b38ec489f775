"""Firmware profiles: what differs between gateway firmware versions the simulator can play.

A profile decides the auth family (legacy: live data open, Bearer token from the
serial-derived password; modern: customer login with cookies) and the small shape
differences the captures show between versions. The answer templates themselves are data:
sim/captures/<name>/ holds what a firmware answers differently from 21.44 (for example
1.x's site_info, and its grid_codes, which later firmware answers 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tegkit.catalog import Firmware

MeasuredFrequency = Literal["never", "running", "stopped"]


@dataclass(frozen=True, slots=True)
class FirmwareProfile:
    """One firmware version as the simulator plays it."""

    name: str  # what `firmware=` takes: "21.44"
    version: str  # /api/status "version"
    git_hash: str
    family: Firmware
    # legacy: {"running","uptime","connected_to_tesla"}; else the 21.x shape with "status"
    legacy_sitemaster: bool = False
    # GET /api/operation names the mode "mode" (legacy) or "real_mode" (20.49 and later)
    operation_mode_key: str = "real_mode"
    # legacy /api/site_info: grid_code is a flat string with grid_* fields beside it
    flat_grid_code: bool = False
    # older /api/meters/aggregates also carry busway, frequency and generator meters
    extra_meters: bool = False
    # 21.44 added last_phase_energy_communication_time to every aggregate meter
    phase_energy_time: bool = True
    # site_info.measured_frequency: 21.39.1 shows it while running, 21.44 while stopped
    measured_frequency: MeasuredFrequency = "stopped"
    # /api/devices/vitals answers 404 from 23.44 on
    has_vitals: bool = True
    # spec 001 (1.x): GET /api/powerwalls/status answers 409 "Sitemaster is current running"
    # while the system runs; the 21.x captures show a 200 body running and stopped
    powerwalls_status_409_running: bool = False

    @property
    def legacy(self) -> bool:
        return self.family == "legacy"


PROFILES: dict[str, FirmwareProfile] = {
    p.name: p
    for p in (
        FirmwareProfile(
            "1.40",
            "1.40.2",
            "14f7c1769ec307bba2ea62355a09d01c8e58988c+",
            "legacy",
            legacy_sitemaster=True,
            operation_mode_key="mode",
            flat_grid_code=True,
            extra_meters=True,
            phase_energy_time=False,
            measured_frequency="never",
            powerwalls_status_409_running=True,
        ),
        FirmwareProfile(
            "20.49",
            "20.49.0 ec4d3ec6",
            "ec4d3ec6a8ffae3ba7a0b4a2c46d5f43d8f2a0b1",
            "modern",
            extra_meters=True,
            phase_energy_time=False,
            measured_frequency="running",
        ),
        FirmwareProfile(
            "21.39",
            "21.39.1 7759c368",
            "7759c368f4e96326389d76703a8a2ae27f091c45",
            "modern",
            phase_energy_time=False,
            measured_frequency="running",
        ),
        FirmwareProfile(
            "21.44", "21.44 223a56cd", "223a56cd575b7b19bad7e12a4ebad0eb52d1f50a", "modern"
        ),
        FirmwareProfile(
            "23.44",
            "23.44.0 eb113390",
            "eb113390162784b3b4e3a8c6a0e6f5c2b5b4d0a7",
            "modern",
            has_vitals=False,
        ),
    )
}


def get_profile(name: str) -> FirmwareProfile:
    """The profile named `name` ("1.40", "20.49", "21.39", "21.44", "23.44"); "21.39.1" works."""
    if name in PROFILES:
        return PROFILES[name]
    for key, profile in PROFILES.items():
        if name.startswith(key + "."):
            return profile
    raise ValueError(f"unknown firmware {name!r}; choose one of {', '.join(PROFILES)}")


__all__ = ["PROFILES", "FirmwareProfile", "get_profile"]
