"""`teg monitor` and `teg demo`: click commands that run the monitor (and the simulator).

Each `--gateway` is a profile name from `teg setup`, an https:// URL, or NAME=URL to name
it in the dashboard and the metrics' `gateway` label. A profile is used as every other
`teg` command uses it: its host, certificate pin, email and kept session (`teg setup` and
`teg login` keep one), the password from --password / TEG_PASSWORD or the profile, else a
prompt on a terminal. A URL takes its password, certificate pin or CA file from the
options here, from TEG_PASSWORD / TEG_PIN / TEG_CAFILE, or from the `teg` group's own
options. Without `--gateway` the group's profile (or TEG_HOST) is watched.

At start-up each gateway is read once: when every one refuses the credentials the
monitor ends with exit code 3 and says how to log in. Warnings and errors go to stderr
(`tegkit.logs`); each site's days follow its own time zone (`tegkit.monitor.sitetz`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import platformdirs

from tegkit import logs
from tegkit.automation.plan import Plan
from tegkit.cli._loop import event_loop_option, run
from tegkit.cli._memory import prepare_long_run
from tegkit.cli.monitor_export import export_command
from tegkit.cli.output import json_option
from tegkit.errors import AuthenticationError, InvalidInputError
from tegkit.monitor.auth import MIN_TOKEN_CHARS
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.metrics import PER_GATEWAY_MAX
from tegkit.monitor.mqtt.options import mqtt_options, settings_from_options
from tegkit.monitor.poller import REQUESTS_PER_CALL_MAX, PollerConfig
from tegkit.monitor.readings import RetentionPolicy
from tegkit.monitor.service import DEFAULT_LISTEN, GatewayTarget, Monitor
from tegkit.route import VIAS, CloudTarget, Via
from tegkit.sim.scenario import BUILTIN_SCENARIOS, DEFAULT_SCENARIO

if TYPE_CHECKING:
    from tegkit.monitor.alerts import AlertConfig
    from tegkit.monitor.lease import LeaseSettings, WorkerFleet
    from tegkit.sim import Simulator
    from tegkit.tariff import Tariff

log = logging.getLogger(__name__)

#: the control token's variable: a value in the environment stays out of `ps` output.
CONTROL_TOKEN_ENV = "TEG_MONITOR_CONTROL_TOKEN"


def default_db() -> Path:
    return Path(platformdirs.user_state_dir("tegkit")) / "monitor.db"


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:8675) to a (host, port) pair; click.BadParameter if not."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:8675")
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    return host, int(port)


def _is_url(value: str) -> bool:
    return value.startswith(("https://", "http://")) or any(ch in value for ch in ".:")


def resolve_targets(
    gateways: tuple[str, ...], opts: dict[str, Any], ctx: click.Context
) -> list[GatewayTarget]:
    """GatewayTargets for the --gateway values (profiles or URLs), or the group's gateway."""
    settings = None
    with contextlib.suppress(ImportError):
        from tegkit.cli.app import Settings

        settings = ctx.find_object(Settings)

    def fallback(name: str) -> Any:
        value = opts.get(name)
        if value is None and settings is not None:
            value = getattr(settings, name, None)
        return value

    if not gateways:
        if settings is None or not settings.host:
            raise click.UsageError(
                "no gateway: pass --gateway URL_OR_PROFILE (repeatable) or set TEG_HOST"
            )
        # the group's gateway: its settings and kept session, as every other command
        target = GatewayTarget(
            name=settings.profile_name,
            url=settings.host,
            password=opts.get("password") or settings.password,
            email=opts.get("email") or settings.email,
            pin=settings.pin,
            cafile=settings.cafile,
            sni=settings.sni,
            insecure=settings.insecure,
            timeout_s=settings.timeout_s,
            session_file=settings.session_file,
        )
        return [_ask_password(target)]
    targets = []
    config = None
    for value in gateways:
        label, eq, rest = value.partition("=")
        url: str | None = None
        if eq and "://" not in label and label:  # NAME=URL names the gateway
            name, url = label, rest
        elif _is_url(value):
            name, url = _name_for(value), value
        if url is not None:
            targets.append(
                GatewayTarget(
                    name=name,
                    url=url,
                    password=fallback("password"),
                    email=fallback("email") or "",
                    pin=fallback("pin"),
                    cafile=fallback("cafile"),
                    sni=fallback("sni"),
                    insecure=bool(fallback("insecure")),
                )
            )
            continue
        if config is None:
            from tegkit.cli import config as configfile

            try:
                config = configfile.load()
            except ValueError as exc:  # InvalidInputError names the key
                raise click.UsageError(f"config file: {exc}") from None
        if value not in config.profiles:
            known = ", ".join(sorted(config.profiles)) or "none yet"
            raise click.BadParameter(
                f"{value!r} is neither a URL nor a profile (profiles: {known})",
                param_hint="--gateway",
            )
        targets.append(_ask_password(_profile_target(value, config, opts, settings)))
    seen: dict[str, int] = {}
    unique = []
    for t in targets:  # two URLs on one host: home, home-2
        n = seen.get(t.name, 0) + 1
        seen[t.name] = n
        unique.append(t if n == 1 else dataclasses.replace(t, name=f"{t.name}-{n}"))
    return unique


