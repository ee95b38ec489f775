"""Writes: set_operation validates before sending and converts the reserve to raw percent."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tegkit.client import Gateway
from tegkit.errors import InvalidInputError

PASSWORD = "hunter2-secret"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"backup_reserve_percent": 150, "scale": "app"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": -1, "scale": "raw"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": float("nan"), "scale": "raw"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": True, "scale": "raw"}, "backup_reserve_percent"),
        ({"backup_reserve_percent": 20}, "scale"),
        ({"backup_reserve_percent": 20, "scale": "percent"}, "scale"),
        ({"mode": "turbo"}, "mode"),
        ({}, "mode"),
    ],
)
async def test_invalid_operation_is_refused_before_sending(
    kwargs: dict[str, Any], field: str, fake: Any, address: str, pinned: Any
) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(InvalidInputError) as caught:
            await gw.set_operation(**kwargs)
    assert caught.value.field == field
    assert fake.total == 0


async def test_set_operation_sends_raw_and_commits(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        result = await gw.set_operation(
            mode="self_consumption", backup_reserve_percent=20, scale="app"
        )
    posted = [body for key, body in fake.bodies if key == "POST /api/operation"]
    assert posted == [{"mode": "self_consumption", "backup_reserve_percent": 24}]
    assert result.mode == "self_consumption"
    assert result.backup_reserve_raw_percent == 24
    assert result.backup_reserve_app_percent == pytest.approx(20)
    assert fake.hits["GET /api/config/completed"] == 1


async def test_reserve_alone_keeps_the_mode(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.set_operation(backup_reserve_percent=50, scale="raw", commit=False)
    posted = [body for key, body in fake.bodies if key == "POST /api/operation"]
    assert posted == [{"mode": "autonomous", "backup_reserve_percent": 50}]
    assert fake.hits["GET /api/config/completed"] == 0


async def test_scheduler_mode_warns(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.warns(UserWarning, match="scheduler"):
            await gw.set_operation(mode="scheduler", commit=False)
    assert fake.hits["POST /api/operation"] == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "bad\nname"])
async def test_invalid_site_name(name: str, fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(InvalidInputError, match="name"):
            await gw.set_site_name(name)
    assert fake.total == 0


async def test_set_site_name(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.set_site_name("Home – garage")
    assert ("POST /api/site_info/site_name", {"site_name": "Home – garage"}) in fake.bodies


async def test_sitemaster_stop_falls_back_to_get(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("POST /api/sitemaster/stop", fault(status=404))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.login()
        await gw.sitemaster_stop()
        await gw.sitemaster_stop()  # the 404 is remembered: straight to GET
    assert fake.hits["POST /api/sitemaster/stop"] == 1
    assert fake.hits["GET /api/sitemaster/stop"] == 2


async def test_sitemaster_stop_posts_force(fake: Any, address: str, pinned: Any) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await gw.sitemaster_stop()
    assert ("POST /api/sitemaster/stop", {"force": True}) in fake.bodies
    assert fake.hits["GET /api/sitemaster/stop"] == 0


async def test_change_password_uses_the_new_one_for_later_logins(
    fake: Any, address: str, pinned: Any
) -> None:
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        await gw.change_password(PASSWORD, "new-secret")
        fake.password = "new-secret"
        fake.expire_sessions()
        assert (await gw.operation()).mode
    assert fake.logins == 2
