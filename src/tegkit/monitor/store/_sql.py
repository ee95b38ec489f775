"""The store over SQL: one implementation, the backends differ only in connections.

Writes run under one lock on one connection, each call in one transaction: raw hour
blocks, minute/hour/day rollups, outages and the writer's position per gateway commit
together, so after a crash the rollups always match the readings. Reads use one
connection per thread and never wait for the writer (SQLite WAL, PostgreSQL MVCC).

A write of fewer than ``FOLD_READINGS`` readings into an hour (a poll's reading) is
committed as a tail: a small block in ``block_tails``. Once a gateway's tails hold
``FOLD_READINGS`` readings, or a reading arrives for another hour, they are folded into
their hour blocks in the same transaction. Rewriting the whole hour block for each
5-second reading made a write's cost grow with its hour (the largest part of a fleet
monitor's store work); a fold every five minutes shares that cost among 60 writes. Reads
take blocks and tails in one statement, so they see one snapshot whatever the writer folds
meanwhile.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ParamSpec, TypeVar

from tegkit.models.vocabulary import (
    COUNTER_NAMES,
    OFF_GRID_STATUSES,
    POWER_NAMES,
    GridStatusValue,
)
from tegkit.monitor.readings import (
    CloudDay,
    DailyEnergy,
    EnergyBucket,
    Event,
    Gap,
    History,
    Outage,
    Reading,
    RetentionPolicy,
)
from tegkit.monitor.store import buckets as bk
from tegkit.monitor.store import rollups as ru
from tegkit.monitor.store.errors import StoreClosedError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
#: how long close() lets reads in flight finish before it interrupts them
CLOSE_GRACE_S = 5.0
#: the most days one daily() call answers (a century)
MAX_DAYS = 36_525
#: readings a gateway's tails hold before they are folded into their hour blocks (five
#: minutes of 5-second polls): the cost of a fold is shared by this many writes
FOLD_READINGS = 60

_ROLLUP_TABLES = {
    "minute": "rollup_minute",
    "quarter": "rollup_quarter",
    "hour": "rollup_hour",
    "day": "rollup_day",
}
_BUCKET_S = {"minute": 60.0, "quarter": 900.0, "hour": 3600.0, "day": 86400.0}
_ENERGY = ", ".join(ru.energy_column(c) for c in COUNTER_NAMES)
#: the rollup columns that hold (sum, count) of each power, in buckets.Sums order
_POWER_SUMS = [c for p in POWER_NAMES for c in ru.power_sum_columns(p)]
# PostgreSQL sums bigints into numerics: cast back, so both hand Python ints
_SUMS = ", ".join(f"CAST(SUM({c}) AS BIGINT)" for c in _POWER_SUMS)
#: (execute inside the write transaction, gateway names) -> the names that may be written
WriteFence = Callable[
    [Callable[[str, Sequence[Any]], list[tuple[Any, ...]]], list[str]], Iterable[str]
]


def _ms(t: float) -> int:
    return round(t * 1000)


def _query_ms(name: str, t: float) -> int:
    """A range bound in ms, clamped to years 1 .. 9999 (nothing is stored outside)."""
    if not isinstance(t, int | float) or math.isnan(t):
        raise ValueError(f"{name} must be a time in epoch seconds, not {t!r}")
    return round(min(max(t, bk.MIN_TIME_S), bk.MAX_TIME_S) * 1000)


def _reads(fn: Callable[P, R]) -> Callable[P, R]:
    """A public read: counted in flight from start to end, so close() waits for it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, SqlStore)
        with self._reading():
            return fn(*args, **kwargs)

    return wrapper


@functools.cache  # four tables: built once, not for every reading
def _upsert_rollup(table: str) -> str:
    """Add a rollup row to its bucket: counts, sums and energies add, the soe key is the
    newer one."""
    adds = ", ".join(
        f"{c} = {table}.{c} + excluded.{c}" for c in ru.ROLLUP_COLUMNS if c != "soe_key"
    )
    return (
        f"INSERT INTO {table} (gateway_id, bucket_ms, {', '.join(ru.ROLLUP_COLUMNS)}) "
        f"VALUES ({', '.join('?' * (2 + ru.ROLLUP_WIDTH))}) "
        f"ON CONFLICT (gateway_id, bucket_ms) DO UPDATE SET {adds}, "
        f"soe_key = COALESCE(excluded.soe_key, {table}.soe_key)"
    )


_INSERT_TAIL = "INSERT INTO block_tails (gateway_id, block_ms, n, data) VALUES (?, ?, ?, ?)"
_UPSERT_STATE = (
    "INSERT INTO gateway_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (gateway_id) DO UPDATE SET last_ms = excluded.last_ms, "
    "c1 = excluded.c1, c2 = excluded.c2, c3 = excluded.c3, c4 = excluded.c4, "
    "c5 = excluded.c5, c6 = excluded.c6, outage_start_ms = excluded.outage_start_ms"
)


