"""The simulated Owner API: Tesla's cloud for one energy site, served by aiohttp.

`make_owner_api_app(site, tokens)` answers the token refresh grant, the product list, live
status, site info and the backup / site_name / operation commands by battery id and by
energy site id, in the {"response": ...} envelope. It talks to the site only through the
`CloudSite` protocol, so the same gateway state serves the local and the cloud API. Percents
here are on the APP scale; the site converts to raw.

Success shapes per command follow `tegkit.ownerapi.DEFAULT_SUCCESS_SHAPES` (powerwalls/* and
energy_sites/backup|operation: {"code": 201, "message": "Updated"}; energy_sites/site_name:
{"Code": 200, "Message": "Site name updated"}); `success_shapes` overrides them for tests.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from tegkit.errors import InvalidInputError
from tegkit.ownerapi import (
    COMMAND_FIELDS,
    COMMANDS,
    DEFAULT_SUCCESS_SHAPES,
    OAUTH_CLIENT_ID,
    TOKEN_PATH,
    Command,
    Family,
    SuccessShape,
    check_command_value,
    success_body,
)

DEFAULT_ACCESS_TTL_S = 8 * 3600.0  # what the auth host states in expires_in


class CloudSite(Protocol):
    """What the simulated cloud needs of a site; the simulator's gateway state implements it.

    Percents are on the APP scale; the implementation converts to the gateway's raw scale.
    """

    @property
    def energy_site_id(self) -> int: ...

    @property
    def battery_id(self) -> str: ...

    @property
    def site_name(self) -> str: ...

    def live_status(self) -> dict[str, Any]:
        """Owner API live_status fields (solar_power, percentage_charged in app percent...)."""
        ...

    def site_info(self) -> dict[str, Any]:
        """Owner API site_info fields (backup_reserve_percent in app percent...)."""
        ...

    def set_backup_reserve_app_percent(self, p: float) -> None: ...

    def set_site_name(self, name: str) -> None: ...

    def set_operation_mode(self, mode: str) -> None: ...


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(eq=False)
class CloudTokens:
    """The account's one valid token pair; rotated (both tokens) by every refresh grant.

    Expiry runs on the monotonic clock of the process; `expire_access_token()` ends the
    current access token at once, for tests.
    """

    access_ttl_s: float = DEFAULT_ACCESS_TTL_S
    access_token: str = field(default_factory=_new_token, repr=False)
    refresh_token: str = field(default_factory=_new_token, repr=False)
    refresh_count: int = field(default=0, init=False)
    _access_expires_mono_s: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._access_expires_mono_s = time.monotonic() + self.access_ttl_s

    @property
    def access_expires_at_s(self) -> float:
        """Unix time at which the current access token stops working."""
        return time.time() + (self._access_expires_mono_s - time.monotonic())

    def access_problem(self, token: str | None) -> str | None:
        """Why `token` is not a usable access token now, or None when it is."""
        if not token:
            return "no bearer token"
        if not hmac.compare_digest(token.encode(), self.access_token.encode()):
            return "unknown bearer token"
        if time.monotonic() >= self._access_expires_mono_s:
            return "bearer token expired"
        return None

    def expire_access_token(self) -> None:
        """Make the current access token expired (the refresh token stays valid)."""
        self._access_expires_mono_s = time.monotonic() - 1.0

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """The grant answer for a known refresh token (both tokens rotate), else None."""
        if not hmac.compare_digest(refresh_token.encode(), self.refresh_token.encode()):
            return None
        self.access_token = _new_token()
        self.refresh_token = _new_token()
        self._access_expires_mono_s = time.monotonic() + self.access_ttl_s
        self.refresh_count += 1
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": int(self.access_ttl_s),
            "token_type": "Bearer",
        }


_SITE = web.AppKey("owner_api_site", CloudSite)
_TOKENS = web.AppKey("owner_api_tokens", CloudTokens)


# --- answers ----------------------------------------------------------------------------------


def _ok(response: Any, **extra: Any) -> web.Response:
    return web.json_response({"response": response, **extra})


def _error(status: int, error: str, description: str) -> web.Response:
    body = {"response": None, "error": error, "error_description": description}
    return web.json_response(body, status=status)


class _Reply(Exception):
    """Stop handling and send this error answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _bad_request(description: str) -> _Reply:
    return _Reply(_error(400, "invalid_request", description))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _json_object(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise _bad_request("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


@web.middleware
async def _envelope_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bearer auth for /api/, and every error as an envelope (never a bare 404 or 500 page)."""
    try:
        if request.path.startswith("/api/"):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            problem = request.app[_TOKENS].access_problem(
                token.strip() if scheme.lower() == "bearer" else None
            )
            if problem is not None:
                response = _error(401, "invalid bearer token", problem)
                response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                return response
        return await handler(request)
    except _Reply as reply:
        return reply.response
    except InvalidInputError as exc:
        return _error(400, "invalid_request", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


# --- handlers -----------------------------------------------------------------------------------


async def _token(request: web.Request) -> web.Response:
    body = await _json_object(request)
    if body.get("grant_type") != "refresh_token":
        raise _Reply(_oauth_error(400, "unsupported_grant_type", "only refresh_token is served"))
    if body.get("client_id") != OAUTH_CLIENT_ID:
        raise _Reply(_oauth_error(401, "invalid_client", "unknown client_id"))
    refresh_token = body.get("refresh_token")
    grant = None
    if isinstance(refresh_token, str) and refresh_token:
        grant = request.app[_TOKENS].refresh(refresh_token)
    if grant is None:
        raise _Reply(_oauth_error(401, "invalid_grant", "the refresh token is invalid"))
    return web.json_response(grant)


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    # The auth host answers OAuth errors without the Owner API envelope.
    return web.json_response({"error": error, "error_description": description}, status=status)


def _check_site_id(request: web.Request) -> CloudSite:
    site = request.app[_SITE]
    if request.match_info["site_id"] != str(site.energy_site_id):
        raise _Reply(_error(404, "not_found", "no energy site with that id on this account"))
    return site


def _check_battery_id(request: web.Request) -> CloudSite:
    site = request.app[_SITE]
    if request.match_info["battery_id"] != site.battery_id:
        raise _Reply(_error(404, "not_found", "no battery with that id on this account"))
    return site


async def _products(request: web.Request) -> web.Response:
    site = request.app[_SITE]
    live = site.live_status()
    info = site.site_info()
    product: dict[str, Any] = {
        "energy_site_id": site.energy_site_id,
        "resource_type": "battery",
        "site_name": site.site_name,
        "id": site.battery_id,
        "gateway_id": info.get("gateway_id"),
        "battery_type": "ac_powerwall",
        "components": info.get("components", {"battery": True, "solar": True, "grid": True}),
    }
    for key in ("energy_left", "total_pack_energy", "percentage_charged", "battery_power"):
        if key in live:
            product[key] = live[key]
    product["backup_capable"] = live.get("backup_capable", True)
    return _ok([product], count=1)


async def _live_status(request: web.Request) -> web.Response:
    return _ok(_check_site_id(request).live_status())


async def _site_info(request: web.Request) -> web.Response:
    return _ok(_check_site_id(request).site_info())


def _command_handler(
    family: Family, command: Command, shape: SuccessShape
) -> Callable[[web.Request], Awaitable[web.Response]]:
    field_name = COMMAND_FIELDS[command]

    async def handle(request: web.Request) -> web.Response:
        site = _check_battery_id(request) if family == "powerwalls" else _check_site_id(request)
        body = await _json_object(request)
        if field_name not in body:
            raise _bad_request(f"{field_name} is missing from the body")
        value = check_command_value(command, body[field_name])
        if command == "backup":
            site.set_backup_reserve_app_percent(float(value))
            message = "Updated"
        elif command == "operation":
            site.set_operation_mode(value)
            message = "Updated"
        else:
            site.set_site_name(value)
            message = "Site name updated" if shape == "Code" else "Updated"
        return _ok(success_body(shape, message))

    return handle


def make_owner_api_app(
    site: CloudSite,
    tokens: CloudTokens,
    *,
    success_shapes: Mapping[tuple[Family, Command], SuccessShape] | None = None,
) -> web.Application:
    """The Owner API (and its auth host's token endpoint) for one site, as an aiohttp app."""
    shapes = {**DEFAULT_SUCCESS_SHAPES, **(success_shapes or {})}
    app = web.Application(middlewares=[_envelope_middleware])
    app[_SITE] = site
    app[_TOKENS] = tokens
    app.router.add_post(TOKEN_PATH, _token)
    app.router.add_get("/api/1/products", _products)
    app.router.add_get("/api/1/energy_sites/{site_id}/live_status", _live_status)
    app.router.add_get("/api/1/energy_sites/{site_id}/site_info", _site_info)
    for command in COMMANDS:
        app.router.add_post(
            f"/api/1/powerwalls/{{battery_id}}/{command}",
            _command_handler("powerwalls", command, shapes["powerwalls", command]),
        )
        app.router.add_post(
            f"/api/1/energy_sites/{{site_id}}/{command}",
            _command_handler("energy_sites", command, shapes["energy_sites", command]),
        )
    return app


__all__ = ["DEFAULT_ACCESS_TTL_S", "CloudSite", "CloudTokens", "make_owner_api_app"]
