"""The async client for one gateway's local API: a typed method per documented endpoint.

>>> async with Gateway("192.168.91.1", password="...", tls=PinnedCertificate(fp)) as gw:
...     aggregates = await gw.meters_aggregates()
...     aggregates.site.instant_power_w
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import time
import urllib.parse
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
import msgspec

from tegkit import catalog, models, percent
from tegkit.catalog import Auth as AuthRule
from tegkit.catalog import Effect, Endpoint, Firmware
from tegkit.client._auth import Authenticator, Credentials
from tegkit.client._tls import TlsPolicy, VerifyCertificate
from tegkit.client._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    EndpointGuard,
    Reply,
    SingleFlight,
    Transport,
    TtlCache,
    base_url,
    error_for,
)
from tegkit.errors import (
    ApiError,
    EndpointNotSupportedError,
    GatewayError,
    InvalidInputError,
    ParseError,
)
from tegkit.models.vocabulary import CUSTOMER_MODES, OperationMode
from tegkit.ownerapi import check_site_name

T = TypeVar("T")
_LOG = logging.getLogger("tegkit.client")

# POST /api/operation's max_pv_export_power_kW: no residential site exports more than this.
MAX_PV_EXPORT_POWER_KW = 1000.0
_SITEMASTER_PATH = "/api/sitemaster"
_SITEMASTER_RUN_PATH = "/api/sitemaster/run"
# How often the restarted sitemaster is read back until it runs (or the timeout passes).
_SITEMASTER_POLL_S = 0.5
_VERSION = re.compile(r"\s*(\d+)\.(\d+)")


def firmware_family(version: str | None) -> Firmware | None:
    """ "legacy" before 20.49 (1.x and 20.x before 20.49), "modern" from 20.49; None if unknown.

    >>> firmware_family("1.40.2"), firmware_family("21.44 223a56cd"), firmware_family("?")
    ('legacy', 'modern', None)
    """
    found = _VERSION.match(version or "")
    if found is None:
        return None
    major, minor = int(found.group(1)), int(found.group(2))
    return "legacy" if (major, minor) < (20, 49) else "modern"


@dataclass(frozen=True, slots=True)
class SitemasterRestart:
    """The client started the sitemaster again after its own login stopped it (firmware 1.x).

    `running` is what GET /api/sitemaster said afterwards; `error` says why the restart
    could not be done or confirmed (None when it was).
    """

    at: dt.datetime
    running: bool
    error: str | None = None


# The same modes and site-name rule as the Owner API: the app offers one set of settings.
MODES = CUSTOMER_MODES


class Gateway:
    """Async client for a Tesla Energy Gateway; use as `async with Gateway(...) as gw`.

    `host` is a host name, IP address, host:port or https:// URL. `tls` says how to trust
    the gateway's self-signed certificate; the default, VerifyCertificate() with the system
    CAs, refuses a stock gateway and says how to pin it. `sni` sends that server name (teg,
    powerwall or powerpack) whatever address is dialled. A `session` passed in is used and
    left open; otherwise the Gateway owns one and closes it. `firmware` ("legacy"/"modern"),
    when known, lets the client log in before the first request that needs it instead of
    waiting for a 401. `clock` (monotonic seconds) times a 429's cool-down; a test on the
    simulator's clock passes that one. `connections` caps the kept-alive connections of
    the Gateway's own session (each TLS connection holds buffers: a monitor following a
    fleet keeps fewer).
    """

    def __init__(
        self,
        host: str,
        *,
        password: str | None = None,
        email: str = "",
        username: str = "customer",
        session: aiohttp.ClientSession | None = None,
        tls: TlsPolicy | None = None,
        sni: str | None = None,
        timeout_s: float = 10.0,
        session_file: Path | None = None,
        cache_ttl_s: dict[str, float] | float = 0.0,
        firmware: Firmware | None = None,
        retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        restart_sitemaster_after_login: bool = True,
        clock: Callable[[], float] = time.monotonic,
        connections: int = 4,
    ) -> None:
        self.url = base_url(host)
        self.firmware: Firmware | None = firmware
        self._transport = Transport(
            self.url,
            tls=tls if tls is not None else VerifyCertificate(),
            sni=sni,
            session=session,
            timeout_s=timeout_s,
            retries=retries,
            max_response_bytes=max_response_bytes,
            connections=connections,
        )
        self._auth = Authenticator(
            self._transport,
            Credentials(password=password, email=email, username=username),
            session_file=session_file,
        )
        self._guard = EndpointGuard(clock)  # a 429's cool-down, on the caller's clock
        self._flight = SingleFlight()
        self._cache = TtlCache(cache_ttl_s)
        self.restart_sitemaster_after_login = restart_sitemaster_after_login
        # The family found from /api/status when `firmware` was not given (asked once).
        self._family: Firmware | None = firmware
        self._restarts: deque[SitemasterRestart] = deque(maxlen=16)
        self._auth.before_login = self._before_login
        self._auth.after_login = self._after_login

    def __repr__(self) -> str:
        return f"<Gateway {self.url}>"

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if the Gateway owns it (a borrowed one stays open)."""
        await self._transport.close()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (logins included)."""
        return self._transport.requests_sent

    @property
    def logged_in(self) -> bool:
        """True while a session (cookies or token) is held."""
        return self._auth.state.active

    @property
    def max_response_bytes(self) -> int:
        """The largest answer body read; a larger one is ResponseTooLargeError."""
        return self._transport.max_response_bytes

    @property
    def sitemaster_restarts(self) -> list[SitemasterRestart]:
        """Restarts of the sitemaster after this client's own logins (the last 16), oldest
        first. Only firmware before 20.49 stops the system on login; see
        `restart_sitemaster_after_login`."""
        return list(self._restarts)

    # --- firmware 1.x: a login stops the system -----------------------------------------

    async def _before_login(self) -> bool:
        """Whether the sitemaster must be started again after this login (read before it).

        Spec 001, "Login": on firmware 1.x getting a token stops the Powerwalls. Only a
        system that was running before our login is started again; one the owner stopped
        stays stopped.
        """
        if not self.restart_sitemaster_after_login:
            return False
        try:
            if self._family is None:
                status = await self._transport.round_trip("GET", "/api/status", idempotent=True)
                if 200 <= status.status < 300:
                    version = models.decode(models.GatewayStatus, status.body, "GET /api/status")
                    self._family = firmware_family(version.version)
            if self._family != "legacy":
                return False
            return await self._sitemaster_running() is True
        except GatewayError as exc:
            _LOG.debug("cannot tell whether the login stops the system: %s", exc)
            return False

    async def _sitemaster_running(self) -> bool | None:
        reply = await self._transport.round_trip("GET", _SITEMASTER_PATH, idempotent=True)
        if not 200 <= reply.status < 300:
            return None
        return models.decode(models.Sitemaster, reply.body, f"GET {_SITEMASTER_PATH}").running

    async def _after_login(self, was_running: bool) -> None:
        """Start the sitemaster again if our login stopped it, and read back that it runs."""
        if not was_running:
            return
        try:
            if await self._sitemaster_running() is True:
                return  # the login left it running: nothing to repair, nothing to report
            error = await self._run_sitemaster()
        except GatewayError as exc:
            error = f"could not start the sitemaster again: {exc}"
        self._restarts.append(SitemasterRestart(dt.datetime.now(dt.UTC), error is None, error))
        if error is None:
            _LOG.info("the login stopped the system (firmware 1.x); started it again")
        else:
            _LOG.warning("the login stopped the system (firmware 1.x) and %s", error)

    async def _run_sitemaster(self) -> str | None:
        """GET /api/sitemaster/run, then read until it runs: None, or why it does not."""
        reply = await self._transport.round_trip(
            "GET", _SITEMASTER_RUN_PATH, headers=self._auth.state.headers()
        )
        if not 200 <= reply.status < 300:
            raise error_for("GET", _SITEMASTER_RUN_PATH, reply)
        # The gateway answers 202 and starts within moments; read back until it says so.
        deadline = time.monotonic() + self._transport.timeout_s
        while await self._sitemaster_running() is not True:
            if time.monotonic() >= deadline:
                return "the sitemaster did not report running after GET /api/sitemaster/run"
            await asyncio.sleep(_SITEMASTER_POLL_S)
        return None

    # --- session ------------------------------------------------------------------------

    async def login(self) -> None:
        """Log in now, so that a wrong password shows at once (login is otherwise lazy)."""
        await self._auth.login()

    async def logout(self) -> None:
        """GET /api/logout: end the session on the gateway and forget it here."""
        self._cache.clear()
        await self._auth.logout()

    # --- the generic request ------------------------------------------------------------

    async def request(
        self, method: str, path: str, json: object = None, *, allow_unknown: bool = False
    ) -> Any:
        """Any catalog endpoint by concrete path; the decoded JSON, or None for no body.

        Raises KeyError for a request outside the catalog unless `allow_unknown`.
        """
        reply = await self._fetch(method, path, json, allow_unknown=allow_unknown)
        return _json(method, path, reply.body)

    async def request_raw(
        self, method: str, path: str, json: object = None, *, allow_unknown: bool = False
    ) -> Reply:
        """Like `request`, but the whole 2xx answer: status, headers and body bytes."""
        return await self._fetch(method, path, json, allow_unknown=allow_unknown)

    async def request_typed(
        self, method: str, path: str, json: object = None, *, allow_unknown: bool = False
    ) -> Any:
        """Like `request`, but decoded to the catalog entry's model where it has one."""
        reply = await self._fetch(method, path, json, allow_unknown=allow_unknown)
        if catalog.match(method, path) is None or not reply.body.strip():
            return _json(method, path, reply.body)
        return models.parse_response(method, path, reply.body)

    def forget(self, method: str, path: str) -> None:
        """Ask an endpoint again that answered 404 or is cooling down after 429."""
        self._guard.forget(f"{method.upper()} {path}")

    async def _fetch(
        self, method: str, path: str, json: object = None, *, allow_unknown: bool = False
    ) -> Reply:
        method = method.upper()
        found = catalog.match(method, path)
        if found is None and not allow_unknown:
            raise KeyError(f"{method} {path} is not in the endpoint catalog")
        endpoint = None if found is None else found[0]
        key = f"{method} {path}"
        self._guard.check(key)
        # Only catalogued reads are shared, cached and retried: other GETs change state.
        read = method == "GET" and endpoint is not None and endpoint.effect is Effect.READ
        if not read:
            return await self._exchange(method, path, json, endpoint, key, read)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        return await self._flight.run(
            key, lambda: self._exchange(method, path, json, endpoint, key, read)
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        json: object,
        endpoint: Endpoint | None,
        key: str,
        read: bool,
    ) -> Reply:
        needs_login = (
            endpoint is not None
            and self.firmware is not None
            and endpoint.auth.needs_login(self.firmware)
        )
        # A 403 from an installer-only endpoint, or one that a fresh session already met, is
        # about the role, not a stale session.
        relogin_on_403 = (
            endpoint is None or endpoint.auth is not AuthRule.INSTALLER
        ) and self._guard.relogin_helps(key)

        def send(headers: Mapping[str, str]) -> Awaitable[Reply]:
            return self._transport.round_trip(
                method, path, json=json, headers=headers, idempotent=read
            )

        reply = await self._auth.send(send, needs_login=needs_login, relogin_on_403=relogin_on_403)
        if not 200 <= reply.status < 300:
            error = error_for(method, path, reply)
            self._guard.note(key, error)
            raise error
        if read:
            self._cache.put(key, path, reply)
        return reply

    async def _get(self, path: str, model_type: type[T]) -> T:
        reply = await self._fetch("GET", path)
        return models.decode(model_type, reply.body, f"GET {path}")

    # --- live data ----------------------------------------------------------------------

    async def meters_aggregates(self) -> models.MetersAggregates:
        """GET /api/meters/aggregates: power (W) and energy counters (Wh) per meter."""
        return await self._get("/api/meters/aggregates", models.MetersAggregates)

    async def meters_site(self) -> models.MeterDetails:
        """GET /api/meters/site: the site meter(s) in detail."""
        return await self._get("/api/meters/site", models.MeterDetails)

    async def meters_solar(self) -> models.MeterDetails:
        """GET /api/meters/solar: the solar meter(s) in detail."""
        return await self._get("/api/meters/solar", models.MeterDetails)

    async def meters_readings(self) -> models.MeterReadings:
        """GET /api/meters/readings: raw readings of every meter."""
        return await self._get("/api/meters/readings", models.MeterReadings)

    async def meters(self) -> models.Meters:
        """GET /api/meters: meters and their CT configuration."""
        return await self._get("/api/meters", models.Meters)

    async def system_status(self) -> models.SystemStatus:
        """GET /api/system_status: battery blocks, capacity and energy."""
        return await self._get("/api/system_status", models.SystemStatus)

    async def state_of_energy(self) -> models.StateOfEnergy:
        """GET /api/system_status/soe: state of energy (raw percent; .app_percent too)."""
        return await self._get("/api/system_status/soe", models.StateOfEnergy)

    async def grid_status(self) -> models.GridStatus:
        """GET /api/system_status/grid_status: on grid, islanded, or in transition."""
        return await self._get("/api/system_status/grid_status", models.GridStatus)

    async def grid_faults(self) -> models.GridFaults:
        """GET /api/system_status/grid_faults: recent grid faults."""
        return await self._get("/api/system_status/grid_faults", models.GridFaults)

    # --- system -------------------------------------------------------------------------

    async def sitemaster(self) -> models.Sitemaster:
        """GET /api/sitemaster: whether the system is running and connected."""
        return await self._get("/api/sitemaster", models.Sitemaster)

    async def sitemaster_run(self) -> Any:
        """GET /api/sitemaster/run: start the system (202); the body, if any."""
        return await self.request("GET", "/api/sitemaster/run")

    async def sitemaster_stop(self) -> Any:
        """Stop the system: POST {"force": true}, or GET on firmware without the POST."""
        try:
            return await self.request("POST", "/api/sitemaster/stop", {"force": True})
        except ApiError as exc:
            if not isinstance(exc, EndpointNotSupportedError) and exc.status != 405:
                raise
        return await self.request("GET", "/api/sitemaster/stop")

    async def status(self) -> models.GatewayStatus:
        """GET /api/status: firmware version, uptime, commission count."""
        return await self._get("/api/status", models.GatewayStatus)

    async def config(self) -> models.Config:
        """GET /api/config: the gateway's configuration summary (its VIN)."""
        return await self._get("/api/config", models.Config)

    async def config_completed(self) -> Any:
        """GET /api/config/completed: apply staged settings (the gateway answers 202)."""
        self._cache.clear()
        return await self.request("GET", "/api/config/completed")

    async def update_status(self) -> models.UpdateStatus:
        """GET /api/system/update/status: firmware update state."""
        return await self._get("/api/system/update/status", models.UpdateStatus)

    async def auth_toggle_supported(self) -> models.AuthToggleSupported:
        """GET /api/auth/toggle/supported: whether power-switch login is available."""
        return await self._get("/api/auth/toggle/supported", models.AuthToggleSupported)

    # --- site ---------------------------------------------------------------------------

    async def site_info(self) -> models.SiteInfo:
        """GET /api/site_info: site name, grid code, nominal system power and energy."""
        return await self._get("/api/site_info", models.SiteInfo)

    async def site_name(self) -> models.SiteName:
        """GET /api/site_info/site_name: site name and timezone."""
        return await self._get("/api/site_info/site_name", models.SiteName)

    async def set_site_name(self, name: str) -> Any:
        """POST /api/site_info/site_name: rename the site (1 to 64 characters, not blank)."""
        check_site_name(name)
        self._cache.clear()
        return await self.request("POST", "/api/site_info/site_name", {"site_name": name})

    async def grid_codes(self) -> models.GridCodes:
        """GET /api/site_info/grid_codes: grid codes the gateway offers."""
        return await self._get("/api/site_info/grid_codes", models.GridCodes)

    async def powerwalls(self) -> models.Powerwalls:
        """GET /api/powerwalls: the Powerwalls and their synchronizer state."""
        return await self._get("/api/powerwalls", models.Powerwalls)

    async def powerwalls_status(self) -> models.PowerwallsStatus:
        """GET /api/powerwalls/status: Powerwall status summary."""
        return await self._get("/api/powerwalls/status", models.PowerwallsStatus)

    async def solars(self) -> models.Solars:
        """GET /api/solars: configured solar inverters."""
        return await self._get("/api/solars", models.Solars)

    async def solar_brands(self) -> models.SolarBrands:
        """GET /api/solars/brands: solar inverter brands."""
        return await self._get("/api/solars/brands", models.SolarBrands)

    async def solar_brand_models(self, brand: str) -> models.SolarModels:
        """GET /api/solars/brands/{brand}: the inverter models of one brand.

        `brand` is a name as /api/solars or /api/solars/brands gives it ("SolarEdge
        Technologies"); it is percent-encoded into the path.
        """
        if (
            not isinstance(brand, str)
            or not brand.strip()
            or len(brand) > 200
            or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in brand)
        ):
            raise InvalidInputError(
                "brand", "a brand name of 1 to 200 characters without control characters", brand
            )
        path = "/api/solars/brands/" + urllib.parse.quote(brand, safe="")
        return await self._get(path, models.SolarModels)

    async def generators(self) -> models.Generators:
        """GET /api/generators: configured generators."""
        return await self._get("/api/generators", models.Generators)

    # --- operation ----------------------------------------------------------------------

    async def operation(self) -> models.Operation:
        """GET /api/operation: mode and backup reserve (raw percent; app percent as property)."""
        return await self._get("/api/operation", models.Operation)

    async def set_operation(
        self,
        *,
        mode: str | None = None,
        backup_reserve_percent: float | None = None,
        scale: Literal["raw", "app"] | None = None,
        max_pv_export_power_kw: float | None = None,
        commit: bool = True,
    ) -> models.Operation:
        """Set the operation mode, backup reserve and/or PV export limit in one staged change.

        Everything is checked before sending. `scale` says whether `backup_reserve_percent`
        is on the gateway's raw scale or the app's (required with a reserve); the gateway is
        sent raw percent. `max_pv_export_power_kw` is the documented max_pv_export_power_kW
        field (kW, 0 to 1000). A value left out is kept as the gateway has it. With `commit`
        the change is applied by GET /api/config/completed; otherwise it stays staged.
        """
        post, *_ = await self.operation_requests(
            mode=mode,
            backup_reserve_percent=backup_reserve_percent,
            scale=scale,
            max_pv_export_power_kw=max_pv_export_power_kw,
        )
        body = post.body or {}
        self._cache.clear()
        reply = await self._fetch(post.method, post.path, body)
        result = (
            models.decode(models.Operation, reply.body, "POST /api/operation")
            if reply.body.strip()
            else models.Operation(
                legacy_mode=body["mode"],
                backup_reserve_raw_percent=body["backup_reserve_percent"],
                max_pv_export_power_kw=body.get("max_pv_export_power_kW", msgspec.UNSET),
            )
        )
        if commit:
            await self.config_completed()
        return result

    async def operation_requests(
        self,
        *,
        mode: str | None = None,
        backup_reserve_percent: float | None = None,
        scale: Literal["raw", "app"] | None = None,
        max_pv_export_power_kw: float | None = None,
        commit: bool = True,
    ) -> list[PlannedRequest]:
        """The requests `set_operation` would send, checked and completed; nothing changes.

        The gateway wants mode and reserve together, so a value left out is read from GET
        /api/operation (the only request this sends). Useful for a dry run.
        """
        body = _operation_body(mode, backup_reserve_percent, scale, max_pv_export_power_kw)
        if "mode" not in body or "backup_reserve_percent" not in body:
            current = await self.operation()
            body.setdefault("mode", current.mode)
            body.setdefault("backup_reserve_percent", current.backup_reserve_raw_percent)
        planned = [PlannedRequest("POST", "/api/operation", body)]
        if commit:
            planned.append(PlannedRequest("GET", "/api/config/completed"))
        return planned

    # --- setup and diagnostics ----------------------------------------------------------

    async def customer(self) -> models.Customer:
        """GET /api/customer: customer registration details."""
        return await self._get("/api/customer", models.Customer)

    async def customer_registration(self) -> models.CustomerRegistration:
        """GET /api/customer/registration: registration and consent status."""
        return await self._get("/api/customer/registration", models.CustomerRegistration)

    async def installer(self) -> models.Installer:
        """GET /api/installer: the installer's details."""
        return await self._get("/api/installer", models.Installer)

    async def networks(self) -> models.Networks:
        """GET /api/networks: configured network interfaces."""
        return await self._get("/api/networks", models.Networks)

    async def conn_tests(self) -> models.Diagnostic:
        """GET /api/system/networks/conn_tests: results of the connectivity checks."""
        return await self._get("/api/system/networks/conn_tests", models.Diagnostic)

    async def system_testing(self) -> models.SystemTesting:
        """GET /api/system/testing: results of the system self-tests."""
        return await self._get("/api/system/testing", models.SystemTesting)

    async def change_password(self, old_password: str, new_password: str) -> None:
        """POST /api/password/change; later logins use the new password."""
        if not isinstance(new_password, str) or not new_password:
            raise InvalidInputError("new_password", "a non-empty string", "<hidden>")
        body = {"old_password": old_password, "new_password": new_password, "toggled_pw": False}
        await self._fetch("POST", "/api/password/change", body)
        self._auth.change_password(new_password)


