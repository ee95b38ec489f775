"""Home Assistant discovery and the state documents of `teg monitor --mqtt`, without a broker
(the broker tests are in test_mqtt_bridge*): every config is checked against a JSON Schema
written from Home Assistant's documentation of each MQTT entity type, and the values the
entities read equal the monitor's /api/live, taken from a poller of the simulator.

`check_config(topic, config)` is shared with the broker tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_helpers import stepped_poller

from tegkit.cli import main
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import (
    COUNTERS,
    CUSTOMER_MODES,
    GRID_STATUS_LABELS,
    MODE_LABELS,
    GridStatusValue,
    MeterName,
    power_name,
)
from tegkit.monitor.live import GatewayLive
from tegkit.monitor.mqtt import discovery
from tegkit.monitor.mqtt.commands import parse_command
from tegkit.monitor.mqtt.discovery import (
    DeviceInfo,
    PowerwallInfo,
    device_info,
    discovery_messages,
    node_id,
    removal_messages,
    state_document,
    state_messages,
)
from tegkit.monitor.mqtt.topics import (
    MAX_LEVEL_BYTES,
    Message,
    availability_topic,
    check_base,
    check_gateway,
    check_level,
    command_subscription,
    command_topic,
    state_topic,
    status_topic,
)
from tegkit.sim import Simulator

# --- Home Assistant's discovery schema, from its documentation ------------------------------
# https://www.home-assistant.io/integrations/mqtt/ (discovery, device, origin, availability),
# .../sensor.mqtt/, .../binary_sensor.mqtt/, .../select.mqtt/, .../number.mqtt/,
# .../switch.mqtt/, and the sensor device classes' units and state classes
# (https://www.home-assistant.io/integrations/sensor/#device-class). Unknown keys are refused
# here, so a misspelt option fails the test instead of being ignored by Home Assistant.

_TEMPLATE = {"type": "string", "pattern": r"^\{\{.*\}\}$"}
_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^+#]+$"}

_DEVICE = {
    "type": "object",
    "properties": {
        "identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "connections": {"type": "array"},
        "name": {"type": "string"},
        "manufacturer": {"type": "string"},
        "model": {"type": "string"},
        "model_id": {"type": "string"},
        "serial_number": {"type": "string"},
        "sw_version": {"type": "string"},
        "hw_version": {"type": "string"},
        "suggested_area": {"type": "string"},
        "via_device": {"type": "string"},
        "configuration_url": {"type": "string", "pattern": r"^(https?|homeassistant)://"},
    },
    # "At least one of identifiers or connections must be present to identify the device."
    "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
    "additionalProperties": False,
}

_ORIGIN = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "sw_version": {"type": "string"},
        "support_url": {"type": "string"},
    },
    "required": ["name"],
    "additionalProperties": False,
}

_AVAILABILITY = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "topic": _TOPIC,
            "payload_available": {"type": "string"},
            "payload_not_available": {"type": "string"},
            "value_template": _TEMPLATE,
        },
        "required": ["topic"],
        "additionalProperties": False,
    },
}

_COMMON = {
    "name": {"type": ["string", "null"]},
    "unique_id": {"type": "string", "minLength": 1},
    # replaces object_id (Home Assistant 2025.10): "<domain>.<object id>"
    "default_entity_id": {"type": "string", "pattern": r"^[a-z_]+\.[a-z0-9_]+$"},
    "device": _DEVICE,
    "origin": _ORIGIN,
    "availability": _AVAILABILITY,
    "availability_topic": _TOPIC,
    "availability_mode": {"enum": ["all", "any", "latest"]},
    "availability_template": _TEMPLATE,
    "payload_available": {"type": "string"},
    "payload_not_available": {"type": "string"},
    "enabled_by_default": {"type": "boolean"},
    "entity_category": {"enum": ["config", "diagnostic"]},
    "entity_picture": {"type": "string"},
    "icon": {"type": "string", "pattern": r"^mdi:[a-z0-9-]+$"},
    "json_attributes_topic": _TOPIC,
    "json_attributes_template": _TEMPLATE,
    "encoding": {"type": "string"},
    "qos": {"enum": [0, 1, 2]},
}

_SENSOR_DEVICE_CLASSES = [
    "apparent_power",
    "aqi",
    "area",
    "atmospheric_pressure",
    "battery",
    "blood_glucose_concentration",
    "carbon_dioxide",
    "carbon_monoxide",
    "current",
    "data_rate",
    "data_size",
    "date",
    "distance",
    "duration",
    "energy",
    "energy_distance",
    "energy_storage",
    "enum",
    "frequency",
    "gas",
    "humidity",
    "illuminance",
    "irradiance",
    "moisture",
    "monetary",
    "nitrogen_dioxide",
    "nitrogen_monoxide",
    "nitrous_oxide",
    "ozone",
    "ph",
    "pm1",
    "pm10",
    "pm25",
    "power",
    "power_factor",
    "precipitation",
    "precipitation_intensity",
    "pressure",
    "reactive_energy",
    "reactive_power",
    "signal_strength",
    "sound_pressure",
    "speed",
    "sulphur_dioxide",
    "temperature",
    "timestamp",
    "volatile_organic_compounds",
    "volatile_organic_compounds_parts",
    "voltage",
    "volume",
    "volume_flow_rate",
    "volume_storage",
    "water",
    "weight",
    "wind_direction",
    "wind_speed",
]
_BINARY_DEVICE_CLASSES = [
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
]

#: the sensor device classes used here: their units and state classes (sensor docs' table)
_UNITS_AND_STATE_CLASSES: dict[str, tuple[list[str], list[str]]] = {
    "power": (["mW", "W", "kW", "MW", "GW", "TW", "BTU/h"], ["measurement"]),
    "energy": (
        [
            "J",
            "kJ",
            "MJ",
            "GJ",
            "mWh",
            "Wh",
            "kWh",
            "MWh",
            "GWh",
            "TWh",
            "cal",
            "kcal",
            "Mcal",
            "Gcal",
        ],
        ["total", "total_increasing"],
    ),
    # energy stored (a battery's): the energy units, measured, never total_increasing
    "energy_storage": (
        [
            "J",
            "kJ",
            "MJ",
            "GJ",
            "mWh",
            "Wh",
            "kWh",
            "MWh",
            "GWh",
            "TWh",
            "cal",
            "kcal",
            "Mcal",
            "Gcal",
        ],
        ["measurement", "total"],
    ),
    "battery": (["%"], ["measurement"]),
}


def _device_class_rules() -> list[dict[str, Any]]:
    return [
        {
            "if": {"properties": {"device_class": {"const": cls}}, "required": ["device_class"]},
            "then": {
                "properties": {
                    "unit_of_measurement": {"enum": units},
                    "state_class": {"enum": state_classes},
                },
                "required": ["unit_of_measurement"],
            },
        }
        for cls, (units, state_classes) in _UNITS_AND_STATE_CLASSES.items()
    ]


SCHEMAS: dict[str, dict[str, Any]] = {
    "sensor": {
        "type": "object",
        "properties": {
            **_COMMON,
            "state_topic": _TOPIC,
            "value_template": _TEMPLATE,
            "device_class": {"enum": _SENSOR_DEVICE_CLASSES},
            "state_class": {
                "enum": ["measurement", "measurement_angle", "total", "total_increasing"]
            },
            "unit_of_measurement": {"type": "string"},
            "suggested_display_precision": {"type": "integer", "minimum": 0},
            "expire_after": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "last_reset_value_template": _TEMPLATE,
            "options": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["state_topic"],
        "additionalProperties": False,
        "allOf": _device_class_rules(),
    },
    "binary_sensor": {
        "type": "object",
        "properties": {
            **_COMMON,
            "state_topic": _TOPIC,
            "value_template": _TEMPLATE,
            "device_class": {"enum": _BINARY_DEVICE_CLASSES},
            "payload_on": {"type": "string"},
            "payload_off": {"type": "string"},
            "expire_after": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "off_delay": {"type": "integer", "minimum": 0},
        },
        "required": ["state_topic"],
        "additionalProperties": False,
    },
    "select": {
        "type": "object",
        "properties": {
            **_COMMON,
            "command_topic": _TOPIC,
            "command_template": _TEMPLATE,
            "options": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "state_topic": _TOPIC,
            "value_template": _TEMPLATE,
            "optimistic": {"type": "boolean"},
            "retain": {"type": "boolean"},
        },
        "required": ["command_topic", "options"],
        "additionalProperties": False,
    },
    "number": {
        "type": "object",
        "properties": {
            **_COMMON,
            "command_topic": _TOPIC,
            "command_template": _TEMPLATE,
            "state_topic": _TOPIC,
            "value_template": _TEMPLATE,
            "min": {"type": "number"},
            "max": {"type": "number"},
            "step": {"type": "number", "minimum": 0.001},
            "mode": {"enum": ["auto", "box", "slider"]},
            "unit_of_measurement": {"type": "string"},
            "device_class": {"type": "string"},
            "optimistic": {"type": "boolean"},
            "payload_reset": {"type": "string"},
            "retain": {"type": "boolean"},
        },
        "required": ["command_topic"],
        "additionalProperties": False,
    },
    "switch": {
        "type": "object",
        "properties": {
            **_COMMON,
            "command_topic": _TOPIC,
            "command_template": _TEMPLATE,
            "state_topic": _TOPIC,
            "value_template": _TEMPLATE,
            "payload_on": {"type": "string"},
            "payload_off": {"type": "string"},
            "state_on": {"type": "string"},
            "state_off": {"type": "string"},
            "device_class": {"enum": ["outlet", "switch"]},
            "optimistic": {"type": "boolean"},
            "retain": {"type": "boolean"},
        },
        "required": ["command_topic"],
        "additionalProperties": False,
    },
}

_VALIDATORS = {
    component: jsonschema.Draft202012Validator(schema) for component, schema in SCHEMAS.items()
}
for _schema in SCHEMAS.values():
    jsonschema.Draft202012Validator.check_schema(_schema)

#: `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`
_DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>[^/+#]+)/(?P<component>[a-z_]+)/(?:(?P<node>[A-Za-z0-9_-]+)/)?"
    r"(?P<object>[A-Za-z0-9_-]+)/config$"
)


def check_config(topic: str, config: dict[str, Any]) -> str:
    """Check one discovery config against Home Assistant's schema; its component."""
    found = _DISCOVERY_TOPIC.match(topic)
    assert found is not None, f"not a discovery topic: {topic}"
    component = found["component"]
    assert component in SCHEMAS, component
    _VALIDATORS[component].validate(config)
    # "availability ... Must not be used together with availability_topic."
    assert not ("availability" in config and "availability_topic" in config)
    if "default_entity_id" in config:
        assert config["default_entity_id"].startswith(component + ".")
    if component == "number":
        assert config.get("min", 1) <= config.get("max", 100)
    return component


