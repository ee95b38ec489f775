"""Replay of a `teg dump` folder: the simulator dumped at each firmware, then replayed.

Lenient: every endpoint answers with the original's status and shape (keys and JSON types,
recursively), the live ones move with the physics from the captured values (counters grow,
load = site + battery + solar). Strict: every endpoint answers exactly its captured body and
status, anything else 404. A bad dump is a DumpError naming the file and the field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from gateway_sim_helpers import CAPTURES, SNI, Client, client, simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit.cli import main
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import MeterName
from tegkit.sim import Simulator
from tegkit.sim.profiles import PROFILES
from tegkit.sim.replay import MAX_FILE_BYTES, DumpError, concrete, load_dump, nearest_profile

FIRMWARES = sorted(PROFILES)
SEED = 5


async def _dump(sim: Simulator, folder: Path) -> dict[str, Any]:
    """`teg dump FOLDER` against `sim`, in-process (in a thread: this loop serves `sim`)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TEG_")}
    env.update(
        TEG_HOST=sim.url,
        TEG_PASSWORD=sim.password,
        TEG_PIN=sim.fingerprint_sha256,
        TEG_CONFIG=str(folder.parent / "config.toml"),
    )
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--json", "dump", str(folder)], env=env, prog_name="teg"
    )
    assert result.exit_code == 0, result.output
    index: dict[str, Any] = json.loads((folder / "index.json").read_text())
    return index


async def _login(c: Client) -> dict[str, str]:
    token = (await c.login())["token"]
    if c.sim.gateway.profile.legacy:
        c.sim.run_sitemaster()  # a legacy login stops the Powerwalls; `teg dump` restarts them
    return {"Authorization": f"Bearer {token}"}


def _shape(value: Any) -> Any:
    """Keys and JSON types, recursively (an int and a float are different types)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _rekeyed(value: Any, keys: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {keys.get(k, k): _rekeyed(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekeyed(v, keys) for v in value]
    return value


def _captured(folder: Path, entry: dict[str, Any]) -> Any:
    """The body a strict replay must send: the file's, placeholders made concrete."""
    text = concrete((folder / entry["file"]).read_text())
    if entry["file"].endswith(".err"):
        text = text.split("\n\n", 1)[1]
    return json.loads(text) if text.strip() else b""


def _serial_map(folder: Path, original_meters: list[dict[str, Any]]) -> dict[str, str]:
    """Replayed meter serial -> the original's (both lists in the gateway's order)."""
    dumped = json.loads(concrete((folder / "meters.json").read_text()))
    return {d["serial"]: o["serial"] for d, o in zip(dumped, original_meters, strict=True)}


@pytest.mark.parametrize("firmware", FIRMWARES)
async def test_a_dumped_simulator_replays_with_the_same_statuses_and_shapes(
    firmware: str, tmp_path: Path
) -> None:
    folder = tmp_path / "dump"
    async with simulator(firmware=firmware, seed=SEED, cloud_port=None) as original:
        index = await _dump(original, folder)
        entries = index["files"]
        assert len(entries) > 40
        async with client(original) as c:
            auth = await _login(c)
            _, meters, _ = await c.get("/api/meters", headers=auth)
            to_original = _serial_map(folder, meters)
            theirs = {}
            for entry in entries:
                path = concrete(entry["path"])
                for replayed, real in to_original.items():
                    path = path.replace(replayed, real)
                status, body, _ = await c.get(path, headers=auth)
                # maps keyed by a meter serial (/api/meters/readings): the dump's keys
                back = {real: replayed for replayed, real in to_original.items()}
                theirs[entry["path"]] = (status, _rekeyed(body, back))

    async with simulator(replay=folder, seed=SEED, cloud_port=None) as lenient:
        assert lenient.gateway.profile.name == firmware
        async with client(lenient) as c:
            auth = await _login(c)
            for entry in entries:
                status, body, _ = await c.get(concrete(entry["path"]), headers=auth)
                want_status, want_body = theirs[entry["path"]]
                assert (status, entry["status"]) == (want_status, want_status), entry
                assert _shape(body) == _shape(want_body), entry["path"]

    strict = simulator(replay=folder, replay_strict=True, cloud_port=None)
    async with strict as sim, client(sim) as c:
        auth = await _login(c)
        for entry in entries:
            status, body, _ = await c.get(concrete(entry["path"]), headers=auth)
            assert status == entry["status"], entry
            assert body == _captured(folder, entry), entry["path"]
            assert _shape(body) == _shape(theirs[entry["path"]][1]), entry["path"]


