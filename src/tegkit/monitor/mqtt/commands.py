"""Commands from MQTT (`--mqtt-control`): a message on `{base}/{gateway}/set/{entity}` to the
`Setpoints` it asks for, and its application through the monitor's own change path.

Parsing is strict and names what is wrong: the topic, the entity and what it allows. A
payload is UTF-8 text of at most `MAX_PAYLOAD_BYTES`: what Home Assistant sends (the select's
option, the number, "ON"/"OFF") or the same value as JSON (`"backup"`, `20`, `true`).

Applying goes through the poller of the gateway exactly as the owner's plan does
(`monitor.automation.PollerActuator`): mode and reserve by `Poller.change_operation` (the
route, the request budget, the commit and the read-back the dashboard's control uses), grid
charging and storm watch through the monitor's Tesla cloud (--cloud-profile). The new value
reaches MQTT the normal way: the read-back becomes the live state, which is published.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Final, NamedTuple

from tegkit.automation.plan import Setpoints
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, MODE_LABELS, OperationMode
from tegkit.monitor.automation import PollerActuator
from tegkit.monitor.mqtt.discovery import (
    COMMANDS,
    GRID_CHARGING_COMMAND,
    MODE_COMMAND,
    RESERVE_COMMAND,
    RESERVE_MAX_APP_PERCENT,
    RESERVE_MIN_APP_PERCENT,
    STORM_WATCH_COMMAND,
    SWITCH_OFF,
    SWITCH_ON,
)
from tegkit.monitor.poller import Poller

#: the largest command payload read; anything longer is refused unread
MAX_PAYLOAD_BYTES: Final = 256

_JSON_START = ("{", "[", '"')
_JSON_WORDS = ("true", "false", "null")


class MqttCommand(NamedTuple):
    """A parsed command: which gateway, and the settings it asks for."""

    gateway: str
    setpoints: Setpoints


def _mode_allowed() -> str:
    return "one of " + ", ".join(f"{MODE_LABELS[mode]!r} ({mode.value})" for mode in CUSTOMER_MODES)


def _split(base: str, topic: str) -> tuple[str, str]:
    """(gateway, entity) of a command topic under `base`."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != base or parts[2] != "set" or not parts[1]:
        raise InvalidInputError(
            "MQTT command topic", f"{base}/<gateway>/set/<{'|'.join(COMMANDS)}>", topic
        )
    if parts[3] not in COMMANDS:
        raise InvalidInputError(f"{topic}: entity", "one of " + ", ".join(COMMANDS), parts[3])
    return parts[1], parts[3]


def _value(topic: str, payload: bytes) -> object:
    """The payload as text, or as the JSON value it spells."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(
            topic, f"a payload of at most {MAX_PAYLOAD_BYTES} bytes", f"{len(payload)} bytes"
        )
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInputError(topic, "UTF-8 text", payload[:32]) from None
    if text.startswith(_JSON_START) or text in _JSON_WORDS:
        try:
            value: object = json.loads(text)
        except ValueError:
            raise InvalidInputError(topic, "plain text or a JSON value", text) from None
        if isinstance(value, dict | list) or value is None:
            raise InvalidInputError(topic, "a single value, not a JSON object or list", text)
        return value
    return text


def _mode(topic: str, value: object) -> OperationMode:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for mode in CUSTOMER_MODES:
            if wanted in (mode.value.casefold(), MODE_LABELS[mode].casefold()):
                return mode
    raise InvalidInputError(f"{topic} (operation mode)", _mode_allowed(), value)


def _reserve(topic: str, value: object) -> float:
    allowed = (
        f"a number from {RESERVE_MIN_APP_PERCENT:g} to {RESERVE_MAX_APP_PERCENT:g} "
        "(percent, the app's scale)"
    )
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if (
        number is None
        or not math.isfinite(number)
        or not RESERVE_MIN_APP_PERCENT <= number <= RESERVE_MAX_APP_PERCENT
    ):
        raise InvalidInputError(f"{topic} (backup reserve)", allowed, value)
    return number


def _switch(topic: str, what: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.upper() == SWITCH_ON:
            return True
        if value.upper() == SWITCH_OFF:
            return False
    raise InvalidInputError(f"{topic} ({what})", f"{SWITCH_ON} or {SWITCH_OFF}", value)


def parse_command(
    base: str, topic: str, payload: bytes, gateways: Collection[str] | None = None
) -> MqttCommand:
    """The gateway and settings a command message asks for; InvalidInputError naming the
    topic, the entity and what it allows otherwise. With `gateways`, a gateway the monitor
    does not watch is refused too."""
    gateway, entity = _split(base, topic)
    if gateways is not None and gateway not in gateways:
        raise InvalidInputError(f"{topic}: gateway", "one of " + ", ".join(gateways), gateway)
    value = _value(topic, payload)
    if entity == MODE_COMMAND:
        return MqttCommand(gateway, Setpoints(mode=_mode(topic, value)))
    if entity == RESERVE_COMMAND:
        return MqttCommand(gateway, Setpoints(backup_reserve_app_percent=_reserve(topic, value)))
    if entity == GRID_CHARGING_COMMAND:
        return MqttCommand(gateway, Setpoints(grid_charging=_switch(topic, "grid charging", value)))
    assert entity == STORM_WATCH_COMMAND
    return MqttCommand(gateway, Setpoints(storm_watch=_switch(topic, "storm watch", value)))


async def apply_command(pollers: Mapping[str, Poller], command: MqttCommand) -> str:
    """Carry a command out on its gateway's poller, as the owner's plan does: checked values,
    the route, the poller's request budget, the read-back (which becomes the live state, so
    the new value is published back). Returns what was done, in words; raises what the
    change path raises (InvalidInputError, RequestBudgetExceededError, RouteUnavailableError,
    ChangeNotSeenError, GatewayError...), nothing sent when the values or budget refuse."""
    poller = pollers.get(command.gateway)
    if poller is None:
        raise InvalidInputError("gateway", "one of " + ", ".join(pollers), command.gateway)
    return await PollerActuator(poller).apply(command.setpoints)
