"""Control login for the dashboard: a token exchanged for a session cookie and a CSRF token.

Only exists when the monitor is started with a control token. POST /login with the token
sets an HttpOnly, SameSite=Strict session cookie and answers the session's CSRF token; a
control request must carry both the cookie and the CSRF token in the ``X-CSRF-Token``
header, and, when the browser sends one, an ``Origin`` of this very host. Tokens and
session ids never reach a log.

Failed logins lock out per client: a browser that logged in before carries a device
cookie (signed with the token) and keeps a count of its own; any other client is counted
by its address. So a local process guessing tokens locks out only clients without that
cookie, and for a minute at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from tegkit.monitor.edge import BadParameter, decode_json, error_text

COOKIE_NAME = "tegkit_session"
DEVICE_COOKIE = "tegkit_device"
DEVICE_TTL_S = 400 * 86400
CSRF_HEADER = "X-CSRF-Token"
FAILURES_BEFORE_LOCKOUT = 5
LOCKOUT_BASE_S = 2.0
LOCKOUT_MAX_S = 60.0
#: clients whose failures are remembered; the least recent is forgotten first
MAX_CLIENTS = 4096
#: sessions kept at once; a new login past this ends the oldest session
MAX_SESSIONS = 256
MIN_TOKEN_CHARS = 8


@dataclass(slots=True)
class _Session:
    csrf_token: str
    expires_at: float


@dataclass(slots=True)
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class ControlAuth:
    """Checks the control token and keeps the sessions it granted (in memory)."""

    def __init__(
        self,
        token: str,
        session_ttl_s: float = 12 * 3600.0,
        secure_cookie: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"control token: use at least {MIN_TOKEN_CHARS} characters")
        self._token = token.encode()
        self._ttl_s = session_ttl_s
        self._secure = secure_cookie
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __repr__(self) -> str:  # never show the token
        return f"ControlAuth(sessions={len(self._sessions)})"

    # --- handlers -------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        """POST /login: {"token": ...} (JSON or form) -> session cookie and CSRF token."""
        self._check_origin(request)
        device = self._device_of(request)
        peer = f"device {device}" if device is not None else f"address {request.remote or '?'}"
        now = self._clock()
        failures = self._failures.get(peer)
        if failures is not None and failures.locked_until > now:
            retry_s = int(failures.locked_until - now) + 1
            raise web.HTTPTooManyRequests(
                text=_json_error("too many failed logins; try again later"),
                headers={"Retry-After": str(retry_s)},
                content_type="application/json",
            )
        token = await _token_from(request)
        if not hmac.compare_digest(token.encode(errors="surrogatepass"), self._token):
            self._fail(peer, now)
            raise web.HTTPUnauthorized(
                text=_json_error("wrong control token"), content_type="application/json"
            )
        self._failures.pop(peer, None)
        self._expire(now)
        session_id = secrets.token_urlsafe(32)
        session = _Session(csrf_token=secrets.token_urlsafe(32), expires_at=now + self._ttl_s)
        self._sessions[session_id] = session
        while len(self._sessions) > MAX_SESSIONS:  # logins in a loop cannot grow memory
            del self._sessions[next(iter(self._sessions))]
        response = web.json_response({"logged_in": True, "csrf_token": session.csrf_token})
        response.set_cookie(
            COOKIE_NAME,
            session_id,
            max_age=int(self._ttl_s),
            httponly=True,
            samesite="Strict",
            secure=self._secure,
            path="/",
        )
        if device is None:  # this browser's own failure count from now on
            device = secrets.token_urlsafe(16)
            response.set_cookie(
                DEVICE_COOKIE,
                f"{device}.{self._device_mac(device)}",
                max_age=DEVICE_TTL_S,
                httponly=True,
                samesite="Strict",
                secure=self._secure,
                path="/",
            )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """POST /logout: ends the session (needs the CSRF token like any control request)."""
        session_id = self.require(request)
        self._sessions.pop(session_id, None)
        response = web.json_response({"logged_in": False})
        response.del_cookie(COOKIE_NAME, path="/")
        return response

    async def session(self, request: web.Request) -> web.Response:
        """GET /api/session: whether this browser is logged in, and its CSRF token if so."""
        session = self._session_of(request)
        if session is None:
            return web.json_response({"logged_in": False, "csrf_token": None})
        return web.json_response({"logged_in": True, "csrf_token": session.csrf_token})

    # --- checks ---------------------------------------------------------------------------

    def require(self, request: web.Request) -> str:
        """The session id of a control request; 401 without a session, 403 on a CSRF miss."""
        session_id = request.cookies.get(COOKIE_NAME)
        session = self._session_of(request)
        if session is None or session_id is None:
            raise web.HTTPUnauthorized(
                text=_json_error("log in with the control token first"),
                content_type="application/json",
            )
        self._check_origin(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise web.HTTPForbidden(
                text=_json_error(f"missing or wrong {CSRF_HEADER} header"),
                content_type="application/json",
            )
        return session_id

    def _session_of(self, request: web.Request) -> _Session | None:
        session_id = request.cookies.get(COOKIE_NAME)
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            self._sessions.pop(session_id, None)
            return None
        return session

    @staticmethod
    def _check_origin(request: web.Request) -> None:
        # Browsers send Origin on POST; a page of another site must not drive the controls.
        origin = request.headers.get("Origin")
        if origin is None:
            return
        host = request.headers.get("Host", "")
        if origin.split("://", 1)[-1] != host:
            raise web.HTTPForbidden(
                text=_json_error("cross-origin control request refused"),
                content_type="application/json",
            )

    def _device_mac(self, device: str) -> str:
        return hmac.new(self._token, b"device:" + device.encode(), hashlib.sha256).hexdigest()

    def _device_of(self, request: web.Request) -> str | None:
        """The device id of a browser that logged in before (its cookie signed by us)."""
        device, _, mac = request.cookies.get(DEVICE_COOKIE, "").partition(".")
        if not device or len(device) > 64:
            return None
        if not hmac.compare_digest(mac.encode(), self._device_mac(device).encode()):
            return None
        return device

    def _fail(self, peer: str, now: float) -> None:
        failures = self._failures.setdefault(peer, _Failures())
        self._failures.move_to_end(peer)
        while len(self._failures) > MAX_CLIENTS:
            self._failures.popitem(last=False)
        failures.count += 1
        if failures.count >= FAILURES_BEFORE_LOCKOUT:
            doublings = failures.count - FAILURES_BEFORE_LOCKOUT
            wait_s = min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2.0**doublings)
            failures.locked_until = now + wait_s

    def _expire(self, now: float) -> None:
        for session_id in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[session_id]


async def _token_from(request: web.Request) -> str:
    """The token of a login body: JSON {"token": ...} or a form field; 400 otherwise."""
    allowed = 'the control token as a string: JSON {"token": "..."} or a form field'
    body = await request.read()
    token: object = None
    if request.content_type == "application/json":
        doc = decode_json(body)
        token = doc.get("token") if isinstance(doc, dict) else None
    elif request.content_type == "application/x-www-form-urlencoded":
        try:
            fields = urllib.parse.parse_qs(body.decode(), max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise BadParameter("body", "a form with a token field") from None
        token = fields.get("token", [None])[0]
    if not isinstance(token, str) or not token:
        raise BadParameter("token", allowed, token)
    return token


def _json_error(message: str) -> str:
    return error_text(message)
