"""The README's examples stay true: its tariff parses and every `teg` command it shows exists."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from tegkit.automation.planfile import load_plan, parse_plan
from tegkit.cli import main
from tegkit.tariff import Tariff

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_tariff_example_parses_and_prices_the_peak() -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    tariff = Tariff.from_toml(block.group(1))
    assert tariff.price_at(datetime(2024, 1, 1, 17, 0)).period_name == "peak"
    assert tariff.price_at(datetime(2024, 1, 1, 3, 0)).buy_per_kwh == 0.31


def test_every_teg_command_shown_exists() -> None:
    shown = set(re.findall(r"^\s*(?:[A-Z_]+=\S+ )*teg (?:--\w+ )*([a-z][a-z-]+)", README, re.M))
    assert {"status", "sim", "monitor", "demo", "setup"} <= shown
    assert sorted(shown - set(main.commands)) == []


def test_the_plan_shown_is_the_shipped_sce_example() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    shown = [parse_plan(block) for block in blocks if block.startswith("name = ")]
    assert len(shown) == 1
    shipped = load_plan(ROOT / "examples" / "plans" / "sce-tou.toml")
    assert shown[0].rules == shipped.rules
    assert (shown[0].timezone, shown[0].tariff) == (shipped.timezone, shipped.tariff)
