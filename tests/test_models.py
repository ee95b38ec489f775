"""Models against every real capture: parse, typed values, round-trip, and mutated bodies."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit import catalog, models, percent
from tegkit.errors import ParseError
from tegkit.models import (
    GatewayStatus,
    GridCode,
    LoginResponse,
    MetersAggregates,
    Operation,
    SiteInfo,
    Sitemaster,
    decode,
    parse_response,
)
from tegkit.models.site import parse_go_duration_s

SAMPLES = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "vloschiavo-powerwall2"
).resolve() / "samples"

# Files whose names do not follow "a.b.c.json" -> GET /api/a/b/c.
ODD_NAMES: dict[str, tuple[str, str]] = {
    "api-devices-vitals": ("GET", "/api/devices/vitals"),
    "api-login-basic": ("POST", "/api/login/Basic"),
    "api-meters-site": ("GET", "/api/meters/site"),
    "api-meters-solar": ("GET", "/api/meters/solar"),
    "api-powerwalls": ("GET", "/api/powerwalls"),
    "api_meters_aggregates": ("GET", "/api/meters/aggregates"),
    "api_site_info_grid_codes": ("GET", "/api/site_info/grid_codes"),
    "api_solars_brands": ("GET", "/api/solars/brands"),
    "solar_edge_models": ("GET", "/api/solars/brands/SolarEdge%20Technologies"),
    "meters.readings.err": ("GET", "/api/meters/readings"),
    "powerwalls.status.non-offgrid-capable": ("GET", "/api/powerwalls/status"),
    "system.networks.conn_tests.get.1": ("GET", "/api/system/networks/conn_tests"),
    "system.networks.conn_tests.get.2": ("GET", "/api/system/networks/conn_tests"),
    "system.networks.conn_tests.post": ("POST", "/api/system/networks/conn_tests"),
    "operation.post.1": ("POST", "/api/operation"),  # the request body, echoed as the answer
    "password.change.response": ("POST", "/api/password/change"),
    "v2.islanding.mode.off-grid": ("POST", "/api/v2/islanding/mode"),
    "v2.islanding.mode.on-grid": ("POST", "/api/v2/islanding/mode"),
}
# Request bodies, not responses: no model describes them.
REQUEST_BODIES: dict[str, str] = {
    "password.change.request": "request body of POST /api/password/change",
    "networks.connect": "request body of POST /api/networks/connect (the OpenAPI says so)",
}


def capture_files() -> list[Path]:
    """Every JSON capture: firmware folders (running, stopped) and the top-level files."""
    if not SAMPLES.is_dir():
        return []
    return sorted(SAMPLES.rglob("*.json"))


def endpoint_for(file: Path) -> tuple[str, str, str] | None:
    """(method, concrete path, label) of a capture file; None for request bodies."""
    stem = file.name.removesuffix(".json")
    if stem in REQUEST_BODIES:
        return None
    label = str(file.relative_to(SAMPLES))
    if stem in ODD_NAMES:
        method, path = ODD_NAMES[stem]
        return method, path, label
    # "meters.<<SERIAL>>synchrometerX.cts" style names: the serial is one path segment.
    return "GET", "/api/" + stem.replace(".", "/"), label


def _load(relative: str) -> bytes:
    path = SAMPLES / relative
    if not path.is_file():
        pytest.skip(f"reference capture {relative} not present")
    return path.read_bytes()


def _parse(relative: str) -> Any:
    file = SAMPLES / relative
    found = endpoint_for(file)
    assert found is not None
    return parse_response(found[0], found[1], _load(relative))


def _key_differences(sent: Any, encoded: Any, path: str = "$") -> list[str]:
    out: list[str] = []
    if isinstance(sent, dict) and isinstance(encoded, dict):
        if set(sent) != set(encoded):
            out.append(
                f"{path}: sent {sorted(set(sent) - set(encoded))}, "
                f"encoded {sorted(set(encoded) - set(sent))}"
            )
        for key in set(sent) & set(encoded):
            out += _key_differences(sent[key], encoded[key], f"{path}.{key}")
    elif isinstance(sent, list) and isinstance(encoded, list):
        if len(sent) != len(encoded):
            out.append(f"{path}: {len(sent)} items sent, {len(encoded)} encoded")
        for i, (a, b) in enumerate(zip(sent, encoded, strict=False)):
            out += _key_differences(a, b, f"{path}[{i}]")
    return out


CAPTURES = capture_files()


RESPONSES = [f for f in CAPTURES if endpoint_for(f) is not None]
REQUESTS = [f for f in CAPTURES if endpoint_for(f) is None]


def test_reference_captures_are_present() -> None:
    assert SAMPLES.is_dir(), f"the reference captures must sit beside the repo at {SAMPLES}"
    assert len(RESPONSES) > 150
    assert sorted(f.name.removesuffix(".json") for f in REQUESTS) == sorted(REQUEST_BODIES)


async def test_captured_request_bodies_are_accepted_by_the_simulator() -> None:
    """The two captures that are request bodies, sent as captured (placeholders filled)."""
    import aiohttp

    from tegkit.sim import Simulator

    # The URL is 127.0.0.1, which a gateway's certificate does not name: ask the simulator to.
    async with Simulator(port=0, cloud_port=0, speed=0, seed=3, cert_loopback_names=True) as sim:
        password = json.loads((SAMPLES / "password.change.request.json").read_bytes())
        password["old_password"], password["new_password"] = sim.password, "N3w-password"
        connect = json.loads((SAMPLES / "networks.connect.json").read_bytes())
        context = ssl.create_default_context(cafile=str(sim.cafile))
        login = {"username": "customer", "email": sim.email, "password": sim.password}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(sim.url + "/api/login/Basic", json=login, ssl=context) as r:
                assert r.status == 200
            async with http.post(sim.url + "/api/networks/connect", json=connect, ssl=context) as r:
                assert r.status < 300, await r.text()
            url = sim.url + "/api/password/change"
            async with http.post(url, json=password, ssl=context) as r:
                assert r.status == 200, await r.text()
                assert set(await r.json()) == {"password"}


def test_every_catalog_model_is_exported() -> None:
    named = {e.model for e in catalog.ENDPOINTS if e.model}
    assert named
    for name in named:
        assert name in models.__all__, name
        assert getattr(models, name) is models.MODELS[name]


@pytest.mark.parametrize("file", RESPONSES, ids=lambda f: str(f.relative_to(SAMPLES)))
def test_every_capture_parses_and_round_trips(file: Path) -> None:
    found = endpoint_for(file)
    assert found is not None
    method, path, _ = found
    body = file.read_bytes()
    model_type = models.model_for(method, path)
    parsed = parse_response(method, path, body)
    sent = json.loads(body)
    if model_type is None:
        assert parsed == sent  # no model: the plain JSON
        return
    if isinstance(model_type, type) and issubclass(model_type, msgspec.Struct):
        assert isinstance(parsed, model_type)
        assert parsed.raw == sent
    encoded = msgspec.json.encode(parsed)
    # The models know every captured field, so encoding gives back exactly the sent keys.
    assert _key_differences(sent, json.loads(encoded)) == []
    # And a second pass changes nothing.
    assert decode(model_type, encoded) == parsed
    # Already-decoded JSON parses to the same model.
    assert parse_response(method, path, sent) == parsed


# --- typed values -----------------------------------------------------------------------


def test_aggregates_21_44_running() -> None:
    agg = _parse("21.44-foogod/running/meters.aggregates.json")
    assert isinstance(agg, MetersAggregates)
    assert agg.site is not None and agg.battery is not None
    assert agg.load is not None and agg.solar is not None
    assert agg.site.instant_power_w == 72
    assert agg.battery.instant_power_w == -60
    assert agg.load.instant_power_w == 1154
    assert agg.solar.instant_power_w == 1144
    assert agg.site.energy_imported_wh == pytest.approx(752045.9551097859)
    assert agg.battery.frequency_hz == pytest.approx(60.007)
    assert agg.site.timeout_ns == 1_500_000_000
    when = agg.site.last_communication_time
    assert when.utcoffset() == dt.timedelta(hours=-7)
    assert (when.year, when.month, when.day, when.microsecond) == (2021, 12, 26, 321057)
    assert agg.site.last_phase_power_communication_time is not None
    assert agg.site.last_phase_power_communication_time.year == 1
    assert [name for name, _ in agg.meters()] == ["site", "battery", "load", "solar"]
    assert agg.busway is None


def test_aggregates_2018_has_busway_frequency_generator() -> None:
    agg = _parse("api_meters_aggregates.json")
    names = [name for name, _ in agg.meters()]
    assert names == ["site", "battery", "load", "solar", "busway", "frequency", "generator"]
    assert agg.busway is not None and not agg.busway.communicated
    assert agg.site is not None and agg.site.communicated
    assert agg.site.instant_average_current_a is None  # not sent in 2018


def test_unknown_meter_and_fields_stay_reachable() -> None:
    sent = json.loads(_load("21.44-foogod/running/meters.aggregates.json"))
    sent["conductor"] = dict(sent["site"], instant_power=5)
    sent["note"] = "not a meter"
    sent["site"]["brand_new_field"] = 1
    agg = parse_response("GET", "/api/meters/aggregates", json.dumps(sent).encode())
    assert agg.raw["site"]["brand_new_field"] == 1
    meters = dict(agg.meters())
    assert meters["conductor"].instant_power_w == 5
    assert "note" not in meters


def test_state_of_energy_scales() -> None:
    soe = _parse("21.44-foogod/running/system_status.soe.json")
    assert soe.raw_percent == pytest.approx(42.415190953701725)
    assert soe.app_percent == pytest.approx((42.415190953701725 - 5) / 0.95)


def test_operation_real_mode_and_reserve() -> None:
    op = _parse("21.44-foogod/running/operation.json")
    assert isinstance(op, Operation)
    assert op.mode == "autonomous" and op.real_mode == "autonomous" and op.legacy_mode is None
    assert op.backup_reserve_raw_percent == 30
    assert op.backup_reserve_app_percent == pytest.approx(25 / 0.95)
    assert op.freq_shift_load_shed_delta_f_hz == pytest.approx(-0.32)
    assert _parse("21.39.1-foogod/running/operation.json").mode == "self_consumption"


def test_operation_post_body_uses_mode() -> None:
    op = _parse("operation.post.1.json")
    assert op.mode == "self_consumption" and op.real_mode is None
    assert json.loads(msgspec.json.encode(op)) == {
        "mode": "self_consumption",
        "backup_reserve_percent": 24.6,
    }
    built = Operation(legacy_mode="backup", backup_reserve_raw_percent=percent.app_to_raw(20))
    assert json.loads(msgspec.json.encode(built)) == {
        "mode": "backup",
        "backup_reserve_percent": pytest.approx(24.0),
    }
    assert built.raw == {"mode": "backup", "backup_reserve_percent": pytest.approx(24.0)}


def test_site_info_grid_code_object_and_string() -> None:
    new = _parse("21.44-foogod/running/site_info.json")
    assert isinstance(new, SiteInfo) and isinstance(new.grid_code, GridCode)
    assert new.grid_code.grid_freq_setting_hz == 60
    assert new.grid_code_name == "60Hz_240V_s_UL1741SA:2019_California"
    assert new.nominal_system_energy_kwh == 13.5
    assert _parse("21.44-foogod/stopped/site_info.json").measured_frequency_hz == pytest.approx(
        60.01
    )
    # The older flat shape, as spec 001 documents it.
    old = parse_response(
        "GET",
        "/api/site_info",
        b'{"max_site_meter_power_kW":1000000000,"min_site_meter_power_kW":-1000000000,'
        b'"nominal_system_energy_kWh":13.5,"nominal_system_power_kW":10,"site_name":"Loschiavo",'
        b'"timezone":"America/Los_Angeles","grid_code":"60Hz_240V_s_UL1741SA:2016_California",'
        b'"grid_voltage_setting":240,"grid_freq_setting":60,"grid_phase_setting":"Split",'
        b'"country":"United States","state":"California","distributor":"*",'
        b'"utility":"Pacific Gas and Electric Company","retailer":"*","region":"UL1741SA"}',
    )
    assert isinstance(old, SiteInfo)
    assert old.grid_code == "60Hz_240V_s_UL1741SA:2016_California" == old.grid_code_name
    assert old.grid_voltage_setting_v == 240 and old.nominal_system_power_kw == 10


def test_gateway_status_uptime() -> None:
    status = _parse("21.44-foogod/running/status.json")
    assert isinstance(status, GatewayStatus)
    assert status.uptime_s == pytest.approx(230 * 3600 + 55 * 60 + 59.932079901)
    assert status.firmware == "21.44" and status.commission_count == 11
    assert status.started_at == dt.datetime(
        2021, 12, 16, 22, 13, 25, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    assert status.followers is None  # sent as null, and encoded back as null
    assert b'"followers":null' in msgspec.json.encode(status)
    old = parse_response(
        "GET",
        "/api/status",
        b'{"start_time":"2019-09-23 23:38:46 +0800",'
        b'"up_time_seconds":"223h5m51.577762169s","is_new":false,"version":"1.40.2"}',
    )
    assert old.din is None and old.followers is models.UNSET
    assert not models.present(old.followers) and not models.present(status.followers)
    assert models.present(status.version)
    assert b"followers" not in msgspec.json.encode(old)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("230h55m59.932079901s", 831359.932079901),
        ("0s", 0.0),
        ("0", 0.0),
        ("1m30s", 90.0),
        ("-1.5h", -5400.0),
        ("300ms", 0.3),
        ("2us", 2e-6),
        ("", None),
        ("12", None),
        ("5 days", None),
        ("1h-2m", None),
    ],
)
def test_go_duration(text: str, seconds: float | None) -> None:
    found = parse_go_duration_s(text)
    if seconds is None:
        assert found is None
    else:
        assert found == pytest.approx(seconds)


def test_sitemaster_old_and_new() -> None:
    stopped = _parse("21.44-foogod/stopped/sitemaster.json")
    assert isinstance(stopped, Sitemaster)
    assert stopped.running is False and stopped.status == "StatusDown" and stopped.uptime is None
    old = parse_response(
        "GET", "/api/sitemaster", b'{"running":true,"uptime":"802459s,","connected_to_tesla":true}'
    )
    assert old.running and old.uptime == "802459s," and old.status is None


def test_powerwalls_keep_both_type_keys() -> None:
    walls = _parse("21.44-foogod/running/powerwalls.json")
    wall = walls.powerwalls[0]
    assert wall.Type == "" and wall.type == "ACPW"
    assert wall.package_part_number == "3012170-05-B"
    assert wall.commissioning_diagnostic is not None
    assert wall.commissioning_diagnostic.checks
    assert not wall.commissioning_diagnostic.passed
    encoded = json.loads(msgspec.json.encode(wall))
    assert encoded["Type"] == "" and encoded["type"] == "ACPW"
    # 2019: no "Type", no inputs
    old = _parse("api-powerwalls.json")
    assert old.powerwalls[0].Type is None and old.has_sync is True


def test_system_status_units() -> None:
    status = _parse("21.44-foogod/running/system_status.json")
    assert status.nominal_full_pack_energy_wh == 14061
    assert status.nominal_energy_remaining_wh == 5964
    assert status.energy_raw_percent == pytest.approx(100 * 5964 / 14061)
    block = status.battery_blocks[0]
    assert block.op_seq_state == "Active" and block.p_out_w == -70 and block.Type == ""
    assert status.system_island_state == models.GridStatusValue.CONNECTED


def test_grid_status_and_faults() -> None:
    grid = _parse("21.44-foogod/running/system_status.grid_status.json")
    assert grid.connected and not grid.islanded
    odd = parse_response("GET", "/api/system_status/grid_status", b'{"grid_status":"SystemNew"}')
    assert odd.grid_status == "SystemNew" and not odd.connected  # unknown values are kept
    faults = _parse("system_status.grid_faults.json")
    assert faults[0].time.year == 2019
    assert faults[0].decoded()[0] == {"name": "PINV_alertID", "value": faults[0].alert_name}


def test_setup_models() -> None:
    readings = _parse("21.44-foogod/stopped/meters.readings.json")
    ct = readings["<<METER_SERIAL>>synchrometerX"].data.cts[0]
    assert ct.p_w == 467 and ct.v_v == pytest.approx(122.53)
    site = _parse("meters.site.json")[0]
    assert site.cached_readings.instant_power_w == pytest.approx(-18.00000076368451)
    assert site.cached_readings.real_power_a_w == pytest.approx(-17.950000762939453)
    nets = _parse("21.44-foogod/running/networks.json")
    assert nets[1].dhcp is None and nets[0].dhcp is True and nets[2].last_tesla_connected
    regions = _parse("21.44-foogod/running/site_info.grid_regions.json").rows()
    assert regions[0]["grid_code"] == "60Hz_240V_s_IEEE1547_2003"
    codes = _parse("api_site_info_grid_codes.json")
    assert codes["Australia"]["*"]["ASS4777.2"][0].grid_freq_setting_hz == 50
    post = _parse("system.networks.conn_tests.post.json")
    assert [d.name for d in post] == ["CAN bus", "Meter communication", "Network connection"]
    legacy = parse_response(
        "POST",
        "/api/system/networks/conn_tests",
        b'{"results":{"Gle GET Test":{"pass":true,"error":""}},'
        b'"timestamp":"2018-02-22T17:12:56.296673681-08:00"}',
    )
    assert isinstance(legacy, models.ConnTestResults)
    assert legacy.results and legacy.results["Gle GET Test"].passed
    testing = _parse("system.testing.json")
    assert testing.meter_results[0][0].power_w == pytest.approx(575.69, abs=0.01)
    update = _parse("21.44-foogod/running/system.update.status.json")
    assert update.state == models.UpdateState.SUCCEEDED and update.info.status == ["nonactionable"]
    assert _parse("v2.islanding.mode.off-grid.json").island_mode == "intentional_reconnect_failsafe"


def test_secrets_stay_out_of_repr() -> None:
    login = _parse("api-login-basic.json")
    assert isinstance(login, LoginResponse)
    assert login.token == "x4jbH...XMP8w==" and login.roles == ["Home_Owner"]
    assert "x4jbH" not in repr(login)
    assert login.login_time is not None and login.login_time.year == 2023
    legacy = parse_response(
        "POST", "/api/login/Basic", b'{"email":null,"roles":["Provider_Engineer"],"token":"T"}'
    )
    assert legacy.email is None
    changed = _parse("password.change.response.json")
    assert "NEW_PASSWORD" not in repr(changed)


# --- parse_response and decode contracts ---------------------------------------------------


def test_not_in_catalog_is_key_error() -> None:
    with pytest.raises(KeyError, match=r"PATCH /api/nowhere"):
        parse_response("PATCH", "/api/nowhere", b"{}")


def test_wrong_type_names_endpoint_and_field() -> None:
    body = _load("21.44-foogod/running/meters.aggregates.json").replace(
        b'"instant_power": 72', b'"instant_power": "72"'
    )
    with pytest.raises(ParseError) as info:
        parse_response("GET", "/api/meters/aggregates", body)
    assert info.value.endpoint == "GET /api/meters/aggregates"
    assert "$.site.instant_power" in str(info.value)


def test_invalid_json_is_parse_error() -> None:
    for body in (b"", b"{", b"<html>", "not json"):
        with pytest.raises(ParseError):
            parse_response("GET", "/api/system_status/soe", body)
    with pytest.raises(ParseError):
        parse_response("GET", "/api/devices/vitals", b"\x0a\x03pb")  # no model, not JSON


def test_no_model_gives_plain_json() -> None:
    assert parse_response("GET", "/api/logout", b'{"a": [1]}') == {"a": [1]}
    assert parse_response("GET", "/api/logout", {"a": 1}) == {"a": 1}


def test_decode_buffers_and_decoded_json() -> None:
    body = _load("21.44-foogod/running/system_status.soe.json")
    assert decode(models.StateOfEnergy, bytearray(body)).raw_percent == pytest.approx(42.4151909)
    from_dict = decode(models.StateOfEnergy, {"percentage": 50, "extra": True})
    assert from_dict.raw_percent == 50.0 and from_dict.raw["extra"] is True
    with pytest.raises(ParseError, match="StateOfEnergy"):
        decode(models.StateOfEnergy, {"percentage": "full"})


# --- properties -----------------------------------------------------------------------------

app_values = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(app_values)
def test_percent_round_trip(app: float) -> None:
    raw = percent.app_to_raw(app)
    assert 5.0 <= raw <= 100.0
    assert percent.raw_to_app(raw) == pytest.approx(app, abs=1e-9)


@given(app_values, app_values)
def test_percent_is_monotonic(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert percent.app_to_raw(low) <= percent.app_to_raw(high)
    assert percent.raw_to_app(low) <= percent.raw_to_app(high)


# Small captures of many shapes for mutation.
MUTATED = [
    "21.44-foogod/running/meters.aggregates.json",
    "21.44-foogod/running/system_status.json",
    "21.44-foogod/running/operation.json",
    "21.44-foogod/running/site_info.json",
    "21.44-foogod/running/status.json",
    "21.44-foogod/running/sitemaster.json",
    "21.44-foogod/running/powerwalls.json",
    "21.44-foogod/running/networks.json",
    "21.44-foogod/running/meters.readings.json",
    "21.44-foogod/running/system.update.status.json",
    "meters.site.json",
    "system.testing.json",
    "system.networks.conn_tests.post.json",
    "api-login-basic.json",
]
MUTATED = [m for m in MUTATED if (SAMPLES / m).is_file()]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.append((*prefix, index))
            out += _paths(item, (*prefix, index))
    return out


def _unwrap(t: mi.Type, step: Any) -> mi.Type:
    if isinstance(t, mi.UnionType):
        wanted = (mi.StructType, mi.DictType) if isinstance(step, str) else (mi.ListType,)
        for member in t.types:
            if isinstance(member, wanted):
                return member
    return t


def _slot(model_type: Any, path: tuple[Any, ...]) -> tuple[str, mi.Type | None]:
    """What the model holds at `path`: ("free", None) inside unknown or Any data; else the
    kind of container ("field" with its msgspec Field, "dict", "list") and the slot's type."""
    t: mi.Type = mi.type_info(model_type)
    for step in path[:-1]:
        t = _unwrap(t, step)
        if isinstance(t, mi.StructType):
            field = next((f for f in t.fields if f.encode_name == step), None)
            if field is None:
                return "free", None
            t = field.type
        elif isinstance(t, mi.DictType):
            t = t.value_type
        elif isinstance(t, mi.ListType):
            t = t.item_type
        else:
            return "free", None
    t = _unwrap(t, path[-1])
    if isinstance(t, mi.StructType):
        field = next((f for f in t.fields if f.encode_name == path[-1]), None)
        if field is None:
            return "free", None
        return ("required" if field.required else "optional"), field.type
    if isinstance(t, mi.DictType):
        return "dict", t.value_type
    if isinstance(t, mi.ListType):
        return "list", t.item_type
    return "free", None