# --- helpers --------------------------------------------------------------------------------

BASE = "tegkit"


def _configs(messages: list[Message]) -> dict[str, dict[str, Any]]:
    """Non-empty discovery configs by topic."""
    return {
        m.topic: json.loads(m.payload)
        for m in messages
        if m.payload and m.topic.startswith("homeassistant/")
    }


def _rendered(template: str, doc: dict[str, Any]) -> str:
    """What Home Assistant renders for our one template form, `{{ value_json.KEY }}`: the
    value as Python text, so a null is "None" (an unknown state, not 0)."""
    found = re.fullmatch(r"\{\{ value_json\.([a-z][a-z0-9_]*) \}\}", template)
    assert found is not None, template
    assert found[1] in doc, f"the state document has no {found[1]}"
    return str(doc[found[1]])


def _by_key(messages: list[Message]) -> dict[str, dict[str, Any]]:
    return {topic.split("/")[-2]: config for topic, config in _configs(messages).items()}


DEVICE = DeviceInfo(
    "home",
    name="Home",
    model="1232100-00-E",
    serial="TG121000000000",
    firmware="24.4.0 3a6e6a6b",
    configuration_url="http://127.0.0.1:8080/",
)


# --- the configs ----------------------------------------------------------------------------


@pytest.mark.parametrize("control", [False, True])
def test_every_config_follows_home_assistants_schema(control: bool) -> None:
    messages = discovery_messages(DEVICE, BASE, control=control)
    configs = _configs(messages)
    assert configs and all(m.retain for m in messages)
    components = {check_config(topic, config) for topic, config in configs.items()}
    expected = {"sensor", "binary_sensor"} | ({"select", "number", "switch"} if control else set())
    assert components == expected
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    entity_ids = [c["default_entity_id"] for c in configs.values()]
    assert len(entity_ids) == len(set(entity_ids))
    for config in configs.values():
        # one device per gateway, the same block on each entity
        assert config["device"] == {
            "identifiers": ["tegkit_home"],
            "name": "Home",
            "manufacturer": "Tesla",
            "model": "1232100-00-E",
            "serial_number": "TG121000000000",
            "sw_version": "24.4.0 3a6e6a6b",
            "configuration_url": "http://127.0.0.1:8080/",
        }
        assert config["origin"]["name"] == "tegkit"
        # available only while the monitor runs and the gateway answers
        assert config["availability_mode"] == "all"
        assert [a["topic"] for a in config["availability"]] == [
            status_topic(BASE),
            availability_topic(BASE, "home"),
        ]
        if "state_topic" in config:
            assert config["state_topic"] == state_topic(BASE, "home")


