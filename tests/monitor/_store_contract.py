"""Behaviour every store backend must show; test_store_sqlite and test_store_postgres run it.

The test modules import these functions and define the ``backend`` fixture.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit.models.vocabulary import COUNTER_NAMES
from tegkit.monitor.readings import CloudDay, Event, Gap, Outage, Reading, RetentionPolicy
from tegkit.monitor.store import Store, StoreClosedError
from tegkit.monitor.store._sql import FOLD_READINGS
from tegkit.monitor.store.migrations import LATEST_VERSION

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
GW = "gw-1"


def reading(t: float, **kw: object) -> Reading:
    base: dict[str, object] = {
        "site_w": 1200.0,
        "battery_w": -300.0,
        "load_w": 1500.0,
        "solar_w": 600.0,
        "soe_raw_percent": 62.5,
        "grid_status": "SystemGridConnected",
    }
    base.update(kw)
    return Reading(gateway=str(base.pop("gateway", GW)), taken_at=t, **base)  # type: ignore[arg-type]


def counter_series(rng: random.Random, n: int, t0: float = T0) -> list[Reading]:
    """Readings at uneven intervals with counters that grow by random whole mWh."""
    out, t = [], t0
    counters = [rng.randrange(0, 10**7) / 1000 for _ in COUNTER_NAMES]
    for _ in range(n):
        t += rng.choice((1.0, 5.0, 5.0, 5.0, 7.5, 60.0, 3600.0))
        counters = [c + rng.randrange(0, 20_000) / 1000 for c in counters]
        out.append(reading(t, **dict(zip(COUNTER_NAMES, counters, strict=True))))
    return out


def test_round_trip_keeps_every_field_and_missing_values(store: Store) -> None:
    rows = [
        reading(T0 + 0.25, site_imported_wh=10.5, load_imported_wh=99.125),
        reading(T0 + 5, site_w=None, soe_raw_percent=None, grid_status=None),
        reading(T0 + 10, grid_status="SystemIslandedActive", solar_exported_wh=0.0),
    ]
    other = reading(T0 + 3, gateway="gw-2", load_w=-7.0)
    assert store.write_readings([rows[2], other, rows[0], rows[1]]) == 4
    assert store.readings(GW, T0, T0 + 60) == rows
    assert store.readings("gw-2", T0, T0 + 60) == [other]
    assert store.latest(GW) == rows[2]
    assert store.latest("nobody") is None
    assert store.schema_version() == LATEST_VERSION


def test_a_new_reading_at_the_same_time_replaces_the_old(store: Store) -> None:
    store.write_readings([reading(T0, load_w=1.0), reading(T0 + 5, load_w=2.0)])
    store.write_readings([reading(T0, load_w=3.0)])
    assert [r.load_w for r in store.readings(GW, T0, T0 + 10)] == [3.0, 2.0]


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_add_up_exactly_to_counter_differences(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    rows = counter_series(rng, 3000)
    i = 0
    while i < len(rows):  # batches of random size, as a poller would send them
        n = rng.randrange(1, 400)
        store.write_readings(rows[i : i + n])
        i += n
    first, last = rows[0], rows[-1]
    end = last.taken_at + 1
    for resolution in ("minute", "quarter", "hour", "day"):
        buckets = store.energy(GW, T0 - 86400, end + 86400, resolution)
        for name in COUNTER_NAMES:
            total = sum(getattr(b, name) for b in buckets)
            want = getattr(last, name) - getattr(first, name)
            assert total == pytest.approx(want, abs=1e-6), (resolution, name)
    # each hour is the sum of its minutes
    minutes = store.energy(GW, T0, end, "minute")
    for hour in store.energy(GW, T0, end, "hour"):
        inside = [m for m in minutes if hour.start <= m.start < hour.start + 3600]
        assert hour.load_imported_wh == pytest.approx(sum(m.load_imported_wh for m in inside))


def test_a_counter_that_decreases_was_reset_and_counts_from_zero(store: Store) -> None:
    values = [100.0, 150.0, 10.0, 30.0]
    store.write_readings([reading(T0 + 10 * i, load_imported_wh=v) for i, v in enumerate(values)])
    [bucket] = store.energy(GW, T0, T0 + 60, "minute")
    assert bucket.load_imported_wh == 50 + 10 + 20
    # a missing counter value neither resets nor adds
    store.write_readings(
        [reading(T0 + 40, load_imported_wh=None), reading(T0 + 50, load_imported_wh=31.0)]
    )
    [bucket] = store.energy(GW, T0, T0 + 60, "minute")
    assert bucket.load_imported_wh == 81


def test_late_readings_are_kept_but_not_counted_twice(store: Store) -> None:
    store.write_readings(
        [reading(T0 + 10, load_imported_wh=10.0), reading(T0 + 20, load_imported_wh=20.0)]
    )
    store.write_readings([reading(T0 + 15, load_imported_wh=15.0)])
    assert [r.taken_at for r in store.readings(GW, T0, T0 + 60)] == [T0 + 10, T0 + 15, T0 + 20]
    assert sum(b.load_imported_wh for b in store.energy(GW, T0, T0 + 60, "minute")) == 10


def test_gaps_and_missing_values_are_null_in_history_never_zero(store: Store) -> None:
    before = [reading(T0 + 5 * i) for i in range(120)]  # 10 minutes
    after = [reading(T0 + 1800 + 5 * i, load_w=None) for i in range(120)]
    store.write_readings(before + after)
    store.write_gap(Gap(GW, T0 + 600, T0 + 1800, "unreachable"))
    for step in (5.0, 60.0, 300.0):
        h = store.history(GW, T0, T0 + 2400, step_s=step)
        assert h.step_s == step
        for p in h.points:
            if T0 + 600 <= p.t < T0 + 1800:
                assert (p.site_w, p.load_w, p.soe_raw_percent) == (None, None, None), p
            elif p.t < T0 + 600:
                assert (p.site_w, p.load_w, p.soe_raw_percent) == (1200.0, 1500.0, 62.5)
            else:
                assert p.load_w is None and p.site_w == 1200.0
    assert store.gaps(GW, T0, T0 + 3600) == [Gap(GW, T0 + 600, T0 + 1800, "unreachable")]


def test_history_means_match_the_readings(store: Store) -> None:
    rng = random.Random(7)
    rows = [
        reading(
            T0 + 5 * i,
            site_w=float(rng.randrange(-5000, 5000)),
            soe_raw_percent=rng.randrange(500, 10000) / 100,
        )
        for i in range(1440)
    ]
    store.write_readings(rows)
    for step, source in ((60.0, "minute"), (1800.0, "quarter"), (3600.0, "hour"), (30.0, "raw")):
        h = store.history(GW, T0, T0 + 7200, step_s=step)
        assert h.source == source
        for p in h.points:
            inside = [r for r in rows if p.t <= r.taken_at < p.t + step]
            assert p.site_w == pytest.approx(sum(r.site_w or 0 for r in inside) / len(inside))
            assert p.soe_raw_percent == inside[-1].soe_raw_percent


@pytest.mark.parametrize("days", [0.01, 1, 7, 31, 366, 3 * 365])
@pytest.mark.parametrize("max_points", [1, 7, 500, 2000])
def test_history_never_exceeds_max_points(store: Store, days: float, max_points: int) -> None:
    store.write_readings([reading(T0 + 3600 * i) for i in range(48)])
    start = T0 + 1234.5
    h = store.history(GW, start, start + days * 86400, step_s=5, max_points=max_points)
    assert 1 <= len(h.points) <= max_points
    assert h.points[0].t <= start < h.points[0].t + h.step_s
    assert h.points[-1].t + h.step_s >= start + days * 86400


def test_outages_start_and_end_at_grid_status_transitions(store: Store) -> None:
    statuses = (
        ["SystemGridConnected"] * 3
        + ["SystemIslandedActive"] * 4
        + ["SystemTransitionToGrid", "SystemGridConnected", None, "SystemIslandedActive"]
    )
    rows = [reading(T0 + 7 * i, grid_status=s) for i, s in enumerate(statuses)]
    store.write_readings(rows[:5])
    store.write_readings(rows[5:])
    assert [(o.start, o.end) for o in store.outages(GW, T0, T0 + 3600)] == [
        (T0 + 21, T0 + 56),
        (T0 + 70, None),
    ]
    assert [o.start for o in store.outages(GW, T0 + 60, T0 + 3600)] == [T0 + 70]


def test_events_round_trip_and_filter_by_kind(store: Store) -> None:
    store.write_event(Event(GW, T0 + 1, "backup_reserve", "20 -> 40 (app percent)"))
    store.write_event(Event(GW, T0 + 2, "firmware", "21.39.1 -> 21.44"))
    assert [e.kind for e in store.events(GW, T0, T0 + 10)] == ["backup_reserve", "firmware"]
    assert store.events(GW, T0, T0 + 10, kinds=["firmware"]) == [
        Event(GW, T0 + 2, "firmware", "21.39.1 -> 21.44")
    ]


def test_an_open_gap_is_closed_by_writing_it_again(store: Store) -> None:
    store.write_gap(Gap(GW, T0, None, "rate_limited"))
    assert store.gaps(GW, T0 + 100, T0 + 200) == [Gap(GW, T0, None, "rate_limited")]
    store.write_gap(Gap(GW, T0, T0 + 50, "rate_limited"))
    assert store.gaps(GW, T0 + 100, T0 + 200) == []


def test_daily_energy_per_local_day(store: Store) -> None:
    tz = ZoneInfo("America/Los_Angeles")  # UTC-8 in January
    midnight = dt.datetime(2024, 1, 2, tzinfo=tz).timestamp()
    # 1 Wh per 10 s on every counter from 23:00 on Jan 1 to 01:00 on Jan 2, local
    rows = [
        reading(midnight - 3600 + 10 * i, **dict.fromkeys(COUNTER_NAMES, float(i)))
        for i in range(721)
    ]
    store.write_readings(rows)
    d1, d2, d3 = store.daily(GW, dt.date(2024, 1, 1), dt.date(2024, 1, 3), tz)
    # an increase belongs to the day of the reading that shows it: the one at 00:00:00
    # local closes the ten seconds before midnight, so day 1 has 359 of the 720 Wh
    assert (d1.home_wh, d2.home_wh) == (359, 361)
    assert d1.grid_in_wh == d1.solar_wh == d1.battery_out_wh == 359
    assert d1.self_powered_percent == 0 and d1.solar_offset_percent == 100
    assert d3.home_wh is None and d3.self_powered_percent is None


def test_retention_deletes_only_what_the_policy_says(store: Store) -> None:
    day = 86400.0
    rows = [
        reading(T0 + day * d + 60 * m, load_imported_wh=float(d * 100 + m))
        for d in range(10)
        for m in range(3)
    ]
    store.write_readings(rows)
    now = T0 + 10 * day
    deleted = store.retention(RetentionPolicy(raw_days=5, minute_days=8), now=now)
    # raw: days 0..4 are 5 days old or more; minute rollups: days 0..1
    assert deleted == {"blocks": 5, "rollup_minute": 6}
    assert store.readings(GW, T0, T0 + 5 * day) == []
    assert store.readings(GW, T0 + 5 * day, now) == rows[15:]
    assert store.energy(GW, T0, T0 + 2 * day, "minute") == []
    assert len(store.energy(GW, T0 + 2 * day, now, "minute")) == 24
    assert len(store.energy(GW, T0, now, "hour")) == 10  # hours and days stay
    assert len(store.energy(GW, T0, now, "day")) == 10
    assert store.retention(RetentionPolicy(raw_days=None, minute_days=None), now=now) == {
        "blocks": 0,
        "rollup_minute": 0,
    }


def test_retention_counts_an_hour_kept_only_in_tails(store: Store) -> None:
    store.write_readings([reading(T0 + 60 * m) for m in range(3)])  # one hour, tails only
    store.write_readings([reading(T0 + 86400 * 3)])
    deleted = store.retention(RetentionPolicy(raw_days=1, minute_days=None), now=T0 + 86400 * 3)
    assert deleted == {"blocks": 1, "rollup_minute": 0}
    assert store.readings(GW, T0, T0 + 86400 * 4) == [reading(T0 + 86400 * 3)]
    assert _tails(store) == 1
    for i in range(1, FOLD_READINGS + 1):  # the writer's tail count was read again: a fold
        store.write_readings([reading(T0 + 86400 * 3 + 5 * i)])
    assert _tails(store) < FOLD_READINGS
    assert len(store.readings(GW, T0, T0 + 86400 * 4)) == FOLD_READINGS + 1


def _tails(store: Store) -> int:
    """Readings held in tails, not yet folded into their hour blocks."""
    return int(store._read("SELECT COALESCE(SUM(n), 0) FROM block_tails")[0][0])  # type: ignore[attr-defined]


def test_readings_written_one_by_one_are_tails_folded_into_hour_blocks(
    make_store: object,
) -> None:
    """The poller's way: one reading per write, across an hour, with a restart between."""
    rows = [
        reading(T0 + 3000 + 5 * i, load_imported_wh=float(i), grid_status=None if i % 7 else "x")
        for i in range(3 * FOLD_READINGS + 11)
    ]
    store = make_store()  # type: ignore[operator]
    half = len(rows) // 2
    for i, r in enumerate(rows[:half]):
        assert store.write_readings([r]) == 1
        assert store.latest(GW) == r
        assert _tails(store) < FOLD_READINGS
        if i % 23 == 0:  # blocks and tails read as one, in time order
            assert store.readings(GW, T0, T0 + 86400) == rows[: i + 1]
    store.close()
    store = make_store()  # type: ignore[operator]  # a restart: tails are read from the file
    for r in rows[half:]:
        store.write_readings([r])
        assert _tails(store) < FOLD_READINGS
    assert store.readings(GW, T0, T0 + 86400) == rows
    assert store.readings(GW, T0 + 3600, T0 + 3700) == [
        r for r in rows if 3600 <= r.taken_at - T0 < 3700
    ]
    # the hour before the reading that crossed into the next one was folded whole
    folded = store._read("SELECT block_ms, n FROM blocks ORDER BY block_ms")  # type: ignore[attr-defined]
    assert folded[0] == (int(T0 * 1000), sum(1 for r in rows if r.taken_at < T0 + 3600))
    raw = store.history(GW, T0 + 3000, T0 + 6000, step_s=5)
    assert [p.load_w for p in raw.points if p.load_w is not None] == [1500.0] * len(rows)
    energy = store.energy(GW, T0, T0 + 86400, "hour")
    assert sum(b.load_imported_wh for b in energy) == float(len(rows) - 1)
    # a reading at a time already stored replaces it, whether it sits in a block or a tail
    store.write_readings([reading(rows[0].taken_at, load_w=1.0)])
    store.write_readings([reading(rows[-1].taken_at, load_w=2.0)])
    kept = store.readings(GW, T0, T0 + 86400)
    assert len(kept) == len(rows) and kept[0].load_w == 1.0 and kept[-1].load_w == 2.0
    assert store.latest(GW) == kept[-1]
    store.close()