@pytest.fixture(scope="module")
def dumped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 21.44 simulator's dump, three Powerwalls, taken at noon."""
    folder = tmp_path_factory.mktemp("replay") / "dump"

    async def take() -> None:
        async with simulator(seed=SEED, powerwalls=3, cloud_port=None) as sim:
            await _dump(sim, folder)

    asyncio.run(take())
    return folder


def _copy(dumped: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(dumped, folder)
    return folder


def _edit(folder: Path, name: str, change: Any) -> None:
    path = folder / name
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body))


async def test_lenient_counters_grow_from_the_captured_ones_and_power_balances(
    dumped: Path,
) -> None:
    captured = json.loads(concrete((dumped / "meters.aggregates.json").read_text()))
    async with simulator(replay=dumped, cloud_port=None) as sim, client(sim) as c:
        auth = await _login(c)
        _, first, _ = await c.get("/api/meters/aggregates", headers=auth)
        for name in MeterName:
            for key in ("energy_imported", "energy_exported"):
                assert first[name][key] == pytest.approx(captured[name][key]), (name, key)
        _, soe, _ = await c.get("/api/system_status/soe", headers=auth)
        want_soe = json.loads((dumped / "system_status.soe.json").read_text())["percentage"]
        assert soe["percentage"] == pytest.approx(want_soe)
        for _ in range(3):
            await sim.advance(600)
            _, now, _ = await c.get("/api/meters/aggregates", headers=auth)
            for name in MeterName:
                for key in ("energy_imported", "energy_exported"):
                    assert now[name][key] >= first[name][key], (name, key)
            assert now[MeterName.LOAD]["energy_imported"] > first[MeterName.LOAD]["energy_imported"]
            powers = {name: now[name]["instant_power"] for name in MeterName}
            assert powers[MeterName.LOAD] == pytest.approx(
                powers[MeterName.SITE] + powers[MeterName.BATTERY] + powers[MeterName.SOLAR],
                abs=0.02,
            )
            assert now[MeterName.LOAD]["last_communication_time"].startswith(
                sim.now.isoformat()[:19]
            )
            first = now
        # the static endpoints keep the captured bodies; the uptime moves on
        _, status, _ = await c.get("/api/status", headers=auth)
        was = json.loads(concrete((dumped / "status.json").read_text()))
        assert status["up_time_seconds"] != was["up_time_seconds"]
        assert {**status, "up_time_seconds": ""} == {**was, "up_time_seconds": ""}
        _, info, _ = await c.get("/api/site_info", headers=auth)
        assert info == json.loads(concrete((dumped / "site_info.json").read_text()))


async def test_lenient_takes_the_site_shape_and_state_from_the_dump(
    dumped: Path, tmp_path: Path
) -> None:
    folder = _copy(dumped, tmp_path)

    def berlin(body: dict[str, Any]) -> None:
        body.update(timezone="Europe/Berlin", nominal_system_power_kW=17.4)
        body["grid_code"].update(grid_voltage_setting=230, grid_freq_setting=50)

    _edit(folder, "site_info.json", berlin)
    _edit(folder, "operation.json", lambda b: b.update(real_mode="backup"))
    _edit(folder, "system_status.soe.json", lambda b: b.update(percentage=81.5))
    islanded = {"grid_status": "SystemIslandedActive"}
    _edit(folder, "system_status.grid_status.json", lambda b: b.update(islanded))
    async with simulator(replay=folder, cloud_port=None, start=None) as sim:  # the dump's time
        state = sim.state()
        assert sim.gateway.site.config.powerwalls == 3
        assert sim.gateway.site.config.powerwall_power_kw == 5.8
        assert sim.gateway.site.config.nominal_frequency_hz == 50.0
        assert state["timezone"] == "Europe/Berlin"
        assert state["site_name"] == "Name 1"
        assert state["mode"] == "backup"
        assert state["soe_raw_percent"] == pytest.approx(81.5)
        assert state["grid_status"] == "SystemIslandedActive"
        assert 220 < state["voltage_v"] < 240
        index = json.loads((folder / "index.json").read_text())
        assert sim.now.isoformat(timespec="seconds") == (
            sim.now.fromisoformat(index["taken_at"]).astimezone(sim.now.tzinfo).isoformat()
        )
        async with client(sim) as c:
            auth = await _login(c)
            _, grid, _ = await c.get("/api/system_status/grid_status", headers=auth)
            assert grid["grid_status"] == "SystemIslandedActive"
            _, system, _ = await c.get("/api/system_status", headers=auth)
            assert len(system["battery_blocks"]) == 3
            assert all(b["off_grid"] is True for b in system["battery_blocks"])


