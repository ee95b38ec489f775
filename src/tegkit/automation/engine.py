"""What is due now: the pure decision core that the live runner and the simulation share.

No I/O and no clock of its own: the caller passes the time and the latest reading, and gets
back decisions, in the order they were scheduled:

- `Due`: carry it out. A Due either sets state (`setpoints`) or opens a firmware window
  (`firmware_window`; ask `decide_firmware` until it says Install or Closed), never both.
- `Held`: due, but it may not act now: the reading is stale or absent, or the site is off grid
  (or its grid status unknown) and the rule does not say `during_outage`. It stays pending and
  comes back as a Due at the first step where it may act, unless later rules have set the same
  settings meanwhile. A firmware window is never held: `decide_firmware` postpones it.
- `Missed`: a firmware window that closed before it could run; it is never run late.

State-setting rules are coalesced: when several fire before they can be carried out (on
start, after the process slept, while held), only the latest value of each setting is applied.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from tegkit.automation.plan import (
    DEFAULT_STALE_AFTER_S,
    SETTING_NAMES,
    FirmwareWindow,
    GridChange,
    Plan,
    Rule,
    Setpoints,
    WhenGrid,
    WhenSoe,
)
from tegkit.automation.schedule import LOOKBACK, Occurrence, occurrences, tariff_starts
from tegkit.models.vocabulary import is_off_grid
from tegkit.tariff import Tariff

#: a battery at or below its reserve plus this is not needed by the house: it may stop
NOT_NEEDED_MARGIN_APP_PERCENT: Final = 1.0
_TICK: Final = timedelta(microseconds=1)
_AHEAD: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Observation:
    """The latest reading of the site. None is "not known", never zero: an unknown grid
    status holds every rule that is not `during_outage`, like an outage does."""

    at_utc: datetime
    soe_app_percent: float | None = None
    grid_status: str | None = None
    #: > 0 discharging, < 0 charging (the gateway's sign)
    battery_w: float | None = None
    mode: str | None = None
    backup_reserve_app_percent: float | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """Carry out `setpoints`, or open `firmware_window` (one of the two)."""

    rule: Rule
    setpoints: Setpoints
    firmware_window: FirmwareWindow | None
    scheduled_at_utc: datetime
    #: carried out later than scheduled: on start, after a sleep, or released from Held
    catch_up: bool = False


@dataclass(frozen=True, slots=True)
class Held:
    """Due but may not act now, for `reason`; pending until it may (or is superseded)."""

    rule: Rule
    reason: str
    scheduled_at_utc: datetime


@dataclass(frozen=True, slots=True)
class Missed:
    """A firmware window that closed before it could run."""

    rule: Rule
    scheduled_at_utc: datetime


Judgement = Due | Held | Missed


class Engine:
    """Decides, step by step, which of a plan's rules are due. Call `start` once, then
    `step` with each new time and reading (None when there is none)."""

    def __init__(self, plan: Plan, tz: ZoneInfo, late_grace_s: float = 300.0) -> None:
        self.plan = plan
        self.tz = tz
        self.late_grace_s = late_grace_s
        self._last_utc: datetime | None = None
        self._ahead: list[Occurrence] = []  # the timed firings in [from, until)
        self._ahead_from_utc = self._ahead_until_utc = datetime.min.replace(tzinfo=UTC)
        self._pending: list[Due] = []  # held state-setting Dues, oldest first
        self._condition_rules = [r for r in plan.rules if isinstance(r.trigger, WhenSoe | WhenGrid)]
        self._soe_armed = {r: True for r in self._condition_rules if isinstance(r.trigger, WhenSoe)}
        # The grid's normal state is up: starting in an outage counts as it going down.
        self._off_grid = False

    def start(
        self,
        now_utc: datetime,
        observation: Observation | None,
        ran_until_utc: datetime | None = None,
    ) -> list[Judgement]:
        """Catch up: the settings in force now (per setting, the latest timed rule within
        LOOKBACK), once; each firmware window's latest opening, due if still open, else
        Missed; and the conditions already true in `observation`.

        `ran_until_utc`: when a previous run of this plan was last seen acting (its latest
        outcome); windows that opened before it were that run's to carry out or report, so
        a restart does not report them missed again."""
        if self._last_utc is not None:
            raise RuntimeError("Engine.start was already called")
        self._last_utc = now_utc
        fired = self._timed(now_utc - LOOKBACK, now_utc)
        # a window's earlier openings are long closed: report only its latest
        latest = {o.rule: o for o in fired if o.rule.firmware_window}
        fired = [o for o in fired if not o.rule.firmware_window or latest[o.rule] is o]
        if ran_until_utc is not None:
            fired = [o for o in fired if not o.rule.firmware_window or o.at_utc > ran_until_utc]
        return self._decide(now_utc, observation, fired, starting=True)

    def step(self, now_utc: datetime, observation: Observation | None) -> list[Judgement]:
        """Everything due since the last step (timed rules in (last, now], at most LOOKBACK
        back), the conditions `observation` meets, and held rules that may now act."""
        if self._last_utc is None:
            raise RuntimeError("call Engine.start before Engine.step")
        fired: list[Occurrence] = []
        if now_utc > self._last_utc:  # a clock set back fires nothing twice
            fired = self._timed(max(self._last_utc + _TICK, now_utc - LOOKBACK), now_utc)
            self._last_utc = now_utc
        return self._decide(now_utc, observation, fired, starting=False)

    def next_actions(self, now_utc: datetime, horizon: timedelta) -> list[Occurrence]:
        """The timed firings in [now, now + horizon), for display."""
        return occurrences(self.plan, self.tz, now_utc, now_utc + horizon)

    def decide_firmware(
        self, due: Due, now_utc: datetime, observation: Observation | None
    ) -> FirmwareDecision:
        """`decide_firmware` for a Due firmware window, with the plan's tariff and zone."""
        if due.firmware_window is None:
            raise ValueError(f"rule {due.rule.name!r}: this Due opens no firmware window")
        return decide_firmware(
            due.firmware_window,
            due.scheduled_at_utc,
            now_utc,
            observation,
            self.plan.tariff,
            self.tz,
            stale_after_s=self.plan.stale_after_s,
        )

    # --- the steps of a decision ----------------------------------------------------------

    def _timed(self, first_utc: datetime, last_utc: datetime) -> list[Occurrence]:
        """The timed firings in [first, last], from a day's firings computed ahead, so that
        steps a minute apart cost a lookup, not a schedule (a simulated year steps often)."""
        if not self._ahead_from_utc <= first_utc <= last_utc < self._ahead_until_utc:
            self._ahead_from_utc, self._ahead_until_utc = first_utc, last_utc + _AHEAD
            self._ahead = occurrences(self.plan, self.tz, first_utc, self._ahead_until_utc)
        low = bisect_left(self._ahead, first_utc, key=_at)
        return self._ahead[low : bisect_right(self._ahead, last_utc, key=_at)]

    def _decide(
        self,
        now_utc: datetime,
        observation: Observation | None,
        fired: list[Occurrence],
        starting: bool,
    ) -> list[Judgement]:
        firings = [(o.rule, o.at_utc) for o in fired] + self._conditions_met(now_utc, observation)
        if not firings and not self._pending:
            return []  # the usual step: nothing fired, nothing waits
        decisions: list[Judgement] = []
        fresh: list[Due] = []
        for rule, at_utc in firings:
            # on start, every timed firing is one the engine was not running for
            late = (starting and rule.timed) or (
                now_utc - at_utc
            ).total_seconds() > self.late_grace_s
            window = rule.firmware_window
            if window is not None:
                closed = now_utc >= at_utc + timedelta(minutes=window.duration_min)
                decisions.append(
                    Missed(rule, at_utc) if closed else Due(rule, Setpoints(), window, at_utc, late)
                )
            if rule.sets_state:
                fresh.append(Due(rule, rule.setpoints, None, at_utc, late))
        actions = self._pending + fresh  # pending ones are coalesced already
        if fresh:
            actions = _coalesce(sorted(actions, key=_scheduled))
        held_before = {(d.rule, d.scheduled_at_utc) for d in self._pending}
        self._pending = []
        for action in actions:
            stale_after_s, during_outage = self.plan.stale_after_s, action.rule.during_outage
            reason = _cannot_act(observation, now_utc, stale_after_s, during_outage)
            if reason is None:
                decisions.append(action)
                continue
            if (action.rule, action.scheduled_at_utc) not in held_before:
                decisions.append(Held(action.rule, reason, action.scheduled_at_utc))
            self._pending.append(replace(action, catch_up=True))  # when released, it is late
        return sorted(decisions, key=_scheduled)

    def _conditions_met(
        self, now_utc: datetime, observation: Observation | None
    ) -> list[tuple[Rule, datetime]]:
        if not self._condition_rules or observation is None or self._stale(now_utc, observation):
            return []  # a crossing is only ever judged on a fresh reading
        off_grid = is_off_grid(observation.grid_status)
        grid_change: GridChange | None = None
        if off_grid is not None and off_grid != self._off_grid:
            self._off_grid = off_grid
            grid_change = "down" if off_grid else "up"
        today = observation.at_utc.astimezone(self.tz).date()
        met = []
        for rule in self._condition_rules:
            trigger = rule.trigger
            if isinstance(trigger, WhenSoe):
                fires = self._soe_fires(rule, trigger, observation.soe_app_percent, today)
            elif isinstance(trigger, WhenGrid):
                fires = trigger.change == grid_change and rule.days.includes(today)
            else:
                continue
            if fires:
                met.append((rule, observation.at_utc))
        return met

    def _soe_fires(self, rule: Rule, trigger: WhenSoe, soe: float | None, today: date) -> bool:
        """Fires once on crossing past a threshold; re-arms `hysteresis` back on the other
        side. On a day the rule skips, a crossing stays armed (it may fire on a later day)."""
        if soe is None:
            return False
        below, above = trigger.below_app_percent, trigger.above_app_percent
        if self._soe_armed[rule]:
            crossed = (below is not None and soe < below) or (above is not None and soe > above)
            if crossed and rule.days.includes(today):
                self._soe_armed[rule] = False
                return True
            return False
        margin = trigger.hysteresis_app_percent
        self._soe_armed[rule] = (below is None or soe >= below + margin) and (
            above is None or soe <= above - margin
        )
        return False

    def _stale(self, now_utc: datetime, observation: Observation) -> bool:
        return (now_utc - observation.at_utc).total_seconds() > self.plan.stale_after_s


