"""`teg monitor export`: a real SQLite store, filled through its write API, exported as CSV,
Parquet and InfluxDB line protocol and read back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
import re
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from tegkit.cli import main
from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES, GridStatusValue
from tegkit.monitor import export as ex
from tegkit.monitor.readings import Reading
from tegkit.monitor.store import open_store
from tegkit.monitor.store.sqlite import SqliteStore
from tegkit.percent import raw_to_app

T0 = 1_710_028_800.0  # 2024-03-10T00:00:00Z
STEP_S = 5.0
LA = ZoneInfo("America/Los_Angeles")
ODD = "my home, =\\ x"  # a gateway name that needs every kind of line-protocol escape


def reading(gateway: str, i: int, t0: float = T0) -> Reading:
    """The i-th reading: every value present, except a pattern of missing ones."""
    return Reading(
        gateway=gateway,
        taken_at=t0 + i * STEP_S,
        site_w=float(100 + i % 50),
        battery_w=None if i % 3 == 0 else float(-(i % 700)),
        load_w=float(500 + i % 11),
        solar_w=None if i % 7 == 0 else float(i % 4000),
        soe_raw_percent=None if i % 5 == 0 else 40 + (i % 600) / 100,
        grid_status=None if i % 4 == 0 else GridStatusValue.CONNECTED,
        site_imported_wh=1000.0 + i,
        site_exported_wh=None if i % 2 else 20.0 + i,
        battery_imported_wh=300.0 + i,
        battery_exported_wh=280.0 + i,
        load_imported_wh=5000.0 + 2 * i,
        solar_exported_wh=None if i % 9 == 0 else 7000.0 + i,
    )


def fill(store: SqliteStore, gateway: str, n: int, t0: float = T0) -> None:
    batch = 20_000
    for a in range(0, n, batch):
        store.write_readings(reading(gateway, i, t0) for i in range(a, min(n, a + batch)))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """Two days of 5-second readings for "home" and one hour for an oddly named gateway."""
    path = tmp_path / "monitor.db"
    store = SqliteStore(path)
    fill(store, "home", 2 * 17_280)
    fill(store, ODD, 720)
    store.close()
    yield path


def teg(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["monitor", "export", "--db", str(db), *args])


def stored(db: Path, gateway: str, start: float, end: float) -> list[Reading]:
    store = open_store(db)
    try:
        return store.readings(gateway, start, end)
    finally:
        store.close()


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_csv_round_trips_the_readings_and_missing_stays_empty(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "home.csv"
    result = teg(
        db, "--from", "2024-03-10T00:00Z", "--to", "2024-03-10T06:00Z", "--format", "csv",
        "--gateway", "home", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    want = stored(db, "home", T0, T0 + 6 * 3600)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(want) == 6 * 720
    assert list(rows[0]) == [name for name, _ in ex.READING_COLUMNS]
    for row, r in zip(rows, want, strict=True):
        assert row["gateway"] == "home"
        assert int(row["time_ms"]) == round(r.taken_at * 1000)
        when = dt.datetime.fromisoformat(row["time_utc"])
        assert row["time_utc"].endswith("Z") and when.timestamp() == r.taken_at
        for name in (*POWER_NAMES, "soe_raw_percent", *COUNTER_NAMES):
            assert _num(row[name]) == getattr(r, name), name
        app = _num(row["soe_app_percent"])
        assert app == (None if r.soe_raw_percent is None else raw_to_app(r.soe_raw_percent))
        assert (row["grid_status"] or None) == r.grid_status
    # missing is an empty cell, never 0
    assert rows[0]["battery_w"] == "" and rows[0]["soe_raw_percent"] == ""
    assert rows[1]["site_exported_wh"] == ""


def test_parquet_has_typed_columns_nulls_and_a_row_group_per_chunk(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "home.parquet"
    result = teg(
        db, "--from", "2024-03-10", "--to", "2024-03-11", "--format", "parquet",
        "--gateway", "home", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    f = pq.ParquetFile(out)
    # two days at 6-hour chunks: each chunk its own row group, written as it streamed
    assert f.metadata.num_row_groups == (2 * 86400) // ex.READINGS_CHUNK_S
    schema = f.schema_arrow
    assert str(schema.field("time_utc").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("time_ms").type) == "int64"
    assert str(schema.field("site_w").type) == "double"
    assert str(schema.field("grid_status").type) == "string"
    rows = f.read().to_pylist()
    want = stored(db, "home", T0, T0 + 2 * 86400)
    assert len(rows) == len(want) == 2 * 17_280
    for row, r in zip(rows, want, strict=True):
        assert row["time_utc"].timestamp() == r.taken_at
        assert row["time_ms"] == round(r.taken_at * 1000)
        for name in (*POWER_NAMES, "soe_raw_percent", "grid_status", *COUNTER_NAMES):
            assert row[name] == getattr(r, name), name
    assert rows[0]["battery_w"] is None and rows[0]["soe_app_percent"] is None


# ---- a line-protocol reader, from the specification's escaping rules ---------------------
def _split(text: str, seps: str) -> list[str]:
    """Split on unescaped separators outside double quotes, keeping escapes."""
    out, cur, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c in seps and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    return [*out, cur]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, Any], int]:
    head, fields, ts = _split(line, " ")
    measurement, *tags = _split(head, ",")
    tag_set = dict(tuple(_unescape(x) for x in _split(t, "=")) for t in tags)
    values: dict[str, Any] = {}
    for part in _split(fields, ","):
        key, value = _split(part, "=")
        if value.startswith('"'):
            values[_unescape(key)] = _unescape(value[1:-1])
        elif value.endswith("i"):
            values[_unescape(key)] = int(value[:-1])
        else:
            values[_unescape(key)] = float(value)
    return _unescape(measurement), tag_set, values, int(ts)


def test_line_protocol_round_trips_with_escapes_and_dashboard_field_names(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "all.lp"
    result = teg(
        db, "--from", "2024-03-10T00:00Z", "--to", "2024-03-10T01:00Z", "--format", "influx",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    by_gateway: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for line in lines:
        measurement, tags, values, ns = parse_line(line)
        assert measurement == "powerwall"
        by_gateway.setdefault(tags["gateway"], []).append((values, ns))
    assert set(by_gateway) == {"home", ODD}  # every gateway when none is named
    for gateway, points in by_gateway.items():
        want = stored(db, gateway, T0, T0 + 3600)
        assert len(points) == len(want) == 720
        for (values, ns), r in zip(points, want, strict=True):
            assert ns == round(r.taken_at * 1000) * 1_000_000
            assert values.get("load_instant_power") == r.load_w
            assert values.get("battery_instant_power") == r.battery_w  # absent when missing
            assert values.get("solar_energy_exported") == r.solar_exported_wh
            assert values.get("site_energy_exported") == r.site_exported_wh
            assert values.get("percentage") == r.soe_raw_percent
            assert values.get("grid_status") == r.grid_status
            assert set(values) <= set(ex.INFLUX_READING_FIELDS.values())


def test_line_protocol_escapes_follow_the_specification() -> None:
    assert ex.escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert ex.escape_key("a b,c=d") == "a\\ b\\,c\\=d"
    assert ex.escape_string('say "hi" \\ there') == '"say \\"hi\\" \\\\ there"'
    with pytest.raises(ValueError, match="line breaks"):
        ex.escape_key("two\nlines")


@pytest.mark.parametrize("resolution", ["minute", "quarter", "hour", "day"])
def test_rollups_are_the_stores_buckets(db: Path, tmp_path: Path, resolution: str) -> None:
    out = tmp_path / "r.csv"
    result = teg(
        db, "--from", "2024-03-10", "--to", "2024-03-11", "--format", "csv",
        "--what", resolution, "--gateway", "home", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    store = open_store(db)
    try:
        energy = store.energy("home", T0, T0 + 2 * 86400, resolution)
        size = ex.BUCKET_S[resolution]
        n = 2 * 86400 // size
        hist = store.history("home", T0, T0 + 2 * 86400, size, max_points=n, tz=dt.UTC)
    finally:
        store.close()
    assert len(rows) == len(energy) == n
    for row, bucket, point in zip(rows, energy, hist.points, strict=True):
        assert int(row["start_ms"]) == round(bucket.start * 1000) == round(point.t * 1000)
        assert int(row["bucket_s"]) == size
        for name in COUNTER_NAMES:
            assert float(row[name]) == getattr(bucket, name)
        for power in POWER_NAMES:
            mean = row[f"{power.removesuffix('_w')}_mean_w"]
            assert _num(mean) == getattr(point, power)
        assert _num(row["soe_last_raw_percent"]) == point.soe_raw_percent
    # the whole range's energy equals the counters' difference across it
    readings = stored(db, "home", T0, T0 + 2 * 86400)
    total = sum(float(r["load_imported_wh"]) for r in rows)
    assert total == pytest.approx(readings[-1].load_imported_wh - readings[0].load_imported_wh)


def test_a_local_day_across_spring_forward_is_23_hours(tmp_path: Path) -> None:
    path = tmp_path / "dst.db"
    store = SqliteStore(path)
    fill(store, "home", 3 * 17_280, t0=T0 - 86400)  # 2024-03-09 .. 03-11 UTC
    store.close()
    out = tmp_path / "d.csv"
    result = teg(
        path, "--from", "2024-03-10", "--to", "2024-03-10", "--tz", "America/Los_Angeles",
        "--format", "csv", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    assert len(rows) == 23 * 720  # 02:00 to 03:00 does not exist that day
    first = dt.datetime.fromisoformat(rows[0]["time_utc"]).astimezone(LA)
    last = dt.datetime.fromisoformat(rows[-1]["time_utc"]).astimezone(LA)
    assert first == dt.datetime(2024, 3, 10, 0, 0, tzinfo=LA)
    assert last == dt.datetime(2024, 3, 10, 23, 59, 55, tzinfo=LA)
    times = [int(r["time_ms"]) for r in rows]
    assert times == sorted(set(times))  # each instant once, in order, across the change
    assert all(b - a == 5000 for a, b in itertools.pairwise(times))


def test_gaps_are_not_filled(tmp_path: Path) -> None:
    path = tmp_path / "gap.db"
    store = SqliteStore(path)
    store.write_readings([reading("home", i) for i in range(10)])
    store.write_readings([reading("home", i) for i in range(2000, 2010)])  # ~2.8 h later
    store.close()
    for fmt in ("csv", "influx"):
        result = teg(path, "--from", "2024-03-10", "--to", "2024-03-10", "--format", fmt)
        assert result.exit_code == 0, result.output
        body = result.stdout.splitlines()
        assert len(body) == 20 + (fmt == "csv")


LONG_DAYS = 3


@pytest.fixture(scope="module")
def long_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path_factory.mktemp("long") / "long.db")
    fill(store, "home", LONG_DAYS * 17_280)
    yield store
    store.close()


def _peaks(store: SqliteStore, fmt: str, days: int) -> tuple[int, int, int]:
    """(rows, peak bytes Python allocated, peak bytes pyarrow allocated) of one export."""
    import pyarrow as pa

    pool = pa.default_memory_pool()
    arrow_before = pool.bytes_allocated()
    with open(os.devnull, "wb") as sink:
        tracemalloc.start()
        try:
            count = ex.export(
                store, sink, gateways=["home"], start=T0, end=T0 + days * 86400, fmt=fmt
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return count, peak, pool.max_memory() - arrow_before


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_memory_does_not_grow_with_the_range(long_db: SqliteStore, fmt: str) -> None:
    short_rows, short_peak, _ = _peaks(long_db, fmt, 1)
    long_rows, long_peak, arrow_peak = _peaks(long_db, fmt, LONG_DAYS)
    assert (short_rows, long_rows) == (17_280, LONG_DAYS * 17_280)
    # three times the rows, about the same peak: one chunk at a time is held
    assert long_peak < 1.5 * short_peak, (short_peak, long_peak)
    # pyarrow allocates outside tracemalloc: its peak stays a chunk's arrays
    assert arrow_peak < 16 * 2**20, arrow_peak


EXPORT_UNDER_LIMIT = """
import resource, sys
from tegkit.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_export_leaves_the_old_file_and_no_half_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.csv"
    out.write_text("the previous export\n")
    # the file size limit makes the write fail part way, as a full disk would
    proc = subprocess.run(
        [
            sys.executable, "-c", EXPORT_UNDER_LIMIT, "monitor", "export", "--db", str(db),
            "--from", "2024-03-10", "--to", "2024-03-11", "--format", "csv",
            "--gateway", "home", "--out", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_text() == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["keep.csv", "monitor.db", *(p.name for p in tmp_path.glob("monitor.db-*"))]
    )
    assert resource.RLIMIT_FSIZE  # the limit exists on this platform


def test_stdout_is_the_default(db: Path) -> None:
    result = teg(
        db, "--from", "2024-03-10T00:00Z", "--to", "2024-03-10T00:01Z", "--format", "csv",
        "--gateway", "home",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 12
    assert "12 rows" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2024-03-11", "--to", "2024-03-10T12:00"], "--to"),
        (["--from", "2024-03-10T12:00", "--to", "2024-03-10T12:00"], "a time after --from"),
        (["--from", "2010-01-01", "--to", "2024-03-10"], "at most 3660 days"),
        (["--from", "yesterday", "--to", "2024-03-10"], "--from"),
        (["--from", "2024-03-10", "--to", "2024-03-10", "--tz", "Mars/Olympus"], "--tz"),
        (["--from", "2024-03-10", "--to", "2024-03-10", "--gateway", "garage"], "'garage'"),
        (["--from", "2024-03-10", "--to", "2024-03-10", "--what", "week"], "'week'"),
        (["--from", "2024-03-10", "--to", "2024-03-10", "--out", "/nowhere/x.csv"], "--out"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(
    db: Path, args: list[str], words: str
) -> None:
    format_args = [] if "--format" in args else ["--format", "csv"]
    result = teg(db, *args, *format_args)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_bad_format_and_missing_database_are_named(db: Path, tmp_path: Path) -> None:
    result = teg(db, "--from", "2024-03-10", "--to", "2024-03-10", "--format", "xlsx")
    assert result.exit_code == 2
    assert "'xlsx'" in result.output and "csv" in result.output and "parquet" in result.output
    missing = tmp_path / "none.db"
    result = teg(missing, "--from", "2024-03-10", "--to", "2024-03-10", "--format", "csv")
    assert result.exit_code == 2 and "--db" in result.output
    assert not missing.exists()  # an export never creates a database
    result = teg(db, "--from", "2024-03-10", "--to", "2024-03-10", "--format", "csv",
                 "--gateway", "garage")  # fmt: skip
    assert "gateways: home, my home" in result.output


def test_a_terminal_shows_a_progress_bar_and_a_pipe_does_not(db: Path, tmp_path: Path) -> None:
    import pexpect

    teg_bin = str(Path(sys.executable).with_name("teg"))
    out = tmp_path / "tty.csv"
    args = [
        "monitor", "export", "--db", str(db), "--from", "2024-03-10", "--to", "2024-03-11",
        "--format", "influx", "--gateway", "home", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    child = pexpect.spawn(teg_bin, args, env=env, encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = child.before or ""
    assert "export" in screen and "%" in screen and "━" in screen  # rich's bar
    assert f"{2 * 17_280} rows" in screen
    # stderr not a terminal: the same export says its count and draws nothing
    piped = subprocess.run([teg_bin, *args], capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "━" not in piped.stderr and "%" not in piped.stderr
    assert piped.stderr.strip() == f"teg monitor export: {2 * 17_280} rows to {out}"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_either_backend_exports_the_same(store_url: str, make_store: Any, tmp_path: Path) -> None:
    store = make_store()
    store.write_readings([reading("home", i) for i in range(1440)])  # two hours
    want = store.readings("home", T0, T0 + 7200)
    assert store.gateways() == ["home"]
    out = tmp_path / "b.parquet"
    result = CliRunner().invoke(
        main,
        ["monitor", "export", "--db", store_url, "--from", "2024-03-10", "--to", "2024-03-10",
         "--format", "parquet", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert [r["time_ms"] for r in rows] == [round(r.taken_at * 1000) for r in want]
    assert [r["battery_w"] for r in rows] == [r.battery_w for r in want]
