"""The store contract on PostgreSQL, against a real server started for the session."""

from __future__ import annotations

import pytest
from _store_contract import *  # noqa: F403 - the shared contract tests run here too

from tegkit.monitor.readings import Reading
from tegkit.monitor.store import open_store
from tegkit.monitor.store.postgres import PostgresStore


@pytest.fixture
def backend() -> str:
    return "postgres"


def test_open_store_takes_a_postgresql_url(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert isinstance(store, PostgresStore)
        store.write_readings([Reading(gateway="g", taken_at=1.0, load_w=5.0)])
        assert store.size_bytes() > 0
    finally:
        store.close()


def test_two_stores_on_one_database_see_each_others_writes(make_store: object) -> None:
    a, b = make_store(), make_store()  # type: ignore[operator]
    a.write_readings([Reading(gateway="g", taken_at=10.0, load_w=5.0)])
    assert b.latest("g") == Reading(gateway="g", taken_at=10.0, load_w=5.0)
