"""Monitor test fixtures: a throwaway PostgreSQL server, and stores on either backend."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tegkit.monitor.store import Store
from tegkit.monitor.store.postgres import PostgresStore
from tegkit.monitor.store.sqlite import SqliteStore


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install_postgres() -> Path:
    # CI runs as root with Debian mirrors; a missing server is installed, never skipped
    if os.geteuid() != 0:
        pytest.fail("PostgreSQL is not installed and the tests are not root: apt install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"cannot install PostgreSQL ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    found = _pg_bin()
    if found is None:
        pytest.fail("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server of its own for this test session; yields its base URL."""
    bin_dir = _pg_bin() or _install_postgres()
    root = Path(tempfile.mkdtemp(prefix="tegkit-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the cluster belongs to postgres
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{cmd[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    # fsync off: a throwaway cluster; durability is tested on SQLite, not on the server
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "-t",
        "60",
        "start",
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def pg_schema_url(base: str) -> str:
    """A URL whose connections work in a new, empty schema (one per test)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options=-csearch_path%3D{schema}"


StoreFactory = Callable[..., Store]


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where this test's store lives: a SQLite file or a PostgreSQL schema."""
    if backend == "sqlite":
        return str(tmp_path / "monitor.db")
    return pg_schema_url(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_store(backend: str, store_url: str) -> Iterator[StoreFactory]:
    """Opens stores on this test's database; closes them all at the end."""
    opened: list[Store] = []

    def make(**kwargs: object) -> Store:
        store: Store
        if backend == "sqlite":
            store = SqliteStore(store_url, **kwargs)  # type: ignore[arg-type]
        else:
            store = PostgresStore(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()
