"""The simulated gateway's state: physics site, settings, sessions and the wizard state machines.

Everything here is plain state and rules; nothing speaks HTTP. The server reads it to build
bodies and calls its methods for writes; a method refuses a request by raising `Refusal`
carrying the gateway error body. Time is the physics site's simulated clock, so sessions,
lockouts and the test / update state machines move with `advance()` and not with the wall.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tegkit.errors import InvalidInputError
from tegkit.models import UpdateState
from tegkit.models.vocabulary import ExportRule, GridStatusValue, OperationMode, is_off_grid
from tegkit.sim.captures import captures
from tegkit.sim.firmware import (
    AUTO_RETRY_S,
    BATTERY_STOP_S,
    UPDATE_CHECK_S,
    UPDATE_DOWNLOAD_S,
    UPDATE_READY_S,
    auto_install_at,
)
from tegkit.sim.physics import Site
from tegkit.sim.profiles import FirmwareProfile, get_profile
from tegkit.sim.siteconfig import SiteSnapshot

ROLE_CUSTOMER = "Home_Owner"
ROLE_ENGINEER = "Provider_Engineer"
_MAX_TZ_CHARS = 64
# Bounds on what a peer can make the gateway keep (a real one has little memory either).
MAX_SESSIONS = 100
MAX_NETWORKS = 16
_MAX_NAME_CHARS = 64  # network names (an SSID has at most 32 bytes), security types
_MAX_PASSWORD_CHARS = 128
_MAX_EMAIL_CHARS = 254
_MAX_CTS = 8


# What a read builder or a write action answers: HTTP status and a JSON-able body (None: empty).
Answer = tuple[int, Any]


class Refusal(Exception):
    """A request the gateway refuses: HTTP status and the gateway error body fields."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "error": self.error, "message": self.message}


