"""The async store facade against real SQLite: every read its callers need, run on its
reader threads, and refused once it is closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tegkit.monitor.readings import Event, Reading
from tegkit.monitor.store import AsyncStore, Store, StoreClosedError, open_store

T0 = 1_699_999_200.0  # a whole hour (UTC)


class ThreadsSeen:
    """A real store whose calls note the thread they ran on."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.threads: dict[str, set[str]] = {}

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.store, name)
        if not callable(fn):
            return fn

        def call(*args: object) -> object:
            self.threads.setdefault(name, set()).add(threading.current_thread().name)
            return fn(*args)

        return call


def _minutes(n: int) -> list[Reading]:
    """A reading a minute from a minute before T0: the load counter rises 10 Wh and the
    site's 4 Wh each minute, so each minute from T0 on carries that much."""
    return [
        Reading(
            gateway="g",
            taken_at=T0 - 60 + 60 * m,
            load_w=600.0,
            site_imported_wh=4.0 * m,
            site_exported_wh=0.0,
            battery_imported_wh=0.0,
            battery_exported_wh=0.0,
            load_imported_wh=10.0 * m,
            solar_exported_wh=0.0,
        )
        for m in range(n)
    ]


async def test_the_facade_answers_the_reads_of_the_web_api_and_the_costs(tmp_path: Path) -> None:
    seen = ThreadsSeen(open_store(tmp_path / "m.db"))
    store = AsyncStore(seen)  # type: ignore[arg-type]  # a real store, observed
    try:
        assert await store.write_readings(_minutes(121)) == 121
        await store.write_event(Event("g", T0 + 60, "operation_mode", "a -> b"))
        await store.write_event(Event("g", T0 + 120, "firmware", "1 -> 2"))

        readings = await store.readings("g", T0, T0 + 600)
        assert [r.taken_at for r in readings] == [T0 + 60 * m for m in range(10)]
        assert readings[3].load_imported_wh == 40.0

        hours = await store.energy("g", T0, T0 + 7200, "hour")
        assert [(h.start, h.load_imported_wh, h.site_imported_wh) for h in hours] == [
            (T0, 600.0, 240.0),
            (T0 + 3600, 600.0, 240.0),
        ]
        minutes = await store.energy("g", T0, T0 + 3600, "minute")
        assert len(minutes) == 60 and {m.load_imported_wh for m in minutes} == {10.0}
        assert await store.energy("g", T0, T0 + 7200) == hours  # hours by default

        assert [e.kind for e in await store.events("g", T0, T0 + 600)] == [
            "operation_mode",
            "firmware",
        ]
        firmware = await store.events("g", T0, T0 + 600, kinds=iter(["firmware"]))
        assert [e.detail for e in firmware] == ["1 -> 2"]

        for name in ("readings", "energy", "events"):  # never on the event loop's thread
            assert seen.threads[name], name
            assert all(t.startswith("tegkit-store-r") for t in seen.threads[name]), name
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.readings("g", T0, T0 + 600),
        lambda s: s.energy("g", T0, T0 + 7200, "hour"),
        lambda s: s.events("g", T0, T0 + 600, ["firmware"]),
    ],
    ids=["readings", "energy", "events"],
)
async def test_reads_in_flight_at_close_answer_whole_or_are_refused_never_cut(
    tmp_path: Path, read: Callable[[AsyncStore], Any]
) -> None:
    store = AsyncStore(open_store(tmp_path / "m.db"))
    await store.write_readings(_minutes(121))
    await store.write_event(Event("g", T0 + 120, "firmware", "1 -> 2"))
    expected = await read(store)
    assert expected  # each read finds something
    answered = asyncio.Event()

    async def reader() -> int:
        whole = 0
        try:
            while True:
                assert await read(store) == expected
                whole += 1
                answered.set()
        except StoreClosedError:
            return whole

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    await answered.wait()
    await store.aclose()  # with reads running on every reader thread
    assert sum(await asyncio.gather(*readers)) > 0
    with pytest.raises(StoreClosedError):
        await read(store)