def test_the_energy_dashboard_takes_the_gateways_counters_directly() -> None:
    sensors = _by_key(discovery_messages(DEVICE, BASE))
    # grid consumption and return, solar production, battery in and out, home consumption:
    # the gateway's own cumulative counters, never power integrated
    for counter in COUNTERS:
        config = sensors[counter.name]
        assert config["device_class"] == "energy"
        assert config["state_class"] == "total_increasing"
        assert config["unit_of_measurement"] in ("Wh", "kWh")
        assert config["value_template"] == "{{ value_json." + counter.name + " }}"
    for meter in MeterName:
        config = sensors[power_name(meter)]
        assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == (
            "power",
            "measurement",
            "W",
        )
    soe = sensors["soe_app_percent"]
    assert (soe["device_class"], soe["unit_of_measurement"]) == ("battery", "%")
    grid = sensors["grid_up"]
    assert grid["device_class"] == "power" and "/binary_sensor/" in _topic_of(grid)


def _topic_of(config: dict[str, Any]) -> str:
    for message in discovery_messages(DEVICE, BASE, control=True):
        if message.payload and json.loads(message.payload)["unique_id"] == config["unique_id"]:
            return message.topic
    return ""


def test_controls_only_with_control_and_the_other_variant_removed() -> None:
    read_only = discovery_messages(DEVICE, BASE, control=False)
    control = discovery_messages(DEVICE, BASE, control=True)
    # the same topics in both: each variant empties the other's configs
    assert {m.topic for m in read_only} == {m.topic for m in control}
    commands = {t: c for t, c in _configs(control).items() if "command_topic" in c}
    assert not any("command_topic" in c for c in _configs(read_only).values())
    emptied = {m.topic for m in read_only if not m.payload}
    assert set(commands) <= emptied
    by_component = {t.split("/")[1]: c for t, c in commands.items() if "/switch/" not in t}
    select, number = by_component["select"], by_component["number"]
    assert select["options"] == [MODE_LABELS[m] for m in CUSTOMER_MODES]
    assert (number["min"], number["max"], number["step"]) == (0, 100, 1)
    assert number["unit_of_measurement"] == "%"
    switches = {
        c["command_topic"].rsplit("/", 1)[1] for t, c in commands.items() if "/switch/" in t
    }
    assert switches == {"grid_charging", "storm_watch"}
    # every command topic is one the parser takes, and every option a valid command
    for config in commands.values():
        assert config["command_topic"].startswith(f"{BASE}/home/set/")
    for option in select["options"]:
        parse_command(BASE, select["command_topic"], option.encode())
    parse_command(BASE, number["command_topic"], b"100")


