"""Solar production: clear-sky output from the sun's position, dimmed by seeded clouds."""

from __future__ import annotations

import math

from tegkit.sim.noise import SmoothNoise, unit_hash

SECONDS_PER_DAY = 86400
DERATE = 0.8  # inverter, wiring, soiling, temperature: DC peak to typical AC peak
_DEG = math.pi / 180.0
_STREAM_CLOUD = 11
_STREAM_FLICKER = 12


class SolarModel:
    """AC solar power available at a time, for one array at one place."""

    __slots__ = ("_a", "_b", "_c0", "_clouds", "_day", "_lat_rad", "_lon_deg", "_peak_w", "_seed")

    def __init__(self, latitude_deg: float, longitude_deg: float, array_kw: float, seed: int):
        self._lat_rad = latitude_deg * _DEG
        self._lon_deg = longitude_deg
        self._peak_w = array_kw * 1000.0 * DERATE
        self._seed = seed
        self._clouds = SmoothNoise(seed, _STREAM_CLOUD, 600.0)
        self._day = -(1 << 62)
        self._a = 0.0
        self._b = 0.0
        self._c0 = 0.0

    def _load_day(self, day: int) -> None:
        # Per UTC day: declination and equation of time (Spencer 1971), folded into
        # sin(elevation) = a + b * cos(hour_angle), hour_angle = utc_s * pi / 43200 + c0.
        doy = day % 365.2422  # days since 1 January, within a day over the leap cycle
        gamma = 2.0 * math.pi * doy / 365.0
        decl = (
            0.006918
            - 0.399912 * math.cos(gamma)
            + 0.070257 * math.sin(gamma)
            - 0.006758 * math.cos(2 * gamma)
            + 0.000907 * math.sin(2 * gamma)
        )
        eot_min = 229.18 * (
            0.000075
            + 0.001868 * math.cos(gamma)
            - 0.032077 * math.sin(gamma)
            - 0.014615 * math.cos(2 * gamma)
            - 0.040849 * math.sin(2 * gamma)
        )
        self._a = math.sin(self._lat_rad) * math.sin(decl)
        self._b = math.cos(self._lat_rad) * math.cos(decl)
        self._c0 = (self._lon_deg * 4.0 + eot_min - 720.0) * (math.pi / 720.0)
        self._day = day

    def sin_elevation(self, epoch_s: float) -> float:
        """Sine of the sun's elevation at `epoch_s` (negative below the horizon)."""
        day = int(epoch_s // SECONDS_PER_DAY)
        if day != self._day:
            self._load_day(day)
        utc_s = epoch_s - day * SECONDS_PER_DAY
        return self._a + self._b * math.cos(utc_s * (math.pi / 43200.0) + self._c0)

    def clear_sky_w(self, epoch_s: float) -> float:
        """Output under a clear sky: Haurwitz irradiance scaled to the array, W."""
        s = self.sin_elevation(epoch_s)
        if s <= 0.0:
            return 0.0
        irradiance = 1098.0 * s * math.exp(-0.057 / s)  # W/m2, clear-sky global horizontal
        return self._peak_w * irradiance * 0.001

    def available_w(self, epoch_s: float, cloud_cover: float) -> float:
        """Output with clouds: `cloud_cover` 0 (clear) .. 1 (overcast), seeded variation, W."""
        clear = self.clear_sky_w(epoch_s)
        if clear <= 0.0:
            return 0.0
        drift = self._clouds.at(epoch_s)  # slow passing clouds, 10-minute knots
        flicker = unit_hash(self._seed, _STREAM_FLICKER, int(epoch_s // 30))  # cloud edges
        haze = 0.97 + 0.03 * drift  # even a clear day is not perfectly clear
        dim = cloud_cover * (0.55 + 0.35 * drift + 0.2 * flicker)
        return clear * haze * max(0.08, 1.0 - dim)