def _nullable(t: mi.Type | None) -> bool:
    if t is None or isinstance(t, (mi.AnyType, mi.NoneType)):
        return True
    return isinstance(t, mi.UnionType) and any(isinstance(m, mi.NoneType) for m in t.types)


def _set(doc: Any, path: tuple[Any, ...], value: Any, drop: bool) -> None:
    for step in path[:-1]:
        doc = doc[step]
    if drop:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], str, Any]:
    name = draw(st.sampled_from(MUTATED))
    doc = json.loads((SAMPLES / name).read_bytes())
    path = draw(st.sampled_from(_paths(doc)))
    kind = draw(st.sampled_from(["drop", "null", "string", "list", "object", "number"]))
    value = {"null": None, "string": "mutated", "list": [], "object": {}, "number": 1.5}.get(kind)
    return name, path, kind, value


@pytest.mark.skipif(not MUTATED, reason="reference captures not present")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutated_captures_raise_only_parse_error(
    case: tuple[str, tuple[Any, ...], str, Any],
) -> None:
    name, path, kind, value = case
    method, concrete, _ = endpoint_for(SAMPLES / name)  # type: ignore[misc]
    doc = json.loads((SAMPLES / name).read_bytes())
    _set(doc, path, value, drop=kind == "drop")
    body = json.dumps(doc).encode()
    slot, slot_type = _slot(models.model_for(method, concrete), path)
    must_parse = (
        slot == "free"
        or (kind == "drop" and slot in ("optional", "dict", "list"))
        or (kind == "null" and _nullable(slot_type))
    )
    try:
        parse_response(method, concrete, body)
    except ParseError:
        assert not must_parse, f"{name} {kind} at {path} ({slot}) should parse"


@pytest.mark.skipif(not MUTATED, reason="reference captures not present")
@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MUTATED), st.integers(min_value=0, max_value=4000))
def test_truncated_captures_raise_parse_error(name: str, cut: int) -> None:
    method, concrete, _ = endpoint_for(SAMPLES / name)  # type: ignore[misc]
    body = (SAMPLES / name).read_bytes()
    cut = min(cut, len(body))
    try:
        parse_response(method, concrete, body[:cut])
    except ParseError:
        return
    assert body[:cut].strip() == body.strip()  # only trailing whitespace was cut


def test_missing_required_field_is_parse_error() -> None:
    doc = json.loads(_load("21.44-foogod/running/meters.aggregates.json"))
    del doc["battery"]["instant_power"]
    with pytest.raises(ParseError, match=r"\$\.battery"):
        parse_response("GET", "/api/meters/aggregates", json.dumps(doc))
    del doc["battery"]
    assert parse_response("GET", "/api/meters/aggregates", doc).battery is None
