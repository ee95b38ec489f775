"""CloudClient: the async Owner API client for one account's energy sites.

Reads and commands for a Powerwall site through Tesla's cloud. Percents are on the APP scale
(0..100 as the app shows them), never the gateway's raw scale. The token endpoint and the
API are spoken to over HTTP/2 (see `cloud._transport`); HTTP/1.1 only with `http1=True`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import Any, Self

import httpx

from tegkit._body import DEFAULT_MAX_RESPONSE_BYTES
from tegkit.catalog import find
from tegkit.cloud._envelope import (
    CommandResult,
    decode_answer,
    parse_command_result,
    unwrap,
)
from tegkit.cloud._models import CloudSiteInfo, EnergySite, LiveStatus
from tegkit.cloud._tokens import NEW_TOKENS_HINT, TokenKeeper, Tokens, read_token_file
from tegkit.cloud._transport import CloudTransport
from tegkit.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from tegkit.ownerapi import (
    AUTH_URL,
    COMMAND_FIELDS,
    OWNER_API_URL,
    Command,
    check_command_value,
)

_log = logging.getLogger("tegkit.cloud")


def _path(method: str, template: str, **params: str) -> str:
    # Every path comes from the catalog: a typo fails loudly instead of calling a wrong URL.
    return find(method, template).format(**params)


class CloudClient:
    """Async client of the Owner API (energy sites only).

    Use as an async context manager, or call `close()`. An httpx client passed in
    (`http_client`) is borrowed and never closed here; its own TLS and HTTP/2 settings apply.
    With `token_file`, refreshed tokens are written to it (mode 0600) before they are used.
    Tokens are renewed EXPIRY_MARGIN_S before their stated expiry (by `clock_s`, Unix
    seconds), and on a 401; one refresh is in flight at a time.
    """

    def __init__(
        self,
        access_token: str,
        refresh_token: str | None = None,
        *,
        base_url: str = OWNER_API_URL,
        auth_url: str = AUTH_URL,
        http_client: httpx.AsyncClient | None = None,
        token_file: Path | None = None,
        ssl: SSLContext | bool | None = None,
        timeout_s: float = 20,
        expires_at_s: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        http1: bool = False,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(access_token, str) or not access_token:
            raise InvalidInputError("access_token", "a non-empty string")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise InvalidInputError(
                "max_response_bytes", "a whole number of bytes >= 1", max_response_bytes
            )
        self.max_response_bytes = max_response_bytes
        self._base_url = base_url.rstrip("/")
        self._keeper = TokenKeeper(
            Tokens(access_token, refresh_token or None, expires_at_s),
            auth_url=auth_url,
            token_file=None if token_file is None else Path(token_file),
            clock_s=clock_s,
        )
        self._transport = CloudTransport(
            verify=True if ssl is None else ssl,
            timeout_s=timeout_s,
            http1=http1,
            client=http_client,
        )
        self._token_file = token_file
        #: the HTTP version of the last answer ("HTTP/2"; "HTTP/1.1" when opted in)
        self.last_http_version: str | None = None
        self._renewed_for_http1_refusal = False

    @classmethod
    def from_token_file(cls, path: Path, **kwargs: Any) -> CloudClient:
        """A client from a token file {access_token, refresh_token, expires_at}; kept in step."""
        tokens = read_token_file(Path(path))
        return cls(
            tokens.access_token,
            tokens.refresh_token,
            token_file=Path(path),
            expires_at_s=tokens.expires_at_s,
            **kwargs,
        )

    def __repr__(self) -> str:
        version = "HTTP/1.1" if self._transport.http1 else "HTTP/2"
        return (
            f"CloudClient(base_url={self._base_url!r}, token_file={self._token_file!r}, {version})"
        )

    @property
    def tokens(self) -> Tokens:
        """The tokens in use now (after any refresh); their repr hides the secrets."""
        return self._keeper.tokens

    @property
    def refresh_count(self) -> int:
        """How many times this client renewed its tokens."""
        return self._keeper.refresh_count

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP client if this client created it; a borrowed one stays open."""
        await self._transport.aclose()

    # --- transport ------------------------------------------------------------------------

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str
    ) -> tuple[int, bytes, str | None]:
        answer = await self._transport.send(
            method,
            self._base_url + path,
            endpoint=f"{method} {path}",
            limit_bytes=self.max_response_bytes,
            json_body=body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self.last_http_version = answer.http_version
        _log.debug("%s %s -> %s (%s)", method, path, answer.status, answer.http_version)
        return answer.status, answer.body, answer.retry_after

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The unwrapped `response` of one call; one token refresh and retry on a 401.

        Tesla's 403 for a token minted over HTTP/1.1 (saved by an older tegkit, or by
        another tool) gets one refresh over HTTP/2 per client too, which mints a good one.
        """
        keeper = self._keeper
        if keeper.due():
            await self._refresh(keeper.tokens.access_token)
        token = keeper.tokens.access_token
        status, raw, retry_after = await self._send(method, path, body, token)
        if keeper.can_refresh and (
            status == 401
            or (
                _http1_refusal(status, raw)
                and not self._transport.http1
                and not self._renewed_for_http1_refusal
            )
        ):
            self._renewed_for_http1_refusal |= status == 403
            await self._refresh(token)
            token = keeper.tokens.access_token
            status, raw, retry_after = await self._send(method, path, body, token)
        try:
            return unwrap(
                status,
                raw,
                method=method,
                path=path,
                retry_after=retry_after,
                secrets=keeper.secrets(),
            )
        except PermissionDeniedError as exc:
            if self._transport.http1 and _http1_refusal(status, raw):
                raise PermissionDeniedError(
                    exc.status,
                    method,
                    path,
                    error=exc.error,
                    message=(
                        "Tesla's cloud refuses tokens refreshed over HTTP/1.1: use HTTP/2 "
                        "(drop --http1 / http1=True) and refresh the tokens"
                    ),
                ) from None
            raise

    async def refresh(self) -> Tokens:
        """Renew the tokens now with the refresh token (rotated ones are saved, then used)."""
        if not self._keeper.can_refresh:
            raise AuthenticationError(
                401, "POST", "/oauth2/v3/token", message=f"no refresh token; {NEW_TOKENS_HINT}"
            )
        await self._refresh(self._keeper.tokens.access_token)
        return self._keeper.tokens

    async def _refresh(self, stale_access_token: str) -> None:
        await self._keeper.refresh(self._transport, stale_access_token=stale_access_token)

    # --- reads ----------------------------------------------------------------------------

    async def products(self) -> list[dict[str, Any]]:
        """Every product of the account (vehicles and energy sites) as the Owner API sends it."""
        path = _path("GET", "/api/1/products")
        response = await self._request("GET", path)
        return decode_answer(list[dict[str, Any]], response, method="GET", path=path)

    async def energy_sites(self) -> list[EnergySite]:
        """The account's energy sites (products that have an energy_site_id)."""
        path = _path("GET", "/api/1/products")
        return [
            decode_answer(EnergySite, p, method="GET", path=path)
            for p in await self.products()
            if "energy_site_id" in p
        ]

    async def live_status(self, site_id: int) -> LiveStatus:
        """Power flow and charge (app percent) of one energy site now."""
        path = _path("GET", "/api/1/energy_sites/{site_id}/live_status", site_id=_site(site_id))
        return decode_answer(LiveStatus, await self._request("GET", path), method="GET", path=path)

    async def site_info(self, site_id: int) -> CloudSiteInfo:
        """Configuration of one energy site: name, mode, reserve (app percent), nameplate."""
        path = _path("GET", "/api/1/energy_sites/{site_id}/site_info", site_id=_site(site_id))
        response = await self._request("GET", path)
        return decode_answer(CloudSiteInfo, response, method="GET", path=path)

    # --- commands -------------------------------------------------------------------------

    async def set_backup_reserve(
        self, app_percent: float, *, battery_id: str | None = None, site_id: int | None = None
    ) -> CommandResult:
        """Set the backup reserve on the APP scale (0..100) by battery id or energy site id."""
        return await self._command("backup", app_percent, battery_id, site_id)

    async def set_site_name(
        self, name: str, *, battery_id: str | None = None, site_id: int | None = None
    ) -> CommandResult:
        """Rename the site by battery id or energy site id."""
        return await self._command("site_name", name, battery_id, site_id)

    async def set_operation_mode(
        self, mode: str, *, battery_id: str | None = None, site_id: int | None = None
    ) -> CommandResult:
        """Set the operation mode (self_consumption, backup, autonomous)."""
        return await self._command("operation", mode, battery_id, site_id)

    async def _command(
        self, command: Command, value: object, battery_id: str | None, site_id: int | None
    ) -> CommandResult:
        # Everything is checked before anything is sent.
        wire_value = check_command_value(command, value)
        if (battery_id is None) == (site_id is None):
            raise InvalidInputError(
                "battery_id/site_id", "exactly one of battery_id or site_id", None
            )
        if battery_id is not None:
            if not isinstance(battery_id, str) or not battery_id:
                raise InvalidInputError("battery_id", "a non-empty string", battery_id)
            path = _path(
                "POST", f"/api/1/powerwalls/{{battery_id}}/{command}", battery_id=battery_id
            )
        else:
            path = _path(
                "POST", f"/api/1/energy_sites/{{site_id}}/{command}", site_id=_site(site_id)
            )
        response = await self._request("POST", path, {COMMAND_FIELDS[command]: wire_value})
        return parse_command_result(response, method="POST", path=path)


def _http1_refusal(status: int, raw: bytes) -> bool:
    """Whether an answer is Tesla's 403 for a token that was minted over HTTP/1.1."""
    if status != 403 or _HTTP1_REFUSAL_MARK not in raw:
        return False
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, str) and error.startswith(_HTTP1_REFUSAL_ERROR)


# The error Tesla's Owner API answers (403) to a token refreshed over HTTP/1.1 (June 2026).
_HTTP1_REFUSAL_ERROR = "forbidden, see https://developer.tesla.com/docs/fleet-api"
_HTTP1_REFUSAL_MARK = b"developer.tesla.com/docs/fleet-api"


def _site(site_id: object) -> str:
    if isinstance(site_id, bool) or not isinstance(site_id, int) or site_id < 0:
        raise InvalidInputError("site_id", "a non-negative integer energy_site_id", site_id)
    return str(site_id)


__all__ = ["CloudClient"]
