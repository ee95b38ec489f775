"""Exports of the store: readings (full resolution) or rollups, as CSV, Parquet or InfluxDB
line protocol, streamed.

The store is read in chunks of time through its ordinary reads (``Store.readings`` for
readings; ``Store.history`` and ``Store.energy`` for rollups), each chunk written before the
next is read, so memory stays bounded whatever the range. Gaps are not filled: a time
without a reading has no row, and a value the gateway did not report is an empty cell, a
Parquet null or an absent InfluxDB field, never 0.

Columns (CSV and Parquet), units in the names:

- readings: ``gateway, time_utc, time_ms``, the power of each meter (``site_w`` ...; W,
  signs as the gateway's: site > 0 imports, battery > 0 discharges), ``soe_raw_percent``
  (the gateway's scale) and ``soe_app_percent`` (the Tesla app's), ``grid_status``, and each
  cumulative counter (``site_imported_wh`` ...; Wh as the gateway reports them).
- rollups: ``gateway, start_utc, start_ms, bucket_s``, the mean power of each meter over the
  bucket (``site_mean_w`` ...), the last state of energy in it (``soe_last_raw_percent``,
  ``soe_last_app_percent``) and the energy of each counter during it (``site_imported_wh``
  ...). Buckets are UTC minutes, quarter hours, hours and days, as the store keeps them.

InfluxDB line protocol: readings are measurement ``powerwall`` with the field names the
InfluxDB-based Powerwall dashboards keep from ``/api/meters/aggregates`` (``site_instant_power``
W, ``site_energy_imported`` Wh ...) and ``percentage`` (raw percent, as
``/api/system_status/soe``), plus ``percentage_app`` and ``grid_status``; rollups are
measurement ``powerwall_minute`` (``_quarter``, ``_hour``, ``_day``) with the CSV column
names as fields. The tag is ``gateway``; timestamps are nanoseconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Final, Protocol

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import COUNTER_NAMES, POWER_NAMES
from tegkit.monitor.readings import Reading
from tegkit.monitor.store import Store
from tegkit.percent import raw_to_app

RESOLUTIONS: Final = ("minute", "quarter", "hour", "day")
#: what can be exported: full-resolution readings or one of the rollups
WHATS: Final = ("readings", *RESOLUTIONS)
FORMATS: Final = ("csv", "parquet", "influx")
BUCKET_S: Final = {"minute": 60, "quarter": 900, "hour": 3600, "day": 86400}
#: the longest range one export covers: a longer one is a typo
MAX_RANGE_DAYS: Final = 3660
#: readings are read this many seconds at a time (4,320 readings at 5 s)
READINGS_CHUNK_S: Final = 6 * 3600
#: rollups are read this many buckets at a time
ROLLUP_CHUNK_BUCKETS: Final = 5000
MEASUREMENT: Final = "powerwall"

Row = tuple[Any, ...]


# ---- columns --------------------------------------------------------------------------
def _meter(power: str) -> str:
    return power.removesuffix("_w")


#: (name, kind) in file order; kind is "str", "time", "ms", "int" or "float"
READING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("gateway", "str"),
    ("time_utc", "time"),
    ("time_ms", "ms"),
    *((p, "float") for p in POWER_NAMES),
    ("soe_raw_percent", "float"),
    ("soe_app_percent", "float"),
    ("grid_status", "str"),
    *((c, "float") for c in COUNTER_NAMES),
)
ROLLUP_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("gateway", "str"),
    ("start_utc", "time"),
    ("start_ms", "ms"),
    ("bucket_s", "int"),
    *((f"{_meter(p)}_mean_w", "float") for p in POWER_NAMES),
    ("soe_last_raw_percent", "float"),
    ("soe_last_app_percent", "float"),
    *((c, "float") for c in COUNTER_NAMES),
)


def columns(what: str) -> tuple[tuple[str, str], ...]:
    return READING_COLUMNS if what == "readings" else ROLLUP_COLUMNS


def _influx_reading_field(name: str) -> str:
    """The name the InfluxDB Powerwall dashboards use for one of our reading columns:
    site_w -> site_instant_power, site_imported_wh -> site_energy_imported."""
    if name in POWER_NAMES:
        return f"{_meter(name)}_instant_power"
    if name in COUNTER_NAMES:
        meter, direction = name.removesuffix("_wh").rsplit("_", 1)
        return f"{meter}_energy_{direction}"
    return {"soe_raw_percent": "percentage", "soe_app_percent": "percentage_app"}.get(name, name)


#: the InfluxDB field of each reading column (time and gateway are the timestamp and tag)
INFLUX_READING_FIELDS: Final = {
    name: _influx_reading_field(name) for name, _ in READING_COLUMNS[3:]
}


# ---- the range ------------------------------------------------------------------------
DATE_OR_TIME = "a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM[:SS][+HH:MM|Z]"


def parse_when(field: str, text: str, tz: dt.tzinfo, *, end: bool = False) -> float:
    """Epoch seconds of a --from/--to value. A date is its midnight in ``tz``; as an end,
    the midnight after it (the day is included). A time without an offset is in ``tz``."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp()
        when = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InvalidInputError(field, DATE_OR_TIME, text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def check_range(start: float, end: float) -> None:
    """InvalidInputError naming --to when the range is empty, reversed or too long."""
    if end <= start:
        raise InvalidInputError("to", "a time after --from", _iso(end))
    if end - start > MAX_RANGE_DAYS * 86400:
        raise InvalidInputError(
            "to", f"at most {MAX_RANGE_DAYS} days after --from (about 10 years)", _iso(end)
        )


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


# ---- reading the store in chunks ------------------------------------------------------
def _pct(raw: float | None) -> float | None:
    return None if raw is None else raw_to_app(raw)


#: a reading's values in file order, read in one call (a year is millions of readings)
_VALUES = operator.attrgetter(*POWER_NAMES, "soe_raw_percent", "grid_status", *COUNTER_NAMES)
_SOE_AT = len(POWER_NAMES)


def _reading_row(r: Reading) -> Row:
    ms = round(r.taken_at * 1000)
    v = _VALUES(r)
    soe = v[_SOE_AT]
    return (r.gateway, ms, ms, *v[: _SOE_AT + 1], _pct(soe), *v[_SOE_AT + 1 :])


def reading_chunks(
    store: Store, gateway: str, start: float, end: float
) -> Iterator[tuple[float, list[Row]]]:
    """(time read up to, rows) per chunk of READINGS_CHUNK_S, in time order."""
    t = start
    while t < end:
        upto = min(t + READINGS_CHUNK_S, end)
        yield upto, [_reading_row(r) for r in store.readings(gateway, t, upto)]
        t = upto


def rollup_chunks(
    store: Store, gateway: str, start: float, end: float, resolution: str
) -> Iterator[tuple[float, list[Row]]]:
    """(time read up to, rows) per chunk of buckets: the buckets the store holds that start
    in [start, end). A bucket's means and last state of energy come from ``history``, its
    energy from ``energy``: both read the same rollup table."""
    size_s = BUCKET_S[resolution]
    t = start // size_s * size_s
    if t < start:
        t += size_s  # a bucket that began before the range is not in it
    while t < end:
        upto = min(t + ROLLUP_CHUNK_BUCKETS * size_s, end)
        rows: list[Row] = []
        buckets = store.energy(gateway, t, upto, resolution)
        if buckets:
            n = -(-(upto - t) // size_s)
            hist = store.history(gateway, t, upto, size_s, max_points=int(n), tz=dt.UTC)
            means = {round(p.t * 1000): p for p in hist.points}
            for b in buckets:
                ms = round(b.start * 1000)
                p = means.get(ms)
                powers = [None if p is None else getattr(p, name) for name in POWER_NAMES]
                soe = None if p is None else p.soe_raw_percent
                rows.append(
                    (
                        gateway,
                        ms,
                        ms,
                        size_s,
                        *powers,
                        soe,
                        _pct(soe),
                        *(getattr(b, c) for c in COUNTER_NAMES),
                    )
                )
        yield upto, rows
        t = upto


# ---- writers ----------------------------------------------------------------------------
class Writer(Protocol):
    def write(self, rows: Sequence[Row]) -> None: ...
    def close(self) -> None: ...


@functools.lru_cache(maxsize=64)
def _minute_iso(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:")


def _iso_ms(ms: int) -> str:
    """ISO-8601 UTC to the millisecond: 2024-03-10T08:00:05.000Z (a minute's prefix is
    formatted once: strftime per row was a tenth of a CSV export)."""
    minute, rest = divmod(ms, 60_000)
    return f"{_minute_iso(minute)}{rest // 1000:02d}.{rest % 1000:03d}Z"


class CsvWriter:
    """A header, then one line per row: times as ISO-8601 UTC and epoch ms, missing empty."""

    def __init__(self, out: IO[bytes], what: str) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self._csv = csv.writer(self._text, lineterminator="\n")
        cols = columns(what)
        self._time = [i for i, (_, kind) in enumerate(cols) if kind == "time"]
        self._csv.writerow([name for name, _ in cols])

    def write(self, rows: Sequence[Row]) -> None:
        for row in rows:
            values = list(row)
            for i in self._time:
                values[i] = _iso_ms(values[i])
            self._csv.writerow(values)  # None is an empty cell

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the caller owns the file


class ParquetWriter:
    """Typed columns (timestamps in ms UTC, int64, float64, strings), nulls for missing,
    one row group per chunk as it streams."""

    def __init__(self, out: IO[bytes], what: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        kinds = {
            "str": pa.string(),
            "time": pa.timestamp("ms", tz="UTC"),
            "ms": pa.int64(),
            "int": pa.int64(),
            "float": pa.float64(),
        }
        self._pa = pa
        self._schema = pa.schema([(name, kinds[kind]) for name, kind in columns(what)])
        self._writer = pq.ParquetWriter(out, self._schema, compression="zstd")

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        cols = list(zip(*rows, strict=True))
        arrays = [
            self._pa.array(col, type=field.type)
            for col, field in zip(cols, self._schema, strict=True)
        ]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def escape_key(text: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces take a backslash."""
    _no_newline(text)
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def escape_measurement(text: str) -> str:
    """A measurement: commas and spaces take a backslash."""
    _no_newline(text)
    return text.replace(",", "\\,").replace(" ", "\\ ")


def escape_string(text: str) -> str:
    """A string field value, inside double quotes: double quotes and backslashes escaped."""
    _no_newline(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _no_newline(text: str) -> None:
    # line protocol has no way to write a newline in a name or value
    if "\n" in text or "\r" in text:
        raise InvalidInputError("gateway", "a name without line breaks", text)


class InfluxWriter:
    """InfluxDB line protocol: one line per row, missing values left out, ns timestamps."""

    def __init__(self, out: IO[bytes], what: str) -> None:
        self._out = out
        cols = columns(what)
        self._time = next(i for i, (_, kind) in enumerate(cols) if kind == "ms")
        fields = [
            (i, name, kind)
            for i, (name, kind) in enumerate(cols)
            if kind in ("float", "int", "str") and name != "gateway"
        ]
        if what == "readings":
            fields = [(i, INFLUX_READING_FIELDS[name], kind) for i, name, kind in fields]
            measurement = MEASUREMENT
        else:
            measurement = f"{MEASUREMENT}_{what}"
        text: dict[str, Callable[[Any], str]] = {
            "float": repr,  # exact; an int shows without a point, still a float to InfluxDB
            "int": lambda v: f"{v}i",
            "str": functools.lru_cache(maxsize=256)(escape_string),  # a few grid statuses
        }
        self._fields = [(i, escape_key(name) + "=", text[kind]) for i, name, kind in fields]
        self._measurement = escape_measurement(measurement) + ",gateway="
        self._tags: dict[str, str] = {}

    def write(self, rows: Sequence[Row]) -> None:
        lines = []
        fields, at = self._fields, self._time
        for row in rows:
            parts = [key + text(v) for i, key, text in fields if (v := row[i]) is not None]
            if not parts:
                continue  # a point needs a field: a reading without values has no line
            tag = self._tags.get(row[0])
            if tag is None:
                tag = self._tags[row[0]] = self._measurement + escape_key(row[0])
            lines.append(f"{tag} {','.join(parts)} {row[at] * 1_000_000}\n")
        self._out.write("".join(lines).encode())

    def close(self) -> None:
        self._out.flush()


WRITERS: Final[dict[str, Callable[[IO[bytes], str], Writer]]] = {
    "csv": CsvWriter,
    "parquet": ParquetWriter,
    "influx": InfluxWriter,
}


# ---- the file -------------------------------------------------------------------------
# ---- the export -----------------------------------------------------------------------
def export(
    store: Store,
    out: IO[bytes],
    *,
    gateways: Sequence[str],
    start: float,
    end: float,
    what: str = "readings",
    fmt: str = "csv",
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Write the gateways' readings or rollups in [start, end) to ``out``; the rows written.

    ``on_progress`` is told the fraction done (0..1) after each chunk.
    """
    if what not in WHATS:
        raise InvalidInputError("what", " | ".join(WHATS), what)
    if fmt not in WRITERS:
        raise InvalidInputError("format", " | ".join(FORMATS), fmt)
    check_range(start, end)
    writer = WRITERS[fmt](out, what)
    span = (end - start) * max(1, len(gateways))
    count = 0
    for k, gateway in enumerate(gateways):
        chunks = (
            reading_chunks(store, gateway, start, end)
            if what == "readings"
            else rollup_chunks(store, gateway, start, end, what)
        )
        for upto, rows in chunks:
            writer.write(rows)
            count += len(rows)
            if on_progress is not None:
                on_progress(min(1.0, (k * (end - start) + upto - start) / span))
    writer.close()
    return count


__all__ = [
    "FORMATS",
    "INFLUX_READING_FIELDS",
    "MAX_RANGE_DAYS",
    "WHATS",
    "check_range",
    "export",
    "parse_when",
]
