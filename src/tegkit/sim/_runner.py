"""Simulator: the gateway, its HTTPS ports, its clock and the control methods, in one object.

`async with Simulator(...) as sim:` starts the local API (HTTPS), the Owner API (HTTPS, same
certificate), an optional plain-HTTP redirect port and a background task that moves the
physics with the clock (speed x real time; scenario events are applied at their exact
times). With speed=0 the clock only moves by `advance()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import shutil
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tegkit.models.vocabulary import POWER_NAMES
from tegkit.sim import certs
from tegkit.sim.cloud_server import CloudServer
from tegkit.sim.cloud_site import GatewayCloudSite
from tegkit.sim.control import make_control_app
from tegkit.sim.faults import FaultInjector
from tegkit.sim.firmware import DEFAULT_AUTO_INSTALL_WITHIN_H, auto_install_at
from tegkit.sim.gateway import (
    AUTO_UPDATE_STEP,
    CLOUD_CHANGE_STEP,
    UPDATE_STEPS,
    SimulatedGateway,
)
from tegkit.sim.owner_api import DEFAULT_ACCESS_TTL_S, CloudTokens, make_owner_api_app
from tegkit.sim.physics import Site, SiteConfig
from tegkit.sim.profiles import get_profile
from tegkit.sim.replay import Replay, ReplayDump, make_replay
from tegkit.sim.scenario import Scenario, ScenarioEvent, Timeline, apply_event, load_scenario
from tegkit.sim.server import make_gateway_app, make_redirect_app

_TICK_S = 0.5  # real seconds between clock steps of the background task
# The largest clock jump one control call may ask for: the physics runs through the gap in
# steps of at most a minute (31 days take a few tenths of a second), so a bigger jump
# would hold up every request the simulator is serving.
MAX_JUMP_S = 31 * 86400.0

_LOG = logging.getLogger("tegkit.sim")


class Simulator:
    """A simulated Tesla Energy Gateway on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        cloud_port: int | None = 0,
        http_port: int | None = None,
        password: str | None = None,
        email: str = "owner@example.com",
        firmware: str | None = None,
        powerwalls: int = 2,
        speed: float | None = None,
        seed: int | None = None,
        scenario: str | Path | None = None,
        state_dir: str | Path | None = None,
        allow_customer_operation: bool = False,
        start: dt.datetime | None = None,
        *,
        session_lifetime_s: float = 3600.0,
        rate_limits: dict[str, tuple[int, float]] | None = None,
        login_max_failures: int = 5,
        login_lockout_s: float = 300.0,
        cert_loopback_names: bool = False,
        cloud_delay_s: float = 0.0,  # cloud changes reach the gateway this much later
        cloud_access_ttl_s: float = DEFAULT_ACCESS_TTL_S,
        replay: str | Path | ReplayDump | None = None,  # a `teg dump` folder (sim/replay.py)
        replay_strict: bool = False,  # answer exactly the captured bodies, 404 for the rest
        site_config: SiteConfig | None = None,  # the site (default: `powerwalls`, San Francisco)
    ) -> None:
        if replay is not None and scenario:
            raise ValueError("replay, scenario: choose one (a replay takes its site from the dump)")
        self.replay: Replay | None = (
            make_replay(replay, strict=replay_strict) if replay is not None else None
        )
        dump = self.replay.dump if self.replay is not None else None
        self.scenario: Scenario | None = load_scenario(scenario) if scenario else None
        sc = self.scenario
        self.seed = seed if seed is not None else (sc.seed if sc else 0)
        self.speed = _checked_speed(speed if speed is not None else (sc.speed if sc else 1.0))
        if sc is not None and start is None:
            site = sc.build_site()
        else:
            config = sc.config if sc else site_config or SiteConfig(powerwalls=powerwalls)
            if dump is not None:  # the dump's site, at the time it was taken
                config = dump.site_config(config)
                start = start or dump.taken_at
            when = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
            site = Site(config, when, self.seed)
            if sc is not None:
                site.mode = sc.mode
                site.backup_reserve_raw_percent = sc.backup_reserve_raw_percent
                site.cloud_cover = sc.cloud_cover
        fallback = dump.profile_name if dump else sc.firmware if sc and sc.firmware else "21.44"
        profile = get_profile(firmware or fallback)
        self.gateway = SimulatedGateway(
            site,
            profile,
            password=password,
            email=email,
            seed=self.seed,
            allow_customer_operation=allow_customer_operation,
            session_lifetime_s=session_lifetime_s,
            login_max_failures=login_max_failures,
            login_lockout_s=login_lockout_s,
        )
        if dump is not None:
            dump.seed(self.gateway)
        self.timeline = Timeline(sc.events if sc else (), site.now)
        self.gateway.schedule = self._schedule_gateway_step
        self._step(0.0)  # events at the very start are in effect before the first request
        self.host = host
        self._want_port, self._want_cloud_port, self._want_http_port = port, cloud_port, http_port
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="tegsim-"))
        self.email = email
        self.control_token = secrets.token_urlsafe(24)
        # Cloud tokens expire on the simulated clock: advancing it 8 h ends an access token.
        self.cloud_tokens = CloudTokens(access_ttl_s=cloud_access_ttl_s, clock_s=lambda: self.now_s)
        self._cloud_server: CloudServer | None = None
        self.cloud_site = GatewayCloudSite(self.gateway, cloud_delay_s=cloud_delay_s)
        self.faults = FaultInjector(seed=self.seed)
        self._rate_limits = rate_limits
        # The gateway's certificate names teg, powerwall and powerpack, as a real one: a
        # client verifying it with the cafile sends one of those (SNI). The loopback names
        # are added only when asked. The Owner API port has its own loopback certificate,
        # issued by the gateway's, so the one cafile verifies both ports.
        self.cert_loopback_names = cert_loopback_names
        self._cert = certs.ensure_certificate(self.state_dir, loopback_names=cert_loopback_names)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cloud_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._load_certificates()
        self._runners: list[web.AppRunner] = []
        self._local_runner: web.AppRunner | None = None
        self._local_site: web.TCPSite | None = None
        self.port = self.cloud_port = 0
        self.http_port: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._reboot_task: asyncio.Task[None] | None = None
        self._anchor_mono = time.monotonic()
        self._anchor_epoch_s = site.epoch_s
        self._lock = asyncio.Lock()

    # --- what clients need -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{self._url_host}:{self.port}"

    @property
    def cloud_url(self) -> str:
        return f"https://{self._url_host}:{self.cloud_port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def password(self) -> str:
        return self.gateway.password

    @property
    def fingerprint_sha256(self) -> str:
        return self._cert.fingerprint_sha256

    @property
    def cafile(self) -> Path:
        return self._cert.cert_path

    @property
    def clock(self) -> dt.datetime:
        return self.gateway.now

    @property
    def now(self) -> dt.datetime:
        return self.gateway.now

    @property
    def now_s(self) -> float:
        """The simulated clock as Unix seconds: `now` as a number, for clocks and arithmetic."""
        return self.gateway.site.epoch_s

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        control = make_control_app(self, self.control_token)
        local = make_gateway_app(
            self.gateway,
            self.faults,
            rate_limits=self._rate_limits,
            control=control,
            replay=self.replay,
        )
        self._local_runner = await self._serve_app(local)
        self._local_site, self.port = await self._bind(
            self._local_runner, self._want_port, self._ssl
        )
        if self._want_cloud_port is not None:
            # HTTP/2 (and HTTP/1.1) through hypercorn, as Tesla's cloud serves today
            cloud = make_owner_api_app(self.cloud_site, self.cloud_tokens)
            self._cloud_server = await CloudServer.start(
                cloud, self.host, self._want_cloud_port, self._cloud_ssl
            )
            self.cloud_port = self._cloud_server.port
        if self._want_http_port is not None:
            runner = await self._serve_app(make_redirect_app(self.url))
            _, self.http_port = await self._bind(runner, self._want_http_port, None)
        self._reanchor()
        self._task = asyncio.create_task(self._run_clock(), name="tegkit-sim-clock")

    async def close(self) -> None:
        for task in (self._task, self._reboot_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._cloud_server is not None:
            await self._cloud_server.close()
            self._cloud_server = None
        for runner in reversed(self._runners):
            _abort_connections(runner)
            await runner.cleanup()
        self._runners.clear()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _load_certificates(self) -> None:
        self._ssl.load_cert_chain(self._cert.cert_path, self._cert.key_path)
        cloud = certs.ensure_cloud_certificate(self.state_dir, self._cert)
        self._cloud_ssl.load_cert_chain(cloud.cert_path, cloud.key_path)

    async def _serve_app(self, app: web.Application) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        self._runners.append(runner)
        return runner

    async def _bind(
        self, runner: web.AppRunner, port: int, context: ssl.SSLContext | None
    ) -> tuple[web.TCPSite, int]:
        site = web.TCPSite(
            runner, self.host, port, ssl_context=context, reuse_address=True, backlog=256
        )
        await site.start()
        # A runner here serves one site at a time (a reboot stops the old one first), so the
        # address just bound is the runner's last; (host, port) or (host, port, flow, scope).
        return site, int(runner.addresses[-1][1])

    # --- the clock ------------------------------------------------------------------------

    def _reanchor(self) -> None:
        self._anchor_mono = time.monotonic()
        self._anchor_epoch_s = self.now_s

    def _target_epoch_s(self) -> float:
        return self._anchor_epoch_s + self.speed * (time.monotonic() - self._anchor_mono)

    def _step(self, dt_s: float) -> None:
        """Move physics on by dt_s, applying timed events at their exact times."""
        self.timeline.advance(self.gateway.site, dt_s, self._apply)
        self.gateway.touch()

    def _apply(self, event: ScenarioEvent) -> None:
        gw = self.gateway
        if event.action == "firmware" and event.version:
            gw.profile = get_profile(event.version)
            gw.reboot()
        elif event.action == "sitemaster_stop":
            gw.stop_sitemaster()
        elif event.action == "sitemaster_run":
            gw.run_sitemaster()
        elif event.action == CLOUD_CHANGE_STEP:
            gw.run_cloud_change(event.version or "")
        elif event.action in UPDATE_STEPS:
            gw.update_step(event.action, event.version or "")
        elif event.action == AUTO_UPDATE_STEP:
            gw.auto_update(event.version or "")
        elif event.action == "operation":
            gw.apply_settings(event.settings())
        elif event.action == "firmware_release" and event.version:
            within_h = event.auto_install_within_h
            if within_h is None:
                within_h = DEFAULT_AUTO_INSTALL_WITHIN_H
            gw.release_firmware(event.version, within_h, released_at=event.at)
        else:
            apply_event(gw.site, event)

    def _schedule_gateway_step(self, at: dt.datetime, step: str, generation: str) -> None:
        self.timeline.add(ScenarioEvent(at=at, action=step, version=generation))

    async def _run_clock(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            if self.speed > 0:
                behind_s = self._target_epoch_s() - self.now_s
                if behind_s > 0:
                    try:
                        self._step(behind_s)
                    except Exception:
                        # A clock that stops silently looks like a frozen site: say so, retry.
                        _LOG.exception("simulator clock step failed; the clock is not advancing")

    # --- control: the Python API (the control API calls the same methods) ------------------

    def state(self) -> dict[str, Any]:
        gw, snap = self.gateway, self.gateway.snap()
        return {
            "now": snap.now.isoformat(),
            "speed": self.speed,
            "firmware": gw.profile.name,
            "running": snap.running,
            "mode": snap.mode,
            "backup_reserve_raw_percent": snap.backup_reserve_raw_percent,
            "grid_charging_allowed": snap.grid_charging_allowed,
            "export_rule": snap.export_rule,
            "storm_watch": snap.storm_watch,
            "staged_operation": gw.settings.staged_operation,
            "commission_count": gw.settings.commission_count,
            "site_name": gw.settings.site_name,
            "timezone": gw.settings.timezone,
            **{name: getattr(snap, name) for name in POWER_NAMES},
            "frequency_hz": snap.frequency_hz,
            "voltage_v": snap.voltage_v,
            "soe_raw_percent": snap.soe_raw_percent,
            "soe_app_percent": snap.soe_app_percent,
            "energy_remaining_wh": snap.energy_remaining_wh,
            "full_pack_wh": snap.full_pack_wh,
            "grid_status": snap.grid_status,
            "home_dark": snap.home_dark,
            "counters": {
                k: {"imported_wh": c.imported_wh, "exported_wh": c.exported_wh}
                for k, c in snap.counters.items()
            },
            "sessions": len(gw.sessions),
            "faults": self.faults.describe(),
            "update": gw.fw_update.describe(),
            "fingerprint_sha256": self.fingerprint_sha256,
        }

    def set_time(self, at: dt.datetime) -> None:
        """Jump the simulated clock forward to `at` (physics runs through the gap)."""
        if at.tzinfo is None:
            raise ValueError("at: an aware datetime")
        gap_s = at.timestamp() - self.now_s
        if gap_s < 0:
            raise ValueError("at: the clock only moves forward (energy counters only grow)")
        if gap_s > MAX_JUMP_S:
            raise ValueError(
                f"at: at most {MAX_JUMP_S / 86400:g} days ahead of the simulated clock "
                f"({self.gateway.now.isoformat()}) per call"
            )
        self._step(gap_s)
        self._reanchor()

    def set_speed(self, speed: float) -> None:
        speed = _checked_speed(speed)
        self._step(max(0.0, self._target_epoch_s() - self.now_s))
        self.speed = float(speed)
        self._reanchor()

    async def advance(self, seconds: float) -> None:
        """Move the simulated clock by exactly `seconds` (deterministic stepping for tests)."""
        if not 0 <= seconds <= MAX_JUMP_S:
            raise ValueError(f"seconds: a number from 0 to {MAX_JUMP_S:g} (31 days) per call")
        self._step(seconds)
        self._reanchor()

    def start_outage(self, minutes: float | None = None) -> None:
        """The grid goes down; with `minutes`, it comes back after that much simulated time."""
        self.gateway.site.start_outage()
        self.gateway.touch()
        if minutes is not None:
            ends = self.gateway.now + dt.timedelta(minutes=minutes)
            self.timeline.add(ScenarioEvent(at=ends, action="restore"))

    def end_outage(self) -> None:
        self.gateway.site.end_outage()
        self.gateway.touch()

    def override_solar(self, power_w: float | None) -> None:
        self.gateway.site.solar_override_w = power_w
        self.gateway.touch()

    def override_load(self, power_w: float | None) -> None:
        self.gateway.site.load_override_w = power_w
        self.gateway.touch()

    def stop_sitemaster(self) -> None:
        self.gateway.stop_sitemaster()

    def run_sitemaster(self) -> None:
        self.gateway.run_sitemaster()

    def offer_update(self, version: str | None, *, fail: bool = False) -> None:
        """What the gateway's next update check finds: firmware `version` ("23.44"), or None
        (up to date: the check ends /update_failed, nonactionable). With `fail` the update
        fails once downloaded (/update_failed, error) and the firmware stays."""
        self.gateway.offer_update(version, fail=fail)

    def start_update(self) -> bool:
        """Start an update as the gateway does by itself (or POST /api/system/update does):
        check, download, then the install stops the Powerwalls for 15 simulated minutes
        (live endpoints 502, the grid carries the home) and the new version is reported.
        False when an update is already under way."""
        return self.gateway.start_update()

    def release_firmware(
        self,
        version: str,
        auto_install_within_h: float = DEFAULT_AUTO_INSTALL_WITHIN_H,
        at: dt.datetime | None = None,
    ) -> dt.datetime | None:
        """Firmware `version` is released now (or at `at`, a later simulated time): the update
        check finds it and, unless an update is started first, the gateway starts one by
        itself at a seeded random instant within `auto_install_within_h` hours (0: never),
        as a scenario's firmware_release event does. Returns that instant when released now
        (None: never by itself, or released later; the state's update.auto_install_at)."""
        if at is not None and at.tzinfo is None:
            raise ValueError("at: an aware datetime")
        if at is not None and at > self.now:
            self.timeline.add(
                ScenarioEvent(
                    at=at,
                    action="firmware_release",
                    version=get_profile(version).name,
                    auto_install_within_h=_checked_within_h(auto_install_within_h),
                )
            )
            return None
        return self.gateway.release_firmware(version, auto_install_within_h)

    def revoke_cloud_tokens(self) -> None:
        """The account owner revokes the app's cloud access: both Owner API tokens stop
        working, and the next refresh grant is refused (invalid_grant)."""
        self.cloud_tokens.revoke()

    def clear_faults(self) -> None:
        self.faults.clear()

    async def inject_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Arm a fault. Per request: latency (latency_ms), drop, rate_limit, status (502/503),
        each with count / probability / path_prefix. Whole simulator: expire_sessions,
        rotate_cert (new fingerprint for new connections), reboot (seconds refused)."""
        if kind == "expire_sessions":
            self.gateway.expire_sessions()
            return {"kind": kind}
        if kind == "rotate_cert":
            self._cert = certs.rotate_certificate(
                self.state_dir, loopback_names=self.cert_loopback_names
            )
            self._load_certificates()
            return {"kind": kind, "fingerprint_sha256": self.fingerprint_sha256}
        if kind == "reboot":
            seconds = options.get("seconds", 2.0)
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 <= seconds <= 600
            ):
                raise ValueError("seconds: a number from 0 to 600")
            await self._reboot(float(seconds))
            return {"kind": kind, "seconds": seconds}
        options.pop("seconds", None)
        fault = self.faults.add(kind, **options)
        return fault.describe()

    async def _reboot(self, seconds: float) -> None:
        """Close the local port and its connections; listen again after `seconds` (real)."""
        runner, site = self._local_runner, self._local_site
        assert runner is not None and site is not None
        await site.stop()
        server = runner.server
        if server is not None:
            for handler in list(server.connections):
                handler.force_close()
                transport = handler.transport
                if transport is not None:
                    transport.close()
        self.gateway.reboot()

        async def come_back() -> None:
            await asyncio.sleep(seconds)
            self._local_site, _ = await self._bind(runner, self.port, self._ssl)

        if seconds <= 0:
            await come_back()
        else:
            self._reboot_task = asyncio.create_task(come_back(), name="tegkit-sim-reboot")


def _abort_connections(runner: web.AppRunner) -> None:
    """Cut the runner's open connections at once: closing TLS waits for the client's answer,
    which an idle keep-alive client never sends, so its socket would outlive close()."""
    server = runner.server
    for handler in list(server.connections) if server is not None else []:
        if handler.transport is not None:
            handler.transport.abort()


#: simulated seconds per real second; past this a clock tick would jump days
MAX_SPEED = 100_000.0


def _checked_within_h(within_h: float) -> float:
    # The same check as the release itself makes, so a later release fails now, not then.
    auto_install_at(dt.datetime.now(dt.UTC), within_h, 0)
    return float(within_h)


def _checked_speed(speed: float) -> float:
    """`speed` as a float, or ValueError: inf or nan would stop the clock making sense."""
    value = float(speed)
    if not 0 <= value <= MAX_SPEED:  # False for nan as well
        raise ValueError(f"speed: a number from 0 to {MAX_SPEED:g}, got {speed!r}")
    return value


__all__ = ["MAX_JUMP_S", "MAX_SPEED", "Simulator"]