def test_a_fleet_writing_together_keeps_each_gateways_readings(store: Store) -> None:
    names = [f"gw-{k}" for k in range(5)]
    written: dict[str, list[Reading]] = {n: [] for n in names}
    for i in range(FOLD_READINGS + 5):
        batch = [reading(T0 + 5 * i + k, gateway=n, site_w=float(k)) for k, n in enumerate(names)]
        for r in batch:
            written[r.gateway].append(r)
        assert store.write_readings(batch) == len(names)
    for n in names:
        assert store.readings(n, T0, T0 + 3600) == written[n]
        assert store.latest(n) == written[n][-1]


def test_an_older_schema_is_upgraded_on_open(make_store: object) -> None:
    old = make_store(migrate_upto=1)  # type: ignore[operator]
    assert old.schema_version() == 1
    # data written by a version 1 recorder: hour rollups exist, day rollups do not
    old._wexec(  # simulating an old recorder
        "INSERT INTO gateways (name) VALUES (?)", (GW,)
    )
    with old._write_lock, old._write_tx():
        gid = old._wexec("SELECT id FROM gateways WHERE name = ?", (GW,))[0][0]
        for h in (0, 1, 25):
            old._wexec(
                "INSERT INTO rollup_hour VALUES (?, ?, 1, 100, 1, 0, 1, 0, 1, 0, 1, NULL, "
                "1000, 0, 0, 0, 0, 0)",
                (gid, int((T0 + 3600 * h) * 1000)),
            )
        for m in (0, 14, 15):
            old._wexec(
                "INSERT INTO rollup_minute VALUES (?, ?, 1, 100, 1, 0, 1, 0, 1, 0, 1, NULL, "
                "10, 0, 0, 0, 0, 0)",
                (gid, int((T0 + 60 * m) * 1000)),
            )
        old._wexec(
            "INSERT INTO outages VALUES (?, ?, ?)", (gid, int(T0 * 1000), int(T0 * 1000) + 5)
        )
    old.close()
    new = make_store()  # type: ignore[operator]
    assert new.schema_version() == LATEST_VERSION == 6
    # version 3: outages say who saw them; those recorded before were the monitor's own
    assert new.outages(GW, T0, T0 + 1) == [Outage(GW, T0, T0 + 0.005, "local")]
    assert new.cloud_days(GW, T0, T0 + 86400) == []
    days = new.energy(GW, T0, T0 + 3 * 86400, "day")
    assert [(b.start, b.site_imported_wh) for b in days] == [(T0, 2.0), (T0 + 86400, 1.0)]
    h = new.history(GW, T0, T0 + 2 * 86400, step_s=86400)
    assert h.source == "day" and [p.site_w for p in h.points] == [100.0, 100.0]
    quarters = new.energy(GW, T0, T0 + 3600, "quarter")
    assert [(b.start, b.site_imported_wh) for b in quarters] == [(T0, 0.02), (T0 + 900, 0.01)]


