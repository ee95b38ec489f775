"""Every route, method, parameter and body of a real monitor (polling the simulator, with a
SQLite store and controls) against hostile input: never a 5xx it does not mean, never a
traceback in the log or the answer; /api/history is bounded whatever the range and step."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import math
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monitor_helpers import live_monitor

from tegkit.monitor.edge import SECURITY_HEADERS
from tegkit.monitor.readings import Reading
from tegkit.monitor.store import open_store
from tegkit.sim import Simulator
from tegkit.tariff import Tariff

TOKEN = "correct-horse-battery"
TARIFF = """
name = "fuzz"
currency = "EUR"
[[periods]]
name = "day"
start = "00:00"
end = "16:00"
buy_per_kwh = 0.20
sell_per_kwh = 0.05
[[periods]]
name = "evening"
start = "16:00"
end = "24:00"
buy_per_kwh = 0.50
sell_per_kwh = 0.10
"""
ROUTES = [
    "/",
    "/api/live",
    "/api/live/stream",
    "/api/history",
    "/api/daily",
    "/api/outages",
    "/api/gaps",
    "/api/events",
    "/api/vocabulary",
    "/api/automation",
    "/api/alerts",
    "/fleet",
    "/api/fleet",
    "/healthz",
    "/metrics",
    "/login",
    "/logout",
    "/api/session",
    "/api/control/operation",
    "/static/app.js",
    "/static/index.html",
    "/static/fleet.js",
    "/static/vendor/uPlot.iife.min.js",
]
#: the 5xx answers that mean something: unhealthy, too many streams, a gateway that refused
MEANT_5XX = {
    ("/healthz", 503),
    ("/api/live/stream", 503),
    ("/api/control/operation", 502),
}
LOGGERS = ("aiohttp", "asyncio", "tegkit.monitor.web", "tegkit.monitor.edge", "tegkit.monitor.auth")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.bad.append(record)


@dataclass
class Served:
    """A monitor on its own event loop thread, for synchronous hypothesis tests."""

    db: Path
    port: int = 0
    session_cookie: str = ""
    csrf: str = ""
    records: _Records = field(default_factory=_Records)
    error: BaseException | None = None
    last_cookies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fuzzed-monitor", daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        async with (
            Simulator(port=0, scenario="sunny-day", speed=0) as sim,
            live_monitor(
                sim,
                self.db,
                control_token=TOKEN,
                tariff=Tariff.from_toml(TARIFF),  # /api/daily prices its days too
                tz=ZoneInfo("Australia/Sydney"),  # a day of 1970-01-01 starts before the epoch
            ) as monitor,
        ):
            self.port = monitor.port
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Served:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self.records)
        self._thread.start()
        self._ready.wait(120)
        if self.error is not None or not self.port:
            raise RuntimeError(f"the monitor did not start: {self.error!r}")
        status, _, body = self.send("POST", "/login", body=json.dumps({"token": TOKEN}))
        assert status == 200, body
        cookies = [c.split(";", 1)[0] for c in self.last_cookies]
        self.session_cookie = "; ".join(cookies)  # the session's and the device's
        self.csrf = json.loads(body)["csrf_token"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(120)
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.records)

    def send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: str | bytes | None = None,
        host: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        target = urllib.parse.quote(path, safe="/")
        if query:
            target += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"127.0.0.1:{self.port}" if host is None else host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            if data is not None and "Content-Type" not in (headers or {}):
                conn.putheader("Content-Type", "application/json")
            conn.endheaders(data)
            response = conn.getresponse()
            got = {k.lower(): v for k, v in response.getheaders()}
            self.last_cookies = response.msg.get_all("Set-Cookie") or []
            if got.get("content-type", "").startswith("text/event-stream"):
                return response.status, got, b""  # an endless stream: the head is enough
            return response.status, got, response.read()
        finally:
            conn.close()

    def check(self, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
        """No 5xx but the meant ones, the usual headers, no traceback anywhere."""
        route = path if path in ROUTES else None
        assert status < 500 or (route, status) in MEANT_5XX, (path, status, body[:300])
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name.lower()) == value, (path, status, name)
        assert headers.get("server") == "tegkit", (path, headers.get("server"))
        assert b"Traceback" not in body
        bad = [f"{r.name}: {r.getMessage()}" for r in self.records.bad]
        self.records.bad.clear()
        assert not bad, bad


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("fuzz") / "m.db"
    store = open_store(db)
    try:  # three days of readings a minute apart, ending now-ish (the sim's clock is real time)
        import time

        now = time.time()
        store.write_readings(
            [
                Reading(gateway="home", taken_at=now - k * 60, load_w=500.0 + k % 7, site_w=1.0)
                for k in range(3 * 1440)
            ]
        )
    finally:
        store.close()
    with Served(db) as s:
        yield s


# --- the reproduced 500s ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status", "parameter"),
    [
        ("GET", "/api/history", {"step": "1e-300"}, None, 400, "step"),
        ("GET", "/api/history", {"step": "1e-5"}, None, 400, "step"),
        ("GET", "/api/history", {"step": "1e300"}, None, 400, "step"),
        ("GET", "/api/history", {"from": "0001-01-01", "to": "0001-01-02"}, None, 400, "to"),
        ("GET", "/api/history", {"from": "0001-01-01"}, None, 400, "from"),
        ("GET", "/api/history", {"to": "9999-12-31T23:59:59+14:00"}, None, 400, "to"),
        ("GET", "/api/daily", {"to": "0001-01-05"}, None, 400, "to"),
        ("GET", "/api/daily", {"to": "9999-12-31"}, None, 400, "to"),
        # 50,000 deep is larger than any body the monitor takes; 20,000 deep fits
        ("POST", "/login", None, "[" * 50_000 + "]" * 50_000, 413, None),
        ("POST", "/login", None, "[" * 20_000 + "]" * 20_000, 400, "body"),
        ("POST", "/login", None, '{"token": ' + "[" * 20_000 + "]" * 20_000 + "}", 400, "body"),
        ("POST", "/api/control/operation", None, "[" * 50_000 + "]" * 50_000, 413, None),
        ("POST", "/api/control/operation", None, "{}" + " " * 40_000, 400, "mode"),
        # deep, but shallow enough to decode: the refusal does not walk all of it
        ("POST", "/api/control/operation", None, "[" * 900 + "]" * 900, 400, "body"),
        ("POST", "/login", None, '{"token": ' + "[" * 800 + "]" * 800 + "}", 400, "token"),
        (
            "POST",
            "/api/control/operation",
            None,
            '{"a":' * 10_000 + "1" + "}" * 10_000,
            400,
            "body",
        ),
        ("GET", "/static/" + "a" * 5000, None, None, 404, None),
        ("GET", "/static/../service.py", None, None, 404, None),
    ],
)
def test_what_made_500s_is_refused_clearly(
    served: Served,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: str | None,
    status: int,
    parameter: str | None,
) -> None:
    headers = {"Cookie": served.session_cookie, "X-CSRF-Token": served.csrf}
    got, head, data = served.send(method, path, query, headers, body)
    assert got == status, data[:300]
    if parameter is not None:
        doc = json.loads(data)
        assert doc["parameter"] == parameter and doc["allowed"]
    served.check(path, got, head, data)


def test_fractional_steps_are_snapped_within_bounds(served: Served) -> None:
    for step in ("1", "1.0001", "4.9", "5.5", "59.99"):
        status, _, data = served.send("GET", "/api/history", {"step": step})
        assert status == 200, data[:300]
        doc = json.loads(data)
        assert doc["step_s"] >= float(step) and doc["step_s"] == round(doc["step_s"])
        assert 0 < len(doc["t"]) <= 2000
        assert all(doc["from"] <= t <= doc["to"] for t in doc["t"])


# --- history: bounded for any range and step --------------------------------------------

_EDGE_NUMBERS = [
    "0", "-0", "-1", "1", "0.5001", "1.0001", "1e-5", "1e-300", "1e300", "nan", "-nan",
    "inf", "-inf", "Infinity", "1e11", "253402300799", "-62135596800", "", "five",
]  # fmt: skip
_EDGE_TIMES = [
    "0001-01-01", "0001-01-01T00:00:00Z", "9999-12-31", "9999-12-31T23:59:59Z",
    "9999-12-30T00:00:00+14:00", "1970-01-01", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00",
    "2024-02-30", "2024-05-01T25:00:00",
]  # fmt: skip


def _numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_EDGE_NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.floats(min_value=1e9, max_value=2e9).map(repr),  # around now
    )


def _times() -> st.SearchStrategy[str]:
    return st.one_of(
        _numbers(),
        st.sampled_from(_EDGE_TIMES),
        st.datetimes(
            min_value=__import__("datetime").datetime(1, 1, 2),
            max_value=__import__("datetime").datetime(9999, 12, 30),
            timezones=st.none() | st.timezones(),
        ).map(lambda d: d.isoformat()),
        st.dates().map(lambda d: d.isoformat()),
    )


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=st.none() | _times(),
    end=st.none() | _times(),
    step=st.none() | _numbers(),
)
def test_history_is_a_clear_400_or_a_bounded_answer(
    served: Served, start: str | None, end: str | None, step: str | None
) -> None:
    query = {k: v for k, v in (("from", start), ("to", end), ("step", step)) if v is not None}
    status, head, data = served.send("GET", "/api/history", query)
    served.check("/api/history", status, head, data)
    doc = json.loads(data)
    if status == 400:
        assert doc["parameter"] in query and doc["allowed"], doc
        return
    assert status == 200, doc
    series = [doc[k] for k in ("t", "site_w", "battery_w", "load_w", "solar_w", "soe_app_percent")]
    assert len({len(s) for s in series}) == 1
    assert len(doc["t"]) <= 2000
    assert all(doc["from"] <= t <= doc["to"] for t in doc["t"])
    assert doc["t"] == sorted(doc["t"]) and len(set(doc["t"])) == len(doc["t"])
    assert doc["step_s"] >= 1 and math.isfinite(doc["step_s"])
    for name, sent in (("from", start), ("to", end)):
        try:
            value = float(sent) if sent else None
        except ValueError:
            value = None
        if value is not None:
            assert doc[name] == value


# --- every route ------------------------------------------------------------------------


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    )


def _bodies() -> st.SearchStrategy[str | bytes | None]:
    control = st.fixed_dictionaries(
        {},
        optional={
            "gateway": st.sampled_from(["home", "nope", ""]) | _json_values(),
            "mode": st.sampled_from(["self_consumption", "backup", "turbo"]) | _json_values(),
            "backup_reserve_percent": _json_values() | st.floats(),
            "scale": st.sampled_from(["app", "raw"]) | _json_values(),
            "token": st.sampled_from([TOKEN, "wrong-token"]) | _json_values(),
        },
    )
    return st.one_of(
        st.none(),
        st.binary(max_size=300),
        st.text(max_size=300),
        _json_values().map(json.dumps),
        control.map(json.dumps),
        st.integers(min_value=1, max_value=60_000).map(lambda n: "[" * n + "]" * n),
        st.integers(min_value=1, max_value=60_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.just("x" * 200_000),
    )


def _paths() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(ROUTES),
        st.sampled_from(ROUTES).flatmap(lambda r: st.text(max_size=40).map(lambda s: r + s)),
        st.text(max_size=6000).map(lambda s: "/static/" + s),
        st.sampled_from(["/static/", "/static/..", "/static/%2e%2e/web.py", "//", "/api"]),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=_paths(),
    query=st.dictionaries(
        st.sampled_from(["gateway", "from", "to", "step", "x"]) | st.text(max_size=10),
        st.one_of(_times(), st.text(max_size=40), st.sampled_from(["home", "nope"])),
        max_size=4,
    ),
    body=_bodies(),
    content_type=st.sampled_from(
        [
            None,
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "application/json; charset=latin-1",
        ]
    ),
    logged_in=st.booleans(),
    host=st.sampled_from([None, "localhost", "evil.example", "", "[::1]:1", "127.0.0.1:x"]),
    origin=st.sampled_from([None, "http://evil.example", "null"]),
)
def test_no_route_answers_5xx_or_logs_a_traceback(
    served: Served,
    method: str,
    path: str,
    query: dict[str, str],
    body: str | bytes | None,
    content_type: str | None,
    logged_in: bool,
    host: str | None,
    origin: str | None,
) -> None:
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if logged_in:
        headers["Cookie"] = served.session_cookie
        headers["X-CSRF-Token"] = served.csrf
    if origin is not None:
        headers["Origin"] = origin
    # /logout would end the session the other examples use
    if path == "/logout":
        headers.pop("Cookie", None)
    status, head, data = served.send(method, path, query, headers, body, host=host)
    served.check(path, status, head, data)
