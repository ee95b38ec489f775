"""`teg auto simulate`: the comparison table or JSON, the typical-day chart (PNG, SVG), a
monitor database as the source, and bad options refused with the option named (exit 8, or
click's 2), nothing written. Offline: it never contacts a gateway."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from teg_helpers import Teg, write_history_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
SPEC = str(EXAMPLES / "sce-tou.toml")
STRATEGIES = [
    "plan",
    "plan_without_firmware_window",
    "self_consumption",
    "backup",
    "autonomous",
    "no_battery",
]


@pytest.fixture()
def teg(tmp_path: Path) -> Teg:
    return Teg({"TEG_CONFIG": str(tmp_path / "config.toml")})


def test_json_compares_the_plan_with_each_mode_and_no_battery(teg: Teg) -> None:
    data = teg.json(
        "auto", "simulate", "--plan", SPEC, "--scenario", "firmware-peak", "--days", "2"
    )
    assert data["plan"] == "sce-tou" and data["tariff"] == "sce-tou"
    assert data["source"] == "scenario firmware-peak"
    assert data["start"] == "2024-08-13T00:00:00-07:00" and data["days"] == 2
    assert data["step_s"] == 300 and data["gaps"] == []
    assert data["firmware_releases"] == ["2024-08-13T03:00:00-07:00"]  # the scenario's
    assert data["baseline_reserve_app_percent"] == 20
    rows = {row["strategy"]: row for row in data["strategies"]}
    assert list(rows) == STRATEGIES
    none, sc = rows["no_battery"]["cost"], rows["self_consumption"]["cost"]
    for row in rows.values():
        assert row["currency"] == "USD"
        assert row["saving_vs_no_battery"] == pytest.approx(none - row["cost"], abs=0.011)
        assert row["saving_vs_self_consumption"] == pytest.approx(sc - row["cost"], abs=0.011)
        assert row["grid_import_kwh"] >= 0 and row["grid_export_kwh"] >= 0
        assert 0 <= row["self_powered_percent"] <= 100
    assert rows["no_battery"]["battery_cycles"] == 0 and rows["backup"]["battery_cycles"] == 0
    day = rows["self_consumption"]["typical_day"]
    assert set(day) == {"load_kw", "solar_kw", "battery_kw", "grid_kw", "soe_app_percent"}
    assert all(len(values) == 24 for values in day.values())
    assert day["solar_kw"][0] == 0 and day["solar_kw"][12] > 1  # night and noon
    assert rows["no_battery"]["typical_day"]["soe_app_percent"] == [None] * 24
    # the plan's window installs the scenario's release at 07:15; left alone, the gateway
    # installs it by itself in the peak
    assert [(i["by"], i["stop_period"]) for i in rows["plan"]["firmware_installs"]] == [
        ("plan", "super_off_peak")
    ]
    assert [i["by"] for i in rows["plan_without_firmware_window"]["firmware_installs"]] == [
        "gateway"
    ]


def test_the_table_names_every_strategy(teg: Teg) -> None:
    result = teg("auto", "simulate", "--plan", SPEC, "--scenario", "sunny-day", "--days", "1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Plan sce-tou on scenario sunny-day: 1 days from 2024-06-21, tariff sce-tou, 300 s steps"
    )
    labels = [line.split("│")[0].strip() for line in lines if "│" in line]
    assert labels == [
        "plan",
        "plan, no firmware window",
        "self_consumption",
        "backup",
        "autonomous",
        "no battery",
    ]
    assert result.stderr == ""


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_chart_is_written_in_the_format_of_its_suffix(
    teg: Teg, tmp_path: Path, suffix: str
) -> None:
    chart = tmp_path / f"day{suffix}"
    data = teg.json(
        "auto", "simulate", "--plan", SPEC, "--scenario", "sunny-day", "--days", "1",
        "--chart", str(chart),
    )  # fmt: skip
    assert data["chart"] == str(chart)
    body = chart.read_bytes()
    if suffix == ".png":
        assert body.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert ET.fromstring(body).tag == "{http://www.w3.org/2000/svg}svg"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_history_from_a_monitor_database_reports_its_gaps(teg: Teg, tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    write_history_db(db, days=2, solar_peak_w=2500.0)
    args = ("auto", "simulate", "--plan", SPEC, "--history", str(db), "--gateway", "home")
    data = teg.json(*args, "--start", "2024-07-01", "--days", "2")
    assert data["source"] == "history of gateway home"
    assert data["gaps"] == [
        {
            "start": "2024-07-01T10:00:00-07:00",
            "end": "2024-07-01T12:00:00-07:00",
            "reason": "monitor stopped",
        }
    ]
    assert data["gap_hours"] == 2
    for row in data["strategies"]:
        assert row["load_kwh"] == pytest.approx(0.8 * 46), row["strategy"]
    text = teg(*args, "--start", "2024-07-01", "--days", "2")
    assert text.exit_code == 0, text.stderr
    assert "1 gaps in the history (2 h) were skipped, not counted as zero:" in text.stdout
    assert "2024-07-01T10:00:00-07:00 .. 2024-07-01T12:00:00-07:00: monitor stopped" in text.stdout


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--scenario", "nowhere"], "scenario"),
        (["--history", "{tmp}/missing.db", "--gateway", "home"], "--history"),
        (["--history", "{tmp}/m.db", "--scenario", "sunny-day"], "--history/--scenario"),
        (["--gateway", "home"], "--gateway"),
        (["--chart", "{tmp}/day.gif"], "--chart"),
        (["--chart", "{tmp}/no/such/folder/day.png"], "--chart"),
        (["--tariff", "no-such-tariff"], "--tariff"),
        (["--tz", "Europe/Berlin"], "--tz"),
    ],
)
def test_bad_options_are_named_and_nothing_is_written(
    teg: Teg, tmp_path: Path, extra: list[str], named: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    result = teg("auto", "simulate", "--plan", SPEC, "--days", "1", *args)
    assert result.exit_code == 8, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"teg: rejected: {named}:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing is written (no database, no chart)"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--step-s", "7"], "--step-s"),
        (["--days", "0"], "--days"),
        (["--releases", "-1"], "--releases"),
        (["--start", "July"], "--start"),
    ],
)
def test_bad_values_are_usage_errors(teg: Teg, extra: list[str], named: str) -> None:
    result = teg("auto", "simulate", "--plan", SPEC, *extra)
    assert result.exit_code == 2
    assert named in result.stderr


def test_a_bad_plan_is_named_by_rule_and_field(teg: Teg, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "p"\n[[rules]]\nname = "r"\nat = "25:00"\nmode = "backup"\n')
    result = teg("auto", "simulate", "--plan", str(plan), "--days", "1")
    assert result.exit_code == 8
    assert 'rules[1] "r": at' in result.stderr
    missing = teg("auto", "simulate", "--plan", str(tmp_path / "none.toml"), "--days", "1")
    assert missing.exit_code == 8 and "Traceback" not in missing.stderr


def test_a_file_that_is_not_a_database_is_refused(teg: Teg, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = teg(
        "auto", "simulate", "--plan", SPEC, "--history", str(junk), "--gateway", "home",
        "--days", "1",
    )  # fmt: skip
    assert result.exit_code == 8, (result.stdout, result.stderr)
    assert result.stderr.startswith("teg: rejected: --history:")
    assert junk.read_bytes() == b"this is not sqlite" * 100
