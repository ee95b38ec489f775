"""The pytest fixtures' simulator: start-up and stop times (target: start <= 300 ms).

Timed through TegSimFactory, the code teg_sim and teg_sim_factory run: a simulator on its
own thread and loop, both HTTPS ports listening, certificates made in a fresh temporary
directory; stop closes the ports, removes the directory and joins the thread. STARTS starts
after one warm-up (imports). A fresh interpreter's first start, imports included, is timed
in child processes (pytest imported first, as in a test run): what the first test using
the fixture pays once per run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

STARTS = 30
FRESH_RUNS = 3
TARGET_START_MS = 300.0
_FIRST_START = """
import json, time
import pytest  # loaded already in a test run: not the simulator's to pay
started = time.perf_counter()
from tegkit.sim.pytest_plugin import TegSimFactory
factory = TegSimFactory()
factory()
ready = time.perf_counter()
factory.stop_all()
print(json.dumps({"first_start_s": ready - started}))
"""


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _time_starts(count: int) -> tuple[list[float], list[float]]:
    from tegkit.sim.pytest_plugin import TegSimFactory

    factory = TegSimFactory()
    factory().stop()  # warm-up: imports and first-use caches
    factory.started.clear()
    starts_s, stops_s = [], []
    for _ in range(count):
        began = time.perf_counter()
        sim = factory()
        started = time.perf_counter()
        sim.stop()
        stopped = time.perf_counter()
        factory.started.clear()
        starts_s.append(started - began)
        stops_s.append(stopped - started)
    return starts_s, stops_s


def _first_start_s() -> float:
    runs = []
    for _ in range(FRESH_RUNS):
        child = subprocess.run(
            [sys.executable, "-c", _FIRST_START],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        runs.append(float(json.loads(child.stdout)["first_start_s"]))
    return statistics.median(runs)


def run() -> list[tuple[str, float, str]]:
    starts_s, stops_s = _time_starts(STARTS)
    target = f"target <= {TARGET_START_MS:g}"
    return [
        (
            f"sim fixture: start, median of {STARTS} ({target})",
            statistics.median(starts_s) * 1e3,
            "ms",
        ),
        (f"sim fixture: start, p95 of {STARTS} ({target})", _p95(starts_s) * 1e3, "ms"),
        (f"sim fixture: stop, median of {STARTS}", statistics.median(stops_s) * 1e3, "ms"),
        (f"sim fixture: stop, p95 of {STARTS}", _p95(stops_s) * 1e3, "ms"),
        (
            f"sim fixture: first start, fresh interpreter + imports (median of {FRESH_RUNS})",
            _first_start_s() * 1e3,
            "ms",
        ),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:.2f} {unit}")