def test_removal_empties_every_config_a_gateway_ever_had() -> None:
    removal = removal_messages("home", BASE)
    assert all(m.retain and m.payload == b"" for m in removal)
    ever = {m.topic for c in (False, True) for m in discovery_messages(DEVICE, BASE, control=c)}
    removed = {m.topic for m in removal}
    assert ever <= removed
    # and the gateway's retained state and availability
    assert removed - ever == {state_topic(BASE, "home"), availability_topic(BASE, "home")}


def test_device_info_from_the_live_entry_splits_the_din() -> None:
    entry = {
        "gateway": "home",
        "site_name": "My Home",
        "version": "23.44.0",
        "din": "1232100-00-E--TG121000000000",
    }
    info = device_info(entry, "https://monitor.example/")
    assert info == DeviceInfo(
        "home", "My Home", "1232100-00-E", "TG121000000000", "23.44.0", "https://monitor.example/"
    )
    bare = device_info({"gateway": "home"})
    assert bare == DeviceInfo("home")
    # nothing known: the device block has only what is known, and is still valid
    for topic, config in _configs(discovery_messages(bare, BASE)).items():
        check_config(topic, config)
        assert config["device"] == {
            "identifiers": ["tegkit_home"],
            "name": "home",
            "manufacturer": "Tesla",
        }