async def test_captured_error_answers_are_answered_with_their_status_type_and_body(
    dumped: Path, tmp_path: Path
) -> None:
    folder = _copy(dumped, tmp_path)
    (folder / "config.err").write_text("HTTP/1.1 503\ncontent-type: text/plain\n\nbusy, later\n")
    _edit(
        folder,
        "index.json",
        lambda index: [
            e.update(file="config.err", status=503)
            for e in index["files"]
            if e["path"] == "/api/config"
        ],
    )
    (folder / "config.json").unlink()
    for strict in (False, True):
        replay = simulator(replay=folder, replay_strict=strict, cloud_port=None)
        async with replay as sim, client(sim) as c:
            auth = await _login(c)
            status, body, resp = await c.get("/api/config", headers=auth)
            assert (status, resp.content_type, body) == (503, "text/plain", b"busy, later")
            serial = concrete("<<SERIAL_1>>")
            status, body, resp = await c.get(f"/api/meters/{serial}/ct_config", headers=auth)
            assert status == 500 and resp.content_type == "application/json"
            assert body["message"] == "Unable to get Amp configuration"


async def test_placeholders_are_served_as_one_concrete_value_in_bodies_and_paths(
    dumped: Path,
) -> None:
    async with simulator(replay=dumped, cloud_port=None) as sim, client(sim) as c:
        auth = await _login(c)
        _, meters, _ = await c.get("/api/meters", headers=auth)
        for meter in meters:
            assert "<<" not in meter["serial"]
            status, cts, _ = await c.get(f"/api/meters/{meter['serial']}/cts", headers=auth)
            assert status == 200 and cts == meter["cts"]
        _, system, _ = await c.get("/api/system_status", headers=auth)
        _, walls, _ = await c.get("/api/powerwalls", headers=auth)
        assert [b["PackageSerialNumber"] for b in system["battery_blocks"]] == [
            w["PackageSerialNumber"] for w in walls["powerwalls"]
        ]
    assert concrete("<<SERIAL_12>> <<NAME_2>> <<EMAIL_1>>") == (
        "TG9000000012 Name 2 user1@example.com"
    )


async def test_strict_answers_404_for_what_the_dump_lacks_and_still_logs_in(
    dumped: Path,
) -> None:
    strict = simulator(replay=dumped, replay_strict=True, cloud_port=None)
    async with strict as sim, client(sim) as c:
        status, _, _ = await c.get("/api/meters/aggregates")
        assert status == 401  # as the firmware asks: log in first
        auth = await _login(c)
        status, body, _ = await c.post(
                "/api/operation", {"real_mode": "backup", "backup_reserve_percent": 50},
                headers=auth,
            )  # fmt: skip
        assert status == 404 and body["message"] == "/api/operation not found"
        status, _, _ = await c.get("/api/meters/NOSUCHSERIAL/cts", headers=auth)
        assert status == 404
        before = (await c.get("/api/meters/aggregates", headers=auth))[1]
        await sim.advance(600)
        after = (await c.get("/api/meters/aggregates", headers=auth))[1]
        assert before == after  # exactly the captured body, whatever the clock


