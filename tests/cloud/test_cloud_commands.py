"""The energy-site commands through CloudClient over real HTTP/2, against the simulator's cloud.

Each command reaches the simulated gateway through the same physics its LOCAL API reports,
after the cloud's propagation delay (the simulated clock is advanced, never slept on). Bad
values are refused by the client before anything is sent (the simulated cloud counts every
request), and the simulated cloud refuses the same bad bodies sent raw with a 400 naming the
field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from owner_cloud import TlsPair, serve_asgi

from tegkit.client import Gateway, PinnedCertificate
from tegkit.cloud import CloudClient
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.ownerapi import (
    SITE_COMMANDS,
    TOU_SETTINGS_MAX_BYTES,
    TOU_SETTINGS_MAX_DEPTH,
)
from tegkit.percent import app_to_raw
from tegkit.sim import Simulator
from tegkit.sim.owner_api import CloudTokens, make_owner_api_app

FLEET_APP = "my-fleet-app-0a1b2c"
DELAY_S = 30.0  # the cloud's propagation delay in these tests, simulated seconds
NIGHT = dt.datetime(2024, 6, 2, 8, 0, tzinfo=dt.UTC)  # 1 am in Los Angeles: no sun
LOAD_W = 800.0
TARIFF: dict[str, Any] = {
    "name": "Two rates",
    "utility": "Example Power",
    "currency": "USD",
    "energy_charges": {
        "ALL": {"rates": {"ALL": 0}},
        "Summer": {"rates": {"OFF_PEAK": 0.21, "ON_PEAK": 0.48}},
    },
    "seasons": {
        "Summer": {
            "fromMonth": 1,
            "toMonth": 12,
            "fromDay": 1,
            "toDay": 31,
            "tou_periods": {
                "ON_PEAK": {"periods": [{"fromHour": 16, "toHour": 21}]},
                "OFF_PEAK": {"periods": [{"fromHour": 21, "toHour": 16}]},
            },
        }
    },
}


@dataclass
class Rig:
    """A simulator, its cloud served over HTTP/2, and a client of each side."""

    sim: Simulator
    tokens: CloudTokens  # the account's tokens at the simulated cloud
    cloud: CloudClient
    local: Gateway
    base_url: str
    tls: TlsPair
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # at the simulated cloud

    @property
    def site_id(self) -> int:
        return self.sim.cloud_site.energy_site_id

    @property
    def battery_id(self) -> str:
        return self.sim.cloud_site.battery_id

    async def power_w(self) -> tuple[float, float, float]:
        """(solar, battery, site) power as the gateway's local API reports them now."""
        meters = await self.local.meters_aggregates()
        assert meters.solar and meters.battery and meters.site
        return (
            meters.solar.instant_power_w,
            meters.battery.instant_power_w,
            meters.site.instant_power_w,
        )

    async def reserve_and_mode(self) -> tuple[float | None, str | None]:
        """(backup reserve raw percent, mode) as the local API reports them now."""
        operation = await self.local.operation()
        return operation.backup_reserve_raw_percent, operation.real_mode


