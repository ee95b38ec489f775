"""Fuzz every local catalog endpoint: bad input is a 4xx gateway error body, never a 500.

The only 5xx answers allowed are the captured ones (with their captured bodies) and the
stopped system's 502; a handler that raised would answer 500 "internal error" and log a
traceback, and both are looked for.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from gateway_sim_helpers import client, simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit import catalog
from tegkit.sim.actions import ACTIONS

LOCAL = [e for e in catalog.endpoints("local")]
WRITES = [e for e in LOCAL if e.key in ACTIONS]  # where a body is read and checked
_CAPTURED_5XX_ERRORS = {
    "Cannot Start Wizard",  # spec 001: a stop refused (here: while off grid)
    "no phase information",
    "meter type must be Neurio (synchrometerX)",
    "meter type must be Neurio (synchrometerY)",
}
_FIELDS = [
    "mode",
    "backup_reserve_percent",
    "site_name",
    "timezone",
    "network_name",
    "interface",
    "security_type",
    "cts",
    "type",
    "valid",
    "inverted",
    "force",
    "old_password",
    "new_password",
    "island_mode",
    "password",
    "username",
    "email",
    "marketing",
    "privacy_notice",
]
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.sampled_from([150, -1, 100.0001, "abc", "", "backup", "turbo", "WifiType"])
    | st.text(max_size=8)
)
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=4)
    ),
    max_leaves=8,
)
# A valid body per write endpoint: its mutants (a field dropped, a value of another type,
# a nested change) get past the first checks and reach the deeper ones.
_VALID: dict[str, Any] = {
    "POST /api/operation": {"mode": "backup", "backup_reserve_percent": 50},
    "POST /api/site_info/site_name": {"site_name": "Home"},
    "POST /api/site_info/timezone": {"timezone": "Europe/Berlin"},
    "POST /api/password/change": {"old_password": "a", "new_password": "b"},
    "POST /api/networks": {"network_name": "G", "interface": "WifiType", "security_type": "WPA"},
    "POST /api/networks/connect": {"network_name": "G", "interface": "EthType"},
    "DELETE /api/networks": {"network_name": "G"},
    "POST /api/networks/client_protocols": {"x": True},
    "POST /api/meters/{serial}/cts": [
        {"type": "site", "valid": [True, False, False, False], "inverted": [False] * 4}
    ],
    "POST /api/customer/registration/legal": {"marketing": False, "privacy_notice": True},
    "POST /api/v2/islanding/mode": {"island_mode": "backup"},
    "POST /api/logging": {"level": "info", "log": "x"},
    "POST /api/sitemaster/stop": {"force": True},
    "POST /api/login/Basic": {"username": "customer", "password": "x", "email": "e"},
}


def _mutants(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, dict) and value:
        key = st.sampled_from(sorted(value))
        return st.one_of(
            key.map(lambda k: {x: v for x, v in value.items() if x != k}),
            key.flatmap(lambda k: _mutants(value[k]).map(lambda v: {**value, k: v})),
            st.just([value]),
        )
    if isinstance(value, list) and value:
        return st.one_of(
            _mutants(value[0]).map(lambda v: [v, *value[1:]]),
            st.just(value[1:]),
            _scalar,
        )
    return _scalar


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    """`depth` lists, or objects keyed by a real field name, around `inner`: valid JSON."""
    if depth % 2:
        return b"[" * depth + inner + b"]" * depth
    return b'{"mode":' * depth + inner + b"}" * depth


# Deep enough for any recursive decoder or handler, and within the 64 KiB body limit.
_deep = st.integers(1, 30_000).map(_nested)
# Long strings built from a repeated piece: cheap to draw, unlike a drawn 5,000-character text.
_long_text = st.builds(
    lambda piece, n: piece * n,
    st.sampled_from(["x", "../", "\u00e9", "\x00", "Europe/", "%20"]),
    st.integers(65, 2_000),
)


def _with_long_strings(value: Any, text: str) -> Any:
    """`value` with every string in it (keys kept) replaced by `text`."""
    if isinstance(value, dict):
        return {k: _with_long_strings(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_long_strings(v, text) for v in value]
    return text if isinstance(value, str) else value


def _body(key: str) -> st.SearchStrategy[bytes | None]:
    valid = _VALID.get(key, {})
    long = _long_text.map(lambda t: _with_long_strings(valid, t))
    as_json = (st.just(valid) | _mutants(valid) | _json | long).map(
        lambda v: json.dumps(v).encode()
    )
    junk = st.binary(max_size=16) | st.sampled_from(
        [b"{", b"[1,", b'{"mode": NaN}', b"\xff\xfe", b'{"a":' * 50]
    )
    return st.none() | as_json | as_json | junk | _deep


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_catalog_endpoints(
    data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tegkit.sim")
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        # Real serials and names too, so that the checks behind a found resource are reached.
        found = st.sampled_from([*sim.gateway.meter_serials.values(), "wifi0", "SolarEdge"])
        param = found | st.sampled_from(["x", "%20", ".."])
        # Every write endpoint in each example (a drawn choice among ~120 would rarely reach
        # one with a real serial and a telling body), then a few of any kind.
        others = data.draw(st.lists(st.sampled_from(LOCAL), min_size=8, max_size=8))
        for endpoint in [*data.draw(st.permutations(WRITES)), *others]:
            values = {p: data.draw(param) for p in endpoint.params}
            path = endpoint.format(**values)
            if data.draw(st.booleans()):
                path += data.draw(st.sampled_from(["/", "/x", "?q=1", "%00", "//"]))
            method = data.draw(st.sampled_from([endpoint.method, endpoint.method, "PUT"]))
            raw = data.draw(_body(endpoint.key))
            status, body, resp = await c.request(method, path, raw=raw)
            where = (method, path, raw, status, body)
            if status == 502:
                assert endpoint.live and body == b"", where  # only a stopped system's answer
            elif status >= 500:
                assert body["error"] in _CAPTURED_5XX_ERRORS, where
            if 400 <= status < 500:
                assert resp.content_type == "application/json", where
                assert set(body) == {"code", "error", "message"} and body["code"] == status
            if status == 401:  # logged out by a drawn GET /api/logout: log in again
                await c.post("/api/login/Basic", {"username": "customer", "password": sim.password})
    assert not caplog.records, [r.getMessage() for r in caplog.records]


_WRONG: tuple[Any, ...] = (None, True, -1, 150, 1e308, "abc", "", [], {}, [1, "x"])


def single_mutants(value: Any) -> list[Any]:
    """Every value one change away from `value`: a field dropped or replaced, at any depth."""
    found: list[Any] = [wrong for wrong in _WRONG if wrong != value]
    if isinstance(value, dict):
        for key in value:
            found.append({k: v for k, v in value.items() if k != key})
            found += [{**value, key: inner} for inner in single_mutants(value[key])]
    elif isinstance(value, list) and value:
        found += [[inner, *value[1:]] for inner in single_mutants(value[0])]
    return found


async def test_every_single_mutation_of_a_valid_body_is_refused_or_accepted() -> None:
    options = {"allow_customer_operation": True, "login_max_failures": 10**6}
    async with simulator(**options) as sim, client(sim) as c:
        await c.login()
        params = {"serial": sim.gateway.meter_serials["synchrometerY"], "network": "wifi0"}
        tried = 0
        for key, valid in _VALID.items():
            endpoint = catalog.find(*key.split(" ", 1))
            path = endpoint.format(**{p: params[p] for p in endpoint.params})
            for body in single_mutants(valid):
                status, reply, _ = await c.request(endpoint.method, path, body=body)
                where = (key, body, status, reply)
                assert status < 500 or reply["error"] in _CAPTURED_5XX_ERRORS, where
                if 400 <= status < 500:
                    assert set(reply) == {"code", "error", "message"}, where
                tried += 1
        assert tried > 300


def _gateway_error(status: int, body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"code", "error", "message"}
        and (body["code"] == status)
    )


CONTROL_POSTS = ["/time", "/advance", "/outage", "/override", "/faults", "/sitemaster", "/update"]
# Nested lists and objects, bare and under a real field; the deepest fit the body limit.
DEEP_BODIES = [
    _nested(depth, inner) for depth in (33, 1_000, 20_000, 30_000) for inner in (b"1", b'"x"')
] + [b'{"seconds":' + _nested(5_000) + b"}", b'{"cts":[' + _nested(3_001) + b"]}"]


async def test_deeply_nested_bodies_are_400_on_every_write_and_control_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        params = {"serial": sim.gateway.meter_serials["synchrometerY"], "network": "HomeWifi"}
        targets = [(e.method, e.format(**{p: params[p] for p in e.params})) for e in WRITES]
        targets.append(("POST", "/api/login/Basic"))
        for raw in DEEP_BODIES:
            for method, path in targets:
                status, body, _ = await c.request(method, path, raw=raw)
                assert status == 400 and _gateway_error(status, body), (path, raw[:20], body)
                assert "nested" in body["error"] or "body" in body["error"], body
            for path in CONTROL_POSTS:
                status, body = await c.control("POST", path, raw=raw)
                assert status == 400 and _gateway_error(status, body), (path, raw[:20], body)
        state = (await c.control("GET", "/state"))[1]
        assert state["running"] is True  # nothing was half applied
    assert not caplog.records, [r.getMessage() for r in caplog.records]


async def test_long_strings_in_every_field_are_refused_or_kept_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    options = {"allow_customer_operation": True, "login_max_failures": 10**6}
    async with simulator(**options) as sim, client(sim) as c:
        await c.login()
        params = {"serial": sim.gateway.meter_serials["synchrometerY"], "network": "HomeWifi"}
        for text in ("x" * 5_000, "../" * 2_000, "\u00e9" * 5_000, "A/" + "b" * 4_998):
            for key, valid in _VALID.items():
                endpoint = catalog.find(*key.split(" ", 1))
                path = endpoint.format(**{p: params[p] for p in endpoint.params})
                body = _with_long_strings(valid, text)
                status, reply, _ = await c.request(endpoint.method, path, body=body)
                assert status < 500 or reply["error"] in _CAPTURED_5XX_ERRORS, (key, reply)
                if 400 <= status < 500:
                    assert _gateway_error(status, reply), (key, reply)
                if status == 401:
                    await c.login()
            status, reply = await c.control("POST", "/time", {"at": text})
            assert status == 400 and reply["error"].startswith("at:"), reply
        # The time zone reached the file system and answered 500 before.
        status, reply, _ = await c.post("/api/site_info/timezone", {"timezone": "x" * 5_000})
        assert status == 400 and reply["error"].startswith("timezone:"), reply
        assert sim.gateway.settings.timezone == "America/Los_Angeles"
        # Nothing kept grew with the strings.
        assert all(len(n["network_name"]) <= 64 for n in sim.gateway.settings.networks)
        assert len(sim.gateway.password) <= 128
    assert not caplog.records, [r.getMessage() for r in caplog.records]


async def test_what_a_peer_can_make_the_gateway_keep_is_bounded() -> None:
    from tegkit.sim.faults import MAX_FAULTS
    from tegkit.sim.gateway import MAX_NETWORKS, MAX_SESSIONS

    async with simulator() as sim, client(sim) as c:
        await c.login()
        refused = None
        for i in range(MAX_NETWORKS + 2):
            status, reply, _ = await c.post("/api/networks", {"network_name": f"net{i}"})
            if status != 200:
                refused = (status, reply)
                break
        assert refused is not None and refused[0] == 400
        assert refused[1]["error"].startswith("network_name:"), refused
        assert len(sim.gateway.settings.networks) == MAX_NETWORKS
        for _ in range(MAX_SESSIONS + 5):
            await c.login()
        assert len(sim.gateway.sessions) == MAX_SESSIONS
        assert (await c.get("/api/operation"))[0] == 200  # the newest session still works
        for _ in range(MAX_FAULTS):
            assert (await c.control("POST", "/faults", {"kind": "latency", "count": 1000}))[
                0
            ] == 200
        status, reply = await c.control("POST", "/faults", {"kind": "latency"})
        assert status == 400 and "at most" in reply["error"], reply