# --- the Powerwalls -------------------------------------------------------------------------

WALLS = (
    PowerwallInfo("TG122000000001", model="3012170-05-B", firmware="223a56cd575b7b"),
    PowerwallInfo("TG122000000002"),
)
WALL_VALUES = ("energy_remaining_wh", "full_pack_wh", "power_w")


def _powerwall_configs(messages: list[Message]) -> dict[str, dict[str, Any]]:
    return {t: c for t, c in _configs(messages).items() if "/powerwall_" in t}


@pytest.mark.parametrize("control", [False, True])
def test_each_powerwall_is_a_device_via_the_gateway_with_one_sensor_per_value(
    control: bool,
) -> None:
    device = dataclasses.replace(DEVICE, powerwalls=WALLS)
    messages = discovery_messages(device, BASE, control=control)
    configs = _configs(messages)
    for topic, config in configs.items():
        check_config(topic, config)
    walls = _powerwall_configs(messages)
    assert len(walls) == len(WALLS) * len(WALL_VALUES)  # one entity per Powerwall per value
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    by_serial: dict[str, dict[str, dict[str, Any]]] = {}
    for topic, config in walls.items():
        assert topic.startswith("homeassistant/sensor/tegkit_home/powerwall_")
        serial = config["device"]["serial_number"]
        value = next(v for v in WALL_VALUES if config["unique_id"].endswith(v))
        by_serial.setdefault(serial, {})[value] = config
        # the gateway's node and the Powerwall's serial number make the unique id
        assert config["unique_id"] == f"tegkit_home_powerwall_{serial.lower()}_{value}"
        assert (
            config["value_template"]
            == "{{ value_json.powerwall_" + serial.lower() + "_" + value + " }}"
        )
        assert config["state_topic"] == state_topic(BASE, "home")
        assert config["device"]["via_device"] == "tegkit_home"  # the gateway's identifier
        assert config["device"]["identifiers"] == [f"tegkit_home_{serial.lower()}"]
        assert config["availability"] == configs[next(iter(configs))]["availability"]
    assert set(by_serial) == {w.serial for w in WALLS}
    first = by_serial["TG122000000001"]
    assert first["power_w"]["device"] == {
        "identifiers": ["tegkit_home_tg122000000001"],
        "name": "Powerwall TG122000000001",
        "manufacturer": "Tesla",
        "model": "3012170-05-B",
        "serial_number": "TG122000000001",
        "sw_version": "223a56cd575b7b",
        "via_device": "tegkit_home",
    }
    for value in ("energy_remaining_wh", "full_pack_wh"):
        config = first[value]
        assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == (
            "energy_storage",
            "measurement",
            "Wh",
        )
    power = first["power_w"]
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
        "power",
        "measurement",
        "W",
    )
    # the serial numbers with entities are kept for a later run's removal
    (listed,) = [m for m in messages if m.topic == "tegkit/home/powerwalls"]
    assert listed.retain and discovery.powerwall_serials(listed.payload) == [
        w.serial for w in WALLS
    ]


