"""The simulated Owner API: Tesla's cloud for one energy site, as a small ASGI app.

`make_owner_api_app(site, tokens)` answers the token refresh grant, the product list, live
status, site info, the outage and calendar history (`history?kind=backup`, and the Fleet
API's `calendar_history?kind=energy|backup`) and the backup / site_name / operation commands
by battery id and by energy site id, in the {"response": ...} envelope. It talks to the site
only through the `CloudSite` protocol, so the same gateway state serves the local and the
cloud API. Percents here are on the APP scale; the site converts to raw.

It behaves like Tesla's cloud does today: served over HTTP/2 (see `sim.cloud_server`), and
an access token minted by a refresh grant that came over HTTP/1.1 is refused by the API
with Tesla's 403 body. Access tokens expire on the clock the tokens are given (the
simulator's), refresh tokens rotate at every grant and can be revoked.

It serves the Fleet API flavour on the same paths: the authorization endpoint approves a
sign-in at once (PKCE S256, loopback redirect_uri only; `sim.cloud_oauth`), the token
endpoint redeems the code against its verifier, and a pair minted for any client id but
Tesla's app is a Fleet token, held to the partner rate limit (x-ratelimit-* on every answer,
429 with Retry-After past it).

The app is plain ASGI: a route table of (method, path pattern, handler), handlers that take
a parsed `_Request` and return a `_Reply`. No web framework: five routes do not need one.

Success shapes per command follow `tegkit.ownerapi.DEFAULT_SUCCESS_SHAPES` (powerwalls/* and
energy_sites/backup|operation: {"code": 201, "message": "Updated"}; energy_sites/site_name:
{"Code": 200, "Message": "Site name updated"}); `success_shapes` overrides them for tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tegkit.errors import InvalidInputError
from tegkit.ownerapi import (
    AUTHORIZE_PATH,
    COMMAND_FAMILIES,
    DEFAULT_SUCCESS_SHAPES,
    EXPORT_RULE_FIELD,
    GRID_CHARGING_FIELD,
    OAUTH_CLIENT_ID,
    OFF_GRID_EV_RESERVE_FIELD,
    STORM_MODE_FIELD,
    TOKEN_PATH,
    TOU_SETTINGS_FIELD,
    Command,
    Family,
    SuccessShape,
    check_command_body,
    missing_body_fields,
    success_body,
)
from tegkit.sim.bodies import MAX_BODY_BYTES, MAX_DEPTH, too_deep
from tegkit.sim.cloud_oauth import (
    DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE,
    AuthorizationCodes,
    OAuthRefusal,
    PartnerRateLimit,
)

DEFAULT_ACCESS_TTL_S = 8 * 3600.0  # what the auth host states in expires_in

#: What Tesla's Owner API answers (403) to a token that was minted over HTTP/1.1.
HTTP1_TOKEN_REFUSAL = {
    "response": None,
    "error": "forbidden, see https://developer.tesla.com/docs/fleet-api",
    "error_description": "",
}


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

    def set_grid_import_export(
        self,
        disallow_charge_from_grid_with_solar_installed: bool | None = None,
        customer_preferred_export_rule: str | None = None,
    ) -> None: ...

    def set_storm_mode(self, enabled: bool) -> None: ...

    def set_off_grid_vehicle_charging_reserve_app_percent(self, p: float) -> None: ...

    def set_time_of_use_settings(self, tou_settings: dict[str, Any]) -> None: ...

    def backup_history(self) -> dict[str, Any]:
        """{events: [{timestamp, duration (ms)}], total_events}: every finished outage."""
        ...

    def calendar_history(
        self, kind: str, period: str, end: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Tesla's calendar_history answer; InvalidInputError naming a bad argument."""
        ...


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(eq=False)
class CloudTokens:
    """The account's one valid token pair; rotated (both tokens) by every refresh grant.

    Expiry runs on `clock_s` (seconds; the simulator passes its simulated clock, so
    advancing it past the TTL expires the access token). `refresh_ttl_s` None: the refresh
    token lives until it is rotated or revoked. `expire_access_token()` ends the current
    access token at once, for tests.
    """

    access_ttl_s: float = DEFAULT_ACCESS_TTL_S
    refresh_ttl_s: float | None = None
    clock_s: Callable[[], float] = field(default=time.monotonic, repr=False)
    access_token: str = field(default_factory=_new_token, repr=False)
    refresh_token: str = field(default_factory=_new_token, repr=False)
    #: the OAuth client the pair was minted for: Tesla's app ("ownerapi") or a Fleet API
    #: application (any other id: its tokens are Fleet API tokens, rate limited)
    client_id: str = OAUTH_CLIENT_ID
    refresh_count: int = field(default=0, init=False)
    #: the HTTP version of the grant that minted the current pair (None: issued at start)
    minted_over: str | None = field(default=None, init=False)
    revoked: bool = field(default=False, init=False)
    _access_expires_s: float = field(init=False, repr=False)
    _refresh_expires_s: float | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        now = self.clock_s()
        self._access_expires_s = now + self.access_ttl_s
        self._refresh_expires_s = None if self.refresh_ttl_s is None else now + self.refresh_ttl_s

    @property
    def access_expires_at_s(self) -> float:
        """Unix time at which the current access token stops working (at the clock's pace)."""
        return time.time() + (self._access_expires_s - self.clock_s())

    @property
    def fleet(self) -> bool:
        """Whether the pair belongs to a Fleet API application (not Tesla's app)."""
        return self.client_id != OAUTH_CLIENT_ID

    def issue(self, client_id: str, *, http_version: str = "2") -> dict[str, Any]:
        """A new pair for `client_id` (an authorization-code grant); the old pair stops."""
        self.client_id = client_id
        self.revoked = False
        now = self.clock_s()
        self.access_token = _new_token()
        self.refresh_token = _new_token()
        self._access_expires_s = now + self.access_ttl_s
        if self.refresh_ttl_s is not None:
            self._refresh_expires_s = now + self.refresh_ttl_s
        self.minted_over = http_version
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "id_token": _new_token(),
            "expires_in": int(self.access_ttl_s),
            "token_type": "Bearer",
        }

    @property
    def minted_over_http1(self) -> bool:
        return self.minted_over is not None and self.minted_over.startswith("1")

    def access_problem(self, token: str | None) -> str | None:
        """Why `token` is not a usable access token now, or None when it is."""
        if not token:
            return "no bearer token"
        if not _same(token, self.access_token):
            return "unknown bearer token"
        if self.revoked:
            return "bearer token revoked"
        if self.clock_s() >= self._access_expires_s:
            return "bearer token expired"
        return None

    def expire_access_token(self) -> None:
        """Make the current access token expired (the refresh token stays valid)."""
        self._access_expires_s = self.clock_s() - 1.0

    def revoke(self) -> None:
        """The account owner revoked this app's access: both tokens stop working."""
        self.revoked = True

    def refresh_problem(self, refresh_token: object) -> str | None:
        """Why `refresh_token` cannot be exchanged now, or None when it can."""
        if not isinstance(refresh_token, str) or not refresh_token:
            return "the refresh token is invalid"
        if not _same(refresh_token, self.refresh_token):
            return "the refresh token is invalid"
        if self.revoked:
            return "the refresh token has been revoked"
        if self._refresh_expires_s is not None and self.clock_s() >= self._refresh_expires_s:
            return "the refresh token has expired"
        return None

    def refresh(self, refresh_token: str, *, http_version: str = "2") -> dict[str, Any] | None:
        """The grant answer for a usable refresh token (both tokens rotate), else None."""
        if self.refresh_problem(refresh_token) is not None:
            return None
        now = self.clock_s()
        self.access_token = _new_token()
        self.refresh_token = _new_token()
        self._access_expires_s = now + self.access_ttl_s
        if self.refresh_ttl_s is not None:
            self._refresh_expires_s = now + self.refresh_ttl_s
        self.minted_over = http_version
        self.refresh_count += 1
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": int(self.access_ttl_s),
            "token_type": "Bearer",
        }


