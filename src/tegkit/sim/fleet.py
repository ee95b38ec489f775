"""A simulated fleet: N independent gateways in one process, and the fleet file to watch them.

Each gateway is a `FleetMember`: a Simulator without an Owner API port and without a clock
task of its own (one task moves every gateway's clock), with its own seed (so its own
serial, DIN and default password), certificate, site, firmware and time zone, all drawn
from the fleet's seed. The gateways listen on consecutive ports (port, port+1, ...) or, with
`addresses`, on distinct loopback addresses 127.0.x.y that share one port. All share one
control token; each answers its own /sim control API and /sim/fleet (the whole fleet).

Faults and scenarios target a gateway or a share of them: `KIND[:OPT=VALUE,...]@TARGET` and
`NAME@TARGET`, TARGET a name ("gw007"), a number (7, counted from 1), a range ("3-9"), a
percentage ("10%": that share, at least one, chosen by the seed) or "all".

The fleet file is the TOML `teg monitor --fleet` reads (tegkit.monitor.fleet's docstring),
written here as text (the simulator never imports the monitor), with one 0600 password
file per gateway in a 0700 folder beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import resource
import secrets
import shutil
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tegkit._private_file import PRIVATE_MODE, make_private_dir, write_atomically
from tegkit.errors import InvalidInputError
from tegkit.sim import certs
from tegkit.sim._runner import Simulator
from tegkit.sim.control import Handler, make_control_app
from tegkit.sim.faults import FAULT_KINDS, FaultInjector
from tegkit.sim.physics import SiteConfig
from tegkit.sim.scenario import load_scenario
from tegkit.sim.server import make_gateway_app

_LOG = logging.getLogger("tegkit.sim.fleet")

MAX_GATEWAYS = 10_000
# Every gateway's clock moves once a tick, a slice at a time so no request waits long.
_TICK_S = 1.0
_STEP_SLICE = 100
# File descriptors a fleet wants: a listening socket and a client or two per gateway, plus
# the process's own; it cannot start with fewer than one per gateway plus this margin.
_FD_MARGIN = 64

#: the firmware mix of a fleet without --firmware: (profile, weight); old ones are rare
FIRMWARE_MIX: tuple[tuple[str, int], ...] = (
    ("1.40", 5),
    ("20.49", 10),
    ("21.39", 15),
    ("21.44", 40),
    ("23.44", 30),
)


@dataclass(frozen=True, slots=True)
class Zone:
    """A time zone a fleet's sites are spread over, with a place in it for the sun."""

    timezone: str
    region: str  # the fleet file's `region` label
    latitude_deg: float
    longitude_deg: float
    frequency_hz: float
    voltage_v: float


ZONES: tuple[Zone, ...] = (
    Zone("America/Los_Angeles", "us-west", 37.77, -122.42, 60.0, 240.0),
    Zone("America/Denver", "us-mountain", 39.74, -104.99, 60.0, 240.0),
    Zone("America/Chicago", "us-central", 41.88, -87.63, 60.0, 240.0),
    Zone("America/New_York", "us-east", 40.71, -74.01, 60.0, 240.0),
    Zone("Australia/Sydney", "au-east", -33.87, 151.21, 50.0, 230.0),
    Zone("Australia/Perth", "au-west", -31.95, 115.86, 50.0, 230.0),
    Zone("Europe/London", "eu-west", 51.51, -0.13, 50.0, 230.0),
    Zone("Europe/Berlin", "eu-central", 52.52, 13.40, 50.0, 230.0),
)
_ZONE_WEIGHTS = (30, 8, 10, 17, 12, 5, 9, 9)  # mostly the US, as Powerwall owners are