def _read_until_closed(store: Store, ready: threading.Barrier, outcomes: list[str]) -> None:
    try:
        store.latest(GW)  # this thread's connection exists before the close
        ready.wait()
        for n in itertools.count():
            step = (5.0, 60.0, 3600.0)[n % 3]  # raw blocks, then rollups
            assert len(store.history(GW, T0, T0 + 3600, step_s=step).points) >= 1
            assert store.latest(GW) is not None
    except StoreClosedError:
        outcomes.append("closed")
    except BaseException as exc:  # anything else is the defect under test
        outcomes.append(repr(exc))


def test_close_while_reading_waits_for_reads_and_refuses_later_ones(make_store: object) -> None:
    first = make_store()  # type: ignore[operator]
    first.write_readings([reading(T0 + 5 * i, load_imported_wh=float(i)) for i in range(720)])
    first.close()
    for trial in range(200):
        store = make_store()  # type: ignore[operator]
        ready = threading.Barrier(5)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=_read_until_closed, args=(store, ready, outcomes))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        ready.wait()
        # odd trials give no grace: reads still running are interrupted, not torn down
        store.close(**({"grace_s": 0.0} if trial % 2 else {}))
        for t in threads:
            t.join()
        assert outcomes == ["closed"] * 4, (trial, outcomes)
    with pytest.raises(StoreClosedError, match="closed"):
        store.history(GW, T0, T0 + 60)
    with pytest.raises(StoreClosedError, match="closed"):
        store.write_readings([reading(T0 + 1)])
    with pytest.raises(StoreClosedError, match="closed"):
        store.write_gap(Gap(GW, T0, None, "x"))
    store.close()  # a second close is harmless