def _profile_target(name: str, config: Any, opts: dict[str, Any], settings: Any) -> GatewayTarget:
    """A profile's gateway exactly as `teg --profile NAME ...` reaches it: its host, pin or
    CA, email, timeout and kept session; the password from --password / TEG_PASSWORD, else
    the profile's saved one."""
    from tegkit.cli.app import DEFAULT_TIMEOUT_S, Settings

    profile = config.profiles[name]
    if not profile.host:
        raise click.BadParameter(f"profile {name!r} has no host", param_hint="--gateway")
    password = opts.get("password") or profile.password
    if password is None and settings is not None and settings.profile_name == name:
        password = settings.password  # `teg --profile home --password ... monitor`
    resolved = Settings(
        config=config,
        profile_name=name,
        host=profile.host,
        password=password,
        email=profile.email or opts.get("email") or "",
        cafile=profile.cafile,
        pin=profile.pin,
        insecure=bool(profile.insecure),
        sni=profile.sni,
        timeout_s=profile.timeout_s or DEFAULT_TIMEOUT_S,
        verbose=False,
    )
    return GatewayTarget(
        name=name,
        url=profile.host,
        password=password,
        email=resolved.email,
        pin=resolved.pin,
        cafile=str(Path(resolved.cafile).expanduser()) if resolved.cafile else None,
        sni=resolved.sni,
        insecure=resolved.insecure,
        timeout_s=resolved.timeout_s,
        session_file=resolved.session_file,
    )


def with_cloud(
    targets: list[GatewayTarget], cloud_profile: str | None, via: Via, ctx: click.Context
) -> list[GatewayTarget]:
    """Each target with the cloud its changes take when the gateway refuses them locally:
    the tokens of --cloud-profile (one gateway only), else of the gateway's own profile
    when it keeps some. Nothing is sent here; the tokens stay in their 0600 file."""
    from tegkit.cli.app import Settings
    from tegkit.cli.change import profile_cloud

    settings = ctx.find_object(Settings)
    if settings is None:
        if cloud_profile is not None or via == "cloud":
            raise click.UsageError("--cloud-profile needs the `teg` command's settings")
        return targets
    if cloud_profile is not None:
        if len(targets) != 1:
            raise click.UsageError("--cloud-profile serves one gateway; watch one with it")
        if cloud_profile not in settings.config.profiles:
            known = ", ".join(sorted(settings.config.profiles)) or "none yet"
            raise click.BadParameter(
                f"no profile {cloud_profile!r} (profiles: {known})", param_hint="--cloud-profile"
            )
    out = []
    for target in targets:
        name = cloud_profile or target.name
        cloud = None
        if name in settings.config.profiles or name == settings.profile_name:
            cs = profile_cloud(dataclasses.replace(settings, profile_name=name))
            if cloud_profile is not None or via == "cloud" or cs.token_file.is_file():
                cloud = CloudTarget(cs.client(), cs.site_id, cs.battery_id)
        if via == "cloud" and cloud is None:
            raise click.UsageError(
                f"--via cloud: no cloud for gateway {target.name!r}; give --cloud-profile"
            )
        out.append(dataclasses.replace(target, cloud=cloud, via=via))
    return out


def _ask_password(target: GatewayTarget) -> GatewayTarget:
    """As the other commands: without a password or a kept session, ask on a terminal."""
    if target.password is not None or target.session_file is None or not sys.stdin.isatty():
        return target
    from tegkit.client import has_kept_session

    if has_kept_session(target.session_file, target.url):
        return target
    password = click.prompt(f"Password of gateway {target.name}", hide_input=True, err=True)
    return dataclasses.replace(target, password=password or None)


