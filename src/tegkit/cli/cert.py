"""`teg cert fetch|show`: pin the gateway's self-signed certificate (trust on first use).

`fetch` reads the certificate the gateway presents, shows its SHA-256 fingerprint for the
user to compare (with the one from a previous pin, a label or another machine) and saves it
in the profile. Afterwards every connection must present exactly that certificate, and a
different one ends with exit code 7.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from typing import Any

import click
from rich.console import Console
from yarl import URL

from tegkit.cli import app
from tegkit.cli.config import Profile
from tegkit.cli.output import Output, json_option, printable
from tegkit.client import CertificateInfo, fetch_certificate, normalise_fingerprint
from tegkit.errors import CertificateMismatchError, InvalidInputError


def host_port(host: str) -> tuple[str, int]:
    """The TLS host and port of a gateway given as host, host:port, [v6]:port or URL.

    >>> host_port("192.168.1.5")
    ('192.168.1.5', 443)
    >>> host_port("https://127.0.0.1:8443")
    ('127.0.0.1', 8443)
    """
    text = host.strip()
    if "://" not in text:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            pass
        else:
            text = f"[{text}]"
        text = f"https://{text}"
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or not url.host:
        raise InvalidInputError("host", "a host name, IP address or https:// URL", host)
    return url.host, url.port or 443


def fingerprint_text(sha256_hex: str) -> str:
    """AA:BB:... groups, as browsers and openssl show a fingerprint."""
    return ":".join(sha256_hex[i : i + 2] for i in range(0, len(sha256_hex), 2)).upper()


async def fetch(settings: app.Settings, host: str) -> CertificateInfo:
    name, port = host_port(host)
    return await fetch_certificate(name, port, sni=settings.sni, timeout_s=settings.timeout_s)


def cert_data(info: CertificateInfo) -> dict[str, Any]:
    return {
        "sha256": info.sha256_hex,
        "subject_names": list(info.subject_names),
        "not_after": info.not_after.isoformat(),
    }


def trust(info: CertificateInfo, expected: str | None, yes: bool) -> None:
    """Accept the fetched certificate: it matches `expected`, --yes, or the user says so."""
    if expected:
        expected = normalise_fingerprint(expected)
        if expected != info.sha256_hex:
            raise CertificateMismatchError(expected, info.sha256_hex)
        return
    click.echo(f"SHA-256 fingerprint: {fingerprint_text(info.sha256_hex)}", err=True)
    # The names come from the certificate, which anyone can write: no control characters.
    click.echo(f"Names: {printable(', '.join(info.subject_names)) or '-'}", err=True)
    click.echo(f"Valid until: {info.not_after:%Y-%m-%d}", err=True)
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(
            "trusting a certificate needs confirmation: compare the fingerprint above, then "
            "pass --yes (or --expect FINGERPRINT)"
        )
    click.confirm("Trust this certificate for this gateway?", abort=True, err=True)


def save_pin(settings: app.Settings, host: str, sha256_hex: str) -> None:
    """Store host and pin in the profile; a pin replaces a CA file or insecure mode."""
    config = settings.config
    profile = config.profiles.setdefault(settings.profile_name, Profile())
    profile.host = host
    profile.pin = sha256_hex
    profile.cafile = None
    profile.insecure = None
    if config.default_profile is None:
        config.default_profile = settings.profile_name
    config.save()


@click.group()
def cert() -> None:
    """Pin the gateway's certificate, or show what is pinned.

    \b
    Example:
      teg --host 192.168.1.50 cert fetch
      teg cert show --check
    """


def _render_fetch(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"Pinned {fingerprint_text(data['sha256'])} for {data['host']} "
        f"in profile {data['profile']!r} ({data['config_file']}).",
        soft_wrap=True,  # neither the fingerprint nor the path may fold
    )


@cert.command(name="fetch")
@click.option("--yes", "-y", is_flag=True, help="Trust the certificate without asking.")
@click.option(
    "--expect", metavar="SHA256", help="Trust it only if it has this fingerprint (scripts)."
)
@json_option
@click.pass_context
def fetch_cmd(ctx: click.Context, yes: bool, expect: str | None) -> Output:
    """Fetch the gateway's certificate, confirm its fingerprint and pin it in the profile.

    Run it again after replacing the gateway (its certificate changes with it).

    \b
    Example:
      teg --host 192.168.1.50 cert fetch
      teg --host 192.168.1.50 cert fetch --expect 9f86d081884c7d65...  # no prompt
    """
    settings = app.settings(ctx)
    host = settings.require_host()
    info = app.run(fetch(settings, host))
    trust(info, expect, yes)
    save_pin(settings, host, info.sha256_hex)
    data = {
        "profile": settings.profile_name,
        "host": host,
        "config_file": str(settings.config.path),
        **cert_data(info),
    }
    return Output(data, _render_fetch)


def _render_show(console: Console, data: dict[str, Any]) -> None:
    if data["pin_sha256"]:
        console.print(f"Pinned: {fingerprint_text(data['pin_sha256'])}")
    elif data["cafile"]:
        console.print(f"Verified against the CA file {data['cafile']}", soft_wrap=True)
    elif data["insecure"]:
        console.print("Not verified (insecure): run `teg cert fetch` to pin the certificate.")
    else:
        console.print("Nothing pinned: run `teg cert fetch`.")
    if data["presented_sha256"] is not None:
        console.print(f"Gateway presents: {fingerprint_text(data['presented_sha256'])}")
        console.print("Match." if data["matches"] else "Does not match.")


@cert.command()
@click.option("--check", is_flag=True, help="Also fetch the certificate and compare (exit 7).")
@json_option
@click.pass_context
def show(ctx: click.Context, check: bool) -> Output:
    """Show the pinned fingerprint (or CA file) of the profile.

    With --check, fetch what the gateway presents now; a different certificate ends with
    exit code 7.

    \b
    Example:
      teg cert show --check
    """
    settings = app.settings(ctx)
    data: dict[str, Any] = {
        "profile": settings.profile_name,
        "host": settings.host,
        "pin_sha256": settings.pin and normalise_fingerprint(settings.pin),
        "cafile": settings.cafile,
        "insecure": settings.insecure,
        "presented_sha256": None,
        "matches": None,
        "checked_at": None,
    }
    error = None
    if check:
        info = app.run(fetch(settings, settings.require_host()))
        data["presented_sha256"] = info.sha256_hex
        data["checked_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if data["pin_sha256"]:
            data["matches"] = data["pin_sha256"] == info.sha256_hex
            if not data["matches"]:
                error = CertificateMismatchError(data["pin_sha256"], info.sha256_hex)
    return Output(data, _render_show, error)
