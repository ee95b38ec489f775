"""The owner's plan inside the monitor: one runner per gateway, on that gateway's poller.

`teg monitor --plan PLAN` runs `tegkit.automation.runner.Runner` for each gateway that has a
plan, with an actuator over the gateway's `Poller`, so the plan shares the poller's one
request budget:

- observations are the poller's latest reading, stamped when it was taken (a stale one is
  the engine's to refuse): the plan never polls on its own;
- settings are read (one /api/operation read) and changed through `Poller.read_operation`
  and `Poller.change_operation` (route, budget, commit, read-back); grid charging, the export
  rule and storm watch through the same cloud the dashboard's changes use (--cloud-profile);
- the firmware window's update check and start go through the poller's budget too.

The runner is ticked after each new reading (and at least every few seconds without one),
on the monitor's clock. Every outcome becomes an event of kind "automation" in the store
(its rule and result in their own columns), a count for /metrics, a log line (failures are
warnings: the runner logs them) and an entry of /api/automation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from tegkit import percent
from tegkit.automation.actuator import (
    check_cloud_setpoints,
    operation_setpoints,
    send_cloud_setpoints,
    with_cloud_setpoints,
)
from tegkit.automation.describe import action_text, condition_text, days_text
from tegkit.automation.engine import Observation
from tegkit.automation.plan import (
    SETTING_NAMES,
    AtTime,
    Plan,
    Rule,
    Setpoints,
    WhenPriceAbove,
    WhenTariffPeriod,
)
from tegkit.automation.runner import RESULTS, ActionEvent, Runner
from tegkit.automation.schedule import LOOKBACK, occurrences
from tegkit.errors import GatewayError
from tegkit.logs import set_gateway as set_log_gateway
from tegkit.monitor.poller import Poller
from tegkit.monitor.readings import Event
from tegkit.monitor.sitetz import tz_name, zone
from tegkit.route import CLOUD_HOW_TO, ChangeNotSeenError

log = logging.getLogger(__name__)

#: the store's event kind of what the plan did
EVENT_KIND: Final = "automation"
#: outcomes kept in memory for /api/automation (the store keeps them all)
RECENT_OUTCOMES: Final = 20
#: how far ahead the next planned actions are looked for (rules on a few dates a year)
HORIZON: Final = dt.timedelta(days=366)
_CHUNK: Final = dt.timedelta(days=31)


# --- what a plan will do, in words and as JSON (shared with `teg auto next`) ---------------


def planned_actions(
    plan: Plan, tz: ZoneInfo, after_utc: dt.datetime, count: int
) -> list[tuple[dt.datetime, Rule]]:
    """The next `count` timed actions strictly after `after_utc`, looking up to a year ahead."""
    found: list[tuple[dt.datetime, Rule]] = []
    start, end = after_utc, after_utc + HORIZON
    while start < end and len(found) < count:
        stop = min(end, start + _CHUNK)
        found += [(o.at_utc, o.rule) for o in occurrences(plan, tz, start, stop)]
        start = stop
    return [(at, rule) for at, rule in found if at > after_utc][:count]


def action_json(at_utc: dt.datetime, rule: Rule, tz: ZoneInfo) -> dict[str, Any]:
    """One planned action: when (UTC, epoch s and site-local) and what it does."""
    local = at_utc.astimezone(tz)
    return {
        "at_utc": at_utc.isoformat(),
        "at": at_utc.timestamp(),
        "at_local": local.isoformat(),
        "zone": local.tzname(),
        "rule": rule.name,
        "what": action_text(rule, local),
        "setpoints": setpoints_json(rule.setpoints),
        "firmware_window": rule.firmware_window is not None,
    }


def rule_json(rule: Rule) -> dict[str, Any]:
    """A rule as /api/automation lists it: its name, trigger and days in words, what it does."""
    return {
        "name": rule.name,
        "when": trigger_words(rule),
        "days": days_text(rule.days) or "every day",
        "what": action_text(rule),
        "timed": rule.timed,
        "during_outage": rule.during_outage,
    }


def setpoints_json(points: Setpoints) -> dict[str, Any]:
    return {n: getattr(points, n) for n in SETTING_NAMES if getattr(points, n) is not None}


def trigger_words(rule: Rule) -> str:
    """When a rule fires, in a few words: "at 07:55", "when peak starts", "whenever ..."."""
    trigger = rule.trigger
    if isinstance(trigger, AtTime):
        return f"at {trigger.minute_of_day // 60:02d}:{trigger.minute_of_day % 60:02d}"
    if isinstance(trigger, WhenTariffPeriod):
        return f"when {trigger.period} starts"
    if isinstance(trigger, WhenPriceAbove):
        return f"when the price rises above {trigger.buy_per_kwh:g} per kWh"
    # a condition: its words as `teg auto check` says them, without the action
    return condition_text(rule).split(":", 1)[0]


# --- the gateway side: an Actuator over the poller -------------------------------------------


class NoReadingError(GatewayError):
    """The poller has no reading of the gateway yet (the runner waits for one)."""


#: what to do when a plan needs the cloud and the monitor has none for this gateway
CLOUD_HOW_TO_MONITOR: Final = f"{CLOUD_HOW_TO} (teg monitor --cloud-profile)"


@dataclass(slots=True)
class PollerActuator:
    """runner.Actuator over a monitor's `Poller`: its readings, its budget, its route."""

    poller: Poller

    async def observe(self) -> Observation:
        g = self.poller.gateway
        reading = g.reading
        if reading is None:
            raise NoReadingError(f"{g.name}: no reading yet")
        soe = reading.soe_raw_percent
        reserve = g.backup_reserve_raw_percent
        return Observation(
            at_utc=dt.datetime.fromtimestamp(reading.taken_at, dt.UTC),
            soe_app_percent=None if soe is None else round(percent.raw_to_app(soe), 2),
            grid_status=reading.grid_status,
            battery_w=reading.battery_w,
            mode=g.mode,
            backup_reserve_app_percent=(
                None if reserve is None else round(percent.raw_to_app(reserve), 2)
            ),
        )

    async def current(self) -> Setpoints:
        operation = await self.poller.read_operation()
        local = operation_setpoints(operation.mode, operation.backup_reserve_raw_percent)
        return await with_cloud_setpoints(self.poller.cloud, local)

    async def apply(self, setpoints: Setpoints) -> str:
        cloud = self.poller.cloud
        cloud_side = check_cloud_setpoints(cloud, setpoints, CLOUD_HOW_TO_MONITOR)
        notes = []
        reserve = setpoints.backup_reserve_app_percent
        if setpoints.mode is not None or reserve is not None:
            outcome = await self.poller.change_operation(
                mode=None if setpoints.mode is None else str(setpoints.mode),
                backup_reserve_percent=reserve,
                scale=None if reserve is None else "app",
            )
            if not outcome.confirmed:
                raise ChangeNotSeenError(outcome.note)
            notes.append(outcome.note)
        if cloud_side:
            assert cloud is not None
            notes.append(await send_cloud_setpoints(cloud, setpoints, CLOUD_HOW_TO_MONITOR))
        return "; ".join(notes)

    async def update_state(self) -> str:
        return await self.poller.update_state()

    async def start_update(self) -> None:
        await self.poller.start_update()


