"""The reserve rule of docs/reserve.md, row by row, against tegkit.percent and the spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegkit import percent

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reserve.md"
SPEC = REPO.parent / "shared" / "spec" / "001_f5e0e40731e217c5.txt"

# | app % | raw % (spec) | fits | app for that raw | raw for that app |
_ROW = re.compile(
    r"^\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*(yes|no)\s*\|\s*([\d.]+) → (\d+)\s*\|\s*([\d.]+)\s*\|$"
)


def _documented() -> list[tuple[int, float, bool, float, int, float]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = _ROW.match(line.strip())
        if found:
            app, raw, fits, exact_app, shown, exact_raw = found.groups()
            rows.append(
                (
                    int(app),
                    float(raw),
                    fits == "yes",
                    float(exact_app),
                    int(shown),
                    float(exact_raw),
                )
            )
    return rows


DOCUMENTED = _documented()


def _spec_pairs() -> list[tuple[int, float]]:
    text = SPEC.read_text(encoding="utf-8")
    table = text[text.index("Tested values") :].split("\n---", 1)[0]
    return [
        (int(app), float(raw))
        for app, raw in re.findall(r"^\|\s*(\d+)%\s*\|\s*([\d.]+)%\s*\|", table, re.M)
    ]


def test_the_documented_table_is_the_spec_table() -> None:
    assert len(DOCUMENTED) == 7
    assert [(r[0], r[1]) for r in DOCUMENTED] == _spec_pairs()


@pytest.mark.parametrize(
    ("app", "raw", "fits", "exact_app", "shown", "exact_raw"),
    DOCUMENTED,
    ids=[f"app{r[0]}-raw{r[1]}" for r in DOCUMENTED],
)
def test_every_documented_pair_follows_the_rule(
    app: int, raw: float, fits: bool, exact_app: float, shown: int, exact_raw: float
) -> None:
    assert percent.raw_to_app(raw) == pytest.approx(exact_app, abs=0.005)
    assert percent.app_percent_shown(raw) == shown
    assert (shown == app) is fits  # "fits": the app shows exactly that value for that raw
    assert percent.app_to_raw(app) == pytest.approx(exact_raw)
    # Every raw value in the table is within the app's whole-percent rounding of the rule.
    assert abs(percent.app_to_raw(app) - raw) <= 0.5


def test_the_prose_example_is_off_by_one_app_percent() -> None:
    # The spec says the app's 20 % is sent as 24.6; the rule (and the table) say 24.0,
    # and 24.6 is what the app shows as 21 %.
    assert percent.app_to_raw(20) == pytest.approx(24.0)
    assert percent.app_percent_shown(24.6) == 21
    assert percent.app_percent_shown(24.0) == 20


def test_the_hidden_bottom_and_the_top() -> None:
    assert percent.app_to_raw(0) == 5.0 and percent.app_to_raw(100) == 100.0
    assert percent.raw_to_app(3) == 0.0 and percent.app_percent_shown(0) == 0
    assert percent.app_percent_shown(100) == 100


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=100))
def test_a_whole_app_percent_shows_as_itself(app: int) -> None:
    assert percent.app_percent_shown(percent.app_to_raw(app)) == app


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_the_shown_percent_is_the_nearest_whole_one(raw: float) -> None:
    shown = percent.app_percent_shown(raw)
    assert abs(shown - percent.raw_to_app(raw)) <= 0.5 + 1e-9