@pytest.fixture
async def rig(tls: TlsPair, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    # The simulator's own cloud app and physics; served here so the test can count requests.
    # request.param "fleet" (indirect): tokens of a Fleet API application and its client.
    fleet = getattr(request, "param", "owner") == "fleet"
    async with Simulator(
        port=0, cloud_port=None, speed=0, seed=7, start=NIGHT, cloud_delay_s=DELAY_S
    ) as sim:
        tokens = (
            CloudTokens(client_id=FLEET_APP, clock_s=lambda: sim.now_s)
            if fleet
            else sim.cloud_tokens
        )
        app = make_owner_api_app(sim.cloud_site, tokens)
        server = serve_asgi(app, tls)
        base_url = await anext(server)
        flavour: dict[str, Any] = (
            {"flavour": "fleet", "client_id": FLEET_APP, "region": "eu"} if fleet else {}
        )
        try:
            async with (
                CloudClient(
                    tokens.access_token,
                    tokens.refresh_token,
                    base_url=base_url,  # both hosts on loopback, whatever the flavour
                    auth_url=base_url,
                    ssl=tls.client_context(),
                    **flavour,
                ) as cloud,
                Gateway(
                    sim.url,
                    password=sim.password,
                    email=sim.email,
                    tls=PinnedCertificate(sim.fingerprint_sha256),
                ) as local,
            ):
                found = Rig(sim, tokens, cloud, local, base_url, tls)
                app.on_request.append(
                    lambda scope, status: found.seen.append(
                        (scope["method"], scope["path"], status)
                    )
                )
                yield found
        finally:
            await server.aclose()


# --- spec 000's commands, by battery id and by site id -----------------------------------------


@pytest.mark.parametrize("by", ["battery_id", "site_id"])
async def test_reserve_mode_and_name_reach_the_local_api_after_the_delay(rig: Rig, by: str) -> None:
    target: dict[str, Any] = (
        {"battery_id": rig.battery_id} if by == "battery_id" else {"site_id": rig.site_id}
    )
    before = await rig.reserve_and_mode()
    assert before[1] != OperationMode.AUTONOMOUS
    await rig.cloud.set_backup_reserve(60, **target)
    await rig.cloud.set_operation_mode(OperationMode.AUTONOMOUS, **target)
    await rig.cloud.set_site_name("Lake House", **target)
    # The name is the cloud's own record: shown at once, by the gateway too.
    assert (await rig.local.site_name()).site_name == "Lake House"
    await rig.sim.advance(DELAY_S - 1.0)
    assert await rig.reserve_and_mode() == before  # not yet
    info = await rig.cloud.site_info(rig.site_id)
    assert info.backup_reserve_app_percent != 60 and info.operation_mode == before[1]
    await rig.sim.advance(1.0)
    assert await rig.reserve_and_mode() == (pytest.approx(app_to_raw(60)), "autonomous")
    info = await rig.cloud.site_info(rig.site_id)
    assert info.backup_reserve_app_percent == pytest.approx(60.0)
    assert info.operation_mode == OperationMode.AUTONOMOUS
    assert info.site_name == "Lake House"
    family = "powerwalls" if by == "battery_id" else "energy_sites"
    posts = [(path, status) for method, path, status in rig.seen if method == "POST"]
    assert [path.rsplit("/", 1)[1] for path, _ in posts] == ["backup", "operation", "site_name"]
    assert all(path.startswith(f"/api/1/{family}/") and status == 200 for path, status in posts)


# --- the Fleet API's energy-site commands --------------------------------------------------------


async def test_storm_watch_charges_from_the_grid_after_the_delay(rig: Rig) -> None:
    rig.sim.override_solar(0.0)
    rig.sim.override_load(LOAD_W)
    _, battery_w, site_w = await rig.power_w()
    assert battery_w == pytest.approx(LOAD_W)  # self-powered: the battery serves the home
    assert site_w == pytest.approx(0.0, abs=1e-6)

    result = await rig.cloud.set_storm_watch(rig.site_id, True)
    assert result.code == 201
    assert (await rig.cloud.site_info(rig.site_id)).storm_mode_enabled is False  # not yet
    await rig.sim.advance(DELAY_S - 1.0)
    assert (await rig.power_w())[1] == pytest.approx(LOAD_W)
    await rig.sim.advance(1.0)
    _, battery_w, site_w = await rig.power_w()
    assert battery_w < -1_000.0  # charging towards full...
    assert site_w == pytest.approx(LOAD_W - battery_w)  # ...from the grid, home included
    info = await rig.cloud.site_info(rig.site_id)
    live = await rig.cloud.live_status(rig.site_id)
    assert info.storm_mode_enabled is True and live.storm_mode_active is True

    await rig.cloud.set_storm_watch(rig.site_id, False)
    await rig.sim.advance(DELAY_S)
    assert (await rig.power_w())[1] == pytest.approx(LOAD_W)  # off again: self-powered
    assert (await rig.cloud.site_info(rig.site_id)).storm_mode_enabled is False


async def test_grid_charging_off_stops_the_grid_charge_after_the_delay(rig: Rig) -> None:
    rig.sim.override_solar(0.0)
    rig.sim.override_load(LOAD_W)
    # Time-based control with the reserve above the charge: it charges back from the grid.
    await rig.cloud.set_operation_mode(OperationMode.AUTONOMOUS, site_id=rig.site_id)
    await rig.cloud.set_backup_reserve(90, site_id=rig.site_id)
    await rig.sim.advance(DELAY_S)
    _, battery_w, site_w = await rig.power_w()
    assert battery_w < 0.0 and site_w == pytest.approx(LOAD_W - battery_w)
    assert (await rig.cloud.site_info(rig.site_id)).grid_charging_allowed is True

    await rig.cloud.set_grid_import_export(rig.site_id, grid_charging_allowed=False)
    await rig.sim.advance(DELAY_S - 1.0)
    assert (await rig.power_w())[1] < 0.0  # not yet
    await rig.sim.advance(1.0)
    _, battery_w, site_w = await rig.power_w()
    assert battery_w == pytest.approx(0.0, abs=1e-6)  # no sun, no grid: nothing charges it
    assert site_w == pytest.approx(LOAD_W)
    info = await rig.cloud.site_info(rig.site_id)
    assert info.grid_charging_allowed is False
    # Tesla's field says the opposite of the method's argument, and the wire carries Tesla's.
    assert info.components is not None
    assert info.components.disallow_charge_from_grid_with_solar_installed is True
    assert info.raw["components"]["disallow_charge_from_grid_with_solar_installed"] is True


async def test_export_rule_never_ends_export_after_the_delay(rig: Rig) -> None:
    rig.sim.override_solar(20_000.0)  # more than the home and both Powerwalls can take
    rig.sim.override_load(500.0)
    solar_w, _, site_w = await rig.power_w()
    assert solar_w == pytest.approx(20_000.0) and site_w < -5_000.0  # pv_only: exports
    assert (await rig.cloud.site_info(rig.site_id)).export_rule == ExportRule.PV_ONLY

    await rig.cloud.set_grid_import_export(rig.site_id, export_rule=ExportRule.NEVER)
    await rig.sim.advance(DELAY_S - 1.0)
    assert (await rig.power_w())[2] < -5_000.0  # not yet
    await rig.sim.advance(1.0)
    solar_w, battery_w, site_w = await rig.power_w()
    assert site_w == pytest.approx(0.0, abs=1e-6)  # nothing goes to the grid
    assert solar_w == pytest.approx(500.0 - battery_w)  # solar curtailed to what is taken
    info = await rig.cloud.site_info(rig.site_id)
    assert info.export_rule == ExportRule.NEVER
    assert info.grid_charging_allowed is True  # the field not sent was left alone

    # Both fields at once, the rule as plain text.
    await rig.cloud.set_grid_import_export(
        rig.site_id, grid_charging_allowed=False, export_rule="battery_ok"
    )
    await rig.sim.advance(DELAY_S)
    info = await rig.cloud.site_info(rig.site_id)
    assert (info.export_rule, info.grid_charging_allowed) == (ExportRule.BATTERY_OK, False)
    assert rig.sim.gateway.site.export_rule == ExportRule.BATTERY_OK
    assert (await rig.power_w())[2] < -5_000.0  # solar surplus is exported again


async def test_off_grid_ev_reserve_lands_after_the_delay(rig: Rig) -> None:
    before = (await rig.cloud.site_info(rig.site_id)).off_grid_vehicle_charging_reserve_app_percent
    assert before is not None and before != 35.5
    await rig.cloud.set_off_grid_ev_reserve(rig.site_id, 35.5)
    await rig.sim.advance(DELAY_S - 1.0)
    info = await rig.cloud.site_info(rig.site_id)
    assert info.off_grid_vehicle_charging_reserve_app_percent == before
    await rig.sim.advance(1.0)
    info = await rig.cloud.site_info(rig.site_id)
    assert info.off_grid_vehicle_charging_reserve_app_percent == 35.5
    # The gateway holds it (its local API has no field for it; the site models no charger).
    assert rig.sim.gateway.site.off_grid_ev_reserve_app_percent == 35.5


async def test_a_tariff_is_sent_as_given_and_read_back(rig: Rig) -> None:
    assert (await rig.cloud.site_info(rig.site_id)).tariff_content_v2 is None
    result = await rig.cloud.set_time_of_use_settings(
        rig.site_id, {"tariff_content_v2": TARIFF, "optimization_strategy": "economics"}
    )
    assert result.code == 201
    info = await rig.cloud.site_info(rig.site_id)
    assert info.tariff_content_v2 == TARIFF


async def test_every_site_command_is_routed_and_answers_a_command_result(rig: Rig) -> None:
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "grid_import_export": lambda: rig.cloud.set_grid_import_export(rig.site_id, True),
        "storm_mode": lambda: rig.cloud.set_storm_watch(rig.site_id, False),
        "off_grid_vehicle_charging_reserve": lambda: rig.cloud.set_off_grid_ev_reserve(
            rig.site_id, 0
        ),
        "time_of_use_settings": lambda: rig.cloud.set_time_of_use_settings(
            rig.site_id, {"tariff_content_v2": {}}
        ),
    }
    assert set(calls) == set(SITE_COMMANDS)
    for command, call in calls.items():
        result = await call()
        assert (result.code, result.message) == (201, "Updated")
        assert rig.seen[-1] == ("POST", f"/api/1/energy_sites/{rig.site_id}/{command}", 200)
    assert rig.cloud.last_http_version == "HTTP/2"


