"""Typed results from the 21.44 captures, served over TLS with their real status codes."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

import pytest

from tegkit import models
from tegkit.client import Gateway, SyncGateway
from tegkit.errors import ApiError, EndpointNotSupportedError, ParseError, SystemStoppedError

PASSWORD = "hunter2-secret"

# Typed read methods (no arguments) and the model each returns.
READERS = [
    name
    for name, fn in inspect.getmembers(Gateway, inspect.iscoroutinefunction)
    if not name.startswith("_")
    and typing.get_type_hints(fn).get("return") in models.MODELS.values()
    and len(inspect.signature(fn).parameters) == 1
]


def test_every_typed_reader_is_found() -> None:
    assert len(READERS) >= 29, READERS


@pytest.mark.parametrize("name", READERS)
async def test_reader_returns_its_model(name: str, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        result = await getattr(gw, name)()
    expected = typing.get_type_hints(getattr(Gateway, name))["return"]
    origin = typing.get_origin(expected)
    if origin is None:
        assert isinstance(result, expected)
    else:  # a container model such as Meters = list[Meter]
        assert isinstance(result, origin)
        item_type = typing.get_args(expected)[-1]
        items = result if origin is list else result.values()
        if isinstance(item_type, type):
            assert all(isinstance(item, item_type) for item in items)


async def test_values_carry_units_and_scales(address: str, pinned: Any, capture: Any) -> None:
    aggregates_json = capture("running", "meters.aggregates.json")
    soe_json = capture("running", "system_status.soe.json")
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        aggregates = await gw.meters_aggregates()
        soe = await gw.state_of_energy()
        operation = await gw.operation()
        status = await gw.status()
    assert aggregates.site.instant_power_w == aggregates_json["site"]["instant_power"]
    assert aggregates.battery.instant_power_w == aggregates_json["battery"]["instant_power"]
    assert soe.raw_percent == soe_json["percentage"]
    assert soe.app_percent == pytest.approx((soe_json["percentage"] - 5) / 0.95)
    assert operation.mode == "autonomous"
    assert operation.backup_reserve_raw_percent == 30
    assert status.version == capture("running", "status.json")["version"]


async def test_generic_request_and_request_typed(address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        plain = await gw.request("GET", "/api/meters/METER_SERIALsynchrometerX/cts")
        typed = await gw.request_typed("GET", "/api/system_status/soe")
        empty = await gw.request("GET", "/api/config/completed")
        raw = await gw.request_raw("GET", "/api/system_status/soe")
    assert raw.status == 200 and raw.headers["Content-Type"].startswith("application/json")
    assert json.loads(raw.body)["percentage"] == typed.raw_percent
    assert isinstance(plain, dict | list)
    assert isinstance(typed, models.StateOfEnergy)
    assert empty is None


async def test_error_body_fields_are_carried(address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(ApiError) as caught:
            await gw.request("GET", "/api/meters/METER_SERIALsynchrometerX/ct_config")
    error = caught.value
    assert (error.status, error.code) == (500, 500)
    assert error.error == "meter type must be Neurio (synchrometerX)"
    assert error.message == "Unable to get Amp configuration"


async def test_stopped_system_live_endpoints_raise(
    fake: Any, address: str, pinned: Any, capture: Any
) -> None:
    fake.state = "stopped"
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        for read in (gw.meters_aggregates, gw.state_of_energy, gw.system_status, gw.grid_status):
            with pytest.raises(SystemStoppedError) as caught:
                await read()
            assert caught.value.status == 502
        sitemaster = await gw.sitemaster()
    assert sitemaster.raw == capture("stopped", "sitemaster.json")
    assert sitemaster.running is False


async def test_missing_endpoint_is_remembered(fake: Any, address: str, pinned: Any) -> None:
    path = "/api/powerwalls/phase_detection"
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        for _ in range(3):
            with pytest.raises(EndpointNotSupportedError):
                await gw.request("GET", path)
    assert fake.hits[f"GET {path}"] == 1


async def test_requests_outside_the_catalog(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(KeyError, match="not in the endpoint catalog"):
            await gw.request("GET", "/api/nothing/here")
        assert fake.total == 0
        with pytest.raises(EndpointNotSupportedError):
            await gw.request("GET", "/api/nothing/here", allow_unknown=True)
    assert fake.hits["GET /api/nothing/here"] == 1


async def test_a_body_that_is_not_json_is_a_parse_error_naming_the_endpoint(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    page = fault(status=200, body=b"<html>login</html>")
    fake.fault("GET /api/other/thing", page, page)
    async with Gateway(address, tls=pinned) as gw:
        for read in (gw.request, gw.request_typed):
            with pytest.raises(ParseError, match="GET /api/other/thing"):
                await read("GET", "/api/other/thing", allow_unknown=True)


def test_sync_gateway_from_plain_code(fake: Any, address: str, pinned: Any) -> None:
    # With the firmware family known, the client logs in before the first request.
    with SyncGateway(address, password=PASSWORD, tls=pinned, firmware="modern") as gw:
        soe = gw.state_of_energy()
        name = gw.site_name()
        raw = gw.request("GET", "/api/status")
    assert isinstance(soe, models.StateOfEnergy)
    assert isinstance(name, models.SiteName)
    assert raw["version"]
    assert fake.hits["GET /api/system_status/soe"] == 1
    assert fake.logins == 1
    with pytest.raises(RuntimeError, match="closed"):
        gw.status()


def test_sync_gateway_has_every_public_method() -> None:
    public = {
        name
        for name, _ in inspect.getmembers(Gateway, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in {"close"}
    }
    missing = {name for name in public if not hasattr(SyncGateway, name)}
    assert not missing


def test_public_surface_resolves() -> None:
    import tegkit.client

    for name in tegkit.client.__all__:
        assert getattr(tegkit.client, name) is not None, name
