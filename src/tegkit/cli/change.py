"""`teg set reserve|mode|site-name`: change a setting on the gateway, then show what it reports.

Values are checked before anything is sent (exit code 8 when refused). After the change the
gateway is read again, so what is printed is what the gateway now says, not what we asked.
`--dry-run` prints the requests instead of sending them.

Mode and reserve go the way `tegkit.route` picks (`--via auto|local|cloud`): locally when
the gateway takes a customer's change (firmware before 20.49), else through Tesla's cloud
with the profile's `teg cloud` settings, then read back locally until the gateway shows it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from tegkit import percent
from tegkit.cli import app, exit_codes
from tegkit.cli.output import Output, json_option
from tegkit.cloud import CloudClient, PlannedCommand
from tegkit.errors import CloudTokenMissingError, GatewayError, InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES
from tegkit.ownerapi import AUTH_URL, OWNER_API_URL, check_site_name
from tegkit.route import (
    DEFAULT_READBACK_WAIT_S,
    VIAS,
    ChangeNotSeenError,
    ChangeOutcome,
    CloudTarget,
    LocalSide,
    OperationChange,
    Via,
    change_operation,
)

if TYPE_CHECKING:
    from tegkit.cli.cloud import CloudSettings

F = TypeVar("F", bound=Callable[..., Any])

# the values themselves: click would offer an enum's member names
MODE_CHOICE = click.Choice([m.value for m in CUSTOMER_MODES])
SCALE_HELP = (
    "Scale of N: 'app' (default) is the percent Tesla's app shows; 'raw' is the gateway's own "
    "(raw = 5 + 0.95 x app)."
)


def check_reserve(value: float, scale: percent.Scale) -> float:
    """A reserve of 0..100 on `scale`, or InvalidInputError before anything is sent."""
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidInputError(
            "backup_reserve_percent", f"a number from 0 to 100 on the {scale} scale", value
        )
    return value


def wire_number(value: float) -> float | int:
    value = round(value, 2)
    return int(value) if value.is_integer() else value


def reserve_fields(raw: float | None) -> dict[str, float | None]:
    """A reserve on both scales, named by scale."""
    return {
        "backup_reserve_raw_percent": raw,
        "backup_reserve_app_percent": None if raw is None else round(percent.raw_to_app(raw), 2),
    }


def _render_dry(console: Console, data: dict[str, Any]) -> None:
    console.print("Dry run: nothing was sent. These requests would be:")
    for request in data["requests"]:
        body = request.get("body")
        shown = "" if body is None else " " + json.dumps(body)  # as it goes on the wire
        console.print(f"  {request['method']} {request['path']}{shown}", markup=False)
    local = [r for r in data["requests"] if not r["path"].startswith("/api/1/")]
    if any("backup_reserve_percent" in (r.get("body") or {}) for r in local):
        console.print("(the gateway takes backup_reserve_percent on its raw scale)")
    elif len(local) < len(data["requests"]):
        console.print("(through Tesla's cloud, on the app scale; then read back locally)")


def _render_operation(console: Console, data: dict[str, Any]) -> None:
    if "route" in data:
        console.print(f"Route: {data['route']} ({data['route_reason']}); {data['note']}.")
    app_pct = data["backup_reserve_app_percent"]
    raw_pct = data["backup_reserve_raw_percent"]
    reserve = "—" if app_pct is None else f"{app_pct:zg}% on the app scale ({raw_pct:zg}% raw)"
    console.print(f"The gateway now reports: mode {data['mode'] or '—'}, backup reserve {reserve}.")


def _dry(requests: list[dict[str, Any]]) -> Output:
    return Output({"dry_run": True, "requests": requests}, _render_dry)


async def _planned(
    settings: app.Settings, via: Via = "local", **change: Any
) -> list[dict[str, Any]]:
    """What the change would send: locally, set_operation's requests (it reads the value
    that is not changed); with --via cloud, the cloud's commands (nothing is read)."""
    if via == "cloud":
        return _cloud_planned(settings, **change)
    async with settings.gateway() as gw:
        planned = await gw.operation_requests(**change)
    return [{"method": r.method, "path": r.path, "body": r.body} for r in planned]


