"""`teg sim --gateways N`: the options of `teg sim` that make a simulated fleet, and its run.

sim/cli.py declares the options and hands over here when --gateways is given; this module
checks which options a fleet takes, builds the SimulatedFleet, says how to reach it and
serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from tegkit.errors import InvalidInputError
from tegkit.sim.fleet import MAX_GATEWAYS, SimulatedFleet

# Options of one simulated gateway a fleet has no use for: why, for the error.
_NOT_FOR_A_FLEET = {
    "password": "each gateway of a fleet has its own password (see the fleet file)",
    "http_port": "a fleet has no plain-HTTP ports",
    "cloud_port": "a fleet has no Owner API port",
    "release": "release a firmware through each gateway's control API (/sim/firmware_release)",
    "replay": "a replay is one gateway's",
    "replay_strict": "a replay is one gateway's",
}
# Options only a fleet takes.
_FLEET_ONLY = ("addresses", "fleet_file", "faults")

gateways_option = click.option(
    "--gateways",
    type=click.IntRange(1, MAX_GATEWAYS),
    default=None,
    help="Run N simulated gateways in this process (a fleet) and write their fleet file.",
)
addresses_option = click.option(
    "--addresses",
    is_flag=True,
    help="With --gateways: each gateway on its own loopback address 127.0.x.y, all on one "
    "port (443 when run as root, else --port), instead of consecutive ports.",
)
fleet_file_option = click.option(
    "--fleet-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --gateways: where to write the fleet file (default: fleet.toml in the state "
    "directory); the passwords go to 0600 files in NAME.secrets/ beside it.",
)
fault_option = click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:OPT=VALUE,...][@TARGET]",
    help="With --gateways: arm a fault (latency, drop, rate_limit, status, expire_sessions, "
    "rotate_cert, reboot) at TARGET: a name (gw07), a number, a range (3-9), a share (10%, "
    "drawn by --seed) or all (the default). E.g. latency:latency_ms=3000@10%. Repeatable.",
)


def fleet_options(command: Any) -> Any:
    """The fleet's options, as one decorator for `teg sim`."""
    for option in (fault_option, fleet_file_option, addresses_option, gateways_option):
        command = option(command)
    return command


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source is not click.core.ParameterSource.DEFAULT


def check_single_gateway_options(ctx: click.Context) -> None:
    """Without --gateways: refuse the options only a fleet takes, naming them."""
    for name in _FLEET_ONLY:
        if _given(ctx, name):
            option = "--fault" if name == "faults" else "--" + name.replace("_", "-")
            raise click.UsageError(f"{option}: only with --gateways N")


def run_fleet(ctx: click.Context, params: dict[str, Any]) -> None:
    """Build the fleet the command line asks for and serve it until SIGINT/SIGTERM."""
    for name, why in _NOT_FOR_A_FLEET.items():
        if _given(ctx, name):
            raise click.UsageError(f"--{name.replace('_', '-')}: not with --gateways ({why})")
    port = params["port"]
    if params["addresses"] and not _given(ctx, "port") and os.geteuid() == 0:
        port = 443  # as a real gateway, each on its own address
    try:
        fleet = SimulatedFleet(
            params["gateways"],
            host=params["host"],
            port=port,
            addresses=params["addresses"],
            seed=params["seed"] or 0,
            firmware=params["firmware"],
            powerwalls=params["powerwalls"] if _given(ctx, "powerwalls") else None,
            speed=params["speed"],
            email=params["email"],
            scenarios=params["scenario"],
            faults=params["faults"],
            state_dir=params["state_dir"],
            fleet_file=params["fleet_file"],
            cert_loopback_names=params["cert_loopback_names"],
            allow_customer_operation=params["allow_customer_operation"],
        )
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from exc
    asyncio.run(_serve(fleet, as_json=params["as_json"]))


# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size): a client
# per gateway makes that a quarter of a gigabyte for 1,000 gateways. The gateways' answers
# are a few KiB, so this process (a fleet's own) reads in 32 KiB pieces.
_TLS_READ_BUFFER_BYTES = 32 * 1024


def _smaller_tls_buffers() -> None:
    protocol = asyncio.sslproto.SSLProtocol
    if getattr(protocol, "max_size", 0) > _TLS_READ_BUFFER_BYTES:
        protocol.max_size = _TLS_READ_BUFFER_BYTES


async def _serve(fleet: SimulatedFleet, *, as_json: bool) -> None:
    _smaller_tls_buffers()
    try:
        await fleet.start()
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # a port in use, an address that cannot be bound
        raise click.ClickException(f"cannot listen: {exc}") from exc
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if as_json:
            sys.stdout.write(json.dumps(fleet.start_line()) + "\n")
            sys.stdout.flush()
        else:
            _echo_how_to_reach(fleet)
        await stop.wait()
    finally:
        await fleet.close()
    click.echo("fleet stopped", err=as_json)


def _echo_how_to_reach(fleet: SimulatedFleet) -> None:
    first = fleet.members[0]
    mix = Counter(m.gateway.profile.name for m in fleet.members)
    firmware = ", ".join(f"{name} x{n}" for name, n in sorted(mix.items()))
    click.echo(f"fleet:       {len(fleet.members)} gateways on {fleet.describe_ports()}")
    click.echo(f"fleet file:  {fleet.fleet_file}")
    click.echo(f"passwords:   {fleet.secrets_dir}/NAME (one 0600 file per gateway)")
    click.echo(
        f"control:     {first.url}/sim and each gateway's own /sim; /sim/fleet lists them all "
        f"(Authorization: Bearer {fleet.control_token})"
    )
    speed = "1x (a scenario's own)" if fleet.speed is None else f"{fleet.speed:g}x"
    click.echo(f"firmware:    {firmware}  speed: {speed}  seed: {fleet.seed}")
    for line in fleet.targets_text():
        click.echo(f"targets:     {line}")
    click.echo(f"started:     in {fleet.start_s:.2f} s")


__all__ = ["check_single_gateway_options", "fleet_options", "run_fleet"]