@pytest.mark.parametrize("rig", ["fleet"], indirect=True)
async def test_the_fleet_flavour_sends_the_same_commands(rig: Rig) -> None:
    assert rig.tokens.fleet  # a Fleet API application's tokens, counted per partner
    await rig.cloud.set_storm_watch(rig.site_id, True)
    await rig.cloud.set_grid_import_export(rig.site_id, False, ExportRule.NEVER)
    await rig.cloud.set_off_grid_ev_reserve(rig.site_id, 45)
    await rig.sim.advance(DELAY_S)
    info = await rig.cloud.site_info(rig.site_id)
    assert (info.storm_mode_enabled, info.grid_charging_allowed) == (True, False)
    assert info.export_rule == ExportRule.NEVER
    assert info.off_grid_vehicle_charging_reserve_app_percent == 45
    site = rig.sim.gateway.site
    assert (site.storm_watch, site.grid_charging_allowed, site.export_rule) == (
        True,
        False,
        ExportRule.NEVER,
    )
    assert [status for _, _, status in rig.seen] == [200] * 4


# --- refused before sending ----------------------------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"x": value}
    return value


BAD_CALLS: list[tuple[str, Callable[[CloudClient, int], Awaitable[Any]], str]] = [
    ("no setting", lambda c, s: c.set_grid_import_export(s), "grid_charging_allowed/export_rule"),
    (
        "grid charging as 1",
        lambda c, s: c.set_grid_import_export(s, grid_charging_allowed=1),  # type: ignore[arg-type]
        "grid_charging_allowed",
    ),
    (
        "grid charging as 'off'",
        lambda c, s: c.set_grid_import_export(s, "off"),  # type: ignore[arg-type]
        "grid_charging_allowed",
    ),
    (
        "unknown export rule",
        lambda c, s: c.set_grid_import_export(s, export_rule="sometimes"),
        "export_rule",
    ),
    (
        "export rule in capitals",
        lambda c, s: c.set_grid_import_export(s, export_rule="NEVER"),
        "export_rule",
    ),
    ("storm watch as 'on'", lambda c, s: c.set_storm_watch(s, "on"), "enabled"),  # type: ignore[arg-type]
    ("storm watch as None", lambda c, s: c.set_storm_watch(s, None), "enabled"),  # type: ignore[arg-type]
    (
        "ev reserve over 100",
        lambda c, s: c.set_off_grid_ev_reserve(s, 100.5),
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "ev reserve below 0",
        lambda c, s: c.set_off_grid_ev_reserve(s, -1),
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "ev reserve nan",
        lambda c, s: c.set_off_grid_ev_reserve(s, float("nan")),
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "ev reserve as text",
        lambda c, s: c.set_off_grid_ev_reserve(s, "50"),  # type: ignore[arg-type]
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "ev reserve as true",
        lambda c, s: c.set_off_grid_ev_reserve(s, True),
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "tariff without tariff_content_v2",
        lambda c, s: c.set_time_of_use_settings(s, {"tariff": {}}),
        "tou_settings",
    ),
    (
        "tariff as a list",
        lambda c, s: c.set_time_of_use_settings(s, [TARIFF]),  # type: ignore[arg-type]
        "tou_settings",
    ),
    (
        "tariff too large",
        lambda c, s: c.set_time_of_use_settings(
            s, {"tariff_content_v2": {"name": "x" * TOU_SETTINGS_MAX_BYTES}}
        ),
        "tou_settings",
    ),
    (
        "tariff too deep",
        lambda c, s: c.set_time_of_use_settings(
            s, {"tariff_content_v2": _deep(TOU_SETTINGS_MAX_DEPTH)}
        ),
        "tou_settings",
    ),
    (
        "tariff not JSON",
        lambda c, s: c.set_time_of_use_settings(s, {"tariff_content_v2": {"at": object()}}),
        "tou_settings",
    ),
    ("site id as text", lambda c, s: c.set_storm_watch(str(s), True), "site_id"),  # type: ignore[arg-type]
    ("negative site id", lambda c, s: c.set_off_grid_ev_reserve(-s, 10), "site_id"),
]


