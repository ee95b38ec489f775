"""Home Assistant's MQTT discovery for the monitor's gateways, and their state documents.

One Home Assistant device per gateway; its entities read the gateway's state document
(`{base}/{gateway}/state`, see `topics`) through a `value_template`. The configs follow Home
Assistant's documented discovery schema for each entity type (sensor, binary_sensor, select,
number, switch): `unique_id`, `default_entity_id`, the `device` block, `origin`, and an
`availability` list of two topics, the monitor's own and the gateway's, with
`availability_mode` "all": an entity is available only while the monitor runs and the gateway
answers.

Energy sensors are the gateway's own cumulative counters (Wh, `device_class` energy,
`state_class` total_increasing), which Home Assistant's Energy dashboard takes directly; they
are never integrated from power. A value the monitor does not know is JSON null in the state
document, which the template renders as "None": Home Assistant shows it as unknown, never as 0.

Each Powerwall the gateway reports (its battery blocks in /api/system_status, with a serial
number) is a device of its own linked to the gateway's by `via_device`, as Home Assistant's
own Powerwall integration shows them: energy remaining and full pack energy (Wh,
`energy_storage`) and power (W, > 0 discharging). Its values are keys of the gateway's state
document named by the serial number. A Powerwall the gateway stops reporting has its configs
emptied; the serial numbers with entities are kept retained on `{base}/{gateway}/powerwalls`,
so a later run can remove them once the gateway has left the fleet.

With control (`--mqtt-control`) the mode is a `select`, the backup reserve a `number` (app
scale) and grid charging and storm watch are `switch`es, each with a command topic; without
it they are read-only sensors, and the configs of the other variant are removed, so turning
control on or off leaves no orphan entity behind.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from tegkit.models.vocabulary import (
    COUNTERS,
    CUSTOMER_MODES,
    GRID_STATUS_LABELS,
    MODE_LABELS,
    GridStatusValue,
    MeterName,
    OperationMode,
    is_off_grid,
    power_name,
)
from tegkit.monitor.mqtt.topics import (
    DEFAULT_DISCOVERY_PREFIX,
    OFFLINE,
    ONLINE,
    Message,
    availability_topic,
    check_base,
    check_gateway,
    check_level,
    command_topic,
    powerwalls_topic,
    state_topic,
    status_topic,
)

#: Home Assistant's default payloads of a switch
SWITCH_ON: Final = "ON"
SWITCH_OFF: Final = "OFF"
#: the backup reserve a `number` offers, on the app's scale
RESERVE_MIN_APP_PERCENT: Final = 0.0
RESERVE_MAX_APP_PERCENT: Final = 100.0
RESERVE_STEP_APP_PERCENT: Final = 1.0

#: what the state document calls each value that is not a meter's power or a counter
SOE_KEY: Final = "soe_app_percent"
RESERVE_KEY: Final = "backup_reserve_app_percent"
GRID_UP_KEY: Final = "grid_up"  # "ON" on the grid, "OFF" off it, null when not known
GRID_STATUS_KEY: Final = "grid_status"  # the gateway's word
GRID_LABEL_KEY: Final = "grid_status_label"  # what a person reads
MODE_KEY: Final = "mode"  # the gateway's word
MODE_LABEL_KEY: Final = "mode_label"  # the app's name
FIRMWARE_KEY: Final = "firmware"
RUNNING_KEY: Final = "sitemaster_running"  # "ON" / "OFF" / null
CONNECTED_KEY: Final = "connected_to_tesla"  # "ON" / "OFF" / null
STATUS_KEY: Final = "status"  # the monitor's ok / stale / stopped / unreachable / unauthorized

_METER_TITLES: Final[dict[MeterName, str]] = {
    MeterName.SITE: "Grid",
    MeterName.BATTERY: "Battery",
    MeterName.LOAD: "Home",
    MeterName.SOLAR: "Solar",
}


@dataclass(frozen=True, slots=True)
class PowerwallInfo:
    """What Home Assistant shows of one Powerwall's device."""

    serial: str
    model: str | None = None  # the Powerwall's part number
    firmware: str | None = None  # its battery block's version


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What Home Assistant shows of one gateway's device; None where it is not known."""

    gateway: str  # the monitor's name of the gateway (a topic level)
    name: str | None = None  # shown in Home Assistant; the site's name, else the gateway's
    model: str | None = None  # the gateway's part number (the start of its DIN)
    serial: str | None = None  # the gateway's serial number (the end of its DIN)
    firmware: str | None = None
    configuration_url: str | None = None  # the monitor's dashboard
    powerwalls: tuple[PowerwallInfo, ...] = ()  # those the gateway reports, by serial


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity of a gateway's device: its platform, its key (object id, state key or
    command name) and the rest of its discovery config."""

    component: str  # sensor, binary_sensor, select, number, switch
    key: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    command: bool = False  # takes commands on {base}/{gateway}/set/{key}
    state: bool = True  # reads the state document
    powerwall: PowerwallInfo | None = None  # on this Powerwall's device, not the gateway's


def _value(key: str) -> str:
    return "{{ value_json." + key + " }}"


def _sensor(key: str, name: str, **config: Any) -> Entity:
    return Entity("sensor", key, name, {"value_template": _value(key), **config})


def _diagnostic(entity: Entity) -> Entity:
    return replace(entity, config={**entity.config, "entity_category": "diagnostic"})


def _binary(key: str, name: str, device_class: str) -> Entity:
    config = {
        "value_template": _value(key),
        "device_class": device_class,
        "payload_on": SWITCH_ON,
        "payload_off": SWITCH_OFF,
    }
    return Entity("binary_sensor", key, name, config)


def _counter_title(meter: MeterName, meaning: str) -> str:
    # the grid's counters say "from the grid" / "to the grid" already
    return (
        f"Energy {meaning}"
        if meter == MeterName.SITE
        else f"{_METER_TITLES[meter]} energy {meaning}"
    )


def _read_only() -> list[Entity]:
    """The entities every gateway has, control or not."""
    power = [
        _sensor(
            power_name(meter),
            f"{_METER_TITLES[meter]} power",
            device_class="power",
            state_class="measurement",
            unit_of_measurement="W",
            suggested_display_precision=0,
        )
        for meter in MeterName
    ]
    energy = [
        _sensor(
            counter.name,
            _counter_title(counter.meter, counter.meaning),
            device_class="energy",
            state_class="total_increasing",
            unit_of_measurement="Wh",
            suggested_display_precision=0,
        )
        for counter in COUNTERS
    ]
    return [
        *power,
        *energy,
        _sensor(
            SOE_KEY,
            "State of energy",
            device_class="battery",
            state_class="measurement",
            unit_of_measurement="%",
            suggested_display_precision=1,
        ),
        _binary(GRID_UP_KEY, "Grid", "power"),  # on: the grid is up
        # not an enum sensor: a status the gateway adds later is shown as it is, not refused
        _sensor(GRID_LABEL_KEY, "Grid status", icon="mdi:transmission-tower"),
        _diagnostic(_sensor(FIRMWARE_KEY, "Firmware", icon="mdi:chip")),
        _diagnostic(_binary(RUNNING_KEY, "System running", "running")),
        _diagnostic(_binary(CONNECTED_KEY, "Connected to Tesla", "connectivity")),
        _diagnostic(_sensor(STATUS_KEY, "Monitor status", icon="mdi:heart-pulse")),
    ]


#: the command names (the last level of a command topic) of the controls
MODE_COMMAND: Final = "mode"
RESERVE_COMMAND: Final = "backup_reserve"
GRID_CHARGING_COMMAND: Final = "grid_charging"
STORM_WATCH_COMMAND: Final = "storm_watch"
COMMANDS: Final = (MODE_COMMAND, RESERVE_COMMAND, GRID_CHARGING_COMMAND, STORM_WATCH_COMMAND)


def _settings_read_only() -> list[Entity]:
    """Mode and reserve without control: sensors."""
    return [
        _sensor(MODE_LABEL_KEY, "Operation mode", icon="mdi:home-battery"),
        _sensor(
            RESERVE_KEY,
            "Backup reserve",
            state_class="measurement",
            unit_of_measurement="%",
            suggested_display_precision=0,
            icon="mdi:battery-lock",
        ),
    ]


def _controls() -> list[Entity]:
    """Mode, reserve, grid charging and storm watch with control (--mqtt-control)."""
    return [
        Entity(
            "select",
            MODE_COMMAND,
            "Operation mode",
            {
                "value_template": _value(MODE_LABEL_KEY),
                "options": [MODE_LABELS[mode] for mode in CUSTOMER_MODES],
                "icon": "mdi:home-battery",
            },
            command=True,
        ),
        Entity(
            "number",
            RESERVE_COMMAND,
            "Backup reserve",
            {
                "value_template": _value(RESERVE_KEY),
                "min": RESERVE_MIN_APP_PERCENT,
                "max": RESERVE_MAX_APP_PERCENT,
                "step": RESERVE_STEP_APP_PERCENT,
                "mode": "slider",
                "unit_of_measurement": "%",
                "icon": "mdi:battery-lock",
            },
            command=True,
        ),
        # The gateway does not report these two locally (only Tesla's cloud knows them), so
        # the switches have no state topic: Home Assistant shows what it last sent
        # (optimistic), never a value the monitor did not read.
        Entity(
            "switch",
            GRID_CHARGING_COMMAND,
            "Grid charging",
            {
                "payload_on": SWITCH_ON,
                "payload_off": SWITCH_OFF,
                "optimistic": True,
                "icon": "mdi:transmission-tower-import",
            },
            command=True,
            state=False,
        ),
        Entity(
            "switch",
            STORM_WATCH_COMMAND,
            "Storm watch",
            {
                "payload_on": SWITCH_ON,
                "payload_off": SWITCH_OFF,
                "optimistic": True,
                "icon": "mdi:weather-lightning",
            },
            command=True,
            state=False,
        ),
    ]


#: each Powerwall's values: the live record's name (/api/live), the entity's name, its config
_POWERWALL_VALUES: Final[tuple[tuple[str, str, dict[str, Any]], ...]] = (
    (
        "energy_remaining_wh",
        "Energy remaining",
        {
            "device_class": "energy_storage",
            "state_class": "measurement",
            "unit_of_measurement": "Wh",
            "suggested_display_precision": 0,
        },
    ),
    (
        "full_pack_wh",
        "Full pack energy",
        {
            "device_class": "energy_storage",
            "state_class": "measurement",
            "unit_of_measurement": "Wh",
            "suggested_display_precision": 0,
        },
    ),
    (
        "power_w",
        "Power",
        {
            "device_class": "power",
            "state_class": "measurement",
            "unit_of_measurement": "W",
            "suggested_display_precision": 0,
        },
    ),
)
_UNSAFE_KEY = re.compile(r"[^a-z0-9]")


def serial_key(serial: str) -> str:
    """A serial number as part of a state key, object id and unique id: lower case letters
    and digits (anything else "_", and a short hash of the serial when something was, so
    two serial numbers never meet in one key)."""
    safe = _UNSAFE_KEY.sub("_", serial.lower())
    if safe != serial.lower():
        safe += "_" + hashlib.sha256(serial.encode("utf-8")).hexdigest()[:8]
    return safe


def powerwall_key(serial: str, value: str) -> str:
    """The state key (and entity key) of one value of one Powerwall."""
    return f"powerwall_{serial_key(serial)}_{value}"


def powerwall_entities(powerwall: PowerwallInfo) -> list[Entity]:
    """The sensors of one Powerwall's device."""
    return [
        replace(
            _sensor(powerwall_key(powerwall.serial, value), name, **config),
            powerwall=powerwall,
        )
        for value, name, config in _POWERWALL_VALUES
    ]


