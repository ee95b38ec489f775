"""Carry a plan out on a live gateway: what the engine says is due, done, checked and reported.

The engine (engine.py) decides WHAT is due and when (pure, no I/O); the runner does it through
an `Actuator` (actuator.py for a standalone `teg auto run`; the monitor brings its own over
its poller and request budget) and reports every outcome as an `ActionEvent` to a sink:

- idempotent: the gateway's settings are read first; a rule whose settings are already in
  force is "skipped" (a reserve within route.RESERVE_MATCH_RAW_PERCENT is the same reserve);
- verified: after a change the settings are read back; a change not seen is tried again;
- retried with exponential back-off and jitter on 429 (its Retry-After honoured), 503,
  timeouts and an unreachable gateway, a bounded number of times and never past the next
  occurrence of a rule that sets the same setting; a change that never takes is "failed"
  and logged as a warning;
- a firmware window checks the update state and starts the update only when
  `decide_firmware` says Install; otherwise "postponed" with the reason, re-checked until the
  window closes;
- dry run: what would be done is reported ("dry_run") and nothing is changed.

The clock is injectable (`now`, `sleep`), so tests run the runner on the simulator's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, get_args
from zoneinfo import ZoneInfo

from tegkit import percent
from tegkit.automation.engine import (
    Closed,
    Due,
    Engine,
    Held,
    Install,
    Missed,
    Observation,
    Postpone,
)
from tegkit.automation.plan import SETTING_NAMES, Plan, Rule, Setpoints
from tegkit.automation.schedule import occurrences
from tegkit.errors import (
    ApiError,
    GatewayError,
    RateLimitedError,
    RequestBudgetExceededError,
    RequestError,
)
from tegkit.models import UpdateState
from tegkit.models.vocabulary import is_off_grid
from tegkit.route import RESERVE_MATCH_RAW_PERCENT, ChangeNotSeenError

_LOG = logging.getLogger("tegkit.automation")

ActionResult = Literal[
    "done", "skipped", "retry", "failed", "postponed", "dry_run", "refused", "missed"
]
RESULTS: Final[tuple[ActionResult, ...]] = get_args(ActionResult)

#: update states (GET /api/system/update/status) of an update under way: never start another
UPDATE_UNDER_WAY: Final = frozenset(
    {UpdateState.CHECKING, UpdateState.DOWNLOADING, UpdateState.DOWNLOADED, UpdateState.STAGED}
)


@dataclass(frozen=True, slots=True)
class ActionEvent:
    """One outcome of the plan on the gateway: a change done, skipped, retried, failed..."""

    at_utc: dt.datetime
    rule: str
    result: ActionResult
    detail: str
    #: the settings the rule puts in force (None for a firmware window)
    setpoints: Setpoints | None = None
    #: when the rule was due (its occurrence); a retry keeps its first occurrence
    scheduled_at_utc: dt.datetime | None = None
    attempt: int = 1

    def fields(self) -> dict[str, Any]:
        """As JSON: times in ISO 8601 UTC, the settings that are given."""
        points = None
        if self.setpoints is not None:
            points = {
                name: getattr(self.setpoints, name)
                for name in SETTING_NAMES
                if getattr(self.setpoints, name) is not None
            }
        return {
            "at_utc": self.at_utc.isoformat(),
            "rule": self.rule,
            "result": self.result,
            "detail": self.detail,
            "setpoints": points,
            "scheduled_at_utc": (
                None if self.scheduled_at_utc is None else self.scheduled_at_utc.isoformat()
            ),
            "attempt": self.attempt,
        }

    def line(self) -> str:
        """One line for a log: when, rule, result, detail."""
        return f"{self.at_utc:%Y-%m-%dT%H:%M:%SZ} {self.rule!r}: {self.result}: {self.detail}"


Sink = Callable[[ActionEvent], None]


class Actuator(Protocol):
    """How the runner reads and changes one gateway.

    Errors are the client's: RateLimitedError (429), GatewayBusyError (503), RequestError
    (unreachable, timed out) and RequestBudgetExceededError are tried again; the rest fail.
    """

    async def observe(self) -> Observation:
        """A fresh reading (state of energy, grid status, battery power, mode, reserve)."""
        ...

    async def current(self) -> Setpoints:
        """The settings as the gateway reports them now; None where they cannot be read."""
        ...

    async def apply(self, setpoints: Setpoints) -> str:
        """Send the given settings (mode and reserve in ONE commit, through tegkit.route;
        grid charging / export rule / storm watch through the cloud); returns a short note
        on how. A change sent but not seen raises route.ChangeNotSeenError."""
        ...

    async def update_state(self) -> str:
        """The firmware update state (GET /api/system/update/status `state`)."""
        ...

    async def start_update(self) -> None:
        """Check for a firmware update and install it (POST /api/system/update)."""
        ...


#: the longest Retry-After waited out; a longer one is taken as this
MAX_RETRY_AFTER_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with jitter: first_delay_s, doubling, capped at max_delay_s, each
    delay moved by up to +-jitter_ratio; a Retry-After is waited at least. `tries` counts the
    first one."""

    tries: int = 5
    first_delay_s: float = 15.0
    max_delay_s: float = 600.0
    jitter_ratio: float = 0.25

    def delay_s(
        self, failed_tries: int, rng: random.Random, retry_after_s: float | None = None
    ) -> float:
        base = min(self.max_delay_s, self.first_delay_s * 2.0 ** max(0, failed_tries - 1))
        delay = min(
            base * (1 + rng.uniform(-self.jitter_ratio, self.jitter_ratio)), self.max_delay_s
        )
        if retry_after_s is not None:  # the gateway's word, waited out (up to an hour)
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return max(delay, 0.0)


