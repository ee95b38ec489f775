"""Household load: a daily profile with morning and evening peaks, noise and appliance spikes."""

from __future__ import annotations

import math

from tegkit.sim.noise import SmoothNoise, unit_hash

# Relative demand at each local hour (linear in between); scaled to the daily energy.
WEEKDAY_SHAPE = (
    0.36, 0.34, 0.33, 0.33, 0.34, 0.42, 0.85, 1.35, 1.30, 0.95, 0.80, 0.78,
    0.80, 0.78, 0.80, 0.95, 1.25, 1.75, 2.05, 2.05, 1.85, 1.55, 1.05, 0.60,
)  # fmt: skip
WEEKEND_SHAPE = (
    0.40, 0.36, 0.34, 0.33, 0.33, 0.36, 0.50, 0.80, 1.15, 1.35, 1.30, 1.20,
    1.20, 1.10, 1.05, 1.05, 1.25, 1.65, 1.95, 1.95, 1.75, 1.50, 1.10, 0.65,
)  # fmt: skip

# Appliances that switch on at random: (power_w, duration_s, share of spikes).
APPLIANCES = (
    (2000.0, 180.0, 0.50),  # kettle
    (1200.0, 300.0, 0.20),  # microwave
    (2400.0, 1800.0, 0.15),  # oven
    (2800.0, 2700.0, 0.15),  # dryer
)
SPIKE_KNOT_S = 900.0  # at most one random spike may start in each 15-minute slot
SPIKE_HOURS = (6, 23)  # spikes start between these local hours
_SPIKE_PROBABILITY_AT_25_KWH = 0.04
_MAX_SPIKE_S = max(duration for _, duration, _ in APPLIANCES)
_LOOKBACK_KNOTS = math.ceil(_MAX_SPIKE_S / SPIKE_KNOT_S)
_STREAM_SPIKE = 21
_STREAM_WANDER = 22
_STREAM_JITTER = 23


class LoadModel:
    """Power the home asks for at a time, W; `daily_load_kwh` sets the average day."""

    __slots__ = (
        "_jitter_seed",
        "_knot",
        "_manual",
        "_seed",
        "_spike_probability",
        "_spikes",
        "_wander",
        "_weekday_w",
        "_weekend_w",
    )

    def __init__(self, daily_load_kwh: float, seed: int) -> None:
        self._seed = seed
        self._jitter_seed = seed
        self._spike_probability = min(0.5, _SPIKE_PROBABILITY_AT_25_KWH * daily_load_kwh / 25.0)
        knots_per_day = (SPIKE_HOURS[1] - SPIKE_HOURS[0]) * 3600.0 / SPIKE_KNOT_S
        mean_spike_wh = sum(p * d / 3600.0 * share for p, d, share in APPLIANCES)
        spike_wh = knots_per_day * self._spike_probability * mean_spike_wh
        base_wh = max(0.25 * daily_load_kwh * 1000.0, daily_load_kwh * 1000.0 - spike_wh)
        self._weekday_w = _scaled(WEEKDAY_SHAPE, base_wh)
        self._weekend_w = _scaled(WEEKEND_SHAPE, base_wh)
        self._wander = SmoothNoise(seed, _STREAM_WANDER, 300.0)
        self._knot = -(1 << 62)
        self._spikes: list[tuple[float, float, float]] = []
        self._manual: list[tuple[float, float, float]] = []

    def add_spike(self, start_epoch_s: float, power_w: float, duration_s: float) -> None:
        """Add `power_w` of demand from `start_epoch_s` for `duration_s` seconds."""
        self._manual.append((start_epoch_s, start_epoch_s + duration_s, power_w))

    def demand_w(self, epoch_s: float, local_s_of_day: float, weekend: bool) -> float:
        """Demand at `epoch_s`; the caller gives local time of day (s) and the day kind."""
        shape = self._weekend_w if weekend else self._weekday_w
        hour_f = local_s_of_day * (1.0 / 3600.0)
        hour = int(hour_f)
        frac = hour_f - hour
        base = shape[hour] + (shape[(hour + 1) % 24] - shape[hour]) * frac
        wander = 0.85 + 0.3 * self._wander.at(epoch_s)  # slow +-15% drift
        jitter = 0.97 + 0.06 * unit_hash(self._jitter_seed, _STREAM_JITTER, int(epoch_s // 10))
        power_w = base * wander * jitter
        knot = int(epoch_s // SPIKE_KNOT_S)
        if knot != self._knot:
            self._refresh_spikes(knot, epoch_s - local_s_of_day)
        for start, end, spike_w in self._spikes:
            if start <= epoch_s < end:
                power_w += spike_w
        if self._manual:
            self._manual = [s for s in self._manual if s[1] > epoch_s]
            for start, _end, spike_w in self._manual:
                if start <= epoch_s:
                    power_w += spike_w
        return power_w

    def _refresh_spikes(self, knot: int, local_midnight_epoch_s: float) -> None:
        # The spikes that may be running in this knot: those started in the last few knots.
        self._knot = knot
        spikes = []
        for k in range(knot - _LOOKBACK_KNOTS, knot + 1):
            if unit_hash(self._seed, _STREAM_SPIKE, 3 * k) >= self._spike_probability:
                continue
            start = (
                k * SPIKE_KNOT_S + unit_hash(self._seed, _STREAM_SPIKE, 3 * k + 1) * SPIKE_KNOT_S
            )
            local_hour = ((start - local_midnight_epoch_s) % 86400.0) / 3600.0
            if not SPIKE_HOURS[0] <= local_hour < SPIKE_HOURS[1]:
                continue
            pick = unit_hash(self._seed, _STREAM_SPIKE, 3 * k + 2)
            chosen = APPLIANCES[-1]
            for appliance in APPLIANCES:
                if pick < appliance[2]:
                    chosen = appliance
                    break
                pick -= appliance[2]
            spikes.append((start, start + chosen[1], chosen[0]))
        self._spikes = spikes


def _scaled(shape: tuple[float, ...], daily_wh: float) -> tuple[float, ...]:
    # Linear interpolation between hourly knots integrates to the mean of the knots.
    scale = daily_wh / 24.0 / (sum(shape) / len(shape))
    return tuple(value * scale for value in shape)
