"""`teg setup`: the first run. Host, certificate (trust on first use), login test, profile.

Every question can be answered ahead by an option or environment variable, so scripts run
it without a terminal: `teg --host H --password P setup --yes`. The password is written to
the config file only with --save-password; otherwise it comes from TEG_PASSWORD or a prompt.
The test login's session is kept (0600, like `teg login`) until it ends or `teg logout`.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from tegkit.cli import app, cert
from tegkit.cli.config import Profile
from tegkit.cli.output import Output, json_option
from tegkit.client import Gateway, PinnedCertificate
from tegkit.errors import AuthenticationError

PASSWORD_TRIES = 3  # the gateway locks logins out after a few failures


def _ask(text: str, default: str | None = None, *, hide: bool = False) -> str | None:
    if not sys.stdin.isatty():
        return default
    value: str = click.prompt(
        text, default=default or "", hide_input=hide, err=True, show_default=bool(default)
    )
    return value or None


async def _test_login(settings: app.Settings, host: str, pin: str) -> dict[str, Any]:
    """Log in with the new settings and read who the gateway is."""
    gateway = Gateway(
        host,
        password=settings.password,
        email=settings.email,
        tls=PinnedCertificate(pin),
        sni=settings.sni,
        timeout_s=settings.timeout_s,
        session_file=settings.session_file,
    )
    async with settings.track(gateway) as gw:  # a 1.x restart after the login is reported
        if settings.password is not None:
            await gw.login()
        status = await gw.status()
        name = await gw.site_name()
    return {"firmware_version": status.version, "site_name": name.site_name}


def _render(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"Saved profile {data['profile']!r} for {data['site_name']!r} at {data['host']} "
        f"(firmware {data['firmware_version']}) in {data['config_file']}.",
        soft_wrap=True,  # a path folded over two lines cannot be copied
    )
    if data["password_saved"]:
        console.print("The password is stored in the config file (mode 0600).")
    if data["session_file"]:
        console.print(
            f"A login session is kept in {data['session_file']} (mode 0600) until the gateway "
            "ends it or you run `teg logout`; commands use it instead of the password.",
            soft_wrap=True,
        )
    if data["logged_in"] and not data["password_saved"]:
        console.print(
            "The password was not stored: once the session ends, give it with TEG_PASSWORD "
            "or when asked."
        )
    console.print("Next: teg status")


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Trust the certificate without asking.")
@click.option(
    "--expect", metavar="SHA256", help="Trust the certificate only with this fingerprint."
)
@click.option(
    "--save-password", is_flag=True, help="Store the password in the config file (mode 0600)."
)
@click.option(
    "--default/--no-default",
    "make_default",
    default=None,
    help="Make this the default profile (the first profile becomes the default anyway).",
)
@json_option
@click.pass_context
def setup(
    ctx: click.Context,
    yes: bool,
    expect: str | None,
    save_password: bool,
    make_default: bool | None,
) -> Output:
    """Set up a gateway profile: host, certificate, password, a test login.

    Asks for what it was not given; shows the certificate's SHA-256 fingerprint before
    trusting it, logs in once to check the password, then saves the profile.

    \b
    Example:
      teg setup
      teg --profile cabin --host 10.0.0.7 --password "$PW" setup --yes --save-password
    """
    settings = app.settings(ctx)
    host = settings.host or _ask("Gateway host or IP address")
    if not host:
        raise click.UsageError("no gateway host: pass --host or set TEG_HOST")
    app.check_no_user_info(host, "host")
    settings.host = host
    info = app.run(cert.fetch(settings, host))
    # A pin given on the command line or already in the profile must match; else ask.
    cert.trust(info, expect or settings.pin, yes)
    if not settings.email:
        settings.email = _ask("Email (optional)", "") or ""
    asked = settings.password is None
    if asked:
        settings.password = _ask("Customer password", hide=True)
    for attempt in range(1, PASSWORD_TRIES + 1):
        try:
            found = app.run(_test_login(settings, host, info.sha256_hex))
            break
        except AuthenticationError:
            # A typo should not cost the host and certificate steps; a password given by
            # option or environment is not asked again.
            if not asked or attempt == PASSWORD_TRIES or not sys.stdin.isatty():
                raise
            click.echo("The gateway refused that password; try again.", err=True)
            settings.password = _ask("Customer password", hide=True)

    config = settings.config
    profile = config.profiles.setdefault(settings.profile_name, Profile())
    profile.host = host
    profile.pin = info.sha256_hex
    profile.cafile = None
    profile.insecure = None
    profile.email = settings.email or None
    if settings.sni:
        profile.sni = settings.sni
    if save_password and settings.password is not None:
        profile.password = settings.password
    if make_default or config.default_profile is None:
        config.default_profile = settings.profile_name
    config.save()
    data = {
        "profile": settings.profile_name,
        "host": host,
        "pin_sha256": info.sha256_hex,
        "config_file": str(config.path),
        "default_profile": config.default_profile,
        "logged_in": settings.password is not None,
        "password_saved": profile.password is not None,
        # the test login's session, kept for later commands (None: no login was needed)
        "session_file": str(settings.session_file) if settings.session_file.exists() else None,
        **found,
    }
    return Output(data, _render)