@dataclass(frozen=True, slots=True)
class MemberPlan:
    """What one gateway of the fleet is, drawn from the fleet's seed before anything runs."""

    index: int  # counted from 1, as in the name
    name: str
    seed: int
    host: str
    port: int
    firmware: str | None  # None: the scenario's
    zone: Zone
    config: SiteConfig
    scenario: str | None = None


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault as --fault gives it: kind, its options, and the gateways it targets."""

    kind: str
    options: dict[str, Any]
    target: str
    text: str  # as given, for messages


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    name: str
    target: str
    text: str


# --- targets ------------------------------------------------------------------------------

_RANGE = re.compile(r"^(\d+)-(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_TARGET_ALLOWED = (
    "a gateway name, a number from 1, a range such as 3-9, a share such as 10%, or all"
)


def resolve_target(
    target: str, names: Sequence[str], rng: random.Random, field_name: str
) -> list[int]:
    """Indexes (from 0) of the gateways `target` names; a share is drawn with `rng`."""
    count = len(names)
    if target == "all":
        return list(range(count))
    if target in names:
        return [names.index(target)]
    if target.isdigit():
        number = int(target)
        if not 1 <= number <= count:
            raise InvalidInputError(field_name, f"a gateway number from 1 to {count}", target)
        return [number - 1]
    if m := _RANGE.match(target):
        first, last = int(m[1]), int(m[2])
        if not 1 <= first <= last <= count:
            raise InvalidInputError(field_name, f"a range within 1-{count}", target)
        return list(range(first - 1, last))
    if m := _PERCENT.match(target):
        share = float(m[1])
        if not 0 < share <= 100:
            raise InvalidInputError(field_name, "a share from 0% (excluded) to 100%", target)
        wanted = max(1, min(count, math.floor(count * share / 100 + 0.5)))
        return sorted(rng.sample(range(count), wanted))
    raise InvalidInputError(field_name, _TARGET_ALLOWED, target)


def _split_target(text: str, field_name: str, what: str) -> tuple[str, str]:
    head, at, target = text.rpartition("@")
    if not at:
        return text, "all"
    if not head or not target:
        raise InvalidInputError(field_name, f"{what}@TARGET, TARGET {_TARGET_ALLOWED}", text)
    return head, target


# --- faults -------------------------------------------------------------------------------

_INT_OPTIONS = ("count", "status")
_FLOAT_OPTIONS = ("probability", "latency_ms", "seconds")
_STR_OPTIONS = ("path_prefix",)
DEFAULT_LATENCY_MS = 5000.0  # a latency fault without latency_ms: a gateway 5 s slow


def parse_fault(text: str) -> FaultSpec:
    """`KIND[:OPT=VALUE,...][@TARGET]` (no target: every gateway), checked as the control
    API checks it; InvalidInputError naming --fault otherwise."""
    head, target = _split_target(text, "--fault", "KIND[:OPT=VALUE,...]")
    kind, _, rest = head.partition(":")
    if kind not in FAULT_KINDS:
        raise InvalidInputError("--fault", f"a kind among {', '.join(FAULT_KINDS)}", kind)
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        try:
            if not eq:
                raise ValueError(item)
            if key in _INT_OPTIONS:
                options[key] = int(value)
            elif key in _FLOAT_OPTIONS:
                options[key] = float(value)
            elif key in _STR_OPTIONS:
                options[key] = value
            else:
                allowed = ", ".join(_INT_OPTIONS + _FLOAT_OPTIONS + _STR_OPTIONS)
                raise InvalidInputError("--fault", f"options among {allowed}", key)
        except ValueError as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError("--fault", "OPT=VALUE with a number", item) from exc
    if kind == "latency":
        options.setdefault("latency_ms", DEFAULT_LATENCY_MS)
    _check_fault(kind, options)
    return FaultSpec(kind, options, target, text)


def _check_fault(kind: str, options: dict[str, Any]) -> None:
    """The checks the simulator makes when the fault is armed, made before anything runs."""
    try:
        if kind == "reboot":
            unknown = set(options) - {"seconds"}
            if unknown:
                raise ValueError(f"{sorted(unknown)[0]}: not an option of reboot (seconds)")
            if not 0 <= options.get("seconds", 2.0) <= 600:
                raise ValueError("seconds: a number from 0 to 600")
        elif kind in ("expire_sessions", "rotate_cert"):
            if options:
                raise ValueError(f"{sorted(options)[0]}: {kind} takes no options")
        else:
            FaultInjector().add(kind, **{k: v for k, v in options.items() if k != "seconds"})
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            "--fault", f"options the {kind} fault takes ({exc})", options
        ) from exc


def parse_scenario(text: str) -> ScenarioSpec:
    """`NAME[@TARGET]` (no target: every gateway)."""
    name, target = _split_target(text, "--scenario", "NAME")
    return ScenarioSpec(name, target, text)


# --- the plan -----------------------------------------------------------------------------


def member_name(index: int, count: int) -> str:
    """gw1.. for a few, gw001.. for hundreds: names sort in gateway order."""
    return f"gw{index:0{max(2, len(str(count)))}d}"


def loopback_address(i: int) -> str:
    """The i-th (from 0) fleet address: 127.0.1.1 .. 127.0.1.254, 127.0.2.1, ..."""
    return f"127.0.{1 + i // 254}.{1 + i % 254}"


MAX_ADDRESSES = 254 * 254


def _sub_seed(seed: int, salt: str) -> int:
    digest = hashlib.sha256(f"tegkit-fleet:{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def plan_fleet(
    count: int,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 8443,
    addresses: bool = False,
    firmware: str | None = None,
    powerwalls: int | None = None,
    scenarios: Sequence[ScenarioSpec] = (),
) -> list[MemberPlan]:
    """Every gateway's identity, address and site, drawn from `seed` (same seed, same fleet)."""
    if not 1 <= count <= MAX_GATEWAYS:
        raise InvalidInputError("gateways", f"a number from 1 to {MAX_GATEWAYS}", count)
    _check_loopback(host)
    if addresses and count > MAX_ADDRESSES:
        raise InvalidInputError("gateways", f"at most {MAX_ADDRESSES} with --addresses", count)
    if not addresses and port and port + count - 1 > 65535:
        raise InvalidInputError(
            "port", f"a port from which {count} consecutive ports fit (<= {65536 - count})", port
        )
    names = [member_name(i + 1, count) for i in range(count)]
    chosen: dict[int, str] = {}
    for n, spec in enumerate(scenarios):
        rng = random.Random(_sub_seed(seed, f"scenario:{n}:{spec.text}"))
        free = [i for i in range(count) if i not in chosen]
        if _PERCENT.match(spec.target):  # a share of the gateways without a scenario yet
            picked = (
                [
                    free[i]
                    for i in resolve_target(
                        spec.target, [names[i] for i in free], rng, "--scenario"
                    )
                ]
                if free
                else []
            )
        else:
            picked = resolve_target(spec.target, names, rng, "--scenario")
        for i in picked:
            if i in chosen:
                raise InvalidInputError(
                    "--scenario",
                    f"one scenario per gateway ({names[i]} has {chosen[i]})",
                    spec.text,
                )
            chosen[i] = spec.name
    rng = random.Random(_sub_seed(seed, "sites"))
    profiles = [name for name, _ in FIRMWARE_MIX]
    weights = [w for _, w in FIRMWARE_MIX]
    plans = []
    for i, name in enumerate(names):
        zone = rng.choices(ZONES, _ZONE_WEIGHTS)[0]
        drawn_firmware = rng.choices(profiles, weights)[0]
        drawn_powerwalls = rng.choices((1, 2, 3), (50, 35, 15))[0]
        config = SiteConfig(
            latitude_deg=round(zone.latitude_deg + rng.uniform(-1.0, 1.0), 3),
            longitude_deg=round(zone.longitude_deg + rng.uniform(-1.0, 1.0), 3),
            timezone=zone.timezone,
            array_kw=round(rng.uniform(3.0, 15.0), 1),
            powerwalls=powerwalls or drawn_powerwalls,
            daily_load_kwh=round(rng.uniform(12.0, 45.0), 1),
            initial_soe_raw_percent=round(rng.uniform(20.0, 95.0), 1),
            nominal_frequency_hz=zone.frequency_hz,
            nominal_voltage_v=zone.voltage_v,
        )
        scenario = chosen.get(i)
        plans.append(
            MemberPlan(
                index=i + 1,
                name=name,
                seed=_sub_seed(seed, f"gateway:{i}"),
                host=loopback_address(i) if addresses else host,
                port=port if addresses or not port else port + i,
                firmware=firmware or (None if scenario else drawn_firmware),
                zone=zone,
                config=config,
                scenario=scenario,
            )
        )
    return plans


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidInputError("host", "a loopback address (127.0.0.1, ::1)", host)


