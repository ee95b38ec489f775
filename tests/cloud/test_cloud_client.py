"""CloudClient against the simulated Owner API over TLS: reads, commands, success shapes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from owner_cloud import BATTERY_ID, SITE_ID, Cloud

from tegkit.cloud import CloudClient, CommandResult, EnergySite, LiveStatus, SiteComponents
from tegkit.errors import EndpointNotSupportedError, InvalidInputError
from tegkit.ownerapi import COMMANDS, SUCCESS_SHAPES, SuccessShape
from tegkit.percent import app_to_raw


async def test_products_and_energy_sites(cloud: Cloud) -> None:
    async with cloud.client() as client:
        products = await client.products()
        sites = await client.energy_sites()
    assert [p["energy_site_id"] for p in products] == [SITE_ID]
    assert sites == [
        EnergySite(
            energy_site_id=SITE_ID,
            product_id=BATTERY_ID,
            site_name="My Home",
            resource_type="battery",
            gateway_id="1118431-00-L--TG0000000000",
            battery_type="ac_powerwall",
            backup_capable=True,
            energy_left_wh=10720.5,
            total_pack_energy_wh=13500,
            percentage_charged_app_percent=pytest.approx(80.0),
            battery_power_w=-1250.5,
            components=SiteComponents(battery=True, solar=True, grid=True),
        )
    ]
    assert sites[0].battery_id == BATTERY_ID
    assert sites[0].raw["percentage_charged"] == pytest.approx(80.0)


async def test_live_status_is_typed_with_units_and_app_percent(cloud: Cloud) -> None:
    cloud.site.soe_raw_percent = app_to_raw(42.5)
    async with cloud.client() as client:
        live = await client.live_status(SITE_ID)
    assert isinstance(live, LiveStatus)
    assert live.solar_power_w == 3470.0
    assert live.battery_power_w == -1250.5
    assert live.load_power_w == 1450.0
    assert live.grid_power_w == -770.5
    assert live.generator_power_w == 0.0
    assert live.percentage_charged_app_percent == pytest.approx(42.5)
    assert live.energy_left_wh == 10720.5
    assert live.total_pack_energy_wh == 13500.0
    assert (live.grid_status, live.island_status) == ("Active", "on_grid")
    assert live.storm_mode_active is False
    assert live.backup_capable is True
    assert live.timestamp == dt.datetime(2024, 5, 1, 10, 32, 5, tzinfo=dt.UTC)
    assert live.raw["wall_connectors"] == []


async def test_missing_live_fields_are_none_not_zero(cloud: Cloud) -> None:
    full = cloud.site.live_status
    cloud.site.live_status = lambda: {  # type: ignore[method-assign]
        k: v for k, v in full().items() if k not in ("solar_power", "storm_mode_active")
    }
    async with cloud.client() as client:
        live = await client.live_status(SITE_ID)
    assert live.solar_power_w is None
    assert live.storm_mode_active is None
    assert live.load_power_w == 1450.0


async def test_site_info_is_typed(cloud: Cloud) -> None:
    async with cloud.client() as client:
        info = await client.site_info(SITE_ID)
    assert info.site_name == "My Home"
    assert info.default_real_mode == "self_consumption"
    assert info.backup_reserve_app_percent == pytest.approx(20.0)
    assert info.installation_time_zone == "Europe/Berlin"
    assert (info.nameplate_power_w, info.nameplate_energy_wh) == (5000.0, 13500.0)
    assert (info.battery_count, info.version) == (1, "23.44.0")


@pytest.mark.parametrize("by", ["battery_id", "site_id"])
async def test_commands_change_what_site_info_reports(cloud: Cloud, by: str) -> None:
    target = {"battery_id": BATTERY_ID} if by == "battery_id" else {"site_id": SITE_ID}
    async with cloud.client() as client:
        r1 = await client.set_backup_reserve(35, **target)
        r2 = await client.set_operation_mode("autonomous", **target)
        r3 = await client.set_site_name("Cabin", **target)
        info = await client.site_info(SITE_ID)
    assert all(isinstance(r, CommandResult) for r in (r1, r2, r3))
    assert info.backup_reserve_app_percent == pytest.approx(35.0)
    assert info.default_real_mode == "autonomous"
    assert info.site_name == "Cabin"
    # the site keeps raw percent: the app percent was converted on the way in
    assert cloud.site.reserve_raw_percent == pytest.approx(5 + 0.95 * 35)
    family = "powerwalls" if by == "battery_id" else "energy_sites"
    assert cloud.count(f"/api/1/{family}/", method="POST") == 3


async def test_fractional_reserve_is_sent_as_a_float(cloud: Cloud) -> None:
    async with cloud.client() as client:
        await client.set_backup_reserve(12.5, site_id=SITE_ID)
        info = await client.site_info(SITE_ID)
    assert info.backup_reserve_app_percent == pytest.approx(12.5)


async def test_default_shapes_per_family(cloud: Cloud) -> None:
    async with cloud.client() as client:
        by_battery = await client.set_site_name("A", battery_id=BATTERY_ID)
        by_site = await client.set_site_name("B", site_id=SITE_ID)
    assert by_battery == CommandResult(code=201, message="Updated")
    assert by_site == CommandResult(code=200, message="Site name updated")


@pytest.mark.parametrize("shape", SUCCESS_SHAPES)
async def test_every_success_shape_is_parsed_over_http(
    cloud_factory: Callable[..., Awaitable[Cloud]], shape: SuccessShape
) -> None:
    shapes = {(f, c): shape for f in ("powerwalls", "energy_sites") for c in COMMANDS}
    cloud = await cloud_factory(success_shapes=shapes)
    expected = {
        "code": CommandResult(201, "Updated"),
        "Code": CommandResult(200, "Updated"),
        "result": CommandResult(None, None),
    }[shape]
    async with cloud.client() as client:
        assert await client.set_backup_reserve(0, battery_id=BATTERY_ID) == expected
        assert await client.set_operation_mode("backup", site_id=SITE_ID) == expected
    assert cloud.site.mode == "backup"
    assert cloud.site.reserve_raw_percent == pytest.approx(5.0)


async def test_unknown_site_is_a_typed_404(cloud: Cloud) -> None:
    async with cloud.client() as client:
        with pytest.raises(EndpointNotSupportedError) as info:
            await client.live_status(SITE_ID + 1)
    assert info.value.status == 404
    assert info.value.error == "not_found"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.set_backup_reserve(150, site_id=SITE_ID), "backup_reserve_percent"),
        (lambda c: c.set_backup_reserve(-1, site_id=SITE_ID), "backup_reserve_percent"),
        (lambda c: c.set_backup_reserve(float("nan"), site_id=SITE_ID), "backup_reserve_percent"),
        (lambda c: c.set_backup_reserve(True, site_id=SITE_ID), "backup_reserve_percent"),
        (lambda c: c.set_backup_reserve("50", site_id=SITE_ID), "backup_reserve_percent"),
        (lambda c: c.set_operation_mode("scheduler", site_id=SITE_ID), "default_real_mode"),
        (lambda c: c.set_site_name("x" * 65, site_id=SITE_ID), "site_name"),
        (lambda c: c.set_site_name("   ", site_id=SITE_ID), "site_name"),
        (lambda c: c.set_site_name("a\nb", site_id=SITE_ID), "site_name"),
        (lambda c: c.set_backup_reserve(50), "battery_id/site_id"),
        (
            lambda c: c.set_backup_reserve(50, site_id=SITE_ID, battery_id=BATTERY_ID),
            "battery_id/site_id",
        ),
        (lambda c: c.set_operation_mode("backup", site_id="123"), "site_id"),
        (lambda c: c.live_status(-5), "site_id"),
    ],
)
async def test_validation_raises_before_any_request(
    cloud: Cloud, call: Callable[[CloudClient], Awaitable[object]], field: str
) -> None:
    async with cloud.client() as client:
        with pytest.raises(InvalidInputError) as info:
            await call(client)
    assert info.value.field == field
    assert info.value.allowed
    assert cloud.seen == []


async def test_borrowed_http_client_stays_open(cloud: Cloud) -> None:
    import httpx

    async with httpx.AsyncClient(http2=True, verify=cloud.ssl) as http_client:
        async with cloud.client(http_client=http_client) as client:
            await client.products()
        assert not http_client.is_closed
        async with cloud.client(http_client=http_client) as client:
            assert len(await client.energy_sites()) == 1
    assert cloud.http_versions == ["2", "2"]


async def test_repr_and_tokens_hide_secrets(cloud: Cloud) -> None:
    client = cloud.client()
    for text in (repr(client), repr(client.tokens)):
        assert cloud.tokens.access_token not in text
        assert cloud.tokens.refresh_token not in text
    assert client.tokens.access_token == cloud.tokens.access_token
    await client.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4MiB"])
def test_a_bad_response_limit_is_refused_like_the_gateway_clients(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="max_response_bytes"):
        CloudClient("access", max_response_bytes=bad)  # type: ignore[arg-type]