def rate_limited(retry_after_s: float) -> Refusal:
    """429 with the gateway's body (the same for login lockouts and request limits)."""
    message = "Api Limit reached for this endpoint"
    return Refusal(429, message, message, {"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def not_found(path: str) -> Refusal:
    """404 for a path the gateway does not serve (unknown, or gone in this firmware)."""
    return Refusal(404, "Not Found", f"{path} not found")


def bad_request(field_name: str, allowed: str) -> Refusal:
    """400 naming the field and what it allows, in the gateway's error body."""
    return Refusal(400, f"{field_name}: {allowed}", f"Invalid {field_name}")


@dataclass(slots=True)
class Session:
    """A logged-in client: its token, role and when it stops being valid (simulated time)."""

    token: str
    role: str
    email: str
    created: dt.datetime
    expires: dt.datetime


@dataclass(slots=True)
class _Timed:
    """A wizard job started at a simulated time (conn tests, charge test, firmware update)."""

    started: dt.datetime | None = None


# A firmware update in simulated seconds (sim/firmware.py, shared with the full-speed
# simulation): a check, a download, a pause ready to install, then the install, which stops
# the Powerwalls "around 15 minutes" (spec 001's user's complaint): the whole battery stop.
UPDATE_INSTALL_S = BATTERY_STOP_S
# The states spec 001 lists for GET /api/system/update/status, in the order an update walks.
CHECKING, DOWNLOADING, DOWNLOADED = (
    UpdateState.CHECKING,
    UpdateState.DOWNLOADING,
    UpdateState.DOWNLOADED,
)
INSTALLING, SUCCEEDED, FAILED = UpdateState.STAGED, UpdateState.SUCCEEDED, UpdateState.FAILED
# Scheduled with the simulator's timeline so each step happens at its exact simulated time.
UPDATE_STEPS = ("update_checked", "update_downloaded", "update_install", "update_finish")
# A released firmware's own instant: the gateway starts the update by itself (tag: version).
AUTO_UPDATE_STEP = "update_auto"
# Who started an update (FirmwareUpdate.started_by).
BY_REQUEST, BY_GATEWAY = "request", "gateway"

# (when, step, which update) -> runs gw.update_step(step, which) at that simulated time
Scheduler = Callable[[dt.datetime, str, str], None]

# A change made through the cloud reaches the gateway later: scheduled with this step, whose
# tag names the pending change (SimulatedGateway.run_cloud_change applies it).
CLOUD_CHANGE_STEP = "cloud_change"
# Changes waiting for their time; more are refused, so a client cannot grow the queue forever.
MAX_PENDING_CHANGES = 64
# The settings a cloud change may carry (Site attributes of the same names).
SITE_SETTINGS = (
    "mode",
    "backup_reserve_raw_percent",
    "grid_charging_allowed",
    "export_rule",
    "storm_watch",
    "off_grid_ev_reserve_app_percent",
)


@dataclass(slots=True)
class FirmwareUpdate:
    """The update state machine: what a check finds, where it stands, since when."""

    offered: str | None = None  # the profile a check finds; None: the firmware is current
    fail: bool = False  # the offered update fails once downloaded
    state: str = SUCCEEDED  # at rest, as the 21.44 capture
    status: str = "nonactionable"  # info.status: nonactionable, error
    since: dt.datetime | None = None  # last_status_time
    generation: int = 0  # steps scheduled for an earlier update are ignored
    started_by: str | None = None  # BY_REQUEST or BY_GATEWAY, for the latest update
    # A release waiting for the gateway's own update: the version and when it will start.
    auto_version: str | None = None
    auto_at: dt.datetime | None = None

    @property
    def busy(self) -> bool:
        return self.state in (CHECKING, DOWNLOADING, DOWNLOADED, INSTALLING)

    @property
    def installing(self) -> bool:
        return self.state == INSTALLING

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "status": self.status,
            "offered": self.offered,
            "fail": self.fail,
            "started_by": self.started_by,
            "auto_install_at": None if self.auto_at is None else self.auto_at.isoformat(),
        }


@dataclass(slots=True)
class GatewaySettings:
    """Settings a person changes through the wizard or the app."""

    site_name: str = "Home Energy Gateway"
    timezone: str = "America/Los_Angeles"
    commission_count: int = 11
    staged_operation: dict[str, Any] = field(default_factory=dict)
    max_pv_export_power_kw: float | None = None  # POST /api/operation's max_pv_export_power_kW
    networks: list[dict[str, Any]] = field(default_factory=list)
    registration: dict[str, Any] = field(default_factory=dict)
    cts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    client_protocols: dict[str, bool] = field(default_factory=dict)
    island_mode: str = "backup"


def _serial_digits(seed: int, salt: str, n: int) -> str:
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()
    return str(int(digest, 16))[-n:].rjust(n, "0")


class SimulatedGateway:
    """The gateway as a client sees it: identity, settings, sessions, and the physics site."""

    def __init__(
        self,
        site: Site,
        profile: FirmwareProfile,
        *,
        password: str | None = None,
        email: str = "owner@example.com",
        seed: int = 0,
        allow_customer_operation: bool = False,
        session_lifetime_s: float = 3600.0,
        login_max_failures: int = 5,
        login_window_s: float = 300.0,
        login_lockout_s: float = 300.0,
    ) -> None:
        self.site = site
        self.profile = profile
        self.seed = seed
        self.email = email
        self.powerwall_count = powerwalls = site.config.powerwalls
        self.allow_customer_operation = allow_customer_operation
        self.session_lifetime_s = session_lifetime_s
        self.login_max_failures = login_max_failures
        self.login_window_s = login_window_s
        self.login_lockout_s = login_lockout_s
        # Identity, derived from the seed so two runs with one seed look like one gateway.
        self.gateway_serial = "TG12" + _serial_digits(seed, "teg", 9)
        self.din = "1232100-00-E--" + self.gateway_serial
        self.battery_serials = [
            "TG12" + _serial_digits(seed, f"pw{i}", 9) for i in range(powerwalls)
        ]
        self.meter_serials = {
            "synchrometerY": "OBB" + _serial_digits(seed, "meter", 10) + "synchrometerY",
            "synchrometerX": "OBB" + _serial_digits(seed, "meter", 10) + "synchrometerX",
        }
        # Legacy firmware: the password is "S" + serial. Modern firmware's factory default
        # is the last five characters of the serial; either can be overridden.
        if password is not None:
            self.password = password
        elif profile.legacy:
            self.password = "S" + self.gateway_serial
        else:
            self.password = self.gateway_serial[-5:]
        self.settings = GatewaySettings(timezone=site.config.timezone)
        answers = captures(profile.name)  # fresh copies: the settings change them
        self.settings.networks = answers.body("networks")
        self.settings.registration = answers.body("customer.registration")
        self.settings.client_protocols = answers.body("networks.client_protocols")
        self.settings.cts = {
            serial: answers.body(f"meters.{kind}.cts")
            for kind, serial in self.meter_serials.items()
        }
        self.sessions: dict[str, Session] = {}
        self._login_failures: deque[dt.datetime] = deque()
        self._locked_until: dt.datetime | None = None
        self._rng = random.Random(seed)
        self.boot_time = site.now - dt.timedelta(hours=230, minutes=55)
        self.sitemaster_since = self.boot_time
        self.conn_tests = _Timed()
        self.testing = _Timed()
        self.fw_update = FirmwareUpdate()
        self.schedule: Scheduler | None = None  # the Simulator hands its timeline in
        self.version = 0  # bumped on every change, so cached bodies can be reused
        self.network_up = True  # connected_to_tesla
        self._snap: SiteSnapshot | None = None
        self._snap_version = -1
        self.pending_changes: dict[str, dict[str, Any]] = {}  # tag -> checked settings
        self._change_count = 0

    # --- time -------------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        return self.site.now

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.settings.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo("UTC")

    def touch(self) -> None:
        """Record that state changed, so cached response bodies are rebuilt."""
        self.version += 1

    def snap(self) -> SiteSnapshot:
        """The physics readings now, taken together (one snapshot per state version)."""
        if self._snap_version != self.version or self._snap is None:
            self._snap = self.site.snapshot()
            self._snap_version = self.version
        return self._snap

    def reboot(self) -> None:
        """Uptime starts again; sessions do not survive a reboot."""
        self.boot_time = self.now
        self.sitemaster_since = self.now
        self.sessions.clear()
        self.touch()

    # --- sitemaster -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self.site.running)

    def stop_sitemaster(self) -> None:
        if self.running:
            self.site.running = False
            self.sitemaster_since = self.now
            self.touch()

    def can_stop(self) -> bool:
        """Whether a stop request may stop the system now: not while the Powerwalls carry
        the home off grid (stopping would black it out)."""
        return str(self.snap().grid_status) == GridStatusValue.CONNECTED

    def run_sitemaster(self) -> None:
        if not self.running:
            self.site.running = True
            self.sitemaster_since = self.now
            self.touch()

    # --- sessions ---------------------------------------------------------------------------

    def login(
        self, username: object, email: object, password: object, force_sm_off: object
    ) -> Session:
        """Check credentials; a new session, or Refusal 401 (bad password) / 429 (locked out)."""
        now = self.now
        if self._locked_until is not None and now < self._locked_until:
            retry_s = (self._locked_until - now).total_seconds()
            raise rate_limited(retry_s)
        ok = isinstance(password, str) and secrets.compare_digest(
            password.encode(), self.password.encode()
        )
        if ok and not self.profile.legacy:
            ok = username in ("customer", "installer")
        if not ok:
            self._login_failures.append(now)
            horizon = now - dt.timedelta(seconds=self.login_window_s)
            while self._login_failures and self._login_failures[0] < horizon:
                self._login_failures.popleft()
            if len(self._login_failures) >= self.login_max_failures:
                self._locked_until = now + dt.timedelta(seconds=self.login_lockout_s)
                self._login_failures.clear()
            raise Refusal(401, "bad credentials", "Login Error")
        self._login_failures.clear()
        if isinstance(email, str) and len(email) > _MAX_EMAIL_CHARS:
            raise bad_request("email", f"at most {_MAX_EMAIL_CHARS} characters")
        # the installer's login may change the operation on 20.49 and later; a customer's not
        role = ROLE_ENGINEER if self.profile.legacy or username == "installer" else ROLE_CUSTOMER
        if self.profile.legacy:
            # Spec 001: getting a token on old firmware stops the Powerwall, even when the
            # login says force_sm_off false (its own example does).
            self.stop_sitemaster()
        token = base64.b64encode(self._rng.randbytes(48)).decode()
        session = Session(
            token=token,
            role=role,
            email=email if isinstance(email, str) else "",
            created=now,
            expires=now + dt.timedelta(seconds=self.session_lifetime_s),
        )
        self.sessions[token] = session
        while len(self.sessions) > MAX_SESSIONS:  # the oldest login is forgotten first
            del self.sessions[next(iter(self.sessions))]
        return session

    def session_for(self, token: str | None) -> Session | None:
        """The live session of `token`, or None (unknown or expired)."""
        if not token:
            return None
        session = self.sessions.get(token)
        if session is None:
            return None
        if self.now >= session.expires:
            del self.sessions[token]
            return None
        return session

    def logout(self, token: str | None) -> None:
        if token:
            self.sessions.pop(token, None)

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def login_record(self, session: Session) -> dict[str, Any]:
        """The login answer's body: the user's record (legacy firmware: no email, no time)."""
        record: dict[str, Any] = {
            "email": None if self.profile.legacy else session.email,
            "firstname": "Tesla",
            "lastname": "Energy",
            "roles": [session.role],
            "token": session.token,
            "provider": "Basic",
        }
        if not self.profile.legacy:
            record["loginTime"] = self.format_time(session.created)
        return record

    def user_record(self, session: Session) -> str:
        """The UserRecord cookie value: base64 of the user's JSON record, as the gateway sets."""
        encoded = msgspec.json.encode(self.login_record(session))
        return base64.urlsafe_b64encode(encoded).decode().rstrip("=")

    def format_time(self, when: dt.datetime, nanos: int = 0) -> str:
        """Go RFC 3339 with nanoseconds in the site timezone: 2021-12-26T13:09:22.3210565-07:00."""
        local = when.astimezone(self.tz)
        offset = local.strftime("%z")
        frac = f"{local.microsecond * 1000 + nanos:09d}".rstrip("0")
        dot = f".{frac}" if frac else ""  # Go drops an all-zero fraction
        return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{dot}{offset[:3]}:{offset[3:]}"

    # --- operation ------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return str(self.site.mode)

    @property
    def backup_reserve_raw_percent(self) -> float:
        return float(self.site.backup_reserve_raw_percent)

    def stage_operation(self, body: object) -> dict[str, Any]:
        """Validate and stage {mode?, backup_reserve_percent?}; in effect after commit()."""
        if not isinstance(body, dict):
            raise bad_request("body", "a JSON object with mode and/or backup_reserve_percent")
        staged: dict[str, Any] = {}
        if "mode" in body:
            mode = body["mode"]
            if mode not in tuple(OperationMode):
                raise bad_request("mode", "one of " + ", ".join(OperationMode))
            staged["mode"] = mode
        if "backup_reserve_percent" in body:
            reserve = body["backup_reserve_percent"]
            if (
                isinstance(reserve, bool)
                or not isinstance(reserve, int | float)
                or not math.isfinite(reserve)
                or not 0 <= reserve <= 100
            ):
                raise bad_request("backup_reserve_percent", "a number from 0 to 100")
            staged["backup_reserve_percent"] = reserve
        if "max_pv_export_power_kW" in body:  # spec 001: optional, null when not set
            export_kw = body["max_pv_export_power_kW"]
            if export_kw is not None and (
                isinstance(export_kw, bool)
                or not isinstance(export_kw, int | float)
                or not math.isfinite(export_kw)
                or not 0 <= export_kw <= 1000
            ):
                raise bad_request("max_pv_export_power_kW", "null or a number of kW from 0 to 1000")
            staged["max_pv_export_power_kW"] = export_kw
        if not staged:
            raise bad_request("mode", "mode and/or backup_reserve_percent must be given")
        self.settings.staged_operation.update(staged)
        answer = {
            "mode": self.settings.staged_operation.get("mode", self.mode),
            "backup_reserve_percent": self.settings.staged_operation.get(
                "backup_reserve_percent", self.backup_reserve_raw_percent
            ),
        }
        if "max_pv_export_power_kW" in self.settings.staged_operation:
            answer["max_pv_export_power_kW"] = self.settings.staged_operation[
                "max_pv_export_power_kW"
            ]
        return answer

    def commit(self) -> None:
        """config/completed: staged settings take effect, commission_count grows by one."""
        staged = self.settings.staged_operation
        if "mode" in staged:
            self.site.mode = staged["mode"]
        if "backup_reserve_percent" in staged:
            self.site.backup_reserve_raw_percent = float(staged["backup_reserve_percent"])
        if "max_pv_export_power_kW" in staged:
            self.settings.max_pv_export_power_kw = staged["max_pv_export_power_kW"]
        staged.clear()
        self.settings.commission_count += 1
        self.touch()

    def set_operation_now(
        self, mode: str | None = None, backup_reserve_raw_percent: float | None = None
    ) -> None:
        """Apply at once (the cloud's path: the app's changes skip the wizard's staging)."""
        if mode is not None:
            if mode not in tuple(OperationMode):
                raise bad_request("mode", "one of " + ", ".join(OperationMode))
            self.site.mode = mode
        if backup_reserve_raw_percent is not None:
            self.site.backup_reserve_raw_percent = float(backup_reserve_raw_percent)
        self.touch()

    # --- settings the app changes through the cloud ----------------------------------------

    def check_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes` validated (InvalidInputError names the first bad field), values clean."""
        if not changes:
            raise InvalidInputError("settings", "at least one of " + ", ".join(SITE_SETTINGS))
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "mode":
                if value not in tuple(OperationMode):
                    raise InvalidInputError("mode", "one of " + ", ".join(OperationMode), value)
                clean[name] = OperationMode(value)
            elif name in ("backup_reserve_raw_percent", "off_grid_ev_reserve_app_percent"):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not 0 <= value <= 100  # False for nan
                ):
                    raise InvalidInputError(name, "a number from 0 to 100", value)
                clean[name] = float(value)
            elif name in ("grid_charging_allowed", "storm_watch"):
                if not isinstance(value, bool):
                    raise InvalidInputError(name, "true or false", value)
                clean[name] = value
            elif name == "export_rule":
                if value not in tuple(ExportRule):
                    allowed = "one of " + ", ".join(rule.value for rule in ExportRule)
                    raise InvalidInputError(name, allowed, value)
                clean[name] = ExportRule(value)
            else:
                raise InvalidInputError("settings", "names among " + ", ".join(SITE_SETTINGS), name)
        return clean

    def apply_settings(self, changes: dict[str, Any]) -> None:
        """Apply settings to the site at once (all checked first, so none is half-applied)."""
        site = self.site
        for name, value in self.check_settings(changes).items():
            setattr(site, name, value)
        self.touch()

    def defer_settings(self, changes: dict[str, Any], after_s: float) -> None:
        """Check `changes` now and apply them `after_s` simulated seconds later (0: now)."""
        checked = self.check_settings(changes)
        if not after_s > 0.0:
            self.apply_settings(checked)
            return
        if self.schedule is None:
            raise RuntimeError("a delayed change needs the simulator's clock (schedule)")
        if len(self.pending_changes) >= MAX_PENDING_CHANGES:
            raise InvalidInputError(
                "settings", f"at most {MAX_PENDING_CHANGES} changes waiting; retry in {after_s:g} s"
            )
        self._change_count += 1
        tag = str(self._change_count)
        self.pending_changes[tag] = checked
        self.schedule(self.now + dt.timedelta(seconds=after_s), CLOUD_CHANGE_STEP, tag)

    def run_cloud_change(self, tag: str) -> None:
        """The time of pending change `tag` has come: apply it (an unknown tag: nothing)."""
        changes = self.pending_changes.pop(tag, None)
        if changes is not None:
            self.apply_settings(changes)

    # --- settings -------------------------------------------------------------------------

    def set_site_name(self, name: object) -> None:
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise bad_request("site_name", "a non-empty string of at most 100 characters")
        self.settings.site_name = name
        self.touch()

    def set_timezone(self, tz_name: object) -> None:
        allowed = "an IANA timezone name such as America/Los_Angeles"
        # The longest IANA name has 32 characters; a long one would reach the file system.
        if not isinstance(tz_name, str) or not 0 < len(tz_name) <= _MAX_TZ_CHARS:
            raise bad_request("timezone", allowed)
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise bad_request("timezone", allowed) from exc
        self.settings.timezone = tz_name
        self.touch()

    def change_password(self, body: object) -> str:
        if not isinstance(body, dict):
            raise bad_request("body", "{old_password, new_password}")
        old, new = body.get("old_password"), body.get("new_password")
        if not isinstance(new, str) or not 0 < len(new) <= _MAX_PASSWORD_CHARS:
            raise bad_request("new_password", f"a string of 1 to {_MAX_PASSWORD_CHARS} characters")
        if not isinstance(old, str) or not secrets.compare_digest(
            old.encode(), self.password.encode()
        ):
            raise Refusal(401, "bad credentials", "Old password is incorrect")
        self.password = new
        return new

    # --- networks ---------------------------------------------------------------------------

    def add_network(self, body: object) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("body", "{network_name, interface, security_type}")
        name = body.get("network_name")
        interface = body.get("interface", "WifiType")
        security = body.get("security_type", "WPA2_Personal")
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME_CHARS:
            raise bad_request("network_name", f"a string of 1 to {_MAX_NAME_CHARS} characters")
        if interface not in ("WifiType", "EthType", "GsmType"):
            raise bad_request("interface", "WifiType, EthType or GsmType")
        if not isinstance(security, str) or len(security) > _MAX_NAME_CHARS:
            raise bad_request("security_type", "a string such as WPA2_Personal")
        network = {
            "network_name": name,
            "interface": interface,
            "security_type": security,
            "dhcp": True,
            "username": "",
            "enabled": True,
            "active": False,
            "primary": False,
            "lastTeslaConnected": False,
            "lastInternetConnected": False,
        }
        kept = [n for n in self.settings.networks if n.get("network_name") != name]
        if len(kept) >= MAX_NETWORKS:
            raise bad_request("network_name", f"at most {MAX_NETWORKS} networks; remove one first")
        self.settings.networks = [*kept, network]
        self.touch()
        return network

    def remove_network(self, name: object) -> None:
        if not isinstance(name, str) or not name:
            raise bad_request("network_name", "the name of a configured network")
        kept = [n for n in self.settings.networks if n.get("network_name") != name]
        if len(kept) == len(self.settings.networks):
            raise Refusal(404, "network not found", f"No network named {name}")
        self.settings.networks = kept
        self.touch()

    # --- meters -----------------------------------------------------------------------------

    def meter_kind(self, serial: str) -> str:
        for kind, known in self.meter_serials.items():
            if known == serial:
                return kind
        raise Refusal(404, "meter not found", f"No meter with serial {serial}")

    def set_cts(self, serial: str, body: object) -> list[dict[str, Any]]:
        self.meter_kind(serial)
        cts = body.get("cts") if isinstance(body, dict) else body
        if not isinstance(cts, list) or not 0 < len(cts) <= _MAX_CTS:
            raise bad_request("cts", f"a list of 1 to {_MAX_CTS} {{type, valid[4], inverted[4]}}")
        clean: list[dict[str, Any]] = []
        for ct in cts:
            if not isinstance(ct, dict) or ct.get("type") not in ("site", "solar", "battery"):
                raise bad_request("cts.type", "site, solar or battery")
            valid, inverted = ct.get("valid"), ct.get("inverted", [False] * 4)
            for name, flags in (("valid", valid), ("inverted", inverted)):
                if not (
                    isinstance(flags, list)
                    and len(flags) == 4
                    and all(isinstance(f, bool) for f in flags)
                ):
                    raise bad_request(f"cts.{name}", "a list of four booleans")
            scale = ct.get("real_power_scale_factor", 1)
            if isinstance(scale, bool) or not isinstance(scale, int | float):
                raise bad_request("cts.real_power_scale_factor", "a number")
            clean.append(
                {
                    "type": ct["type"],
                    "valid": valid,
                    "inverted": inverted,
                    "real_power_scale_factor": scale,
                }
            )
        self.settings.cts[serial] = clean
        self.touch()
        return clean

    def clear_cts(self, serial: str) -> None:
        self.meter_kind(serial)
        self.settings.cts[serial] = []
        self.touch()

    # --- registration -------------------------------------------------------------------

    def register_legal(self, body: object) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(
                "body", "{marketing, privacy_notice, limited_warranty, grid_services}"
            )
        for key in ("marketing", "privacy_notice", "limited_warranty", "grid_services"):
            if key in body:
                if not isinstance(body[key], bool):
                    raise bad_request(key, "true or false")
                self.settings.registration[key] = body[key]
        self.settings.registration["registered"] = True
        self.touch()
        return self.settings.registration

    def skip_registration(self) -> dict[str, Any]:
        self.settings.registration["registered"] = True
        self.settings.registration["timed_out_registration"] = False
        self.touch()
        return self.settings.registration

    # --- firmware update ------------------------------------------------------------------

    def offer_update(self, version: str | None, *, fail: bool = False) -> None:
        """What the next update check finds: `version` (a profile name), or None for none."""
        self.fw_update.offered = None if version is None else get_profile(version).name
        self.fw_update.fail = bool(fail)

    def release_firmware(
        self,
        version: str,
        auto_install_within_h: float,
        released_at: dt.datetime | None = None,
    ) -> dt.datetime | None:
        """Firmware `version` is released at `released_at` (default now): the update check
        finds it, and unless an update is started first the gateway starts one by itself at
        firmware.auto_install_at (seeded); that instant is returned (None: never by itself)."""
        name = get_profile(version).name  # ValueError names the known versions
        at = auto_install_at(released_at or self.now, auto_install_within_h, self.seed)
        if at is not None and self.schedule is None:
            raise RuntimeError("a release's own update needs the simulator's clock (schedule)")
        self.offer_update(name)
        update = self.fw_update
        update.auto_version, update.auto_at = (name, at) if at is not None else (None, None)
        if at is not None:
            assert self.schedule is not None
            self.schedule(at, AUTO_UPDATE_STEP, name)
        self.touch()
        return at

    def auto_update(self, version: str) -> None:
        """The instant a release drew has come: the gateway starts the update by itself,
        unless it already runs `version`, an update is under way, or a later release (or an
        offer) replaced it. Off grid it waits (stopping would black the home out) and looks
        again every AUTO_RETRY_S."""
        update = self.fw_update
        if update.auto_version != version:
            return  # replaced by a later release: that one has its own instant
        if self.profile.name == version or update.offered != version or update.busy:
            update.auto_version = update.auto_at = None  # done, or someone's update runs
            self.touch()
            return
        if is_off_grid(str(self.snap().grid_status)):
            assert self.schedule is not None
            update.auto_at = self.now + dt.timedelta(seconds=AUTO_RETRY_S)
            self.schedule(update.auto_at, AUTO_UPDATE_STEP, version)
            self.touch()
            return
        update.auto_version = update.auto_at = None
        self.start_update(by=BY_GATEWAY)

    def start_update(self, by: str = BY_REQUEST) -> bool:
        """Check for an update and, if one is offered, download and install it; False when
        an update is already under way (the request changes nothing then). `by`: who
        started it (BY_REQUEST: the owner, POST /api/system/update; BY_GATEWAY: itself)."""
        update = self.fw_update
        if update.busy:
            return False
        if self.schedule is None:
            raise RuntimeError(
                "a firmware update needs the simulator's clock (SimulatedGateway.schedule)"
            )
        update.generation += 1
        update.started_by = by
        self._update_state(CHECKING, "nonactionable")
        self._next_update_step(UPDATE_CHECK_S, "update_checked")
        return True

    def _update_state(self, state: str, status: str) -> None:
        self.fw_update.state, self.fw_update.status = state, status
        self.fw_update.since = self.now
        self.touch()

    def _next_update_step(self, after_s: float, step: str) -> None:
        assert self.schedule is not None
        when = self.now + dt.timedelta(seconds=after_s)
        self.schedule(when, step, str(self.fw_update.generation))

    def update_step(self, step: str, generation: str) -> None:
        """One scheduled step of the update started as `generation` (stale ones are ignored)."""
        update = self.fw_update
        if generation != str(update.generation) or not update.busy:
            return
        if step == "update_checked":
            if update.offered is None or update.offered == self.profile.name:
                # Spec 001: "update_failed / status nonactionable" = already up to date.
                self._update_state(FAILED, "nonactionable")
                return
            self._update_state(DOWNLOADING, "nonactionable")
            self._next_update_step(UPDATE_DOWNLOAD_S, "update_downloaded")
        elif step == "update_downloaded":
            if update.fail:
                self._update_state(FAILED, "error")
                return
            self._update_state(DOWNLOADED, "nonactionable")
            self._next_update_step(UPDATE_READY_S, "update_install")
        elif step == "update_install":
            # The install stops the Powerwalls: live endpoints answer 502, the grid carries
            # the home, until the gateway comes back on the new firmware.
            self.stop_sitemaster()
            self._update_state(INSTALLING, "nonactionable")
            self._next_update_step(UPDATE_INSTALL_S, "update_finish")
        elif step == "update_finish" and update.offered is not None:
            self.profile = get_profile(update.offered)
            update.offered = None
            if update.auto_version == self.profile.name:  # installed before its own instant
                update.auto_version = update.auto_at = None
            self.reboot()
            self.run_sitemaster()
            self._update_state(SUCCEEDED, "nonactionable")

    # --- wizard jobs ----------------------------------------------------------------------

    def elapsed_s(self, job: _Timed) -> float | None:
        if job.started is None:
            return None
        return (self.now - job.started).total_seconds()

    def start_job(self, job: _Timed) -> None:
        job.started = self.now
        self.touch()

    def clear_job(self, job: _Timed) -> None:
        job.started = None
        self.touch()


__all__ = [
    "AUTO_UPDATE_STEP",
    "BY_GATEWAY",
    "BY_REQUEST",
    "CLOUD_CHANGE_STEP",
    "MAX_PENDING_CHANGES",
    "ROLE_CUSTOMER",
    "ROLE_ENGINEER",
    "SITE_SETTINGS",
    "UPDATE_CHECK_S",
    "UPDATE_DOWNLOAD_S",
    "UPDATE_INSTALL_S",
    "UPDATE_READY_S",
    "Answer",
    "FirmwareUpdate",
    "GatewaySettings",
    "Refusal",
    "Session",
    "SimulatedGateway",
    "bad_request",
    "not_found",
    "rate_limited",
]