def _cannot_act(
    observation: Observation | None, now_utc: datetime, stale_after_s: float, during_outage: bool
) -> str | None:
    """Why nothing may act on this reading (absent, stale, or unless `during_outage`: off
    grid, or of a grid status that says neither), in plain words; None when it may."""
    if observation is None:
        return "no reading of the gateway yet"
    age_s = (now_utc - observation.at_utc).total_seconds()
    if age_s > stale_after_s:
        return f"the latest reading is {age_s:.0f} s old (limit {stale_after_s:g} s)"
    if during_outage:
        return None
    status = observation.grid_status
    off_grid = is_off_grid(status)
    if off_grid:
        return "site is off grid"
    if off_grid is None:
        if status is None:
            return "the grid status is not reported"
        return f"grid status {str(status)!r} says neither on nor off grid"
    return None


def _at(occurrence: Occurrence) -> datetime:
    return occurrence.at_utc


def _scheduled(decision: Judgement) -> datetime:
    return decision.scheduled_at_utc


def _coalesce(actions: list[Due]) -> list[Due]:
    """Per setting, the latest action wins; an action left with nothing to set is dropped."""
    claimed: set[str] = set()
    kept = []
    for action in reversed(actions):
        narrowed = replace(action.setpoints, **dict.fromkeys(claimed))
        if narrowed.is_empty():
            continue
        claimed.update(name for name in SETTING_NAMES if getattr(narrowed, name) is not None)
        kept.append(action if narrowed == action.setpoints else replace(action, setpoints=narrowed))
    return kept[::-1]