# --- files --------------------------------------------------------------------------------


def _write_private_quick(path: Path, data: bytes) -> None:
    """A 0600 file replaced atomically, without fsync: a thousand keys in a second; a fleet's
    keys and passwords are remade when lost."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_member_certificate(state_dir: Path, *, loopback_names: bool = False) -> None:
    """A gateway's own self-signed EC certificate (its own fingerprint, so pins are per
    gateway), naming what certs.ensure_certificate expects, unless one is kept already."""
    cert_path, key_path = state_dir / certs.CERT_FILE, state_dir / certs.KEY_FILE
    dns_names = certs.DNS_NAMES + (certs.LOOPBACK_DNS_NAMES if loopback_names else ())
    ip_addresses = certs.IP_ADDRESSES if loopback_names else ()
    wanted = certs.subject_alt_names(dns_names, ip_addresses)
    if cert_path.exists() and key_path.exists() and certs.certificate_names(cert_path) == wanted:
        return
    make_private_dir(state_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "teg")])
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # loads a little faster
        serialization.NoEncryption(),
    )
    _write_private_quick(key_path, key_pem)
    _write_private_quick(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _server_context(state_dir: Path, loopback_names: bool) -> ssl.SSLContext:
    """A gateway's TLS server context, its certificate made first when it has none."""
    make_member_certificate(state_dir, loopback_names=loopback_names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(state_dir / certs.CERT_FILE, state_dir / certs.KEY_FILE)
    return context


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {toml_string(v)}" for k, v in values.items()) + " }"


