"""`teg sim`: run a simulated gateway until SIGINT/SIGTERM, printing how to reach it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from tegkit import logs
from tegkit._private_file import write_private
from tegkit.errors import InvalidInputError
from tegkit.sim._runner import MAX_SPEED, Simulator
from tegkit.sim.certs import certificate_names
from tegkit.sim.firmware import DEFAULT_AUTO_INSTALL_WITHIN_H, MAX_AUTO_INSTALL_WITHIN_H
from tegkit.sim.fleet_cli import check_single_gateway_options, fleet_options, run_fleet
from tegkit.sim.profiles import PROFILES
from tegkit.sim.replay import ReplayDump, load_dump
from tegkit.sim.scenario import BUILTIN_SCENARIOS, parse_event_time

_RELEASE_OPTION = "--release-firmware"


def _load_replay(folder: Path | None) -> ReplayDump | None:
    try:
        return None if folder is None else load_dump(folder)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param_hint="'--replay'") from exc


def _finite_speed(value: float | None) -> float | None:
    # click's FloatRange lets nan through (every comparison with nan is false)
    if value is not None and value != value:
        raise click.BadParameter(f"nan: expected a number from 0 to {MAX_SPEED:g}")
    return value


def _write_cloud_tokens(sim: Simulator) -> Path:
    """The simulated Owner API's tokens in the file format `teg cloud token import` reads."""
    tokens = sim.cloud_tokens
    path = sim.state_dir / "cloud-tokens.json"
    body = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.access_expires_at_s,
    }
    write_private(path, json.dumps(body).encode())
    return path


def _release(sim: Simulator, spec: str, within_h: float) -> str:
    """Schedule `VERSION[@WHEN]` on `sim` (WHEN as a scenario event's `at`; none: now) and
    say what happens; click.BadParameter naming the option otherwise."""
    version, _, when = spec.partition("@")
    try:
        if version not in PROFILES:
            raise InvalidInputError("version", f"one of {list(PROFILES)}", version)
        at = parse_event_time(when, "WHEN", sim.now, sim.gateway.tz) if when else sim.now
        sim.release_firmware(version, within_h, at=at)
    except (InvalidInputError, ValueError) as exc:
        raise click.BadParameter(
            f"{exc}; expected VERSION[@WHEN], WHEN as '+2h', '18:30' or an ISO time",
            param_hint=_RELEASE_OPTION,
        ) from exc
    auto = sim.gateway.fw_update.auto_at
    if at > sim.now:
        itself = f"within {within_h:g} h of it" if within_h > 0 else "never by itself"
        return f"{version} released at {at.isoformat()}; the gateway installs it {itself}"
    if auto is None:
        return f"{version} released now; the gateway never installs it by itself"
    local = auto.astimezone(sim.gateway.tz).isoformat()
    return f"{version} released now; the gateway installs it by itself at {local}"


#: the --json start line's format; a harness checks it and reads the keys of its version
START_LINE_FORMAT = "tegkit-sim-start/1"


def start_line(sim: Simulator, cloud_tokens_file: Path, released: str | None) -> dict[str, object]:
    """What `--json` prints once `sim` listens: everything a harness needs to reach it."""
    http_url = f"http://{sim.host}:{sim.http_port}" if sim.http_port is not None else None
    return {
        "format": START_LINE_FORMAT,
        "pid": os.getpid(),
        "host": sim.host,
        "local_url": sim.url,
        "cloud_url": sim.cloud_url,
        "control_url": f"{sim.url}/sim",
        "openapi_url": f"{sim.url}/sim/openapi.json",
        "http_url": http_url,
        "local_port": sim.port,
        "cloud_port": sim.cloud_port,
        "http_port": sim.http_port,
        "fingerprint_sha256": sim.fingerprint_sha256,
        "cafile": str(sim.cafile),
        # without --cert-loopback-names only a real gateway's names: send one as SNI
        "certificate_names": sorted(certificate_names(sim.cafile)),
        "email": sim.email,
        "password": sim.password,
        "control_token": sim.control_token,
        "cloud_tokens_file": str(cloud_tokens_file),
        "firmware": sim.gateway.profile.name,
        "speed": sim.speed,
        "seed": sim.seed,
        "state_dir": str(sim.state_dir),
        "release": released,
        # {"folder", "strict", "firmware_version", "endpoints"} with --replay, else null
        "replay": sim.replay.describe() if sim.replay is not None else None,
    }


