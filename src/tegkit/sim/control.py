"""The control API under /sim: move the clock, cause outages, override readings, inject faults.

Only loopback clients presenting the control token (Authorization: Bearer <token> or
X-Sim-Token) are answered; anyone else gets 403. The routes' OpenAPI description
(control_openapi, GET /sim/openapi.json) needs no token. Every route calls the same methods
as the Python API of `Simulator`, through the `Controller` protocol.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from aiohttp import web

from tegkit.models.vocabulary import MeterName, power_name
from tegkit.sim.bodies import MAX_BODY_BYTES, decode_json
from tegkit.sim.faults import FAULT_KINDS
from tegkit.sim.profiles import get_profile


class Controller(Protocol):
    """What the control API drives; the Simulator implements it."""

    def state(self) -> dict[str, Any]: ...
    def set_time(self, at: dt.datetime) -> None: ...
    def set_speed(self, speed: float) -> None: ...
    async def advance(self, seconds: float) -> None: ...
    def start_outage(self, minutes: float | None = None) -> None: ...
    def end_outage(self) -> None: ...
    def override_solar(self, power_w: float | None) -> None: ...
    def override_load(self, power_w: float | None) -> None: ...
    async def inject_fault(self, kind: str, **options: Any) -> dict[str, Any]: ...
    def clear_faults(self) -> None: ...
    def stop_sitemaster(self) -> None: ...
    def run_sitemaster(self) -> None: ...
    def offer_update(self, version: str | None, *, fail: bool = False) -> None: ...
    def start_update(self) -> bool: ...
    def release_firmware(
        self, version: str, auto_install_within_h: float = ..., at: dt.datetime | None = None
    ) -> dt.datetime | None: ...
    def revoke_cloud_tokens(self) -> None: ...


# As Simulator.MAX_JUMP_S (control does not import the runner): one call moves the clock by
# at most 31 days, so no request holds the server up for long.
_MAX_JUMP_S = 31 * 86400
_MAX_TEXT_CHARS = 100  # an ISO date-time has at most ~32

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller", Controller)
TOKEN: web.AppKey[str] = web.AppKey("control_token", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadInput(Exception):
    """A control request with input we reject; becomes 400."""


def _reply(status: int, body: Any) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(body), content_type="application/json"
    )


def _error(status: int, error: str) -> web.Response:
    return _reply(status, {"code": status, "error": error, "message": error})


def _loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _loopback(request.remote):
        return _error(403, "the control API answers loopback clients only")
    if request.match_info.route.handler is get_openapi:
        return await handler(request)  # documentation only: no token needed
    token = request.app[TOKEN]
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    given = given or request.headers.get("X-Sim-Token", "")
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return _error(403, "missing or wrong control token")
    try:
        return await handler(request)
    except BadInput as exc:
        return _error(400, str(exc))
    except ValueError as exc:
        return _error(400, str(exc))


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    body = decode_json(raw)  # BodyError (a ValueError) becomes 400
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def _number(
    body: dict[str, Any], key: str, *, low: float, high: float, optional: bool = True
) -> float | None:
    value = body.get(key)
    if value is None:
        if optional:
            return None
        raise BadInput(f"{key}: required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{key}: a number")
    if not low <= value <= high:
        raise BadInput(f"{key}: from {low:g} to {high:g}")
    return float(value)


async def get_state(request: web.Request) -> web.Response:
    return _reply(200, request.app[CONTROLLER].state())


def _instant(text: object) -> dt.datetime:
    if not isinstance(text, str) or len(text) > _MAX_TEXT_CHARS:
        raise BadInput("at: an ISO 8601 date-time with offset")
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInput("at: an ISO 8601 date-time with offset") from exc
    if at.tzinfo is None:
        raise BadInput("at: an ISO 8601 date-time with offset")
    return at


async def post_time(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    if "at" in body:
        ctl.set_time(_instant(body["at"]))
    speed = _number(body, "speed", low=0, high=100_000)
    if speed is not None:
        ctl.set_speed(speed)
    return _reply(200, ctl.state())


async def post_advance(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    seconds = _number(body, "seconds", low=0, high=_MAX_JUMP_S, optional=False)
    assert seconds is not None
    await ctl.advance(seconds)
    return _reply(200, ctl.state())


async def post_outage(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    ctl.start_outage(_number(body, "minutes", low=0, high=366 * 1440))
    return _reply(200, ctl.state())


async def delete_outage(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    ctl.end_outage()
    return _reply(200, ctl.state())


async def post_override(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    solar, load = power_name(MeterName.SOLAR), power_name(MeterName.LOAD)
    unknown = set(body) - {solar, load}
    if unknown:
        raise BadInput(f"{sorted(unknown)[0]}: unknown; use {solar} and/or {load}")
    if solar in body:
        ctl.override_solar(_number(body, solar, low=0, high=1e6))
    if load in body:
        ctl.override_load(_number(body, load, low=0, high=1e6))
    return _reply(200, ctl.state())


async def post_faults(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    kind = body.pop("kind", None)
    if kind not in FAULT_KINDS:
        raise BadInput("kind: one of " + ", ".join(FAULT_KINDS))
    allowed = {"count", "probability", "latency_ms", "status", "path_prefix", "seconds"}
    unknown = set(body) - allowed
    if unknown:
        raise BadInput(f"{sorted(unknown)[0]}: unknown option")
    result = await ctl.inject_fault(kind, **body)
    return _reply(200, result)


async def delete_faults(request: web.Request) -> web.Response:
    ctl = request.app[CONTROLLER]
    ctl.clear_faults()
    return _reply(200, ctl.state())


async def post_sitemaster(request: web.Request) -> web.Response:
    ctl, body = request.app[CONTROLLER], await _body(request)
    running = body.get("running")
    if not isinstance(running, bool):
        raise BadInput("running: true or false")
    if running:
        ctl.run_sitemaster()
    else:
        ctl.stop_sitemaster()
    return _reply(200, ctl.state())


async def post_update(request: web.Request) -> web.Response:
    """{"version": "23.44" | null, "fail": bool, "start": bool}: what the next update check
    finds, and (start) begin the update now, as a gateway does by itself."""
    ctl, body = request.app[CONTROLLER], await _body(request)
    unknown = set(body) - {"version", "fail", "start"}
    if unknown:
        raise BadInput(f"{sorted(unknown)[0]}: unknown; use version, fail and/or start")
    fail, start = body.get("fail", False), body.get("start", False)
    if not isinstance(fail, bool):
        raise BadInput("fail: true or false")
    if not isinstance(start, bool):
        raise BadInput("start: true or false")
    if "version" in body:
        version = body["version"]
        if version is not None and (not isinstance(version, str) or len(version) > 20):
            raise BadInput("version: a firmware profile name such as 23.44, or null")
        ctl.offer_update(version, fail=fail)  # ValueError (unknown firmware) becomes 400
    if start:
        ctl.start_update()
    return _reply(200, ctl.state())


async def post_firmware_release(request: web.Request) -> web.Response:
    """{"version": "23.44", "auto_install_within_h": 48, "at": ISO (optional, later)}: the
    firmware is released; unless an update is started first, the gateway installs it by
    itself at a seeded instant within that many hours (0: never). Answers the state, whose
    update.auto_install_at says when (once released)."""
    ctl, body = request.app[CONTROLLER], await _body(request)
    unknown = set(body) - {"version", "auto_install_within_h", "at"}
    if unknown:
        raise BadInput(f"{sorted(unknown)[0]}: unknown; use version, auto_install_within_h, at")
    version = body.get("version")
    if not isinstance(version, str) or len(version) > 20:
        raise BadInput("version: a firmware profile name such as 23.44")
    try:
        get_profile(version)
    except ValueError as exc:
        raise BadInput(f"version: {exc}") from exc
    at = _instant(body["at"]) if "at" in body else None
    if "auto_install_within_h" in body:
        within_h = _number(body, "auto_install_within_h", low=0, high=366 * 24, optional=False)
        assert within_h is not None
        ctl.release_firmware(version, within_h, at=at)
    else:
        ctl.release_firmware(version, at=at)
    return _reply(200, ctl.state())


async def post_cloud_revoke(request: web.Request) -> web.Response:
    """The owner revokes the app's cloud access: both Owner API tokens stop working."""
    request.app[CONTROLLER].revoke_cloud_tokens()
    return _reply(200, {"revoked": True})