# --- the gateways -------------------------------------------------------------------------


class FleetMember(Simulator):
    """One gateway of a fleet: the fleet's clock moves it, it has no Owner API port, and its
    certificate was made by the fleet (make_member_certificate) before it was built."""

    def __init__(
        self,
        plan: MemberPlan,
        fleet: SimulatedFleet,
        server_context: ssl.SSLContext | None = None,  # its certificate loaded already
        **options: Any,
    ) -> None:
        self.plan = plan
        self.fleet = fleet
        self._preloaded = server_context
        super().__init__(
            host=plan.host,
            port=plan.port,
            cloud_port=None,
            firmware=plan.firmware,
            seed=plan.seed,
            scenario=plan.scenario,
            site_config=plan.config,  # a scenario brings its own site instead
            **options,
        )
        self.control_token = fleet.control_token
        # Counted at the gateway, for a monitor's tests and benches (its budget, and whether
        # two workers ever poll one gateway at once): local API requests, those in flight.
        self.api_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def name(self) -> str:
        return self.plan.name

    def _load_certificates(self) -> None:
        # No Owner API port: the gateway certificate only (half the start-up work), loaded
        # already by the fleet the first time (a rotated one is loaded here).
        if self._preloaded is not None:
            self._ssl, self._preloaded = self._preloaded, None
            return
        self._ssl.load_cert_chain(self._cert.cert_path, self._cert.key_path)

    async def start(self) -> None:
        control = make_control_app(self, self.control_token)
        control.router.add_get("/fleet", self.fleet.summary_handler)
        local = make_gateway_app(
            self.gateway, self.faults, rate_limits=self._rate_limits, control=control
        )
        local.middlewares.append(self._count)
        self._local_runner = await self._serve_app(local)
        self._local_site, self.port = await self._bind(
            self._local_runner, self._want_port, self._ssl
        )
        self._reanchor()

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        self.api_requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    def catch_up(self) -> None:
        """Move this gateway's clock to where its speed has taken it (the fleet's tick)."""
        if self.speed > 0:
            behind_s = self._target_epoch_s() - self.now_s
            if behind_s > 0:
                self._step(behind_s)

    def state(self) -> dict[str, Any]:
        """/sim/state: the simulator's, with the gateway's name and request counts."""
        counts = {"api_requests": self.api_requests, "max_in_flight": self.max_in_flight}
        return {**super().state(), "name": self.name, **counts}

    def summary(self) -> dict[str, Any]:
        snap = self.gateway.snap()
        return {
            "name": self.name,
            "url": self.url,
            "firmware": self.gateway.profile.name,
            "timezone": self.gateway.settings.timezone,
            "scenario": self.plan.scenario,
            "running": snap.running,
            "grid_status": snap.grid_status,
            "soe_app_percent": round(snap.soe_app_percent, 2),
            "faults": len(self.faults.faults),
            "now": snap.now.isoformat(),
            "api_requests": self.api_requests,
            "max_in_flight": self.max_in_flight,
        }


