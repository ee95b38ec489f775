"""tegkit.route: which way a change goes (firmware, role, cloud), and the local read-back.

The decisions are checked against real simulated gateways over HTTPS: before 20.49 a local
change works for anyone; from 20.49 a customer's local POST is refused (403) and an
installer's works; a customer's change then goes through the simulator's cloud and is read
back locally, or, with no cloud configured, fails with an error that says how to set one up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tegkit import percent
from tegkit.client import Gateway, PinnedCertificate
from tegkit.errors import InvalidInputError, PermissionDeniedError
from tegkit.models import Operation
from tegkit.monitor.demo import demo_cloud
from tegkit.route import (
    CloudTarget,
    LocalSide,
    OperationChange,
    Route,
    RouteUnavailableError,
    change_operation,
    decide,
    local_allowed,
)
from tegkit.sim import Simulator


@pytest.mark.parametrize(
    ("version", "role", "allowed"),
    [
        ("1.40.2", "customer", True),
        ("20.48.1", "customer", True),
        ("20.49.0 ec4d3ec6", "customer", False),
        ("21.44 223a56cd", "customer", False),
        ("23.44.0 eb113390", "customer", False),
        ("21.44 223a56cd", "installer", True),
        ("1.40.2", "installer", True),
        (None, "customer", None),
        ("garbage", "customer", None),
    ],
)
def test_local_allowed_follows_firmware_and_role(
    version: str | None, role: str, allowed: bool | None
) -> None:
    assert local_allowed(version, role) is allowed


def test_decide_auto_local_cloud() -> None:
    modern, legacy = "21.44 223a56cd", "1.40.2"
    assert decide("auto", legacy, "customer", True).route is Route.LOCAL
    assert decide("auto", modern, "installer", True).route is Route.LOCAL
    cloud = decide("auto", modern, "customer", True)
    assert cloud.route is Route.CLOUD and "20.49" in cloud.reason
    # nothing else to try: locally once, a 403 becomes the clear error
    assert decide("auto", modern, "customer", False).may_be_refused
    assert decide("auto", None, "customer", True).may_be_refused
    assert decide("local", modern, "customer", True).route is Route.LOCAL
    assert decide("cloud", legacy, "installer", True).route is Route.CLOUD
    with pytest.raises(RouteUnavailableError) as no_cloud:
        decide("cloud", modern, "customer", False)
    assert "teg cloud token import" in str(no_cloud.value)
    with pytest.raises(InvalidInputError) as bad:
        decide("pigeon", modern, "customer", True)  # type: ignore[arg-type]
    assert bad.value.field == "via"


def test_a_change_is_checked_before_anything_is_sent() -> None:
    for kwargs, field in [
        ({"backup_reserve_percent": 50}, "scale"),
        ({"backup_reserve_percent": 101, "scale": "app"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": float("nan"), "scale": "raw"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": "50", "scale": "app"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": True, "scale": "app"}, "backup_reserve_percent"),
    ]:
        with pytest.raises(InvalidInputError) as refused:
            OperationChange.of(**kwargs)  # type: ignore[arg-type]
        assert refused.value.field == field, kwargs
    change = OperationChange.of("backup", 20, "app")
    assert change.backup_reserve_raw_percent == 24.0 and change.backup_reserve_app_percent == 20


# --- against simulated gateways -------------------------------------------------------------


@asynccontextmanager
async def gateway(sim: Simulator, role: str) -> AsyncIterator[tuple[Gateway, LocalSide]]:
    gw = Gateway(
        sim.url,
        password=sim.password,
        email=sim.email,
        username=role,
        tls=PinnedCertificate(sim.fingerprint_sha256),
    )

    async def version() -> str | None:
        return (await gw.status()).version

    async def set_locally(change: OperationChange) -> object:
        raw = change.backup_reserve_raw_percent
        return await gw.set_operation(
            mode=change.mode, backup_reserve_percent=raw, scale=None if raw is None else "raw"
        )

    try:
        yield gw, LocalSide(version, set_locally, gw.operation)
    finally:
        await gw.close()


def _posts(sim: Simulator) -> int:
    """Local changes the gateway committed (each POST /api/operation is committed)."""
    return sim.gateway.settings.commission_count


@pytest.mark.parametrize(
    ("firmware", "role", "route"),
    [
        ("1.40", "customer", Route.LOCAL),
        ("1.40", "installer", Route.LOCAL),
        ("20.49", "customer", Route.CLOUD),
        ("20.49", "installer", Route.LOCAL),
        ("21.44", "customer", Route.CLOUD),
        ("21.44", "installer", Route.LOCAL),
    ],
)
async def test_auto_picks_the_route_the_gateway_takes(
    firmware: str, role: str, route: Route, tmp_path: Path
) -> None:
    async with Simulator(port=0, firmware=firmware, speed=0) as sim:
        cloud = await demo_cloud(sim, tmp_path)
        try:
            async with gateway(sim, role) as (_, local):
                commits = _posts(sim)
                change = OperationChange.of("backup", 42, "app")
                outcome = await change_operation(local, change, cloud=cloud, role=role)
            assert outcome.route is route, outcome.reason
            assert outcome.confirmed and outcome.operation is not None
            assert change.seen_in(outcome.operation)
            assert sim.gateway.mode == "backup"
            assert sim.gateway.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(42))
            # the cloud route never POSTs locally; the local one stages and commits once
            assert _posts(sim) == commits + (route is Route.LOCAL)
        finally:
            await cloud.client.close()


@pytest.mark.parametrize("firmware", ["20.49", "21.44"])
async def test_a_customer_without_a_cloud_is_told_how_to_configure_it(firmware: str) -> None:
    async with Simulator(port=0, firmware=firmware, speed=0) as sim:
        before = sim.gateway.backup_reserve_raw_percent
        async with gateway(sim, "customer") as (_, local):
            with pytest.raises(RouteUnavailableError) as refused:
                await change_operation(local, OperationChange.of(None, 70, "app"))
        message = str(refused.value)
        assert firmware in message and "20.49" in message
        assert "teg cloud token import" in message
        assert isinstance(refused.value, PermissionDeniedError)  # exit code 9, a 403 in kind
        assert sim.gateway.backup_reserve_raw_percent == before


async def test_forced_local_on_21_44_is_the_gateways_own_refusal(tmp_path: Path) -> None:
    async with Simulator(port=0, speed=0) as sim:
        cloud = await demo_cloud(sim, tmp_path)
        try:
            async with gateway(sim, "customer") as (_, local):
                with pytest.raises(PermissionDeniedError) as refused:
                    await change_operation(
                        local, OperationChange.of("backup"), via="local", cloud=cloud
                    )
            assert not isinstance(refused.value, RouteUnavailableError)
            assert sim.gateway.pending_changes == {}  # the cloud was not used
        finally:
            await cloud.client.close()


async def test_the_read_back_waits_for_the_cloud_change_to_arrive(tmp_path: Path) -> None:
    async with Simulator(port=0, speed=0, cloud_delay_s=60) as sim:
        cloud = await demo_cloud(sim, tmp_path)
        try:
            async with gateway(sim, "customer") as (gw, local):
                reads: list[Operation] = []

                async def operation() -> Operation:
                    now = await gw.operation()
                    reads.append(now)
                    if len(reads) == 2:  # the change arrives between the 2nd and 3rd read
                        await sim.advance(61)
                    return now

                watched = LocalSide(local.firmware_version, local.set_operation, operation)
                change = OperationChange.of(None, 64, "app")
                outcome = await change_operation(watched, change, cloud=cloud, poll_s=0)
            assert outcome.route is Route.CLOUD and outcome.confirmed
            assert outcome.reads == 3 and not change.seen_in(reads[1])
            assert "read back locally" in outcome.note
        finally:
            await cloud.client.close()


async def test_a_change_not_seen_in_time_is_reported_as_sent_not_done(tmp_path: Path) -> None:
    async with Simulator(port=0, speed=0, cloud_delay_s=3600) as sim:
        cloud = await demo_cloud(sim, tmp_path)
        before = sim.gateway.backup_reserve_raw_percent
        try:
            async with gateway(sim, "customer") as (_, local):
                change = OperationChange.of(None, 90, "app")
                outcome = await change_operation(
                    local, change, via="cloud", cloud=cloud, wait_s=0.2, poll_s=0.05
                )
            assert outcome.route is Route.CLOUD and not outcome.confirmed
            assert outcome.operation is not None
            assert outcome.operation.backup_reserve_raw_percent == before  # what it reports
            assert outcome.reads >= 2
            assert "not yet seen locally" in outcome.note
            assert outcome.fields()["read_back"] == "not_seen"
            assert len(sim.gateway.pending_changes) == 1  # sent, waiting in the cloud
        finally:
            await cloud.client.close()


async def test_the_pv_export_limit_never_goes_to_the_cloud(tmp_path: Path) -> None:
    async with Simulator(port=0, speed=0) as sim:
        cloud = await demo_cloud(sim, tmp_path)
        try:
            async with gateway(sim, "customer") as (_, local):
                change = OperationChange.of("backup", max_pv_export_power_kw=5.0)
                with pytest.raises(InvalidInputError) as refused:
                    await change_operation(local, change, cloud=cloud)
            assert refused.value.field == "max_pv_export_power_kw"
            assert sim.gateway.pending_changes == {} and sim.gateway.mode != "backup"
        finally:
            await cloud.client.close()


async def test_a_cloud_target_repr_hides_the_tokens() -> None:
    from tegkit.cloud import CloudClient

    async with CloudClient("secret-access-token", "secret-refresh-token") as client:
        assert "secret" not in repr(CloudTarget(client, site_id=1))
