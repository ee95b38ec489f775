"""The time the monitor stamps readings with: wall time that never runs backwards in a run.

The host's wall clock can be stepped at any moment (NTP after a boot without a real-time
clock, an administrator, a virtual machine resumed). Stamping readings with it directly
puts them out of order: a step back overwrites readings at the same millisecond, a step
forward and back again hides hours from the rollups, which follow the stream in order.

`ReadingClock` counts elapsed time on a monotonic clock (CLOCK_BOOTTIME where the system
has it, so a suspended host is seen as time that passed, not as a clock step) and anchors
it to the wall clock:

- the wall clock moving ahead of the stamps (a step forward) is followed at once: time
  still only moves forward, and the span skipped holds no readings (the poller records it
  as a gap);
- the wall clock falling behind (a step back) is caught up with in small steps: stamps
  advance at `1 - slew_ratio` of real time until the wall clock has caught up, so they
  never go backwards and never repeat.

Each step of more than `step_threshold_s` between the wall clock and the monotonic one is
kept in `steps`; the pollers record each as an Event of kind "clock_step".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: a wall clock that moves this much against the monotonic one between two reads was stepped.
STEP_THRESHOLD_S: Final = 2.0
#: while catching up with a step back, stamps advance at a tenth of real time.
SLEW_RATIO: Final = 0.9
#: steps remembered for pollers that have not recorded them yet.
STEPS_KEPT: Final = 64


def boottime() -> float:
    """Seconds on a clock that never steps and keeps counting while the host sleeps."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not Linux
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class ClockStep:
    """The wall clock moved `jump_s` seconds against elapsed time; seen at stamp `at`."""

    at: float
    jump_s: float

    def describe(self) -> str:
        if self.jump_s > 0:
            return f"the host clock stepped forward {self.jump_s:.3f} s; stamps follow it"
        return (
            f"the host clock stepped back {-self.jump_s:.3f} s; stamps slow down until it "
            f"catches up (about {-self.jump_s / SLEW_RATIO:.0f} s) and never go backwards"
        )


class ReadingClock:
    """Callable: epoch seconds, never less than the value it returned before.

    `wall` and `mono` are injectable, so tests step the wall clock deterministically.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = boottime,
        *,
        step_threshold_s: float = STEP_THRESHOLD_S,
        slew_ratio: float = SLEW_RATIO,
    ) -> None:
        if not 0 < slew_ratio < 1:
            raise ValueError("slew_ratio must be in (0, 1)")
        self.wall = wall
        self.mono = mono
        self.step_threshold_s = step_threshold_s
        self.slew_ratio = slew_ratio
        self.steps: deque[ClockStep] = deque(maxlen=STEPS_KEPT)
        self.step_count = 0  # every step ever seen, also those `steps` no longer holds
        m = mono()
        self._offset = wall() - m  # stamp = monotonic + offset
        self._wall_offset = self._offset  # what the wall clock asked for at the last read
        self._last_mono = m
        self._last = m + self._offset

    def __call__(self) -> float:
        m = self.mono()
        w = self.wall()
        wall_offset = w - m
        jump_s = wall_offset - self._wall_offset
        self._wall_offset = wall_offset
        elapsed_s = max(0.0, m - self._last_mono)
        self._last_mono = m
        if wall_offset >= self._offset:
            self._offset = wall_offset
        else:  # behind the wall clock's wish: shed at most a share of the time that passed
            self._offset = max(wall_offset, self._offset - elapsed_s * self.slew_ratio)
        # in step with the wall clock (nearly always), its own value: no rounding on the way
        now = max(self._last, w if self._offset == wall_offset else m + self._offset)
        if abs(jump_s) > self.step_threshold_s:
            self.steps.append(ClockStep(now, jump_s))
            self.step_count += 1
        self._last = now
        return now

    def not_before(self, at: float) -> None:
        """Return more than `at` from now on (the last stored reading, after a restart).

        A wall clock behind `at` is then caught up with in small steps, as after a step back.
        """
        m = self.mono()
        if m + self._offset <= at:
            self._offset = at + 0.001 - m
            self._last = max(self._last, at)

    def new_steps(self, seen: int) -> list[ClockStep]:
        """The steps after the first `seen` (those still kept)."""
        missed = self.step_count - seen
        if missed <= 0:
            return []
        return list(self.steps)[-missed:]


__all__ = ["ClockStep", "ReadingClock", "boottime"]
