"""Global settings of one `teg` run: options > environment > profile > defaults, and the gateway.

The group callback builds one `Settings` from the command line, the environment and the
active profile; commands ask it for a connected `Gateway`, the TLS policy or the password.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from tegkit.cli import config as configfile
from tegkit.client import Gateway, Insecure, PinnedCertificate, TlsPolicy, VerifyCertificate
from tegkit.client._auth import SessionFile
from tegkit.client._transport import base_url
from tegkit.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Settings:
    """Everything a command needs to reach a gateway, after precedence is applied."""

    config: configfile.Config
    profile_name: str
    host: str | None
    password: str | None
    email: str
    cafile: str | None
    pin: str | None
    insecure: bool
    sni: str | None
    timeout_s: float
    verbose: bool

    @property
    def profile(self) -> configfile.Profile:
        return self.config.profile(self.profile_name)

    @property
    def config_dir(self) -> Path:
        return self.config.path.parent

    @property
    def session_file(self) -> Path:
        """Where `teg login` keeps the session cookies of this profile (0600)."""
        return self.config_dir / "sessions" / f"{self.profile_name}.json"

    def require_host(self) -> str:
        if not self.host:
            raise click.UsageError(
                "no gateway given: pass --host, set TEG_HOST, or run `teg setup` to save a profile"
            )
        return self.host

    def tls_policy(self) -> TlsPolicy:
        """The certificate rule: a pin, a CA file, insecure (opt-in), or the system CAs."""
        if self.insecure:
            click.echo(
                "teg: warning: certificate checks are off (--insecure); "
                "pin the certificate with `teg cert fetch` instead.",
                err=True,
            )
            return Insecure()
        if self.pin:
            try:
                return PinnedCertificate(self.pin)
            except InvalidInputError as exc:
                raise click.BadParameter(
                    f"{exc.allowed}, as `teg cert show` prints it", param_hint="--pin / TEG_PIN"
                ) from None
        if self.cafile:
            return VerifyCertificate(Path(self.cafile).expanduser())
        return VerifyCertificate()

    def ask_password(self) -> str | None:
        """The password from option, environment or profile; else a prompt on a terminal."""
        if self.password is None and sys.stdin.isatty():
            self.password = click.prompt("Gateway password", hide_input=True, err=True)
        return self.password

    def has_session(self, host: str) -> bool:
        """True when `teg login` kept a session for this very gateway (not another host)."""
        kept = SessionFile(self.session_file, str(base_url(host))).load()
        return kept is not None and kept.active

    def gateway(self, *, password: bool = True) -> Gateway:
        """A Gateway for this profile (use with `async with`); logs in lazily when needed.

        The session is kept in `session_file`, so a login serves later runs; without a kept
        session and a password, a terminal is asked for one.
        """
        host = self.require_host()
        if password and not self.has_session(host):
            self.ask_password()
        return Gateway(
            host,
            password=self.password if password else None,
            email=self.email,
            tls=self.tls_policy(),
            sni=self.sni,
            timeout_s=self.timeout_s,
            session_file=self.session_file,
        )


def settings(ctx: click.Context | None = None) -> Settings:
    """The run's Settings (built by the `teg` group callback)."""
    ctx = ctx or click.get_current_context()
    found = ctx.find_object(Settings)
    if found is None:  # a command invoked on its own, outside the group (tests do not)
        raise click.UsageError("run this command through `teg`")
    return found


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine to completion."""
    return asyncio.run(coro)


def _given(ctx: click.Context, name: str) -> bool:
    """True when the option came from the command line or the environment."""
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def build(ctx: click.Context, params: dict[str, Any]) -> Settings:
    """Apply precedence: command line > environment > profile > defaults."""
    config = configfile.load()
    name = params["profile"] or config.default_profile or configfile.DEFAULT_PROFILE
    if params["profile"] and name not in config.profiles and _needs_profile(ctx):
        known = ", ".join(sorted(config.profiles)) or "none yet"
        raise click.BadParameter(
            f"no profile named {name!r} in {config.path} (profiles: {known}); "
            "create it with `teg --profile NAME setup`",
            param_hint="--profile",
        )
    profile = config.profile(name)

    # An empty value (TEG_HOST= in a script) means "not given", not "empty".
    params = {k: (None if v == "" else v) for k, v in params.items()}

    def pick(option: str, attr: str) -> Any:
        if _given(ctx, option) and params[option] is not None:
            return params[option]
        value = getattr(profile, attr)
        return value if value is not None else params[option]

    # The TLS choice comes whole from the highest level that makes one, so a pin in the
    # profile never silently survives `--insecure` on the command line or the other way round.
    tls_options = ("cafile", "pin", "insecure")
    given = [o for o in tls_options if _given(ctx, o) and params[o]]
    if len(given) > 1:
        raise click.UsageError(
            "choose one of --cafile, --pin and --insecure (or TEG_CAFILE, TEG_PIN, TEG_INSECURE)"
        )
    if given:
        tls = {o: (params[o] if o == given[0] else None) for o in tls_options}
    else:
        tls = {"cafile": profile.cafile, "pin": profile.pin, "insecure": profile.insecure}
    timeout = pick("timeout", "timeout_s")
    if timeout is not None and timeout <= 0:
        raise click.BadParameter("must be more than 0 seconds", param_hint="--timeout")
    return Settings(
        config=config,
        profile_name=name,
        host=pick("host", "host"),
        password=pick("password", "password"),
        email=pick("email", "email") or "",
        cafile=tls["cafile"],
        pin=tls["pin"],
        insecure=bool(tls["insecure"]),
        sni=pick("sni", "sni"),
        timeout_s=float(timeout) if timeout is not None else DEFAULT_TIMEOUT_S,
        verbose=bool(params["verbose"]),
    )


def _needs_profile(ctx: click.Context) -> bool:
    # `teg setup` creates the profile it is given; every other command needs it to exist.
    sub = ctx.invoked_subcommand
    return sub not in ("setup", "cert", "completion", "endpoints", "sim", None)


__all__ = ["InvalidInputError", "Settings", "build", "run", "settings"]
