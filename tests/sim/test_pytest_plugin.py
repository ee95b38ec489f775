"""The pytest plugin: teg_sim, teg_sim_factory and their session variants.

The fixtures are used here directly (the plugin is loaded through its pytest11 entry point in
tegkit's own runs too), and through pytester runs of small test files, inline (same process:
threads, descriptors and ports are counted before and after) or in a fresh interpreter (the
way another project's CI meets the plugin: installed, nothing configured).
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import urllib3

from tegkit.models.vocabulary import GridStatusValue
from tegkit.sim import certs
from tegkit.sim.pytest_plugin import TegSimFactory
from tegkit.sim.threaded import DEFAULT_START, ThreadedSimulator

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pytest" / "test_with_teg_sim.py"
_DEADLINE_S = 60.0
# For the pytester runs: their own rootdir, so pytest-asyncio's options are set again there.
_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
_UNCLOSED_IS_AN_ERROR = (
    *("-W", "error::ResourceWarning"),
    *("-W", "error::pytest.PytestUnraisableExceptionWarning"),
)


def http(sim: ThreadedSimulator) -> urllib3.PoolManager:
    """A client verifying the gateway certificate by the cafile and the name it carries."""
    return urllib3.PoolManager(ca_certs=str(sim.cafile), server_hostname=sim.server_hostname)


def login(pool: urllib3.PoolManager, sim: ThreadedSimulator) -> dict[str, str]:
    body = {"username": "customer", "email": sim.email, "password": sim.password}
    answer = pool.request("POST", sim.url + "/api/login/Basic", json=body)
    assert answer.status == 200, answer.data
    return {"Authorization": f"Bearer {answer.json()['token']}"}


# --- what the fixture hands a test --------------------------------------------------------


def test_teg_sim_is_a_started_gateway_with_what_a_client_needs(teg_sim: ThreadedSimulator) -> None:
    assert teg_sim.running
    assert teg_sim.host == "127.0.0.1"
    assert teg_sim.url == f"https://127.0.0.1:{teg_sim.port}"
    assert teg_sim.address == f"127.0.0.1:{teg_sim.port}"
    assert teg_sim.cloud_url.startswith("https://127.0.0.1:")
    assert teg_sim.cloud_url != teg_sim.url
    assert teg_sim.password and teg_sim.email == "owner@example.com"
    assert teg_sim.fingerprint_sha256 == certs.fingerprint_sha256(teg_sim.cafile.read_bytes())
    assert teg_sim.server_hostname in certs.certificate_names(teg_sim.cafile)
    assert teg_sim.now == DEFAULT_START  # a standing clock at a known instant
    assert teg_sim.state_dir.is_dir()
    assert teg_sim.control_url == teg_sim.url + "/sim"
    pool = http(teg_sim)
    state = pool.request("GET", teg_sim.control_url + "/state", headers=teg_sim.control_headers)
    assert state.status == 200
    assert dt.datetime.fromisoformat(state.json()["now"]) == DEFAULT_START
    refused = pool.request("GET", teg_sim.control_url + "/state")
    assert refused.status in (401, 403)
    # the cloud port's certificate is issued by the same one: the one cafile verifies both
    cloud = urllib3.PoolManager(ca_certs=str(teg_sim.cafile))
    assert cloud.request("GET", teg_sim.cloud_url + "/api/1/products").status == 401


async def test_teg_sim_serves_an_async_test_on_its_own_loop(teg_sim: ThreadedSimulator) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    tls = {"ssl": teg_sim.ssl_context(), "server_hostname": teg_sim.server_hostname}
    body = {"username": "customer", "email": teg_sim.email, "password": teg_sim.password}
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(teg_sim.url + "/api/login/Basic", json=body, **tls) as answer:
            assert answer.status == 200
        # the control calls block this loop for a moment only: the simulator has its own
        teg_sim.override_solar(3210.0)
        async with session.get(teg_sim.url + "/api/meters/aggregates", **tls) as answer:
            meters = await answer.json()
    assert meters["solar"]["instant_power"] == pytest.approx(3210.0)


@pytest.mark.teg_sim(firmware="23.44", powerwalls=1, seed=7)
def test_the_marker_sets_the_options(teg_sim: ThreadedSimulator) -> None:
    assert teg_sim.state()["firmware"] == "23.44"
    assert teg_sim.call(lambda sim: (len(sim.gateway.battery_serials), sim.seed)) == (1, 7)


@pytest.mark.parametrize("teg_sim", [{"firmware": "21.44"}, {"firmware": "23.44"}], indirect=True)
def test_indirect_parameters_set_the_options(teg_sim: ThreadedSimulator) -> None:
    pool = http(teg_sim)
    version = pool.request("GET", teg_sim.url + "/api/status").json()["version"]
    assert version.startswith(teg_sim.state()["firmware"])


# --- the factory's options ----------------------------------------------------------------


def test_the_factory_takes_firmware_powerwalls_seed_and_faults(
    teg_sim_factory: TegSimFactory,
) -> None:
    fault = {"kind": "status", "status": 503, "count": 1, "path_prefix": "/api/status"}
    sim = teg_sim_factory(firmware="21.44", powerwalls=3, seed=11, faults=[fault, "drop"])
    assert [f["kind"] for f in sim.state()["faults"]] == ["status", "drop"]
    assert sim.call(lambda s: len(s.gateway.battery_serials)) == 3
    other = teg_sim_factory()
    assert other.port != sim.port
    assert teg_sim_factory.started == [sim, other]


def test_one_fault_may_be_given_by_itself(teg_sim_factory: TegSimFactory) -> None:
    sim = teg_sim_factory(faults={"kind": "latency", "latency_ms": 5})
    assert [f["kind"] for f in sim.state()["faults"]] == ["latency"]
    assert [f["kind"] for f in teg_sim_factory(faults="drop").state()["faults"]] == ["drop"]


def test_a_scenario_keeps_its_own_start(teg_sim_factory: TegSimFactory) -> None:
    sim = teg_sim_factory(scenario="evening-outage")
    assert sim.now != DEFAULT_START
    assert sim.state()["speed"] == 0  # a standing clock all the same, unless asked


def test_a_clock_with_speed_moves_by_itself(teg_sim_factory: TegSimFactory) -> None:
    sim = teg_sim_factory(speed=1000)
    wait_for(lambda: sim.now > DEFAULT_START, "the clock to move")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"firmware": "9.99"}, "unknown firmware '9.99'"),
        ({"faults": [{"status": 502}]}, "faults[0]"),
        ({"faults": ["lightning"]}, "lightning"),
        ({"host": "192.0.2.1"}, "host"),
        ({"speed": -1}, "speed"),
    ],
)
def test_bad_options_are_refused_by_name_and_leave_nothing_running(
    teg_sim_factory: TegSimFactory, options: dict[str, Any], says: str
) -> None:
    before = sim_threads()
    with pytest.raises(ValueError, match=re.escape(says)):
        teg_sim_factory(**options)
    assert sim_threads() == before


# --- the clock and the control helpers ----------------------------------------------------


def test_the_clock_moves_only_when_told(teg_sim: ThreadedSimulator) -> None:
    pool = http(teg_sim)
    headers = login(pool, teg_sim)

    def solar_exported_wh() -> float:
        meters = pool.request("GET", teg_sim.url + "/api/meters/aggregates", headers=headers)
        return float(meters.json()["solar"]["energy_exported"])

    first_wh = solar_exported_wh()
    assert solar_exported_wh() == first_wh
    teg_sim.advance(600)
    assert teg_sim.now == DEFAULT_START + dt.timedelta(seconds=600)
    second_wh = solar_exported_wh()
    assert second_wh > first_wh
    teg_sim.set_time(DEFAULT_START + dt.timedelta(minutes=20))
    assert teg_sim.now == DEFAULT_START + dt.timedelta(minutes=20)
    assert solar_exported_wh() > second_wh
    with pytest.raises(ValueError, match="only moves forward"):
        teg_sim.set_time(DEFAULT_START)  # the simulator's error reaches the test's thread
    teg_sim.set_speed(2.0)
    assert teg_sim.state()["speed"] == 2.0


def test_the_control_helpers_reach_the_simulator(teg_sim: ThreadedSimulator) -> None:
    pool = http(teg_sim)
    headers = login(pool, teg_sim)

    def get(path: str) -> urllib3.BaseHTTPResponse:
        return pool.request("GET", teg_sim.url + path, headers=headers)

    teg_sim.start_outage()
    grid = get("/api/system_status/grid_status").json()["grid_status"]
    assert grid == GridStatusValue.ISLANDED_ACTIVE
    teg_sim.end_outage()
    teg_sim.advance(60)
    assert teg_sim.state()["grid_status"] == GridStatusValue.CONNECTED

    teg_sim.stop_sitemaster()
    assert teg_sim.state()["running"] is False
    teg_sim.run_sitemaster()
    assert teg_sim.state()["running"] is True

    teg_sim.override_load(1500.0)
    assert teg_sim.state()["load_w"] == pytest.approx(1500.0)
    teg_sim.override_load(None)

    armed = teg_sim.inject_fault("status", status=502, count=1, path_prefix="/api/status")
    assert armed["status"] == 502
    assert get("/api/status").status == 502
    assert get("/api/status").status == 200
    teg_sim.inject_fault("status", status=503, path_prefix="/api/status")
    teg_sim.clear_faults()
    assert get("/api/status").status == 200

    old = teg_sim.fingerprint_sha256
    assert teg_sim.inject_fault("rotate_cert")["fingerprint_sha256"] != old
    assert teg_sim.fingerprint_sha256 != old


def test_a_stopped_simulator_says_so_and_frees_its_port(teg_sim_factory: TegSimFactory) -> None:
    sim = teg_sim_factory()
    ports, state_dir = (sim.port, int(sim.cloud_url.rsplit(":", 1)[1])), sim.state_dir
    sim.stop()
    sim.stop()  # twice is fine
    assert not sim.running
    with pytest.raises(RuntimeError, match="not running"):
        sim.advance(1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url
    assert all(port_is_free(port) for port in ports)
    assert not state_dir.exists()


def test_a_simulator_without_the_cloud(teg_sim_factory: TegSimFactory) -> None:
    sim = teg_sim_factory(cloud=False)
    with pytest.raises(ValueError, match="cloud=False"):
        _ = sim.cloud_url


# --- other projects' clients through the fixtures -----------------------------------------


async def test_tesla_powerwall_through_teg_sim(teg_sim: ThreadedSimulator) -> None:
    from tesla_powerwall import GridStatus, Powerwall

    state = teg_sim.state()
    async with Powerwall(teg_sim.url, verify_ssl=False) as pw:
        await pw.login(teg_sim.password, teg_sim.email)
        meters = await pw.get_meters()
        assert meters.solar.instant_power == pytest.approx(state["solar_w"], abs=0.01)
        assert meters.site.instant_power == pytest.approx(state["site_w"], abs=0.01)
        assert meters.battery.instant_power == pytest.approx(state["battery_w"], abs=0.01)
        assert await pw.get_charge() == pytest.approx(state["soe_raw_percent"], abs=1e-6)
        assert await pw.get_grid_status() == GridStatus.CONNECTED
        assert (await pw.get_site_info()).site_name == state["site_name"]
        teg_sim.start_outage()
        assert await pw.get_grid_status() == GridStatus.ISLANDED


def test_pypowerwall_through_teg_sim(teg_sim: ThreadedSimulator, tmp_path: Path) -> None:
    import pypowerwall

    # pypowerwall is synchronous (requests): a plain test, no event loop needed
    pw = pypowerwall.Powerwall(
        host=teg_sim.address,
        password=teg_sim.password,
        email=teg_sim.email,
        timezone="America/Los_Angeles",
        cachefile=str(tmp_path / ".powerwall"),
        auto_select=True,
        retry_modes=False,
        pwcacheexpire=0,  # each call asks the gateway, so a change shows at once
    )
    state = teg_sim.state()
    assert pw.solar() == pytest.approx(state["solar_w"], abs=0.01)
    assert pw.grid() == pytest.approx(state["site_w"], abs=0.01)
    assert pw.battery() == pytest.approx(state["battery_w"], abs=0.01)
    assert pw.level() == pytest.approx(state["soe_raw_percent"], abs=1e-6)
    assert pw.site_name() == state["site_name"]
    assert pw.version() == teg_sim.call(lambda sim: sim.gateway.profile.version)
    teg_sim.override_solar(4321.0)
    assert pw.solar() == pytest.approx(4321.0, abs=0.01)


# --- the plugin as another project meets it -----------------------------------------------


def test_the_entry_point_names_the_plugin() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "tegkit"]
    assert entry.value == "tegkit.sim.pytest_plugin"


def test_the_plugin_module_loads_no_simulator() -> None:
    code = (
        "import sys, pytest, tegkit.sim.pytest_plugin\n"
        "heavy = [m for m in ('tegkit.sim._runner', 'tegkit.sim.threaded', 'aiohttp.web',"
        " 'hypercorn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_example_passes_in_a_fresh_pytest_run(pytester: pytest.Pytester) -> None:
    pytester.makeini(_INI)
    source = EXAMPLE.read_text(encoding="utf-8")
    tests = [
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    ]
    pytester.makepyfile(test_with_teg_sim=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(tests))
    assert len(tests) >= 8


def test_the_session_fixtures_are_shared_and_stopped_at_the_end(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    pytester.makeini(_INI)
    pytester.makepyfile(
        RECORDER.format(record=str(record))
        + textwrap.dedent(
            """
            def test_one(teg_sim_session):
                record(teg_sim_session)

            def test_two(teg_sim_session, teg_sim):
                record(teg_sim_session)
                assert teg_sim.port != teg_sim_session.port
            """
        )
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    first, second = records(record)
    assert first == second
    assert_stopped([first])


# --- always stopped -----------------------------------------------------------------------

RECORDER = '''
import json
import urllib3

def record(sim):
    """Where the simulator is, for the outer test to check after this run."""
    with open({record!r}, "a") as f:
        cloud_port = int(sim.cloud_url.rsplit(":", 1)[1])
        f.write(json.dumps([sim.port, cloud_port, str(sim.state_dir)]) + "\\n")
'''


def records(path: Path) -> list[tuple[int, int, str]]:
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]


def sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tegkit-sim"]


def child_pids() -> set[int]:
    """Processes whose parent is this one (from /proc: no children file here)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port any more: a server may bind it again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assert_stopped(found: list[tuple[int, int, str]]) -> None:
    assert found
    for port, cloud_port, state_dir in found:
        assert port_is_free(port), port
        assert port_is_free(cloud_port), cloud_port
        assert not Path(state_dir).exists(), state_dir
    assert sim_threads() == []


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {_DEADLINE_S:g} s for {what}"
        time.sleep(0.01)  # polling a condition with a deadline


