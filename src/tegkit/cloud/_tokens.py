"""Owner API tokens: one parser, refreshed early and once at a time, persisted to a 0600 file.

Every token document (a token file, an imported file, the auth host's grant answer) is read
by `parse_tokens`, through one msgspec Struct. Tokens are secrets: they appear in no repr,
log line or exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from tegkit._body import DEFAULT_MAX_RESPONSE_BYTES
from tegkit._headers import retry_after_s
from tegkit._private_file import write_private
from tegkit.cloud._envelope import error_for_status, redact
from tegkit.cloud._transport import CloudTransport
from tegkit.errors import AuthenticationError, GatewayError, InvalidInputError, ParseError
from tegkit.ownerapi import OAUTH_CLIENT_ID, OAUTH_SCOPE, TOKEN_PATH, ApiFlavour, Region

_log = logging.getLogger("tegkit.cloud")

# Refresh this long before the stated expiry: an unattended program renews in its own time
# instead of meeting a 401 mid-run, and clock differences with the auth host do not matter.
EXPIRY_MARGIN_S = 300.0

#: What to do when the refresh token is refused; in every error that means "log in again".
NEW_TOKENS_HINT = (
    "the refresh token is expired or revoked: get new tokens with `teg cloud login` "
    "or `teg cloud token import`"
)


@dataclass(frozen=True, slots=True)
class Tokens:
    """An access token, the refresh token that renews it, and when it expires (Unix seconds)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at_s: float | None = None  # None: unknown, rely on a 401 to notice

    def expired(self, now_s: float | None = None) -> bool:
        """True from EXPIRY_MARGIN_S before the access token's stated expiry on."""
        if self.expires_at_s is None:
            return False
        now_s = time.time() if now_s is None else now_s
        return now_s >= self.expires_at_s - EXPIRY_MARGIN_S


@dataclass(frozen=True, slots=True)
class TokenOrigin:
    """Which API flavour and OAuth client the tokens belong to; kept beside them in the file.

    A refresh must name the client that minted the tokens (Tesla's app for the Owner API,
    the user's own application for the Fleet API) and reach the same host, so the token file
    records both. Never a client secret: that stays in the environment or its own file.
    """

    flavour: ApiFlavour = "owner"
    client_id: str = OAUTH_CLIENT_ID
    region: Region | None = None
    base_url: str | None = None  # the API host, when not the flavour's default
    auth_url: str | None = None  # the token host, when not the flavour's default


# --- the one parser -----------------------------------------------------------------------------

_Number = Annotated[float, msgspec.Meta(ge=0)]


class _TokenDocument(msgspec.Struct, frozen=True):
    """The fields we read from any token document; others (token_type, scope...) are ignored."""

    access_token: Annotated[str, msgspec.Meta(min_length=1)]
    refresh_token: str | None = None
    expires_at: _Number | None = None  # Unix seconds (our token file)
    expires_in: _Number | None = None  # seconds from created_at or now (grants, login tools)
    created_at: _Number | None = None
    # where the tokens belong (our token file; absent in files of other tools: Owner API)
    flavour: ApiFlavour | None = None
    client_id: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    region: Region | None = None
    base_url: str | None = None
    auth_url: str | None = None


TOKEN_DOCUMENT = (
    "a JSON object with a string access_token, and optionally refresh_token, "
    "expires_at (Unix seconds) or expires_in (seconds)"
)


class TokenFormatError(ValueError):
    """A token document we cannot read; the message names the field, never its value."""


def parse_tokens(
    document: bytes | Any, *, now_s: float | None = None, previous: Tokens | None = None
) -> Tokens:
    """Tokens from a token document: JSON bytes, or an already decoded JSON value.

    expires_at wins over expires_in; expires_in counts from created_at, else from `now_s`.
    A document without a refresh token keeps `previous`'s (a grant need not rotate it).
    """
    doc = _token_document(document)
    expires_at = doc.expires_at
    if expires_at is None and doc.expires_in is not None:
        start = doc.created_at if doc.created_at is not None else now_s
        expires_at = (time.time() if start is None else start) + doc.expires_in
    refresh = doc.refresh_token or (previous.refresh_token if previous else None)
    return Tokens(doc.access_token, refresh, expires_at)


