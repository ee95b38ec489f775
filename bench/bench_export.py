"""Export speed: a year of 5-second readings (6.3 M) from SQLite as CSV, Parquet and line
protocol (`teg monitor export`), in rows/s and MB/s of output.

The year is generated once into a temporary SQLite store through its bulk write path
(``write_readings``, a day per transaction: bench_store's synthetic days), which takes
about two minutes on its own. Each format is then exported through
``tegkit.monitor.export.export``, as the command does, to a sink that counts the bytes and
keeps none (the disk's speed is not the exporter's). ``TEGKIT_BENCH_EXPORT_FRACTION``
(default 1.0) generates and exports a fraction of the year: the rows are then labelled
``(scaled)`` and the seconds extrapolated to a year; rates are measured either way.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.bench_store import GATEWAY, T0, YEAR_DAYS, synthetic_days
from tegkit.monitor import export as ex
from tegkit.monitor.store.sqlite import SqliteStore


class CountingSink:
    """A binary file that counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    # what io.TextIOWrapper and pyarrow ask of a binary file
    closed = False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes

    def close(self) -> None:
        pass


def run(fraction: float | None = None) -> list[tuple[str, float, str]]:
    if fraction is None:
        fraction = float(os.environ.get("TEGKIT_BENCH_EXPORT_FRACTION", "1.0"))
    days = max(1, round(YEAR_DAYS * fraction))
    scale = YEAR_DAYS / days
    tag = "" if days == YEAR_DAYS else " (scaled)"
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-export-") as tmp:
        store = SqliteStore(Path(tmp) / "year.db")
        try:
            t = time.perf_counter()
            for day in synthetic_days(days):
                store.write_readings(day)
            rows.append(
                (
                    f"export: generate a year of 5 s readings{tag}",
                    (time.perf_counter() - t) * scale,
                    "s",
                )
            )
            end = T0 + days * 86400
            for what, fmt in [(None, f) for f in ex.FORMATS] + [("minute", "csv")]:
                sink = CountingSink()
                t = time.perf_counter()
                count = ex.export(
                    store,
                    sink,  # type: ignore[arg-type]
                    gateways=[GATEWAY],
                    start=T0,
                    end=end,
                    what=what or "readings",
                    fmt=fmt,
                )
                elapsed = time.perf_counter() - t
                name = f"export {fmt}" + (f" {what} rollups" if what else "")
                rows.append((f"{name}: rows/s", count / elapsed, "rows/s"))
                rows.append((f"{name}: MB/s", sink.bytes / elapsed / 1e6, "MB/s"))
                rows.append((f"{name}: a year{tag}", elapsed * scale, "s"))
                rows.append((f"{name}: size of a year{tag}", sink.bytes * scale / 1e6, "MB"))
        finally:
            store.close()
    return rows