def _echo_how_to_reach(sim: Simulator, released: str | None) -> None:
    click.echo(f"local API:   {sim.url}")
    click.echo(f"cloud API:   {sim.cloud_url}")
    if sim.http_port is not None:
        click.echo(f"http:        http://{sim.host}:{sim.http_port} (301 to https)")
    click.echo(f"fingerprint: sha256:{sim.fingerprint_sha256}")
    click.echo(f"certificate: {sim.cafile}")
    click.echo(f"login:       email={sim.email} password={sim.password}")
    click.echo(f"control:     {sim.url}/sim (Authorization: Bearer {sim.control_token})")
    click.echo(f"cloud tokens: {_write_cloud_tokens(sim)} (teg cloud token import FILE)")
    click.echo(f"firmware:    {sim.gateway.profile.name}  speed: {sim.speed:g}x")
    if released:
        click.echo(f"release:     {released}")
    if sim.replay is not None:
        dump, mode = sim.replay.dump, "strict" if sim.replay.strict else "lenient"
        played = f"firmware {dump.firmware_version} played as {sim.gateway.profile.name}"
        click.echo(f"replay:      {dump.folder} ({mode}; {played})")


async def _serve(
    release: str | None = None,
    auto_install_within_h: float = DEFAULT_AUTO_INSTALL_WITHIN_H,
    as_json: bool = False,
    **options: object,
) -> None:
    try:
        sim = Simulator(**options)  # type: ignore[arg-type]
    except (InvalidInputError, OSError) as exc:  # a scenario file that is not one
        hint = "--scenario" if options.get("scenario") else None
        raise click.BadParameter(str(exc), param_hint=hint) from None
    try:
        released = _release(sim, release, auto_install_within_h) if release else None
    except click.BadParameter:
        await sim.close()
        raise
    await sim.start()
    try:
        # Handlers first: whoever reads the lines below may stop us at once.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        # A simulator's own test password is printed on purpose: it is how people log in.
        if as_json:
            # One line, flushed: a harness reads it, then nothing more comes on stdout.
            line = start_line(sim, _write_cloud_tokens(sim), released)
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        else:
            _echo_how_to_reach(sim, released)
        await stop.wait()
    finally:
        await sim.close()
    click.echo("simulator stopped", err=as_json)


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, help="HTTPS port (0: a free port).")
@click.option(
    "--cloud-port",
    type=int,
    default=0,
    show_default=True,
    help="Owner API HTTPS port (0: a free port).",
)
@click.option("--http-port", type=int, default=None, help="Plain-HTTP port answering 301.")
@click.option("--password", default=None, help="Customer password (default: derived).")
@click.option("--email", default="owner@example.com", show_default=True)
@click.option(
    "--firmware",
    default=None,
    show_default="21.44, or the scenario's",
    type=click.Choice(["1.40", "20.49", "21.39", "21.44", "23.44"]),
)
@click.option("--powerwalls", default=2, show_default=True, type=click.IntRange(1, 10))
@click.option(
    "--speed",
    default=None,
    show_default="1, or the scenario's",
    type=click.FloatRange(min=0, max=MAX_SPEED),
    callback=lambda _ctx, _param, value: _finite_speed(value),
    help="Simulated seconds per real second (0: the clock stands still).",
)
@click.option("--seed", default=None, show_default="0, or the scenario's", type=int)
@click.option(
    "--scenario",
    multiple=True,
    help=f"A built-in scenario ({', '.join(BUILTIN_SCENARIOS)}) or a .toml path; with "
    "--gateways, NAME[@TARGET] (TARGET as --fault's), repeatable.",
)
@click.option(
    "--state-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Keeps the certificate between runs (default: a temporary directory).",
)
@click.option(
    "--cert-loopback-names",
    is_flag=True,
    help="Also name localhost, 127.0.0.1 and ::1 in the certificate (a real gateway's names "
    "only teg, powerwall and powerpack: with --cafile, send one with --sni).",
)
@click.option(
    "--allow-customer-operation",
    is_flag=True,
    help="Let the customer role POST /api/operation (installer-only by default).",
)
@click.option(
    _RELEASE_OPTION,
    "release",
    default=None,
    metavar="VERSION[@WHEN]",
    help="Release a firmware (e.g. 23.44, 23.44@+2h, 23.44@14:30): the update check finds it "
    "and, unless an update is started first, the gateway installs it by itself at a random "
    "(seeded) time within --auto-install-within-h hours.",
)
@click.option(
    "--auto-install-within-h",
    default=DEFAULT_AUTO_INSTALL_WITHIN_H,
    show_default=True,
    type=click.FloatRange(0, MAX_AUTO_INSTALL_WITHIN_H),
    help="With --release-firmware: hours within which the gateway installs it (0: never).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object on stdout once listening (URLs, ports, fingerprint, "
    "certificate file, login, control token: see docs/simulator.md), nothing else.",
)
@click.option(
    "--replay",
    default=None,
    metavar="DUMP_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    callback=lambda _ctx, _param, value: _load_replay(value),
    help="Serve what `teg dump` captured from a real gateway: its firmware, site and answers "
    "(the live endpoints move with physics from the captured values).",
)
@click.option(
    "--replay-strict",
    is_flag=True,
    help="With --replay: answer exactly the captured bodies, 404 for what the dump lacks.",
)
@fleet_options
@logs.log_format_option
def sim(
    host: str,
    port: int,
    cloud_port: int,
    http_port: int | None,
    password: str | None,
    email: str,
    firmware: str | None,
    powerwalls: int,
    speed: float | None,
    seed: int | None,
    scenario: tuple[str, ...],
    state_dir: Path | None,
    cert_loopback_names: bool,
    allow_customer_operation: bool,
    release: str | None,
    auto_install_within_h: float,
    as_json: bool,
    replay: ReplayDump | None,
    replay_strict: bool,
    log_format: logs.LogFormat,
    **fleet: Any,
) -> None:
    """Run a simulated Tesla Energy Gateway (local API, Owner API, control API).

    Prints the local and cloud URLs, the certificate fingerprint and the login, then serves
    until interrupted. A scenario sets the site, the clock and timed events; the firmware,
    speed and seed options override it.

    \b
    Example:
      teg sim --port 8443 --scenario evening-outage --speed 60
      teg sim --scenario tou-peak --release-firmware 23.44@+1h --auto-install-within-h 24
      teg sim --replay ./teg-dump-20241201-120000   # a gateway like the dumped one
      TEG_HOST=https://127.0.0.1:8443 TEG_PIN=<fingerprint> TEG_PASSWORD=<password> teg status
      teg sim --gateways 1000 --port 9000 --fault latency@1% --scenario evening-outage@5%
    """
    ctx = click.get_current_context()
    if fleet["gateways"] is not None:  # a fleet (sim/fleet_cli.py)
        with logs.to_stderr(log_format, verbose=_verbose(ctx)):
            run_fleet(ctx, ctx.params)
        return
    check_single_gateway_options(ctx)
    if len(scenario) > 1:
        raise click.UsageError("--scenario: one scenario for one gateway (several: --gateways)")
    if replay_strict and replay is None:
        raise click.UsageError("--replay-strict: only with --replay DUMP_DIR")
    if replay is not None and scenario:
        raise click.UsageError("--replay, --scenario: choose one (a replay's site is the dump's)")
    with logs.to_stderr(log_format, verbose=_verbose(ctx)):
        asyncio.run(
            _serve(
                host=host,
                port=port,
                cloud_port=cloud_port,
                http_port=http_port,
                password=password,
                email=email,
                firmware=firmware,
                powerwalls=powerwalls,
                speed=speed,
                seed=seed,
                scenario=scenario[0] if scenario else None,
                state_dir=state_dir,
                allow_customer_operation=allow_customer_operation,
                cert_loopback_names=cert_loopback_names,
                release=release,
                auto_install_within_h=auto_install_within_h,
                as_json=as_json,
                replay=replay,
                replay_strict=replay_strict,
            )
        )


def _verbose(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return root is not ctx and bool(root.params.get("verbose"))


__all__ = ["sim"]
