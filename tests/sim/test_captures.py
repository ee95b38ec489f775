"""The simulator's answer templates are data: JSON per firmware, derived by a committed script
from the captures, loaded once and handed out as fresh copies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway_sim_helpers import capture

from tegkit.sim.captures import BASE, captures
from tegkit.sim.profiles import PROFILES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "derive_sim_captures.py"
FOLDER = REPO / "src" / "tegkit" / "sim" / "captures"


def test_the_committed_files_are_what_the_script_derives() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_folder_is_a_firmware_profile_and_the_base_is_complete() -> None:
    folders = {p.name for p in FOLDER.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders <= set(PROFILES) and BASE in folders
    base = set(captures(BASE).names)
    assert len(base) > 35
    for name in PROFILES:
        assert set(captures(name).names) >= base, name  # a folder only adds or overrides


def test_each_body_is_a_fresh_copy() -> None:
    answers = captures(BASE)
    first = answers.body("networks")
    first[0]["network_name"] = "changed"
    first.append({})
    again = answers.body("networks")
    assert again[0]["network_name"] == "ethernet_tesla_internal_default" and len(again) == 3
    assert captures(BASE) is answers  # read once


def test_a_firmware_folder_overrides_the_base() -> None:
    assert isinstance(captures("21.44").body("site_info")["grid_code"], dict)
    legacy = captures("1.40").body("site_info")
    assert isinstance(legacy["grid_code"], str)  # spec 001's 1.x answer: a flat grid code
    assert "site_info.grid_codes" in captures("1.40").names
    assert "site_info.grid_codes" not in captures("21.44").names
    assert captures("1.40").body("site_info.grid_codes") == capture("api_site_info_grid_codes.json")
    # Placeholders of the captures are filled with examples.
    assert captures(BASE).body("status")["din"] == "1232100-00-E--TG121000000000"