# --- requests and answers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    http_version: str
    headers: Mapping[str, str]  # lower-case names
    params: Mapping[str, str]  # from the path pattern
    body: bytes
    query: str = ""  # the raw query string (latin-1), parsed by the routes that take one


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


class _Refusal(Exception):
    """Stop handling and send this answer."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _ok(response: Any, **extra: Any) -> _Reply:
    return _Reply(200, {"response": response, **extra})


def _error(status: int, error: str, description: str) -> _Reply:
    return _Reply(status, {"response": None, "error": error, "error_description": description})


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    # The auth host answers OAuth errors without the Owner API envelope.
    return _Reply(status, {"error": error, "error_description": description})


def _bad_request(description: str) -> _Refusal:
    return _Refusal(_error(400, "invalid_request", description))


_json = msgspec.json.Decoder()


def _json_object(request: _Request) -> dict[str, Any]:
    """The body as a JSON object; the size cap was applied while reading it."""
    try:
        body = _json.decode(request.body)
    except RecursionError:
        raise _bad_request(f"the body nests JSON more than {MAX_DEPTH} levels deep") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _bad_request("the body is not valid JSON") from None
    if too_deep(body):
        raise _bad_request(f"the body nests JSON more than {MAX_DEPTH} levels deep")
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


# --- handlers -----------------------------------------------------------------------------------

_Handler = Callable[[_Request], _Reply]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler


def _pattern(template: str) -> re.Pattern[str]:
    """'/api/1/energy_sites/{site_id}/x' -> a regex with one named group per placeholder."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(regex + r"\Z")


