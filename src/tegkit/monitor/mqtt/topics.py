"""The MQTT topic layout of `teg monitor --mqtt`, and the message type every part publishes.

Under the base topic (default "tegkit", `--mqtt-topic`):

- `{base}/status`: the monitor's availability, "online" while it runs, "offline" by its last
  will (retained);
- `{base}/{gateway}/availability`: "online" while the gateway answers, "offline" otherwise
  (retained);
- `{base}/{gateway}/state`: one JSON document per reading, the values named with their units
  as `/api/live` names them (`site_w`, `site_imported_wh`, `soe_app_percent`, ...);
- `{base}/{gateway}/set/{entity}`: commands (only with --mqtt-control), e.g. `set/mode`.

The base topic and each gateway name are single topic levels: a "/" would move the tree,
"+" and "#" are wildcards in subscriptions, and an empty level matches nothing one means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from tegkit.errors import InvalidInputError

#: the base topic when --mqtt-topic is not given
DEFAULT_BASE: Final = "tegkit"
#: Home Assistant's default discovery prefix
DEFAULT_DISCOVERY_PREFIX: Final = "homeassistant"
#: availability payloads (Home Assistant's defaults, so configs need not name them)
ONLINE: Final = "online"
OFFLINE: Final = "offline"
#: the longest base topic or gateway name accepted (in UTF-8 bytes); MQTT allows 65535 for a
#: whole topic, brokers and dashboards cope badly long before that
MAX_LEVEL_BYTES: Final = 64

_FORBIDDEN = re.compile(r"[/+#\x00-\x1f\x7f]")
_LEVEL_ALLOWED = f"1 to {MAX_LEVEL_BYTES} bytes of text without '/', '+', '#' or control characters"


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish: topic, payload bytes, and whether the broker keeps it."""

    topic: str
    payload: bytes
    retain: bool


def check_level(value: str, option: str) -> str:
    """`value` if it is a safe single topic level; else InvalidInputError naming `option`."""
    try:
        size_bytes = len(value.encode("utf-8"))
    except (AttributeError, UnicodeEncodeError):  # not text, or a lone surrogate
        size_bytes = -1
    if (
        not 0 < size_bytes <= MAX_LEVEL_BYTES
        or value != value.strip()
        or _FORBIDDEN.search(value)
        or value.startswith("$")  # "$SYS/..." and the like belong to the broker
    ):
        raise InvalidInputError(option, _LEVEL_ALLOWED, value)
    return value


def check_base(base: str) -> str:
    """The base topic (`--mqtt-topic`), checked."""
    return check_level(base, "--mqtt-topic")


def check_gateway(gateway: str) -> str:
    """A gateway's name (`--gateway NAME=URL` or its profile's name), checked: it is a topic
    level of every topic of that gateway."""
    try:
        return check_level(gateway, "--gateway")
    except InvalidInputError as exc:
        allowed = "a name usable as an MQTT topic level: " + exc.allowed
        raise InvalidInputError("--gateway", allowed, gateway) from None


def status_topic(base: str) -> str:
    """The monitor's own availability ("online", or "offline" by the last will)."""
    return f"{base}/status"


def availability_topic(base: str, gateway: str) -> str:
    """A gateway's availability: "online" while it answers, "offline" otherwise."""
    return f"{base}/{gateway}/availability"


def state_topic(base: str, gateway: str) -> str:
    """A gateway's state document (JSON, one per reading)."""
    return f"{base}/{gateway}/state"


def powerwalls_topic(base: str, gateway: str) -> str:
    """The serial numbers of a gateway's Powerwalls that have entities (a retained JSON list):
    what a later run needs to remove them once the gateway has left."""
    return f"{base}/{gateway}/powerwalls"


def command_topic(base: str, gateway: str, entity: str) -> str:
    """Where a command for one of a gateway's controls arrives (--mqtt-control)."""
    return f"{base}/{gateway}/set/{entity}"


def command_subscription(base: str) -> str:
    """The one subscription that receives every command under `base`."""
    return f"{base}/+/set/+"