def _token_document(document: bytes | Any) -> _TokenDocument:
    """A token document (JSON bytes or already decoded), checked field by field."""
    try:
        if isinstance(document, bytes | bytearray | memoryview):
            return msgspec.json.decode(document, type=_TokenDocument)
        return msgspec.convert(document, _TokenDocument)
    except msgspec.ValidationError as exc:
        # msgspec names the field and the type it wanted; it never repeats a string's value
        raise TokenFormatError(f"{exc}; expected {TOKEN_DOCUMENT}") from None
    except msgspec.DecodeError:
        raise TokenFormatError(f"not JSON; expected {TOKEN_DOCUMENT}") from None


def parse_token_origin(document: bytes | Any) -> TokenOrigin:
    """The flavour, client and hosts a token document records; the Owner API's by default."""
    doc = _token_document(document)
    flavour = doc.flavour or "owner"
    if flavour == "fleet" and doc.client_id is None:
        raise TokenFormatError("Fleet API tokens need the client_id of the application")
    return TokenOrigin(
        flavour=flavour,
        client_id=doc.client_id or OAUTH_CLIENT_ID,
        region=doc.region,
        base_url=doc.base_url,
        auth_url=doc.auth_url,
    )


def read_token_file(path: Path) -> Tokens:
    """Tokens from a JSON file {access_token, refresh_token, expires_at}."""
    try:
        raw = Path(path).read_bytes()
        return parse_tokens(raw)
    except (OSError, TokenFormatError) as exc:
        raise InvalidInputError("token_file", f"{TOKEN_DOCUMENT} ({exc})", str(path)) from None


def read_token_origin(path: Path) -> TokenOrigin:
    """Which flavour, client and hosts the token file at `path` belongs to."""
    try:
        return parse_token_origin(Path(path).read_bytes())
    except (OSError, TokenFormatError) as exc:
        raise InvalidInputError("token_file", f"{TOKEN_DOCUMENT} ({exc})", str(path)) from None


def write_token_file(path: Path, tokens: Tokens, origin: TokenOrigin | None = None) -> None:
    """Write tokens (and where they belong) to `path` (mode 0600), replacing it atomically."""
    data: dict[str, Any] = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at_s,
    }
    if origin is not None:
        data["flavour"] = origin.flavour
        data["client_id"] = origin.client_id
        for key in ("region", "base_url", "auth_url"):
            if getattr(origin, key) is not None:
                data[key] = getattr(origin, key)
    write_private(Path(path), json.dumps(data).encode())


def tokens_from_grant(body: Any, previous: Tokens, now_s: float | None = None) -> Tokens:
    """New tokens from a refresh-grant answer; keeps the old refresh token if none is sent."""
    try:
        return parse_tokens(body, now_s=now_s, previous=previous)
    except TokenFormatError as exc:
        raise ParseError(f"POST {TOKEN_PATH}", f"token answer: {exc}") from None


# --- keeping them fresh -------------------------------------------------------------------------


class TokenFileError(GatewayError):
    """Rotated tokens could not be saved; the message says where and why, never the tokens."""


