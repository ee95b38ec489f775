"""`teg monitor --plan [NAME=]PLAN`: which gateway runs which plan, and a bad plan refused by
rule and field before anything starts (nothing is contacted)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tegkit.cli.monitor import load_plans, monitor
from tegkit.monitor.service import GatewayTarget

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"
SCE = str(EXAMPLES / "sce-tou.toml")
STORM = str(EXAMPLES / "storm-season.toml")
# loopback ports nothing listens on: were the monitor ever to start here, it would reach no one
TARGETS = [
    GatewayTarget("home", "https://127.0.0.1:9"),
    GatewayTarget("barn", "https://127.0.0.1:10"),
]
BAD = """
name = "bad"

[[rules]]
name = "peak on the battery"
at = "07:55"
backup_reserve_percent = 140
"""


def test_one_plan_for_every_gateway_or_one_per_gateway() -> None:
    every = load_plans(TARGETS, (SCE,))
    assert {name: p.name for name, p in every.items()} == {"home": "sce-tou", "barn": "sce-tou"}
    assert every["home"] is every["barn"]  # read once
    mixed = load_plans(TARGETS, (SCE, f"barn={STORM}"))
    assert mixed["home"].name == "sce-tou" and mixed["barn"].name != "sce-tou"
    only = load_plans(TARGETS, (f"home={SCE}",))
    assert set(only) == {"home"}
    assert load_plans(TARGETS, ()) == {}


def test_two_plans_for_one_gateway_are_refused() -> None:
    with pytest.raises(click.BadParameter, match="two plans for gateway 'home'"):
        load_plans(TARGETS, (f"home={SCE}", f"home={STORM}"))
    with pytest.raises(click.BadParameter, match="NAME=PLAN"):
        load_plans(TARGETS, (SCE, STORM))


def test_a_bad_plan_is_refused_by_rule_and_field_before_the_monitor_starts(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text(BAD, encoding="utf-8")
    args = ["--gateway", "home=https://127.0.0.1:9", "--db", str(tmp_path / "m.db")]
    result = CliRunner().invoke(monitor, [*args, "--plan", str(plan)])
    assert result.exit_code == 2, result.output
    assert 'rules[1] "peak on the battery": backup_reserve_percent' in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.db").exists()  # nothing was started
    missing = CliRunner().invoke(monitor, [*args, "--plan", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "none.toml" in missing.output


def test_the_help_names_the_plan_options() -> None:
    result = CliRunner().invoke(monitor, ["--help"], terminal_width=200)
    assert "--plan [NAME=]PLAN" in result.output and "--plan-dry-run" in result.output
