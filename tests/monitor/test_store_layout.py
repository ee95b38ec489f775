"""The store's columns by name: Reading, blocks, rollups and the tables agree, and a
block written by format 1 keeps its meaning whatever is added later."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from tegkit.monitor.readings import HistoryPoint, Reading
from tegkit.monitor.store import rollups as ru
from tegkit.monitor.store.sqlite import SqliteStore

# format 1 as written since the first release: never edit, add a format instead
FORMAT_1 = [
    ("taken_at", 1000),
    ("site_w", 1),
    ("battery_w", 1),
    ("load_w", 1),
    ("solar_w", 1),
    ("soe_raw_percent", 100),
    ("grid_status", 0),
    ("site_imported_wh", 1000),
    ("site_exported_wh", 1000),
    ("battery_imported_wh", 1000),
    ("battery_exported_wh", 1000),
    ("load_imported_wh", 1000),
    ("solar_exported_wh", 1000),
]
# two readings encoded by the store before the layout was named (commit c15f452)
FORMAT_1_BLOCK = bytes.fromhex(
    "01020000007801fbf525f0500f2303439f1003186c6081d001bfff83c0fe2bffc0f47f1da01a2038708715"
    "222ffb0b221ec104e1aff80be6efcf9280f0a73d87f021da181860348b2644fecf35883c8407270fbc6086"
    "b025fe40e42fb043f8063f207cd3668849a76bc00edbbf831b220f73170012404d4f"
)
FORMAT_1_READINGS = [
    Reading(
        gateway="g",
        taken_at=1704067200.25,
        site_w=1200.0,
        battery_w=-300.0,
        load_w=1500.0,
        solar_w=600.0,
        soe_raw_percent=62.5,
        grid_status="SystemGridConnected",
        site_imported_wh=10.5,
        site_exported_wh=0.0,
        battery_imported_wh=1.0,
        battery_exported_wh=2.0,
        load_imported_wh=99.125,
        solar_exported_wh=3.0,
    ),
    Reading(
        gateway="g",
        taken_at=1704067205.0,
        load_w=-7.0,
        grid_status="SystemIslandedActive",
        solar_exported_wh=4.5,
    ),
]
STATUS_TEXTS = {1: "SystemGridConnected", 2: "SystemIslandedActive"}


def test_format_1_is_frozen() -> None:
    assert [(c.name, c.scale) for c in ru.BLOCK_LAYOUTS[1]] == FORMAT_1


def test_every_field_of_a_reading_is_stored_by_the_current_format() -> None:
    # a new Reading field fails here until a new block format (and a decoder of the old
    # ones) stores it: it must never shift the columns of blocks already written
    stored = {c.name for c in ru.BLOCK_COLUMNS}
    assert {f.name for f in msgspec.structs.fields(Reading)} - stored == {"gateway"}
    assert set(ru.STORABLE) <= stored


def test_a_format_1_block_still_reads_as_it_was_written() -> None:
    cols = ru.decode_block(FORMAT_1_BLOCK)
    assert ru.readings_from_columns("g", cols, STATUS_TEXTS) == FORMAT_1_READINGS
    codes = {v: k for k, v in STATUS_TEXTS.items()}
    again = ru.encode_block(ru.columns_from_readings(FORMAT_1_READINGS, codes))
    assert ru.decode_block(again) == cols


def test_an_unknown_or_damaged_block_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown block format 9"):
        ru.decode_block(bytes([9]) + FORMAT_1_BLOCK[1:])
    with pytest.raises(ValueError, match="format 1"):
        ru.decode_block(FORMAT_1_BLOCK[:1] + (3).to_bytes(4, "little") + FORMAT_1_BLOCK[5:])


def test_rollup_columns_are_the_tables_columns(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "m.db").close()
    conn = sqlite3.connect(tmp_path / "m.db")
    try:
        for table in ("rollup_minute", "rollup_quarter", "rollup_hour", "rollup_day"):
            names = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            assert names == ["gateway_id", "bucket_ms", *ru.ROLLUP_COLUMNS], table
    finally:
        conn.close()


def test_a_history_point_has_a_mean_per_stored_power() -> None:
    powers = [ru.BLOCK_COLUMNS[i].name for i in ru.POWER_COLUMNS]
    assert HistoryPoint.__struct_fields__ == ("t", *powers, "soe_raw_percent")


def test_history_columns_are_its_points_by_name(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    try:
        store.write_readings(FORMAT_1_READINGS)
        h = store.history("g", 1704067200.0, 1704067215.0, step_s=5)
    finally:
        store.close()
    cols = h.columns()
    assert list(cols) == ["t", "site_w", "battery_w", "load_w", "solar_w", "soe_raw_percent"]
    assert cols["t"] == [1704067200.0, 1704067205.0, 1704067210.0]
    assert cols["load_w"] == [1500.0, -7.0, None] and cols["soe_raw_percent"] == [62.5, None, None]
    for name, values in cols.items():
        assert values == [getattr(p, name) for p in h.points]


def test_automation_events_keep_their_rule_and_result_and_older_events_stay(
    tmp_path: Path,
) -> None:
    # version 4 adds events.rule and events.result (what the owner's plan did); an event
    # written by version 3 reads back as it was, with neither
    from tegkit.monitor.readings import Event

    SqliteStore(tmp_path / "m.db", migrate_upto=3).close()
    conn = sqlite3.connect(tmp_path / "m.db")
    try:
        names = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
        assert names == ["id", "gateway_id", "at_ms", "kind", "detail"]
        with conn:  # as a version 3 recorder wrote it
            conn.execute("INSERT INTO gateways (name) VALUES ('g')")
            conn.execute(
                "INSERT INTO events (gateway_id, at_ms, kind, detail) "
                "VALUES (1, 1704067200000, 'firmware', '21.39 -> 21.44')"
            )
    finally:
        conn.close()
    store = SqliteStore(tmp_path / "m.db")
    try:
        ran = Event("g", 1704067260.0, "automation", "mode backup", "evening", "done")
        store.write_event(ran)
        assert store.events("g", 0, 2e9) == [
            Event("g", 1704067200.0, "firmware", "21.39 -> 21.44"),
            ran,
        ]
        # the API's form: other kinds carry no rule or result at all
        assert msgspec.to_builtins(store.events("g", 0, 2e9)) == [
            {"gateway": "g", "at": 1704067200.0, "kind": "firmware", "detail": "21.39 -> 21.44"},
            {
                "gateway": "g",
                "at": 1704067260.0,
                "kind": "automation",
                "detail": "mode backup",
                "rule": "evening",
                "result": "done",
            },
        ]
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "m.db")
    try:
        names = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
        assert names == ["id", "gateway_id", "at_ms", "kind", "detail", "rule", "result"]
    finally:
        conn.close()
