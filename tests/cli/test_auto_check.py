"""`teg auto check PLAN`: exit 0 and the plan's days in words when valid, exit 8 naming the
rule and field when not; offline (it never connects to a gateway)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from teg_helpers import TEG, Teg

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
SPEC = str(EXAMPLES / "sce-tou.toml")


@pytest.fixture()
def teg(tmp_path: Path) -> Teg:
    return Teg({"TEG_CONFIG": str(tmp_path / "config.toml")})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_spec_plan_is_valid_and_said_day_by_day(teg: Teg) -> None:
    result = teg("auto", "check", SPEC, "--from", "2026-03-07", "--days", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        'Plan "sce-tou": 3 rules, valid. Times are America/Los_Angeles local time, '
        "Sat 7 Mar to Sun 8 Mar."
    )
    assert [line[:17] for line in lines[3:]] == [
        "Sat 7 Mar  07:15 ",
        "           07:55 ",
        "           22:05 ",
        "Sun 8 Mar  07:15 ",
        "           07:55 ",
        "           22:05 ",
    ]
    assert lines[4].endswith(
        'set mode self-powered and backup reserve 5 %  (rule "battery serves the house")'
    )
    assert result.stderr == ""


def test_json(teg: Teg) -> None:
    result = teg("auto", "check", SPEC, "--from", "2026-07-01", "--days", "3", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True and data["days"] == 3
    assert [item["at_local"][11:16] for item in data["planned"]] == ["07:15", "07:55", "22:05"] * 3
    assert data["planned"][-1]["text"] == "set mode backup only and backup reserve 100 %"
    # the global flag works too
    again = teg("--json", "auto", "check", SPEC, "--from", "2026-07-01", "--days", "3")
    assert json.loads(again.stdout) == data


def test_tz_overrides_the_plans_zone(teg: Teg) -> None:
    data = json.loads(
        teg(
            "auto",
            "check",
            SPEC,
            "--from",
            "2026-07-01",
            "--days",
            "1",
            "--tz",
            "Europe/Berlin",
            "--json",
        ).stdout
    )
    assert data["timezone"] == "Europe/Berlin"
    assert data["planned"][0]["at_local"] == "2026-07-01T07:15:00+02:00"
    assert data["warnings"][0].startswith("the plan says America/Los_Angeles, but times here are")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_is_valid(teg: Teg, name: str) -> None:
    result = teg("auto", "check", str(EXAMPLES / name), "--days", "7", "--from", "2026-07-01")
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout.splitlines()[0]


def test_an_invalid_plan_exits_8_naming_the_rule_and_field(teg: Teg, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "p"\ntimezone = "UTC"\n[[rules]]\nname = "ok"\nat = "07:00"\nmode = "backup"\n'
        '[[rules]]\nname = "peak on the battery"\nat = "07:55"\nbackup_reserve_percent = 105\n',
    )
    result = teg("auto", "check", path)
    assert result.exit_code == 8
    assert result.stdout == ""
    assert result.stderr == (
        'teg: rejected: rules[2] "peak on the battery": backup_reserve_percent: 105 is not '
        "allowed; expected a number from 0 to 100 % on the app scale (what the Tesla app "
        "shows). Nothing was sent.\n"
    )


def test_a_plan_without_a_zone_needs_tz(teg: Teg, tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "p"\n[[rules]]\nname = "r"\nat = "07:00"\nmode = "backup"\n')
    result = teg("auto", "check", path)
    assert result.exit_code == 8
    assert "--tz: 'not given' is not allowed" in result.stderr
    assert "give --tz, e.g. --tz America/Los_Angeles" in result.stderr
    ok = teg("auto", "check", path, "--tz", "UTC", "--from", "2026-01-01", "--days", "1")
    assert ok.exit_code == 0
    assert ok.stdout.splitlines()[2].startswith("Thu 1 Jan  07:00  set mode backup only")


def test_a_bad_tz_is_named(teg: Teg) -> None:
    result = teg("auto", "check", SPEC, "--tz", "Pacific Time")
    assert result.exit_code == 8
    assert "--tz: 'Pacific Time' is not allowed; expected an IANA time zone name" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--days", "32"], "--days"),
        (["--days", "0"], "--days"),
        (["--from", "3 March"], "--from"),
    ],
)
def test_bad_options_are_usage_errors(teg: Teg, args: list[str], says: str) -> None:
    result = teg("auto", "check", SPEC, *args)
    assert result.exit_code == 2
    assert says in result.stderr


def test_a_missing_file_exits_8(teg: Teg, tmp_path: Path) -> None:
    result = teg("auto", "check", str(tmp_path / "nope.toml"))
    assert result.exit_code == 8
    assert "expected a readable file (No such file or directory)" in result.stderr


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def test_check_runs_as_a_program_and_never_contacts_the_gateway(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    env |= {
        "TEG_CONFIG": str(tmp_path / "config.toml"),
        "TEG_HOST": f"127.0.0.1:{port}",
        "TEG_PASSWORD": "not used",
    }
    done = subprocess.run(
        [TEG, "auto", "check", SPEC, "--days", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "firmware window" in done.stdout
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