def test_a_powerwall_the_gateway_stops_reporting_is_removed() -> None:
    before = dataclasses.replace(DEVICE, powerwalls=WALLS)
    after = dataclasses.replace(DEVICE, powerwalls=WALLS[:1])
    published = _powerwall_configs(discovery_messages(before, BASE))
    messages = discovery_messages(after, BASE, previous=before)
    kept = _powerwall_configs(messages)
    emptied = {m.topic for m in messages if m.retain and not m.payload}
    gone = set(published) - set(kept)
    assert len(gone) == len(WALL_VALUES) and all("tg122000000002" in t for t in gone)
    assert gone <= emptied
    (listed,) = [m for m in messages if m.topic == "tegkit/home/powerwalls"]
    assert discovery.powerwall_serials(listed.payload) == ["TG122000000001"]
    # none left: the list is cleared too
    none = discovery_messages(DEVICE, BASE, previous=after)
    assert set(kept) <= {m.topic for m in none if not m.payload}
    assert [m.payload for m in none if m.topic == "tegkit/home/powerwalls"] == [b""]
    # a gateway leaving takes its Powerwalls' entities with it
    removal = {m.topic for m in removal_messages("home", BASE, powerwalls=["TG122000000002"])}
    assert gone <= removal and "tegkit/home/powerwalls" in removal


def test_powerwalls_without_a_serial_number_or_reported_twice_get_one_entity_set() -> None:
    wall = {"energy_remaining_wh": 5000.0, "full_pack_wh": 14000.0, "power_w": -70.0}
    entry = {
        "gateway": "home",
        "status": "ok",
        "powerwalls": [
            {**wall, "serial": "TG1-A"},
            {**wall, "serial": "TG1-A", "power_w": 1.0},  # the first of a serial counts
            {**wall, "serial": None},  # no stable id: shown in /api/live only
            {**wall, "serial": ""},
        ],
    }
    info = device_info(entry)
    assert [w.serial for w in info.powerwalls] == ["TG1-A"]
    doc = state_document(entry)
    configs = _powerwall_configs(discovery_messages(info, BASE))
    assert len(configs) == len(WALL_VALUES)
    for topic, config in configs.items():
        check_config(topic, config)
        # a serial that is no identifier is made one, with a hash so two never meet
        assert re.fullmatch(r"powerwall_tg1_a_[0-9a-f]{8}_[a-z_]+", topic.split("/")[-2])
        rendered = _rendered(config["value_template"], doc)
        assert rendered in {"5000.0", "14000.0", "-70.0"}
    assert discovery.powerwall_serials(b'["TG1", 3, "", null]') == ["TG1"]
    assert discovery.powerwall_serials(b"not json") == []
    assert discovery.powerwall_serials(b'{"TG1": 1}') == []


# --- the state ------------------------------------------------------------------------------


