"""The monitor store in PostgreSQL (psycopg 3), for fleets and existing database servers.

Same schema and logic as SQLite (see ``_sql``); batches go through psycopg's pipelined
``executemany``. Durability is the server's: a committed transaction is on disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tegkit.monitor.store._sql import SqlStore
from tegkit.monitor.store.migrations import POSTGRES_TYPES, migrate

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the PostgreSQL store needs psycopg: pip install 'tegkit[postgres]'") from exc


def _pg(sql: str) -> str:
    # the shared SQL uses qmark placeholders; none of it contains a literal "?" or "%"
    return sql.replace("?", "%s")


class PostgresStore(SqlStore):
    """The store in the PostgreSQL database at ``url`` (postgresql://...), migrated on open."""

    def __init__(self, url: str, *, migrate_upto: int | None = None) -> None:
        super().__init__()
        self.url = url
        self._conn = psycopg.connect(url, autocommit=True)
        with self._write_lock, self._write_tx():
            # one migrator at a time when several processes open the same database
            self._wexec("SELECT pg_advisory_xact_lock(7420)")
            self.version = migrate(self._wexec, POSTGRES_TYPES, migrate_upto)

    @contextmanager
    def _write_tx(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _wexec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(_pg(sql), params)
        return cur.fetchall() if cur.description is not None else []

    def _wmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(_pg(sql), rows)

    def _new_reader(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def _rexec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = conn.execute(_pg(sql), params).fetchall()
        return rows

    def _close_connections(self) -> None:
        self._conn.close()

    def _interrupt(self, conn: Any) -> None:
        # the server cancels the running query; cancel_safe is psycopg 3.2's non-blocking form
        cancel = getattr(conn, "cancel_safe", None) or conn.cancel
        cancel()

    def size_bytes(self) -> int:
        """Bytes the store's tables and indexes take in the database."""
        with self._writing():  # the writer connection is one thread's at a time
            rows = self._wexec(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        return int(rows[0][0])