def retry_after_s(exc: BaseException) -> float | Literal[False] | None:
    """How long to wait before trying again after `exc`: seconds (the gateway said), None
    (back off by the policy), or False when trying again cannot help."""
    if isinstance(exc, RateLimitedError):
        return exc.retry_after_s
    if isinstance(exc, RequestBudgetExceededError):
        return exc.wait_s
    if isinstance(exc, RequestError | TimeoutError | ChangeNotSeenError):
        return None
    if isinstance(exc, ApiError) and exc.status in (502, 503, 504):
        return None
    return False


def unmet(wanted: Setpoints, current: Setpoints) -> Setpoints:
    """The settings of `wanted` that `current` does not show (None: met or not asked).

    A setting the gateway cannot report is unmet: it is sent, never assumed."""
    missing: dict[str, Any] = {}
    for name in SETTING_NAMES:
        want = getattr(wanted, name)
        if want is None:
            continue
        have = getattr(current, name)
        if name == "backup_reserve_app_percent":
            met = (
                have is not None
                and abs(percent.app_to_raw(want) - percent.app_to_raw(have))
                <= RESERVE_MATCH_RAW_PERCENT
            )
        else:
            met = have is not None and str(have) == str(want)
        if not met:
            missing[name] = want
    return Setpoints(**missing)