def _expected(entry: dict[str, Any]) -> dict[str, Any]:
    """What each state key must say, read from the /api/live entry directly."""
    reading = entry["reading"]
    grid = reading["grid_status"]
    return {
        **{power_name(m): reading[power_name(m)] for m in MeterName},
        **{c.name: reading[c.name] for c in COUNTERS},
        "soe_app_percent": entry["soe"]["app_percent"],
        "backup_reserve_app_percent": entry["backup_reserve"]["app_percent"],
        "grid_status": grid,
        "grid_status_label": GRID_STATUS_LABELS[GridStatusValue(grid)],
        "grid_up": "ON" if grid == GridStatusValue.CONNECTED else "OFF",
        "mode": entry["mode"],
        "mode_label": MODE_LABELS[entry["mode"]],
        "firmware": entry["version"],
        "sitemaster_running": "ON" if entry["sitemaster_running"] else "OFF",
        "connected_to_tesla": "ON" if entry["connected_to_tesla"] else "OFF",
        "status": entry["status"],
        **{
            f"powerwall_{wall['serial'].lower()}_{value}": wall[value]
            for wall in entry["powerwalls"] or []
            for value in ("energy_remaining_wh", "full_pack_wh", "power_w")
        },
    }


async def test_state_values_equal_the_live_json_of_a_polled_simulator() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        for outage in (False, True):
            if outage:
                sim.start_outage()
                await sim.advance(60)  # the next fast poll (STEPPED)
                await poller.poll_due()
            entry = poller.live.to_json()["gateways"][0]
            messages = state_messages(BASE, entry)
            assert [(m.topic, m.retain) for m in messages] == [
                (state_topic(BASE, "home"), True),
                (availability_topic(BASE, "home"), True),
            ]
            doc = json.loads(messages[0].payload)
            assert messages[1].payload == b"online"
            expected = _expected(entry)
            for key, value in expected.items():
                assert doc[key] == value, key
            # all known after a poll: the counters too (the Energy dashboard's sources)
            assert all(doc[c.name] is not None for c in COUNTERS)
            assert doc["grid_up"] == ("OFF" if outage else "ON")
            # what each entity's template renders from the document is the live value
            configs = _configs(discovery_messages(device_info(entry), BASE, control=True))
            for config in configs.values():
                if "value_template" in config:
                    key = config["value_template"].split(".")[1].split(" ")[0]
                    assert _rendered(config["value_template"], doc) == str(expected[key])
            # the device carries what the gateway reported of itself
            info = device_info(entry)
            assert info.firmware == entry["version"] and info.serial
            # and each Powerwall the gateway reported, with its values in the document
            assert entry["powerwalls"] and [w.serial for w in info.powerwalls] == [
                w["serial"] for w in entry["powerwalls"]
            ]
            assert len(_powerwall_configs(discovery_messages(info, BASE))) == 3 * len(
                entry["powerwalls"]
            )


def test_nothing_known_is_unknown_never_zero_and_the_gateway_offline() -> None:
    entry = GatewayLive(name="home", url="https://127.0.0.1").to_json(now=0.0, stale_after_s=30)
    state, available = state_messages(BASE, entry)
    doc = json.loads(state.payload)
    assert available.payload == b"offline"
    configs = _configs(discovery_messages(DEVICE, BASE, control=True))
    templates = [c["value_template"] for c in configs.values() if "value_template" in c]
    assert templates
    for template in templates:
        if "status" not in template:
            assert _rendered(template, doc) == "None"  # Home Assistant: unknown
    assert 0 not in doc.values() and "0" not in doc.values()


def test_unknown_words_from_the_gateway_are_shown_as_they_are() -> None:
    doc = state_document(
        {
            "gateway": "home",
            "status": "ok",
            "reading": {"grid_status": "SystemSomethingNew"},
            "mode": "some_new_mode",
        }
    )
    assert doc["grid_status_label"] == "SystemSomethingNew"
    assert doc["grid_up"] is None  # neither on nor off grid: unknown
    assert doc["mode_label"] == "some_new_mode"


