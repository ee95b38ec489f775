"""A simulated fleet (`teg sim --gateways N`): many gateways in one process, each its own
identity, certificate, password, site and zone over real HTTPS; faults and scenarios at one
gateway or a seeded share; the fleet file that matches; the command's start and stop."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import ssl
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from teg_process import TegProcess, clean_env
from tegkit.client import Gateway, PinnedCertificate
from tegkit.errors import AuthenticationError, CertificateMismatchError, InvalidInputError
from tegkit.sim.fleet import (
    FleetMember,
    SimulatedFleet,
    loopback_address,
    parse_fault,
    plan_fleet,
)
from tegkit.sim.profiles import PROFILES

DEADLINE_S = 60.0


def _fleet_file(fleet: SimulatedFleet) -> dict[str, Any]:
    with fleet.fleet_file.open("rb") as f:
        return tomllib.load(f)


def _entries(fleet: SimulatedFleet) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in _fleet_file(fleet)["gateways"]}


def _client(
    entry: dict[str, Any], *, password: str | None = None, pin: str | None = None
) -> Gateway:
    """A tegkit client configured from a fleet file entry, as `teg monitor --fleet` would."""
    secret = _password(entry)
    return Gateway(
        entry["url"],
        password=password or secret,
        email="owner@example.com",
        tls=PinnedCertificate(pin or entry["pin"]),
        sni=entry.get("sni"),
        retries=0,
    )


def _password(entry: dict[str, Any]) -> str:
    return Path(entry["password_file"]).read_text().strip()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@functools.cache
def _no_verify() -> ssl.SSLContext:  # one context: each loads the system's CA bundle
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _wait_until(what: str, found: Any) -> None:
    """Poll a condition with a deadline (never a sleep that orders events)."""
    deadline = time.monotonic() + DEADLINE_S
    while not found():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited for {what}")
        await asyncio.sleep(0.01)


async def test_each_gateway_answers_over_https_as_itself(tmp_path: Path) -> None:
    async with SimulatedFleet(20, port=0, seed=3, state_dir=tmp_path / "state") as fleet:
        entries = _entries(fleet)
        assert list(entries) == fleet.names == [f"gw{i:02d}" for i in range(1, 21)]
        members = fleet.members
        # Identities, certificates and passwords all differ.
        for attribute in ("din", "gateway_serial", "password"):
            values = {getattr(m.gateway, attribute) for m in members}
            assert len(values) == 20, attribute
        assert len({m.fingerprint_sha256 for m in members}) == 20
        assert len({m.port for m in members}) == 20

        async def check(member: FleetMember) -> None:
            entry = entries[member.name]
            async with _client(entry) as gw:
                await gw.login()
                assert (await gw.status()).version == member.gateway.profile.version
                walls = await gw.powerwalls()  # every firmware names the gateway here
                assert walls.gateway_din == member.gateway.din
                assert len(walls.powerwalls or []) == member.plan.config.powerwalls
                assert (await gw.site_info()).timezone == entry["tz"]

        await asyncio.gather(*(check(m) for m in members))

        first, second = entries["gw01"], entries["gw02"]
        async with _client(first, pin=second["pin"]) as gw:  # another gateway's pin
            with pytest.raises(CertificateMismatchError):
                await gw.status()
        other_password = _password(second)
        async with _client(first, password=other_password) as gw:  # another's password
            with pytest.raises(AuthenticationError):
                await gw.login()


async def test_sites_firmware_and_zones_are_spread_by_the_seed() -> None:
    plans = plan_fleet(200, seed=5, port=9000)
    assert plans == plan_fleet(200, seed=5, port=9000)  # the same seed, the same fleet
    assert plans != plan_fleet(200, seed=6, port=9000)
    assert [p.port for p in plans] == list(range(9000, 9200))
    assert {p.firmware for p in plans} == set(PROFILES)
    assert len({p.config.timezone for p in plans}) >= 6
    assert {p.config.powerwalls for p in plans} == {1, 2, 3}
    assert len({p.config.array_kw for p in plans}) > 50
    # 50 Hz where the zone's grid is, 60 Hz in the US
    for plan in plans:
        us = plan.config.timezone.startswith("America/")
        assert plan.config.nominal_frequency_hz == (60.0 if us else 50.0)
    assert {p.firmware for p in plan_fleet(30, firmware="23.44")} == {"23.44"}
    assert {p.config.powerwalls for p in plan_fleet(30, powerwalls=3)} == {3}


async def test_a_fault_at_one_gateway_affects_it_only(tmp_path: Path) -> None:
    faults = ["status:status=503@gw03", "latency:latency_ms=60000@gw05"]
    async with SimulatedFleet(8, port=0, faults=faults, state_dir=tmp_path) as fleet:
        slow = fleet.member("gw05")
        async with aiohttp.ClientSession() as session:

            async def status_of(member: FleetMember) -> int:
                async with session.get(member.url + "/api/status", ssl=_no_verify()) as r:
                    return r.status

            # gw05 hangs for a minute: while its request waits, every other gateway answers
            # (its fault sleeps without holding the event loop the fleet shares).
            hanging = asyncio.create_task(status_of(slow))
            await _wait_until("gw05's fault to act", lambda: slow.faults.injected == 1)
            others = [m for m in fleet.members if m is not slow]
            statuses = await asyncio.gather(*(status_of(m) for m in others))
            assert not hanging.done()
            # a second request to it while the first waits: counted in flight at the gateway
            second = asyncio.create_task(status_of(slow))
            await _wait_until("two requests in flight at gw05", lambda: slow.in_flight == 2)
            assert slow.max_in_flight == 2
            assert {m.max_in_flight for m in others} == {1}
            hanging.cancel()
            second.cancel()
            expected = [503 if m.name == "gw03" else 200 for m in others]
            assert statuses == expected
        assert [m.name for m in fleet.members if m.faults.faults] == ["gw03", "gw05"]


async def test_a_rotated_certificate_leaves_that_gateways_pin_out_of_date(tmp_path: Path) -> None:
    async with SimulatedFleet(3, port=0, faults=["rotate_cert@gw02"], state_dir=tmp_path) as fleet:
        entries = _entries(fleet)
        assert entries["gw02"]["pin"] != f"sha256:{fleet.member(2).fingerprint_sha256}"
        async with _client(entries["gw02"]) as gw:
            with pytest.raises(CertificateMismatchError):
                await gw.status()
        for name in ("gw01", "gw03"):
            async with _client(entries[name]) as gw:
                assert (await gw.status()).version


async def test_a_share_targets_that_many_gateways_drawn_by_the_seed(tmp_path: Path) -> None:
    def targets(seed: int) -> list[list[str]]:
        fleet = SimulatedFleet(20, seed=seed, faults=["drop@10%", "rate_limit@25%"])
        return [[fleet.names[i] for i in t] for _, t in fleet.fault_targets]

    first = targets(1)
    assert [len(t) for t in first] == [2, 5]
    assert targets(1) == first
    assert targets(2) != first
    # one gateway at least, whatever the share
    assert len(SimulatedFleet(3, faults=["drop@1%"]).fault_targets[0][1]) == 1

    scenarios = ["evening-outage@10%", "tou-peak@10%", "cloudy-day@gw20"]
    async with SimulatedFleet(20, port=0, seed=1, scenarios=scenarios, state_dir=tmp_path) as fleet:
        by_scenario: dict[str | None, list[str]] = {}
        for member in fleet.members:
            by_scenario.setdefault(member.plan.scenario, []).append(member.name)
        assert len(by_scenario["evening-outage"]) == 2
        assert len(by_scenario["tou-peak"]) == 2  # a share of those without a scenario yet
        assert by_scenario["cloudy-day"] == ["gw20"]
        labels = {g["name"]: g["labels"] for g in _fleet_file(fleet)["gateways"]}
        for name in by_scenario["tou-peak"]:
            assert labels[name]["scenario"] == "tou-peak"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"faults": ["melt@1"]}, "--fault"),
        ({"faults": ["latency:latency_ms=-5@1"]}, "--fault"),
        ({"faults": ["latency:speed=3@1"]}, "--fault"),
        ({"faults": ["reboot:seconds=9999@1"]}, "--fault"),
        ({"faults": ["drop@gw99"]}, "--fault"),
        ({"faults": ["drop@0"]}, "--fault"),
        ({"faults": ["drop@150%"]}, "--fault"),
        ({"faults": ["drop@4-2"]}, "--fault"),
        ({"scenarios": ["no-such-scenario@1"]}, "--scenario"),
        ({"scenarios": ["tou-peak@1", "cloudy-day@1"]}, "--scenario"),
        ({"host": "192.0.2.1"}, "host"),
        ({"port": 65530}, "port"),
    ],
)
def test_bad_fleet_input_is_refused_naming_the_field(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SimulatedFleet(10, **kwargs)
    assert caught.value.field == named


def test_fault_options_are_read_as_the_control_api_takes_them() -> None:
    spec = parse_fault("status:status=503,probability=0.5,path_prefix=/api/meters@25%")
    assert (spec.kind, spec.target) == ("status", "25%")
    assert spec.options == {"status": 503, "probability": 0.5, "path_prefix": "/api/meters"}
    assert parse_fault("latency").options == {"latency_ms": 5000.0}  # slow by default
    assert parse_fault("reboot:seconds=3@gw01").options == {"seconds": 3.0}


async def test_the_fleet_file_matches_the_gateways(tmp_path: Path) -> None:
    fleet_path = tmp_path / "out" / "my-fleet.toml"
    async with SimulatedFleet(
        6, port=0, seed=9, state_dir=tmp_path / "state", fleet_file=fleet_path
    ) as fleet:
        assert fleet.fleet_file == fleet_path
        data = _fleet_file(fleet)
        assert data["defaults"] == {"email": "owner@example.com"}
        secrets_dir = tmp_path / "out" / "my-fleet.secrets"
        assert _mode(secrets_dir) == 0o700
        for entry, member in zip(data["gateways"], fleet.members, strict=True):
            assert entry["name"] == member.name
            assert entry["url"] == member.url == f"https://127.0.0.1:{member.port}"
            assert entry["sni"] == "teg"  # the certificate names what a gateway's names
            assert entry["pin"] == f"sha256:{member.fingerprint_sha256}"
            password_file = Path(entry["password_file"])
            assert password_file.parent == secrets_dir
            assert _mode(password_file) == 0o600
            assert _password(entry) == member.password
            assert entry["tz"] == member.gateway.settings.timezone
            assert entry["labels"]["firmware"] == member.gateway.profile.name
            assert entry["labels"]["region"]
            assert member.password not in fleet_path.read_text()
        pins = [g["pin"] for g in data["gateways"]]
    # A kept state directory keeps each gateway's certificate, so the pins stay true.
    async with SimulatedFleet(6, port=0, seed=9, state_dir=tmp_path / "state") as fleet:
        assert [g["pin"] for g in _fleet_file(fleet)["gateways"]] == pins
    # Loopback names in the certificate: no SNI needed.
    async with SimulatedFleet(
        2, port=0, cert_loopback_names=True, state_dir=tmp_path / "lb"
    ) as fleet:
        assert all("sni" not in g for g in _fleet_file(fleet)["gateways"])


async def test_gateways_on_their_own_loopback_addresses_share_one_port(tmp_path: Path) -> None:
    async with SimulatedFleet(5, port=0, addresses=True, state_dir=tmp_path) as fleet:
        hosts = [m.host for m in fleet.members]
        assert (
            hosts
            == [loopback_address(i) for i in range(5)]
            == [f"127.0.1.{i}" for i in range(1, 6)]
        )
        assert len({m.port for m in fleet.members}) == 1
        entries = _entries(fleet)

        async def din_of(member: FleetMember) -> str | None:
            async with _client(entries[member.name]) as gw:
                return (await gw.powerwalls()).gateway_din

        dins = await asyncio.gather(*(din_of(m) for m in fleet.members))
        assert dins == [m.gateway.din for m in fleet.members]


async def test_one_clock_moves_every_gateway(tmp_path: Path) -> None:
    async with SimulatedFleet(10, port=0, speed=3600, state_dir=tmp_path) as fleet:
        started = {m.name: m.now for m in fleet.members}
        await _wait_until(
            "every gateway's clock to move",
            lambda: all(m.now > started[m.name] for m in fleet.members),
        )
        clocks = [t for t in asyncio.all_tasks() if "clock" in t.get_name()]
        assert [t.get_name() for t in clocks] == ["tegkit-sim-fleet-clock"]
    async with SimulatedFleet(3, port=0, speed=0, state_dir=tmp_path / "still") as fleet:
        before = [m.now_s for m in fleet.members]
        await fleet.members[1].advance(600)  # each gateway's own control still works
        after = [m.now_s for m in fleet.members]
        assert [b - a for a, b in zip(before, after, strict=True)] == [0, 600, 0]


async def test_each_gateways_control_api_and_the_fleet_summary(tmp_path: Path) -> None:
    async with SimulatedFleet(4, port=0, state_dir=tmp_path) as fleet:
        token = {"Authorization": f"Bearer {fleet.control_token}"}
        target = fleet.member(3)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                target.url + "/sim/outage", headers=token, json={}, ssl=_no_verify()
            ) as r:
                assert r.status == 200
            grid = [m.gateway.snap().grid_status for m in fleet.members]
            assert grid[2] != grid[0] == grid[1] == grid[3]
            async with session.get(
                fleet.member(1).url + "/sim/fleet", headers=token, ssl=_no_verify()
            ) as r:
                summary = await r.json()
            assert summary["count"] == 4
            assert [g["name"] for g in summary["gateways"]] == fleet.names
            assert summary["gateways"][2]["grid_status"] == grid[2]
            for _ in range(3):
                async with session.get(target.url + "/api/status", ssl=_no_verify()) as r:
                    assert r.status == 200
            async with session.get(target.url + "/sim/fleet", headers=token, ssl=_no_verify()) as r:
                counted = [
                    (g["api_requests"], g["max_in_flight"]) for g in (await r.json())["gateways"]
                ]
            assert counted == [(0, 0), (0, 0), (3, 1), (0, 0)]  # the control API is not counted
            async with session.get(fleet.member(1).url + "/sim/fleet", ssl=_no_verify()) as r:
                assert r.status == 403


async def test_two_hundred_gateways_start_and_answer(tmp_path: Path) -> None:
    began = time.perf_counter()
    async with SimulatedFleet(200, port=0, state_dir=tmp_path) as fleet:
        print(f"\n200 gateways started in {fleet.start_s:.2f} s")
        connector = aiohttp.TCPConnector(limit=20)
        timeout = aiohttp.ClientTimeout(total=2 * DEADLINE_S)  # a loaded machine is slow
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def version(member: FleetMember) -> str:
                async with session.get(member.url + "/api/status", ssl=_no_verify()) as r:
                    assert r.status == 200
                    return str((await r.json())["version"])

            versions = await asyncio.gather(*(version(m) for m in fleet.members))
        assert versions == [m.gateway.profile.version for m in fleet.members]
    took_s = time.perf_counter() - began
    print(f"200 gateways: started, each asked once, closed in {took_s:.2f} s")


# --- the command --------------------------------------------------------------------------


def test_teg_sim_gateways_starts_writes_its_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.toml"
    proc = TegProcess.teg(
        "sim", "--gateways", "5", "--port", "0", "--fleet-file", str(fleet_file),
        "--fault", "rate_limit@gw02", "--seed", "4",
        env=clean_env(),
    )  # fmt: skip
    try:
        proc.wait_for("the start lines", lambda: any(x.startswith("started:") for x in proc.out))
        text = "\n".join(proc.out)
        assert "5 gateways on 127.0.0.1" in text
        assert str(fleet_file) in text
        assert "fault rate_limit -> gw02" in text
        control = next(x for x in proc.out if x.startswith("control:"))
        token = control.split("Bearer ")[1].rstrip(")")
        data = tomllib.loads(fleet_file.read_text())
        assert [g["name"] for g in data["gateways"]] == ["gw01", "gw02", "gw03", "gw04", "gw05"]

        async def ask() -> tuple[str | None, int]:
            async with _client(data["gateways"][0]) as gw:
                din = (await gw.powerwalls()).gateway_din
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    data["gateways"][1]["url"] + "/sim/state",
                    headers={"Authorization": f"Bearer {token}"},
                    ssl=_no_verify(),
                ) as r,
            ):
                state = await r.json()
            assert state["name"] == "gw02"
            return din, len(state["faults"])

        din, faults = asyncio.run(ask())
        assert din and din.startswith("1232100-00-E--TG12")
        assert faults == 1
    finally:
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(timeout=DEADLINE_S)
    proc.wait_for("the last line", lambda: "fleet stopped" in proc.out)
    assert code == 0
    assert not any("Traceback" in line for line in proc.err)


def test_teg_sim_gateways_json_is_one_line_and_its_state_goes_with_it(tmp_path: Path) -> None:
    proc = TegProcess.teg("sim", "--gateways", "3", "--port", "0", "--json", env=clean_env())
    try:
        proc.wait_for("the start line", lambda: proc.out)
        line = json.loads(proc.out[0])
        assert line["format"] == "tegkit-sim-fleet/1"
        assert line["gateways"] == 3
        assert [m["name"] for m in line["members"]] == ["gw01", "gw02", "gw03"]
        fleet_file = Path(line["fleet_file"])
        assert fleet_file.is_file()
        assert "password" not in json.dumps(line["members"]).replace("password_file", "")
        state_dir = Path(line["state_dir"])
    finally:
        proc.proc.send_signal(signal.SIGINT)
        code = proc.proc.wait(timeout=DEADLINE_S)
    assert code == 0
    assert len(proc.out) == 1
    assert not state_dir.exists()  # a temporary state directory goes with the fleet


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--gateways", "3", "--password", "x"], "--password"),
        (["--gateways", "3", "--fault", "melt"], "--fault"),
        (["--gateways", "3", "--scenario", "nope@1"], "--scenario"),
        (["--gateways", "3", "--host", "10.0.0.1"], "host"),  # refused before any bind
        (["--fault", "drop"], "--fault"),
        (["--addresses"], "--addresses"),
        (["--gateways", "0"], "--gateways"),
    ],
)
def test_bad_fleet_options_exit_2_naming_the_option(args: list[str], named: str) -> None:
    proc = TegProcess.teg("sim", "--port", "0", *args, env=clean_env())
    code = proc.proc.wait(timeout=DEADLINE_S)
    proc.wait_for("stderr", lambda: proc.err)
    assert code == 2, proc.err
    err = "\n".join(proc.err)
    assert named in err
    assert "Traceback" not in err


_LIMITS = """
import resource, sys
from tegkit.errors import InvalidInputError
from tegkit.sim.fleet import raise_file_limit
soft, hard = (int(x) for x in sys.argv[1:3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
try:
    print(raise_file_limit(1000))
except InvalidInputError as exc:
    print(exc.field, exc)
"""


@pytest.mark.parametrize(("soft", "hard", "said"), [(256, 4096, "4096"), (256, 300, "gateways")])
def test_the_open_file_limit_is_raised_or_named(soft: int, hard: int, said: str) -> None:
    # In a process of its own: a lowered hard limit cannot be raised again without root.
    done = subprocess.run(
        [sys.executable, "-c", _LIMITS, str(soft), str(hard)],
        capture_output=True, text=True, timeout=DEADLINE_S, check=True,
    )  # fmt: skip
    assert done.stdout.startswith(said), done.stdout
    if said == "gateways":
        assert "ulimit -n" in done.stdout


async def test_the_monitors_fleet_loader_reads_the_fleet_file(tmp_path: Path) -> None:
    from tegkit.monitor.fleet import load_fleet

    scenarios = ["evening-outage@gw02"]
    async with SimulatedFleet(12, port=0, scenarios=scenarios, state_dir=tmp_path) as fleet:
        loaded = load_fleet(fleet.fleet_file, environ={})
        assert loaded.names() == fleet.names
        assert loaded.label_names == ("firmware", "region", "scenario")
        for gateway, member in zip(loaded.gateways, fleet.members, strict=True):
            target = gateway.target
            assert target.url == member.url
            assert target.password == member.password
            assert target.email == "owner@example.com"
            assert target.sni == "teg"
            assert target.pin is not None and member.fingerprint_sha256 in target.pin
            assert str(target.tz) == member.gateway.settings.timezone
            assert gateway.labels["firmware"] == member.gateway.profile.name
            assert gateway.labels["scenario"] == ("evening-outage" if member.name == "gw02" else "")

        async def din_of(target: Any) -> str | None:  # as the monitor's poller reaches it
            async with target.client() as gw:
                return (await gw.powerwalls()).gateway_din

        dins = await asyncio.gather(*(din_of(g.target) for g in loaded.gateways))
        assert dins == [m.gateway.din for m in fleet.members]


def test_a_port_in_use_is_named_and_nothing_is_left_listening(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        state_dir = tmp_path / "state"
        # the third gateway's port is taken: the first two must close again
        proc = TegProcess.teg(
            "sim", "--gateways", "3", "--port", str(port - 2), "--state-dir", str(state_dir),
            env=clean_env(),
        )  # fmt: skip
        code = proc.proc.wait(timeout=DEADLINE_S)
    proc.wait_for("stderr", lambda: proc.err)
    err = "\n".join(proc.err)
    assert code == 1, err
    # (another process may hold port-2 or port-1 as well: the first taken port is named)
    assert "('127.0.0.1', " in err and "address already in use" in err
    assert "Traceback" not in err
    assert not (state_dir / "fleet.toml").exists()
