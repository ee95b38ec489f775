"""Derive the simulator's answer templates (src/tegkit/sim/captures/<firmware>/*.json).

Each template is a captured answer from vloschiavo-powerwall2 (shared/reference) or an
example in spec 001, put through the steps its entry in PIECES names: pick a part, drop
keys, cut long lists to their first entries, and fill the captures' <<PLACEHOLDERS>> with
example values. The simulator fills live values in at run time; these are the shapes.

    python scripts/derive_sim_captures.py            # write the files
    python scripts/derive_sim_captures.py --check    # exit 1 if a committed file differs

A folder per firmware holds what that firmware answers differently from 21.44 (the base
folder): a new firmware profile is a new folder (and a profile entry), not new code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "reference" / "vloschiavo-powerwall2" / "samples"
SPEC_001 = next((SHARED / "spec").glob("001_*.txt"), SHARED / "spec" / "001.txt")
OUT = REPO / "src" / "tegkit" / "sim" / "captures"
BASE = "21.44"
RUNNING = "21.44-foogod/running"
STOPPED = "21.44-foogod/stopped"

# The captures' placeholders, and the example values served in their place.
EXAMPLES = {
    "<<SSID>>": "Neighbour",
    "<<WIFI_SSID>>": "HomeWifi",
    "<<MAC_ADDR>>": "02:00:00:00:00:01",
    "<<IP_ADDR>>": "192.168.1.50",
    "<<INSTALLER_PHONE>>": "5555550100",
    "<<INSTALLER_EMAIL>>": "installer@example.com",
    "<<FCC_ID>>": "2AEIM-1234567",
    "<<IC_ID>>": "20098-1234567",
    "<<BATTERY_SERIAL>>": "TG121000000001",
    "<<GATEWAY_TSN>>": "TG121000000000",
}

Step = Callable[[Any], Any]


@dataclass(frozen=True)
class Piece:
    """One template: where it comes from, what is done to it, which folders it goes to."""

    name: str  # the file name without .json
    source: str  # a file under samples/, or "spec:<heading>" for an inline example in 001
    steps: tuple[Step, ...] = ()
    firmware: tuple[str, ...] = (BASE,)
    notes: str = field(default="", compare=False)


def pick(*path: str | int) -> Step:
    def step(value: Any) -> Any:
        for key in path:
            value = value[key]
        return value

    return step


def drop(*keys: str) -> Step:
    return lambda value: {k: v for k, v in value.items() if k not in keys}


def first(count: int) -> Step:
    """Keep the first `count` entries of a list (long captured lists are cut short)."""
    return lambda value: value[:count]


def grid_regions(value: Any) -> Any:
    """The CSV's header and first 11 rows; the first two grid code settings, each with at most
    four customizable points."""
    rows = value["regions"].splitlines()[:12]
    settings = {}
    for code, setting in list(value["grid_code_settings"].items())[:2]:
        points = setting.get("grid_customizable_points")
        if isinstance(points, list):
            setting = {**setting, "grid_customizable_points": points[:4]}
        settings[code] = setting
    return {"regions": "\n".join(rows) + "\n", "grid_code_settings": settings}


def fill_placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: fill_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v) for v in value]
    if isinstance(value, str):
        for placeholder, example in EXAMPLES.items():
            value = value.replace(placeholder, example)
    return value


PIECES: tuple[Piece, ...] = (
    Piece("autoconfig.status", f"{RUNNING}/autoconfig.status.json"),
    Piece("customer", f"{RUNNING}/customer.json"),
    Piece("customer.registration", f"{RUNNING}/customer.registration.json"),
    Piece("generators", f"{RUNNING}/generators.json"),
    Piece("generators.disconnect_types", f"{RUNNING}/generators.disconnect_types.json"),
    Piece("installer", f"{RUNNING}/installer.json"),
    Piece("installer.companies", f"{RUNNING}/installer.companies.json", (first(5),)),
    Piece("legal.radio", "legal.radio.json"),
    Piece("meters.aggregates.meter", f"{RUNNING}/meters.aggregates.json", (pick("site"),)),
    Piece(
        "meters.aggregates.idle_meter",
        "api_meters_aggregates.json",
        (pick("busway"),),
        firmware=("1.40", "20.49"),
    ),
    Piece(
        "meters.aggregates.meter",
        "api_meters_aggregates.json",
        (pick("site"),),
        firmware=("1.40",),
    ),
    Piece("meters.site", "api-meters-site.json"),
    Piece("meters.solar", "api-meters-solar.json"),
    Piece("meters.status", f"{RUNNING}/meters.status.json"),
    Piece("meters.synchrometerX.cts", f"{RUNNING}/meters.METER_SERIALsynchrometerX.cts.json"),
    Piece("meters.synchrometerY.cts", f"{RUNNING}/meters.METER_SERIALsynchrometerY.cts.json"),
    Piece("networks", f"{RUNNING}/networks.json"),
    Piece("networks.access_points", "networks.access_points.json", (first(3),)),
    Piece("networks.client_protocols", f"{RUNNING}/networks.client_protocols.json"),
    Piece("operation", f"{RUNNING}/operation.json"),
    Piece("powerwalls", f"{RUNNING}/powerwalls.json", (drop("powerwalls"),)),
    Piece("powerwalls.powerwall", f"{RUNNING}/powerwalls.json", (pick("powerwalls", 0),)),
    Piece("powerwalls.pvi_sub_package_numbers", "powerwalls.pvi_sub_package_numbers.json"),
    Piece("powerwalls.status", f"{RUNNING}/powerwalls.status.json"),
    Piece(
        "powerwalls.status",
        "powerwalls.status.non-offgrid-capable.json",
        firmware=("1.40",),
    ),
    Piece("site_info", f"{RUNNING}/site_info.json"),
    Piece("site_info", "spec:GET /api/site_info", firmware=("1.40",)),
    Piece("site_info.grid_codes", "api_site_info_grid_codes.json", firmware=("1.40",)),
    Piece("site_info.grid_regions", f"{RUNNING}/site_info.grid_regions.json", (grid_regions,)),
    Piece("solars", f"{RUNNING}/solars.json"),
    Piece("solars.brands", f"{RUNNING}/solars.brands.json", (first(25),)),
    Piece("solars.brands.brand", "solar_edge_models.json", (first(3),)),
    Piece("status", f"{RUNNING}/status.json"),
    Piece(
        "synchrometer.ct_voltage_references", f"{RUNNING}/synchrometer.ct_voltage_references.json"
    ),
    Piece(
        "synchrometer.ct_voltage_references.options",
        f"{STOPPED}/synchrometer.ct_voltage_references.options.json",
    ),
    Piece("system.networks.conn_tests", f"{RUNNING}/system.networks.conn_tests.json"),
    Piece("system.networks.conn_tests.done", "system.networks.conn_tests.get.2.json"),
    Piece("system.networks.conn_tests.post", "system.networks.conn_tests.post.json"),
    Piece("system.networks.ping_test", f"{RUNNING}/system.networks.ping_test.json"),
    Piece("system.testing", f"{RUNNING}/system.testing.json"),
    Piece("system.update.status", f"{RUNNING}/system.update.status.json"),
    Piece("system_status", f"{RUNNING}/system_status.json", (drop("battery_blocks"),)),
    Piece(
        "system_status.battery_block", f"{RUNNING}/system_status.json", (pick("battery_blocks", 0),)
    ),
    Piece("troubleshooting.problems", f"{RUNNING}/troubleshooting.problems.json"),
)


def spec_example(heading: str) -> Any:
    """The JSON of the first `response: `...`` line under `#### _<heading>_ ####` in spec 001."""
    lines = SPEC_001.read_text().splitlines()
    start = lines.index(f"#### _{heading}_ ####")
    for line in lines[start + 1 :]:
        if line.startswith("####"):
            break
        if line.startswith("response:") and "`" in line:
            return json.loads(line.split("`")[1])
    raise ValueError(f"spec 001 has no inline response under {heading}")


def derive(piece: Piece) -> Any:
    if piece.source.startswith("spec:"):
        value = spec_example(piece.source.removeprefix("spec:"))
    else:
        value = json.loads((SAMPLES / piece.source).read_text())
    for step in piece.steps:
        value = step(value)
    return fill_placeholders(value)


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    found: dict[Path, str] = {}
    for piece in PIECES:
        text = render(derive(piece))
        for firmware in piece.firmware:
            found[OUT / firmware / f"{piece.name}.json"] = text
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    wanted = outputs()
    existing = set(OUT.glob("*/*.json"))
    if args.check:
        stale = sorted(p for p, text in wanted.items() if not p.exists() or p.read_text() != text)
        extra = sorted(existing - set(wanted))
        for path in stale:
            print(f"differs from its derivation: {path.relative_to(REPO)}")
        for path in extra:
            print(f"derived from nothing: {path.relative_to(REPO)}")
        return 1 if stale or extra else 0
    for path in existing - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(wanted)} files under {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