def test_a_stale_gateway_is_offline() -> None:
    for status in ("stale", "stopped", "unreachable", "unauthorized"):
        _, available = state_messages(BASE, {"gateway": "home", "status": status})
        assert available.payload == b"offline"


# --- topics ---------------------------------------------------------------------------------


def test_topic_layout() -> None:
    assert status_topic("tegkit") == "tegkit/status"
    assert availability_topic("tegkit", "home") == "tegkit/home/availability"
    assert state_topic("tegkit", "home") == "tegkit/home/state"
    assert command_topic("tegkit", "home", "mode") == "tegkit/home/set/mode"
    assert command_subscription("tegkit") == "tegkit/+/set/+"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "+",
        "home#",
        "#",
        " home",
        "home ",
        "$SYS",
        "x" * (MAX_LEVEL_BYTES + 1),
        "é" * (MAX_LEVEL_BYTES // 2 + 1),
        "tab\there",
        "nul\x00",
        "\udcff",
    ],
)
def test_unsafe_topic_levels_are_refused_naming_the_option(bad: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_base(bad)
    assert refused.value.field == "--mqtt-topic"
    assert "'/'" in refused.value.allowed and "'+'" in refused.value.allowed
    with pytest.raises(InvalidInputError) as refused:
        check_gateway(bad)
    assert refused.value.field == "--gateway"
    assert "MQTT topic level" in refused.value.allowed
    with pytest.raises(InvalidInputError):
        discovery_messages(DeviceInfo(bad), BASE)
    with pytest.raises(InvalidInputError):
        discovery_messages(DEVICE, bad)
    with pytest.raises(InvalidInputError) as refused:
        discovery_messages(DEVICE, BASE, prefix=bad)
    assert refused.value.field == "--mqtt-discovery-prefix"
    with pytest.raises(InvalidInputError):
        removal_messages(bad, BASE)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=2, unique=True))
def test_any_accepted_names_give_valid_distinct_devices(names: list[str]) -> None:
    accepted = []
    for name in names:
        try:
            accepted.append(check_level(name, "gateway"))
        except InvalidInputError:
            continue
    if len(accepted) < 2:
        return
    ids = {node_id(BASE, name) for name in accepted}
    assert len(ids) == 2  # two names never share a device or an entity
    for name in accepted:
        messages = discovery_messages(DeviceInfo(name), BASE, control=True)
        for topic, config in _configs(messages).items():
            check_config(topic, config)
            assert (
                config["state_topic" if "state_topic" in config else "command_topic"].split("/")[1]
                == name
            )


# --- docs/home-assistant.md stays true ------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "home-assistant.md").read_text("utf-8")


def test_the_docs_options_are_teg_monitors() -> None:
    monitor = main.commands["monitor"]
    options = {opt for param in monitor.params for opt in param.opts}
    shown = set(re.findall(r"--mqtt[a-z-]*", DOC))
    assert "--mqtt-control" in shown and shown <= options
    assert {o for o in options if o.startswith("--mqtt")} <= shown  # each one explained


def test_the_docs_entity_table_is_what_discovery_publishes() -> None:
    section = DOC.split("## What appears in Home Assistant", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([A-Z][^|]*?) \| ", section, re.M)
    names = {e.name for e in discovery.all_entities()}
    names |= {e.name for e in discovery.powerwall_entities(PowerwallInfo("TG1"))}
    assert set(rows) == names


def test_the_docs_state_keys_are_the_state_documents() -> None:
    paragraph = DOC.split("The state document names each value", 1)[1].split("\n\n", 1)[0]
    shown = set(re.findall(r"`([a-z_]+)`", paragraph)) - {"null"}
    entry = GatewayLive(name="home", url="https://127.0.0.1").to_json(now=0.0, stale_after_s=30)
    assert shown == set(state_document(entry))