def _cloud_planned(settings: app.Settings, **change: Any) -> list[dict[str, Any]]:
    wanted = OperationChange.of(
        change.get("mode"),
        change.get("backup_reserve_percent"),
        change.get("scale"),
        change.get("max_pv_export_power_kw"),
    )
    if wanted.max_pv_export_power_kw is not None:
        raise InvalidInputError(
            "max_pv_export_power_kw", "set only through the local API (--via local)"
        )
    site = profile_cloud(settings).site_id
    planned: list[PlannedCommand] = []
    if wanted.mode is not None:
        planned.append(CloudClient.plan_operation_mode(wanted.mode, site_id=site))
    if wanted.backup_reserve_app_percent is not None:
        reserve = wanted.backup_reserve_app_percent
        planned.append(CloudClient.plan_backup_reserve(reserve, site_id=site))
    return [p._asdict() for p in planned]


def via_options(func: F) -> F:
    """--via and --wait-s on each command that changes mode or reserve."""
    for option in (
        click.option(
            "--wait-s",
            type=click.FloatRange(0, 3600),
            default=DEFAULT_READBACK_WAIT_S,
            show_default=True,
            metavar="S",
            help="After a change through the cloud, read the gateway back for up to S seconds.",
        ),
        click.option(
            "--via",
            type=click.Choice(VIAS),
            default="auto",
            show_default=True,
            envvar="TEG_VIA",
            show_envvar=True,
            help="Route of the change: auto (local when the gateway's firmware and login "
            "allow it, else Tesla's cloud), local, or cloud.",
        ),
    ):
        func = option(func)
    return func


def _env(name: str) -> str | None:
    return os.environ.get(name) or None  # TEG_X= in a script means "not given"


def profile_cloud(settings: app.Settings) -> CloudSettings:
    """The `teg cloud` settings of this profile: its [cloud] table under the TEG_* variables
    the `teg cloud` options read (TEG_TOKEN_FILE, TEG_CLOUD_URL, TEG_SITE_ID, ...)."""
    from tegkit.cli.cloud import CloudSettings  # `teg cloud` imports this module

    stored = settings.profile.cloud
    token_file = _env("TEG_TOKEN_FILE") or (
        str(Path(stored.token_file).expanduser()) if stored.token_file else None
    )
    site_id = _env("TEG_SITE_ID") or stored.site_id
    for url, name in (
        (_env("TEG_CLOUD_URL"), "TEG_CLOUD_URL"),
        (stored.base_url, f"profiles.{settings.profile_name}.cloud.base_url"),
    ):
        app.check_no_user_info(url, name)
    try:
        site = None if site_id is None else int(site_id)
    except ValueError:
        raise click.BadParameter(
            "a whole number", param_hint="TEG_SITE_ID / cloud.site_id"
        ) from None
    return CloudSettings(
        app=settings,
        token_file=(
            Path(token_file)
            if token_file
            else settings.config_dir / "cloud" / f"{settings.profile_name}.json"
        ),
        base_url=_env("TEG_CLOUD_URL") or stored.base_url or OWNER_API_URL,
        auth_url=_env("TEG_CLOUD_AUTH_URL") or stored.auth_url or AUTH_URL,
        cafile=_env("TEG_CLOUD_CAFILE") or stored.cafile,
        site_id=site,
        battery_id=_env("TEG_BATTERY_ID") or stored.battery_id,
    )


async def _operation_now(
    settings: app.Settings, via: Via, wait_s: float, **change: Any
) -> dict[str, Any]:
    """Send the change by its route, read it back locally: the gateway's values and how."""
    outcome = await routed_change(settings, via, wait_s, **change)
    now = outcome.operation
    return {
        "mode": None if now is None else now.mode,
        **reserve_fields(None if now is None else now.backup_reserve_raw_percent),
        **outcome.fields(),
    }