def entities(control: bool) -> list[Entity]:
    """A gateway's entities, with or without control."""
    return _read_only() + (_controls() if control else _settings_read_only())


def all_entities() -> list[Entity]:
    """Every entity a gateway may have (with and without control): what removal clears."""
    return _read_only() + _settings_read_only() + _controls()


# --- identifiers ----------------------------------------------------------------------------

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


def node_id(base: str, gateway: str) -> str:
    """The id of a gateway's device in discovery topics and unique ids: `{base}_{gateway}`,
    with anything but letters, digits, "_" and "-" replaced (and a short hash of the
    original when something was, so two names never meet in one id)."""
    raw = f"{base}_{gateway}"
    safe = _UNSAFE_ID.sub("_", raw)
    if safe != raw:
        safe += "_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return safe


def unique_id(base: str, gateway: str, entity: Entity) -> str:
    return f"{node_id(base, gateway)}_{entity.key}"


def discovery_topic(prefix: str, base: str, gateway: str, entity: Entity) -> str:
    """`{prefix}/{component}/{node_id}/{key}/config`, as Home Assistant subscribes to it."""
    return f"{prefix}/{entity.component}/{node_id(base, gateway)}/{entity.key}/config"


@functools.cache
def _origin() -> dict[str, str]:
    try:
        version = importlib.metadata.version("tegkit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return {"name": "tegkit"}
    return {"name": "tegkit", "sw_version": version}


def _powerwall_device(base: str, gateway: str, powerwall: PowerwallInfo) -> dict[str, Any]:
    gateway_id = node_id(base, gateway)
    block: dict[str, Any] = {
        "identifiers": [f"{gateway_id}_{serial_key(powerwall.serial)}"],
        "name": f"Powerwall {powerwall.serial}",
        "manufacturer": "Tesla",
        "serial_number": powerwall.serial,
        "via_device": gateway_id,
    }
    optional = {"model": powerwall.model, "sw_version": powerwall.firmware}
    block.update({k: v for k, v in optional.items() if v})
    return block


def _device(base: str, device: DeviceInfo) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [node_id(base, device.gateway)],
        "name": device.name or device.gateway,
        "manufacturer": "Tesla",
    }
    optional = {
        "model": device.model,
        "serial_number": device.serial,
        "sw_version": device.firmware,
        "configuration_url": device.configuration_url,
    }
    block.update({k: v for k, v in optional.items() if v})
    return block


