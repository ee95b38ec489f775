"""The local API as an aiohttp app: routes from the catalog, auth, rate limits, faults, errors.

One catch-all handler serves every path. It asks the fault injector first, then the catalog
(`match` for the entry and its parameters, `methods_for` for 405), then applies the entry's
auth rule for the firmware family, the per-endpoint rate limit and the stopped-system rule
(live endpoints: 502 with an empty body), and last calls the read builder or write action.
Anything a handler raises becomes a gateway error body; nothing leaks a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from tegkit import catalog
from tegkit.catalog import Auth, Endpoint
from tegkit.sim.actions import ACTIONS, accepted
from tegkit.sim.bodies import MAX_BODY_BYTES, BodyError, decode_json
from tegkit.sim.faults import FaultInjector
from tegkit.sim.gateway import ROLE_CUSTOMER, Refusal, SimulatedGateway, not_found, rate_limited
from tegkit.sim.replay import Captured, Replay
from tegkit.sim.responses import READS

log = logging.getLogger(__name__)

_JSON_HEADERS = {
    "Cache-Control": "no-cache, no-store",
    "Content-Type": "application/json",
    "X-Content-Type-Options": "nosniff",
}
_EMPTY_HEADERS = {"Cache-Control": "no-cache, no-store"}
_GENERIC = "GET /api/{resource}"

GATEWAY: web.AppKey[SimulatedGateway] = web.AppKey("gateway", SimulatedGateway)
FAULTS: web.AppKey[FaultInjector] = web.AppKey("faults", FaultInjector)
REPLAY: web.AppKey[Replay | None] = web.AppKey("replay")
_encoder = msgspec.json.Encoder()


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A gateway JSON answer with the captured headers (body None: empty, no content type)."""
    if body is None:
        return web.Response(status=status, headers={**_EMPTY_HEADERS, **(headers or {})})
    if isinstance(body, bytes):
        raw, kind = body, {"Content-Type": "application/octet-stream"}
        return web.Response(status=status, body=raw, headers={**_EMPTY_HEADERS, **kind})
    return web.Response(
        status=status, body=_encoder.encode(body), headers={**_JSON_HEADERS, **(headers or {})}
    )