class _State:
    """Where the writer stands for one gateway: the gateway_state row, and the readings in
    its tails per hour block (block_ms -> count)."""

    __slots__ = ("counters", "last_ms", "outage_start_ms", "tails")

    def __init__(
        self,
        last_ms: int,
        counters: list[int],
        outage_start_ms: int | None,
        tails: dict[int, int],
    ) -> None:
        self.last_ms = last_ms
        self.counters = counters
        self.outage_start_ms = outage_start_ms
        self.tails = tails


class SqlStore(ABC):
    """Shared implementation of :class:`tegkit.monitor.store.Store`."""

    def __init__(self) -> None:
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._gateway_ids: dict[str, int] = {}
        self._status_codes: dict[str, int] = {}
        self._status_texts: dict[int, str] = {}
        self._states: dict[int, _State] = {}
        self._closed = False
        # reads in flight, counted so close() closes no connection a thread is still using
        self._flight = threading.Condition()
        self._in_flight = 0
        self._busy: set[Any] = set()  # reader connections running a statement now
        self._warned: set[tuple[str, str]] = set()
        #: workers sharing a fleet (tegkit.monitor.lease): called inside each readings
        #: transaction with (execute, gateway names); the gateways it returns are written,
        #: the others' readings dropped (a former lease holder never writes over the new one)
        self.write_fence: WriteFence | None = None

    # --- what a backend provides -------------------------------------------------------
    @abstractmethod
    def _write_tx(self) -> AbstractContextManager[None]:
        """A transaction on the writer connection (caller holds the write lock)."""

    @abstractmethod
    def _wexec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the writer connection; rows if it returned any."""

    @abstractmethod
    def _wmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows on the writer connection."""

    @abstractmethod
    def _new_reader(self) -> Any:
        """A fresh read connection for the calling thread."""

    @abstractmethod
    def _rexec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement and fetch all rows."""

    @abstractmethod
    def _close_connections(self) -> None:
        """Close the writer connection."""

    @abstractmethod
    def _interrupt(self, conn: Any) -> None:
        """Make a statement running on a reader connection stop soon (from another thread)."""

    # --- helpers -----------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Count this thread's read as in flight; refuse it once the store is closing."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._flight:
                if self._closed:
                    raise StoreClosedError("read")
                self._in_flight += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._flight:
                    self._in_flight -= 1
                    if self._in_flight == 0:
                        self._flight.notify_all()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reading():
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._new_reader()
                self._local.conn = conn
                with self._readers_lock:
                    self._readers.append(conn)
            with self._flight:
                self._busy.add(conn)
            try:
                return self._rexec(conn, sql, params)
            except Exception:
                if self._closed:  # interrupted by close()
                    raise StoreClosedError("read") from None
                raise
            finally:
                with self._flight:
                    self._busy.discard(conn)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock and a transaction; refused once the store is closed."""
        with self._write_lock:
            if self._closed:
                raise StoreClosedError("write")
            with self._write_tx():
                yield

    def _lookup_gateway(self, name: str) -> int | None:
        gid = self._gateway_ids.get(name)
        if gid is None:
            rows = self._read("SELECT id FROM gateways WHERE name = ?", (name,))
            if not rows:
                return None
            gid = self._gateway_ids[name] = int(rows[0][0])
        return gid

    def _gateway_id(self, name: str) -> int:
        """The id of a gateway, created inside the current write transaction if new."""
        gid = self._gateway_ids.get(name)
        if gid is None:
            self._wexec("INSERT INTO gateways (name) VALUES (?) ON CONFLICT DO NOTHING", (name,))
            gid = int(self._wexec("SELECT id FROM gateways WHERE name = ?", (name,))[0][0])
        return gid

    def _status_code(self, text: str) -> int:
        code = self._status_codes.get(text)
        if code is None:
            self._wexec(
                "INSERT INTO grid_statuses (name) VALUES (?) ON CONFLICT DO NOTHING", (text,)
            )
            code = int(self._wexec("SELECT id FROM grid_statuses WHERE name = ?", (text,))[0][0])
        return code

    def _load_statuses(self) -> None:
        for code, text in self._read("SELECT id, name FROM grid_statuses"):
            self._status_codes[text] = int(code)
            self._status_texts[int(code)] = text

    def _state(self, gid: int) -> _State:
        """A copy of where the writer stands: kept only if the transaction commits."""
        state = self._states.get(gid)
        if state is not None:
            return _State(
                state.last_ms, list(state.counters), state.outage_start_ms, dict(state.tails)
            )
        tails = {
            int(b): int(n)
            for b, n in self._wexec(
                "SELECT block_ms, SUM(n) FROM block_tails WHERE gateway_id = ? GROUP BY block_ms",
                (gid,),
            )
        }
        rows = self._wexec(
            "SELECT last_ms, c1, c2, c3, c4, c5, c6, outage_start_ms FROM gateway_state "
            "WHERE gateway_id = ?",
            (gid,),
        )
        if not rows:
            return _State(-(2**62), [ru.MISSING] * 6, None, tails)
        r = rows[0]
        counters = [ru.MISSING if c is None else int(c) for c in r[1:7]]
        return _State(int(r[0]), counters, r[7], tails)

    # --- writing -----------------------------------------------------------------------
    def write_readings(self, batch: Iterable[Reading]) -> int:
        """Store readings (any gateways, any order) in one transaction; return the count stored.

        A reading with a value the store cannot keep (not finite, or outside
        ``rollups.STORABLE``) is left out, and said once per gateway and field: one bad
        row never costs the batch.
        """
        by_gateway: dict[str, list[Reading]] = {}
        for r in batch:
            by_gateway.setdefault(r.gateway, []).append(r)
        count = 0
        with self._write_lock:
            if self._closed:
                raise StoreClosedError("write")
            names, codes = dict(self._gateway_ids), dict(self._status_codes)
            states = dict(self._states)
            try:
                with self._write_tx():
                    if self.write_fence is not None:
                        allowed = self.write_fence(self._wexec, sorted(by_gateway))
                        for name in sorted(by_gateway.keys() - set(allowed)):
                            log.warning(
                                "gateway %s: %d reading(s) dropped: this worker no longer "
                                "holds its lease",
                                name,
                                len(by_gateway.pop(name)),
                            )
                    # rollups and positions are only written here: one call per table for
                    # the whole batch, not one per gateway (a fleet's group commit)
                    upserts: dict[str, list[tuple[Any, ...]]] = {}
                    for name, readings in by_gateway.items():
                        count += self._write_gateway(name, readings, upserts)
                    for sql, rows in upserts.items():
                        self._wmany(sql, rows)
            except BaseException:
                # the transaction rolled back: forget ids and positions it created
                self._gateway_ids, self._status_codes, self._states = names, codes, states
                self._status_texts = {v: k for k, v in codes.items()}
                raise
        return count

    def forget(self, gateways: Iterable[str]) -> None:
        """Drop what this writer remembers of these gateways' position: another process may
        have written them since (a fleet worker taking a gateway over reads it afresh)."""
        with self._write_lock:
            for name in gateways:
                gid = self._gateway_ids.get(name)
                if gid is not None:
                    self._states.pop(gid, None)

    def _warn_unstorable(self, r: Reading, field: str) -> None:
        key = (r.gateway, field)
        if key in self._warned:
            return
        if len(self._warned) < 1000:  # bounded, whatever names a batch brings
            self._warned.add(key)
        lo, hi = ru.STORABLE.get(field, (None, None))
        allowed = "text or nothing" if lo is None else f"{lo:g} .. {hi:g}"
        log.warning(
            "gateway %s: a reading with %s=%.40r was not stored (the store keeps %s); "
            "later ones are dropped without a word",
            r.gateway,
            field,
            getattr(r, field),
            allowed,
        )

    def _columns(self, readings: list[Reading]) -> ru.Columns:
        """The readings as block columns in time order, without those the store cannot
        keep (said once per gateway and field)."""
        fields = ru.by_field(readings)
        for text in set(fields["grid_status"]) - {None} - self._status_codes.keys():
            if isinstance(text, str):  # anything else is refused with its reading below
                code = self._status_code(text)
                self._status_codes[text] = code
                self._status_texts[code] = text
        try:  # one pass over whole columns; only a batch with a bad value is looked into
            cols = ru.columns_from_fields(fields, self._status_codes)
            if ru.columns_in_range(cols):
                return ru.sort_columns(cols)
        except (ValueError, OverflowError, TypeError, KeyError):
            pass
        kept, dropped = ru.storable(readings)
        for r, field in dropped:
            self._warn_unstorable(r, field)
        return ru.sort_columns(ru.columns_from_fields(ru.by_field(kept), self._status_codes))

    def _write_gateway(
        self, name: str, readings: list[Reading], upserts: dict[str, list[tuple[Any, ...]]]
    ) -> int:
        """Write one gateway's readings; its rollup and position rows go to `upserts`."""
        gid = self._gateway_id(name)
        self._gateway_ids[name] = gid
        cols = self._columns(readings)
        ts = cols[ru.TS]
        if not ts:
            return 0
        state = self._state(gid)
        spans = ru.split_by(ts, ru.BLOCK_MS)  # (hour block, first, last) of the readings
        # a tail can wait for the batch's one insert unless a fold of this gateway's other
        # hour, later in this call, must read it
        tails = upserts if len(spans) == 1 else None
        for block_ms, i, j in spans:
            self._write_block(gid, state, block_ms, ru.slice_columns(cols, i, j), tails)
        # rollups and outages follow the stream in time order; a late reading is kept
        # at full resolution only, so counters are never counted twice
        first = bisect.bisect_right(ts, state.last_ms)
        if first < len(ts):
            fresh = ru.slice_columns(cols, first, len(ts))
            minutes, state.counters = ru.minute_rollups(fresh, state.counters)
            quarters = ru.coarsen(minutes, ru.QUARTER_MS)
            hours = ru.coarsen(quarters, ru.HOUR_MS)
            days = ru.coarsen(hours, ru.DAY_MS)
            for table, rows in (
                ("rollup_minute", minutes),
                ("rollup_quarter", quarters),
                ("rollup_hour", hours),
                ("rollup_day", days),
            ):
                upserts.setdefault(_upsert_rollup(table), []).extend(
                    (gid, b, *(None if v == ru.MISSING else v for v in row))
                    for b, row in rows.items()
                )
            self._derive_outages(gid, state, fresh)
            state.last_ms = ts[-1]
            upserts.setdefault(_UPSERT_STATE, []).append(
                (
                    gid,
                    state.last_ms,
                    *(None if c == ru.MISSING else c for c in state.counters),
                    state.outage_start_ms,
                )
            )
        self._states[gid] = state
        return len(ts)

    def _write_block(
        self,
        gid: int,
        state: _State,
        block_ms: int,
        part: ru.Columns,
        later: dict[str, list[tuple[Any, ...]]] | None,
    ) -> None:
        """Store the readings of one hour: as a tail (inserted with the batch's others when
        `later` is given), or folded with the tails into the hour block when that makes
        FOLD_READINGS (see the module docstring)."""
        for other in [b for b in state.tails if b != block_ms]:
            self._fold(gid, state, other)  # its hour closed (or a late reading came)
        held = state.tails.get(block_ms, 0) + len(part[ru.TS])
        if held < FOLD_READINGS:
            row = (gid, block_ms, len(part[ru.TS]), ru.encode_block(part))
            if later is None:
                self._wexec(_INSERT_TAIL, row)
            else:
                later.setdefault(_INSERT_TAIL, []).append(row)
            state.tails[block_ms] = held
        else:
            self._fold(gid, state, block_ms, part)

    def _fold(self, gid: int, state: _State, block_ms: int, part: ru.Columns | None = None) -> None:
        """Merge an hour's block, its tails and `part` into the block; drop the tails."""
        parts = [
            ru.decode_block(bytes(data))
            for (data,) in self._wexec(
                "SELECT data FROM (SELECT 0 AS k, id, data FROM blocks "
                "WHERE gateway_id = ? AND block_ms = ? UNION ALL SELECT 1, id, data "
                "FROM block_tails WHERE gateway_id = ? AND block_ms = ?) AS p ORDER BY k, id",
                (gid, block_ms, gid, block_ms),
            )
        ]
        if part is not None:
            parts.append(part)
        merged = ru.merge_parts(parts)
        if merged[ru.TS]:
            self._wexec(
                "INSERT INTO blocks (gateway_id, block_ms, n, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (gateway_id, block_ms) DO UPDATE SET n = excluded.n, "
                "data = excluded.data",
                (gid, block_ms, len(merged[ru.TS]), ru.encode_block(merged)),
            )
        if state.tails.pop(block_ms, 0):
            self._wexec(
                "DELETE FROM block_tails WHERE gateway_id = ? AND block_ms = ?", (gid, block_ms)
            )

    def _derive_outages(self, gid: int, state: _State, cols: ru.Columns) -> None:
        # the vocabulary's off-grid set: an outage runs from the first off-grid status to
        # the next CONNECTED (a status in neither, e.g. SystemWaitForUser, changes nothing)
        off = {self._status_codes[s] for s in OFF_GRID_STATUSES if s in self._status_codes}
        on = self._status_codes.get(GridStatusValue.CONNECTED)
        for t, code in zip(cols[ru.TS], cols[ru.GRID], strict=True):
            if code in off and state.outage_start_ms is None:
                state.outage_start_ms = t
                self._wexec(
                    "INSERT INTO outages (gateway_id, start_ms, end_ms) VALUES (?, ?, NULL) "
                    "ON CONFLICT DO NOTHING",
                    (gid, t),
                )
            elif code == on and state.outage_start_ms is not None:
                self._wexec(
                    "UPDATE outages SET end_ms = ? WHERE gateway_id = ? AND start_ms = ?",
                    (t, gid, state.outage_start_ms),
                )
                state.outage_start_ms = None

    def write_gap(self, gap: Gap) -> None:
        """Record a gap; writing the same (gateway, start) again updates its end and reason."""
        with self._writing():
            gid = self._gateway_id(gap.gateway)
            self._wexec(
                "INSERT INTO gaps VALUES (?, ?, ?, ?) ON CONFLICT (gateway_id, start_ms) "
                "DO UPDATE SET end_ms = excluded.end_ms, reason = excluded.reason",
                (gid, _ms(gap.start), None if gap.end is None else _ms(gap.end), gap.reason),
            )
        self._gateway_ids[gap.gateway] = gid

    def write_event(self, event: Event) -> None:
        """Record an event (mode or reserve change, firmware change, sitemaster stop/run)."""
        with self._writing():
            gid = self._gateway_id(event.gateway)
            self._wexec(
                "INSERT INTO events (gateway_id, at_ms, kind, detail, rule, result) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (gid, _ms(event.at), event.kind, event.detail, event.rule, event.result),
            )
        self._gateway_ids[event.gateway] = gid

    def write_cloud_days(self, days: Iterable[CloudDay]) -> int:
        """Keep days of energy from Tesla's calendar history; return how many rows changed.

        A day already kept from the cloud is replaced by a newer answer for it (the same
        values change nothing). Local readings live elsewhere and are never touched; which
        days to fill is the caller's choice (see `tegkit.monitor.backfill`). The whole batch
        is checked before anything is written: ValueError names the bad field.
        """
        rows = [_cloud_day_row(d) for d in days]
        changed = 0
        made: dict[str, int] = {}
        with self._writing():
            for gateway, start_ms, end_ms, *mwh in rows:
                gid = made[gateway] = self._gateway_id(gateway)
                old = self._wexec(
                    f"SELECT end_ms, {_CLOUD_ENERGY} FROM cloud_days "
                    "WHERE gateway_id = ? AND start_ms = ?",
                    (gid, start_ms),
                )
                if old and [None if v is None else int(v) for v in old[0]] == [end_ms, *mwh]:
                    continue
                self._wexec(
                    f"INSERT INTO cloud_days (gateway_id, start_ms, end_ms, {_CLOUD_ENERGY}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, start_ms) "
                    "DO UPDATE SET end_ms = excluded.end_ms, "
                    + ", ".join(f"{c} = excluded.{c}" for c in _CLOUD_COLUMNS),
                    (gid, start_ms, end_ms, *mwh),
                )
                changed += 1
        self._gateway_ids.update(made)  # kept once the transaction committed
        return changed

    def write_cloud_outages(self, outages: Iterable[Outage]) -> int:
        """Add finished outages from Tesla's backup history (source 'cloud'); return how many
        were added. One that overlaps an outage already kept (the monitor's own, or one added
        before) is skipped, so an outage is never listed twice."""
        rows = []
        for o in outages:
            if o.end is None or not (
                isinstance(o.start, int | float) and isinstance(o.end, int | float)
            ):
                raise ValueError(f"a cloud outage needs a start and an end, not {o!r}")
            lo, hi = _query_ms("start", o.start), _query_ms("end", o.end)
            if hi < lo:
                raise ValueError(f"a cloud outage must not end before it starts: {o!r}")
            rows.append((o.gateway, lo, hi))
        added = 0
        made: dict[str, int] = {}
        with self._writing():
            for gateway, lo, hi in rows:
                gid = made[gateway] = self._gateway_id(gateway)
                clash = self._wexec(
                    "SELECT 1 FROM outages WHERE gateway_id = ? AND (start_ms = ? OR "
                    "(start_ms < ? AND (end_ms IS NULL OR end_ms > ?))) LIMIT 1",
                    (gid, lo, hi, lo),
                )
                if clash:
                    continue
                self._wexec(
                    "INSERT INTO outages (gateway_id, start_ms, end_ms, source) "
                    "VALUES (?, ?, ?, 'cloud')",
                    (gid, lo, hi),
                )
                added += 1
        self._gateway_ids.update(made)
        return added

    # --- reading -----------------------------------------------------------------------
    def _blocks(self, gid: int, start_ms: int, end_ms: int) -> Iterator[ru.Columns]:
        """The hour blocks that may hold readings in [start_ms, end_ms), each merged with
        its tails, in time order (one statement: one snapshot of blocks and tails)."""
        where = "WHERE gateway_id = ? AND block_ms > ? AND block_ms < ?"
        bounds = (gid, start_ms - ru.BLOCK_MS, end_ms)
        rows = self._read(
            f"SELECT block_ms, 0 AS k, id, data FROM blocks {where} UNION ALL "
            f"SELECT block_ms, 1, id, data FROM block_tails {where} ORDER BY 1, 2, 3",
            bounds + bounds,
        )
        for _, hour in itertools.groupby(rows, key=lambda row: row[0]):
            yield ru.merge_parts(ru.decode_block(bytes(row[3])) for row in hour)

    @_reads
    def gateways(self) -> list[str]:
        """The names of the gateways the store knows, sorted."""
        return sorted(str(name) for (name,) in self._read("SELECT name FROM gateways"))

    @_reads
    def readings(self, gateway: str, start: float, end: float) -> list[Reading]:
        """Full-resolution readings with start <= taken_at < end, in time order."""
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return []
        self._load_statuses()
        lo, hi = _query_ms("start", start), _query_ms("end", end)
        out: list[Reading] = []
        for cols in self._blocks(gid, lo, hi):
            ts = cols[ru.TS]
            i, j = bisect.bisect_left(ts, lo), bisect.bisect_left(ts, hi)
            out += ru.readings_from_columns(
                gateway, ru.slice_columns(cols, i, j), self._status_texts
            )
        return out

    @_reads
    def latest(self, gateway: str) -> Reading | None:
        """The newest reading stored for a gateway, or None."""
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return None
        rows = self._read(
            "SELECT MAX(b) FROM (SELECT MAX(block_ms) AS b FROM blocks WHERE gateway_id = ? "
            "UNION ALL SELECT MAX(block_ms) FROM block_tails WHERE gateway_id = ?) AS m",
            (gid, gid),
        )
        if rows[0][0] is None:
            return None
        newest = int(rows[0][0])
        cols = next(self._blocks(gid, newest, newest + 1), None)
        if cols is None or not cols[ru.TS]:
            return None  # deleted meanwhile (retention)
        self._load_statuses()
        n = len(cols[ru.TS])
        last = ru.slice_columns(cols, n - 1, n)
        return ru.readings_from_columns(gateway, last, self._status_texts)[0]

    @_reads
    def history(
        self,
        gateway: str,
        start: float,
        end: float,
        step_s: float | None = None,
        max_points: int = 2000,
        tz: dt.tzinfo | None = None,
    ) -> History:
        """Mean power per meter and last state of energy per bucket, at most max_points.

        The step asked for is snapped up to one of the store's buckets (see ``buckets``):
        the ladder from 5 s to 12 h, then whole days, coarser still if the range needs it.
        Buckets of a day or more start at midnight in ``tz`` (UTC when None), so a local
        day across a DST change is 23 or 25 hours. Buckets of 1 minute and more come from
        rollups, never a raw scan. Every point lies in [start, end); buckets without data
        hold None. Raises ValueError naming the argument for inputs it cannot answer.
        """
        p = bk.plan(start, end, step_s, max_points, tz)
        sums: dict[int, bk.Sums] = {}
        gid = self._lookup_gateway(gateway)
        lo, hi = p.bounds_ms[0], p.bounds_ms[-1]
        if gid is None:
            pass
        elif p.source == "raw":
            sums = bk.bucket_readings(self._blocks(gid, lo, hi), p)
        elif p.uniform:
            rows = self._read(
                f"SELECT (bucket_ms - ?) / ?, {_SUMS}, COALESCE(MAX(soe_key), {ru.MISSING}) "
                f"FROM {_ROLLUP_TABLES[p.source]} WHERE gateway_id = ? "
                f"AND bucket_ms >= ? AND bucket_ms < ? GROUP BY 1",
                (lo, p.step_ms, gid, lo, hi),
            )
            sums = {k: vals for k, *vals in rows}
        else:  # local days of 23 or 25 hours: finer rollups, joined to each day's edges
            edges = [(k, a, b) for k, (a, b) in enumerate(itertools.pairwise(p.bounds_ms))]
            # padded to a power of two with empty edges: the driver caches every distinct
            # statement (hundreds of KB each), so a few shapes only, not one per length
            edges += [(-1, 0, 0)] * ((1 << max(3, (len(edges) - 1).bit_length())) - len(edges))
            values = ", ".join(["(?, ?, ?)"] * len(edges))
            rows = self._read(
                f"WITH edges (k, lo, hi) AS (VALUES {values}) "
                f"SELECT edges.k, {_SUMS}, COALESCE(MAX(soe_key), {ru.MISSING}) "
                f"FROM edges JOIN {_ROLLUP_TABLES[p.source]} r ON r.gateway_id = ? "
                f"AND r.bucket_ms >= edges.lo AND r.bucket_ms < edges.hi GROUP BY edges.k",
                [*itertools.chain.from_iterable(edges), gid],
            )
            sums = {k: vals for k, *vals in rows}
        return History(gateway, start, end, p.step_ms / 1000, p.source, bk.points(p, sums, start))

    @_reads
    def energy(
        self, gateway: str, start: float, end: float, resolution: str = "hour"
    ) -> list[EnergyBucket]:
        """Energy per rollup bucket (minute, quarter, hour, day) starting in [start, end)."""
        if resolution not in _ROLLUP_TABLES:
            raise ValueError(f"resolution must be one of {', '.join(_ROLLUP_TABLES)}")
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return []
        size_s = _BUCKET_S[resolution]
        rows = self._read(
            f"SELECT bucket_ms, {_ENERGY} FROM {_ROLLUP_TABLES[resolution]} "
            "WHERE gateway_id = ? AND bucket_ms >= ? AND bucket_ms < ? ORDER BY bucket_ms",
            (gid, _query_ms("start", start), _query_ms("end", end)),
        )
        return [
            EnergyBucket(b / 1000, size_s, *(int(e) / 1000 for e in energies))
            for b, *energies in rows
        ]

    @_reads
    def daily(
        self, gateway: str, start_day: dt.date, end_day: dt.date, tz: dt.tzinfo
    ) -> list[DailyEnergy]:
        """Energy per local day from start_day to end_day inclusive, from counter rollups."""
        if (end_day - start_day).days >= MAX_DAYS:
            raise ValueError(f"end_day must be less than {MAX_DAYS} days after start_day")
        days = [start_day + dt.timedelta(d) for d in range((end_day - start_day).days + 1)]
        bounds = [_local_midnight(d, tz) for d in days] + [_local_midnight(end_day, tz, 1)]
        # local midnights on whole UTC hours (nearly every zone) are answered from hours
        resolution = "hour" if all(b % 3600 == 0 for b in bounds) else "minute"
        totals: list[list[float | None] | None] = [None] * len(days)
        for bucket in self.energy(gateway, bounds[0], bounds[-1], resolution):
            i = bisect.bisect_right(bounds, bucket.start) - 1
            acc = totals[i] or [0.0] * len(COUNTER_NAMES)
            totals[i] = [
                (a or 0.0) + getattr(bucket, n) for a, n in zip(acc, COUNTER_NAMES, strict=True)
            ]
        # a day without a local reading shows the cloud's day for it, when one was kept
        sources: list[str | None] = ["local" if t is not None else None for t in totals]
        if None in sources:
            for cloud in self.cloud_days(gateway, bounds[0], bounds[-1]):
                i = bisect.bisect_right(bounds, cloud.start) - 1
                if 0 <= i < len(days) and totals[i] is None:
                    values = [getattr(cloud, name) for name in COUNTER_NAMES]
                    totals[i], sources[i] = values, "cloud"
        out = []
        for day, total, source in zip(days, totals, sources, strict=True):
            if total is None:
                out.append(DailyEnergy(day, None, None, None, None, None, None, None, None))
                continue
            grid_in, grid_out, batt_in, batt_out, home, solar = total  # in COUNTERS order
            self_powered = offset = None
            if home is not None and home > 0:  # a cloud day may lack a counter
                if grid_in is not None:
                    self_powered = max(0.0, min(100.0, 100 * (1 - grid_in / home)))
                if solar is not None:
                    offset = 100 * solar / home
            out.append(
                DailyEnergy(
                    day,
                    home,
                    solar,
                    batt_in,
                    batt_out,
                    grid_in,
                    grid_out,
                    self_powered,
                    offset,
                    source,
                )
            )
        return out

    @_reads
    def outages(self, gateway: str, start: float, end: float) -> list[Outage]:
        """Outages that overlap [start, end), oldest first; an open one has end None. Each
        says its source: the monitor's own ('local') or Tesla's backup history ('cloud')."""
        rows = self._overlapping("outages", ", source", gateway, start, end)
        return [
            Outage(gateway, s / 1000, None if e is None else e / 1000, src) for s, e, src in rows
        ]

    @_reads
    def cloud_days(self, gateway: str, start: float, end: float) -> list[CloudDay]:
        """Days kept from Tesla's calendar history that start in [start, end), oldest first."""
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return []
        rows = self._read(
            f"SELECT start_ms, end_ms, {_CLOUD_ENERGY} FROM cloud_days WHERE gateway_id = ? "
            "AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (gid, _query_ms("start", start), _query_ms("end", end)),
        )
        return [
            CloudDay(
                gateway=gateway,
                start=s / 1000,
                end=e / 1000,
                **{
                    name: None if v is None else int(v) / 1000
                    for name, v in zip(COUNTER_NAMES, mwh, strict=True)
                },
            )
            for s, e, *mwh in rows
        ]

    @_reads
    def gaps(self, gateway: str, start: float, end: float) -> list[Gap]:
        """Gaps that overlap [start, end), oldest first; an open one has end None."""
        rows = self._overlapping("gaps", ", reason", gateway, start, end)
        return [Gap(gateway, s / 1000, None if e is None else e / 1000, r) for s, e, r in rows]

    def _overlapping(
        self, table: str, more_columns: str, gateway: str, start: float, end: float
    ) -> list[tuple[Any, ...]]:
        """(start_ms, end_ms, ...) of the periods in `table` that overlap [start, end)."""
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return []
        return self._read(
            f"SELECT start_ms, end_ms{more_columns} FROM {table} WHERE gateway_id = ? "
            "AND start_ms < ? AND (end_ms IS NULL OR end_ms > ?) ORDER BY start_ms",
            (gid, _query_ms("end", end), _query_ms("start", start)),
        )

    @_reads
    def events(
        self, gateway: str, start: float, end: float, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        """Events with start <= at < end, oldest first, optionally of some kinds only."""
        gid = self._lookup_gateway(gateway)
        if gid is None:
            return []
        rows = self._read(
            "SELECT at_ms, kind, detail, rule, result FROM events WHERE gateway_id = ? "
            "AND at_ms >= ? AND at_ms < ? ORDER BY at_ms, id",
            (gid, _query_ms("start", start), _query_ms("end", end)),
        )
        wanted = None if kinds is None else set(kinds)
        return [
            Event(gateway, a / 1000, k, d, r, o)
            for a, k, d, r, o in rows
            if wanted is None or k in wanted
        ]

    def retention(self, policy: RetentionPolicy, now: float | None = None) -> dict[str, int]:
        """Delete what the policy no longer keeps; return rows deleted per table.

        A raw block goes only when its whole hour is older than the cutoff.
        """
        now = time.time() if now is None else now
        for name in ("raw_days", "minute_days"):
            days = getattr(policy, name)
            if days is not None and not (math.isfinite(days) and days >= 0):
                raise ValueError(f"{name} must be a number of days >= 0 or None, not {days!r}")
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite time in epoch seconds, not {now!r}")
        deleted = {"blocks": 0, "rollup_minute": 0}
        with self._writing():
            if policy.raw_days is not None:
                cutoff = _query_ms("cutoff", now - policy.raw_days * 86400)
                old_hours = "block_ms + ? <= ?"
                # an hour counts once, whether its block, its tails or both were kept
                deleted["blocks"] = int(
                    self._wexec(
                        f"SELECT COUNT(*) FROM (SELECT gateway_id, block_ms FROM blocks "
                        f"WHERE {old_hours} UNION SELECT gateway_id, block_ms FROM block_tails "
                        f"WHERE {old_hours}) AS h",
                        (ru.BLOCK_MS, cutoff, ru.BLOCK_MS, cutoff),
                    )[0][0]
                )
                self._wexec(f"DELETE FROM blocks WHERE {old_hours}", (ru.BLOCK_MS, cutoff))
                if self._count_delete("block_tails", old_hours, (ru.BLOCK_MS, cutoff)):
                    self._states.clear()  # their tail counts are stale: read again
            if policy.minute_days is not None:
                cutoff = _query_ms("cutoff", now - policy.minute_days * 86400)
                deleted["rollup_minute"] = self._count_delete(
                    "rollup_minute", "bucket_ms + ? <= ?", (ru.MINUTE_MS, cutoff)
                )
        return deleted

    def _count_delete(self, table: str, where: str, params: Sequence[Any]) -> int:
        n = int(self._wexec(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)[0][0])
        self._wexec(f"DELETE FROM {table} WHERE {where}", params)
        return n

    @_reads
    def schema_version(self) -> int:
        """The newest migration applied to this database."""
        return int(self._read("SELECT MAX(version) FROM schema_migrations")[0][0])

    def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Close every connection; the store cannot be used afterwards.

        New reads and writes are refused with StoreClosedError from the start; reads in
        flight may finish (after ``grace_s`` seconds their statements are interrupted),
        the write in progress commits, and only then are the connections closed, when no
        thread uses them any more. Safe to call twice and from any thread.
        """
        if getattr(self._local, "depth", 0):
            raise RuntimeError("close() called from inside a read of this store")
        with self._flight:
            if self._closed:
                return
            self._closed = True
            deadline = time.monotonic() + grace_s
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    for conn in self._busy:
                        self._interrupt(conn)
                    left = 1.0  # interrupted reads end at once; keep waking to re-interrupt
                self._flight.wait(left)
        with self._write_lock:
            self._close_connections()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:  # every read is over: nobody uses these connections now
            conn.close()


_CLOUD_COLUMNS = [f"{name.removesuffix('_wh')}_mwh" for name in COUNTER_NAMES]
_CLOUD_ENERGY = ", ".join(_CLOUD_COLUMNS)
#: the most energy one cloud day may hold per counter (Wh): far beyond any home
MAX_CLOUD_DAY_WH = 1e9


def _cloud_day_row(day: CloudDay) -> tuple[Any, ...]:
    """(gateway, start_ms, end_ms, mWh per counter) of a cloud day; ValueError naming a bad
    field."""
    if not isinstance(day, CloudDay) or not isinstance(day.gateway, str) or not day.gateway:
        raise ValueError(f"a cloud day needs a gateway name, not {day!r}")
    start_ms, end_ms = _query_ms("start", day.start), _query_ms("end", day.end)
    if not 0 < end_ms - start_ms <= 26 * 3_600_000:
        raise ValueError(f"end must be 1 s to 26 h after start (one local day), not {day!r}")
    mwh: list[int | None] = []
    for name in COUNTER_NAMES:
        wh = getattr(day, name)
        if wh is not None and not (
            isinstance(wh, int | float) and 0 <= wh <= MAX_CLOUD_DAY_WH  # NaN fails too
        ):
            raise ValueError(f"{name} must be 0 .. {MAX_CLOUD_DAY_WH:g} Wh or None, not {wh!r}")
        mwh.append(None if wh is None else round(wh * 1000))
    return (day.gateway, start_ms, end_ms, *mwh)


def _local_midnight(day: dt.date, tz: dt.tzinfo, later_days: int = 0) -> float:
    """Epoch seconds of midnight starting ``day + later_days`` in tz; past 9999-12-31, the
    end of that day."""
    try:
        day = day + dt.timedelta(later_days)
    except OverflowError:
        return dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp() + 86400 * later_days
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp()
