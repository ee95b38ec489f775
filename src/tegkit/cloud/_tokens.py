"""Owner API tokens: keep them, refresh them once at a time, persist them to a 0600 file.

Tokens are secrets: they appear in no repr, log line or exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tegkit._body import DEFAULT_MAX_RESPONSE_BYTES, read_capped
from tegkit._headers import retry_after_s
from tegkit._private_file import write_private
from tegkit.cloud._envelope import connection_problem, error_for_status, redact
from tegkit.errors import (
    AuthenticationError,
    ConnectionFailedError,
    GatewayTimeoutError,
    InvalidInputError,
    ParseError,
)
from tegkit.ownerapi import OAUTH_CLIENT_ID, OAUTH_SCOPE, TOKEN_PATH

_log = logging.getLogger("tegkit.cloud")

# Refresh a little before the stated expiry: the clock of the auth host and ours differ and a
# request takes time to arrive.
EXPIRY_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Tokens:
    """An access token, the refresh token that renews it, and when it expires (Unix seconds)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at_s: float | None = None  # None: unknown, rely on a 401 to notice

    def expired(self, now_s: float | None = None) -> bool:
        """True when the access token's stated expiry (less a margin) has passed."""
        if self.expires_at_s is None:
            return False
        now_s = time.time() if now_s is None else now_s
        return now_s >= self.expires_at_s - EXPIRY_MARGIN_S


def read_token_file(path: Path) -> Tokens:
    """Tokens from a JSON file {access_token, refresh_token, expires_at}."""
    allowed = "a JSON object with string access_token, refresh_token and numeric expires_at"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError("token_file", allowed, str(path)) from exc
    if not isinstance(data, dict):
        raise InvalidInputError("token_file", allowed, str(path))
    access = data.get("access_token")
    refresh = data.get("refresh_token")
    expires_at = data.get("expires_at")
    if (
        not isinstance(access, str)
        or not access
        or not (refresh is None or isinstance(refresh, str))
        or isinstance(expires_at, bool)
        or not (expires_at is None or isinstance(expires_at, int | float))
    ):
        raise InvalidInputError("token_file", allowed, str(path))
    return Tokens(access, refresh or None, None if expires_at is None else float(expires_at))


def write_token_file(path: Path, tokens: Tokens) -> None:
    """Write tokens to `path` (mode 0600), replacing it atomically."""
    path = Path(path)
    data = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at_s,
    }
    write_private(path, json.dumps(data).encode())


def tokens_from_grant(body: Any, previous: Tokens, now_s: float | None = None) -> Tokens:
    """New tokens from a refresh-grant answer; keeps the old refresh token if none is sent."""
    endpoint = f"POST {TOKEN_PATH}"
    if not isinstance(body, dict):
        raise ParseError(endpoint, "token answer is not a JSON object")
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ParseError(endpoint, "token answer has no access_token")
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous.refresh_token
    expires_in = body.get("expires_in")
    expires_at: float | None = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = (time.time() if now_s is None else now_s) + float(expires_in)
    return Tokens(access, refresh, expires_at)


class TokenKeeper:
    """Holds the current tokens and renews them, one refresh in flight at a time."""

    def __init__(self, tokens: Tokens, *, auth_url: str, token_file: Path | None) -> None:
        self._tokens = tokens
        self._auth_url = auth_url.rstrip("/")
        self._token_file = token_file
        self._lock = asyncio.Lock()
        # The access token a refresh failed for, and why: waiters re-raise instead of
        # sending the same doomed refresh again.
        self._failed: tuple[str, AuthenticationError] | None = None

    def __repr__(self) -> str:
        return f"TokenKeeper(auth_url={self._auth_url!r}, token_file={self._token_file!r})"

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    @property
    def can_refresh(self) -> bool:
        return self._tokens.refresh_token is not None

    def secrets(self) -> tuple[str, ...]:
        """Current secrets, for redacting server text."""
        return tuple(s for s in (self._tokens.access_token, self._tokens.refresh_token) if s)

    async def refresh(
        self,
        session: aiohttp.ClientSession,
        *,
        stale_access_token: str,
        ssl_arg: ssl.SSLContext | bool,
        client_timeout: aiohttp.ClientTimeout,
    ) -> Tokens:
        """Renew the tokens unless another task already renewed `stale_access_token`."""
        async with self._lock:
            if self._tokens.access_token != stale_access_token:
                return self._tokens  # someone else refreshed while we waited
            if self._failed is not None and self._failed[0] == stale_access_token:
                raise self._failed[1]
            try:
                fresh = await self._grant(session, ssl_arg=ssl_arg, client_timeout=client_timeout)
            except AuthenticationError as exc:
                self._failed = (stale_access_token, exc)
                raise
            self._tokens = fresh
            self._failed = None
            if self._token_file is not None:
                # off the event loop: fsync may take a while on a slow card
                await asyncio.to_thread(write_token_file, self._token_file, fresh)
            _log.info("Owner API tokens refreshed; expiry at %s", fresh.expires_at_s)
            return fresh

    async def _grant(
        self,
        session: aiohttp.ClientSession,
        *,
        ssl_arg: ssl.SSLContext | bool,
        client_timeout: aiohttp.ClientTimeout,
    ) -> Tokens:
        previous = self._tokens
        if previous.refresh_token is None:
            raise AuthenticationError(401, "POST", TOKEN_PATH, error="no refresh token")
        body = {
            "grant_type": "refresh_token",
            "client_id": OAUTH_CLIENT_ID,
            "refresh_token": previous.refresh_token,
            "scope": OAUTH_SCOPE,
        }
        try:
            async with session.post(
                self._auth_url + TOKEN_PATH, json=body, ssl=ssl_arg, timeout=client_timeout
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                raw = await read_capped(resp, DEFAULT_MAX_RESPONSE_BYTES, f"POST {TOKEN_PATH}")
        except TimeoutError as exc:
            raise GatewayTimeoutError(f"POST {TOKEN_PATH}: no answer in time") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionFailedError(f"POST {TOKEN_PATH}: {connection_problem(exc)}") from exc
        try:
            payload: Any = json.loads(raw)
        except ValueError:
            payload = None
        fields = payload if isinstance(payload, dict) else {}
        if status >= 400:
            error = redact(_str(fields.get("error")), self.secrets())
            message = redact(_str(fields.get("error_description")), self.secrets())
            if status in (400, 401, 403):
                # invalid_grant and friends: the refresh token is no good, log in again
                raise AuthenticationError(status, "POST", TOKEN_PATH, error=error, message=message)
            raise error_for_status(
                status,
                method="POST",
                path=TOKEN_PATH,
                error=error,
                message=message,
                retry_after_s=retry_after_s(retry_after),
            )
        return tokens_from_grant(payload, previous)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = [
    "EXPIRY_MARGIN_S",
    "TokenKeeper",
    "Tokens",
    "read_token_file",
    "tokens_from_grant",
    "write_token_file",
]