def test_a_failing_test_still_stops_its_simulator(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    pytester.makeini(_INI)
    pytester.makepyfile(
        RECORDER.format(record=str(record))
        + textwrap.dedent(
            """
            def test_fails(teg_sim, teg_sim_factory):
                record(teg_sim)
                record(teg_sim_factory(firmware="23.44"))
                assert False, "on purpose"

            def test_errors_in_setup(teg_sim_factory):
                record(teg_sim_factory())
                teg_sim_factory(firmware="9.99")
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    assert_stopped(records(record))


def test_an_interrupted_run_still_stops_its_simulator(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    pytester.makeini(_INI)
    pytester.makepyfile(
        RECORDER.format(record=str(record))
        + textwrap.dedent(
            """
            def test_interrupted(teg_sim_session, teg_sim):
                record(teg_sim_session)
                record(teg_sim)
                raise KeyboardInterrupt

            def test_never_run(teg_sim):
                record(teg_sim)
            """
        )
    )
    # no_reraise_ctrlc: the interrupt ends the inner run, not this one
    result = pytester.inline_run("-p", "no:cacheprovider", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert len(records(record)) == 2
    assert_stopped(records(record))


def test_ctrl_c_stops_the_simulator_of_a_pytest_process(tmp_path: Path) -> None:
    """A real SIGINT to a pytest process whose test is waiting: the simulator is stopped,
    its temporary directory removed, and the process ends as interrupted."""
    record = tmp_path / "record.jsonl"
    test_file = tmp_path / "test_waits.py"
    test_file.write_text(
        RECORDER.format(record=str(record))
        + textwrap.dedent(
            """
            import threading

            def test_waits(teg_sim):
                record(teg_sim)
                threading.Event().wait(120)  # until the outer test interrupts
            """
        )
    )
    (tmp_path / "pytest.ini").write_text(_INI)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: record.exists() and record.read_text().endswith("\n"), "the record")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=_DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    ((port, cloud_port, state_dir),) = records(record)
    assert port_is_free(port) and port_is_free(cloud_port)
    assert not Path(state_dir).exists()


CYCLE_FILE = """
import pytest

@pytest.fixture
def clients():
    made = []
    yield made
    for pool in made:  # after teg_sim has stopped: it cut these connections itself
        pool.clear()

@pytest.mark.parametrize("i", range({count}))
def test_cycle(clients, teg_sim, i):
    record(teg_sim)
    pool = urllib3.PoolManager(ca_certs=str(teg_sim.cafile), server_hostname="teg")
    clients.append(pool)
    assert pool.request("GET", teg_sim.url + "/api/status").status == 200
    cloud = urllib3.PoolManager(ca_certs=str(teg_sim.cafile))
    clients.append(cloud)
    assert cloud.request("GET", teg_sim.cloud_url + "/api/1/products").status == 401
"""


def test_fifty_fixture_simulators_leak_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Start and stop a fixture-managed simulator 50 times, each with an open keep-alive
    connection on both ports: no thread, descriptor, port, directory or process remains,
    and no socket is left for the garbage collector to close."""
    pytester.makeini(_INI)

    def run(count: int, record: Path) -> None:
        pytester.makepyfile(
            test_cycles=RECORDER.format(record=str(record)) + CYCLE_FILE.format(count=count)
        )
        # A socket left to the garbage collector (ResourceWarning) fails the inner run.
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *_UNCLOSED_IS_AN_ERROR)
        result.assert_outcomes(passed=count)

    run(1, tmp_path / "warm-up.jsonl")  # what a first run loads and keeps (imports, caches)
    threads, fds, children = set(threading.enumerate()), open_fds(), child_pids()
    record = tmp_path / "record.jsonl"
    run(50, record)
    found = records(record)
    assert len(found) == 50
    assert_stopped(found)
    assert set(threading.enumerate()) == threads
    assert open_fds() == fds
    assert child_pids() == children
    assert len({state_dir for _, _, state_dir in found}) == 50


def test_options_given_the_wrong_way_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makeini(_INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.teg_sim("23.44")
        def test_positional_marker(teg_sim):
            pass

        @pytest.mark.parametrize("teg_sim", ["23.44"], indirect=True)
        def test_not_a_dict(teg_sim):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.teg_sim: options by name only, e.g. firmware='23.44'*",
            "*teg_sim parametrised indirectly: a dict of options, got '23.44'*",
        ]
    )
    assert sim_threads() == []
