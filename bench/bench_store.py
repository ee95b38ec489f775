"""Store speed and size: a year of 5-second readings into SQLite, then history latency.

``TEGKIT_BENCH_STORE_FRACTION`` (default 1.0) runs a fraction of the year and scales the
ingest and size figures to a year; query latencies are over what was written.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from tegkit.monitor.readings import Reading
from tegkit.monitor.store.sqlite import SqliteStore

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
STEP_S = 5.0
PER_DAY = int(86400 / STEP_S)
YEAR_DAYS = 365
GATEWAY = "bench-site"


def synthetic_days(days: int, seed: int = 1) -> Iterator[list[Reading]]:
    """One list of readings per day: solar bell, noisy load, battery soaking up surplus."""
    rng = random.Random(seed)
    solar_shape = [
        max(0.0, math.sin(math.pi * (i / PER_DAY * 24 - 6) / 12)) for i in range(PER_DAY)
    ]
    counters = [1_000_000.0, 500_000.0, 300_000.0, 280_000.0, 2_000_000.0, 1_500_000.0]
    soe = 50.0
    for d in range(days):
        peak_w = rng.uniform(1500, 6000)  # cloudy to clear
        day: list[Reading] = []
        t_day = T0 + d * 86400
        for i in range(PER_DAY):
            solar = round(peak_w * solar_shape[i] + rng.uniform(0, 20), 1)
            load = round(600 + rng.uniform(0, 900), 1)
            surplus = solar - load
            battery = -min(surplus, 5000.0) if 5 < soe < 100 else 0.0
            site = round(load - battery - solar, 1)
            soe = min(100.0, max(5.0, soe - battery * STEP_S / 3600 / 135))
            wh = STEP_S / 3600
            counters[0] += max(site, 0) * wh
            counters[1] += max(-site, 0) * wh
            counters[2] += max(-battery, 0) * wh
            counters[3] += max(battery, 0) * wh
            counters[4] += load * wh
            counters[5] += solar * wh
            day.append(
                Reading(
                    gateway=GATEWAY,
                    taken_at=t_day + i * STEP_S,
                    site_w=site,
                    battery_w=battery,
                    load_w=load,
                    solar_w=solar,
                    soe_raw_percent=round(soe, 3),
                    grid_status="SystemGridConnected",
                    site_imported_wh=counters[0],
                    site_exported_wh=counters[1],
                    battery_imported_wh=counters[2],
                    battery_exported_wh=counters[3],
                    load_imported_wh=counters[4],
                    solar_exported_wh=counters[5],
                )
            )
        yield day


def run(fraction: float | None = None) -> list[tuple[str, float, str]]:
    """(name, value, unit) rows: ingest rate, bytes on disk, worst history latency."""
    if fraction is None:
        fraction = float(os.environ.get("TEGKIT_BENCH_STORE_FRACTION", "1.0"))
    days = max(1, round(YEAR_DAYS * fraction))
    scale = YEAR_DAYS / days
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-") as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        written = 0
        write_s = 0.0
        for batch in synthetic_days(days):  # one commit per day of readings
            start = time.perf_counter()
            written += store.write_readings(batch)
            write_s += time.perf_counter() - start
        store.checkpoint()
        size = store.size_bytes()
        rows = [
            ("readings written", float(written), "readings"),
            ("ingest", written / write_s, "readings/s"),
            ("bytes on disk (one year)", size * scale, "bytes"),
            ("bytes per reading", size / written, "bytes"),
        ]
        end = T0 + days * 86400
        for name, span in (
            ("day", 86400),
            ("week", 7 * 86400),
            ("month", 30 * 86400),
            ("year", 365 * 86400),
        ):
            worst = 0.0
            points = 0
            # a cold first query and ranges ending at different points of the data
            for k in range(5):
                q_end = end - k * (end - T0 - min(span, end - T0)) / 4
                q_start = max(T0, q_end - span)
                t = time.perf_counter()
                h = store.history(GATEWAY, q_start, q_end, max_points=2000)
                worst = max(worst, time.perf_counter() - t)
                points = max(points, len(h.points))
            rows.append((f"history {name} ({points} points, {h.source})", worst * 1000, "ms"))
        # days of a site's own zone: 23- and 25-hour days are summed from hour rollups
        la = ZoneInfo("America/Los_Angeles")
        for name, span in (("month", 30 * 86400), ("year", 365 * 86400)):
            worst = 0.0
            q_start = max(T0, end - span)
            for _ in range(5):
                t = time.perf_counter()
                h = store.history(GATEWAY, q_start, end, step_s=86400, tz=la)
                worst = max(worst, time.perf_counter() - t)
            label = f"history {name} by LA day ({len(h.points)} points, {h.source})"
            rows.append((label, worst * 1000, "ms"))
        store.close()
        rows += fleet_paced(Path(tmp) / "fleet.db")
    return rows


def fleet_paced(db: Path, gateways: int = 200, hours: float = 2.0) -> list[tuple[str, float, str]]:
    """The monitor's own pattern: each commit holds one new reading of every gateway (a
    group commit), so every write lands in an hour already holding readings. CPU per
    reading, averaged over whole hours (the cost grows with an hour's readings if each
    write rewrites the hour)."""
    store = SqliteStore(db)
    rng = random.Random(2)
    names = [f"gw-{k}" for k in range(gateways)]
    polls = int(hours * 3600 / STEP_S)
    start = time.process_time()
    for i in range(polls):
        t = T0 + i * STEP_S
        store.write_readings(
            Reading(gateway=name, taken_at=t + k * 0.001, load_w=rng.uniform(200, 3000),
                    load_imported_wh=1000.0 + i * 1.5, soe_raw_percent=50.0,
                    grid_status="SystemGridConnected")
            for k, name in enumerate(names)
        )  # fmt: skip
    cpu_s = time.process_time() - start
    store.close()
    n = polls * gateways
    return [
        (f"fleet-paced writes ({gateways} gateways, {hours:g} h)", float(n), "readings"),
        ("fleet-paced CPU per reading", cpu_s / n * 1e6, "us"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<44} {value:>16,.1f} {unit}")