def describe(points: Setpoints) -> str:
    """Settings in plain words: "mode self_consumption, reserve 5 %"."""
    words = {
        "mode": "mode {}",
        "backup_reserve_app_percent": "reserve {:g} %",
        "grid_charging": "grid charging {}",
        "export_rule": "export {}",
        "storm_watch": "storm watch {}",
    }
    parts = []
    for name in SETTING_NAMES:
        value = getattr(points, name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        parts.append(words[name].format(value))
    return ", ".join(parts) or "nothing"


@dataclass(slots=True)
class _Task:
    """A due action being carried out: its next try and how long it may go on."""

    due: Due
    not_before_utc: dt.datetime
    #: no try at or after this (the next occurrence of the same setting, the window's close)
    until_utc: dt.datetime | None
    failed_tries: int = 0
    last_error: str = ""
    postponed: int = 0

    @property
    def rule(self) -> Rule:
        return self.due.rule


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _wait_or_stop(delay_s: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)


@dataclass(slots=True)
class Runner:
    """Runs `plan` on the gateway behind `actuator`; see the module docstring.

    Drive it with `run(stop)` (standalone: it sleeps until the next thing to do), or call
    `tick(now_utc)` from another loop (the monitor's poll loop) as often as it likes.
    """

    plan: Plan
    actuator: Actuator
    tz: ZoneInfo
    sink: Sink
    dry_run: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], dt.datetime] = _utc_now
    #: waits `seconds` or until `stop` is set; tests move the simulator's clock instead
    sleep: Callable[[float, asyncio.Event], Awaitable[None]] = _wait_or_stop
    #: how often run() looks again while a rule waits for a fresh reading, or for conditions
    recheck_s: float = 60.0
    #: the longest run() sleeps without looking at the gateway
    max_sleep_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    #: when a previous run was last seen acting (Engine.start): its windows are not re-reported
    ran_until_utc: dt.datetime | None = None
    engine: Engine = field(init=False)
    _tasks: list[_Task] = field(init=False, default_factory=list)
    _started: bool = field(init=False, default=False)
    #: rules the engine holds (stale reading, outage), by (rule, scheduled at): looked at again
    _waiting: dict[tuple[str, dt.datetime], None] = field(init=False, default_factory=dict)
    _last_observation: Observation | None = field(init=False, default=None)
    #: why the latest reading failed (said with a rule held for want of a fresh one)
    _read_error: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.engine = Engine(self.plan, self.tz)

    # --- driving it -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tick, sleep until the next thing to do, and again, until `stop` is set."""
        while not stop.is_set():
            await self.tick(self.now())
            if stop.is_set():
                break
            now = self.now()
            delay = (self.next_wake_utc(now) - now).total_seconds()
            await self.sleep(max(0.0, delay), stop)

    def next_wake_utc(self, now_utc: dt.datetime) -> dt.datetime:
        """When the runner has something to do next (a rule, a retry, a re-check)."""
        wake = now_utc + dt.timedelta(seconds=self.max_sleep_s)
        upcoming = self.next_actions(1, now_utc)
        if upcoming:
            wake = min(wake, upcoming[0][0])
        for task in self._tasks:
            wake = min(wake, task.not_before_utc)
        if self._waiting or any(not rule.timed for rule in self.plan.rules):
            wake = min(wake, now_utc + dt.timedelta(seconds=self.recheck_s))
        return max(wake, now_utc)

    def next_actions(
        self, n: int, now_utc: dt.datetime | None = None
    ) -> list[tuple[dt.datetime, Rule]]:
        """The next `n` timed actions after `now_utc` (looking up to 8 days ahead)."""
        now = now_utc or self.now()
        found = occurrences(self.plan, self.tz, now, now + dt.timedelta(days=8))
        return [(o.at_utc, o.rule) for o in found if o.at_utc > now][:n]

    async def tick(self, now_utc: dt.datetime | None = None) -> list[ActionEvent]:
        """Do what is due at `now_utc`: new rules from the engine, retries, re-checks."""
        now = now_utc or self.now()
        observation = await self._observe()
        events: list[ActionEvent] = []

        def report(*new: ActionEvent) -> None:
            for event in new:  # as it happens: a sink may read the gateway's state then
                self._report(event)
                events.append(event)

        if self._started:
            items = self.engine.step(now, observation)
        else:
            self._started = True
            items = self.engine.start(now, observation, self.ran_until_utc)
        for item in items:
            if isinstance(item, Missed):
                report(self._missed(now, item))
            elif isinstance(item, Held):
                self._waiting[(item.rule.name, item.scheduled_at_utc)] = None
                report(self._refused(now, item))
            else:
                self._released(item)
                task = self._task(now, item)  # drops an older try of the same rule first
                self._tasks.append(task)
        for task in sorted(self._tasks, key=lambda t: t.not_before_utc):
            if task.not_before_utc <= now and task in self._tasks:
                report(*await self._carry_out(now, task, observation))
        return events

    # --- the engine's answers -------------------------------------------------------------

    def _missed(self, now: dt.datetime, item: Missed) -> ActionEvent:
        opened = item.scheduled_at_utc.astimezone(self.tz)
        detail = f"the window of {opened:%a %H:%M} closed before the runner could act; not run late"
        return ActionEvent(now, item.rule.name, "missed", detail, None, item.scheduled_at_utc)

    def _refused(self, now: dt.datetime, item: Held) -> ActionEvent:
        # The engine says it once per occurrence, and offers it again when it may act.
        why = "" if self._read_error is None else f" (reading the gateway: {self._read_error})"
        detail = f"not now: {item.reason}{why}; done once it may be"
        return ActionEvent(
            now, item.rule.name, "refused", detail, item.rule.setpoints, item.scheduled_at_utc
        )

    def _released(self, due: Due) -> None:
        """A Due ends the wait of its rule and of anything held before it (the engine
        releases held rules together, and drops those a later rule overrides)."""
        if due.firmware_window is not None:
            return
        self._waiting = {
            key: None
            for key in self._waiting
            if key[0] != due.rule.name and key[1] > due.scheduled_at_utc
        }

    def _task(self, now: dt.datetime, due: Due) -> _Task:
        # A newer occurrence of the same rule replaces one still being retried.
        self._tasks = [t for t in self._tasks if t.rule.name != due.rule.name]
        until = None
        if due.firmware_window is not None:
            until = due.scheduled_at_utc + dt.timedelta(minutes=due.firmware_window.duration_min)
        else:
            until = self._next_setting_change(due)
        return _Task(due, now, until)

    def _next_setting_change(self, due: Due) -> dt.datetime | None:
        """The next occurrence of a timed rule that sets any of the settings `due` sets."""
        names = {n for n in SETTING_NAMES if getattr(due.setpoints, n) is not None}
        start = due.scheduled_at_utc
        for occ in occurrences(self.plan, self.tz, start, start + dt.timedelta(days=8)):
            if occ.at_utc <= start:
                continue
            if any(getattr(occ.rule.setpoints, n) is not None for n in names):
                return occ.at_utc
        return None

    # --- carrying one out -----------------------------------------------------------------

    async def _carry_out(
        self, now: dt.datetime, task: _Task, observation: Observation | None
    ) -> list[ActionEvent]:
        try:
            if task.due.firmware_window is not None:
                return await self._firmware(now, task, observation)
            if task.until_utc is not None and now >= task.until_utc:
                self._tasks.remove(task)
                return [self._gave_up(now, task, "a later rule sets it now")]
            if task.failed_tries and not self._may_retry(now, task, observation):
                # The engine let it act; a retry waits, uncounted, while that no longer holds.
                task.not_before_utc = now + dt.timedelta(seconds=self.recheck_s)
                return []
            return await self._setpoints(now, task)
        except (GatewayError, TimeoutError) as exc:
            return [self._failed_try(now, task, exc)]

    def _may_retry(self, now: dt.datetime, task: _Task, observation: Observation | None) -> bool:
        """A fresh reading, and on grid unless the rule acts during an outage."""
        if observation is None:
            return False
        if (now - observation.at_utc).total_seconds() > self.plan.stale_after_s:
            return False
        return task.rule.during_outage or is_off_grid(observation.grid_status) is False

    async def _setpoints(self, now: dt.datetime, task: _Task) -> list[ActionEvent]:
        wanted = task.due.setpoints
        current = await self.actuator.current()
        todo = unmet(wanted, current)
        if todo.is_empty():
            self._tasks.remove(task)
            detail = f"already in force: {describe(wanted)}{self._late(task)}"
            if task.failed_tries:
                detail = f"in force after {task.failed_tries + 1} tries: {describe(wanted)}"
                return [self._event(now, task, "done", detail)]
            return [self._event(now, task, "skipped", detail)]
        if self.dry_run:
            self._tasks.remove(task)
            return [self._event(now, task, "dry_run", f"would set {describe(todo)}")]
        note = await self.actuator.apply(todo)
        after = await self.actuator.current()
        still = unmet(todo, after)
        unreadable = Setpoints(
            **{n: getattr(still, n) for n in SETTING_NAMES if getattr(after, n) is None}
        )
        if still != unreadable:  # something the gateway reports is not what was sent
            raise ChangeNotSeenError(f"sent {describe(todo)} ({note}); it reports otherwise")
        self._tasks.remove(task)
        detail = f"set {describe(todo)}; {note}{self._late(task)}"
        if not unreadable.is_empty():
            detail += f" ({describe(unreadable)} could not be read back)"
        return [self._event(now, task, "done", detail)]

    async def _firmware(
        self, now: dt.datetime, task: _Task, observation: Observation | None
    ) -> list[ActionEvent]:
        if self.dry_run:
            self._tasks.remove(task)
            return [
                self._event(
                    now, task, "dry_run", "would check for a firmware update and install it if safe"
                )
            ]
        decision = self.engine.decide_firmware(task.due, now, observation)
        if isinstance(decision, Closed):
            self._tasks.remove(task)
            return [self._gave_up(now, task, decision.reason)]
        if isinstance(decision, Postpone):
            task.postponed += 1
            task.not_before_utc = decision.retry_at_utc
            local = decision.retry_at_utc.astimezone(self.tz)
            detail = f"{decision.reason}; looking again at {local:%H:%M}"
            return [self._event(now, task, "postponed", detail)]
        assert isinstance(decision, Install)
        state = await self.actuator.update_state()
        self._tasks.remove(task)
        if state in UPDATE_UNDER_WAY:
            return [self._event(now, task, "skipped", f"an update is already under way ({state})")]
        await self.actuator.start_update()
        return [self._event(now, task, "done", "update check started: installs if one is found")]

    def _late(self, task: _Task) -> str:
        if not task.due.catch_up:
            return ""
        due = task.due.scheduled_at_utc.astimezone(self.tz)
        return f" (catching up: due at {due:%a %H:%M})"

    # --- failures -------------------------------------------------------------------------

    def _failed_try(self, now: dt.datetime, task: _Task, exc: BaseException) -> ActionEvent:
        why = str(exc) or type(exc).__name__
        task.failed_tries += 1
        task.last_error = why
        wait = retry_after_s(exc)
        if wait is False:
            self._tasks.remove(task)
            return self._failed(now, task, why)
        if task.failed_tries >= self.retry.tries:
            self._tasks.remove(task)
            return self._failed(now, task, f"{task.failed_tries} tries; the last: {why}")
        delay = self.retry.delay_s(task.failed_tries, self.rng, wait)
        at = now + dt.timedelta(seconds=delay)
        if task.until_utc is not None and at >= task.until_utc:
            self._tasks.remove(task)
            return self._failed(
                now, task, f"no time for another try before {task.until_utc:%H:%M}Z; {why}"
            )
        task.not_before_utc = at
        return self._event(now, task, "retry", f"{why}; trying again in {delay:.0f} s")

    def _gave_up(self, now: dt.datetime, task: _Task, why: str) -> ActionEvent:
        if task.due.firmware_window is not None:
            return self._event(now, task, "missed", f"{why}: the update was not installed")
        return self._failed(now, task, f"{why}; the last error: {task.last_error or 'none'}")

    def _failed(self, now: dt.datetime, task: _Task, why: str) -> ActionEvent:
        event = self._event(now, task, "failed", why)
        _LOG.warning("automation: %s", event.line())
        return event

    def _event(
        self, now: dt.datetime, task: _Task, result: ActionResult, detail: str
    ) -> ActionEvent:
        due = task.due
        return ActionEvent(
            now,
            due.rule.name,
            result,
            detail,
            None if due.firmware_window is not None else due.setpoints,
            due.scheduled_at_utc,
            task.failed_tries + (0 if result == "retry" else 1) + task.postponed,
        )

    # --- reading --------------------------------------------------------------------------

    async def _observe(self) -> Observation | None:
        """A fresh reading, or the last one (which the engine then finds stale) when the
        gateway cannot be read now."""
        try:
            self._last_observation = await self.actuator.observe()
            self._read_error = None
        except (GatewayError, TimeoutError) as exc:
            self._read_error = str(exc) or type(exc).__name__
            _LOG.info("automation: no fresh reading: %s", self._read_error)
        return self._last_observation

    def _report(self, event: ActionEvent) -> None:
        try:
            self.sink(event)
        except Exception:  # a sink that fails must not stop the plan
            _LOG.exception("automation: the event sink failed on %s", event.line())


__all__ = [
    "RESULTS",
    "UPDATE_UNDER_WAY",
    "ActionEvent",
    "ActionResult",
    "Actuator",
    "RetryPolicy",
    "Runner",
    "Sink",
    "describe",
    "retry_after_s",
    "unmet",
]