def _name_for(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host.replace("[", "").replace("]", "")


def _zone(value: str) -> dt.tzinfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise click.BadParameter(
            f"{value!r}: not a time zone name such as Europe/Berlin", param_hint="--tz"
        ) from None


def apply_tz(targets: list[GatewayTarget], values: tuple[str, ...]) -> list[GatewayTarget]:
    """--tz ZONE sets every gateway's site zone, --tz NAME=ZONE one gateway's (it wins);
    a gateway without either follows the zone it reports itself."""
    every: dt.tzinfo | None = None
    named: dict[str, dt.tzinfo] = {}
    names = [t.name for t in targets]
    for value in values:
        name, eq, zone = value.rpartition("=")
        if not eq:
            every = _zone(zone)
            continue
        if name not in names:
            raise click.BadParameter(
                f"{value!r}: no gateway named {name!r} (gateways: {', '.join(names)})",
                param_hint="--tz",
            )
        named[name] = _zone(zone)
    return [
        dataclasses.replace(t, tz=named.get(t.name, every)) if t.name in named or every else t
        for t in targets
    ]


def load_plans(targets: list[GatewayTarget], values: tuple[str, ...]) -> dict[str, Plan]:
    """The plan of each gateway: --plan PLAN for every gateway, --plan NAME=PLAN for one
    (it wins over the plan for every gateway). A value whose part before '=' names no
    gateway is a path. Each file is read and checked here, before anything starts."""
    from tegkit.automation.planfile import load_plan

    names = [t.name for t in targets]
    every: str | None = None
    named: dict[str, str] = {}
    for value in values:
        name, eq, path = value.partition("=")
        if eq and name in names:
            if name in named:
                raise click.BadParameter(f"two plans for gateway {name!r}", param_hint="--plan")
            named[name] = path
        elif every is not None:
            raise click.BadParameter(
                f"{value!r}: a second plan for every gateway (give one per gateway as "
                f"NAME=PLAN; gateways: {', '.join(names)})",
                param_hint="--plan",
            )
        else:
            every = value
    loaded: dict[str, Plan] = {}
    plans: dict[str, Plan] = {}
    for name in names:
        chosen = named.get(name, every)
        if chosen is None:
            continue
        if chosen not in loaded:
            try:
                loaded[chosen] = load_plan(Path(chosen))
            except InvalidInputError as exc:  # names the rule and the field
                raise click.BadParameter(str(exc), param_hint="--plan") from None
        plans[name] = loaded[chosen]
    return plans


class _Positive(click.ParamType):  # type: ignore[type-arg]
    """A finite number above 0 and at most `most` (inf and nan are refused, not obeyed)."""

    def __init__(
        self, unit: str, most: float, *, forever: bool = False, zero: bool = False
    ) -> None:
        self.name = unit
        self.most = most
        self.forever = forever
        self.zero = zero  # 0 is allowed too

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (self.forever and str(value).strip().lower() == "forever"):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        low_ok = number >= 0 if self.zero else number > 0
        if not math.isfinite(number) or not low_ok or number > self.most:
            also = ", or 'forever'" if self.forever else ""
            low = "0 or more" if self.zero else "above 0"
            self.fail(
                f"{value!r}: expected a number of {self.name.lower()}, {low} and at most "
                f"{self.most:g}{also}",
                param,
                ctx,
            )
        return number


#: a retention longer than a century is a typo
_MAX_KEEP_DAYS = 36_500.0
_MAX_INTERVAL_S = 86_400.0


def _verbose(ctx: click.Context) -> bool:
    """--verbose of the `teg` group, when the command runs under it."""
    root = ctx.find_root()
    return root is not ctx and bool(root.params.get("verbose"))


async def _refused(monitor: Monitor) -> dict[str, AuthenticationError]:
    """The gateways that refuse the credentials: one live read each, inside its budget.

    Only a refusal counts; an unreachable or busy gateway is the poller's to retry.
    """

    pollers = list(monitor.pollers.values())
    found = await asyncio.gather(*(p.check_credentials() for p in pollers))
    return {p.name: exc for p, exc in zip(pollers, found, strict=True) if exc is not None}


def _is_start_failure(exc: BaseException) -> bool:
    """An address taken, a database that cannot be opened: the user's to fix, not a bug."""
    if isinstance(exc, OSError | sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded only with a postgresql:// --db
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _cannot_start(monitor: Monitor, exc: BaseException) -> click.ClickException:
    """One line saying what could not start. A database's message is its first line only
    (the server's detail lines may quote the query); psycopg never repeats the password."""
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        host, port = monitor.listen
        what = exc.filename if exc.filename is not None else f"listening on {host}:{port}"
        return click.ClickException(f"cannot start: {what}: {exc.strerror or exc}")
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return click.ClickException(f"cannot start: the database (--db): {first}")


async def _serve_until_signal(
    monitor: Monitor, announce: str, reload: FleetReload | None = None
) -> dict[str, AuthenticationError] | None:
    """Serve until SIGINT/SIGTERM; the refusals when every gateway refuses at start-up.
    With `reload`, SIGHUP reads the fleet file again."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, monitor.stop)
    if reload is not None:
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, reload.signal)
    try:
        try:
            await monitor.start(poll=False)
        except Exception as exc:
            if _is_start_failure(exc):
                raise _cannot_start(monitor, exc) from None
            raise
        refused = await _refused(monitor)
        if len(refused) == len(monitor.targets):
            return refused
        for name, refusal in refused.items():
            log.error("%s: the gateway refused the credentials: %s", name, _detail(refusal))
        monitor.start_polling()
        click.echo(announce.format(url=monitor.url), err=True)
        await monitor.wait()
    finally:
        if reload is not None:
            with contextlib.suppress(NotImplementedError, AttributeError):
                loop.remove_signal_handler(signal.SIGHUP)
            await reload.aclose()
        await monitor.close()
    return None


def _check_broker(ctx: click.Context, settings: Any) -> None:
    from tegkit.cli.exit_codes import AUTHENTICATION, CERTIFICATE_MISMATCH
    from tegkit.monitor.mqtt.bridge import check_broker

    refused = asyncio.run(check_broker(settings))
    if refused is not None:
        click.echo(f"teg monitor: {refused}", err=True)
        ctx.exit(AUTHENTICATION if refused.kind == "auth" else CERTIFICATE_MISMATCH)


def _detail(exc: AuthenticationError) -> str:
    parts = dict.fromkeys(p for p in (exc.error, exc.message) if p)
    return "; ".join(parts) or f"HTTP {exc.status}"


def _refused_message(
    targets: list[GatewayTarget],
    refused: dict[str, AuthenticationError],
    fleet: Path | None = None,
) -> str:
    """What happened to each gateway and what to do about it."""
    lines = ["teg monitor: every gateway refused the credentials; nothing was recorded."]
    for t in targets:
        exc = refused[t.name]
        how = "the password given was refused" if t.password else "no password was given"
        if t.session_file is not None and not t.password:
            how += " and no kept session is valid"
        lines.append(f"  {t.name} ({t.url}): {how} ({_detail(exc)})")
        if t.session_file is not None:
            lines.append(
                f"    keep a session: teg --profile {t.name} login   "
                f"(or: teg --profile {t.name} setup --save-password)"
            )
    if fleet is not None:
        lines.append(f"Check each gateway's password source in {fleet}, then start again.")
    else:
        lines.append("Give the password with --password or TEG_PASSWORD, then start again.")
    return "\n".join(lines)


_MONITOR_EPILOG = (
    "\b\nExample:\n"
    "  teg monitor --gateway home                       # a profile from `teg setup`\n"
    "  TEG_PASSWORD=... teg monitor --gateway garage=https://192.168.1.60 --pin <sha256>\n"
    "  export TEG_MONITOR_CONTROL_TOKEN=$(openssl rand -hex 16)   # not in the process list\n"
    "  teg monitor --gateway home --tariff tou.toml      # controls behind a login\n"
    "  teg monitor --gateway home --plan sce-tou.toml    # the owner's plan runs too"
)


def _check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and len(value) < MIN_TOKEN_CHARS:
        raise click.BadParameter(f"use at least {MIN_TOKEN_CHARS} characters", ctx, param)
    return value or None


_DEMO_EPILOG = "\b\nExample:\n  teg demo --scenario evening-outage --speed 120"


@click.group("monitor", epilog=_MONITOR_EPILOG, invoke_without_command=True)
@click.option(
    "--fleet",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FLEET.toml",
    help="A fleet file: every gateway with its own address, certificate, password source, "
    "zone, tariff, poll intervals and labels (see the README). Instead of --gateway and the "
    "per-gateway options; SIGHUP reads it again.",
)
@click.option(
    "--gateway",
    "gateways",
    multiple=True,
    metavar="PROFILE_OR_URL",
    help="A profile name, an https:// URL or NAME=URL; repeat to watch several gateways.",
)
@click.option("--password", envvar="TEG_PASSWORD", help="Password for URL gateways.")
@click.option("--email", envvar="TEG_EMAIL", help="Email for the customer login.")
@click.option("--pin", envvar="TEG_PIN", help="SHA-256 fingerprint of the gateway certificate.")
@click.option("--cafile", envvar="TEG_CAFILE", type=click.Path(dir_okay=False))
@click.option("--insecure", is_flag=True, envvar="TEG_INSECURE", help="Skip certificate checks.")
@click.option(
    "--cloud-profile",
    envvar="TEG_MONITOR_CLOUD_PROFILE",
    show_envvar=True,
    metavar="PROFILE",
    help="The profile whose Tesla cloud tokens (`teg cloud token import`) carry the "
    "dashboard's changes when the gateway refuses them locally (firmware 20.49 and later). "
    "Default: each gateway's own profile, when it keeps tokens.",
)
@click.option(
    "--via",
    type=click.Choice(VIAS),
    default="auto",
    envvar="TEG_VIA",
    show_envvar=True,
    show_default=True,
    help="Route of the dashboard's changes: auto, local or cloud (see `teg set --help`).",
)
@click.option(
    "--db", envvar="TEG_MONITOR_DB", show_envvar=True, help="SQLite path or postgresql:// URL."
)
@click.option(
    "--listen",
    default="127.0.0.1:8675",
    envvar="TEG_MONITOR_LISTEN",
    show_envvar=True,
    show_default=True,
    help="HOST:PORT to serve on; loopback unless you choose otherwise.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name the dashboard is reached by (the Host header); repeatable. "
    "Loopback names and the --listen address are always answered.",
)
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), help="Tariff TOML file.")
@click.option(
    "--tz",
    multiple=True,
    metavar="[NAME=]ZONE",
    help="The site's time zone for days, tariff periods and daily history, e.g. "
    "America/Los_Angeles (every gateway) or home=Europe/Berlin (one); repeatable. "
    "Default: the zone each gateway reports, else this machine's.",
)
@click.option(
    "--plan",
    "plans",
    multiple=True,
    metavar="[NAME=]PLAN",
    help="A plan file (`teg auto check PLAN`) the monitor carries out on every gateway, or "
    "NAME=PLAN on one (it wins); repeatable. It uses the gateway's poller and request budget; "
    "its outcomes are events, metrics and the dashboard's Plan panel.",
)
@click.option(
    "--plan-dry-run",
    is_flag=True,
    help="Run the plans without changing anything: each action says what it would do.",
)
@click.option(
    "--control-token",
    envvar=CONTROL_TOKEN_ENV,
    show_envvar=True,
    callback=_check_token,
    help="Enables reserve and mode controls on the dashboard, behind a login with this token "
    f"(at least {MIN_TOKEN_CHARS} characters). Prefer {CONTROL_TOKEN_ENV}: an option's value "
    "shows in the process list.",
)
@click.option(
    "--fast-interval",
    type=_Positive("SECONDS", _MAX_INTERVAL_S),
    default=5.0,
    show_default=True,
    help="Seconds between readings.",
)
@click.option(
    "--slow-interval",
    type=_Positive("SECONDS", _MAX_INTERVAL_S),
    default=60.0,
    show_default=True,
    help="Seconds between settings.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=REQUESTS_PER_CALL_MAX),
    default=90,
    show_default=True,
    help="Most gateway requests a minute, per gateway.",
)
@click.option(
    "--keep-raw-days",
    type=_Positive("DAYS", _MAX_KEEP_DAYS, forever=True),
    default=400.0,
    show_default=True,
    help="Days of full-resolution readings to keep ('forever' keeps them all).",
)
@click.option(
    "--keep-minute-days",
    type=_Positive("DAYS", _MAX_KEEP_DAYS, forever=True),
    default=800.0,
    show_default=True,
    help="Days of minute rollups to keep (quarter-hour, hour and day rollups stay).",
)
@click.option(
    "--worker",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ID]",
    help="Share the --fleet with other workers on the same --db postgresql:// database: "
    "each gateway is polled by one worker at a time, taken over within 30 s when its "
    "worker dies. ID names this worker (default HOSTNAME:PID; unique among the workers).",
)
@click.option(
    "--lease-ttl",
    type=_Positive("SECONDS", 3600.0),
    default=15.0,
    show_default=True,
    help="With --worker: a gateway whose worker has not renewed its lease for this long is "
    "taken over by another.",
)
@click.option(
    "--heartbeat",
    type=_Positive("SECONDS", 1800.0),
    default=5.0,
    show_default=True,
    help="With --worker: seconds between lease renewals (at most half --lease-ttl).",
)
@click.option(
    "--metrics-per-gateway/--no-metrics-per-gateway",
    default=None,
    help="/metrics with series per gateway (labelled gateway and the fleet file's labels), "
    "or only the tegkit_fleet_* aggregates per combination of label values, whose number "
    f"follows the label values. Default: per gateway up to {PER_GATEWAY_MAX} gateways.",
)
@mqtt_options
@event_loop_option
@logs.log_format_option
@click.pass_context
def monitor(ctx: click.Context, /, gateways: tuple[str, ...], **opts: Any) -> None:
    """Record one or more gateways, serve the dashboard, the JSON API and /metrics.

    Warnings and errors (an unreachable gateway, a refused password, a failed clean-up)
    are written to stderr, one line each, the same cause at most once a minute.
    """
    if ctx.invoked_subcommand is not None:
        return  # `teg monitor backfill`: a one-off job, the monitor does not start
    fleet_path: Path | None = opts["fleet"]
    if fleet_path is not None:
        _only_fleet(ctx, gateways)
        fleet_gateways, alerts = _start_fleet(fleet_path, ctx)
        tariff = None
    else:
        fleet_gateways, tariff = _gateways_from_options(gateways, opts, ctx)
        alerts = None
    targets = [g.target for g in fleet_gateways]
    plans = load_plans(targets, opts["plans"])
    mqtt = settings_from_options(opts, [t.name for t in targets])
    db = opts["db"] or str(default_db())
    worker = _worker_mode(ctx, opts, db)
    mon = Monitor(
        gateways=[] if worker is not None else fleet_gateways,  # a worker's come by lease
        allow_empty=worker is not None,
        db=db,
        listen=parse_listen(opts["listen"]),
        tariff=tariff,
        control_token=opts["control_token"],
        config=fleet_gateways[0].config if fleet_path is None else None,
        # a reading is stale after three of its gateway's fast intervals (the longest's)
        stale_after_s=max(15.0, 3 * max(g.config.fast_interval_s for g in fleet_gateways)),
        retention=RetentionPolicy(opts["keep_raw_days"], opts["keep_minute_days"]),
        allowed_hosts=opts["allowed_hosts"],
        plans=plans,
        plan_dry_run=opts["plan_dry_run"],
        mqtt=mqtt,
        metrics_per_gateway=opts["metrics_per_gateway"],
        alerts=alerts,
    )
    if fleet_path is None:
        names = ", ".join(t.name for t in targets)
        announce = f"teg monitor: watching {names}; dashboard {{url}}"
        reload = None
    else:
        announce = (
            f"teg monitor: watching {len(targets)} gateway(s) of {fleet_path} "
            "(SIGHUP reads it again); dashboard {url}"
        )
        reload = FleetReload(fleet_path, ctx, mon)
    prepare_long_run()  # a connection or two per gateway: see tegkit.cli._memory
    with logs.to_stderr(opts["log_format"], verbose=_verbose(ctx)):
        if mqtt is not None:  # a broker that refuses us ends it before anything starts
            _check_broker(ctx, mqtt)
        if worker is not None:
            run(_serve_worker(mon, fleet_gateways, db, *worker, ctx=ctx), opts["event_loop"])
            return
        refused = run(_serve_until_signal(mon, announce, reload), opts["event_loop"])
    if refused:
        from tegkit.cli.exit_codes import AUTHENTICATION

        click.echo(_refused_message(targets, refused, fleet=fleet_path), err=True)
        ctx.exit(AUTHENTICATION)


def _gateways_from_options(
    gateways: tuple[str, ...], opts: dict[str, Any], ctx: click.Context
) -> tuple[list[FleetGateway], Tariff | None]:
    """The command line's gateways as a fleet's: every one with the same poll settings and
    tariff, --tz and --cloud-profile applied (the one path from options to FleetGateways)."""
    targets = apply_tz(resolve_targets(gateways, opts, ctx), opts["tz"])
    targets = with_cloud(targets, opts["cloud_profile"], opts["via"], ctx)
    tariff = None
    if opts["tariff"]:
        from tegkit.tariff import load_tariff

        try:
            tariff = load_tariff(Path(opts["tariff"]))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tariff") from None
    try:
        config = PollerConfig(
            fast_interval_s=opts["fast_interval"],
            slow_interval_s=opts["slow_interval"],
            budget_per_minute=opts["budget"],
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if config.needed_per_minute() > config.budget_per_minute:
        raise click.UsageError(
            f"the intervals need {config.needed_per_minute():.0f} requests a minute, "
            f"more than --budget {config.budget_per_minute}"
        )
    return [FleetGateway(t, config, tariff) for t in targets], tariff


#: the options a fleet file replaces (each gateway's own settings are in the file)
_PER_GATEWAY_OPTIONS = {
    "password": "--password",
    "email": "--email",
    "pin": "--pin",
    "cafile": "--cafile",
    "insecure": "--insecure",
    "cloud_profile": "--cloud-profile",
    "via": "--via",
    "tariff": "--tariff",
    "tz": "--tz",
    "fast_interval": "--fast-interval",
    "slow_interval": "--slow-interval",
    "budget": "--budget",
}


def _only_fleet(ctx: click.Context, gateways: tuple[str, ...]) -> None:
    """--fleet with --gateway or a per-gateway option typed on the command line is refused;
    the same settings from the environment (TEG_PASSWORD, TEG_PIN...) are left unused: in a
    fleet each gateway's password comes from the source the file names for it."""
    given = ["--gateway"] if gateways else []
    for name, option in _PER_GATEWAY_OPTIONS.items():
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            given.append(option)
    if given:
        raise click.UsageError(
            f"--fleet takes every gateway and its settings from the file; leave out "
            f"{', '.join(given)} (set them per gateway or in [defaults] of the file)"
        )


def _start_fleet(path: Path, ctx: click.Context) -> tuple[list[FleetGateway], AlertConfig | None]:
    """The fleet file's gateways, clouds resolved, and its alert rules; a usage error
    listing every problem."""
    from tegkit.monitor.fleet import load_fleet

    try:
        fleet = load_fleet(path)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    found, problems = resolve_fleet_clouds(fleet.gateways, ctx)
    if problems:
        raise click.UsageError(f"fleet file {path}:\n" + "\n".join(f"  {p}" for p in problems))
    return found, fleet.alerts


def resolve_fleet_clouds(
    gateways: Sequence[FleetGateway], ctx: click.Context
) -> tuple[list[FleetGateway], list[str]]:
    """Each gateway with its `cloud_profile` resolved as --cloud-profile is (`with_cloud`);
    the problems, each naming the gateway and the field, instead of raising."""
    from tegkit.errors import GatewayError

    out: list[FleetGateway] = []
    problems: list[str] = []
    for index, gateway in enumerate(gateways, start=1):
        target = gateway.target
        if gateway.cloud_profile is None and target.via != "cloud":
            out.append(gateway)
            continue
        try:
            (target,) = with_cloud([target], gateway.cloud_profile, target.via, ctx)
        except (click.ClickException, GatewayError) as exc:
            text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            problems.append(f'gateways[{index}] "{gateway.name}": cloud_profile: {text}')
            continue
        out.append(dataclasses.replace(gateway, target=target))
    return out, problems


async def _aclose_clouds(gateways: Sequence[FleetGateway]) -> None:
    """Close the cloud clients made for gateways that will not be polled."""
    for gateway in gateways:
        if gateway.target.cloud is not None:
            with contextlib.suppress(Exception):
                await gateway.target.cloud.client.close()


#: a reload's problems logged one a line, at most this many (the rest counted)
MAX_RELOAD_PROBLEM_LINES = 50


def _worker_mode(
    ctx: click.Context, opts: dict[str, Any], db: str
) -> tuple[str, LeaseSettings] | None:
    """--worker: (this worker's id, its lease settings); None without --worker."""
    from tegkit.monitor.lease import LeaseSettings, default_worker_id

    if opts["worker"] is None:
        for name in ("lease_ttl", "heartbeat"):
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
                raise click.UsageError(f"--{name.replace('_', '-')}: only with --worker")
        return None
    if opts["fleet"] is None:
        raise click.UsageError("--worker shares a fleet: give it with --fleet FLEET.toml")
    if not db.startswith(("postgresql://", "postgres://")):
        raise click.UsageError(
            "--worker: the workers share their leases and readings through PostgreSQL: "
            "give --db postgresql://..."
        )
    if opts["plans"]:
        raise click.UsageError("--plan: not with --worker (a plan runs on one monitor)")
    worker_id = opts["worker"].strip() or default_worker_id()
    if len(worker_id) > 200 or not worker_id.isprintable():
        raise click.BadParameter("at most 200 printable characters", param_hint="--worker")
    ttl_s, heartbeat_s = opts["lease_ttl"], opts["heartbeat"]
    if ttl_s < 2 * heartbeat_s:
        raise click.UsageError(
            f"--lease-ttl: at least twice --heartbeat ({2 * heartbeat_s:g} s), not {ttl_s:g}: "
            "a worker stops polling a heartbeat before its leases can end"
        )
    return worker_id, LeaseSettings(ttl_s=ttl_s, heartbeat_s=heartbeat_s)


async def _serve_worker(
    monitor: Monitor,
    fleet: list[FleetGateway],
    db: str,
    worker_id: str,
    settings: LeaseSettings,
    *,
    ctx: click.Context,
) -> None:
    """A fleet worker until SIGINT/SIGTERM: its own dashboard and /metrics for the gateways
    leased to it (tegkit.monitor.lease); SIGHUP reads the fleet file again; on the way out
    it gives its leases back."""
    from tegkit.monitor.lease import serve_worker

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, monitor.stop)
    try:
        import psycopg
    except ImportError:  # the `postgres` extra is not installed
        raise click.ClickException(
            "--worker needs psycopg: pip install 'tegkit[postgres]'"
        ) from None
    try:
        await monitor.start(poll=False)
    except (OSError, psycopg.Error, sqlite3.Error) as exc:
        await monitor.close()
        raise _cannot_start(monitor, exc) from None

    reloads: list[FleetReload] = []

    def ready(worker: WorkerFleet) -> None:
        reload = FleetReload(ctx.params["fleet"], ctx, worker)
        reloads.append(reload)
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, reload.signal)
        click.echo(
            f"teg monitor: worker {worker_id} sharing {len(fleet)} gateway(s) with the other "
            f"workers (lease {settings.ttl_s:g} s, heartbeat {settings.heartbeat_s:g} s; "
            f"SIGHUP reads the fleet file again); dashboard {monitor.url}",
            err=True,
        )

    try:
        await serve_worker(monitor, fleet, db, worker_id=worker_id, settings=settings, ready=ready)
    finally:
        for reload in reloads:
            with contextlib.suppress(NotImplementedError, AttributeError):
                loop.remove_signal_handler(signal.SIGHUP)
            await reload.aclose()


