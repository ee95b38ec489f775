"""Test helpers for the cloud tests: a TLS pair, a stand-in CloudSite, a running simulated cloud."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tegkit.cloud import CloudClient
from tegkit.percent import app_to_raw, raw_to_app
from tegkit.sim.certs import generate_certificate
from tegkit.sim.cloud_server import CloudServer
from tegkit.sim.owner_api import CloudTokens, OwnerApiApp

SITE_ID = 1234567890123
BATTERY_ID = "STE20211231-00042"


@dataclass(frozen=True)
class TlsPair:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


class FakeSite:
    """A plain CloudSite holding gateway state on the RAW scale, as the gateway keeps it.

    It stands in for the simulator's gateway state until the simulator implements CloudSite;
    like it, it converts the Owner API's app percents to raw and back.
    """

    def __init__(self) -> None:
        self.energy_site_id = SITE_ID
        self.battery_id = BATTERY_ID
        self.site_name = "My Home"
        self.reserve_raw_percent = app_to_raw(20.0)
        self.soe_raw_percent = app_to_raw(80.0)
        self.mode = "self_consumption"

    def live_status(self) -> dict[str, Any]:
        return {
            "solar_power": 3470,
            "energy_left": 10720.5,
            "total_pack_energy": 13500,
            "percentage_charged": raw_to_app(self.soe_raw_percent),
            "backup_capable": True,
            "battery_power": -1250.5,
            "load_power": 1450,
            "grid_status": "Active",
            "grid_services_active": False,
            "grid_power": -770.5,
            "generator_power": 0,
            "island_status": "on_grid",
            "storm_mode_active": False,
            "timestamp": "2024-05-01T12:32:05+02:00",
            "wall_connectors": [],
        }

    def site_info(self) -> dict[str, Any]:
        return {
            "id": BATTERY_ID,
            "site_name": self.site_name,
            "backup_reserve_percent": raw_to_app(self.reserve_raw_percent),
            "default_real_mode": self.mode,
            "installation_time_zone": "Europe/Berlin",
            "nameplate_power": 5000,
            "nameplate_energy": 13500,
            "battery_count": 1,
            "version": "23.44.0",
            "gateway_id": "1118431-00-L--TG0000000000",
        }

    def set_backup_reserve_app_percent(self, p: float) -> None:
        self.reserve_raw_percent = app_to_raw(p)

    def set_site_name(self, name: str) -> None:
        self.site_name = name

    def set_operation_mode(self, mode: str) -> None:
        self.mode = mode


@dataclass
class Cloud:
    """A running simulated Owner API and what it saw."""

    base_url: str
    site: FakeSite
    tokens: CloudTokens
    ssl: ssl.SSLContext
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    http_versions: list[str] = field(default_factory=list)  # as the server saw each request

    def count(self, path_part: str = "", method: str | None = None) -> int:
        return sum(1 for m, path, _ in self.seen if path_part in path and method in (None, m))

    def client(self, tmp_token_file: Path | None = None, **kw: Any) -> CloudClient:
        return CloudClient(
            self.tokens.access_token,
            self.tokens.refresh_token,
            base_url=self.base_url,
            auth_url=self.base_url,
            ssl=self.ssl,
            token_file=tmp_token_file,
            **kw,
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Asgi = Callable[[Any, Any, Any], Awaitable[None]]


async def serve_asgi(app: Asgi, tls: TlsPair) -> AsyncGenerator[str, None]:
    """An ASGI app on 127.0.0.1 over TLS, HTTP/2 and HTTP/1.1 (the simulator's cloud server)."""
    server = await CloudServer.start(app, "127.0.0.1", 0, tls.server_context())
    try:
        yield f"https://127.0.0.1:{server.port}"
    finally:
        await server.close()


def record(app: OwnerApiApp, cloud: Cloud) -> None:
    """Note every request the app answers in `cloud.seen` and `cloud.http_versions`."""

    def note(scope: Any, status: int) -> None:
        cloud.seen.append((scope["method"], scope["path"], status))
        cloud.http_versions.append(scope["http_version"])

    app.on_request.append(note)


async def serve(app: web.Application, tls: TlsPair) -> AsyncGenerator[str, None]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def make_tls_pair(folder: Path) -> TlsPair:
    """A self-signed certificate for 127.0.0.1 and its key, written to `folder`."""
    pair = TlsPair(folder / "cert.pem", folder / "key.pem")
    generate_certificate(pair.cert, pair.key, common_name="owner-api.test", loopback_names=True)
    return pair
