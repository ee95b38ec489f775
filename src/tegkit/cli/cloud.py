"""`teg cloud ...`: the Owner API (Tesla's cloud): tokens, products, live status, settings.

Tokens live in their own file, mode 0600, in the config directory (one per profile:
`cloud/<profile>.json`); they are never printed. Percents on the Owner API are on the app
scale. Settings of the `cloud` group (site, battery, URLs) come from options, their
environment variables, then the profile's [profiles.NAME.cloud] table.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import time
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from tegkit import percent
from tegkit._private_file import make_private_dir
from tegkit.cli import app, exit_codes
from tegkit.cli.change import MODE_CHOICE, SCALE_HELP, check_reserve, wire_number
from tegkit.cli.config import Profile
from tegkit.cli.output import Output, json_option
from tegkit.cloud import (
    LOGIN_TIMEOUT_S,
    CloudClient,
    TokenFormatError,
    TokenOrigin,
    Tokens,
    login,
    parse_token_origin,
    parse_tokens,
    read_token_file,
    read_token_origin,
    write_token_file,
)
from tegkit.errors import CloudTokenMissingError, InvalidInputError
from tegkit.models.vocabulary import ExportRule
from tegkit.ownerapi import (
    AUTH_URL,
    AUTHORIZE_PATH,
    AUTHORIZE_URLS,
    DEFAULT_REGION,
    FLEET_API_URLS,
    FLEET_AUTH_URLS,
    FLEET_SCOPE,
    OWNER_API_URL,
    REGIONS,
    Region,
    check_off_grid_ev_reserve_app_percent,
    check_site_name,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class CloudSettings:
    """Where the Owner API is, how to trust it, which tokens and which site."""

    app: app.Settings
    token_file: Path
    base_url: str
    auth_url: str
    cafile: str | None
    site_id: int | None
    battery_id: str | None
    http1: bool = False  # HTTP/1.1 instead of HTTP/2: only for a proxy that cannot do h2
    # the hosts as given (options, environment, profile); None: the flavour's own
    base_url_given: str | None = None
    auth_url_given: str | None = None

    def ssl(self) -> ssl.SSLContext | None:
        if self.cafile is None:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a self-signed test cloud
        return context

    def _elsewhere(self) -> str:
        """Which other profiles keep tokens, so none are silently out of reach."""
        others = sorted(
            path.stem
            for path in (self.app.config_dir / "cloud").glob("*.json")
            if path != self.token_file
        )
        if not others:
            return ""
        return f", or choose the profile that has them with --profile ({', '.join(others)})"

    def _how_to_get_tokens(self) -> str:
        """How to get tokens for this profile; names `teg cloud login` once that exists."""
        ways = "`teg cloud token import FILE`"
        if "login" in cloud.commands:
            ways = f"`teg cloud login` or {ways}"
        return f"Get tokens for profile {self.app.profile_name!r} with {ways}{self._elsewhere()}."

    def client(self) -> CloudClient:
        try:
            tokens = read_token_file(self.token_file)
        except InvalidInputError:
            if not self.token_file.exists():  # a local condition: nothing was asked of the cloud
                raise CloudTokenMissingError(
                    str(self.token_file), self._how_to_get_tokens()
                ) from None
            raise
        origin = read_token_origin(self.token_file)
        if origin.flavour == "fleet":
            # the Fleet API: the application's client id and the hosts recorded at login
            return CloudClient(
                tokens.access_token,
                tokens.refresh_token,
                flavour="fleet",
                client_id=origin.client_id,
                client_secret=client_secret(),
                region=origin.region,
                base_url=self.base_url_given or origin.base_url,
                auth_url=self.auth_url_given or origin.auth_url,
                token_file=self.token_file,
                ssl=self.ssl(),
                timeout_s=max(self.app.timeout_s, 20.0),
                expires_at_s=tokens.expires_at_s,
                http1=self.http1,
            )
        return CloudClient(
            tokens.access_token,
            tokens.refresh_token,
            base_url=self.base_url,
            auth_url=self.auth_url,
            token_file=self.token_file,
            ssl=self.ssl(),
            timeout_s=max(self.app.timeout_s, 20.0),
            expires_at_s=tokens.expires_at_s,
            http1=self.http1,
        )


def cloud_settings(ctx: click.Context) -> CloudSettings:
    found = ctx.find_object(CloudSettings)
    assert found is not None, "the cloud group callback builds CloudSettings"
    return found


def _set_target(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        setattr(cloud_settings(ctx), str(param.name), value)


def target_options(func: F) -> F:
    """--site-id / --battery-id after the command as well (`teg cloud status --site-id N`)."""
    for option in (
        click.option(
            "--battery-id",
            expose_value=False,
            callback=_set_target,
            help="Battery id (STE...); as `teg cloud --battery-id`.",
        ),
        click.option(
            "--site-id",
            type=int,
            expose_value=False,
            callback=_set_target,
            help="Energy site id; as `teg cloud --site-id`.",
        ),
    ):
        func = option(func)
    return func


@click.group()
@click.option("--site-id", envvar="TEG_SITE_ID", show_envvar=True, type=int, help="Energy site id.")
@click.option(
    "--battery-id", envvar="TEG_BATTERY_ID", show_envvar=True, help="Battery id (STE...)."
)
@click.option(
    "--token-file",
    envvar="TEG_TOKEN_FILE",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Token file [default: cloud/<profile>.json in the config directory].",
)
@click.option("--cloud-url", envvar="TEG_CLOUD_URL", show_envvar=True, help="Owner API base URL.")
@click.option("--auth-url", envvar="TEG_CLOUD_AUTH_URL", show_envvar=True, help="OAuth base URL.")
@click.option(
    "--cloud-cafile",
    envvar="TEG_CLOUD_CAFILE",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="CA file for the Owner API (a test cloud such as `teg sim`).",
)
@click.option(
    "--http1",
    is_flag=True,
    help="Speak HTTP/1.1 instead of HTTP/2 (Tesla's cloud refuses tokens refreshed over it).",
)
@click.pass_context
def cloud(
    ctx: click.Context,
    site_id: int | None,
    battery_id: str | None,
    token_file: Path | None,
    cloud_url: str | None,
    auth_url: str | None,
    cloud_cafile: str | None,
    http1: bool,
) -> None:
    """Tesla's cloud (Owner API): tokens, products, live status, reserve, mode, site name.

    \b
    Example:
      teg cloud token import tokens.json
      teg cloud products
      teg cloud --site-id 1234567 set reserve 30
    """
    settings = app.settings(ctx)
    if ctx.find_root().params.get("profile") and ctx.invoked_subcommand != "token":
        app.require_profile(settings.config, settings.profile_name)
    stored = settings.profile.cloud
    for url, name in (
        (cloud_url, "--cloud-url / TEG_CLOUD_URL"),
        (auth_url, "--auth-url / TEG_CLOUD_AUTH_URL"),
        (stored.base_url, f"profiles.{settings.profile_name}.cloud.base_url"),
        (stored.auth_url, f"profiles.{settings.profile_name}.cloud.auth_url"),
    ):
        app.check_no_user_info(url, name)
    ctx.obj = CloudSettings(
        app=settings,
        token_file=(
            token_file
            or (Path(stored.token_file).expanduser() if stored.token_file else None)
            or settings.config_dir / "cloud" / f"{settings.profile_name}.json"
        ),
        base_url=cloud_url or stored.base_url or OWNER_API_URL,
        auth_url=auth_url or stored.auth_url or AUTH_URL,
        cafile=cloud_cafile or stored.cafile,
        site_id=site_id if site_id is not None else _int(stored.site_id),
        battery_id=battery_id or stored.battery_id,
        http1=http1,
        base_url_given=cloud_url or stored.base_url,
        auth_url_given=auth_url or stored.auth_url,
    )
    ctx.meta[exit_codes.CONTEXT_KEY] = exit_codes.Context(service="cloud", where=ctx.obj.base_url)
    ctx.meta["teg.cloud.given"] = {
        "base_url": cloud_url,
        "auth_url": auth_url,
        "cafile": cloud_cafile,
        "site_id": None if site_id is None else str(site_id),
        "battery_id": battery_id,
        "token_file": None if token_file is None else str(token_file),
    }


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


#: where a Fleet API application's client secret comes from (never the command line)
CLIENT_SECRET_ENV = "TEG_CLIENT_SECRET"
CLIENT_SECRET_FILE_ENV = "TEG_CLIENT_SECRET_FILE"


def client_secret(path: Path | None = None) -> str | None:
    """The Fleet API client secret: TEG_CLIENT_SECRET, else a file only its owner can read.

    The file is `path`, else TEG_CLIENT_SECRET_FILE. A file others can read is refused: a
    secret that leaked that way must be replaced, not used.
    """
    secret = os.environ.get(CLIENT_SECRET_ENV)
    if secret:
        return secret.strip()
    if path is None:
        named = os.environ.get(CLIENT_SECRET_FILE_ENV)
        path = Path(named).expanduser() if named else None
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InvalidInputError(
                "client secret file", "a file only its owner can read (chmod 600)", str(path)
            )
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            "client secret file", f"a readable text file ({exc.__class__.__name__})", str(path)
        ) from None
    if not secret:
        raise InvalidInputError("client secret file", "a file holding the secret", str(path))
    return secret


# --- tokens ---------------------------------------------------------------------------------


@cloud.group()
def token() -> None:
    """Import or refresh the Owner API tokens (kept in a 0600 file, never printed).

    \b
    Example:
      teg cloud token import tokens.json
      teg cloud token refresh
    """


def _token_data(cs: CloudSettings, tokens: Tokens) -> dict[str, Any]:
    return {
        "token_file": str(cs.token_file),
        "has_refresh_token": tokens.refresh_token is not None,
        "expires_at_s": tokens.expires_at_s,
    }


def _render_token(console: Console, data: dict[str, Any]) -> None:
    expiry = (
        "unknown expiry"
        if data["expires_at_s"] is None
        else time.strftime("expires %Y-%m-%d %H:%M", time.localtime(data["expires_at_s"]))
    )
    refresh = "with" if data["has_refresh_token"] else "without"
    console.print(
        f"Tokens saved in {data['token_file']} ({expiry}, {refresh} a refresh token).",
        soft_wrap=True,
    )


def _tokens_from_json(data: Any, source: str) -> Tokens:
    # the one token parser (tegkit.cloud._tokens), as for the token file and the grant answer
    try:
        return parse_tokens(data)
    except TokenFormatError as exc:
        raise InvalidInputError("token file", str(exc), source) from None


def _origin_from_json(data: Any, source: str) -> TokenOrigin | None:
    # a token file of ours keeps its flavour and client id (Fleet API tokens stay fleet)
    if not isinstance(data, dict) or "flavour" not in data:
        return None
    try:
        return parse_token_origin(data)
    except TokenFormatError as exc:
        raise InvalidInputError("token file", str(exc), source) from None


@token.command(name="import")
@click.argument("file", required=False, type=click.File("r"))
@click.option("--access-token", envvar="TEG_ACCESS_TOKEN", help="The access token.")
@click.option("--refresh-token", envvar="TEG_REFRESH_TOKEN", help="The refresh token.")
@json_option
@click.pass_context
def import_(
    ctx: click.Context, file: Any, access_token: str | None, refresh_token: str | None
) -> Output:
    """Store Owner API tokens from a JSON file (- for stdin) or from options.

    The file holds access_token and refresh_token (expires_at or expires_in optional), as
    written by common Tesla login tools. Cloud options given with this command (--site-id,
    --cloud-url, ...) are saved in the profile too.

    \b
    Example:
      teg cloud token import tokens.json
      teg cloud --site-id 1234567 token import --access-token "$AT" --refresh-token "$RT"
    """
    cs = cloud_settings(ctx)
    if (file is None) == (access_token is None):
        raise click.UsageError("give either a token FILE or --access-token")
    if file is not None:
        try:
            data = json.load(file)
        except ValueError:
            raise click.BadParameter("not JSON", param_hint="FILE") from None
        tokens = _tokens_from_json(data, getattr(file, "name", "FILE"))
        origin = _origin_from_json(data, getattr(file, "name", "FILE"))
    else:
        tokens = Tokens(str(access_token), refresh_token or None, None)
        origin = None
    make_private_dir(cs.token_file.parent)
    write_token_file(cs.token_file, tokens, origin)
    _remember(ctx, cs)
    return Output(_token_data(cs, tokens), _render_token)


def _remember(ctx: click.Context, cs: CloudSettings) -> None:
    """Save the profile the tokens belong to, with the cloud options given on this run.

    The profile is written even when no option was given, and becomes the default when
    there is none yet: tokens kept for a profile the config file does not name would be
    lost as soon as another command (`teg setup`) made some other profile the default.
    """
    given = {k: v for k, v in ctx.meta.get("teg.cloud.given", {}).items() if v is not None}
    config = cs.app.config
    known = cs.app.profile_name in config.profiles
    if known and not given and config.default_profile is not None:
        return
    profile = config.profiles.setdefault(cs.app.profile_name, Profile())
    for key, value in given.items():
        setattr(profile.cloud, key, value)
    if config.default_profile is None:
        config.default_profile = cs.app.profile_name
    config.save()


@token.command()
@json_option
@click.pass_context
def refresh(ctx: click.Context) -> Output:
    """Renew the access token with the refresh token now.

    \b
    Example:
      teg cloud token refresh
    """
    cs = cloud_settings(ctx)

    async def go() -> Tokens:
        async with cs.client() as client:
            return await client.refresh()

    return Output(_token_data(cs, app.run(go())), _render_token)


@cloud.command(name="login")
@click.option(
    "--fleet",
    is_flag=True,
    help="Log in to the Fleet API with your own application (needs --client-id).",
)
@click.option(
    "--client-id",
    envvar="TEG_CLIENT_ID",
    show_envvar=True,
    help="Client id of your Fleet API application (developer.tesla.com).",
)
@click.option(
    "--client-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File (mode 600) with the client secret, if your application has one; "
    f"or set {CLIENT_SECRET_ENV} / {CLIENT_SECRET_FILE_ENV}.",
)
@click.option(
    "--region",
    type=click.Choice(REGIONS),
    help="Fleet API region: na (Americas, Asia-Pacific), eu (Europe, Middle East, Africa), "
    "cn (China)  [default: na].",
)
@click.option(
    "--redirect-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port of the loopback redirect http://127.0.0.1:PORT/callback  [default: any free].",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=LOGIN_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for the browser to come back.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the address in a browser.")
@json_option
@click.pass_context
def login_(
    ctx: click.Context,
    fleet: bool,
    client_id: str | None,
    client_secret_file: Path | None,
    region: Region | None,
    redirect_port: int,
    timeout_s: float,
    open_browser: bool,
) -> Output:
    """Log in through the browser (OAuth with PKCE) and keep the tokens (0600).

    Prints an address to open in a browser; after you sign in and allow access, Tesla sends
    the browser back to http://127.0.0.1:PORT/callback, where teg takes the answer once. Add
    http://127.0.0.1:PORT/callback to your application's allowed redirect URIs (with
    --redirect-port PORT). Only the Fleet API can log in this way: the Owner API's client
    returns to Tesla's own page only; use `teg cloud token import` for Owner API tokens.

    \b
    Example:
      teg cloud login --fleet --client-id 0a1b2c --region eu --redirect-port 8765
    """
    cs = cloud_settings(ctx)
    if not fleet:
        raise click.UsageError(
            "only the Fleet API logs in through the browser: add --fleet --client-id ID "
            "(your application at developer.tesla.com), or import Owner API tokens with "
            "`teg cloud token import FILE`"
        )
    if not client_id or not client_id.strip():
        raise click.UsageError("--fleet needs --client-id (your Fleet API application's id)")
    region_ = region or DEFAULT_REGION
    origin = TokenOrigin(
        flavour="fleet",
        client_id=client_id.strip(),
        region=region_,
        base_url=cs.base_url_given,
        auth_url=cs.auth_url_given,
    )
    if cs.auth_url_given:
        authorize_base = cs.auth_url_given.rstrip("/") + AUTHORIZE_PATH
    else:
        authorize_base = AUTHORIZE_URLS[region_]
    secret = client_secret(client_secret_file)

    def show(url: str) -> None:
        click.echo("Open this address in a browser, sign in and allow access:", err=True)
        click.echo(url, err=True)
        click.echo(f"Waiting up to {timeout_s:g} s for the browser to come back...", err=True)
        if open_browser:
            webbrowser.open(url)

    tokens = app.run(
        login(
            origin=origin,
            authorize_base_url=authorize_base,
            auth_url=cs.auth_url_given or FLEET_AUTH_URLS[region_],
            token_file=cs.token_file,
            show_url=show,
            scope=FLEET_SCOPE,
            client_secret=secret,
            audience=cs.base_url_given or FLEET_API_URLS[region_],
            redirect_port=redirect_port,
            timeout_s=timeout_s,
            ssl_context=cs.ssl(),
            http1=cs.http1,
        )
    )
    _remember(ctx, cs)
    data = _token_data(cs, tokens)
    data.update(flavour=origin.flavour, client_id=origin.client_id, region=origin.region)
    return Output(data, _render_token)


# --- reads ----------------------------------------------------------------------------------


def _render_products(console: Console, data: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("energy_site_id", "battery_id", "site_name", "resource_type"):
        table.add_column(column)
    for p in data:
        if "energy_site_id" in p:
            table.add_row(
                str(p["energy_site_id"]), str(p.get("id") or "—"), str(p.get("site_name") or "—"),
                str(p.get("resource_type") or "—"),
            )  # fmt: skip
    console.print(table)


@cloud.command()
@json_option
@click.pass_context
def products(ctx: click.Context) -> Output:
    """List the account's products; energy sites show their ids for --site-id/--battery-id.

    \b
    Example:
      teg cloud products
    """
    cs = cloud_settings(ctx)

    async def go() -> list[dict[str, Any]]:
        async with cs.client() as client:
            return await client.products()

    return Output(app.run(go()), _render_products)


async def _site_id(cs: CloudSettings, client: CloudClient) -> int:
    """The site to act on: --site-id, the site of --battery-id, or the only site."""
    if cs.site_id is not None:
        return cs.site_id
    sites = await client.energy_sites()
    if cs.battery_id is not None:
        sites = [s for s in sites if s.battery_id == cs.battery_id]
    if len(sites) == 1:
        return sites[0].energy_site_id
    ids = ", ".join(str(s.energy_site_id) for s in sites) or "none"
    raise click.UsageError(f"choose an energy site with --site-id (the account has: {ids})")


def _render_live(console: Console, data: dict[str, Any]) -> None:
    from tegkit.cli.status import direction, kw

    for meter, label in (
        ("grid", "Grid"),
        ("solar", "Solar"),
        ("battery", "Battery"),
        ("load", "Home"),
    ):
        power = data[f"{meter}_power_w"]
        word = direction("site" if meter == "grid" else meter, power) or "—"
        console.print(f"{label:<8} {kw(power):>10}  {word}")
    charge = data["soe_app_percent"]
    console.print(f"{'Charge':<8} {'—' if charge is None else f'{charge:z.1f}%':>10}  app scale")
    console.print(f"{'Grid':<8} {data['grid_status'] or '—':>10}")
    console.print(f"{'Reading':<8} {data['timestamp'] or '—'}")


@cloud.command(name="status")
@target_options
@json_option
@click.pass_context
def live(ctx: click.Context) -> Output:
    """Live power flow and charge of an energy site, as the cloud reports it.

    \b
    Example:
      teg cloud --site-id 1234567 status
    """
    cs = cloud_settings(ctx)

    async def go() -> dict[str, Any]:
        async with cs.client() as client:
            site_id = await _site_id(cs, client)
            now = await client.live_status(site_id)
        return {
            "site_id": site_id,
            "grid_power_w": now.grid_power_w,
            "solar_power_w": now.solar_power_w,
            "battery_power_w": now.battery_power_w,
            "load_power_w": now.load_power_w,
            "soe_app_percent": now.percentage_charged_app_percent,
            "grid_status": now.grid_status,
            "island_status": now.island_status,
            "timestamp": None if now.timestamp is None else now.timestamp.isoformat(),
        }

    return Output(app.run(go()), _render_live)


# --- settings -------------------------------------------------------------------------------


def _render_site(console: Console, data: dict[str, Any]) -> None:
    reserve = data["backup_reserve_app_percent"]
    console.print(
        f"The cloud now reports for site {data['site_id']}: name {data['site_name']!r}, "
        f"mode {data['mode'] or '—'}, backup reserve "
        f"{'—' if reserve is None else f'{reserve:zg}% (app scale)'}."
    )


async def _apply(cs: CloudSettings, command: str, value: Any) -> dict[str, Any]:
    async with cs.client() as client:
        target: dict[str, Any] = (
            {"battery_id": cs.battery_id}
            if cs.battery_id is not None and cs.site_id is None
            else {"site_id": await _site_id(cs, client)}
        )
        if command == "backup":
            await client.set_backup_reserve(value, **target)
        elif command == "operation":
            await client.set_operation_mode(value, **target)
        else:
            await client.set_site_name(value, **target)
        site_id = await _site_id(cs, client)
        info = await client.site_info(site_id)
    return {
        "site_id": site_id,
        "site_name": info.site_name,
        "mode": info.default_real_mode,
        "backup_reserve_app_percent": info.backup_reserve_app_percent,
    }


@cloud.group(name="set")
def cloud_set() -> None:
    """Change reserve, mode, site name, grid charging, export rule, storm watch or the
    off-grid EV reserve through the cloud (by --site-id or --battery-id).

    \b
    Example:
      teg cloud --battery-id STE1234 set reserve 20
    """


@cloud_set.command(name="reserve")
@target_options
@click.argument("n", type=float, metavar="N")
@click.option(
    "--scale", type=click.Choice(percent.SCALES), default="app", show_default=True, help=SCALE_HELP
)
@json_option
@click.pass_context
def cloud_reserve(ctx: click.Context, n: float, scale: percent.Scale) -> Output:
    """Set the backup reserve to N percent (app scale, as the Owner API takes it).

    \b
    Example:
      teg cloud --site-id 1234567 set reserve 20
    """
    check_reserve(n, scale)
    app_percent = wire_number(percent.to_app(n, scale))
    return Output(app.run(_apply(cloud_settings(ctx), "backup", app_percent)), _render_site)


@cloud_set.command(name="mode")
@target_options
@click.argument("mode", type=MODE_CHOICE, metavar="MODE")
@json_option
@click.pass_context
def cloud_mode(ctx: click.Context, mode: str) -> Output:
    """Set the operation mode: self_consumption, backup or autonomous.

    \b
    Example:
      teg cloud --site-id 1234567 set mode autonomous
    """
    return Output(app.run(_apply(cloud_settings(ctx), "operation", mode)), _render_site)


@cloud_set.command(name="site-name")
@target_options
@click.argument("name")
@json_option
@click.pass_context
def cloud_site_name(ctx: click.Context, name: str) -> Output:
    """Rename the energy site.

    \b
    Example:
      teg cloud --site-id 1234567 set site-name "Lake House"
    """
    check_site_name(name)
    return Output(app.run(_apply(cloud_settings(ctx), "site_name", name)), _render_site)


# --- the Fleet API's energy-site settings ------------------------------------------------------

ON_OFF = click.Choice(["on", "off"])
EXPORT_RULE_CHOICE = click.Choice([rule.value for rule in ExportRule])

# send(client, site_id): one command; the answer is what site_info reports afterwards
_SiteCommand = Callable[[CloudClient, int], Awaitable[object]]


async def _apply_site_setting(cs: CloudSettings, send: _SiteCommand) -> dict[str, Any]:
    async with cs.client() as client:
        site_id = await _site_id(cs, client)  # these commands take the energy site id only
        await send(client, site_id)
        info = await client.site_info(site_id)
    return {
        "site_id": site_id,
        "site_name": info.site_name,
        "grid_charging_allowed": info.grid_charging_allowed,
        "export_rule": None if info.export_rule is None else str(info.export_rule),
        "storm_watch_enabled": info.storm_mode_enabled,
        "off_grid_ev_reserve_app_percent": info.off_grid_vehicle_charging_reserve_app_percent,
    }


def _render_settings(console: Console, data: dict[str, Any]) -> None:
    def said(value: object, yes: str = "on", no: str = "off") -> str:
        if isinstance(value, bool):
            return yes if value else no
        return "—" if value is None else str(value)

    ev = data["off_grid_ev_reserve_app_percent"]
    console.print(
        f"The cloud now reports for site {data['site_id']}: grid charging "
        f"{said(data['grid_charging_allowed'], 'allowed', 'not allowed')}, export rule "
        f"{said(data['export_rule'])}, storm watch {said(data['storm_watch_enabled'])}, "
        f"off-grid EV reserve {'—' if ev is None else f'{ev:zg}% (app scale)'}. "
        "A change reaches the gateway after a short delay; until then the old value shows."
    )


@cloud_set.command(name="grid-charging")
@target_options
@click.argument("grid_charging", type=ON_OFF, metavar="GRID_CHARGING")
@json_option
@click.pass_context
def cloud_grid_charging(ctx: click.Context, grid_charging: str) -> Output:
    """Allow (on) or stop (off) charging the battery from the grid.

    Off: in time-based control only solar charges the battery.

    \b
    Example:
      teg cloud --site-id 1234567 set grid-charging off
    """
    allowed = grid_charging == "on"

    def send(client: CloudClient, site_id: int) -> Awaitable[object]:
        return client.set_grid_import_export(site_id, grid_charging_allowed=allowed)

    return Output(app.run(_apply_site_setting(cloud_settings(ctx), send)), _render_settings)


@cloud_set.command(name="export-rule")
@target_options
@click.argument("export_rule", type=EXPORT_RULE_CHOICE, metavar="EXPORT_RULE")
@json_option
@click.pass_context
def cloud_export_rule(ctx: click.Context, export_rule: str) -> Output:
    """What may go to the grid: pv_only (solar only), battery_ok (solar and battery) or never.

    \b
    Example:
      teg cloud --site-id 1234567 set export-rule pv_only
    """
    rule = ExportRule(export_rule)

    def send(client: CloudClient, site_id: int) -> Awaitable[object]:
        return client.set_grid_import_export(site_id, export_rule=rule)

    return Output(app.run(_apply_site_setting(cloud_settings(ctx), send)), _render_settings)


@cloud_set.command(name="storm-watch")
@target_options
@click.argument("storm_watch", type=ON_OFF, metavar="STORM_WATCH")
@json_option
@click.pass_context
def cloud_storm_watch(ctx: click.Context, storm_watch: str) -> Output:
    """Turn storm watch on or off (on: the battery charges to full before a storm).

    \b
    Example:
      teg cloud --site-id 1234567 set storm-watch on
    """
    enabled = storm_watch == "on"

    def send(client: CloudClient, site_id: int) -> Awaitable[object]:
        return client.set_storm_watch(site_id, enabled)

    return Output(app.run(_apply_site_setting(cloud_settings(ctx), send)), _render_settings)


def _ev_reserve(ctx: click.Context, param: click.Parameter, value: float) -> int | float:
    try:
        return check_off_grid_ev_reserve_app_percent(value)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@cloud_set.command(name="ev-reserve")
@target_options
@click.argument("percent", type=float, metavar="PERCENT", callback=_ev_reserve)
@json_option
@click.pass_context
def cloud_ev_reserve(ctx: click.Context, percent: float) -> Output:
    """Keep PERCENT of the battery (app scale, 0 to 100) from vehicles during an outage.

    \b
    Example:
      teg cloud --site-id 1234567 set ev-reserve 30
    """

    def send(client: CloudClient, site_id: int) -> Awaitable[object]:
        return client.set_off_grid_ev_reserve(site_id, percent)

    return Output(app.run(_apply_site_setting(cloud_settings(ctx), send)), _render_settings)


# --- history --------------------------------------------------------------------------------


@cloud.group(name="history")
def cloud_history() -> None:
    """Outages and energy per day, as the cloud keeps them (read only).

    \b
    Example:
      teg cloud history backup
      teg cloud history energy --period week --date 2024-06-12
    """


def _render_outages(console: Console, data: dict[str, Any]) -> None:
    if not data["outages"]:
        console.print(f"The cloud lists no outage for site {data['site_id']}.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("start", "end", "duration"):
        table.add_column(column)
    for o in data["outages"]:
        minutes, seconds = divmod(round(o["duration_s"]), 60)
        table.add_row(o["start"], o["end"], f"{minutes} min {seconds:02d} s")
    console.print(table)


@cloud_history.command(name="backup")
@target_options
@json_option
@click.pass_context
def cloud_history_backup(ctx: click.Context) -> Output:
    """Every outage the cloud remembers: when it began, when it ended, how long it lasted.

    \b
    Example:
      teg cloud --site-id 1234567 history backup --json
    """
    cs = cloud_settings(ctx)

    async def go() -> dict[str, Any]:
        async with cs.client() as client:
            site_id = await _site_id(cs, client)
            history = await client.backup_history(site_id)
        return {
            "site_id": site_id,
            "total_events": history.total_events,
            "outages": [
                {
                    "start": e.start.isoformat(),
                    "end": e.end.isoformat(),
                    "duration_s": e.duration_s,
                }
                for e in history.events
            ],
        }

    return Output(app.run(go()), _render_outages)


def _kwh(wh: float | None) -> str:
    return "—" if wh is None else f"{wh / 1000:.2f}"


def _sum_wh(period: dict[str, Any], *names: str) -> float | None:
    values = [period[f"{name}_wh"] for name in names]
    return None if any(v is None for v in values) else sum(values)


def _render_energy(console: Console, data: dict[str, Any]) -> None:
    if not data["periods"]:
        console.print(f"The cloud has no energy for site {data['site_id']} in that period.")
        return
    table = Table(box=None, pad_edge=False, title=f"kWh ({data['time_zone'] or 'site time'})")
    for column in ("start", "home", "solar", "grid in", "grid out", "battery in", "battery out"):
        table.add_column(column, justify="left" if column == "start" else "right")
    for p in data["periods"]:
        home = _sum_wh(
            p,
            "consumer_energy_imported_from_grid",
            "consumer_energy_imported_from_solar",
            "consumer_energy_imported_from_battery",
        )
        grid_out = _sum_wh(
            p, "grid_energy_exported_from_solar", "grid_energy_exported_from_battery"
        )
        battery_in = _sum_wh(
            p, "battery_energy_imported_from_grid", "battery_energy_imported_from_solar"
        )
        table.add_row(
            p["timestamp"][:10], _kwh(home), _kwh(p["solar_energy_exported_wh"]),
            _kwh(p["grid_energy_imported_wh"]), _kwh(grid_out), _kwh(battery_in),
            _kwh(p["battery_energy_exported_wh"]),
        )  # fmt: skip
    console.print(table)


@cloud_history.command(name="energy")
@target_options
@click.option(
    "--period",
    type=click.Choice(("day", "week", "month", "year")),
    default="day",
    show_default=True,
    help="day, week or month: a row per day; year: a row per month.",
)
@click.option(
    "--date",
    "last_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="The period's last day, in the site's time zone [default: today, as the cloud says].",
)
@json_option
@click.pass_context
def cloud_history_energy(ctx: click.Context, period: str, last_day: Any) -> Output:
    """Energy per day (or month) as the cloud keeps it, in Wh by where it came from and went.

    \b
    Example:
      teg cloud history energy --period week
      teg cloud --site-id 1234567 history energy --date 2024-06-12 --json
    """
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from tegkit.cloud import EnergyPeriod

    cs = cloud_settings(ctx)

    async def go() -> dict[str, Any]:
        async with cs.client() as client:
            site_id = await _site_id(cs, client)
            end: dt.datetime | None = None
            if last_day is not None:
                zone_name = (await client.site_info(site_id)).installation_time_zone
                try:
                    zone: dt.tzinfo = ZoneInfo(zone_name) if zone_name else dt.UTC
                except (ZoneInfoNotFoundError, ValueError):
                    zone = dt.UTC  # a zone this machine does not know: the day in UTC
                end = dt.datetime.combine(last_day.date(), dt.time(23, 59, 59), zone)
            answer = await client.calendar_history(site_id, "energy", period, end_date=end)
        names = EnergyPeriod.__struct_fields__
        return {
            "site_id": site_id,
            "period": answer.period,
            "time_zone": answer.installation_time_zone,
            "periods": [
                {
                    name: value.isoformat() if isinstance(value, dt.datetime) else value
                    for name, value in ((n, getattr(p, n)) for n in names)
                }
                for p in answer.time_series
            ],
        }

    return Output(app.run(go()), _render_energy)
