"""The `--mqtt...` options of `teg monitor`, and the `MqttSettings` they make.

The password never comes from an option (its value would show in `ps`): it comes from
TEG_MQTT_PASSWORD or from `--mqtt-password-file`, a file only its owner may read (0600).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from tegkit.errors import InvalidInputError
from tegkit.monitor.mqtt.bridge import (
    DEFAULT_MIN_INTERVAL_S,
    PASSWORD_ENV,
    USERNAME_ENV,
    MqttSettings,
    read_password_file,
)
from tegkit.monitor.mqtt.topics import DEFAULT_BASE, DEFAULT_DISCOVERY_PREFIX, check_gateway

F = TypeVar("F", bound=Callable[..., Any])

_FILE = click.Path(dir_okay=False, path_type=Path)
#: option name -> its default: given without --mqtt they would do nothing, so they are refused
_NEED_URL = {
    "mqtt_username": None,
    "mqtt_password_file": None,
    "mqtt_ca": None,
    "mqtt_cert": None,
    "mqtt_key": None,
    "mqtt_topic": DEFAULT_BASE,
    "mqtt_discovery_prefix": DEFAULT_DISCOVERY_PREFIX,
    "mqtt_control": False,
    "mqtt_min_interval_s": DEFAULT_MIN_INTERVAL_S,
}

_OPTIONS = (
    click.option(
        "--mqtt",
        "mqtt_url",
        envvar="TEG_MQTT_URL",
        show_envvar=True,
        metavar="URL",
        help="Publish every gateway's live values to this MQTT broker, with Home Assistant's "
        "discovery: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS).",
    ),
    click.option(
        "--mqtt-username",
        envvar=USERNAME_ENV,
        show_envvar=True,
        help=f"The broker's user name; its password from {PASSWORD_ENV} or --mqtt-password-file.",
    ),
    click.option(
        "--mqtt-password-file",
        type=_FILE,
        help="A file (mode 0600) whose first line is the broker's password.",
    ),
    click.option("--mqtt-ca", type=_FILE, help="CA certificates (PEM) to trust the broker by."),
    click.option("--mqtt-cert", type=_FILE, help="A client certificate (PEM) for the broker."),
    click.option("--mqtt-key", type=_FILE, help="The client certificate's private key (PEM)."),
    click.option(
        "--mqtt-topic",
        default=DEFAULT_BASE,
        show_default=True,
        metavar="BASE",
        help="The base topic: BASE/status, BASE/GATEWAY/state, BASE/GATEWAY/set/...",
    ),
    click.option(
        "--mqtt-discovery-prefix",
        default=DEFAULT_DISCOVERY_PREFIX,
        show_default=True,
        help="Home Assistant's discovery prefix.",
    ),
    click.option(
        "--mqtt-control",
        is_flag=True,
        help="Carry out commands from MQTT (mode, backup reserve, grid charging, storm watch) "
        "through the same checked change path as the dashboard; without it they are refused.",
    ),
    click.option(
        "--mqtt-min-interval-s",
        type=click.FloatRange(0, 86_400),
        default=DEFAULT_MIN_INTERVAL_S,
        show_default=True,
        help="Seconds between two messages on one topic; a newer value waits and the latest "
        "is sent when the interval ends.",
    ),
)


def mqtt_options(command: F) -> F:
    """Adds the --mqtt options to a click command (they arrive in its `opts`)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def settings_from_options(
    opts: Mapping[str, Any],
    gateways: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> MqttSettings | None:
    """The MqttSettings of the --mqtt options; None without --mqtt. click.BadParameter
    naming the option (or the file) when one is wrong, or a gateway's name that cannot be
    a topic level; the password is never shown."""
    env = os.environ if environ is None else environ
    url = opts.get("mqtt_url")
    if not url:
        for name, default in _NEED_URL.items():
            if opts.get(name, default) != default:
                flag = "--" + name.replace("_", "-")
                raise click.BadParameter("needs --mqtt URL (the broker)", param_hint=flag)
        return None
    try:
        for name in gateways:
            check_gateway(name)
        password = env.get(PASSWORD_ENV) or None
        if opts.get("mqtt_password_file") is not None:
            password = read_password_file(opts["mqtt_password_file"])
        return MqttSettings(
            url,
            username=opts.get("mqtt_username") or None,
            password=password,
            ca_file=opts.get("mqtt_ca"),
            cert_file=opts.get("mqtt_cert"),
            key_file=opts.get("mqtt_key"),
            base=opts.get("mqtt_topic") or DEFAULT_BASE,
            discovery_prefix=opts.get("mqtt_discovery_prefix") or DEFAULT_DISCOVERY_PREFIX,
            control=bool(opts.get("mqtt_control")),
            min_interval_s=float(opts.get("mqtt_min_interval_s", DEFAULT_MIN_INTERVAL_S)),
        )
    except InvalidInputError as exc:
        raise click.BadParameter(
            f"{exc.value!s}: expected {exc.allowed}", param_hint=exc.field
        ) from None


__all__ = ["mqtt_options", "settings_from_options"]