class OwnerApiApp:
    """The ASGI app; see the module docstring. `on_request` sees every (scope, status)."""

    def __init__(
        self,
        site: CloudSite,
        tokens: CloudTokens,
        shapes: Mapping[tuple[Family, Command], SuccessShape],
        *,
        fleet_clients: Mapping[str, str | None] | None = None,
        fleet_rate_limit_per_minute: int = DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE,
        rate_limit_window_s: float = 60.0,
        rate_clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self.tokens = tokens
        self.on_request: list[Callable[[Mapping[str, Any], int], None]] = []
        # sign-in (authorization code + PKCE) and the Fleet API's partner rate limit
        self.codes = AuthorizationCodes(fleet_clients, clock_s=tokens.clock_s)
        self.fleet_rate_limit = PartnerRateLimit(
            fleet_rate_limit_per_minute, rate_limit_window_s, clock_s=rate_clock_s
        )
        self._routes = [
            _Route("POST", _pattern(TOKEN_PATH), self._token),
            _Route("GET", _pattern(AUTHORIZE_PATH), self._authorize),
            _Route("GET", _pattern("/api/1/products"), self._products),
            _Route("GET", _pattern("/api/1/energy_sites/{site_id}/live_status"), self._live),
            _Route("GET", _pattern("/api/1/energy_sites/{site_id}/site_info"), self._site_info),
            _Route("GET", _pattern("/api/1/energy_sites/{site_id}/history"), self._history),
            _Route(
                "GET",
                _pattern("/api/1/energy_sites/{site_id}/calendar_history"),
                self._calendar_history,
            ),
        ]
        targets: dict[Family, str] = {"powerwalls": "battery_id", "energy_sites": "site_id"}
        for command, families in COMMAND_FAMILIES.items():
            for family in families:
                target = targets[family]
                self._routes.append(
                    _Route(
                        "POST",
                        _pattern(f"/api/1/{family}/{{{target}}}/{command}"),
                        self._command_handler(family, command, shapes[family, command]),
                    )
                )

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: not served, the server closes the connection
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        body = await _read_body(receive, headers)
        if body is None:
            reply = _error(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        else:
            request = _Request(
                method=scope["method"],
                path=scope["path"],
                http_version=scope.get("http_version", "1.1"),
                headers=headers,
                params={},
                body=body,
                query=scope.get("query_string", b"").decode("latin-1"),
            )
            reply = self._rate_limited(request)
        for listener in self.on_request:
            listener(scope, reply.status)
        payload = json.dumps(reply.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(payload)).encode()),
                    *((k.encode(), v.encode()) for k, v in reply.headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _answer(self, request: _Request) -> _Reply:
        """Bearer auth for /api/, then the route; every error is an envelope, never a 500."""
        try:
            if request.path.startswith("/api/"):
                self._check_bearer(request)
            allowed: list[str] = []
            for route in self._routes:
                match = route.pattern.match(request.path)
                if match is None:
                    continue
                if route.method != request.method:
                    allowed.append(route.method)
                    continue
                return route.handler(dataclasses.replace(request, params=match.groupdict()))
            if allowed:
                reply = _error(405, "method_not_allowed", "Method Not Allowed")
                return _Reply(reply.status, reply.body, (("allow", ", ".join(allowed)),))
            return _error(404, "not_found", "Not Found")
        except _Refusal as refusal:
            return refusal.reply
        except InvalidInputError as exc:
            return _error(400, "invalid_request", str(exc))

    def _rate_limited(self, request: _Request) -> _Reply:
        """The answer; Fleet API calls (a fleet client's valid token) count against its limit."""
        if not (request.path.startswith("/api/") and self.tokens.fleet):
            return self._answer(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self.tokens.access_problem(token.strip()) is not None:
            return self._answer(request)  # refused anyway; not the partner's request
        allowed, headers = self.fleet_rate_limit.take()
        if not allowed:
            reply = _error(429, "rate_limited", "Too Many Requests: the partner rate limit")
        else:
            reply = self._answer(request)
        return _Reply(reply.status, reply.body, reply.headers + headers)

    def _check_bearer(self, request: _Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        problem = self.tokens.access_problem(token.strip() if scheme.lower() == "bearer" else None)
        if problem is not None:
            reply = _error(401, "invalid bearer token", problem)
            raise _Refusal(
                _Reply(401, reply.body, (("www-authenticate", 'Bearer error="invalid_token"'),))
            )
        if self.tokens.minted_over_http1:
            # Tesla's cloud refuses tokens refreshed over HTTP/1.1 (reported June 2026).
            raise _Refusal(_Reply(403, HTTP1_TOKEN_REFUSAL))

    # --- routes -----------------------------------------------------------------------------

    def _authorize(self, request: _Request) -> _Reply:
        """Sign-in approved at once: 302 to the redirect_uri with a code (or an error)."""
        try:
            location = self.codes.authorize(_query_fields(request.query))
        except OAuthRefusal as refusal:
            return _oauth_error(refusal.status, refusal.error, refusal.description)
        return _Reply(302, {"redirect": location}, (("location", location),))

    def _token(self, request: _Request) -> _Reply:
        body = _grant_body(request)
        if body.get("grant_type") == "authorization_code":
            try:
                client_id = self.codes.redeem(body)
            except OAuthRefusal as refusal:
                return _oauth_error(refusal.status, refusal.error, refusal.description)
            return _Reply(200, self.tokens.issue(client_id, http_version=request.http_version))
        if body.get("grant_type") != "refresh_token":
            return _oauth_error(
                400, "unsupported_grant_type", "refresh_token or authorization_code"
            )
        if body.get("client_id") != self.tokens.client_id:
            return _oauth_error(401, "invalid_client", "unknown client_id")
        refresh_token = body.get("refresh_token")
        problem = self.tokens.refresh_problem(refresh_token)
        if problem is not None or not isinstance(refresh_token, str):
            return _oauth_error(401, "invalid_grant", problem or "the refresh token is invalid")
        grant = self.tokens.refresh(refresh_token, http_version=request.http_version)
        assert grant is not None  # checked just above
        return _Reply(200, grant)

    def _site_for(self, request: _Request) -> CloudSite:
        site = self.site
        if "battery_id" in request.params:
            if request.params["battery_id"] != site.battery_id:
                raise _Refusal(_error(404, "not_found", "no battery with that id on this account"))
        elif request.params.get("site_id") != str(site.energy_site_id):
            raise _Refusal(_error(404, "not_found", "no energy site with that id on this account"))
        return site

    def _products(self, request: _Request) -> _Reply:
        site = self.site
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

    def _live(self, request: _Request) -> _Reply:
        return _ok(self._site_for(request).live_status())

    def _site_info(self, request: _Request) -> _Reply:
        return _ok(self._site_for(request).site_info())

    def _history(self, request: _Request) -> _Reply:
        """The Owner API's outage list: /history?kind=backup (no other kind is served)."""
        site = self._site_for(request)
        query = _query(request, ("kind",))
        if query.get("kind") != "backup":
            raise _bad_request("kind must be backup (the only history kind served here)")
        return _ok(site.backup_history())

    def _calendar_history(self, request: _Request) -> _Reply:
        """calendar_history?kind=energy|backup&period=day|week|month|year[&end_date][&time_zone]
        (the Fleet API's energy_history and backup_history)."""
        site = self._site_for(request)
        query = _query(request, ("kind", "period", "end_date", "start_date", "time_zone"))
        zone: ZoneInfo | None = None
        if "time_zone" in query:
            try:
                zone = ZoneInfo(query["time_zone"])
            except (ZoneInfoNotFoundError, ValueError):
                raise _bad_request(
                    "time_zone must be an IANA time zone name such as Europe/Berlin"
                ) from None
        end: dt.datetime | None = None
        if "end_date" in query:
            try:
                end = dt.datetime.fromisoformat(query["end_date"])
            except ValueError:
                raise _bad_request(
                    "end_date must be an ISO 8601 date and time, e.g. 2024-06-10T23:59:59-07:00"
                ) from None
            if end.utcoffset() is None:
                if zone is None:
                    raise _bad_request("end_date needs a UTC offset (or give time_zone)")
                end = end.replace(tzinfo=zone)
        kind, period = query.get("kind", "energy"), query.get("period", "day")
        return _ok(site.calendar_history(kind, period, end))

    def _command_handler(self, family: Family, command: Command, shape: SuccessShape) -> _Handler:
        message = "Site name updated" if command == "site_name" and shape == "Code" else "Updated"

        def handle(request: _Request) -> _Reply:
            site = self._site_for(request)
            body = _json_object(request)
            missing = missing_body_fields(command, body)
            if missing is not None:
                raise _bad_request(missing)
            # the checks the client makes before sending (a bad value: 400 naming the field)
            _apply_command(site, command, check_command_body(command, body))
            return _ok(success_body(shape, message))

        return handle


def _apply_command(site: CloudSite, command: Command, body: dict[str, Any]) -> None:
    """Hand a checked command body to the site (which may still refuse: a 400)."""
    if command == "grid_import_export":
        site.set_grid_import_export(body.get(GRID_CHARGING_FIELD), body.get(EXPORT_RULE_FIELD))
    elif command == "storm_mode":
        site.set_storm_mode(body[STORM_MODE_FIELD])
    elif command == "off_grid_vehicle_charging_reserve":
        site.set_off_grid_vehicle_charging_reserve_app_percent(body[OFF_GRID_EV_RESERVE_FIELD])
    elif command == "time_of_use_settings":
        site.set_time_of_use_settings(body[TOU_SETTINGS_FIELD])
    elif command == "backup":
        site.set_backup_reserve_app_percent(float(body["backup_reserve_percent"]))
    elif command == "operation":
        site.set_operation_mode(body["default_real_mode"])
    else:
        site.set_site_name(body["site_name"])


#: the most query parameters a request may carry
_MAX_QUERY_FIELDS = 16


def _query(request: _Request, known: tuple[str, ...]) -> dict[str, str]:
    """The query parameters (one value each, names from `known`); 400 naming what is wrong."""
    try:
        pairs = urllib.parse.parse_qsl(
            request.query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError:
        raise _bad_request(f"at most {_MAX_QUERY_FIELDS} query parameters") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            raise _bad_request(f"unknown query parameter {name[:40]!r}; known: {', '.join(known)}")
        if name in query:
            raise _bad_request(f"{name} is given more than once")
        query[name] = value
    return query


# A body past the cap is still read (and dropped) up to this much before the refusal is
# sent: hypercorn drops the whole HTTP/2 connection when DATA arrives for a stream it has
# already answered. Past this, the peer is hostile and losing the connection is fine.
_DRAIN_LIMIT_BYTES = 4 * 1024 * 1024


async def _read_body(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]], headers: Mapping[str, str]
) -> bytes | None:
    """The request body, or None when it passes MAX_BODY_BYTES (never held past the cap)."""
    announced = headers.get("content-length", "")
    too_large = announced.isdigit() and int(announced) > MAX_BODY_BYTES
    body = bytearray()
    seen_bytes = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the peer went away; the answer goes nowhere anyway
        chunk = message.get("body", b"")
        seen_bytes += len(chunk)
        if seen_bytes > MAX_BODY_BYTES:
            too_large = True
            body.clear()
        elif not too_large:
            body += chunk
        if not message.get("more_body", False) or seen_bytes > _DRAIN_LIMIT_BYTES:
            break
    return None if too_large else bytes(body)


async def _lifespan(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _query_fields(text: str) -> dict[str, str]:
    """A query string's or form's fields (the first of each), at most 64 of them."""
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=64)
    except ValueError:
        raise _bad_request("too many fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def _grant_body(request: _Request) -> dict[str, Any]:
    """A token request's fields: form-encoded (the Fleet API's way) or a JSON object."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _json_object(request)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request("the body is not a valid form") from None
    return dict(_query_fields(text))


def make_owner_api_app(
    site: CloudSite,
    tokens: CloudTokens,
    *,
    success_shapes: Mapping[tuple[Family, Command], SuccessShape] | None = None,
    fleet_clients: Mapping[str, str | None] | None = None,
    fleet_rate_limit_per_minute: int = DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE,
    rate_limit_window_s: float = 60.0,
    rate_clock_s: Callable[[], float] = time.monotonic,
) -> OwnerApiApp:
    """The Owner API and Fleet API (and their auth host) for one site, as an ASGI app.

    `fleet_clients` (client id -> secret or None) restricts which Fleet API applications may
    sign in; None accepts any client id. Fleet tokens get `fleet_rate_limit_per_minute`
    requests per `rate_limit_window_s` on `rate_clock_s`.
    """
    return OwnerApiApp(
        site,
        tokens,
        {**DEFAULT_SUCCESS_SHAPES, **(success_shapes or {})},
        fleet_clients=fleet_clients,
        fleet_rate_limit_per_minute=fleet_rate_limit_per_minute,
        rate_limit_window_s=rate_limit_window_s,
        rate_clock_s=rate_clock_s,
    )


__all__ = [
    "DEFAULT_ACCESS_TTL_S",
    "HTTP1_TOKEN_REFUSAL",
    "CloudSite",
    "CloudTokens",
    "OwnerApiApp",
    "make_owner_api_app",
]