# --- the firmware window ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Install:
    """Safe now: check for an update and install it."""


@dataclass(frozen=True, slots=True)
class Postpone:
    """Not safe now, for `reason`; ask again at `retry_at_utc`."""

    reason: str
    retry_at_utc: datetime


@dataclass(frozen=True, slots=True)
class Closed:
    """The window is over; nothing is installed."""

    reason: str


FirmwareDecision = Install | Postpone | Closed


def decide_firmware(
    window: FirmwareWindow,
    opened_at_utc: datetime,
    now_utc: datetime,
    observation: Observation | None,
    tariff: Tariff | None,
    tz: ZoneInfo,
    *,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> FirmwareDecision:
    """Whether an open firmware window may install now: on a fresh reading, the grid up, no
    avoided tariff period in force or starting within `margin_min`, and the battery idle or
    not needed (at or near its reserve). Without a tariff only the grid and the battery are
    judged (a plan cannot avoid periods without one). A postponement retries every
    `retry_every_min`, never past the window's end; from its end on, the window is Closed."""
    closes_at = opened_at_utc + timedelta(minutes=window.duration_min)
    if now_utc >= closes_at:
        opened = opened_at_utc.astimezone(tz).strftime("%H:%M")
        return Closed(f"the {window.duration_min}-minute window opened at {opened} has closed")
    reason = _firmware_blocker(window, now_utc, observation, tariff, tz, stale_after_s)
    if reason is None:
        return Install()
    return Postpone(reason, min(now_utc + timedelta(minutes=window.retry_every_min), closes_at))


def _firmware_blocker(
    window: FirmwareWindow,
    now_utc: datetime,
    observation: Observation | None,
    tariff: Tariff | None,
    tz: ZoneInfo,
    stale_after_s: float,
) -> str | None:
    if reason := _cannot_act(observation, now_utc, stale_after_s, during_outage=False):
        return reason
    assert observation is not None  # _cannot_act refuses an absent reading
    if tariff is not None and window.avoid_periods:
        current = tariff.period_at(now_utc.astimezone(tz))
        if current in window.avoid_periods:
            return f"{current} is in force"
        soon = now_utc + timedelta(minutes=window.margin_min)
        avoided = tariff_starts(
            tariff, tz, lambda p: p.period_name in window.avoid_periods, now_utc, soon + _TICK
        )
        if avoided:
            local = avoided[0].astimezone(tz)
            period = tariff.period_at(local)
            return f"{period} starts at {local:%H:%M}, within {window.margin_min} min"
    battery_w, soe = observation.battery_w, observation.soe_app_percent
    reserve = observation.backup_reserve_app_percent
    if battery_w is not None and abs(battery_w) <= window.idle_battery_w:
        return None
    if soe is not None and reserve is not None and soe <= reserve + NOT_NEEDED_MARGIN_APP_PERCENT:
        return None
    if battery_w is None:
        return "the battery's power is not known"
    flow = "discharging" if battery_w > 0 else "charging"
    return (
        f"the battery is {flow} {abs(battery_w):.0f} W (idle is at most "
        f"{window.idle_battery_w:g} W) and not at its reserve"
    )


__all__ = [
    "NOT_NEEDED_MARGIN_APP_PERCENT",
    "Closed",
    "Due",
    "Engine",
    "FirmwareDecision",
    "Held",
    "Install",
    "Judgement",
    "Missed",
    "Observation",
    "Postpone",
    "decide_firmware",
]