async def routed_change(
    settings: app.Settings, via: Via, wait_s: float, **change: Any
) -> ChangeOutcome:
    """The change through `tegkit.route`, with this profile's gateway and cloud settings."""
    wanted = OperationChange.of(
        mode=change.get("mode"),
        backup_reserve_percent=change.get("backup_reserve_percent"),
        scale=change.get("scale"),
        max_pv_export_power_kw=change.get("max_pv_export_power_kw"),
    )
    cs = profile_cloud(settings)
    # auto goes to the cloud only when tokens are kept; --via cloud without them is told how
    use_cloud = via == "cloud" or (via == "auto" and cs.token_file.is_file())
    try:
        cloud = cs.client() if use_cloud else None
    except CloudTokenMissingError:
        _cloud_failed(cs)  # the message says how to get tokens for this profile
        raise
    try:
        async with settings.gateway() as gw:

            async def firmware_version() -> str | None:
                try:
                    return (await gw.status()).version
                except GatewayError:
                    return None  # unknown: the route tries locally first

            async def set_locally(_: OperationChange) -> object:
                return await gw.set_operation(**change)

            local = LocalSide(firmware_version, set_locally, gw.operation)
            target = None
            if cloud is not None:
                target = _CliCloud(cloud, cs.site_id, cs.battery_id)
                target.settings = cs
            return await change_operation(local, wanted, via=via, cloud=target, wait_s=wait_s)
    finally:
        if cloud is not None:
            await cloud.close()


def _cloud_failed(cs: CloudSettings) -> None:
    """A failure from here on is the cloud's: its message and advice are the cloud's."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        context = exit_codes.Context(service="cloud", where=cs.base_url)
        ctx.find_root().meta[exit_codes.CONTEXT_KEY] = context


class _CliCloud(CloudTarget):
    """The route's cloud side; its failures are reported as the cloud's, not the gateway's."""

    settings: CloudSettings

    async def send(self, change: OperationChange) -> None:
        try:
            await super().send(change)
        except InvalidInputError:
            raise  # checked before anything was sent: the message names the field
        except GatewayError:
            _cloud_failed(self.settings)
            raise


def _routed_output(data: dict[str, Any], render: Any) -> Output:
    """The read-back; a change the gateway has not shown yet is said so (exit code 1)."""
    error = None
    if data.get("read_back") == "not_seen":
        error = ChangeNotSeenError(data["note"])
    return Output(data, render, error)


@click.group(name="set")
def set_() -> None:
    """Change the backup reserve, the operation mode or the site name.

    \b
    Example:
      teg set reserve 20              # app scale, as in Tesla's app
      teg set mode self_consumption
      teg set operation --mode backup --reserve 30 --max-pv-export-kw 5
      teg set site-name "Home" --dry-run
    """


@set_.command()
@click.argument("n", type=float, metavar="N")
@click.option(
    "--scale",
    type=click.Choice(percent.SCALES),
    default="app",
    show_default=True,
    help=SCALE_HELP,
)
@click.option("--dry-run", is_flag=True, help="Show the requests without sending them.")
@via_options
@json_option
@click.pass_context
def reserve(
    ctx: click.Context, n: float, scale: percent.Scale, dry_run: bool, via: Via, wait_s: float
) -> Output:
    """Set the backup reserve to N percent (app scale unless --scale raw).

    The app scale is the one Tesla's app shows (0..100); the gateway stores the raw
    scale, raw = 5 + 0.95 x app, so 20 (app) is sent as 24 (raw). Locally the change is
    staged with POST /api/operation and applied with GET /api/config/completed; through
    the cloud (firmware 20.49 and later) it is sent in app percent and read back locally.

    \b
    Example:
      teg set reserve 20
      teg set reserve 20 --via cloud
      teg set reserve 24 --scale raw --dry-run
    """
    check_reserve(n, scale)
    settings = app.settings(ctx)
    if dry_run:
        return _dry(app.run(_planned(settings, via, backup_reserve_percent=n, scale=scale)))
    data = app.run(_operation_now(settings, via, wait_s, backup_reserve_percent=n, scale=scale))
    return _routed_output(data, _render_operation)


