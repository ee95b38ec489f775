"""`teg monitor` and `teg demo`: click commands that run the monitor (and the simulator).

Each `--gateway` is a profile name from `teg setup`, an https:// URL, or NAME=URL to name
it in the dashboard and the metrics' `gateway` label; a URL takes its
password, certificate pin or CA file from the options here, from TEG_PASSWORD / TEG_PIN /
TEG_CAFILE, or from the `teg` group's own options. Without `--gateway` the group's
profile (or TEG_HOST) is watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import platformdirs

from tegkit.monitor.auth import MIN_TOKEN_CHARS
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.readings import RetentionPolicy
from tegkit.monitor.service import DEFAULT_LISTEN, GatewayTarget, Monitor

if TYPE_CHECKING:
    from tegkit.sim import Simulator

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
        host = settings.host if settings is not None else None
        if not host:
            raise click.UsageError(
                "no gateway: pass --gateway URL_OR_PROFILE (repeatable) or set TEG_HOST"
            )
        name = settings.profile_name if settings is not None else "gateway"
        gateways_named: list[tuple[str, str | None, Any]] = [(name, host, None)]
    else:
        gateways_named = []
        config = None
        for value in gateways:
            label, eq, rest = value.partition("=")
            if eq and "://" not in label and label:  # NAME=URL names the gateway
                gateways_named.append((label, rest, None))
                continue
            if _is_url(value):
                gateways_named.append((_name_for(value), value, None))
                continue
            if config is None:
                from tegkit.cli import config as configfile

                config = configfile.load()
            if value not in config.profiles:
                known = ", ".join(sorted(config.profiles)) or "none yet"
                raise click.BadParameter(
                    f"{value!r} is neither a URL nor a profile (profiles: {known})",
                    param_hint="--gateway",
                )
            gateways_named.append((value, None, config.profiles[value]))
    targets = []
    for name, url, profile in gateways_named:
        if profile is not None:
            if not profile.host:
                raise click.BadParameter(f"profile {name!r} has no host", param_hint="--gateway")
            targets.append(
                GatewayTarget(
                    name=name,
                    url=profile.host,
                    password=opts.get("password") or profile.password,
                    email=profile.email or opts.get("email") or "",
                    pin=profile.pin,
                    cafile=profile.cafile,
                    sni=profile.sni,
                    insecure=bool(profile.insecure),
                    timeout_s=profile.timeout_s or 10.0,
                )
            )
        else:
            assert url is not None
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
    seen: dict[str, int] = {}
    unique = []
    for t in targets:  # two URLs on one host: home, home-2
        n = seen.get(t.name, 0) + 1
        seen[t.name] = n
        unique.append(t if n == 1 else GatewayTarget(**{**_fields(t), "name": f"{t.name}-{n}"}))
    return unique


def _fields(t: GatewayTarget) -> dict[str, Any]:
    return {f: getattr(t, f) for f in GatewayTarget.__slots__}


def _name_for(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host.replace("[", "").replace("]", "")


def _tz(value: str | None) -> dt.tzinfo | None:
    if value is None:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{value!r}: not a time zone name", param_hint="--tz") from None


async def _serve_until_signal(monitor: Monitor, announce: str) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, monitor.stop)
    async with monitor:
        click.echo(announce.format(url=monitor.url), err=True)
        await monitor.wait()


_MONITOR_EPILOG = (
    "\b\nExample:\n"
    "  teg monitor --gateway home                       # a profile from `teg setup`\n"
    "  TEG_PASSWORD=... teg monitor --gateway garage=https://192.168.1.60 --pin <sha256>\n"
    "  export TEG_MONITOR_CONTROL_TOKEN=$(openssl rand -hex 16)   # not in the process list\n"
    "  teg monitor --gateway home --tariff tou.toml      # controls behind a login"
)


def _check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and len(value) < MIN_TOKEN_CHARS:
        raise click.BadParameter(f"use at least {MIN_TOKEN_CHARS} characters", ctx, param)
    return value or None


_DEMO_EPILOG = "\b\nExample:\n  teg demo --scenario evening-outage --speed 120"


@click.command("monitor", epilog=_MONITOR_EPILOG)
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
@click.option("--tariff", type=click.Path(exists=True, dir_okay=False), help="Tariff TOML file.")
@click.option("--tz", help="Time zone of the site's days (default: this machine's).")
@click.option(
    "--control-token",
    envvar=CONTROL_TOKEN_ENV,
    show_envvar=True,
    callback=_check_token,
    help="Enables reserve and mode controls on the dashboard, behind a login with this token "
    f"(at least {MIN_TOKEN_CHARS} characters). Prefer {CONTROL_TOKEN_ENV}: an option's value "
    "shows in the process list.",
)
@click.option("--fast-interval", default=5.0, show_default=True, help="Seconds between readings.")
@click.option("--slow-interval", default=60.0, show_default=True, help="Seconds between settings.")
@click.option(
    "--budget", default=90, show_default=True, help="Most gateway requests a minute, per gateway."
)
@click.option(
    "--keep-raw-days",
    type=click.FloatRange(min=0, min_open=True),
    default=400.0,
    show_default=True,
    help="Days of full-resolution readings to keep.",
)
@click.option(
    "--keep-minute-days",
    type=click.FloatRange(min=0, min_open=True),
    default=800.0,
    show_default=True,
    help="Days of minute rollups to keep (quarter-hour, hour and day rollups stay).",
)
@click.pass_context
def monitor(ctx: click.Context, /, gateways: tuple[str, ...], **opts: Any) -> None:
    """Record one or more gateways, serve the dashboard, the JSON API and /metrics."""
    targets = resolve_targets(gateways, opts, ctx)
    tariff = None
    if opts["tariff"]:
        from tegkit.tariff import load_tariff

        tariff = load_tariff(Path(opts["tariff"]))
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
    db = opts["db"] or str(default_db())
    mon = Monitor(
        targets,
        db=db,
        listen=parse_listen(opts["listen"]),
        tariff=tariff,
        tz=_tz(opts["tz"]),
        control_token=opts["control_token"],
        config=config,
        retention=RetentionPolicy(opts["keep_raw_days"], opts["keep_minute_days"]),
    )
    names = ", ".join(t.name for t in targets)
    asyncio.run(_serve_until_signal(mon, f"teg monitor: watching {names}; dashboard {{url}}"))


@click.command("demo", epilog=_DEMO_EPILOG)
@click.option(
    "--scenario",
    type=click.Choice(["sunny-day", "evening-outage", "cloudy-day", "tou-peak"]),
    default="sunny-day",
    show_default=True,
)
@click.option("--speed", default=60.0, show_default=True, help="Simulated seconds per second.")
@click.option("--listen", default="127.0.0.1:8675", show_default=True)
@click.option("--db", help="Keep the demo's history here (default: a temporary file).")
@click.option("--backfill-hours", default=24.0, show_default=True)
@click.option(
    "--control-token",
    envvar=CONTROL_TOKEN_ENV,
    show_envvar=True,
    callback=_check_token,
    help=f"Enables the controls behind a login with this token (prefer {CONTROL_TOKEN_ENV}).",
)
def demo(
    scenario: str,
    speed: float,
    listen: str,
    db: str | None,
    backfill_hours: float,
    control_token: str | None,
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
            f"TEG_PASSWORD={sim.password} teg status\n\n"
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

    asyncio.run(main())


__all__ = ["demo", "monitor", "parse_listen", "resolve_targets"]
