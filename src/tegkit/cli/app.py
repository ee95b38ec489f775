"""Global settings of one `teg` run: options > environment > profile > defaults, and the gateway.

The group callback builds one `Settings` from the command line, the environment and the
active profile; commands ask it for a connected `Gateway`, the TLS policy or the password.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from tegkit.cli import config as configfile
from tegkit.cli import exit_codes
from tegkit.client import (
    Gateway,
    Insecure,
    PinnedCertificate,
    TlsPolicy,
    VerifyCertificate,
    gateway_url,
    has_kept_session,
)
from tegkit.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0

_AUTHORITY_END = re.compile(r"[/?#\\]")


def has_user_info(url: str) -> bool:
    """True when a host or URL carries a user name or password (`https://admin:pw@host`).

    >>> has_user_info("https://admin:secret@192.168.1.5"), has_user_info("[::1]:8443")
    (True, False)
    """
    rest = url.strip().split("://", 1)[-1]
    return "@" in _AUTHORITY_END.split(rest, 1)[0]


def check_no_user_info(url: str | None, name: str) -> None:
    """Refuse credentials inside a URL, without repeating them (they would end in logs).

    The message names where the URL came from (`name`), never the URL itself.
    """
    if url is not None and has_user_info(url):
        raise click.BadParameter(
            "a user name or password inside the URL is not allowed (the URL is not shown "
            "here, as it holds a secret). Give the host alone, and the password with "
            "--password or TEG_PASSWORD.",
            param_hint=name,
        )


@dataclass(slots=True)
class Settings:
    """Everything a command needs to reach a gateway, after precedence is applied."""

    config: configfile.CliConfig
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
    # Every Gateway this run made, so the group can say what the client did on its own
    # (started the sitemaster again after a login on firmware 1.x).
    gateways: list[Gateway] = field(default_factory=list)
    # Why the config file (or an option) could not be used; only `teg logout` runs then.
    config_problem: str | None = None
    # `teg logout` with an unreadable config and no --profile: every kept session goes.
    all_profiles: bool = False

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

    def session_files(self) -> list[Path]:
        """The kept sessions `teg logout` forgets: this profile's, or all of them."""
        if self.all_profiles:
            return sorted((self.config_dir / "sessions").glob("*.json"))
        return [self.session_file]

    @property
    def tls_name(self) -> str | None:
        """The name the certificate must carry: --sni, else the host's name or address."""
        if self.sni:
            return self.sni
        if not self.host:
            return None
        try:
            return gateway_url(self.host).host
        except InvalidInputError:
            return None

    def error_context(self) -> exit_codes.Context:
        """What a failure's message needs to give advice that fits this run."""
        return exit_codes.Context(
            where=self.host,
            password_given=self.password is not None,
            cafile=None if self.pin or self.insecure else self.cafile,
            tls_name=self.tls_name,
        )

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
        """True when `teg login` kept a session for this very gateway (not another host).

        A kept session that cannot be used (not JSON, a token no header may carry) is
        removed by the client; the user hears it here, as the next request logs in again.
        """
        path = self.session_file
        existed = path.is_file()
        kept = has_kept_session(path, host)
        if existed and not path.exists():
            click.echo(
                f"teg: warning: the kept session in {path} was unusable and has been removed "
                "(run with --verbose to see why).",
                err=True,
            )
        return kept

    def gateway(self, *, password: bool = True) -> Gateway:
        """A Gateway for this profile (use with `async with`); logs in lazily when needed.

        The session is kept in `session_file`, so a login serves later runs; without a kept
        session and a password, a terminal is asked for one.
        """
        host = self.require_host()
        if password and not self.has_session(host):
            self.ask_password()
        return self.track(
            Gateway(
                host,
                password=self.password if password else None,
                email=self.email,
                tls=self.tls_policy(),
                sni=self.sni,
                timeout_s=self.timeout_s,
                session_file=self.session_file,
            )
        )

    def track(self, gateway: Gateway) -> Gateway:
        """Remember a Gateway made for this run (see `restart_notes`)."""
        self.gateways.append(gateway)
        return gateway

    def restart_notes(self) -> list[str]:
        """What the client did to the system on its own: on firmware before 20.49 a login
        stops the Powerwalls, and the client starts them again (or says why it could not)."""
        notes = []
        for gateway in self.gateways:
            for restart in gateway.sitemaster_restarts:
                if restart.error is None and restart.running:
                    notes.append(
                        "note: on this firmware (before 20.49) a login stops the Powerwalls; "
                        "teg started the system again (/api/sitemaster/run) and the gateway "
                        "reports it running."
                    )
                else:
                    notes.append(
                        "warning: on this firmware (before 20.49) a login stops the "
                        "Powerwalls, and teg could not start the system again "
                        f"({restart.error or 'it does not report running'}). "
                        "Run `teg sitemaster run`."
                    )
        return notes


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
    check_profile_name(name)
    if params["profile"] and _needs_profile(ctx):
        require_profile(config, name)
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
    host = pick("host", "host")
    from_profile = not (_given(ctx, "host") and params["host"] is not None)
    check_no_user_info(
        host, f"profiles.{name}.host in {config.path}" if from_profile else "--host / TEG_HOST"
    )
    timeout = pick("timeout", "timeout_s")
    if timeout is not None and timeout <= 0:
        raise click.BadParameter("must be more than 0 seconds", param_hint="--timeout")
    return Settings(
        config=config,
        profile_name=name,
        host=host,
        password=pick("password", "password"),
        email=pick("email", "email") or "",
        cafile=tls["cafile"],
        pin=tls["pin"],
        insecure=bool(tls["insecure"]),
        sni=pick("sni", "sni"),
        timeout_s=float(timeout) if timeout is not None else DEFAULT_TIMEOUT_S,
        verbose=bool(params["verbose"]),
    )