async def test_an_unknown_firmware_plays_the_nearest_profile_and_says_so(
    dumped: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _copy(dumped, tmp_path)
    _edit(folder, "index.json", lambda index: index.update(firmware_version="22.9.2 0a1b2c3d"))
    with caplog.at_level(logging.WARNING, logger="tegkit.sim"):
        async with simulator(replay=folder, cloud_port=None) as sim:
            assert sim.gateway.profile.name == "21.44"
    assert "'22.9.2 0a1b2c3d' has no profile of its own; playing 21.44" in caplog.text


def test_nearest_profile_stays_in_the_firmware_family() -> None:
    assert nearest_profile("21.44 223a56cd") == "21.44"
    assert nearest_profile("21.39.1 7759c368") == "21.39"
    assert nearest_profile("24.4.0 abcdef") == "23.44"
    assert nearest_profile("22.1.1") == "21.44"
    assert nearest_profile("1.50.1") == "1.40"
    assert nearest_profile("20.40.3") == "1.40"  # before 20.49: legacy auth
    assert nearest_profile("20.49.9") == "20.49"
    assert nearest_profile("latest") == "21.44"
    assert nearest_profile(None) == "21.44"


def _numbers(value: Any) -> Any:
    """Keys and JSON types, an integer and a float both a number (a Go gateway writes 72 and
    540.25 for the same float64 field)."""
    shape = _shape(value)

    def merge(s: Any) -> Any:
        if isinstance(s, dict):
            return {k: merge(v) for k, v in s.items()}
        if isinstance(s, list):
            return [merge(v) for v in s]
        return "number" if s in ("int", "float") else s

    return merge(shape)


def _real_dump(folder: Path) -> list[dict[str, Any]]:
    """A dump folder of a real 21.44 gateway's answers (the captures), in `teg dump`'s format;
    the meter CT files are left out (their names hold an unnumbered placeholder)."""
    folder.mkdir()
    files = []
    for source in sorted((CAPTURES / "21.44-foogod/running").iterdir()):
        if "METER_SERIAL" in source.name:
            continue
        stem = source.name.rsplit(".", 1)[0]
        status = int(source.read_text().split()[1]) if source.suffix == ".err" else 200
        shutil.copy(source, folder / source.name)
        path = "/api/" + stem.replace(".", "/")
        files.append(
            {"file": source.name, "method": "GET", "path": path, "template": path, "status": status}
        )
    index = {
        "format": "tegkit-dump/1",
        "taken_at": "2021-12-26T20:09:23+00:00",
        "firmware_version": "21.44 223a56cd",
        "files": files,
        "skipped": [],
    }
    (folder / "index.json").write_text(json.dumps(index))
    return files


async def test_a_real_gateways_answers_replay_with_their_shapes_and_live_values(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "real"
    files = _real_dump(folder)
    captured = {f["path"]: _captured(folder, f) for f in files}
    aggregates = captured["/api/meters/aggregates"]
    async with simulator(replay=folder, cloud_port=None, start=None) as sim, client(sim) as c:
        assert sim.now.isoformat() == "2021-12-26T12:09:23-08:00"  # when it was captured
        assert sim.state()["mode"] == "autonomous"
        assert sim.state()["backup_reserve_raw_percent"] == 30
        auth = await _login(c)
        for entry in files:
            status, body, _ = await c.get(entry["path"], headers=auth)
            assert status == entry["status"], entry
            assert _numbers(body) == _numbers(captured[entry["path"]]), entry["path"]
            if entry["path"] not in LIVE_PATHS:
                assert body == captured[entry["path"]], entry["path"]
        await sim.advance(900)
        _, now, _ = await c.get("/api/meters/aggregates", headers=auth)
        for name in MeterName:
            for key in ("energy_imported", "energy_exported"):
                assert now[name][key] >= aggregates[name][key], (name, key)
        assert now["load"]["energy_imported"] > aggregates["load"]["energy_imported"]
        powers = {name: now[name]["instant_power"] for name in MeterName}
        assert powers[MeterName.LOAD] == pytest.approx(
            powers[MeterName.SITE] + powers[MeterName.BATTERY] + powers[MeterName.SOLAR], abs=0.02
        )
        _, system, _ = await c.get("/api/system_status", headers=auth)
        _, soe, _ = await c.get("/api/system_status/soe", headers=auth)
        assert system["nominal_full_pack_energy"] == 14061  # the real pack, not a new one's
        assert system["nominal_energy_remaining"] == pytest.approx(
            soe["percentage"] / 100 * 14061, abs=1
        )
    strict = simulator(replay=folder, replay_strict=True, cloud_port=None)
    async with strict as sim, client(sim) as c:
        auth = await _login(c)
        for entry in files:
            status, body, resp = await c.get(entry["path"], headers=auth)
            assert (status, body) == (entry["status"], captured[entry["path"]]), entry["path"]
            assert resp.content_type == "application/json"


LIVE_PATHS = {
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/system_status",
    "/api/status",
    "/api/sitemaster",
    "/api/operation",
}


# --- bad dumps ------------------------------------------------------------------------------


def _index(folder: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((folder / "index.json").read_text())
    return index


def _first_entry(folder: Path, **changes: Any) -> None:
    index = _index(folder)
    index["files"][0].update(changes)
    (folder / "index.json").write_text(json.dumps(index))


def test_a_folder_without_an_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match=r"index\.json: missing"):
        load_dump(tmp_path)
    with pytest.raises(DumpError, match="no such folder"):
        load_dump(tmp_path / "nothing")


def test_a_wrong_format_is_refused_naming_the_field(dumped: Path, tmp_path: Path) -> None:
    folder = _copy(dumped, tmp_path)
    _edit(folder, "index.json", lambda index: index.update(format="tegkit-dump/9"))
    with pytest.raises(DumpError, match=r"index\.json: format: unknown dump format") as caught:
        load_dump(folder)
    assert isinstance(caught.value, InvalidInputError)
    (folder / "index.json").write_text("[1, 2")
    with pytest.raises(DumpError, match="not JSON"):
        load_dump(folder)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"file": "../../etc/passwd.json"}, r"files\[0\]\.file: not a file name inside"),
        ({"file": "/etc/hostname.json"}, r"files\[0\]\.file: not a file name inside"),
        ({"file": "missing.json"}, r"files\[0\]\.file: missing\.json is missing"),
        ({"file": "status.txt"}, r"files\[0\]\.file: neither \.json nor \.err"),
        ({"path": "/api/../../etc"}, r"files\[0\]\.path: not a gateway path"),
        ({"path": "/other"}, r"files\[0\]\.path: not a gateway path"),
        ({"method": "POST"}, r"files\[0\]\.method: not replayable"),
        ({"status": "200"}, r"files\[0\]\.status: not an HTTP status"),
        ({"status": 404}, r"files\[0\]\.status: an error status for a \.json file"),
        ({"template": None}, r"files\[0\]\.template: missing or not a string"),
    ],
)
def test_a_bad_index_entry_is_refused_naming_it(
    dumped: Path, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    folder = _copy(dumped, tmp_path)
    _first_entry(folder, **changes)
    with pytest.raises(DumpError, match=message):
        load_dump(folder)


def test_a_symlink_out_of_the_folder_is_refused(dumped: Path, tmp_path: Path) -> None:
    folder = _copy(dumped, tmp_path)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    name = _index(folder)["files"][0]["file"]
    (folder / name).unlink()
    (folder / name).symlink_to(outside)
    with pytest.raises(DumpError, match="points outside the dump folder"):
        load_dump(folder)
    (folder / name).unlink()
    (folder / "inside.json").write_text("{}")
    (folder / name).symlink_to(folder / "inside.json")  # a link within the folder is fine
    assert load_dump(folder).answers


def test_a_huge_or_deep_file_is_refused(dumped: Path, tmp_path: Path) -> None:
    folder = _copy(dumped, tmp_path)
    name = _index(folder)["files"][0]["file"]
    with (folder / name).open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no need to write 4 MiB
    with pytest.raises(DumpError, match=rf"{name} is too large; expected at most"):
        load_dump(folder)
    (folder / name).write_text("[" * 100 + "]" * 100)
    with pytest.raises(DumpError, match="nested too deeply"):
        load_dump(folder)


def test_a_broken_error_file_is_refused(dumped: Path, tmp_path: Path) -> None:
    folder = _copy(dumped, tmp_path)
    err = next(e for e in _index(folder)["files"] if e["file"].endswith(".err"))
    (folder / err["file"]).write_text("HTTP/1.1 418\ncontent-type: application/json\n\n{}\n")
    with pytest.raises(DumpError, match=rf"{err['file']}: line 1: status 418 but the index"):
        load_dump(folder)
    (folder / err["file"]).write_text("garbage")
    with pytest.raises(DumpError, match="no status line"):
        load_dump(folder)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "file": st.sampled_from(["status.json", "x.err", "../a.json", "", "index.json"])
        | st.text(),
        "method": st.sampled_from(["GET", "PUT"]) | _JSON,
        "path": st.sampled_from(["/api/status", "/api/a/../b", "/x"]) | _JSON,
        "template": st.text(max_size=10) | _JSON,
        "status": st.sampled_from([200, 404, 503]) | _JSON,
    },
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    index=st.fixed_dictionaries(
        {"format": st.sampled_from(["tegkit-dump/1", "x"])},
        optional={
            "files": st.lists(_ENTRY, max_size=4) | _JSON,
            "firmware_version": _JSON,
            "taken_at": st.sampled_from(["2024-06-01T12:00:00+00:00", "yesterday"]) | _JSON,
        },
    ),
    error_text=st.text(max_size=60),
)  # fmt: skip
def test_any_index_loads_or_is_a_dump_error(
    tmp_path: Path, index: dict[str, Any], error_text: str
) -> None:
    (tmp_path / "index.json").write_text(json.dumps(index))
    (tmp_path / "status.json").write_text('{"version": "21.44 x"}')
    (tmp_path / "x.err").write_text(error_text)
    try:
        load_dump(tmp_path)
    except DumpError as exc:
        assert str(exc).startswith(str(tmp_path.resolve()))


