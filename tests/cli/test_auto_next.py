"""`teg auto next --plan PLAN`: the next timed actions at site-local times, offline from the
plan and a zone; DST-exact across both changes; the gateway's zone read only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teg_helpers import SimThread, Teg

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
SCE = str(EXAMPLES / "sce-tou.toml")
NIGHT = "charge for the night"
FIRMWARE = "firmware while the battery idles"
SELF = "battery serves the house"

# a plan that follows the gateway's zone, with a rule in the hour spring forward skips
ZONELESS = """
name = "zoneless"

[[rules]]
name = "early"
at = "02:30"
mode = "backup"
"""


def offline(tmp_path: Path) -> Teg:
    # no TEG_HOST: any attempt to reach a gateway would fail the command
    return Teg({"TEG_CONFIG": str(tmp_path / "config.toml")})


def when(actions: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["at_local"], a["at_utc"], a["rule"]) for a in actions]


def test_the_sce_plan_across_spring_forward(tmp_path: Path) -> None:
    doc = offline(tmp_path).json(
        "auto", "next", "--plan", SCE, "--from", "2026-03-07T12:00", "--count", "5"
    )
    assert doc["plan"] == "sce-tou" and doc["tz"] == "America/Los_Angeles"
    assert doc["tz_source"] == "plan"
    assert doc["from_utc"] == "2026-03-07T20:00:00+00:00"  # noon, Pacific standard time
    # the clocks go forward on Sunday 8 March at 02:00: the same local times, an hour
    # earlier in UTC
    assert when(doc["actions"]) == [
        ("2026-03-07T22:05:00-08:00", "2026-03-08T06:05:00+00:00", NIGHT),
        ("2026-03-08T07:15:00-07:00", "2026-03-08T14:15:00+00:00", FIRMWARE),
        ("2026-03-08T07:55:00-07:00", "2026-03-08T14:55:00+00:00", SELF),
        ("2026-03-08T22:05:00-07:00", "2026-03-09T05:05:00+00:00", NIGHT),
        ("2026-03-09T07:15:00-07:00", "2026-03-09T14:15:00+00:00", FIRMWARE),
    ]
    assert [a["zone"] for a in doc["actions"]] == ["PST", "PDT", "PDT", "PDT", "PDT"]
    first = doc["actions"][0]
    assert first["setpoints"] == {"mode": "backup", "backup_reserve_app_percent": 100.0}
    assert doc["actions"][1]["firmware_window"] is True
    assert doc["actions"][1]["setpoints"] == {}


def test_the_sce_plan_across_fall_back_in_words(tmp_path: Path) -> None:
    teg = offline(tmp_path)
    result = teg("auto", "next", "--plan", SCE, "--from", "2026-10-31T12:00", "--count", "4")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Plan 'sce-tou': the next 4 timed actions, America/Los_Angeles time (the plan's)"
    )
    # the clocks go back on Sunday 1 November at 02:00; each rule still fires once a day
    assert [line[:22] for line in lines[1:]] == [
        "  Sat 31 Oct 22:05 PDT",
        "  Sun 1 Nov 07:15 PST ",
        "  Sun 1 Nov 07:55 PST ",
        "  Sun 1 Nov 22:05 PST ",
    ]
    assert lines[3].endswith(f"{SELF}: set mode self-powered and backup reserve 5 %")
    doc = teg.json("auto", "next", "--plan", SCE, "--from", "2026-10-31T12:00", "--count", "4")
    utc = [a["at_utc"] for a in doc["actions"]]
    assert utc[1:3] == ["2026-11-01T15:15:00+00:00", "2026-11-01T15:55:00+00:00"]


def test_a_time_the_clocks_skip_is_listed_once_right_after_the_gap(tmp_path: Path) -> None:
    plan = tmp_path / "zoneless.toml"
    plan.write_text(ZONELESS, encoding="utf-8")
    teg = offline(tmp_path)
    doc = teg.json(
        "auto", "next", "--plan", str(plan), "--tz", "America/Los_Angeles",
        "--from", "2026-03-07T00:00", "--count", "3",
    )  # fmt: skip
    assert doc["tz_source"] == "--tz"
    assert [a["at_local"] for a in doc["actions"]] == [
        "2026-03-07T02:30:00-08:00",
        "2026-03-08T03:00:00-07:00",  # 02:30 does not exist that day: at 03:00, once
        "2026-03-09T02:30:00-07:00",
    ]
    # and on the day 01:00-02:00 happens twice, a 01:30 rule fires once (the first)
    doc = teg.json(
        "auto", "next", "--plan", str(plan), "--tz", "America/Los_Angeles",
        "--from", "2026-10-31T00:00", "--count", "3",
    )  # fmt: skip
    assert [a["at_local"] for a in doc["actions"]] == [
        "2026-10-31T02:30:00-07:00",
        "2026-11-01T02:30:00-08:00",
        "2026-11-02T02:30:00-08:00",
    ]


def test_without_a_zone_it_says_what_to_give_and_sends_nothing(tmp_path: Path) -> None:
    plan = tmp_path / "zoneless.toml"
    plan.write_text(ZONELESS, encoding="utf-8")
    result = offline(tmp_path)("auto", "next", "--plan", str(plan))
    assert result.exit_code == 8, (result.stdout, result.stderr)
    assert "--tz" in result.stderr and "--gateway" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    bad = offline(tmp_path)("auto", "next", "--plan", str(plan), "--tz", "Mars/Olympus")
    assert bad.exit_code == 8 and "--tz" in bad.stderr
    both = offline(tmp_path)(
        "auto", "next", "--plan", SCE, "--tz", "UTC", "--gateway", "https://127.0.0.1:1"
    )
    assert both.exit_code == 2 and "not both" in both.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[[rules]]\nname = "a"\nat = "25:00"\nmode = "backup"\n')
    refused = offline(tmp_path)("auto", "next", "--plan", str(broken))
    assert refused.exit_code == 8 and 'rules[1] "a": at' in refused.stderr


def test_the_gateways_site_zone_is_read_when_asked(
    simthread: SimThread, teg: Teg, tmp_path: Path
) -> None:
    plan = tmp_path / "zoneless.toml"
    plan.write_text(ZONELESS, encoding="utf-8")
    sim = simthread.sim
    before = sim.gateway.settings.timezone
    simthread.call(sim.gateway.set_timezone, "Europe/Berlin")
    try:
        doc = teg.json(
            "auto", "next", "--plan", str(plan), "--gateway", sim.url,
            "--from", "2026-03-28T12:00Z", "--count", "2",
        )  # fmt: skip
    finally:
        simthread.call(sim.gateway.set_timezone, before)
    assert doc["tz"] == "Europe/Berlin" and doc["tz_source"] == "gateway"
    # Europe's clocks go forward on Sunday 29 March at 02:00
    assert [a["at_local"] for a in doc["actions"]] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
