"""The monitor store in one SQLite file (WAL), the default for a single site.

``journal_mode=WAL`` lets the dashboard read while the recorder writes.
``synchronous=NORMAL`` fsyncs the WAL only at checkpoints: a committed transaction
survives the process being killed (kill -9, crash), because it is already in the OS's
file cache; only an OS crash or power cut can lose the last commits, never corrupt the
file. For a recorder that writes every few seconds that is the right trade: FULL would
fsync on every commit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tegkit.monitor.store._sql import SqlStore
from tegkit.monitor.store.errors import StoreClosedError
from tegkit.monitor.store.migrations import SQLITE_TYPES, migrate

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA busy_timeout=10000",
)


def _connect(path: str) -> sqlite3.Connection:
    # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    return conn


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only, before SQLite creates it with
    the umask's mode; its -wal and -shm files take the same mode from it."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # an existing file keeps the mode its owner gave it
    os.close(fd)


class SqliteStore(SqlStore):
    """The store in the SQLite database at ``path`` (created 0600 and migrated on open)."""

    def __init__(self, path: str | Path, *, migrate_upto: int | None = None) -> None:
        super().__init__()
        self.path = str(path)
        _create_private(self.path)
        self._conn = _connect(self.path)
        with self._write_lock, self._write_tx():
            self.version = migrate(self._wexec, SQLITE_TYPES, migrate_upto)

    @contextmanager
    def _write_tx(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front instead of failing at the first write
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _wexec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _wmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, rows)

    def _new_reader(self) -> sqlite3.Connection:
        return _connect(self.path)

    def _rexec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
        return rows

    def _close_connections(self) -> None:
        self._conn.close()

    def _interrupt(self, conn: Any) -> None:
        conn.interrupt()  # thread-safe: the running statement fails with "interrupted"

    def size_bytes(self) -> int:
        """Bytes on disk: the database file and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(self.path + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it."""
        with self._write_lock:
            if self._closed:
                raise StoreClosedError("checkpoint")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