def error_response(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_response(status, {"code": status, "error": error, "message": message}, headers)


def _refused(refusal: Refusal) -> web.Response:
    return error_response(refusal.status, refusal.error, refusal.message, refusal.headers)


def _no_access(method: str) -> tuple[str, str]:
    """The error and message of the gateway's 401 / 403 for a request it will not serve."""
    return f"Unable to {method} to resource", "User does not have adequate access rights"


def stopped_response() -> web.Response:
    """502 with an empty body and no content type, as a stopped gateway answers."""
    return web.Response(status=502, headers=_EMPTY_HEADERS)


class RateLimiter:
    """Sliding-window request limits per catalog key ("GET /api/meters/aggregates" or "*")."""

    def __init__(self, limits: Mapping[str, tuple[int, float]] | None = None) -> None:
        self.limits: dict[str, tuple[int, float]] = dict(limits or {})
        self._seen: dict[str, deque[float]] = {}

    def check(self, key: str) -> float | None:
        """None when the request may go ahead, else seconds until it may (real time)."""
        rule_key = key if key in self.limits else "*" if "*" in self.limits else None
        if rule_key is None:
            return None
        max_requests, window_s = self.limits[rule_key]
        now = time.monotonic()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - window_s:
            seen.popleft()
        if len(seen) >= max_requests:
            return max(0.0, seen[0] + window_s - now)
        seen.append(now)
        return None


RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get("AuthCookie")


async def _json_body(request: web.Request) -> Any:
    """The decoded JSON body, None when there is none; Refusal 400 when it is too large, not
    JSON or nested too deeply (see `bodies`)."""
    if not request.body_exists:
        return None
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Refusal(400, f"body: at most {MAX_BODY_BYTES} bytes", "Invalid request body")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    try:
        return decode_json(raw)
    except BodyError as exc:
        raise Refusal(400, str(exc), "Invalid request body") from exc


def _login(gw: SimulatedGateway, body: Any) -> web.Response:
    if body is not None and not isinstance(body, dict):
        raise Refusal(400, "body: a JSON object {username, email, password}", "Login Error")
    fields = body or {}
    session = gw.login(
        fields.get("username"),
        fields.get("email"),
        fields.get("password"),
        fields.get("force_sm_off"),
    )
    reply = gw.login_record(session)
    if gw.profile.legacy:  # a Bearer token only: no cookies
        return json_response(200, reply)
    response = json_response(200, reply)
    max_age = int(gw.session_lifetime_s)
    response.set_cookie(
        "AuthCookie",
        session.token,
        path="/",
        max_age=max_age,
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    response.set_cookie(
        "UserRecord",
        gw.user_record(session),
        path="/",
        max_age=max_age,
        secure=True,
        samesite="Strict",
    )
    return response


def _logout(gw: SimulatedGateway, request: web.Request) -> web.Response:
    gw.logout(_token(request))
    response = web.Response(status=204, headers=_EMPTY_HEADERS)
    response.del_cookie("AuthCookie", path="/")
    response.del_cookie("UserRecord", path="/")
    return response


class _BodyCache:
    """Encoded bodies of GET answers, valid while the gateway's state version is unchanged."""

    def __init__(self) -> None:
        self.version = -1
        self.bodies: dict[str, tuple[int, bytes | None]] = {}

    def get(self, version: int, path: str) -> tuple[int, bytes | None] | None:
        if version != self.version:
            self.version = version
            self.bodies.clear()
            return None
        return self.bodies.get(path)

    def put(self, path: str, status: int, raw: bytes | None) -> None:
        if len(self.bodies) < 256:
            self.bodies[path] = (status, raw)


_CACHE: web.AppKey[_BodyCache] = web.AppKey("body_cache", _BodyCache)


def _encoded(status: int, raw: bytes | None) -> web.Response:
    if raw is None:
        return web.Response(status=status, headers=_EMPTY_HEADERS)
    return web.Response(status=status, body=raw, headers=_JSON_HEADERS)


async def _dispatch(
    request: web.Request, gw: SimulatedGateway, endpoint: Endpoint, params: dict[str, str]
) -> web.Response:
    key = endpoint.key
    if key == "POST /api/login/Basic":
        if request.content_type == "application/x-www-form-urlencoded":
            # The gateway also takes a form login (pypowerwall sends one).
            form = await request.post()
            return _login(gw, {k: v for k, v in form.items() if isinstance(v, str)})
        return _login(gw, await _json_body(request))
    if key == "GET /api/logout":
        return _logout(gw, request)
    builder = READS.get(key)
    if builder is not None:
        cache = request.app[_CACHE]
        hit = cache.get(gw.version, request.path)
        if hit is not None:
            return _encoded(*hit)
        status, body = builder(gw, params)
        if isinstance(body, bytes):
            return json_response(status, body)
        raw = None if body is None else _encoder.encode(body)
        cache.put(request.path, status, raw)
        return _encoded(status, raw)
    action = ACTIONS.get(key, accepted)
    body = await _json_body(request)
    status, reply = action(gw, params, body)
    return json_response(status, reply)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every local API request: faults, routing, auth, limits, stopped system, the answer."""
    gw = request.app[GATEWAY]
    verdict = request.app[FAULTS].decide(request.path)
    if verdict is not None:
        if verdict.delay_s:
            await asyncio.sleep(verdict.delay_s)
        if verdict.drop:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is written to a dropped connection
        if verdict.status == 429:
            return _refused(rate_limited(1))
        if verdict.status == 502:
            return stopped_response()
        if verdict.status is not None:
            return error_response(
                verdict.status, "Service Unavailable", "The gateway is busy; try again later"
            )
    try:
        return await _route(request, gw)
    except Refusal as refusal:
        return _refused(refusal)
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug of ours must still answer like a gateway, and be logged
        log.exception("simulator handler failed for %s %s", request.method, request.path)
        return error_response(500, "internal error", "Internal Server Error")


async def _route(request: web.Request, gw: SimulatedGateway) -> web.Response:
    method, path = request.method, request.path
    found = catalog.match(method, path)
    if found is not None and (found[0].api != "local" or found[0].key == _GENERIC):
        found = None
    if found is None:
        methods = [
            e.method
            for e in catalog.endpoints("local")
            if e.key != _GENERIC and (e.path == path.rstrip("/") or e.match(path.rstrip("/")))
        ]
        if methods and method not in methods:
            allow = ", ".join(sorted(set(methods)))
            return error_response(
                405, "Method Not Allowed", f"{method} is not allowed on {path}", {"Allow": allow}
            )
        raise not_found(path)
    endpoint, params = found
    replay = request.app[REPLAY]
    if replay is not None:
        replay.check(endpoint.key, method, path)  # strict: 404 for what the dump lacks
    family = gw.profile.family
    if endpoint.auth.needs_login(family) or endpoint.key == "GET /api/logout":
        session = gw.session_for(_token(request))
        if session is None:
            if endpoint.key == "GET /api/logout":
                return _logout(gw, request)
            return error_response(401, *_no_access(method))
        if (
            endpoint.auth is Auth.INSTALLER
            and family == "modern"
            and session.role == ROLE_CUSTOMER
            and not gw.allow_customer_operation
        ):
            # As a 21.x gateway answers a customer's POST /api/operation.
            return error_response(403, *_no_access(method))
    wait_s = request.app[RATE_LIMITER].check(endpoint.key)
    if wait_s is not None:
        raise rate_limited(wait_s)
    if replay is not None and (captured := replay.answer(gw, endpoint, method, path)) is not None:
        return _replayed(captured)
    if endpoint.live and not gw.running:
        return stopped_response()
    return await _dispatch(request, gw, endpoint, params)


def _replayed(captured: Captured) -> web.Response:
    """A captured answer as the gateway sent it (an empty body: no content type)."""
    if not captured.raw:
        return web.Response(status=captured.status, headers=_EMPTY_HEADERS)
    headers = {**_JSON_HEADERS, "Content-Type": captured.content_type or "application/json"}
    return web.Response(status=captured.status, body=captured.raw, headers=headers)


def make_gateway_app(
    gateway: SimulatedGateway,
    faults: FaultInjector | None = None,
    *,
    rate_limits: Mapping[str, tuple[int, float]] | None = None,
    control: web.Application | None = None,
    replay: Replay | None = None,
) -> web.Application:
    """The local API app for `gateway`; `control` (the /sim app) is mounted under /sim;
    `replay` answers from a `teg dump` folder (sim/replay.py)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES * 2)
    app[GATEWAY] = gateway
    app[REPLAY] = replay
    app[FAULTS] = faults or FaultInjector(seed=gateway.seed)
    app[RATE_LIMITER] = RateLimiter(rate_limits)
    app[_CACHE] = _BodyCache()
    if control is not None:
        app.add_subapp("/sim", control)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def make_redirect_app(https_url: str) -> web.Application:
    """The plain-HTTP port: 301 to the same path on the HTTPS URL, as gateways since 1.20."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(https_url.rstrip("/") + request.path_qs)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


__all__ = [
    "FAULTS",
    "GATEWAY",
    "RATE_LIMITER",
    "RateLimiter",
    "error_response",
    "handle",
    "json_response",
    "make_gateway_app",
    "make_redirect_app",
    "stopped_response",
]