def entity_config(base: str, device: DeviceInfo, entity: Entity) -> dict[str, Any]:
    """The discovery config of one entity of one gateway's device."""
    gateway = device.gateway
    uid = unique_id(base, gateway, entity)
    config: dict[str, Any] = {
        "name": entity.name,
        "unique_id": uid,
        "default_entity_id": f"{entity.component}.{uid.lower().replace('-', '_')}",
        "device": (
            _device(base, device)
            if entity.powerwall is None
            else _powerwall_device(base, gateway, entity.powerwall)
        ),
        "origin": _origin(),
        "availability": [
            {
                "topic": status_topic(base),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
            {
                "topic": availability_topic(base, gateway),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
        ],
        "availability_mode": "all",
        **entity.config,
    }
    if entity.state:
        config["state_topic"] = state_topic(base, gateway)
    if entity.command:
        config["command_topic"] = command_topic(base, gateway, entity.key)
    return config


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def _encode_list(items: list[str]) -> bytes:
    return json.dumps(items, separators=(",", ":")).encode()


def discovery_messages(
    device: DeviceInfo,
    base: str,
    prefix: str = DEFAULT_DISCOVERY_PREFIX,
    control: bool = False,
    previous: DeviceInfo | None = None,
) -> list[Message]:
    """The retained discovery configs of one gateway's device and of its Powerwalls'; with
    control the select, number and switches, without it their sensors, and the other
    variant's configs emptied (so a change of --mqtt-control leaves no orphan entity). The
    Powerwalls of `previous` (what was published before) that `device` no longer has are
    removed; the serial numbers with entities are retained on `powerwalls_topic`."""
    check_base(base)
    check_gateway(device.gateway)
    check_level(prefix, "--mqtt-discovery-prefix")
    gateway = device.gateway
    wanted = entities(control)
    keep = {(e.component, e.key) for e in wanted}
    gone = [e for e in all_entities() if (e.component, e.key) not in keep]
    serials = [p.serial for p in device.powerwalls]
    for powerwall in device.powerwalls:
        wanted += powerwall_entities(powerwall)
    if previous is not None:
        gone += [
            e for p in previous.powerwalls if p.serial not in serials for e in powerwall_entities(p)
        ]
    return [
        Message(
            discovery_topic(prefix, base, gateway, e),
            _encode(entity_config(base, device, e)),
            True,
        )
        for e in wanted
    ] + [
        *(Message(discovery_topic(prefix, base, gateway, e), b"", True) for e in gone),
        Message(powerwalls_topic(base, gateway), _encode_list(serials) if serials else b"", True),
    ]


def removal_messages(
    gateway: str,
    base: str,
    prefix: str = DEFAULT_DISCOVERY_PREFIX,
    powerwalls: Iterable[str] = (),
) -> list[Message]:
    """A gateway leaving: an empty retained config for each entity it may have, those of
    the Powerwalls with these serial numbers too (Home Assistant removes the entity, and
    the device with its last), and its retained state, availability and Powerwall list
    cleared."""
    check_base(base)
    check_gateway(gateway)
    every = all_entities()
    for serial in dict.fromkeys(powerwalls):
        every += powerwall_entities(PowerwallInfo(serial))
    clear = [Message(discovery_topic(prefix, base, gateway, e), b"", True) for e in every]
    return [
        *clear,
        Message(state_topic(base, gateway), b"", True),
        Message(availability_topic(base, gateway), b"", True),
        Message(powerwalls_topic(base, gateway), b"", True),
    ]


def powerwall_serials(payload: bytes) -> list[str]:
    """The serial numbers of a retained `powerwalls_topic` message; none when it is not a
    JSON list of serial numbers (whoever wrote it, nothing is removed on its word)."""
    try:
        found = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(found, list):
        return []
    return [s for s in found if isinstance(s, str) and _is_serial(s)]


def _is_serial(value: str) -> bool:
    return 0 < len(value) <= 100 and value.isprintable()


# --- state ----------------------------------------------------------------------------------


def _on_off(value: bool | None) -> str | None:
    return None if value is None else (SWITCH_ON if value else SWITCH_OFF)


def _mode_label(mode: str | None) -> str | None:
    """The app's name of a mode; a mode the vocabulary does not know as the gateway says it."""
    if mode is None or mode not in set(OperationMode):
        return mode
    return MODE_LABELS[OperationMode(mode)]


def _grid_label(status: str | None) -> str | None:
    """What a person reads for a grid status; an unknown status as the gateway says it."""
    if status is None or status not in set(GridStatusValue):
        return status
    return GRID_STATUS_LABELS[GridStatusValue(status)]


def state_document(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The state document of one gateway from its `/api/live` entry (`GatewayLive.to_json`):
    each value under its own name with its unit, null where the monitor does not know it."""
    reading: Mapping[str, Any] = entry.get("reading") or {}
    soe = entry.get("soe") or {}
    reserve = entry.get("backup_reserve") or {}
    grid_status = reading.get("grid_status")
    doc: dict[str, Any] = {
        "taken_at": entry.get("taken_at"),
        STATUS_KEY: entry.get("status"),
        **{power_name(meter): reading.get(power_name(meter)) for meter in MeterName},
        **{counter.name: reading.get(counter.name) for counter in COUNTERS},
        SOE_KEY: soe.get("app_percent"),
        RESERVE_KEY: reserve.get("app_percent"),
        GRID_STATUS_KEY: grid_status,
        GRID_LABEL_KEY: _grid_label(grid_status),
        GRID_UP_KEY: _on_off(None if (off := is_off_grid(grid_status)) is None else not off),
        MODE_KEY: entry.get("mode"),
        MODE_LABEL_KEY: _mode_label(entry.get("mode")),
        FIRMWARE_KEY: entry.get("version"),
        RUNNING_KEY: _on_off(entry.get("sitemaster_running")),
        CONNECTED_KEY: _on_off(entry.get("connected_to_tesla")),
    }
    for wall in _powerwall_entries(entry):
        for value, _, _ in _POWERWALL_VALUES:
            doc[powerwall_key(wall["serial"], value)] = wall.get(value)
    return doc


def _powerwall_entries(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Powerwalls of a live entry that have a serial number (the first of each serial):
    without one there is no stable id to give their entities."""
    found: dict[str, Mapping[str, Any]] = {}
    for wall in entry.get("powerwalls") or []:
        serial = wall.get("serial") if isinstance(wall, Mapping) else None
        if isinstance(serial, str) and _is_serial(serial) and serial not in found:
            found[serial] = wall
    return list(found.values())


def state_messages(base: str, entry: Mapping[str, Any]) -> list[Message]:
    """One gateway's retained state document and availability ("online" while its status
    is ok, "offline" when stale, stopped, unreachable or refused), from its `/api/live`
    entry."""
    gateway = check_gateway(str(entry.get("gateway")))
    available = ONLINE if entry.get("status") == "ok" else OFFLINE
    return [
        Message(state_topic(base, gateway), _encode(state_document(entry)), True),
        Message(availability_topic(base, gateway), available.encode(), True),
    ]


def device_info(entry: Mapping[str, Any], configuration_url: str | None = None) -> DeviceInfo:
    """A gateway's DeviceInfo from its `/api/live` entry: the site's name, the firmware, and
    the DIN split into the gateway's part number (the model) and its serial number."""
    din = entry.get("din") or None
    model, serial = None, din
    if isinstance(din, str) and "--" in din:  # "1232100-00-E--TG121000000000"
        part, _, number = din.partition("--")
        model, serial = part or None, number or din
    return DeviceInfo(
        gateway=str(entry.get("gateway")),
        name=entry.get("site_name") or None,
        model=model,
        serial=serial,
        firmware=entry.get("version") or None,
        configuration_url=configuration_url,
        powerwalls=tuple(
            PowerwallInfo(
                wall["serial"],
                model=wall.get("part_number") or None,
                firmware=wall.get("firmware") or None,
            )
            for wall in _powerwall_entries(entry)
        ),
    )