@dataclass(slots=True)
class _Files:
    fleet_file: Path
    secrets_dir: Path
    password_files: dict[str, Path] = field(default_factory=dict)


class SimulatedFleet:
    """N simulated gateways in this process; `async with SimulatedFleet(20) as fleet:`."""

    def __init__(
        self,
        count: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        addresses: bool = False,
        seed: int = 0,
        firmware: str | None = None,
        powerwalls: int | None = None,
        speed: float | None = None,
        email: str = "owner@example.com",
        scenarios: Sequence[str | ScenarioSpec] = (),
        faults: Sequence[str | FaultSpec] = (),
        state_dir: str | Path | None = None,
        fleet_file: str | Path | None = None,
        cert_loopback_names: bool = False,
        allow_customer_operation: bool = False,
        start: dt.datetime | None = None,
    ) -> None:
        scenario_specs = [
            s if isinstance(s, ScenarioSpec) else parse_scenario(s) for s in scenarios
        ]
        self.fault_specs = [f if isinstance(f, FaultSpec) else parse_fault(f) for f in faults]
        for name in sorted({s.name for s in scenario_specs}):
            try:
                load_scenario(name)  # a bad name is refused before anything listens
            except InvalidInputError as exc:
                raise InvalidInputError("--scenario", exc.allowed, name) from exc
        self.seed = seed
        self.addresses = addresses
        self.plans = plan_fleet(
            count,
            seed=seed,
            host=host,
            port=port,
            addresses=addresses,
            firmware=firmware,
            powerwalls=powerwalls,
            scenarios=scenario_specs,
        )
        self.names = [p.name for p in self.plans]
        # Targets resolved now, so a bad one is refused before anything listens.
        self.fault_targets: list[tuple[FaultSpec, list[int]]] = []
        for n, spec in enumerate(self.fault_specs):
            rng = random.Random(_sub_seed(seed, f"fault:{n}:{spec.text}"))
            self.fault_targets.append(
                (spec, resolve_target(spec.target, self.names, rng, "--fault"))
            )
        self._own_state_dir = state_dir is None
        # A temporary state directory is made by start(), so an unstarted fleet leaves none.
        self.state_dir = Path(state_dir) if state_dir else Path()
        self._fleet_file = Path(fleet_file) if fleet_file else None
        self._files = _Files(Path(), Path())
        self.control_token = secrets.token_urlsafe(24)
        self.speed = speed
        self._options: dict[str, Any] = {
            "email": email,
            "speed": speed,
            "cert_loopback_names": cert_loopback_names,
            "allow_customer_operation": allow_customer_operation,
            "start": start or dt.datetime.now(dt.UTC).replace(microsecond=0),
        }
        self.members: list[FleetMember] = []
        self._task: asyncio.Task[None] | None = None
        self.start_s = 0.0  # how long start() took

    # --- what clients need -------------------------------------------------------------

    @property
    def fleet_file(self) -> Path:
        return self._files.fleet_file

    @property
    def secrets_dir(self) -> Path:
        return self._files.secrets_dir

    def member(self, target: str | int) -> FleetMember:
        """A gateway by name or number (from 1)."""
        if isinstance(target, int):
            return self.members[target - 1]
        return self.members[self.names.index(target)]

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        began = time.perf_counter()
        if self._own_state_dir:
            self.state_dir = Path(tempfile.mkdtemp(prefix="tegsim-fleet-"))
        fleet_path = self._fleet_file or self.state_dir / "fleet.toml"
        self._files = _Files(fleet_path, fleet_path.with_name(fleet_path.stem + ".secrets"))
        try:
            raise_file_limit(len(self.plans))
            await self._start_members()
            # The file first: a rotate_cert fault then leaves its pin out of date, as it should.
            self.write_fleet_file()
            for spec, targets in self.fault_targets:
                for i in targets:
                    await self.members[i].inject_fault(spec.kind, **dict(spec.options))
        except BaseException:
            await self.close()
            raise
        self._task = asyncio.create_task(self._run_clock(), name="tegkit-sim-fleet-clock")
        self.start_s = time.perf_counter() - began

    async def _start_members(self) -> None:
        # Certificates made and loaded on two threads (OpenSSL and the key maths let go of
        # the GIL), a slice ahead of the loop that builds and starts the gateways.
        loopback_names = bool(self._options["cert_loopback_names"])
        loop = asyncio.get_running_loop()
        slices = [self.plans[i : i + _STEP_SLICE] for i in range(0, len(self.plans), _STEP_SLICE)]
        with ThreadPoolExecutor(2, thread_name_prefix="tegkit-fleet-certs") as pool:

            def prepare(plans: list[MemberPlan]) -> asyncio.Future[list[ssl.SSLContext]]:
                return asyncio.gather(
                    *(
                        loop.run_in_executor(
                            pool, _server_context, self.state_dir / p.name, loopback_names
                        )
                        for p in plans
                    )
                )

            upcoming = prepare(slices[0])
            try:
                for n, plans in enumerate(slices):
                    contexts = await upcoming
                    if n + 1 < len(slices):
                        upcoming = prepare(slices[n + 1])
                    for plan, context in zip(plans, contexts, strict=True):
                        await self._start_member(plan, context)
                    await asyncio.sleep(0)  # let early gateways answer while the rest start
            finally:
                if not upcoming.done():
                    upcoming.cancel()
                    with contextlib.suppress(BaseException):
                        await upcoming

    async def _start_member(self, plan: MemberPlan, context: ssl.SSLContext) -> None:
        options = dict(self._options)
        if plan.scenario is not None:
            options["start"] = None  # the scenario's own start and site
        if self.addresses and plan.port == 0 and self.members:
            plan = _with_port(plan, self.members[0].port)  # every address on the first's port
        member = FleetMember(
            plan, self, state_dir=self.state_dir / plan.name, server_context=context, **options
        )
        self.members.append(member)
        await member.start()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        members, self.members = self.members, []
        for first in range(0, len(members), _STEP_SLICE):  # a slice at a time, together
            await asyncio.gather(*(m.close() for m in members[first : first + _STEP_SLICE]))
        if self._own_state_dir and self.state_dir != Path():
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = Path()

    async def _run_clock(self) -> None:
        """One task moves every gateway's clock, a slice at a time (not one task each)."""
        while True:
            await asyncio.sleep(_TICK_S)
            for first in range(0, len(self.members), _STEP_SLICE):
                for member in self.members[first : first + _STEP_SLICE]:
                    try:
                        member.catch_up()
                    except Exception:
                        _LOG.exception(
                            "%s: clock step failed; its clock is not advancing", member.name
                        )
                await asyncio.sleep(0)

    # --- the fleet file ----------------------------------------------------------------

    def write_fleet_file(self) -> Path:
        """The fleet file and one 0600 password file per gateway (0700 folder beside it)."""
        files = self._files
        make_private_dir(files.secrets_dir)
        for member in self.members:
            path = files.secrets_dir / member.name
            _write_private_quick(path, member.password.encode() + b"\n")
            files.password_files[member.name] = path
        files.fleet_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(files.fleet_file, self.fleet_file_text().encode())
        return files.fleet_file

    def labels(self, member: FleetMember) -> dict[str, str]:
        labels = {
            "region": _region(member.gateway.settings.timezone),
            "firmware": member.gateway.profile.name,
        }
        if member.plan.scenario:
            labels["scenario"] = Path(member.plan.scenario).stem
        return labels

    def fleet_file_text(self) -> str:
        lines = [
            f"# A simulated fleet: `teg sim --gateways {len(self.members)}` (seed {self.seed}).",
            "# Each gateway's password is in the 0600 file named by password_file.",
            "",
            "[defaults]",
            f"email = {toml_string(str(self._options['email']))}",
        ]
        for member in self.members:
            names = certs.certificate_names(member.cafile)
            lines += [
                "",
                "[[gateways]]",
                f"name = {toml_string(member.name)}",
                f"url = {toml_string(member.url)}",
            ]
            if member.host not in names:
                lines.append('sni = "teg"')  # what the certificate names, as a gateway's
            lines += [
                f'pin = "sha256:{member.fingerprint_sha256}"',
                f"password_file = {toml_string(str(self._password_file(member)))}",
                f"tz = {toml_string(member.gateway.settings.timezone)}",
                f"labels = {_toml_table(self.labels(member))}",
            ]
        return "\n".join(lines) + "\n"

    def _password_file(self, member: FleetMember) -> Path:
        return self._files.password_files.get(member.name, self.secrets_dir / member.name)

    # --- what is said about it -----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        members = self.members
        return {
            "count": len(members),
            "firmware": dict(sorted(Counter(m.gateway.profile.name for m in members).items())),
            "gateways": [m.summary() for m in members],
        }

    async def summary_handler(self, request: web.Request) -> web.Response:
        """GET /sim/fleet on any gateway's port (behind its control token)."""
        return web.json_response(self.summary())

    def describe_ports(self) -> str:
        if not self.members:
            return "no gateways"
        first, last = self.members[0], self.members[-1]
        if self.addresses:
            return f"{first.host}-{last.host} port {first.port}"
        ports = [m.port for m in self.members]
        if ports == list(range(ports[0], ports[0] + len(ports))):
            return f"{first.host} ports {ports[0]}-{ports[-1]}"
        return f"{first.host} ports {min(ports)}..{max(ports)} (free ports)"

    def targets_text(self) -> list[str]:
        out = []
        for spec, targets in self.fault_targets:
            out.append(f"fault {spec.kind} -> {_names_text([self.names[i] for i in targets])}")
        scenario_of: dict[str, list[str]] = {}
        for plan in self.plans:
            if plan.scenario:
                scenario_of.setdefault(plan.scenario, []).append(plan.name)
        for name, members in scenario_of.items():
            out.append(f"scenario {name} -> {_names_text(members)}")
        return out

    def start_line(self) -> dict[str, Any]:
        """The --json line for a fleet: everything but the passwords (see their files)."""
        return {
            "format": FLEET_START_LINE_FORMAT,
            "pid": os.getpid(),
            "gateways": len(self.members),
            "addresses": self.addresses,
            "fleet_file": str(self.fleet_file),
            "secrets_dir": str(self.secrets_dir),
            "control_token": self.control_token,
            "state_dir": str(self.state_dir),
            "seed": self.seed,
            "start_s": round(self.start_s, 3),
            "members": [
                {
                    "name": m.name,
                    "url": m.url,
                    "control_url": f"{m.url}/sim",
                    "fingerprint_sha256": m.fingerprint_sha256,
                    "cafile": str(m.cafile),
                    "password_file": str(self._password_file(m)),
                    "firmware": m.gateway.profile.name,
                    "timezone": m.gateway.settings.timezone,
                    "scenario": m.plan.scenario,
                    "faults": m.faults.describe(),
                }
                for m in self.members
            ],
        }