def build_for_logout(ctx: click.Context, params: dict[str, Any], problem: str) -> Settings:
    """Settings for `teg logout` when the config file or an option cannot be used.

    Logging out must always work: the kept sessions are forgotten here, the gateway is not
    contacted (how to trust it came from the unusable settings), and the problem is said.
    """
    name = params["profile"] or None
    if name is not None:
        check_profile_name(name)  # it names the file to remove
    return Settings(
        config=configfile.CliConfig(configfile.config_path()),
        profile_name=name or configfile.DEFAULT_PROFILE,
        host=None,
        password=None,
        email="",
        cafile=None,
        pin=None,
        insecure=False,
        sni=None,
        timeout_s=DEFAULT_TIMEOUT_S,
        verbose=bool(params["verbose"]),
        config_problem=problem,
        all_profiles=name is None,
    )


def check_profile_name(name: str) -> None:
    """A profile name names files too (sessions/NAME.json): no folders, no hidden names."""
    if not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise click.BadParameter(
            "a profile name may not be empty, start with '.', or hold '/', '\\' or NUL",
            param_hint="--profile / TEG_PROFILE / default_profile",
        )


def require_profile(config: configfile.CliConfig, name: str) -> None:
    """A usage error naming the profiles there are, unless `name` is one of them."""
    if name in config.profiles:
        return
    known = ", ".join(sorted(config.profiles)) or "none yet"
    raise click.BadParameter(
        f"no profile named {name!r} in {config.path} (profiles: {known}); "
        "create it with `teg --profile NAME setup` (or `teg cloud token import`)",
        param_hint="--profile",
    )


def _needs_profile(ctx: click.Context) -> bool:
    # `teg setup` creates the profile it is given, and so does `teg cloud token import`
    # (the cloud group checks the rest of its commands); the others need it to exist.
    sub = ctx.invoked_subcommand
    return sub not in ("setup", "cert", "completion", "endpoints", "sim", "logout", "cloud", None)


__all__ = ["InvalidInputError", "Settings", "build", "run", "settings"]