class FleetReload:
    """SIGHUP: the fleet file read again and applied with `Monitor.set_gateways`; a file
    with problems is logged (each problem names the gateway and field) and the running
    fleet kept. Reloads run one after another, in the order the signals came."""

    def __init__(self, path: Path, ctx: click.Context, monitor: Monitor | WorkerFleet) -> None:
        self.path = path
        self.ctx = ctx
        self.monitor = monitor
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def signal(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="fleet-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> None:
        from tegkit.monitor.fleet import FleetFileError, load_fleet

        async with self._lock:
            log.info("fleet file %s: reading it again (SIGHUP)", self.path)
            try:
                fleet = await asyncio.to_thread(load_fleet, self.path)
            except FleetFileError as exc:
                self._refused([str(e) for e in exc.errors])
                return
            except Exception as exc:  # never the monitor stopped by a reload
                self._refused([f"{type(exc).__name__}: {exc}"])
                return
            found, problems = resolve_fleet_clouds(fleet.gateways, self.ctx)
            if problems:
                await _aclose_clouds(found)
                self._refused(problems)
                return
            try:
                change = await self.monitor.set_gateways(found)
            except ValueError as exc:  # never: the file's names are unique
                self._refused([str(exc)])
                return
            self.monitor.set_alerts(fleet.alerts)
            log.warning(
                "fleet file %s reloaded: %d gateway(s); %s",
                self.path,
                len(found),
                change.describe(),
            )

    def _refused(self, problems: list[str]) -> None:
        """The file is not applied: a line saying so, then a line per problem."""
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        log.error("fleet file %s not reloaded (%s); the running fleet is kept", self.path, count)
        for problem in problems[:MAX_RELOAD_PROBLEM_LINES]:
            log.error("fleet file %s: %s", self.path, problem)
        if len(problems) > MAX_RELOAD_PROBLEM_LINES:
            more = len(problems) - MAX_RELOAD_PROBLEM_LINES
            log.error("fleet file %s: %d more problems", self.path, more)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


_BACKFILL_EPILOG = (
    "\b\nExample:\n"
    "  teg monitor backfill --gateway home --from 2024-01-01 --to 2024-03-31\n"
    "  teg monitor backfill --gateway home --from 2024-06-01 --json"
)
_DATE = click.DateTime(formats=["%Y-%m-%d"])


@monitor.command("backfill", epilog=_BACKFILL_EPILOG)
@click.option(
    "--from", "first", type=_DATE, required=True, metavar="YYYY-MM-DD", help="First day to fill."
)
@click.option(
    "--to",
    "last",
    type=_DATE,
    metavar="YYYY-MM-DD",
    help="Last day to fill [default: yesterday in the site's time zone].",
)
@click.option(
    "--gateway",
    required=True,
    metavar="NAME",
    help="The gateway's name in the monitor (as the dashboard and --gateway NAME=URL name it).",
)
@click.option(
    "--db", envvar="TEG_MONITOR_DB", show_envvar=True, help="SQLite path or postgresql:// URL."
)
@click.option(
    "--tz", metavar="ZONE", help="The site's time zone [default: the one the cloud reports]."
)
@click.option("--site-id", envvar="TEG_SITE_ID", show_envvar=True, type=int, help="Energy site id.")
@click.option(
    "--token-file",
    envvar="TEG_TOKEN_FILE",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cloud token file [default: as `teg cloud`].",
)
@click.option("--cloud-url", envvar="TEG_CLOUD_URL", show_envvar=True, help="Owner API base URL.")
@click.option("--auth-url", envvar="TEG_CLOUD_AUTH_URL", show_envvar=True, help="OAuth base URL.")
@click.option(
    "--cloud-cafile",
    envvar="TEG_CLOUD_CAFILE",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="CA file for the cloud (a test cloud such as `teg sim`).",
)
@json_option
@click.pass_context
def backfill(ctx: click.Context, /, **opts: Any) -> Any:
    """Fill days the monitor did not record from Tesla's cloud (calendar and backup history).

    Each day in the range without a local reading gets the cloud's energy for it, at the
    cloud's resolution (a day per counter, no power curve), marked as coming from the cloud;
    days the monitor recorded are never touched. Outages from the cloud's backup history
    join the outage list unless the monitor recorded them itself. Running it again changes
    nothing. Uses the same tokens and cloud settings as `teg cloud`.
    """
    from tegkit.cli import app, exit_codes
    from tegkit.cli.output import Output
    from tegkit.monitor import backfill as bf
    from tegkit.monitor.store import AsyncStore, open_store

    first: dt.date = opts["first"].date()
    last: dt.date | None = None if opts["last"] is None else opts["last"].date()
    try:  # everything the user typed is checked before the cloud is asked anything
        if last is not None:
            bf.check_range(first, last)
        if opts["tz"] is not None:
            bf.zone_named(opts["tz"])
    except InvalidInputError as exc:
        raise _bad_option(exc) from None
    cs = _cloud_settings(ctx, opts)
    ctx.meta[exit_codes.CONTEXT_KEY] = exit_codes.Context(service="cloud", where=cs.base_url)

    async def go() -> bf.BackfillReport:
        store = AsyncStore(open_store(opts["db"] or str(default_db())))
        try:
            async with cs.client() as client:
                site_id = cs.site_id if cs.site_id is not None else await _only_site(client)
                return await bf.backfill(
                    store,
                    client,
                    site_id=site_id,
                    gateway=opts["gateway"],
                    first=first,
                    last=last,
                    time_zone=opts["tz"],
                )
        finally:
            await store.aclose()

    try:
        report = app.run(go())
    except InvalidInputError as exc:
        if exc.field not in _OPTION_OF:
            raise  # the cloud's or the store's refusal: its own exit code
        raise _bad_option(exc) from None
    return Output(report.as_json(), _render_backfill)


monitor.add_command(export_command)  # `teg monitor export`: its own module
_OPTION_OF = {"from": "--from", "to": "--to", "time_zone": "--tz"}


def _bad_option(exc: InvalidInputError) -> click.BadParameter:
    """A refused --from/--to/--tz as click's usage error (exit code 2)."""
    message = f"{exc.value!s}: expected {exc.allowed}"
    return click.BadParameter(message, param_hint=_OPTION_OF.get(exc.field, exc.field))


def _render_backfill(console: Any, data: dict[str, Any]) -> None:
    def days(values: list[str]) -> str:
        return ", ".join(values) if len(values) <= 6 else f"{values[0]} .. {values[-1]}"

    console.print(
        f"Backfill of {data['gateway']} ({data['time_zone']}) from the cloud:", soft_wrap=True
    )
    for key, label in (
        ("filled", "filled from the cloud"),
        ("unchanged", "already filled, unchanged"),
        ("local", "recorded by the monitor, untouched"),
        ("missing", "not in the cloud either"),
    ):
        if data[key]:
            console.print(f"  {len(data[key]):>4} days {label}: {days(data[key])}", soft_wrap=True)
    added, skipped = data["outages_added"], data["outages_skipped"]
    console.print(f"  {added:>4} outages added ({skipped} already listed)")


def _cloud_settings(ctx: click.Context, opts: dict[str, Any]) -> Any:
    """The cloud settings `teg cloud` would use, with this command's options first."""
    from tegkit.cli import app
    from tegkit.cli.cloud import CloudSettings
    from tegkit.ownerapi import AUTH_URL, OWNER_API_URL

    settings = app.settings(ctx)
    stored = settings.profile.cloud
    for url, name in (
        (opts["cloud_url"], "--cloud-url / TEG_CLOUD_URL"),
        (opts["auth_url"], "--auth-url / TEG_CLOUD_AUTH_URL"),
        (stored.base_url, f"profiles.{settings.profile_name}.cloud.base_url"),
        (stored.auth_url, f"profiles.{settings.profile_name}.cloud.auth_url"),
    ):
        app.check_no_user_info(url, name)
    stored_file = Path(stored.token_file).expanduser() if stored.token_file else None
    return CloudSettings(
        app=settings,
        token_file=opts["token_file"]
        or stored_file
        or settings.config_dir / "cloud" / f"{settings.profile_name}.json",
        base_url=opts["cloud_url"] or stored.base_url or OWNER_API_URL,
        auth_url=opts["auth_url"] or stored.auth_url or AUTH_URL,
        cafile=opts["cloud_cafile"] or stored.cafile,
        site_id=opts["site_id"]
        if opts["site_id"] is not None
        else (None if stored.site_id is None else int(stored.site_id)),
        battery_id=stored.battery_id,
    )


async def _only_site(client: Any) -> int:
    sites = await client.energy_sites()
    if len(sites) == 1:
        return int(sites[0].energy_site_id)
    ids = ", ".join(str(s.energy_site_id) for s in sites) or "none"
    raise click.UsageError(f"choose an energy site with --site-id (the account has: {ids})")


@click.command("demo", epilog=_DEMO_EPILOG)
@click.option(
    "--scenario",
    type=click.Choice(BUILTIN_SCENARIOS),
    default=DEFAULT_SCENARIO,
    show_default=True,
)
@click.option(
    "--speed",
    type=_Positive("TIMES", 1e6),
    default=60.0,
    show_default=True,
    help="Simulated seconds per second.",
)
@click.option("--listen", default="127.0.0.1:8675", show_default=True)
@click.option("--db", help="Keep the demo's history here (default: a temporary file).")
@click.option(
    "--backfill-hours",
    type=_Positive("HOURS", 24 * 366.0, zero=True),
    default=24.0,
    show_default=True,
)
@click.option(
    "--control-token",
    envvar=CONTROL_TOKEN_ENV,
    show_envvar=True,
    callback=_check_token,
    help=f"Enables the controls behind a login with this token (prefer {CONTROL_TOKEN_ENV}).",
)
@event_loop_option
@logs.log_format_option
@click.pass_context
def demo(
    ctx: click.Context,
    scenario: str,
    speed: float,
    listen: str,
    db: str | None,
    backfill_hours: float,
    control_token: str | None,
    event_loop: str,
    log_format: logs.LogFormat,
) -> None:
    """Run the simulator and the monitor together: a populated dashboard in seconds."""
    from tegkit.monitor.demo import run_demo

    host_port = parse_listen(listen)

    def ready(mon: Monitor, sim: Simulator) -> None:
        # The simulator's own test password is printed on purpose: it is how to query it.
        click.echo(
            f"teg demo: scenario {scenario} at {speed:g}x; simulated gateway at {sim.url}\n\n"
            f"    dashboard: {mon.url}\n"
            f"    metrics:   {mon.url}metrics\n"
            f"    query the gateway: TEG_HOST={sim.url} TEG_PIN={sim.fingerprint_sha256} "
            f"TEG_PASSWORD={sim.password} teg status\n"
            "    controls:  the gateway is a 21.44 that refuses a customer's local change, so\n"
            "               the dashboard's changes go through the simulated cloud and are\n"
            "               read back locally once they arrive\n\n"
            "Ctrl-C stops.",
            err=True,
        )

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        click.echo(f"teg demo: recording {backfill_hours:g} simulated hours first…", err=True)
        with contextlib.suppress(asyncio.CancelledError):
            await run_demo(
                scenario,
                speed,
                host_port,
                db,
                backfill_hours,
                control_token,
                on_ready=ready,
            )

    with logs.to_stderr(log_format, verbose=_verbose(ctx)):
        run(main(), event_loop)


__all__ = ["demo", "monitor", "parse_listen", "resolve_targets"]
