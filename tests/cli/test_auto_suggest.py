"""`teg auto suggest`: the plan written whole and proven by simulation (the table or JSON),
history from a real monitor database, and bad options refused with the option named
(exit 8, or click's 2), nothing written. Offline: it never contacts a gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from teg_helpers import Teg, write_history_db

from tegkit.automation.planfile import load_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
SPEC = str(EXAMPLES / "sce-tou.toml")


@pytest.fixture()
def teg(tmp_path: Path) -> Teg:
    return Teg({"TEG_CONFIG": str(tmp_path / "config.toml")})


def test_the_plan_is_written_and_beats_self_consumption_and_the_compared_plan(
    teg: Teg, tmp_path: Path
) -> None:
    out = tmp_path / "suggested.toml"
    data = teg.json(
        "auto", "suggest", "--tariff", "sce-tou", "--scenario", "cloudy-day", "--days", "4",
        "--out", str(out), "--compare", SPEC,
    )  # fmt: skip
    assert data["out"] == str(out) and "plan_toml" not in data
    assert data["source"] == "scenario cloudy-day" and data["tariff"] == "sce-tou"
    assert data["days"] == 4 and data["step_min"] == 60
    plan = load_plan(out)
    assert plan.name == "suggested" and plan.tariff is not None
    assert [r["name"] for r in data["rules"]] == [r.name for r in plan.rules]
    rows = {row["strategy"]: row for row in data["strategies"]}
    assert list(rows) == ["suggested", "compared", "self_consumption", "no_battery"]
    assert rows["suggested"]["cost"] < rows["self_consumption"]["cost"]
    assert rows["suggested"]["cost"] < rows["compared"]["cost"]
    assert data["beats_self_consumption"] is True and data["beats_compared"] is True
    for row in rows.values():
        assert row["saving_vs_self_consumption"] == pytest.approx(
            rows["self_consumption"]["cost"] - row["cost"], abs=0.011
        )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    # the file says where it came from and why each rule is there
    text = out.read_text()
    assert text.startswith("# Suggested by `teg auto suggest` from scenario cloudy-day")
    assert all(f"#   {r['why']}" in text for r in data["rules"])


def test_the_table_ends_with_the_verdict(teg: Teg) -> None:
    result = teg(
        "auto", "suggest", "--tariff", "sce-tou", "--scenario", "firmware-peak", "--days", "2",
        "--by", "season", "--compare", SPEC,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("# Suggested by `teg auto suggest` from scenario firmware-peak")
    assert 'name = "suggested"' in out  # without --out the plan is printed
    labels = [line.split("│")[0].strip() for line in out.splitlines() if "│" in line]
    assert labels == [
        "suggested (suggested)",
        "compared (sce-tou.toml)",
        "self_consumption",
        "no_battery",
    ]
    assert "The suggested plan beats self_consumption alone and beats the compared plan" in out


def test_history_from_a_monitor_database(teg: Teg, tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    write_history_db(db, days=3, solar_peak_w=4000.0, evening_w=1200.0)
    data = teg.json(
        "auto", "suggest", "--tariff", "sce-tou", "--history", str(db), "--gateway", "home",
        "--tz", "America/Los_Angeles", "--start", "2024-07-01", "--days", "3",
    )  # fmt: skip
    assert data["source"] == "history of gateway home"
    assert data["gap_hours"] == 2
    assert data["beats_self_consumption"] is True and data["beats_compared"] is None
    assert 'timezone = "America/Los_Angeles"' in data["plan_toml"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ([], "--history/--scenario"),
        (["--scenario", "sunny-day", "--history", "{tmp}/m.db"], "--history/--scenario"),
        (["--scenario", "nowhere"], "scenario"),
        (["--scenario", "sunny-day", "--gateway", "home"], "--gateway"),
        (["--scenario", "sunny-day", "--tz", "Europe/Berlin"], "--tz"),
        (["--history", "{tmp}/missing.db", "--gateway", "home", "--tz", "UTC"], "--history"),
        (["--history", "{tmp}/m.db", "--tz", "UTC"], "--history"),
        (["--scenario", "sunny-day", "--out", "{tmp}/no/such/folder/p.toml"], "--out"),
        (["--scenario", "sunny-day", "--compare", "{tmp}/none.toml"], "plan"),
    ],
)
def test_bad_options_are_named_and_nothing_is_written(
    teg: Teg, tmp_path: Path, extra: list[str], named: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    result = teg("auto", "suggest", "--tariff", "sce-tou", "--days", "1", *args)
    assert result.exit_code == 8, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"teg: rejected: {named}"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing is written"


def test_a_bad_tariff_is_named(teg: Teg, tmp_path: Path) -> None:
    out = tmp_path / "p.toml"
    result = teg(
        "auto", "suggest", "--tariff", "no-such-tariff", "--scenario", "sunny-day",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 8
    assert result.stderr.startswith("teg: rejected: --tariff:")
    assert not out.exists()


def test_an_existing_plan_is_kept_when_the_run_fails(teg: Teg, tmp_path: Path) -> None:
    out = tmp_path / "p.toml"
    out.write_text("kept")
    result = teg(
        "auto", "suggest", "--tariff", "sce-tou", "--scenario", "nowhere", "--out", str(out)
    )
    assert result.exit_code == 8
    assert out.read_text() == "kept"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--step-min", "7"], "--step-min"),
        (["--days", "0"], "--days"),
        (["--min-reserve", "101"], "--min-reserve"),
        (["--by", "week"], "--by"),
        (["--export-rule", "sometimes"], "--export-rule"),
        (["--start", "July"], "--start"),
    ],
)
def test_bad_values_are_usage_errors(teg: Teg, extra: list[str], named: str) -> None:
    result = teg("auto", "suggest", "--tariff", "sce-tou", "--scenario", "sunny-day", *extra)
    assert result.exit_code == 2
    assert named in result.stderr


def test_the_tariff_is_required(teg: Teg) -> None:
    result = teg("auto", "suggest", "--scenario", "sunny-day")
    assert result.exit_code == 2
    assert "--tariff" in result.stderr