def _json(method: str, path: str, body: bytes) -> Any:
    """The decoded JSON of a body (None when empty); ParseError names the endpoint."""
    if not body.strip():
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ParseError(f"{method.upper()} {path}", str(exc)) from None


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """A request the client would send: method, concrete path and JSON body (or None)."""

    method: str
    path: str
    body: dict[str, Any] | None = None


def _operation_body(
    mode: str | None,
    reserve: float | None,
    scale: Literal["raw", "app"] | None,
    max_pv_export_kw: float | None = None,
) -> dict[str, Any]:
    """The POST /api/operation body for these arguments, or InvalidInputError."""
    if mode is None and reserve is None and max_pv_export_kw is None:
        raise InvalidInputError(
            "mode", "a mode, backup_reserve_percent and/or max_pv_export_power_kw", None
        )
    body: dict[str, Any] = {}
    if mode is not None:
        if mode == OperationMode.SCHEDULER:
            warnings.warn(
                f"operation mode '{mode}' is not supported by the local API; sent as asked",
                UserWarning,
                stacklevel=3,
            )
        elif mode not in MODES:
            raise InvalidInputError("mode", f"one of {', '.join(MODES)}", mode)
        body["mode"] = mode
    if reserve is not None:
        if scale not in percent.SCALES:
            raise InvalidInputError(
                "scale", "'raw' or 'app' (required with backup_reserve_percent)", scale
            )
        if (
            isinstance(reserve, bool)
            or not isinstance(reserve, int | float)
            or not math.isfinite(reserve)
            or not 0 <= reserve <= 100
        ):
            raise InvalidInputError(
                "backup_reserve_percent", f"a number from 0 to 100 on the {scale} scale", reserve
            )
        raw = round(percent.to_raw(float(reserve), scale), 2)
        body["backup_reserve_percent"] = int(raw) if raw.is_integer() else raw
    elif scale is not None and scale not in percent.SCALES:
        raise InvalidInputError("scale", "'raw' or 'app'", scale)
    if max_pv_export_kw is not None:
        if (
            isinstance(max_pv_export_kw, bool)
            or not isinstance(max_pv_export_kw, int | float)
            or not math.isfinite(max_pv_export_kw)
            or not 0 <= max_pv_export_kw <= MAX_PV_EXPORT_POWER_KW
        ):
            raise InvalidInputError(
                "max_pv_export_power_kw",
                f"a number of kW from 0 to {MAX_PV_EXPORT_POWER_KW:g}",
                max_pv_export_kw,
            )
        kw = round(float(max_pv_export_kw), 3)
        body["max_pv_export_power_kW"] = int(kw) if kw.is_integer() else kw
    return body


__all__ = [
    "MAX_PV_EXPORT_POWER_KW",
    "MODES",
    "Gateway",
    "PlannedRequest",
    "SitemasterRestart",
    "firmware_family",
]
