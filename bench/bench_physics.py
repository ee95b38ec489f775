"""Benchmark: seconds to simulate a year of a site at 1-minute steps, and peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tegkit.sim.physics import Site, SiteConfig
from tegkit.tariff import builtin_tariff

STEPS_PER_YEAR = 365 * 24 * 60
TARGET_YEAR_S = 20.0
TARGET_RSS_MB = 100.0


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _simulate_year(mode: str) -> float:
    config = SiteConfig(tariff=builtin_tariff("california-tou"), grid_charging=True)
    site = Site(config, datetime(2024, 1, 1, tzinfo=ZoneInfo("America/Los_Angeles")), seed=1)
    site.mode = mode
    started = time.perf_counter()
    advance = site.advance
    for _ in range(STEPS_PER_YEAR):
        advance(60.0)
    return time.perf_counter() - started


def _measure() -> dict[str, float]:
    """Both modes' year, then this process's peak RSS (run in a fresh process)."""
    seconds = {mode: _simulate_year(mode) for mode in ("self_consumption", "autonomous")}
    return {**seconds, "peak_rss_mb": _peak_rss_mb()}


def run() -> list[tuple[str, float, str]]:
    """(name, value, unit) rows: a year in self-consumption and autonomous mode, peak RSS.

    Measured in a child process, so the peak RSS is the simulator's, not whatever the
    benchmark runner loaded before.
    """
    child = subprocess.run(
        [sys.executable, "-m", "bench.bench_physics", "--child"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    measured = json.loads(child.stdout)
    rows = []
    for mode in ("self_consumption", "autonomous"):
        seconds = measured[mode]
        rows.append(
            (f"physics: 1 year @ 60 s steps, {mode} (target <= {TARGET_YEAR_S:g})", seconds, "s")
        )
        rows.append((f"physics: per step, {mode}", seconds / STEPS_PER_YEAR * 1e6, "us"))
    rows.append(
        (f"physics: process peak RSS (target <= {TARGET_RSS_MB:g})", measured["peak_rss_mb"], "MB")
    )
    return rows


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(_measure()))
        raise SystemExit(0)
    for name, value, unit in run():
        print(f"{name:<62} {value:10.2f} {unit}")