class TokenKeeper:
    """Holds the current tokens and renews them, one refresh in flight at a time.

    A rotated pair is written to the token file before anything uses it: if the process
    stops right after, the file still holds the refresh token the auth host expects.
    """

    def __init__(
        self,
        tokens: Tokens,
        *,
        auth_url: str,
        token_file: Path | None,
        clock_s: Callable[[], float] = time.time,
        origin: TokenOrigin | None = None,
        client_secret: str | None = None,
    ) -> None:
        self._tokens = tokens
        self.origin = origin or TokenOrigin()
        self._client_secret = client_secret
        self._auth_url = auth_url.rstrip("/")
        self._token_file = token_file
        self._clock_s = clock_s
        self._lock = asyncio.Lock()
        # The access token a refresh failed for, and why: waiters re-raise instead of
        # sending the same doomed refresh again.
        self._failed: tuple[str, AuthenticationError] | None = None
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"TokenKeeper(auth_url={self._auth_url!r}, token_file={self._token_file!r})"

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    @property
    def can_refresh(self) -> bool:
        return self._tokens.refresh_token is not None

    def due(self) -> bool:
        """The access token expires within EXPIRY_MARGIN_S (or has): renew before using it."""
        return self.can_refresh and self._tokens.expired(self._clock_s())

    def secrets(self) -> tuple[str, ...]:
        """Current secrets, for redacting server text."""
        tokens = self._tokens
        return tuple(
            s for s in (tokens.access_token, tokens.refresh_token, self._client_secret) if s
        )

    async def refresh(self, transport: CloudTransport, *, stale_access_token: str) -> Tokens:
        """Renew the tokens unless another task already renewed `stale_access_token`."""
        async with self._lock:
            if self._tokens.access_token != stale_access_token:
                return self._tokens  # someone else refreshed while we waited
            if self._failed is not None and self._failed[0] == stale_access_token:
                raise self._failed[1]
            try:
                fresh = await self._grant(transport)
            except AuthenticationError as exc:
                self._failed = (stale_access_token, exc)
                raise
            self._failed = None
            self.refresh_count += 1
            try:
                if self._token_file is not None:
                    # off the event loop: fsync may take a while on a slow card
                    await asyncio.to_thread(write_token_file, self._token_file, fresh, self.origin)
            except OSError as exc:
                # The old refresh token is dead now: keep the new pair in memory so this
                # process goes on, and say loudly that the file could not follow.
                self._tokens = fresh
                raise TokenFileError(
                    f"refreshed tokens could not be saved to {self._token_file}: "
                    f"{exc.strerror or exc.__class__.__name__}; the refresh token in that "
                    "file no longer works"
                ) from None
            self._tokens = fresh
            _log.info("Owner API tokens refreshed; expiry at %s", fresh.expires_at_s)
            return fresh

    async def _grant(self, transport: CloudTransport) -> Tokens:
        previous = self._tokens
        if previous.refresh_token is None:
            raise AuthenticationError(401, "POST", TOKEN_PATH, error="no refresh token")
        origin = self.origin
        body = {
            "grant_type": "refresh_token",
            "client_id": origin.client_id,
            "refresh_token": previous.refresh_token,
        }
        if origin.flavour == "owner":
            body["scope"] = OAUTH_SCOPE
        elif self._client_secret is not None:
            body["client_secret"] = self._client_secret
        return await request_grant(
            transport,
            self._auth_url,
            body,
            form=origin.flavour == "fleet",
            secrets=self.secrets(),
            now_s=self._clock_s(),
            previous=previous,
            hint=NEW_TOKENS_HINT,
        )


async def request_grant(
    transport: CloudTransport,
    auth_url: str,
    body: dict[str, str],
    *,
    form: bool,
    secrets: tuple[str, ...],
    now_s: float,
    previous: Tokens | None,
    hint: str,
) -> Tokens:
    """POST one OAuth grant to the token endpoint; the tokens of its answer.

    `form`: form-encoded as the Fleet API's token host documents it, else JSON as the Owner
    API's auth host has always taken it. A refused grant (400/401/403) is an
    AuthenticationError whose message ends with `hint`; nothing in `secrets` is repeated.
    """
    answer = await transport.send(
        "POST",
        auth_url.rstrip("/") + TOKEN_PATH,
        endpoint=f"POST {TOKEN_PATH}",
        limit_bytes=DEFAULT_MAX_RESPONSE_BYTES,
        json_body=None if form else body,
        form_body=body if form else None,
        headers={"Accept": "application/json"},
    )
    _log.debug("POST %s -> %s (%s)", TOKEN_PATH, answer.status, answer.http_version)
    try:
        payload: Any = json.loads(answer.body)
    except ValueError:
        payload = None
    fields = payload if isinstance(payload, dict) else {}
    if answer.status >= 400:
        error = redact(_str(fields.get("error")), secrets)
        description = redact(_str(fields.get("error_description")), secrets)
        if answer.status in (400, 401, 403):
            # invalid_grant and friends: the grant is no good, log in again
            message = f"{description}; {hint}" if description else hint
            raise AuthenticationError(
                answer.status, "POST", TOKEN_PATH, error=error, message=message
            )
        raise error_for_status(
            answer.status,
            method="POST",
            path=TOKEN_PATH,
            error=error,
            message=description,
            retry_after_s=retry_after_s(answer.retry_after),
        )
    try:
        return parse_tokens(payload, now_s=now_s, previous=previous)
    except TokenFormatError as exc:
        raise ParseError(f"POST {TOKEN_PATH}", f"token answer: {exc}") from None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = [
    "EXPIRY_MARGIN_S",
    "NEW_TOKENS_HINT",
    "TOKEN_DOCUMENT",
    "TokenFileError",
    "TokenFormatError",
    "TokenKeeper",
    "TokenOrigin",
    "Tokens",
    "parse_token_origin",
    "parse_tokens",
    "read_token_file",
    "read_token_origin",
    "request_grant",
    "tokens_from_grant",
    "write_token_file",
]