@pytest.mark.parametrize(
    ("call", "field"), [b[1:] for b in BAD_CALLS], ids=[b[0] for b in BAD_CALLS]
)
async def test_bad_values_are_refused_before_anything_is_sent(
    rig: Rig, call: Callable[[CloudClient, int], Awaitable[Any]], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        await call(rig.cloud, rig.site_id)
    assert info.value.field == field
    assert info.value.allowed
    assert len(str(info.value)) < 400  # a huge value is named, never echoed whole
    assert rig.seen == []  # not a request, not even a token refresh
    assert rig.sim.gateway.pending_changes == {}


# --- the simulated cloud refuses bad bodies sent raw ------------------------------------------


BAD_BODIES: list[tuple[str, str, str]] = [
    ("grid_import_export", "{}", "is missing from the body"),
    ("grid_import_export", '{"grid_charging": true}', "is missing from the body"),
    (
        "grid_import_export",
        '{"disallow_charge_from_grid_with_solar_installed": "yes"}',
        "disallow_charge_from_grid_with_solar_installed",
    ),
    (
        "grid_import_export",
        '{"disallow_charge_from_grid_with_solar_installed": 0}',
        "disallow_charge_from_grid_with_solar_installed",
    ),
    (
        "grid_import_export",
        '{"customer_preferred_export_rule": "always"}',
        "customer_preferred_export_rule: 'always' is not allowed; expected one of pv_only, "
        "battery_ok, never",
    ),
    (
        "grid_import_export",  # one bad field refuses the whole body: nothing half-applied
        '{"disallow_charge_from_grid_with_solar_installed": true, '
        '"customer_preferred_export_rule": null}',
        "customer_preferred_export_rule",
    ),
    ("storm_mode", "{}", "enabled is missing from the body"),
    ("storm_mode", '{"enabled": "true"}', "enabled"),
    ("storm_mode", '{"enabled": 1}', "enabled"),
    (
        "off_grid_vehicle_charging_reserve",
        '{"off_grid_vehicle_charging_reserve_percent": 101}',
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "off_grid_vehicle_charging_reserve",
        '{"off_grid_vehicle_charging_reserve_percent": "20"}',
        "off_grid_vehicle_charging_reserve_percent",
    ),
    (
        "off_grid_vehicle_charging_reserve",
        '{"off_grid_vehicle_charging_reserve_percent": 1e999}',  # no infinity in JSON
        "not valid JSON",
    ),
    ("off_grid_vehicle_charging_reserve", "{}", "is missing from the body"),
    ("time_of_use_settings", '{"tou_settings": {}}', "tou_settings"),
    ("time_of_use_settings", '{"tou_settings": {"tariff_content_v2": []}}', "tou_settings"),
    ("time_of_use_settings", '{"tou_settings": "x"}', "tou_settings"),
    ("time_of_use_settings", "[1]", "JSON object"),
    (
        "time_of_use_settings",  # inside the 64 KiB body cap, past the tariff's own limit
        '{"tou_settings": {"tariff_content_v2": {"name": "' + "x" * TOU_SETTINGS_MAX_BYTES + '"}}}',
        f"at most {TOU_SETTINGS_MAX_BYTES} bytes",
    ),
    (
        "time_of_use_settings",  # inside the body's 32 levels, past the tariff's 24
        '{"tou_settings": {"tariff_content_v2": ' + '{"x": ' * 25 + "{}" + "}" * 25 + "}}",
        "too deeply nested",
    ),
    ("storm_mode", "{not json", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("command", "raw", "says"),
    BAD_BODIES,
    ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_BODIES)],
)
async def test_the_simulated_cloud_refuses_bad_bodies_with_a_400_naming_the_field(
    rig: Rig, command: str, raw: str, says: str
) -> None:
    before = rig.sim.cloud_site.site_info()
    async with httpx.AsyncClient(verify=rig.tls.client_context(), http2=True) as http:
        answer = await http.post(
            f"{rig.base_url}/api/1/energy_sites/{rig.site_id}/{command}",
            content=raw,
            headers={
                "Authorization": f"Bearer {rig.tokens.access_token}",
                "Content-Type": "application/json",
            },
        )
    assert answer.http_version == "HTTP/2"
    assert answer.status_code == 400
    body = answer.json()
    assert body["response"] is None and body["error"] == "invalid_request"
    assert says in body["error_description"]
    assert rig.sim.gateway.pending_changes == {}  # nothing waits to be applied
    await rig.sim.advance(DELAY_S)
    assert rig.sim.cloud_site.site_info() == before


@pytest.mark.parametrize("command", SITE_COMMANDS)
async def test_site_commands_are_not_served_by_battery_id(rig: Rig, command: str) -> None:
    # The Fleet API's energy commands exist under energy_sites only.
    async with httpx.AsyncClient(verify=rig.tls.client_context(), http2=True) as http:
        answer = await http.post(
            f"{rig.base_url}/api/1/powerwalls/{rig.battery_id}/{command}",
            json={"enabled": True},
            headers={"Authorization": f"Bearer {rig.tokens.access_token}"},
        )
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
