"""The runner on a simulated gateway over HTTPS, on simulated time (see runner_rig.py).

The spec's plan (sce_plan.py) for a week across a DST change, by both routes; retries after
injected 429 / 503 / time-outs; catch-up after downtime; no action on a stale reading;
a firmware window postponed through an outage; dry run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
from runner_rig import rig, shows
from sce_plan import FIRMWARE, KEEP_FULL, LA, ON_BATTERY, SCE_PLAN

from tegkit.automation.plan import AtTime, Rule, Setpoints
from tegkit.automation.runner import RESULTS, ActionEvent, RetryPolicy, unmet
from tegkit.models.vocabulary import ExportRule, OperationMode


def la(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LA).astimezone(dt.UTC)


def local(at: dt.datetime) -> tuple[dt.date, dt.time]:
    there = at.astimezone(LA)
    return there.date(), there.time().replace(microsecond=0)


# Spring forward in Los Angeles: Sunday 8 March 2026, 02:00 PST -> 03:00 PDT.
WEEK_START = dt.date(2026, 3, 5)


@pytest.mark.parametrize("route", ["local", "cloud"])
async def test_the_spec_plan_runs_its_three_actions_on_time_for_a_week_across_dst(
    route: str, tmp_path: Path
) -> None:
    start = la(WEEK_START, 6, 0)
    end = la(WEEK_START + dt.timedelta(days=7), 6, 0)
    async with rig(tmp_path, start, cloud=route == "cloud") as r:
        await r.run_until(r.runner(SCE_PLAN), end)

    days = [WEEK_START + dt.timedelta(days=n) for n in range(7)]
    # Each day: the firmware window opens at 07:15 and is acted on there (the battery is
    # idle or not needed at 07:15 in backup at 100 %), the two changes happen at 07:55
    # and 22:05 site time, and each is read back.
    # (the window of the day before the start is reported missed at the start)
    opened = [e for e in r.of(FIRMWARE.name) if e.scheduled_at_utc >= start]
    firmware = {local(e.at_utc)[0]: e for e in reversed(opened)}
    assert sorted(firmware) == days
    for first in firmware.values():
        assert local(first.at_utc)[1] == dt.time(7, 15), first
        assert first.result in ("done", "skipped", "postponed"), first
    for rule, at in ((ON_BATTERY, dt.time(7, 55)), (KEEP_FULL, dt.time(22, 5))):
        done = [
            (e, seen)
            for e, seen in zip(r.events, r.seen, strict=True)
            if e.rule == rule.name and e.scheduled_at_utc >= start
        ]
        assert [local(e.at_utc) for e, _ in done] == [(day, at) for day in days], rule.name
        for event, seen in done:
            assert event.result == "done", event
            assert "read back" in event.detail or route == "local", event
            assert shows(rule.setpoints, seen), (event, seen)  # what the gateway reported
    # The same local time is a different UTC hour after the change: DST was crossed.
    offsets = {e.at_utc.astimezone(LA).utcoffset() for e in r.of(ON_BATTERY.name)}
    assert offsets == {dt.timedelta(hours=-8), dt.timedelta(hours=-7)}
    assert all(e.result in RESULTS for e in r.events)
    assert not [e for e in r.events if e.result in ("failed", "retry")], r.events


async def test_a_change_is_retried_after_429_503_and_a_time_out_then_done(
    tmp_path: Path,
) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 50), timeout_s=0.5) as r:
        runner = r.runner(SCE_PLAN, retry=RetryPolicy(first_delay_s=0.5, jitter_ratio=0.0))
        await r.run_until(runner, la(day, 7, 54))  # the catch-up is done first
        r.events.clear()
        r.seen.clear()
        # The commit of the 07:55 change (GET /api/config/completed) meets a 503, then,
        # armed as each retry is reported, a 429 (Retry-After: 1) and then a time-out.
        commit = "/api/config/completed"
        faults: list[dict[str, Any]] = [
            {"kind": "rate_limit"},
            {"kind": "latency", "latency_ms": 2000},
        ]
        r.sim.faults.add("status", count=1, status=503, path_prefix=commit)

        def arm_next(event: ActionEvent) -> None:
            if event.result == "retry" and faults:
                r.sim.faults.add(count=1, path_prefix=commit, **faults.pop(0))

        r.on_event = arm_next
        await r.run_until(runner, la(day, 8, 30))
    on_battery = r.of(ON_BATTERY.name)
    assert [e.result for e in on_battery] == ["retry", "retry", "retry", "done"], on_battery
    assert all(e.scheduled_at_utc == la(day, 7, 55) for e in on_battery)
    assert on_battery[0].at_utc == la(day, 7, 55)
    assert "503" in on_battery[0].detail and "429" in on_battery[1].detail
    assert "no answer within 0.5 s" in on_battery[2].detail, on_battery[2]
    gaps = [(b.at_utc - a.at_utc).total_seconds() for a, b in itertools.pairwise(on_battery)]
    # back-off doubles from 0.5 s; after the 429 its Retry-After (1 s) is waited out
    assert gaps[0] == pytest.approx(0.5, abs=0.01)
    assert gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert shows(ON_BATTERY.setpoints, r.seen[r.events.index(on_battery[-1])])
    assert on_battery[-1].attempt == 4


async def test_a_change_that_never_takes_is_reported_failed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 50)) as r:
        runner = r.runner(SCE_PLAN, retry=RetryPolicy(tries=3, first_delay_s=1.0))
        await r.run_until(runner, la(day, 7, 54))
        before = (r.sim.gateway.mode, r.sim.gateway.backup_reserve_raw_percent)
        r.sim.faults.add("status", status=503, path_prefix="/api/config/completed")
        with caplog.at_level(logging.WARNING, logger="tegkit.automation"):
            await r.run_until(runner, la(day, 9, 0))
        after = (r.sim.gateway.mode, r.sim.gateway.backup_reserve_raw_percent)
    results = [e.result for e in r.of(ON_BATTERY.name)]
    assert results == ["retry", "retry", "failed"]
    assert "3 tries" in r.of(ON_BATTERY.name)[-1].detail
    assert any("failed" in rec.getMessage() for rec in caplog.records)
    assert after == before  # staged, never committed: the gateway kept its settings


async def test_after_downtime_the_settings_in_force_are_applied_once_and_firmware_missed(
    tmp_path: Path,
) -> None:
    day = WEEK_START + dt.timedelta(days=1)
    async with rig(tmp_path, la(day, 8, 20)) as r:
        r.sim.offer_update("23.44")
        await r.run_until(r.runner(SCE_PLAN), la(day, 13, 0))
        generations = r.sim.gateway.fw_update.generation
    # started after 08:00: the 07:55 settings once, at start; the 07:15 window is missed
    assert [(e.rule, e.result, e.scheduled_at_utc) for e in r.events] == [
        (FIRMWARE.name, "missed", la(day, 7, 15)),
        (ON_BATTERY.name, "done", la(day, 7, 55)),
    ], r.events
    assert all(e.at_utc == la(day, 8, 20) for e in r.events)
    done = r.of(ON_BATTERY.name)[0]
    assert done.scheduled_at_utc == la(day, 7, 55)
    assert shows(ON_BATTERY.setpoints, r.seen[r.events.index(done)])
    assert generations == 0  # no update was started late


async def test_a_catch_up_already_in_force_is_skipped(tmp_path: Path) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 23, 0)) as r:
        r.sim.gateway.site.mode = OperationMode.BACKUP
        r.sim.gateway.site.backup_reserve_raw_percent = 100.0
        commits = r.sim.gateway.settings.commission_count
        await r.run_until(r.runner(SCE_PLAN), la(day, 23, 30))
        assert r.sim.gateway.settings.commission_count == commits
    # (the firmware window of 07:15 is reported missed)
    assert [(e.rule, e.result) for e in r.events if e.rule != FIRMWARE.name] == [
        (KEEP_FULL.name, "skipped")
    ]


async def test_no_action_on_a_stale_reading_until_it_is_fresh_again(tmp_path: Path) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 40)) as r:
        runner = r.runner(SCE_PLAN, recheck_s=60.0)
        await r.run_until(runner, la(day, 7, 45))  # catch-up done at 07:40
        r.events.clear()
        r.seen.clear()
        script = [
            (la(day, 7, 50), lambda s: s.stop_sitemaster()),  # live endpoints answer 502
            (la(day, 8, 10), lambda s: s.run_sitemaster()),
        ]
        await r.run_until(runner, la(day, 9, 0), script)
    on_battery = r.of(ON_BATTERY.name)
    refused = on_battery[0]
    assert refused.result == "refused" and refused.at_utc == la(day, 7, 55)
    assert "s old" in refused.detail and "502" in refused.detail, refused
    assert r.seen[r.events.index(refused)][0] != ON_BATTERY.setpoints.mode  # nothing sent
    assert on_battery[-1].result == "done"
    assert on_battery[-1].at_utc >= la(day, 8, 10)  # only once readings were fresh again
    assert on_battery[-1].at_utc <= la(day, 8, 12)
    assert shows(ON_BATTERY.setpoints, r.seen[r.events.index(on_battery[-1])])
    before = [e for e in on_battery if e.at_utc < la(day, 8, 10)]
    assert all(e.result != "done" for e in before)
    assert len([e for e in on_battery if e.result == "done"]) == 1


async def test_a_firmware_window_is_postponed_in_an_outage_and_installed_once_back(
    tmp_path: Path,
) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 0)) as r:
        r.sim.offer_update("23.44")
        script = [(la(day, 7, 10), lambda s: s.start_outage(minutes=22))]  # back at 07:32
        await r.run_until(r.runner(SCE_PLAN), la(day, 7, 50), script)
        generations = r.sim.gateway.fw_update.generation
        state = r.sim.gateway.fw_update.state
    window = [e for e in r.of(FIRMWARE.name) if e.scheduled_at_utc == la(day, 7, 15)]
    assert window[0].result == "postponed" and window[0].at_utc == la(day, 7, 15)
    assert "grid" in window[0].detail
    assert [e.result for e in window[:-1]] == ["postponed"] * (len(window) - 1)
    assert window[-1].result == "done"
    assert la(day, 7, 32) <= window[-1].at_utc < la(day, 7, 45)  # inside the window
    assert generations == 1  # started once
    assert state != "/update_failed"


async def test_a_firmware_window_closes_without_a_safe_moment(tmp_path: Path) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 0)) as r:
        r.sim.offer_update("23.44")
        script = [(la(day, 7, 10), lambda s: s.start_outage(minutes=60))]
        await r.run_until(r.runner(SCE_PLAN), la(day, 7, 50), script)
        generations = r.sim.gateway.fw_update.generation
    window = [e for e in r.of(FIRMWARE.name) if e.scheduled_at_utc == la(day, 7, 15)]
    assert [e.result for e in window] == ["postponed"] * (len(window) - 1) + ["missed"]
    assert "closed" in window[-1].detail
    assert len(window) >= 3
    assert generations == 0


async def test_a_dry_run_says_what_it_would_do_and_changes_nothing(tmp_path: Path) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 0)) as r:
        r.sim.offer_update("23.44")
        gw = r.sim.gateway
        before = (gw.mode, gw.backup_reserve_raw_percent, gw.settings.commission_count)
        await r.run_until(r.runner(SCE_PLAN, dry_run=True), la(day + dt.timedelta(days=1), 7, 0))
        after = (gw.mode, gw.backup_reserve_raw_percent, gw.settings.commission_count)
        generations = gw.fw_update.generation
    assert after == before and generations == 0
    results = {(e.rule, e.result) for e in r.events}
    assert (ON_BATTERY.name, "dry_run") in results and (FIRMWARE.name, "dry_run") in results
    assert (KEEP_FULL.name, "dry_run") in results or (KEEP_FULL.name, "skipped") in results
    assert all(e.result in ("dry_run", "skipped", "missed") for e in r.events), r.events
    would = next(e for e in r.events if e.rule == ON_BATTERY.name)
    # the simulated site starts in self_consumption: only the reserve would change
    assert would.detail == "would set reserve 5 %"


def test_unmet_compares_the_reserve_on_the_raw_scale() -> None:
    want = Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=20.0)
    near = Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=20.05)
    assert unmet(want, near).is_empty()
    far = Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=21.0)
    assert unmet(want, far) == Setpoints(backup_reserve_app_percent=20.0)
    unreadable = Setpoints()
    assert unmet(Setpoints(storm_watch=False), unreadable) == Setpoints(storm_watch=False)


@pytest.mark.parametrize("during_outage", [False, True])
async def test_a_change_is_refused_in_an_outage_unless_the_rule_says_so(
    during_outage: bool, tmp_path: Path
) -> None:
    day = WEEK_START
    keep_full = dataclasses.replace(KEEP_FULL, during_outage=during_outage)
    plan = dataclasses.replace(SCE_PLAN, rules=(FIRMWARE, ON_BATTERY, keep_full))
    async with rig(tmp_path, la(day, 21, 0)) as r:
        runner = r.runner(plan, recheck_s=60.0)
        script = [(la(day, 21, 50), lambda s: s.start_outage(minutes=30))]  # back at 22:20
        await r.run_until(runner, la(day, 23, 0), script)
    events = [e for e in r.of(KEEP_FULL.name) if e.scheduled_at_utc == la(day, 22, 5)]
    if during_outage:
        assert [(e.result, e.at_utc) for e in events] == [("done", la(day, 22, 5))]
        return
    assert [e.result for e in events] == ["refused", "done"], events
    assert events[0].at_utc == la(day, 22, 5) and "off grid" in events[0].detail
    assert r.seen[r.events.index(events[0])][0] == ON_BATTERY.setpoints.mode  # unchanged
    assert la(day, 22, 20) <= events[1].at_utc <= la(day, 22, 22)  # once the grid is back
    assert shows(KEEP_FULL.setpoints, r.seen[r.events.index(events[1])])


async def test_a_retry_waits_while_the_site_is_off_grid(tmp_path: Path) -> None:
    day = WEEK_START
    async with rig(tmp_path, la(day, 7, 50)) as r:
        runner = r.runner(SCE_PLAN, recheck_s=60.0)
        await r.run_until(runner, la(day, 7, 54))
        r.sim.faults.add("status", count=1, status=503, path_prefix="/api/config/completed")
        commits: list[int] = []
        script = [
            # the 07:55 change meets a 503; the grid goes down before its retry (15 s later)
            (la(day, 7, 55) + dt.timedelta(seconds=5), lambda s: s.start_outage(minutes=5)),
            (la(day, 8, 0), lambda s: commits.append(s.gateway.settings.commission_count)),
        ]
        before = r.sim.gateway.settings.commission_count
        await r.run_until(runner, la(day, 8, 30), script)
    on_battery = r.of(ON_BATTERY.name)
    assert [e.result for e in on_battery] == ["retry", "done"], on_battery
    assert commits == [before]  # nothing committed while off grid
    assert la(day, 8, 0) <= on_battery[1].at_utc <= la(day, 8, 2)
    assert shows(ON_BATTERY.setpoints, r.seen[r.events.index(on_battery[1])])


STORM = Rule(
    "storm season",
    AtTime(12 * 60),
    setpoints=Setpoints(grid_charging=True, export_rule=ExportRule.NEVER, storm_watch=True),
)


async def test_cloud_settings_are_sent_read_back_from_the_cloud_and_then_skipped(
    tmp_path: Path,
) -> None:
    day = WEEK_START
    plan = dataclasses.replace(SCE_PLAN, rules=(STORM,))
    async with rig(tmp_path, la(day, 11, 0), cloud=True) as r:
        site = r.sim.gateway.site
        site.grid_charging_allowed, site.export_rule, site.storm_watch = (
            False,
            ExportRule.BATTERY_OK,
            False,
        )
        await r.run_until(r.runner(plan), la(day + dt.timedelta(days=1), 13, 0))
        now = (site.grid_charging_allowed, site.export_rule, site.storm_watch)
    # at start the day before's noon rule is in force (caught up), then today's noon: skipped
    assert [(e.result, local(e.at_utc)[1]) for e in r.events] == [
        ("done", dt.time(11, 0)),
        ("skipped", dt.time(12, 0)),
        ("skipped", dt.time(12, 0)),
    ], r.events
    assert "sent through Tesla's cloud" in r.events[0].detail
    assert "could not be read back" not in r.events[0].detail
    assert now == (True, ExportRule.NEVER, True)


async def test_cloud_settings_without_a_cloud_fail_at_once_saying_how(tmp_path: Path) -> None:
    day = WEEK_START
    plan = dataclasses.replace(SCE_PLAN, rules=(STORM,))
    async with rig(tmp_path, la(day, 11, 0)) as r:
        storm_before = r.sim.gateway.site.storm_watch
        await r.run_until(r.runner(plan), la(day, 11, 30))
        storm_after = r.sim.gateway.site.storm_watch
    assert [e.result for e in r.events] == ["failed"]
    assert "Tesla's cloud" in r.events[0].detail and "teg cloud" in r.events[0].detail
    assert storm_after == storm_before
