"""The simulated cloud's sign-in and partner limits: authorization codes with PKCE, rate limits.

`AuthorizationCodes` is the authorization endpoint's memory: it checks an authorize request
(a known client, a loopback redirect_uri, an S256 code challenge, a state), approves it at
once (the simulated user always says yes) and later redeems the code exactly once against
the PKCE verifier, as an OAuth server does.

`PartnerRateLimit` is the Fleet API's per-partner request budget: so many requests per
window, stated on every answer in x-ratelimit-* headers, 429 with Retry-After past it.
Both run on clocks they are given, so tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from tegkit.ownerapi import (
    OAUTH_CLIENT_ID,
    RATE_LIMIT_LIMIT_HEADER,
    RATE_LIMIT_REMAINING_HEADER,
    RATE_LIMIT_RESET_HEADER,
)

CODE_TTL_S = 600.0  # how long an authorization code may wait for its exchange
MAX_PENDING_CODES = 64  # codes never redeemed are forgotten oldest first past this
DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE = 60
_MAX_FIELD_CHARS = 2048


class OAuthRefusal(Exception):
    """An OAuth error: `error` (the OAuth code) and a description, for a 400/401 answer."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_loopback_redirect(uri: str) -> bool:
    """http(s) to 127.0.0.0/8, ::1 or localhost, with a port: the only redirects we follow."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or port is None or parts.username is not None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class _Pending:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_s: float


class AuthorizationCodes:
    """Approves authorize requests and redeems their codes once, against the PKCE verifier.

    `fleet_clients`: the Fleet API applications known, client id -> secret (None: a public
    client, no secret checked); None accepts any client id. Tesla's app ("ownerapi") is
    always known.
    """

    def __init__(
        self,
        fleet_clients: Mapping[str, str | None] | None = None,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = None if fleet_clients is None else dict(fleet_clients)
        self._clock_s = clock_s
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    def known(self, client_id: object) -> bool:
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 128:
            return False
        return client_id == OAUTH_CLIENT_ID or self._clients is None or client_id in self._clients

    def authorize(self, query: Mapping[str, str]) -> str:
        """The URL the browser is sent to: the redirect_uri with a code and the state.

        A request whose client or redirect_uri is not acceptable is refused (OAuthRefusal):
        no redirect to an address we cannot vouch for. Other mistakes are sent back to the
        redirect_uri as error=..., as OAuth servers do.
        """
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        if not self.known(client_id):
            raise OAuthRefusal(400, "invalid_client", "unknown client_id")
        if len(redirect_uri) > _MAX_FIELD_CHARS or not is_loopback_redirect(redirect_uri):
            raise OAuthRefusal(
                400,
                "invalid_request",
                "redirect_uri must be http://127.0.0.1:PORT/... (a loopback address and port)",
            )
        state = query.get("state", "")
        problem = None
        if query.get("response_type") != "code":
            problem = "response_type must be code"
        elif query.get("code_challenge_method") != "S256":
            problem = "code_challenge_method must be S256"
        elif not _is_challenge(query.get("code_challenge", "")):
            problem = "code_challenge must be 43 base64url characters (S256)"
        elif not state or len(state) > _MAX_FIELD_CHARS:
            problem = "state is missing"
        elif "openid" not in query.get("scope", "").split():
            problem = "scope must include openid"
        if problem is not None:
            return _with_query(
                redirect_uri,
                {"error": "invalid_request", "error_description": problem, "state": state},
            )
        code = secrets.token_urlsafe(24)
        self._pending[code] = _Pending(
            client_id,
            redirect_uri,
            query["code_challenge"],
            query.get("scope", "")[:_MAX_FIELD_CHARS],
            self._clock_s() + CODE_TTL_S,
        )
        while len(self._pending) > MAX_PENDING_CODES:
            self._pending.popitem(last=False)
        return _with_query(redirect_uri, {"code": code, "state": state})

    def redeem(self, body: Mapping[str, object]) -> str:
        """The client id a valid authorization_code grant is for; the code is then spent."""
        code = body.get("code")
        pending = self._pending.pop(code, None) if isinstance(code, str) else None
        if pending is None:
            raise OAuthRefusal(400, "invalid_grant", "the authorization code is invalid or used")
        if body.get("client_id") != pending.client_id:
            raise OAuthRefusal(400, "invalid_grant", "the code was issued to another client")
        if body.get("redirect_uri") != pending.redirect_uri:
            raise OAuthRefusal(400, "invalid_grant", "redirect_uri differs from the authorize")
        if self._clock_s() >= pending.expires_s:
            raise OAuthRefusal(400, "invalid_grant", "the authorization code has expired")
        verifier = body.get("code_verifier")
        if not isinstance(verifier, str) or not 43 <= len(verifier) <= 128:
            raise OAuthRefusal(400, "invalid_grant", "code_verifier must be 43 to 128 characters")
        if not hmac.compare_digest(s256(verifier).encode(), pending.challenge.encode()):
            raise OAuthRefusal(
                400, "invalid_grant", "the code verifier does not match the code challenge"
            )
        secret = None if self._clients is None else self._clients.get(pending.client_id)
        if secret is not None:
            given = body.get("client_secret")
            if not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), secret.encode()
            ):
                raise OAuthRefusal(401, "invalid_client", "the client secret is wrong")
        return pending.client_id


def _is_challenge(value: str) -> bool:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return len(value) == 43 and all(ch in alphabet for ch in value)


def _with_query(uri: str, fields: Mapping[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(fields)


class PartnerRateLimit:
    """`limit` requests per `window_s` (a fixed window from its first request)."""

    def __init__(
        self,
        limit: int = DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE,
        window_s: float = 60.0,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a whole number >= 1")
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self.limit = limit
        self.window_s = float(window_s)
        self._clock_s = clock_s
        self._start_s: float | None = None
        self._count = 0

    def take(self) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """Count one request: (allowed, the headers of its answer)."""
        now = self._clock_s()
        if self._start_s is None or now >= self._start_s + self.window_s:
            self._start_s, self._count = now, 0
        reset_s = max(1, math.ceil(self._start_s + self.window_s - now))
        allowed = self._count < self.limit
        if allowed:
            self._count += 1
        headers: tuple[tuple[str, str], ...] = (
            (RATE_LIMIT_LIMIT_HEADER, str(self.limit)),
            (RATE_LIMIT_REMAINING_HEADER, str(self.limit - self._count)),
            (RATE_LIMIT_RESET_HEADER, str(reset_s)),
        )
        if not allowed:
            headers += (("retry-after", str(reset_s)),)
        return allowed, headers


__all__ = [
    "CODE_TTL_S",
    "DEFAULT_FLEET_RATE_LIMIT_PER_MINUTE",
    "AuthorizationCodes",
    "OAuthRefusal",
    "PartnerRateLimit",
    "is_loopback_redirect",
    "s256",
]
