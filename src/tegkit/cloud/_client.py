"""CloudClient: the async Owner API client for one account's energy sites.

Reads and commands for a Powerwall site through Tesla's cloud. Percents are on the APP scale
(0..100 as the app shows them), never the gateway's raw scale. The token endpoint and the
API are spoken to over HTTP/2 (see `cloud._transport`); HTTP/1.1 only with `http1=True`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import Any, Final, Literal, NamedTuple, Self, overload
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from tegkit._body import DEFAULT_MAX_RESPONSE_BYTES, checked_max_response_bytes
from tegkit.catalog import find
from tegkit.cloud._envelope import (
    CommandResult,
    decode_answer,
    parse_command_result,
    unwrap,
)
from tegkit.cloud._models import (
    BackupHistory,
    CloudSiteInfo,
    EnergyHistory,
    EnergySite,
    LiveStatus,
    _BackupHistoryWire,
    backup_history_from_wire,
)
from tegkit.cloud._ratelimit import CloudRateLimit, observe, site_key
from tegkit.cloud._tokens import (
    NEW_TOKENS_HINT,
    TokenKeeper,
    TokenOrigin,
    Tokens,
    read_token_file,
    read_token_origin,
)
from tegkit.cloud._transport import CloudTransport
from tegkit.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
)
from tegkit.models.vocabulary import ExportRule
from tegkit.ownerapi import (
    AUTH_URL,
    COMMAND_FIELDS,
    DEFAULT_REGION,
    EXPORT_RULE_FIELD,
    FLAVOURS,
    FLEET_API_URLS,
    FLEET_AUTH_URLS,
    GRID_CHARGING_FIELD,
    OAUTH_CLIENT_ID,
    OFF_GRID_EV_RESERVE_FIELD,
    OWNER_API_URL,
    REGIONS,
    STORM_MODE_FIELD,
    TOU_SETTINGS_FIELD,
    ApiFlavour,
    Command,
    Region,
    check_command_body,
    check_command_value,
    check_export_rule,
    check_flag,
)

_log = logging.getLogger("tegkit.cloud")


def _path(method: str, template: str, **params: str) -> str:
    # Every path comes from the catalog: a typo fails loudly instead of calling a wrong URL.
    return find(method, template).format(**params)


class CloudClient:
    """Async client of the Owner API or the Fleet API (energy sites only).

    `flavour` "owner" (the default: Tesla's app's client id, owner-api host) or "fleet"
    (the user's own application, `client_id` required, optional `client_secret` sent with
    refreshes; the host of `region`, "na" unless given). `base_url` / `auth_url` override
    the hosts (a simulator). The Fleet API's rate limits are honoured per site: after a 429
    nothing is sent for that site before its Retry-After, with nothing remaining nothing
    before the reset; such a call waits if the wait is at most `rate_limit_wait_s`, else
    raises RateLimitedError with the wait (every wait capped at an hour).

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
        base_url: str | None = None,
        auth_url: str | None = None,
        flavour: ApiFlavour = "owner",
        region: Region | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        rate_limit_wait_s: float = 0.0,
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
        self.max_response_bytes = checked_max_response_bytes(max_response_bytes)
        origin = _origin(flavour, region, client_id, base_url, auth_url)
        if flavour == "fleet":
            region_ = region or DEFAULT_REGION
            default_base, default_auth = FLEET_API_URLS[region_], FLEET_AUTH_URLS[region_]
        else:
            default_base, default_auth = OWNER_API_URL, AUTH_URL
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
            raise InvalidInputError("client_secret", "a non-empty string or None")
        if not isinstance(rate_limit_wait_s, int | float) or not 0 <= rate_limit_wait_s <= 3600:
            raise InvalidInputError(
                "rate_limit_wait_s", "seconds from 0 to 3600", rate_limit_wait_s
            )
        self.flavour: ApiFlavour = flavour
        self.rate_limit_wait_s = float(rate_limit_wait_s)
        self._base_url = (base_url or default_base).rstrip("/")
        self._keeper = TokenKeeper(
            Tokens(access_token, refresh_token or None, expires_at_s),
            auth_url=auth_url or default_auth,
            token_file=None if token_file is None else Path(token_file),
            clock_s=clock_s,
            origin=origin,
            client_secret=client_secret,
        )
        self._clock_s = clock_s
        self._rate_limits: dict[str, CloudRateLimit] = {}
        #: the rate limits stated by the last answer that stated any (None: none seen)
        self.last_rate_limit: CloudRateLimit | None = None
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
        """A client from a token file {access_token, refresh_token, expires_at}; kept in step.

        The flavour, client id, region and hosts the file records apply unless given here.
        """
        tokens = read_token_file(Path(path))
        origin = read_token_origin(Path(path))
        kwargs.setdefault("flavour", origin.flavour)
        if origin.flavour == "fleet":
            kwargs.setdefault("client_id", origin.client_id)
        for key in ("region", "base_url", "auth_url"):
            if getattr(origin, key) is not None:
                kwargs.setdefault(key, getattr(origin, key))
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
            f"CloudClient({self.flavour}, base_url={self._base_url!r}, "
            f"token_file={self._token_file!r}, {version})"
        )

    @property
    def origin(self) -> TokenOrigin:
        """The flavour and client id (and hosts given) these tokens belong to."""
        return self._keeper.origin

    @property
    def rate_limits(self) -> dict[str, CloudRateLimit]:
        """The rate limits last stated per site ("energy_sites/ID", "powerwalls/ID", "account")."""
        return dict(self._rate_limits)

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

    async def _hold_for_rate_limit(self, method: str, path: str) -> None:
        """Wait or refuse while the site's rate limit says nothing may be sent yet."""
        state = self._rate_limits.get(site_key(path))
        if state is None:
            return
        wait_s = state.wait_s(self._clock_s())
        if wait_s <= 0:
            return
        if wait_s > self.rate_limit_wait_s:
            raise RateLimitedError(
                429,
                method,
                path.partition("?")[0],
                error="rate limited",
                message=(
                    f"not sent: the cloud's rate limit for this site allows the next request "
                    f"in {wait_s:.0f} s"
                ),
                retry_after_s=wait_s,
            )
        await asyncio.sleep(wait_s)

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str
    ) -> tuple[int, bytes, str | None]:
        await self._hold_for_rate_limit(method, path)
        answer = await self._transport.send(
            method,
            self._base_url + path,
            endpoint=f"{method} {path}",
            limit_bytes=self.max_response_bytes,
            json_body=body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self.last_http_version = answer.http_version
        key = site_key(path)
        stated = observe(
            self._rate_limits.get(key),
            status=answer.status,
            headers=answer.rate_limit_headers,
            retry_after=answer.retry_after,
            now_s=self._clock_s(),
        )
        if stated is not None:
            self._rate_limits[key] = stated
            self.last_rate_limit = stated
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

    # --- history --------------------------------------------------------------------------

    async def backup_history(self, site_id: int) -> BackupHistory:
        """Every outage the cloud remembers for the site (durations in seconds).

        The Owner API flavour asks GET /api/1/energy_sites/{id}/history?kind=backup. The
        Fleet API serves outages by calendar period only (calendar_history?kind=backup), so
        there this is `calendar_history(site_id, "backup", "year")`: this year's outages;
        ask calendar_history with an end_date for earlier years. tegkit's simulator serves
        both paths.
        """
        if self.flavour == "fleet":
            return await self.calendar_history(site_id, "backup", "year")
        path = _path("GET", "/api/1/energy_sites/{site_id}/history", site_id=_site(site_id))
        response = await self._request("GET", path + "?" + urlencode({"kind": "backup"}))
        wire = decode_answer(_BackupHistoryWire, response, method="GET", path=path)
        return backup_history_from_wire(wire)

    @overload
    async def calendar_history(
        self,
        site_id: int,
        kind: Literal["energy"] = "energy",
        period: str = "day",
        end_date: dt.datetime | None = None,
        time_zone: str | None = None,
    ) -> EnergyHistory: ...
    @overload
    async def calendar_history(
        self,
        site_id: int,
        kind: Literal["backup"],
        period: str = "day",
        end_date: dt.datetime | None = None,
        time_zone: str | None = None,
    ) -> BackupHistory: ...
    async def calendar_history(
        self,
        site_id: int,
        kind: str = "energy",
        period: str = "day",
        end_date: dt.datetime | None = None,
        time_zone: str | None = None,
    ) -> EnergyHistory | BackupHistory:
        """The site's history by calendar period, up to the local day of `end_date`.

        kind "energy": energy per bucket in Wh (day, week, month: a bucket per local day;
        year: a bucket per month). kind "backup": the outages that began in the period (the
        Fleet API's backup_history). `end_date` needs a UTC offset; None leaves it to the
        cloud (its now). `time_zone` is an IANA name; None leaves it to the cloud (the site's).
        Everything is checked before anything is sent.
        """
        if kind not in HISTORY_KINDS:
            raise InvalidInputError("kind", "one of " + ", ".join(HISTORY_KINDS), kind)
        if period not in HISTORY_PERIODS:
            raise InvalidInputError("period", "one of " + ", ".join(HISTORY_PERIODS), period)
        query = {"kind": kind, "period": period}
        if end_date is not None:
            if not isinstance(end_date, dt.datetime) or end_date.utcoffset() is None:
                raise InvalidInputError("end_date", "a datetime with a UTC offset", end_date)
            query["end_date"] = end_date.isoformat()
        if time_zone is not None:
            query["time_zone"] = _zone_name(time_zone)
        path = _path(
            "GET", "/api/1/energy_sites/{site_id}/calendar_history", site_id=_site(site_id)
        )
        response = await self._request("GET", path + "?" + urlencode(query))
        if kind == "backup":
            wire = decode_answer(_BackupHistoryWire, response, method="GET", path=path)
            return backup_history_from_wire(wire)
        return decode_answer(EnergyHistory, response, method="GET", path=path)

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

    async def set_grid_import_export(
        self,
        site_id: int,
        grid_charging_allowed: bool | None = None,
        export_rule: ExportRule | str | None = None,
    ) -> CommandResult:
        """Whether the battery may charge from the grid, and/or what may be exported.

        Either or both. Tesla's body turns the first around:
        disallow_charge_from_grid_with_solar_installed = not grid_charging_allowed.
        """
        body: dict[str, Any] = {}
        if grid_charging_allowed is not None:
            allowed = check_flag(grid_charging_allowed, "grid_charging_allowed")
            body[GRID_CHARGING_FIELD] = not allowed
        if export_rule is not None:
            body[EXPORT_RULE_FIELD] = str(check_export_rule(export_rule, "export_rule"))
        if not body:
            raise InvalidInputError("grid_charging_allowed/export_rule", "either or both, set")
        return await self._site_command("grid_import_export", site_id, body)

    async def set_storm_watch(self, site_id: int, enabled: bool) -> CommandResult:
        """Turn storm watch on or off (Tesla's storm_mode: charge to full before a storm)."""
        return await self._site_command("storm_mode", site_id, {STORM_MODE_FIELD: enabled})

    async def set_off_grid_ev_reserve(self, site_id: int, app_percent: float) -> CommandResult:
        """The charge (app percent) vehicles may not take from the battery during an outage."""
        body = {OFF_GRID_EV_RESERVE_FIELD: app_percent}
        return await self._site_command("off_grid_vehicle_charging_reserve", site_id, body)

    async def set_time_of_use_settings(
        self, site_id: int, tou_settings: dict[str, Any]
    ) -> CommandResult:
        """Send a tariff: `tou_settings` is {"tariff_content_v2": {...}} in Tesla's format.

        Only its outer shape, size and depth are checked here; the tariff is passed as given.
        """
        body = {TOU_SETTINGS_FIELD: tou_settings}
        return await self._site_command("time_of_use_settings", site_id, body)

    async def _site_command(
        self, command: Command, site_id: int, body: dict[str, Any]
    ) -> CommandResult:
        # Everything is checked before anything is sent, by the rules the simulator applies.
        wire_body = check_command_body(command, body)
        path = _path("POST", f"/api/1/energy_sites/{{site_id}}/{command}", site_id=_site(site_id))
        response = await self._request("POST", path, wire_body)
        return parse_command_result(response, method="POST", path=path)

    @staticmethod
    def plan_backup_reserve(
        app_percent: float, *, battery_id: str | None = None, site_id: int | None = None
    ) -> PlannedCommand:
        """The request `set_backup_reserve` sends, checked, without sending it."""
        return _plan("backup", app_percent, battery_id, site_id)

    @staticmethod
    def plan_operation_mode(
        mode: str, *, battery_id: str | None = None, site_id: int | None = None
    ) -> PlannedCommand:
        """The request `set_operation_mode` sends, checked, without sending it."""
        return _plan("operation", mode, battery_id, site_id)

    async def _command(
        self, command: Command, value: object, battery_id: str | None, site_id: int | None
    ) -> CommandResult:
        planned = _plan(command, value, battery_id, site_id)  # the value is checked first
        if (battery_id is None) == (site_id is None):
            raise InvalidInputError(
                "battery_id/site_id", "exactly one of battery_id or site_id", None
            )
        response = await self._request(planned.method, planned.path, planned.body)
        return parse_command_result(response, method=planned.method, path=planned.path)


class PlannedCommand(NamedTuple):
    """A checked command request: what would be sent (a dry run prints it)."""

    method: str
    path: str
    body: dict[str, Any]


def _plan(
    command: Command, value: object, battery_id: str | None, site_id: int | None
) -> PlannedCommand:
    """Check a command and build its request; everything is checked before anything is
    sent. With neither id (a dry run before the site is known) the path keeps the
    `{site_id}` placeholder."""
    wire_value = check_command_value(command, value)
    if battery_id is not None:
        if not isinstance(battery_id, str) or not battery_id:
            raise InvalidInputError("battery_id", "a non-empty string", battery_id)
        path = _path("POST", f"/api/1/powerwalls/{{battery_id}}/{command}", battery_id=battery_id)
    elif site_id is not None:
        path = _path("POST", f"/api/1/energy_sites/{{site_id}}/{command}", site_id=_site(site_id))
    else:
        path = f"/api/1/energy_sites/{{site_id}}/{command}"
    return PlannedCommand("POST", path, {COMMAND_FIELDS[command]: wire_value})


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


#: what calendar_history answers: energy per period, or outages
HISTORY_KINDS: Final = ("energy", "backup")
HISTORY_PERIODS: Final = ("day", "week", "month", "year")


def _zone_name(name: object) -> str:
    """An IANA time zone name, checked against the zone database (no network)."""
    if isinstance(name, str) and 0 < len(name) <= 64 and ".." not in name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return name
    raise InvalidInputError("time_zone", "an IANA time zone name such as Europe/Berlin", name)


def _origin(
    flavour: object,
    region: object,
    client_id: object,
    base_url: str | None,
    auth_url: str | None,
) -> TokenOrigin:
    """Who the tokens belong to, checked: a known flavour and region, a client id for fleet."""
    if flavour not in FLAVOURS:
        raise InvalidInputError("flavour", "one of " + ", ".join(FLAVOURS), flavour)
    if region is not None and region not in REGIONS:
        raise InvalidInputError("region", "one of " + ", ".join(REGIONS), region)
    if flavour == "fleet":
        if not isinstance(client_id, str) or not client_id.strip():
            raise InvalidInputError(
                "client_id", "the client id of your Fleet API application", client_id
            )
    elif client_id not in (None, OAUTH_CLIENT_ID):
        raise InvalidInputError("client_id", f"{OAUTH_CLIENT_ID!r} for the Owner API", client_id)
    return TokenOrigin(
        flavour="fleet" if flavour == "fleet" else "owner",
        client_id=client_id if isinstance(client_id, str) and client_id else OAUTH_CLIENT_ID,
        region=region if region in REGIONS else None,
        base_url=base_url,
        auth_url=auth_url,
    )


def _site(site_id: object) -> str:
    if isinstance(site_id, bool) or not isinstance(site_id, int) or site_id < 0:
        raise InvalidInputError("site_id", "a non-negative integer energy_site_id", site_id)
    return str(site_id)


__all__ = ["CloudClient"]