#: the --json start line's format for a fleet
FLEET_START_LINE_FORMAT = "tegkit-sim-fleet/1"


def _with_port(plan: MemberPlan, port: int) -> MemberPlan:
    return MemberPlan(
        plan.index, plan.name, plan.seed, plan.host, port, plan.firmware, plan.zone,
        plan.config, plan.scenario,
    )  # fmt: skip


def _region(timezone: str) -> str:
    for zone in ZONES:
        if zone.timezone == timezone:
            return zone.region
    area = timezone.split("/", 1)[0]
    return {"America": "us", "Australia": "au", "Europe": "eu"}.get(area, area.lower())


def _names_text(names: list[str]) -> str:
    if len(names) <= 8:
        return ", ".join(names)
    return f"{len(names)} gateways ({', '.join(names[:5])}, ...)"


def raise_file_limit(gateways: int) -> int:
    """Raise this process's soft open-file limit up to the hard one when `gateways` need it;
    InvalidInputError naming `gateways` when even the hard limit is too low. The soft limit."""
    wanted = 2 * gateways + 4 * _FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < gateways + _FD_MARGIN:
        raise InvalidInputError(
            "gateways",
            f"at most {max(0, soft - _FD_MARGIN)} with this process's open-file limit "
            f"({soft}; raise it with `ulimit -n`)",
            gateways,
        )
    return int(soft)


__all__ = [
    "FAULT_KINDS",
    "FIRMWARE_MIX",
    "FLEET_START_LINE_FORMAT",
    "MAX_GATEWAYS",
    "ZONES",
    "FaultSpec",
    "FleetMember",
    "MemberPlan",
    "ScenarioSpec",
    "SimulatedFleet",
    "loopback_address",
    "make_member_certificate",
    "member_name",
    "parse_fault",
    "parse_scenario",
    "plan_fleet",
    "raise_file_limit",
    "resolve_target",
]