@set_.command()
@click.argument("mode", type=MODE_CHOICE, metavar="MODE")
@click.option("--dry-run", is_flag=True, help="Show the requests without sending them.")
@via_options
@json_option
@click.pass_context
def mode(ctx: click.Context, mode: str, dry_run: bool, via: Via, wait_s: float) -> Output:
    """Set the operation mode: self_consumption, backup or autonomous (time-based control).

    \b
    Example:
      teg set mode autonomous
      teg --json set mode backup --dry-run
    """
    settings = app.settings(ctx)
    if dry_run:
        return _dry(app.run(_planned(settings, via, mode=mode)))
    return _routed_output(
        app.run(_operation_now(settings, via, wait_s, mode=mode)), _render_operation
    )


def _render_full_operation(console: Console, data: dict[str, Any]) -> None:
    _render_operation(console, data)
    export_kw = data["max_pv_export_power_kw"]
    shown = "not set" if export_kw is None else f"{export_kw:zg} kW"
    console.print(f"Maximum PV export: {shown}.", markup=False)


@set_.command(name="operation")
@click.option("--mode", "mode_", type=MODE_CHOICE, help="Operation mode.")
@click.option("--reserve", type=float, metavar="N", help="Backup reserve in percent.")
@click.option(
    "--scale",
    type=click.Choice(percent.SCALES),
    default="app",
    show_default=True,
    help=SCALE_HELP,
)
@click.option(
    "--max-pv-export-kw",
    type=float,
    metavar="KW",
    help="Maximum PV export power in kW (max_pv_export_power_kW, 0 to 1000).",
)
@click.option("--dry-run", is_flag=True, help="Show the requests without sending them.")
@via_options
@json_option
@click.pass_context
def operation(
    ctx: click.Context,
    mode_: str | None,
    reserve: float | None,
    scale: percent.Scale,
    max_pv_export_kw: float | None,
    dry_run: bool,
    via: Via,
    wait_s: float,
) -> Output:
    """Change mode, reserve and PV export limit together, in one staged commit.

    Values not given are kept as the gateway has them. Locally the change is staged with
    one POST /api/operation and applied with one GET /api/config/completed. The cloud
    route takes mode and reserve only (the PV export limit is local only).

    \b
    Example:
      teg set operation --mode self_consumption --reserve 20
      teg set operation --max-pv-export-kw 5 --dry-run
    """
    if mode_ is None and reserve is None and max_pv_export_kw is None:
        raise click.UsageError("give at least one of --mode, --reserve, --max-pv-export-kw")
    if reserve is not None:
        check_reserve(reserve, scale)
    change: dict[str, Any] = {
        "mode": mode_,
        "backup_reserve_percent": reserve,
        "scale": scale if reserve is not None else None,
        "max_pv_export_power_kw": max_pv_export_kw,
    }
    settings = app.settings(ctx)
    if dry_run:
        return _dry(app.run(_planned(settings, via, **change)))

    async def go() -> dict[str, Any]:
        outcome = await routed_change(settings, via, wait_s, **change)
        now = outcome.operation
        export_kw = None if now is None else now.max_pv_export_power_kw
        return {
            "mode": None if now is None else now.mode,
            **reserve_fields(None if now is None else now.backup_reserve_raw_percent),
            "max_pv_export_power_kw": export_kw if isinstance(export_kw, int | float) else None,
            **outcome.fields(),
        }

    return _routed_output(app.run(go()), _render_full_operation)


def _render_name(console: Console, data: dict[str, Any]) -> None:
    console.print(f"The gateway now reports the site name {data['site_name']!r}.")


@set_.command(name="site-name")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show the request without sending it.")
@json_option
@click.pass_context
def site_name(ctx: click.Context, name: str, dry_run: bool) -> Output:
    """Rename the site (1 to 64 characters, no control characters).

    \b
    Example:
      teg set site-name "Lake House"
    """
    check_site_name(name)
    if dry_run:
        request = {
            "method": "POST",
            "path": "/api/site_info/site_name",
            "body": {"site_name": name},
        }
        return _dry([request])
    settings = app.settings(ctx)

    async def go() -> dict[str, Any]:
        async with settings.gateway() as gw:
            await gw.set_site_name(name)
            now = await gw.site_name()
        return {"site_name": now.site_name, "timezone": now.timezone}

    return Output(app.run(go()), _render_name)
