"""`teg dump` reads the inverter models of every brand /api/solars names (a space included)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from teg_helpers import SimThread, Teg, sim_env

from tegkit import models, parse_response


def test_dump_fetches_the_models_of_each_configured_brand(
    simthread: SimThread, tmp_path: Path
) -> None:
    sim = simthread.sim
    folder = tmp_path / "gw"
    result = Teg(sim_env(sim, tmp_path / "config.toml"))("--json", "dump", str(folder))
    assert result.exit_code == 0, result.stderr
    index = json.loads((folder / "index.json").read_text())
    brands = {s["brand"] for s in json.loads((folder / "solars.json").read_text())}
    assert brands and any(" " in brand for brand in brands)  # "Enphase Energy"
    assert "/api/solars/brands/{brand}" not in {s["path"] for s in index["skipped"]}
    entries = [f for f in index["files"] if f["template"] == "/api/solars/brands/{brand}"]
    paths = sorted(urllib.parse.unquote(f["path"]) for f in entries)
    assert paths == sorted(f"/api/solars/brands/{brand}" for brand in brands)
    for entry in entries:
        assert entry["status"] == 200
        parsed = parse_response("GET", entry["path"], (folder / entry["file"]).read_bytes())
        assert parsed and all(isinstance(item, models.Solar) for item in parsed)
