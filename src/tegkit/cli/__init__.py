"""The `teg` command line: one click group, one module per command family.

Global options each have an environment variable (TEG_HOST, TEG_PASSWORD, ...); options of
subcommands get one too, named TEG_<COMMAND>_<OPTION> (click's auto_envvar_prefix).
Commands return data; `output.emit` prints it, as JSON with --json. Expected failures end
with a message and the exit code of `exit_codes`, without a traceback unless --verbose.
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from typing import Any

import click

from tegkit import errors
from tegkit.cli import app, exit_codes, output
from tegkit.cli.endpoints import endpoints
from tegkit.client import InsecureTlsWarning

_EPILOG = (
    "\b\nExample:\n"
    "  teg setup                       # first run: host, certificate, password\n"
    "  teg status\n"
    "  teg --json status | jq .soe_app_percent\n"
    "  TEG_HOST=192.168.1.50 TEG_PASSWORD=... teg set reserve 20\n\n"
    'Shell completion: eval "$(_TEG_COMPLETE=bash_source teg)" (or `teg completion bash`).\n\n'
    + exit_codes.epilog()
)


class _TegLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """tegkit's log lines on this run's stderr (the client never logs secrets)."""


def _log_to_stderr() -> None:
    logger = logging.getLogger("tegkit")
    for handler in [h for h in logger.handlers if isinstance(h, _TegLogHandler)]:
        logger.removeHandler(handler)  # one per run, on the stderr of this run
    handler = _TegLogHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _quiet_library() -> None:
    # Without a handler Python prints tegkit's warnings ("login failed") beside our own
    # message; the message says it once. --verbose shows the log.
    logger = logging.getLogger("tegkit")
    for handler in [h for h in logger.handlers if isinstance(h, _TegLogHandler)]:
        logger.removeHandler(handler)  # left by an earlier --verbose run in this process
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.NOTSET)
    # Settings.tls_policy says it in one line instead of the warning with a source line.
    warnings.filterwarnings("ignore", category=InsecureTlsWarning)


class TegGroup(click.Group):
    """The root group: turns tegkit errors into a message and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click prints these itself
        except errors.GatewayError as exc:
            settings = ctx.find_object(app.Settings)
            if settings is not None and settings.verbose:
                traceback.print_exc()
            context = ctx.meta.get(exit_codes.CONTEXT_KEY) or (
                settings.error_context() if settings is not None else exit_codes.Context()
            )
            output.say(exit_codes.message(exc, context))
            ctx.exit(exit_codes.exit_code(exc))
        except Exception as exc:
            # A bug, not a gateway's doing: one line instead of a traceback (--verbose shows
            # it). The exception's text is left out: it may quote a header or a token.
            settings = ctx.find_object(app.Settings)
            if settings is not None and settings.verbose:
                traceback.print_exc()
            click.echo(
                f"teg: unexpected {type(exc).__name__}: this is a bug in tegkit. "
                "Run the command again with --verbose to see where, and report it.",
                err=True,
            )
            ctx.exit(exit_codes.GATEWAY_ERROR)
        finally:
            settings = ctx.find_object(app.Settings)
            for note in settings.restart_notes() if settings is not None else ():
                output.say(note)


@click.group(
    cls=TegGroup,
    epilog=_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "TEG"},
)
@click.version_option(package_name="tegkit")
@click.option("--host", envvar="TEG_HOST", show_envvar=True, help="Gateway host, IP or URL.")
@click.option(
    "--password",
    envvar="TEG_PASSWORD",
    show_envvar=True,
    help="Customer password (prompted on a terminal when needed and not given).",
)
@click.option("--email", envvar="TEG_EMAIL", show_envvar=True, help="Email for the login.")
@click.option(
    "--cafile",
    envvar="TEG_CAFILE",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="Verify the gateway against this CA or certificate file.",
)
@click.option(
    "--pin",
    envvar="TEG_PIN",
    show_envvar=True,
    help="Accept only the certificate with this SHA-256 fingerprint (see `teg cert fetch`).",
)
@click.option(
    "--insecure",
    envvar="TEG_INSECURE",
    show_envvar=True,
    is_flag=True,
    help="Accept any certificate (not recommended; pin it instead).",
)
@click.option("--sni", envvar="TEG_SNI", show_envvar=True, help="TLS server name to send.")
@click.option(
    "--timeout",
    envvar="TEG_TIMEOUT",
    show_envvar=True,
    type=float,
    default=None,
    help=f"Seconds to wait for the gateway [default: {app.DEFAULT_TIMEOUT_S:g}].",
)
@click.option(
    "--profile",
    envvar="TEG_PROFILE",
    show_envvar=True,
    help="Profile of the config file to use (TEG_CONFIG points to another file).",
)
@click.option(
    "--json",
    "json_flag",
    envvar="TEG_JSON",
    show_envvar=True,
    is_flag=True,
    help="Print results as JSON.",
)
@click.option(
    "--verbose",
    "-v",
    envvar="TEG_VERBOSE",
    show_envvar=True,
    is_flag=True,
    help="Log requests and show tracebacks.",
)
@click.pass_context
def main(ctx: click.Context, /, **params: Any) -> None:
    """tegkit: the Tesla Energy Gateway (Powerwall 2) from the command line.

    Settings come from the command line, then the environment, then the profile in the
    config file (`teg setup` writes it), then defaults.
    """
    if params["json_flag"]:
        ctx.meta[output.JSON_KEY] = True
    if params["verbose"]:
        _log_to_stderr()
    else:
        _quiet_library()
    try:
        ctx.obj = app.build(ctx, params)
    except (errors.InvalidInputError, click.BadParameter) as exc:
        if isinstance(exc, click.BadParameter):
            problem = f"{exc.param_hint or 'option'}: {exc.format_message()}"
        else:
            problem = f"config file: {exc}"
        if ctx.invoked_subcommand == "logout":  # forgetting a session must always work
            ctx.obj = app.build_for_logout(ctx, params, problem)
        elif isinstance(exc, click.BadParameter):
            raise
        else:
            raise click.UsageError(problem) from None


@main.result_callback()
@click.pass_context
def _print(ctx: click.Context, /, result: object, **_params: Any) -> None:
    output.emit(ctx, result)


main.add_command(endpoints)


def _register() -> None:
    # Imported here, after the group exists, because the command modules import `main`'s
    # helpers from this package.
    from tegkit.cli import cert, change, dump, get, session, setup, sitemaster, status, watch
    from tegkit.cli.auto import auto
    from tegkit.cli.cloud import cloud
    from tegkit.cli.completion import completion

    for command in (
        setup.setup,
        cert.cert,
        status.status,
        watch.watch,
        get.get,
        change.set_,
        sitemaster.sitemaster,
        session.login,
        session.logout,
        cloud,
        auto,
        dump.dump,
        completion,
    ):
        main.add_command(command)
    from tegkit.cli.monitor import demo, monitor
    from tegkit.sim.cli import sim

    main.add_command(sim)
    main.add_command(monitor)
    main.add_command(demo)


_register()

__all__ = ["main"]
