"""Warnings and errors of `teg monitor` and `teg sim` reach stderr, one line each.

The real commands run as processes: an unreachable gateway is a WARNING line naming it
(text or JSON), a simulator clock that fails on every tick is one line, not one a tick,
and retention or interval values that cannot work are refused before anything starts.
The rate limit and the formats are checked directly on `tegkit.logs` with a test clock.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
from pathlib import Path

import pytest

from teg_process import TEG, TegProcess, clean_env
from tegkit import logs

pytestmark = pytest.mark.timeout(240)

PIN = "ab" * 32


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _monitor_unreachable(tmp_path: Path, *extra: str) -> TegProcess:
    return TegProcess.teg(
        "monitor",
        "--gateway",
        f"edge=https://127.0.0.1:{_closed_port()}",
        "--pin",
        PIN,
        "--db",
        str(tmp_path / "m.db"),
        "--listen",
        "127.0.0.1:0",
        *extra,
        env=clean_env(TEG_CONFIG=str(tmp_path / "config.toml")),
    )


def test_an_unreachable_gateway_is_one_warning_line_on_stderr(tmp_path: Path) -> None:
    proc = _monitor_unreachable(tmp_path)
    try:
        line = proc.line(r"WARNING tegkit\.monitor\.poller: edge: .*unreachable").string
        assert line.startswith("20")  # an ISO 8601 UTC time first
        assert "Traceback" not in "\n".join(proc.err)
    finally:
        assert proc.stop() == 0
    assert len([e for e in proc.err if "unreachable" in e]) == 1


def test_json_log_lines_carry_time_level_logger_message_and_gateway(tmp_path: Path) -> None:
    proc = _monitor_unreachable(tmp_path, "--log-format", "json")
    try:
        line = proc.line(r'^\{.*"level":"warning".*unreachable').string
    finally:
        assert proc.stop() == 0
    doc = json.loads(line)
    assert doc["gateway"] == "edge"
    assert doc["logger"] == "tegkit.monitor.poller"
    assert doc["time"].endswith("Z")
    assert "unreachable" in doc["message"]
    for text in proc.err:  # every log line is a JSON object; only the banner is not
        if not text.startswith("teg monitor:"):
            json.loads(text)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--keep-raw-days", "inf"),
        ("--keep-raw-days", "nan"),
        ("--keep-raw-days", "-1"),
        ("--keep-raw-days", "0"),
        ("--keep-minute-days", "1e400"),
        ("--fast-interval", "nan"),
        ("--slow-interval", "inf"),
    ],
)
def test_values_that_cannot_work_are_refused_at_start_up(
    tmp_path: Path, option: str, value: str
) -> None:
    gateway = f"edge=https://127.0.0.1:{_closed_port()}"
    args = ["monitor", "--gateway", gateway, "--pin", PIN, "--db", str(tmp_path / "m.db")]
    done = subprocess.run(
        [TEG, *args, "--listen", "127.0.0.1:0", option, value],
        env=clean_env(TEG_CONFIG=str(tmp_path / "config.toml")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '{option}'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "m.db").exists()  # nothing started, nothing written


def test_forever_keeps_everything() -> None:
    from tegkit.cli.monitor import monitor

    ctx = monitor.make_context(
        "monitor", ["--gateway", "a=https://127.0.0.1:1", "--keep-raw-days", "forever"]
    )
    assert ctx.params["keep_raw_days"] is None
    assert ctx.params["keep_minute_days"] == 800.0


# A simulator whose clock step fails on every tick (two a second): the real `teg sim`,
# with the failure injected, because nothing in a healthy simulator fails on purpose.
_BROKEN_SIM = """
import sys
from tegkit.sim._runner import Simulator

failures = 0

def broken_step(self, dt_s):
    global failures
    if dt_s > 0:
        failures += 1
        if failures == 6:
            print("failed six times", flush=True)
        raise RuntimeError("physics exploded")

Simulator._step = broken_step
from tegkit.cli import main

