"""The physical ranges a reading must fall in, and that the store can hold all of them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegkit.monitor import plausible
from tegkit.monitor.readings import Reading
from tegkit.monitor.store import open_store

NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e20, -1e20, 1e300, 100.0, 100.0001, -0.001, 1e12, 1e7]),
)


@settings(max_examples=300, deadline=None)
@given(values=st.fixed_dictionaries(dict.fromkeys(plausible.BOUNDS, NUMBERS)))
def test_a_reading_passes_exactly_when_every_number_is_finite_and_in_range(
    values: dict[str, float | None],
) -> None:
    taken_at = values.pop("taken_at")
    reading = Reading(gateway="home", taken_at=1.7e9 if taken_at is None else taken_at, **values)
    wrong = [
        name
        for name, (low, high, _) in plausible.BOUNDS.items()
        if (v := getattr(reading, name)) is not None and not (math.isfinite(v) and low <= v <= high)
    ]
    if not wrong:
        plausible.check_reading(reading)
        return
    with pytest.raises(plausible.Implausible) as caught:
        plausible.check_reading(reading)
    assert caught.value.field == wrong[0]
    assert caught.value.reason == f"implausible value: {wrong[0]}"
    assert wrong[0] in str(caught.value) and "allowed" in str(caught.value)


@pytest.mark.parametrize("status", ["", "x" * 65, "Grid Connected", "a\r\nb", "ü"])
def test_a_grid_status_that_is_no_name_is_implausible(status: str) -> None:
    with pytest.raises(plausible.Implausible, match="grid_status"):
        plausible.check_reading(Reading(gateway="home", taken_at=1.7e9, grid_status=status))


def test_the_extremes_of_every_range_are_stored_and_read_back(tmp_path: Path) -> None:
    def edge(taken_at: float, power_w: float, soe: float, counter_wh: float) -> Reading:
        powers = dict.fromkeys(("site_w", "battery_w", "load_w", "solar_w"), power_w)
        counters = {
            name: counter_wh for name, (_, _, unit) in plausible.BOUNDS.items() if unit == "Wh"
        }
        return Reading(
            gateway="home",
            taken_at=taken_at,
            soe_raw_percent=soe,
            grid_status="S" * 64,
            **powers,
            **counters,
        )

    low_t, high_t = plausible.TAKEN_AT_RANGE_S
    readings = [
        edge(low_t, -plausible.POWER_MAX_W, 0.0, 0.0),
        edge(low_t + 5, plausible.POWER_MAX_W, 100.0, plausible.COUNTER_MAX_WH),
        edge(high_t - 5, -plausible.POWER_MAX_W, 0.0, 0.0),
        edge(high_t, plausible.POWER_MAX_W, 100.0, plausible.COUNTER_MAX_WH),
    ]
    for r in readings:
        plausible.check_reading(r)
    store = open_store(tmp_path / "m.db")
    try:
        store.write_readings(readings)
        back = store.readings("home", low_t, high_t + 1)
    finally:
        store.close()
    assert [(r.taken_at, r.site_w, r.soe_raw_percent, r.solar_exported_wh) for r in back] == [
        (r.taken_at, r.site_w, r.soe_raw_percent, r.solar_exported_wh) for r in readings
    ]
