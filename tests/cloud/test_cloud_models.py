"""The cloud models read the simulator's real answers, bodies as Tesla's cloud varies them,
and hostile bodies: every answer shape decodes, and a bad body is a ParseError naming it."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit.cloud import CloudClient, CloudSiteInfo, CommandResult, EnergySite, LiveStatus
from tegkit.cloud._envelope import MAX_ERROR_CHARS, decode_answer, parse_command_result, unwrap
from tegkit.cloud._models import CommandAnswer
from tegkit.errors import ApiError, ParseError
from tegkit.models import CUSTOMER_MODES, OperationMode
from tegkit.ownerapi import SUCCESS_SHAPES, success_body
from tegkit.percent import raw_to_app
from tegkit.sim import Simulator

LIVE = "/api/1/energy_sites/1/live_status"
INFO = "/api/1/energy_sites/1/site_info"
START = dt.datetime(2024, 6, 21, 13, 0, tzinfo=dt.UTC)  # midday: the sun shines in the sim


def _wire_names(model_type: Any) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(model_type)}


def _answer(response: Any) -> bytes:
    return json.dumps({"response": response}).encode()


def _read(model_type: Any, body: bytes | str, path: str = LIVE) -> Any:
    """What the client does with an answer: unwrap the envelope, decode the response."""
    response = unwrap(200, body, method="GET", path=path)
    return decode_answer(model_type, response, method="GET", path=path)


# --- the simulator's own answers --------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, cloud_port=0, speed=0, seed=7, start=START) as running:
        yield running


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[CloudClient]:
    context = ssl.create_default_context(cafile=str(sim.cafile))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the cloud's certificate is the sim's
    async with CloudClient(
        sim.cloud_tokens.access_token,
        sim.cloud_tokens.refresh_token,
        base_url=sim.cloud_url,
        auth_url=sim.cloud_url,
        ssl=context,
    ) as cloud:
        yield cloud


async def test_the_simulators_answers_decode_into_every_model(
    sim: Simulator, client: CloudClient
) -> None:
    site = sim.cloud_site
    [energy] = await client.energy_sites()
    assert (energy.energy_site_id, energy.battery_id) == (site.energy_site_id, site.battery_id)
    assert energy.site_name == site.site_name and energy.resource_type == "battery"

    live = await client.live_status(energy.energy_site_id)
    expected = site.live_status()
    assert live.percentage_charged_app_percent == pytest.approx(
        raw_to_app(sim.gateway.snap().soe_raw_percent)
    )
    assert live.solar_power_w == expected["solar_power"] and live.solar_power_w > 0
    assert live.battery_power_w == expected["battery_power"]
    assert live.grid_power_w == expected["grid_power"]
    assert live.load_power_w == expected["load_power"]
    assert live.energy_left_wh == expected["energy_left"]
    assert live.timestamp is not None and live.timestamp.utcoffset() is not None

    info = await client.site_info(energy.energy_site_id)
    assert info.site_id == site.battery_id
    assert info.backup_reserve_app_percent == pytest.approx(
        raw_to_app(sim.gateway.backup_reserve_raw_percent)
    )
    assert info.operation_mode == sim.gateway.mode
    assert info.battery_count == site.site_info()["battery_count"] > 0
    assert info.installation_date is not None and info.installation_time_zone


async def test_every_key_the_simulator_sends_is_a_field(
    sim: Simulator, client: CloudClient
) -> None:
    # The exact answers take msgspec's fast path: a key the simulator adds must get a field.
    [energy] = await client.energy_sites()
    live = await client.live_status(energy.energy_site_id)
    info = await client.site_info(energy.energy_site_id)
    for model in (energy, live, info):
        assert set(model.raw) <= _wire_names(type(model)), type(model).__name__
        # and the model writes back the JSON it was read from, under the cloud's names
        assert msgspec.to_builtins(model) == model.raw


async def test_commands_answer_a_command_result(sim: Simulator, client: CloudClient) -> None:
    site = sim.cloud_site
    before = sim.gateway.mode
    other = next(mode for mode in CUSTOMER_MODES if mode != before)
    try:
        result = await client.set_operation_mode(other, site_id=site.energy_site_id)
        assert isinstance(result, CommandResult) and result.code is not None
        assert 200 <= result.code < 300
    finally:
        await client.set_operation_mode(before, battery_id=site.battery_id)


@pytest.mark.parametrize("shape", SUCCESS_SHAPES)
def test_every_documented_success_shape(shape: Any) -> None:
    result = parse_command_result(
        unwrap(200, _answer(success_body(shape, "Updated")), method="POST", path=LIVE),
        method="POST",
        path=LIVE,
    )
    assert result.message in ("Updated", None)
    assert result.code in (200, 201, None)


# --- as Tesla's cloud varies them -------------------------------------------------------------

# A live_status as a newer cloud might send it: a field we do not model, one left out, nulls.
LIVE_VARIED = {
    "solar_power": 0,
    "percentage_charged": 55.123,
    "battery_power": 1200,
    "load_power": 1700.5,
    "grid_power": 500,
    "grid_status": "Active",
    "grid_services_active": None,
    "backup_capable": True,
    "storm_mode_active": False,
    "timestamp": "2026-06-01T20:15:00-07:00",
    "island_status": "on_grid",
    "a_field_from_next_year": {"nested": [1, 2]},
}


def test_unknown_fields_are_ignored_and_kept_in_raw() -> None:
    live = _read(LiveStatus, _answer(LIVE_VARIED))
    assert live.battery_power_w == 1200.0 and live.load_power_w == 1700.5
    assert live.percentage_charged_app_percent == pytest.approx(55.123)
    assert live.solar_power_w == 0.0  # a real zero stays zero
    assert live.generator_power_w is None  # left out: missing, never zero
    assert live.grid_services_active is None  # sent as null
    assert live.timestamp == dt.datetime(2026, 6, 2, 3, 15, tzinfo=dt.UTC)
    assert live.raw["a_field_from_next_year"] == {"nested": [1, 2]}


def test_re_cased_keys_are_read_as_their_field() -> None:
    info = _read(CloudSiteInfo, _answer({"Site_Name": "Home", "BackupReservePercent": 30}), INFO)
    assert (info.site_name, info.backup_reserve_app_percent) == ("Home", 30.0)
    answer = decode_answer(CommandAnswer, {"CODE": 201, "Message": "ok"}, method="POST", path=LIVE)
    assert (answer.code, answer.message) == (201, "ok")


def test_the_energy_settings_the_fleet_commands_change() -> None:
    settings = {
        "components": {
            "battery": True,
            "storm_mode_capable": True,
            "off_grid_vehicle_charging_reserve_supported": True,
            "customer_preferred_export_rule": "pv_only",
            "disallow_charge_from_grid_with_solar_installed": True,
            "a_component_from_next_year": True,
        },
        "user_settings": {"storm_mode_enabled": True, "breaker_alert_enabled": False},
        "off_grid_vehicle_charging_reserve_percent": 35,
    }
    info = _read(CloudSiteInfo, _answer(settings), INFO)
    assert info.components is not None and info.components.battery is True
    assert info.components.customer_preferred_export_rule == "pv_only"
    assert info.grid_charging_allowed is False
    assert info.storm_mode_enabled is True
    assert info.off_grid_vehicle_charging_reserve_app_percent == 35.0
    assert info.raw["components"]["a_component_from_next_year"] is True
    bare = _read(CloudSiteInfo, _answer({"components": {"battery": True}}), INFO)
    assert (bare.grid_charging_allowed, bare.storm_mode_enabled) == (None, None)


def test_a_mode_the_vocabulary_does_not_know_is_kept_as_text() -> None:
    for mode in OperationMode:
        info = _read(CloudSiteInfo, _answer({"default_real_mode": str(mode)}), INFO)
        assert info.operation_mode is mode
    newer = _read(CloudSiteInfo, _answer({"default_real_mode": "a_newer_mode"}), INFO)
    assert newer.default_real_mode == "a_newer_mode" and newer.operation_mode is None


def test_a_product_id_sent_as_a_number_is_still_the_battery_id() -> None:
    site = decode_answer(EnergySite, {"energy_site_id": 5, "id": 12}, method="GET", path=LIVE)
    assert site.battery_id == "12"
    bare = decode_answer(EnergySite, {"energy_site_id": 5}, method="GET", path=LIVE)
    assert bare.battery_id is None


# --- bad and hostile bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_type", "response", "named"),
    [
        (LiveStatus, {"solar_power": "lots"}, "solar_power"),
        (LiveStatus, {"battery_power": True}, "battery_power"),  # a flag is not a power
        (LiveStatus, {"timestamp": "yesterday"}, "timestamp"),
        (LiveStatus, {"storm_mode_active": "no"}, "storm_mode_active"),
        (LiveStatus, [1, 2], "object"),
        (LiveStatus, None, "null"),
        (CommandAnswer, None, "null"),
        (CloudSiteInfo, {"backup_reserve_percent": "20"}, "backup_reserve_percent"),
        (CloudSiteInfo, {"battery_count": 1.5}, "battery_count"),
        (EnergySite, {"site_name": "no id"}, "energy_site_id"),
        (EnergySite, {"energy_site_id": "123"}, "energy_site_id"),
        (CommandAnswer, {"code": "201"}, "code"),
    ],
)
def test_a_bad_field_is_a_parse_error_naming_it(model_type: Any, response: Any, named: str) -> None:
    with pytest.raises(ParseError) as info:
        _read(model_type, _answer(response))
    assert named in str(info.value)
    assert info.value.endpoint == f"GET {LIVE}"


def test_a_deeply_nested_body_is_a_parse_error() -> None:
    deep = b'{"response": {"wall_connectors": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    with pytest.raises(ParseError, match="nested too deeply"):
        _read(LiveStatus, deep)
    with pytest.raises(ApiError) as info:  # an error status still maps by status
        unwrap(500, deep, method="GET", path=LIVE)
    assert info.value.status == 500


def test_an_error_member_that_is_no_text_is_shown_as_its_json() -> None:
    body = b'{"response": null, "error": {"why": 1}, "error_description": 7}'
    with pytest.raises(ApiError) as info:
        unwrap(200, body, method="GET", path=LIVE)
    assert (info.value.error, info.value.message) == ('{"why": 1}', "7")


def test_a_long_error_text_is_cut_after_its_secrets_are_redacted() -> None:
    secret = "s3cret-token"
    long = "x" * (MAX_ERROR_CHARS - 5) + secret + "y" * 10_000
    body = json.dumps({"response": None, "error": "bad", "error_description": long})
    with pytest.raises(ApiError) as info:
        unwrap(401, body, method="GET", path=LIVE, secrets=(secret,))
    assert info.value.message is not None and len(info.value.message) == MAX_ERROR_CHARS + 1
    assert "s3cr" not in str(info.value) and info.value.message.endswith("…")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    sorted(
        _wire_names(LiveStatus) | _wire_names(CloudSiteInfo) | _wire_names(EnergySite)
        | _wire_names(CommandAnswer) | {"Code", "Message", "response", "error"}
    )
)  # fmt: skip
RESPONSES = JSON | st.dictionaries(KEYS | st.text(max_size=8), JSON, max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=RESPONSES, status=st.sampled_from([200, 201, 400, 401, 429, 500, 503]))
def test_any_json_answer_is_a_model_or_a_typed_error(response: Any, status: int) -> None:
    body = _answer(response)
    for model_type in (LiveStatus, CloudSiteInfo, EnergySite):
        try:
            raw = unwrap(status, body, method="GET", path=LIVE)
            model = decode_answer(model_type, raw, method="GET", path=LIVE)
        except (ParseError, ApiError):
            continue
        assert isinstance(model, model_type)
        assert isinstance(model.raw, dict)
    try:
        result = parse_command_result(
            unwrap(status, body, method="POST", path=LIVE), method="POST", path=LIVE
        )
    except (ParseError, ApiError):
        return
    assert result.code is None or 200 <= result.code < 300


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_are_an_answer_or_a_typed_error(body: bytes | str) -> None:
    try:
        raw = unwrap(200, body, method="GET", path=LIVE)
        decode_answer(LiveStatus, raw, method="GET", path=LIVE)
    except (ParseError, ApiError):
        pass