# --- the plan of one gateway, running -------------------------------------------------------


class GatewayPlan:
    """A plan running on one gateway of the monitor: its runner, outcomes and counts.

    `run()` until cancelled. The time zone is the plan's, else the one given for the
    gateway (--tz), else the one the gateway reports (the runner starts once it is known).
    """

    def __init__(
        self,
        plan: Plan,
        poller: Poller,
        *,
        dry_run: bool = False,
        clock: Callable[[], float] | None = None,
        tick_every_s: float = 5.0,
    ) -> None:
        self.plan = plan
        self.poller = poller
        self.dry_run = dry_run
        self.clock = clock or poller.clock
        self.tick_every_s = tick_every_s
        self.runner: Runner | None = None
        self.ran_until_utc: dt.datetime | None = None
        # (rule, result) -> count; every pair starts at 0 so a rate is defined from the start
        self.counts: dict[tuple[str, str], int] = {
            (rule.name, result): 0 for rule in plan.rules for result in RESULTS
        }
        self.recent: deque[ActionEvent] = deque(maxlen=RECENT_OUTCOMES)
        self._unsaved: list[ActionEvent] = []

    @property
    def name(self) -> str:
        return self.poller.name

    def now_utc(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def tz(self) -> ZoneInfo | None:
        """The zone the plan's clock times are read in; None while it is not known."""
        if self.plan.timezone is not None:
            return self.plan.timezone
        g = self.poller.gateway
        if isinstance(g.tz_override, ZoneInfo):
            return g.tz_override
        found = zone(g.site_tz)
        return found if isinstance(found, ZoneInfo) else None

    def tz_source(self) -> str | None:
        if self.plan.timezone is not None:
            return "plan"
        if isinstance(self.poller.gateway.tz_override, ZoneInfo):
            return "tz option"
        return "gateway" if self.tz() is not None else None

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        set_log_gateway(self.name)
        live = self.poller.live
        async with live.subscribe() as readings:
            # The poller's first answer (a reading, or why there is none) comes first: the
            # plan acts on it, not on the reading a previous run left in the store.
            await self._next_reading(readings, max(live.stale_after_s, 2 * self.tick_every_s))
            await self.recall()
            if not self.start():
                log.info("%s: plan %r waits for the site's time zone", self.name, self.plan.name)
            while not self.start():
                await self._next_reading(readings)
            while True:
                await self.tick()
                await self._next_reading(readings)

    def start(self) -> bool:
        """Make the runner, once the plan's zone is known; False while it is not."""
        if self.runner is not None:
            return True
        tz = self.tz()
        if tz is None:
            return False
        actuator = PollerActuator(self.poller)
        self.runner = Runner(
            self.plan,
            actuator,
            tz,
            self._sink,
            dry_run=self.dry_run,
            now=self.now_utc,
            ran_until_utc=self.ran_until_utc,
        )
        how = " (dry run: nothing is changed)" if self.dry_run else ""
        log.info("%s: plan %r runs in %s%s", self.name, self.plan.name, tz_name(tz), how)
        return True

    async def recall(self) -> None:
        """Before start: when this gateway's plan last reported an outcome (the store
        outlives a restart), so that a firmware window before it, that run's to carry out or
        report, is not reported missed again."""
        self.ran_until_utc = await self._last_outcome_utc()

    async def _last_outcome_utc(self) -> dt.datetime | None:
        store = self.poller.store
        if store is None:
            return None
        end = self.clock()
        try:
            found = await store.events(self.name, end - LOOKBACK.total_seconds(), end, [EVENT_KIND])
        except Exception as exc:  # the plan still runs; at worst a window is reported twice
            log.warning("%s: the plan's earlier outcomes could not be read: %s", self.name, exc)
            return None
        if not found:
            return None
        return dt.datetime.fromtimestamp(max(event.at for event in found), dt.UTC)

    async def _next_reading(
        self, readings: asyncio.Queue[dict[str, Any]], most_s: float | None = None
    ) -> None:
        """Until this gateway's next pushed state (a reading, a failure), or `most_s`
        (tick_every_s by default)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.tick_every_s if most_s is None else most_s):
                while (await readings.get()).get("gateway") != self.name:
                    pass

    async def tick(self) -> list[ActionEvent]:
        """One step of the runner at the monitor's time now; its outcomes are stored."""
        assert self.runner is not None
        try:
            events = await self.runner.tick(self.now_utc())
        finally:
            await self._save()
        return events

    def _sink(self, event: ActionEvent) -> None:
        key = (event.rule, event.result)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.recent.append(event)
        self._unsaved.append(event)
        if event.result != "failed":  # the runner warns of a failure itself
            log.info("%s: automation: %s", self.name, event.line())
        live = self.poller.live
        live.changed(self.poller.gateway)  # /metrics is rendered again

    async def _save(self) -> None:
        events, self._unsaved = self._unsaved, []
        store = self.poller.store
        if store is None:
            return
        for e in events:
            row = Event(self.name, e.at_utc.timestamp(), EVENT_KIND, e.detail, e.rule, e.result)
            try:
                await asyncio.shield(store.write_event(row))
            except Exception as exc:  # the plan goes on; the store says why in its own log
                log.error("%s: the store refused an automation event: %s", self.name, exc)

    # --- what /api/automation shows ---------------------------------------------------------

    def metric_rows(self) -> list[tuple[str, str, int]]:
        """(rule, result, count) of every pair the plan can produce, in the plan's order."""
        return [(rule, result, n) for (rule, result), n in self.counts.items()]

    async def to_json(self, count: int = 10) -> dict[str, Any]:
        now = self.now_utc()
        tz = self.runner.tz if self.runner is not None else self.tz()
        upcoming = [] if tz is None else planned_actions(self.plan, tz, now, count)
        outcomes = await self._outcomes(now)
        for outcome in outcomes:  # at the plan's local time, as the next actions
            if tz is not None:
                local = dt.datetime.fromtimestamp(outcome["at"], tz)
                outcome["at_local"], outcome["zone"] = local.isoformat(), local.tzname()
        return {
            "gateway": self.name,
            "plan": {
                "name": self.plan.name,
                "tz": None if tz is None else tz_name(tz),
                "tz_source": self.tz_source(),
                "dry_run": self.dry_run,
                "running": self.runner is not None,
                "rules": [rule_json(r) for r in self.plan.rules],
                "next": [] if tz is None else [action_json(at, r, tz) for at, r in upcoming],
                "outcomes": outcomes,
            },
        }

    async def _outcomes(self, now: dt.datetime) -> list[dict[str, Any]]:
        """The latest outcomes, newest first: from the store (they outlive a restart), else
        from memory."""
        store = self.poller.store
        if store is not None:
            end = now.timestamp() + 1.0
            found = await store.events(self.name, end - 30 * 86400.0, end, kinds=[EVENT_KIND])
            return [
                {"at": e.at, "rule": e.rule, "result": e.result, "detail": e.detail}
                for e in reversed(found[-RECENT_OUTCOMES:])
            ]
        return [
            {"at": e.at_utc.timestamp(), "rule": e.rule, "result": e.result, "detail": e.detail}
            for e in reversed(self.recent)
        ]


__all__ = [
    "EVENT_KIND",
    "GatewayPlan",
    "NoReadingError",
    "PollerActuator",
    "action_json",
    "planned_actions",
    "rule_json",
    "trigger_words",
]