def test_one_unstorable_value_never_costs_the_batch(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    good = [reading(T0 + 5 * i, load_imported_wh=float(i)) for i in range(4)]
    bad = [
        reading(T0 + 1, site_w=1e20),  # a gateway's instant_power of 1e20
        reading(T0 + 2, battery_w=float("-inf")),
        reading(T0 + 3, soe_raw_percent=float("nan")),
        reading(T0 + 4, load_imported_wh=1e300),
        reading(float("inf")),
        reading(None),  # type: ignore[arg-type]
        reading(T0 + 6, grid_status=5),
    ]
    caplog.set_level(logging.WARNING, logger="tegkit.monitor.store")
    batch = [good[0], bad[0], good[1], *bad[1:], good[2]]
    assert store.write_readings(batch) == 3
    assert store.readings(GW, 0, 2e10) == good[:3]
    warned = [r.getMessage() for r in caplog.records]
    fields = (
        "site_w", "battery_w", "soe_raw_percent", "load_imported_wh", "taken_at", "grid_status"
    )  # fmt: skip
    assert len(warned) == len(fields)
    for field, message in zip(fields, warned, strict=True):
        assert GW in message and field in message, message
    # said once per gateway and field; the next good reading still counts its energy
    caplog.clear()
    assert store.write_readings([reading(T0 + 12, site_w=-1e20), good[3]]) == 1
    assert caplog.records == []
    assert sum(b.load_imported_wh for b in store.energy(GW, T0, T0 + 60, "minute")) == 3.0


HOUR_S = 3600.0


@pytest.mark.parametrize(
    ("step", "want_step"),
    [(1e-5, 60.0), (0.5001, 60.0), (1.0001, 60.0), (1e-300, 60.0), (61.0, 120.0), (86401, 172800)],
)
def test_a_fractional_or_tiny_step_snaps_to_the_stores_buckets(
    store: Store, step: float, want_step: float
) -> None:
    store.write_readings([reading(T0 + 60 * i) for i in range(3 * 1440)])
    start, end = T0 + 1234.5678, T0 + 86400 + 1234.5678  # a day, not on any bucket edge
    h = store.history(GW, start, end, step_s=step)
    assert h.step_s == want_step
    ts = [p.t for p in h.points]
    assert 1 <= len(ts) <= 2000 and ts == sorted(set(ts))
    assert all(start <= t < end for t in ts), (ts[:2], ts[-2:])
    assert all(p.load_w == 1500.0 for p in h.points[1:-1])


_SPECIAL = [0.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e-300, 1e300, -1e300]
_YEAR_1 = dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp()
_YEAR_9999 = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC).timestamp()
_times = st.one_of(
    st.sampled_from([*_SPECIAL, _YEAR_1, _YEAR_1 + 1, _YEAR_9999, T0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(_YEAR_1 - 1e6, _YEAR_9999 + 1e6),
    st.floats(T0 - 3 * 86400, T0 + 3 * 86400),
)
_steps = st.one_of(
    st.none(),
    st.sampled_from([*_SPECIAL, 1e-5, 0.5001, 1.0001, 5.0, 86400.0, 7 * 86400.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 10 * 86400),
)
_zones = st.sampled_from(
    [None, dt.UTC, "America/Los_Angeles", "Australia/Sydney", "Asia/Kathmandu"]
)
_ARGUMENTS = ("start", "end", "step_s", "max_points")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the store is only read
)
@given(
    start=st.one_of(st.floats(T0 - 3 * 86400, T0 + 3 * 86400), _times),
    span=st.one_of(st.floats(1e-9, 3 * 86400), st.floats(1e-9, 4e11), _times),
    relative=st.sampled_from([True, True, True, False]),  # mostly end = start + span
    step=_steps,
    max_points=st.sampled_from([1, 2, 7, 2000]),
    zone=_zones,
)
def test_history_answers_any_floats_bounded_or_refuses_by_name(
    history_store: Store,
    start: float,
    span: float,
    relative: bool,
    step: float | None,
    max_points: int,
    zone: object,
) -> None:
    end = start + span if relative else span
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    try:
        h = history_store.history(GW, start, end, step_s=step, max_points=max_points, tz=tz)
    except ValueError as exc:
        assert any(name in str(exc) for name in _ARGUMENTS), exc
        return
    ts = [p.t for p in h.points]
    assert 1 <= len(ts) <= max_points
    assert all(start <= t < end for t in ts)
    assert ts == sorted(set(ts))
    assert h.step_s >= 5 and h.step_s == int(h.step_s)
    if step is not None:
        assert h.step_s >= min(step, end - start)


@pytest.fixture
def history_store(store: Store) -> Store:
    """Two days of readings every five minutes around T0."""
    store.write_readings([reading(T0 - 86400 + 300 * i) for i in range(2 * 288)])
    return store


def _local_day_means(rows: list[Reading], tz: dt.tzinfo, first: dt.date, n: int) -> list[float]:
    out = []
    for k in range(n):
        lo = dt.datetime.combine(first + dt.timedelta(k), dt.time(), tzinfo=tz).timestamp()
        hi = dt.datetime.combine(first + dt.timedelta(k + 1), dt.time(), tzinfo=tz).timestamp()
        inside = [r.load_w or 0.0 for r in rows if lo <= r.taken_at < hi]
        out.append(sum(inside) / len(inside))
    return out


@pytest.mark.parametrize(
    ("zone", "first", "hours"),
    [
        ("America/Los_Angeles", dt.date(2024, 3, 9), [24, 23, 24, 24]),  # spring forward
        ("America/Los_Angeles", dt.date(2024, 11, 2), [24, 25, 24, 24]),  # fall back
        ("Australia/Sydney", dt.date(2024, 4, 6), [24, 25, 24, 24]),  # autumn there
        ("Australia/Sydney", dt.date(2024, 10, 5), [24, 23, 24, 24]),
        ("Asia/Kolkata", dt.date(2024, 3, 9), [24, 24, 24, 24]),  # half an hour off UTC
        ("America/Phoenix", dt.date(2024, 3, 9), [24, 24, 24, 24]),
    ],
)
def test_day_buckets_start_at_local_midnight_in_the_zone_given(
    store: Store, zone: str, first: dt.date, hours: list[int]
) -> None:
    tz = ZoneInfo(zone)
    lo = dt.datetime.combine(first, dt.time(), tzinfo=tz).timestamp()
    rng = random.Random(zone)
    rows = [
        reading(lo - 86400 + 600 * i, load_w=float(rng.randrange(0, 5000)))
        for i in range(6 * 24 * 6)
    ]
    store.write_readings(rows)
    edges = [dt.datetime.combine(first + dt.timedelta(k), dt.time(), tzinfo=tz) for k in range(5)]
    start, end = lo + 3 * HOUR_S, edges[4].timestamp()  # from mid-morning of the first day
    h = store.history(GW, start, end, step_s=86400, tz=tz)
    assert h.step_s == 86400 and len(h.points) == 4
    assert [p.t for p in h.points] == [start] + [e.timestamp() for e in edges[1:4]]
    lengths = [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(edges)]
    assert [round(s / 3600) for s in lengths] == hours
    want = _local_day_means(rows, tz, first, 4)
    assert [p.load_w for p in h.points] == pytest.approx(want)
    # without a zone the days are UTC days, answered by the day rollups as before
    utc = store.history(GW, start, end, step_s=86400)
    assert utc.source == "day"
    assert all(p.t % 86400 == 0 for p in utc.points[1:])


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def test_daily_answers_the_first_and_last_days_of_the_calendar(store: Store, zone: str) -> None:
    tz = ZoneInfo(zone)
    store.write_readings([reading(T0 + 60 * i, load_imported_wh=float(i)) for i in range(3)])
    week = dt.timedelta(days=6)
    for first in (dt.date(1, 1, 2), dt.date.max - week):
        days = store.daily(GW, first, first + week, tz)
        assert [d.day for d in days] == [first + dt.timedelta(k) for k in range(7)]
        assert all(d.home_wh is None for d in days)
    with pytest.raises(ValueError, match="end_day"):
        store.daily(GW, dt.date(1, 1, 2), dt.date.max, tz)


# --- days and outages from Tesla's cloud (teg monitor backfill) ---------------------------------


def cloud_day(day: dt.date, tz: dt.tzinfo, wh: float, gateway: str = GW) -> CloudDay:
    start = dt.datetime.combine(day, dt.time(), tz)
    return CloudDay(
        gateway=gateway,
        start=start.timestamp(),
        end=(start + dt.timedelta(days=1)).timestamp(),
        **dict.fromkeys(COUNTER_NAMES, wh),
    )


def test_cloud_days_fill_only_the_days_without_local_readings(store: Store) -> None:
    tz = ZoneInfo("America/Los_Angeles")
    jan = [dt.date(2024, 1, d) for d in (1, 2, 3, 4)]
    midnight = dt.datetime(2024, 1, 2, tzinfo=tz).timestamp()
    # the monitor recorded Jan 2 only: 1 Wh per counter per minute from 06:00 to 07:00
    store.write_readings(
        reading(midnight + 6 * 3600 + 60 * i, **dict.fromkeys(COUNTER_NAMES, float(i)))
        for i in range(61)
    )
    cloud = [cloud_day(d, tz, 1000.0 * d.day) for d in jan[:3]]
    assert store.write_cloud_days(cloud) == 3
    assert store.write_cloud_days(cloud) == 0  # the same answer again changes nothing
    assert store.cloud_days(GW, cloud[0].start, cloud[2].end) == cloud
    d1, d2, d3, d4 = store.daily(GW, jan[0], jan[-1], tz)
    assert (d1.source, d1.home_wh, d1.grid_in_wh, d1.solar_wh) == ("cloud", 1000, 1000, 1000)
    assert (d2.source, d2.home_wh) == ("local", 60)  # the local day wins, never the cloud's
    assert (d3.source, d3.battery_out_wh) == ("cloud", 3000)
    assert d1.self_powered_percent == 0 and d1.solar_offset_percent == 100
    assert (d4.source, d4.home_wh) == (None, None)
    # a newer answer for a day replaces the older one; a counter not reported stays None
    newer = msgspec.structs.replace(cloud[2], load_imported_wh=None, solar_exported_wh=5.0)
    assert store.write_cloud_days([newer]) == 1
    d3 = store.daily(GW, jan[2], jan[2], tz)[0]
    assert (d3.home_wh, d3.solar_wh, d3.self_powered_percent) == (None, 5.0, None)
    assert store.cloud_days("other", 0, 4e9) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"load_imported_wh": float("nan")}, "load_imported_wh"),
        ({"site_exported_wh": -1.0}, "site_exported_wh"),
        ({"solar_exported_wh": 1e300}, "solar_exported_wh"),
        ({"end": T0}, "end must be"),
        ({"end": T0 + 30 * 3600}, "end must be"),
        ({"gateway": ""}, "gateway"),
    ],
)
def test_a_bad_cloud_day_is_refused_by_name_and_nothing_is_written(
    store: Store, change: dict[str, object], words: str
) -> None:
    good = CloudDay(gateway=GW, start=T0 - 86400, end=T0, site_imported_wh=1.0)
    bad = msgspec.structs.replace(
        CloudDay(gateway=GW, start=T0, end=T0 + 86400, site_imported_wh=1.0), **change
    )
    with pytest.raises(ValueError, match=words):
        store.write_cloud_days([good, bad])
    assert store.cloud_days(GW, 0, 4e9) == []


def test_cloud_outages_join_the_list_once_and_never_over_a_local_one(store: Store) -> None:
    statuses = ["SystemGridConnected", "SystemIslandedActive", "SystemGridConnected"]
    store.write_readings(reading(T0 + 600 * i, grid_status=s) for i, s in enumerate(statuses))
    [local] = store.outages(GW, T0, T0 + 3600)
    assert (local.start, local.end, local.source) == (T0 + 600, T0 + 1200, "local")
    cloud = [
        Outage(GW, T0 + 590, T0 + 1210, "cloud"),  # the same outage, seen by the cloud
        Outage(GW, T0 + 7200, T0 + 7500, "cloud"),  # one the monitor did not see
    ]
    assert store.write_cloud_outages(cloud) == 1
    assert store.write_cloud_outages(cloud) == 0  # twice changes nothing
    assert store.outages(GW, T0, T0 + 86400) == [local, Outage(GW, T0 + 7200, T0 + 7500, "cloud")]
    with pytest.raises(ValueError, match="end"):
        store.write_cloud_outages([Outage(GW, T0, None, "cloud")])
    with pytest.raises(ValueError, match="end before"):
        store.write_cloud_outages([Outage(GW, T0 + 9000, T0 + 8000, "cloud")])