# --- teg sim --replay as a person runs it ---------------------------------------------------


def _sim_process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tegkit.sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


async def test_teg_sim_replay_serves_the_dump(dumped: Path, tmp_path: Path) -> None:
    for strict in (False, True):
        process = _sim_process(
            "--replay", str(dumped), *(["--replay-strict"] if strict else []), "--speed", "0",
            "--state-dir", str(tmp_path / f"state{strict}"),
        )  # fmt: skip
        try:
            assert process.stdout is not None
            lines: dict[str, str] = {}
            while "replay" not in lines:
                line = await asyncio.to_thread(process.stdout.readline)
                assert line, "the simulator exited before printing how to reach it"
                key, _, value = line.partition(":")
                lines[key.strip()] = value.strip()
            assert lines["firmware"].startswith("21.44")
            assert lines["replay"].startswith(str(dumped))
            assert ("strict" in lines["replay"]) is strict
            status, body = await _get_logged_in(lines, "/api/system_status")
            assert status == 200 and len(body["battery_blocks"]) == 3
            status, body = await _get_logged_in(lines, "/api/powerwalls/phase_usages")
            assert status == 500 and body["message"] == "Failed getting phase detection information"
        finally:
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.to_thread(process.communicate, timeout=20)
        assert process.returncode == 0, err
        assert "simulator stopped" in out