main(["sim", "--port", "0", "--cloud-port", "0", "--speed", "100", *sys.argv[1:]], prog_name="teg")
"""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_failing_simulator_clock_is_one_line_not_one_a_tick(tmp_path: Path, fmt: str) -> None:
    import sys

    proc = TegProcess(
        [sys.executable, "-c", _BROKEN_SIM, "--state-dir", str(tmp_path), "--log-format", fmt],
        clean_env(),
    )
    try:
        proc.line("failed six times", "out")
    finally:
        assert proc.stop() == 0
    failed = [e for e in proc.err if "clock step failed" in e]
    assert len(failed) == 1, proc.err
    if fmt == "json":
        doc = json.loads(failed[0])
        assert doc["level"] == "error"
        assert doc["exception"] == "RuntimeError: physics exploded"
    else:
        assert "ERROR tegkit.sim: simulator clock step failed" in failed[0]
        assert "RuntimeError: physics exploded" in failed[0]
    assert not any("Traceback" in e for e in proc.err)  # tracebacks are for --verbose


# --- the logging set-up itself, with a test clock -----------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_cause_is_one_line_per_interval_with_the_count_held_back() -> None:
    out, clock = io.StringIO(), _Clock()
    log = logging.getLogger("tegkit.monitor.test")
    with logs.to_stderr(stream=out, interval_s=60.0, clock=clock):
        for i in range(500):  # the numbers differ, the cause does not
            log.warning("home: retry in %.1f s after HTTP 503", i / 10)
        log.warning("garage: retry in 1.0 s after HTTP 503")  # another gateway's line
        clock.now += 59.0
        log.warning("home: retry in 2.0 s after HTTP 503")
        clock.now += 1.0
        log.warning("home: retry in 3.0 s after HTTP 503")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].endswith("WARNING tegkit.monitor.test: home: retry in 0.0 s after HTTP 503")
    assert "garage: retry in 1.0 s" in lines[1]
    assert lines[2].endswith("home: retry in 3.0 s after HTTP 503 (500 more suppressed)")


def test_a_line_is_one_line_whatever_a_peer_put_in_it() -> None:
    out = io.StringIO()
    with logs.to_stderr(stream=out):
        logging.getLogger("tegkit.client").error(
            "gateway said %s", "ok\r\n2024-01-01T00:00:00Z ERROR forged line\x1b[2J"
        )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "\\x0d\\x0a2024" in lines[0] and "\\x1b[2J" in lines[0]


def test_the_gateway_of_the_task_names_lines_from_the_client() -> None:
    out = io.StringIO()
    with logs.to_stderr("json", stream=out):
        logs.set_gateway("home")
        try:
            logging.getLogger("tegkit.client").warning("login to %s failed", "https://h")
        finally:
            logs.set_gateway(None)
        logging.getLogger("tegkit.monitor").error("disk full", extra={"gateway": "garage"})
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first["gateway"] == "home" and first["level"] == "warning"
    assert second["gateway"] == "garage" and second["message"] == "disk full"


def test_debug_lines_need_verbose_and_the_loggers_are_restored() -> None:
    logger = logging.getLogger("tegkit")
    before = (list(logger.handlers), logger.level)
    quiet, loud = io.StringIO(), io.StringIO()
    with logs.to_stderr(stream=quiet):
        logging.getLogger("tegkit.client").debug("GET /api/status -> 200")
        logging.getLogger("tegkit.client").info("logged in")
    with logs.to_stderr(stream=loud, verbose=True):
        logging.getLogger("tegkit.client").debug("GET /api/status -> 200")
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("tegkit.sim").exception("step failed")
    assert quiet.getvalue() == ""
    assert "DEBUG tegkit.client: GET /api/status -> 200" in loud.getvalue()
    assert "Traceback" in loud.getvalue()  # --verbose keeps the traceback
    assert (list(logger.handlers), logger.level) == before


def test_the_rate_limit_forgets_the_oldest_causes_first() -> None:
    limit = logs.RateLimit(60.0, max_causes=10, clock=_Clock())
    for i in range(1000):  # a peer cannot grow the table without bound
        record = logging.LogRecord(
            "tegkit", logging.WARNING, "", 0, f"cause {chr(65 + i % 26)}{i}", None, None
        )
        limit.filter(record)
    assert len(limit._seen) == 10


def test_threads_logging_the_same_cause_at_once_give_one_line_and_an_exact_count() -> None:
    import threading

    out, clock = io.StringIO(), _Clock()
    log = logging.getLogger("tegkit.monitor.store")
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for _ in range(500):
            log.error("read failed: database is locked")

    with logs.to_stderr(stream=out, clock=clock):
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        clock.now += 60.0
        log.error("read failed: database is locked")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[1].endswith("read failed: database is locked (3999 more suppressed)")


def test_an_address_in_use_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = f"edge=https://127.0.0.1:{_closed_port()}"
        db = str(tmp_path / "m.db")
        done = subprocess.run(
            [
                TEG,
                "monitor",
                "--gateway",
                gateway,
                "--pin",
                PIN,
                "--db",
                db,
                "--listen",
                f":{port}",
            ],
            env=clean_env(TEG_CONFIG=str(tmp_path / "config.toml")),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "cannot start:" in done.stderr and str(port) in done.stderr
    assert "Traceback" not in done.stderr
