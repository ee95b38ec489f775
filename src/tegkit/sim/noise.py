"""Seeded noise that is a pure function of time, so any stepping pattern sees the same weather."""

from __future__ import annotations

import math

_MASK = (1 << 64) - 1


def unit_hash(seed: int, stream: int, index: int) -> float:
    """A uniform value in [0, 1) fixed by (seed, stream, index): splitmix64 of the three."""
    z = (seed * 0x100000001B3 + stream * 0x9E3779B97F4A7C15 + index) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z >> 11) * (1.0 / 9007199254740992.0)


class SmoothNoise:
    """Value noise in [0, 1): random knots every `knot_s` seconds, eased in between."""

    __slots__ = ("_index", "_knot_s", "_seed", "_stream", "_v0", "_v1")

    def __init__(self, seed: int, stream: int, knot_s: float) -> None:
        self._seed = seed
        self._stream = stream
        self._knot_s = knot_s
        self._index = -(1 << 62)
        self._v0 = 0.0
        self._v1 = 0.0

    def at(self, epoch_s: float) -> float:
        """The noise value at `epoch_s` (Unix seconds)."""
        position = epoch_s / self._knot_s
        index = math.floor(position)
        if index != self._index:
            if index == self._index + 1:
                self._v0 = self._v1
            else:
                self._v0 = unit_hash(self._seed, self._stream, index)
            self._v1 = unit_hash(self._seed, self._stream, index + 1)
            self._index = index
        frac = position - index
        ease = frac * frac * (3.0 - 2.0 * frac)  # smoothstep: no kinks at the knots
        return self._v0 + (self._v1 - self._v0) * ease