async def _get_logged_in(lines: dict[str, str], path: str) -> tuple[int, Any]:
    """Log in to the `teg sim` that printed `lines`, then GET `path` (status, JSON body)."""
    login = dict(part.split("=", 1) for part in lines["login"].split())
    context = ssl.create_default_context(cafile=lines["certificate"])
    url = lines["local API"]
    async with aiohttp.ClientSession() as session:
        body = {"username": "customer", "password": login["password"], "email": login["email"]}
        async with session.post(
            url + "/api/login/Basic", json=body, ssl=context, server_hostname=SNI
        ) as resp:
            token = (await resp.json())["token"]
        async with session.get(
            url + path,
            headers={"Authorization": f"Bearer {token}"},
            ssl=context,
            server_hostname=SNI,
        ) as resp:
            return resp.status, await resp.json()


def test_teg_sim_refuses_a_bad_dump_without_a_traceback(dumped: Path, tmp_path: Path) -> None:
    folder = _copy(dumped, tmp_path)
    _first_entry(folder, file="../escape.json")
    cases = [
        (["--replay", str(folder)], "escape.json"),
        (["--replay", str(tmp_path / "none")], "no such folder"),
        (["--replay-strict"], "--replay-strict"),
        (["--replay", str(dumped), "--scenario", "sunny-day"], "--scenario"),
    ]
    for args, expected in cases:
        process = _sim_process(*args)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 2, (args, err)
        assert expected in err and "--replay" in err, (args, err)
        assert "Traceback" not in err


def test_the_pytest_fixture_replays_a_dump_from_the_time_it_was_taken(
    dumped: Path, teg_sim_factory: Any
) -> None:
    # The fixtures' standing clock starts at a fixed instant unless a scenario or a dump
    # brings its own: a replay from the fixture sees the dump's day, as `teg sim --replay`.
    taken_at = dt.datetime.fromisoformat(_index(dumped)["taken_at"])
    sim = teg_sim_factory(replay=dumped, cloud=False)
    assert abs((sim.now - taken_at).total_seconds()) < 1
