"""`teg dump`: every readable endpoint to a folder, redacted, and readable by parse_response."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from teg_helpers import SimThread, Teg, sim_env

from tegkit import catalog, parse_response
from tegkit.cli.dump import _Writer, readable
from tegkit.cli.redact import Redactor
from tegkit.sim import Simulator

Dumped = tuple[Path, dict[str, Any]]


@pytest.fixture(scope="module")
def dumped(tmp_path_factory: pytest.TempPathFactory, simthread: SimThread) -> Dumped:
    sim = simthread.sim
    folder = tmp_path_factory.mktemp("dump") / "gw"
    teg = Teg(sim_env(sim, folder.parent / "config.toml"))
    result = teg("--json", "dump", str(folder))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    return folder, summary


def _index(folder: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((folder / "index.json").read_text())
    return index


def test_every_readable_get_is_written_or_skipped_with_a_reason(
    dumped: Dumped,
) -> None:
    folder, summary = dumped
    index = _index(folder)
    assert index["format"] == "tegkit-dump/1"
    assert index["firmware_version"] == "21.44 223a56cd"
    templates = {f["template"] for f in index["files"]} | {s["path"] for s in index["skipped"]}
    assert templates == {e.path for e in readable()}
    assert summary["files"] == len(index["files"])
    written = {p.name for p in folder.iterdir()} - {"index.json"}
    assert written == {f["file"] for f in index["files"]}
    # the meter serials came from /api/meters
    assert any(f["template"] == "/api/meters/{serial}/cts" for f in index["files"])
    assert "meters.aggregates.json" in written  # the captures' naming


def test_parse_response_reads_every_file_it_wrote(dumped: Dumped) -> None:
    folder, _ = dumped
    parsed = 0
    for entry in _index(folder)["files"]:
        text = (folder / entry["file"]).read_text()
        if entry["file"].endswith(".err"):
            status_line, _, _ = text.partition("\n")
            assert status_line == f"HTTP/1.1 {entry['status']}"
            assert entry["status"] >= 400
            continue
        assert entry["status"] == 200
        assert catalog.match(entry["method"], entry["path"]) is not None
        if text.strip():
            parse_response(entry["method"], entry["path"], text)
            parsed += 1
    assert parsed >= 40


def test_identifying_values_are_redacted(dumped: Dumped, sim: Simulator) -> None:
    folder, _ = dumped
    everything = "\n".join(p.read_text() for p in folder.iterdir())
    gw = sim.gateway
    secrets = [gw.din, gw.gateway_serial, *gw.battery_serials, *gw.meter_serials.values()]
    secrets += [sim.email, sim.password, "127.0.0.1"]
    for secret in secrets:
        assert secret and secret not in everything, secret
    assert json.loads((folder / "status.json").read_text())["din"].startswith("<<SERIAL_")
    site_name = json.loads((folder / "site_info.site_name.json").read_text())["site_name"]
    assert site_name.startswith("<<NAME_")
    # The gateway's own network names are not personal and stay.
    assert "ethernet_tesla_internal_default" in everything
    # A serial has one placeholder, in the body of /api/meters and in the file of its CTs.
    for meter in json.loads((folder / "meters.json").read_text()):
        assert (folder / f"meters.{meter['serial'].strip('<>')}.cts.json").exists()


def test_a_value_redacted_anywhere_is_gone_everywhere(dumped: Dumped, teg: Teg) -> None:
    folder, _ = dumped
    everything = "\n".join(p.read_text() for p in folder.iterdir())
    # Read unredacted from the same simulator: the installer's customer_id and the meters'.
    result = teg("--json", "get", "/api/installer")
    assert result.exit_code == 0, result.stderr
    customer_id = json.loads(result.stdout)["customer_id"]
    assert customer_id and customer_id not in everything
    installer = json.loads((folder / "installer.json").read_text())
    assert installer["customer_id"].startswith("<<ID_")


def test_the_writer_scrubs_every_file_of_values_redacted_in_any(tmp_path: Path) -> None:
    writer = _Writer(tmp_path, Redactor())
    # The serial is named as a serial only in the second answer; the first holds it in text.
    writer.write("/api/a", "/api/a", {}, 200, {"ip_address": "Neurio-TG4242", "n": 1}, False)
    writer.write("/api/b", "/api/b", {}, 200, {"serial": "TG4242", "note": "TG4242 ok"}, False)
    writer.write(
        "/api/meters/{serial}/cts", "/api/meters/TG4242/cts", {"serial": "TG4242"}, 404,
        {"code": 404, "error": "no meter TG4242", "message": None}, True,
    )  # fmt: skip
    writer.flush()
    text = "\n".join(p.read_text() for p in tmp_path.iterdir())
    assert "TG4242" not in text and "TG4242" not in json.dumps(writer.files)
    assert [f["file"] for f in writer.files] == ["a.json", "b.json", "meters.SERIAL_1.cts.err"]
    assert json.loads((tmp_path / "a.json").read_text())["n"] == 1
    b = json.loads((tmp_path / "b.json").read_text())
    assert b == {"serial": "<<SERIAL_1>>", "note": "<<SERIAL_1>> ok"}


def test_a_non_empty_folder_needs_force(teg: Teg, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    result = teg("dump", str(tmp_path))
    assert result.exit_code == 2
    assert (tmp_path / "x").read_text() == "keep me"


def test_redactor_replaces_addresses_in_text_and_keeps_types() -> None:
    # Addresses as a dump would contain them (documentation ranges): redacted, never contacted.
    r = Redactor()
    data = {
        "serial": "TG123456789",
        "ip": "192.0.2.20",
        "gateway": "198.51.100.1",
        "mask": "255.255.255.0",
        "hw_address": "aa:bb:cc:dd:ee:ff",
        "note": "reach me at owner@example.com from 192.0.2.20 (dev 1232100-00-E--TG12345)",
        "email": "x@y.z",
        "count": 3,
        "ok": True,
        "token": "abc",
        "version": "21.44.1 223a56cd",
    }
    out = r.value(data)
    assert out["serial"] == "<<SERIAL_1>>"
    assert out["ip"] == out["note"].split("from ")[1].split(" ")[0] == "<<IP_ADDR_1>>"
    assert out["gateway"] == "<<IP_ADDR_2>>"
    assert out["mask"] == "255.255.255.0"
    assert out["hw_address"] == "<<MAC_ADDR_1>>"
    assert "owner@example.com" not in out["note"] and "TG12345" not in out["note"]
    assert out["count"] == 3 and out["ok"] is True
    assert out["token"] == "<<TOKEN_1>>"
    assert out["version"] == "21.44.1 223a56cd"