async def get_openapi(request: web.Request) -> web.Response:
    """These routes' OpenAPI 3.1 description (control_openapi, which reads this module)."""
    from tegkit.sim.control_openapi import document_bytes

    return web.Response(body=document_bytes(), content_type="application/json")


def make_control_app(controller: Controller, token: str) -> web.Application:
    """The /sim sub-application (mount it with add_subapp("/sim", ...))."""
    app = web.Application(middlewares=[_guard])
    app[CONTROLLER] = controller
    app[TOKEN] = token
    app.router.add_get("/state", get_state)
    app.router.add_post("/time", post_time)
    app.router.add_post("/advance", post_advance)
    app.router.add_post("/outage", post_outage)
    app.router.add_delete("/outage", delete_outage)
    app.router.add_post("/override", post_override)
    app.router.add_post("/faults", post_faults)
    app.router.add_delete("/faults", delete_faults)
    app.router.add_post("/sitemaster", post_sitemaster)
    app.router.add_post("/update", post_update)
    app.router.add_post("/firmware_release", post_firmware_release)
    app.router.add_post("/cloud/revoke", post_cloud_revoke)
    app.router.add_get("/openapi.json", get_openapi)
    return app


__all__ = ["CONTROLLER", "TOKEN", "Controller", "make_control_app"]
