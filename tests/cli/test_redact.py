"""The redactor of `teg dump` over every real capture: by meaning, then by value, everywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tegkit import parse_response
from tegkit.cli.redact import (
    MAX_DEPTH,
    MIN_INNER_LENGTH,
    TOO_DEEP,
    Redactor,
    _field_names,
    kind_of_key,
)

SAMPLES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "vloschiavo-powerwall2"
).resolve()
CAPTURES = sorted(SAMPLES.rglob("*.json")) if SAMPLES.is_dir() else []
PLACEHOLDER = re.compile(r"<<[A-Z_ ]+(?:_\d+)?>>")

# Values in the captures that identify a site or a person, whatever key they sit under.
KNOWN_PERSONAL = [
    "4aa029b9-98d8-423d-90e7-6dbce9661a44",  # installer.json customer_id
    "Neurio-39546",  # meter host name (ip_address) ...
    "39546",  # ... holding the meter's short id
    "PWRview-12345",
    "Neurio-12345",  # also inside an error message's URL
    "OBB3364102752",  # meter device serial
    "T17F0004753",  # Powerwall serial
    "VVVVVVVVVVVVV",  # a device serial, also inside the key of its device map
    "00-11-22-33-44-55",  # a MAC address
    "192.168.90.2",  # an address inside the captures: redacted text, never contacted
    " ABC1234567890",  # a meter test's serial
    "x4jbH...XMP8w==",  # a login token
    "Home Energy Gateway",  # a site name
]


def _strings(data: Any) -> list[str]:
    """Every string in a JSON value: object keys and string values."""
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in [k, *_strings(v)]]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


@pytest.fixture(scope="module")
def redacted() -> tuple[Redactor, dict[Path, Any]]:
    """Every capture through both passes, as one dump: pass 1 over all, then pass 2."""
    if not CAPTURES:
        pytest.skip("reference captures not present")
    redactor = Redactor()
    first = {file: redactor.value(json.loads(file.read_bytes())) for file in CAPTURES}
    return redactor, {file: redactor.scrub(doc) for file, doc in first.items()}


def test_no_redacted_value_survives_anywhere_in_any_capture(
    redacted: tuple[Redactor, dict[Path, Any]],
) -> None:
    redactor, out = redacted
    values = redactor.redacted()
    assert len(values) > 40
    assert len(CAPTURES) > 150
    field_names = _field_names()
    # A model's field name is schema, never data; placeholders are ours.
    texts = {t for doc in out.values() for t in _strings(doc) if t not in field_names}
    everything = "\0".join(PLACEHOLDER.sub("\0", t) for t in texts)
    for value in values:
        if len(value) >= MIN_INNER_LENGTH:
            assert value not in everything, f"{value!r} survives inside a string"
        else:
            assert value not in texts, f"{value!r} survives as a whole string"


def test_known_personal_values_are_gone(redacted: tuple[Redactor, dict[Path, Any]]) -> None:
    _, out = redacted
    everything = "\n".join(json.dumps(doc, ensure_ascii=False) for doc in out.values())
    for value in KNOWN_PERSONAL:
        assert json.dumps(value)[1:-1] not in everything, value


def test_installer_customer_id_and_the_meter_host_are_redacted(
    redacted: tuple[Redactor, dict[Path, Any]],
) -> None:
    _, out = redacted
    installer = out[SAMPLES / "samples" / "installer.json"]
    assert PLACEHOLDER.fullmatch(installer["customer_id"])
    assert PLACEHOLDER.fullmatch(installer["phone"]) or installer["phone"].startswith("<<")
    meter = out[SAMPLES / "samples" / "api-meters-site.json"][0]
    assert "39546" not in json.dumps(meter)
    assert PLACEHOLDER.fullmatch(meter["connection"]["short_id"])
    assert PLACEHOLDER.fullmatch(meter["connection"]["ip_address"])
    readings = out[SAMPLES / "samples" / "meters.readings.err.json"]
    assert "Neurio-12345" not in json.dumps(readings)


def test_redacted_captures_still_parse(redacted: tuple[Redactor, dict[Path, Any]]) -> None:
    _, out = redacted
    checked = 0
    for file, doc in out.items():
        if file.parent.name not in ("running", "stopped"):
            continue  # firmware folders: every name is "a.b.c.json" for GET /api/a/b/c
        stem = file.name.removesuffix(".json")
        if "<<" in stem:
            continue  # a serial in the name: the path is data
        parse_response("GET", "/api/" + stem.replace(".", "/"), doc)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("customer_id", "ID"),
        ("PackageSerialNumber", "SERIAL"),
        ("serialNumber", "SERIAL"),
        ("gateway_din", "SERIAL"),
        ("followers", "SERIAL"),
        ("sensorId", "ID"),
        ("site_uid", "ID"),
        ("email", "EMAIL"),
        ("firstname", "NAME"),
        ("last_name", "NAME"),
        ("site_name", "NAME"),
        ("phone", "CONTACT"),
        ("street_address", "CONTACT"),
        ("zip", "CONTACT"),
        ("latitude", "LOCATION"),
        ("lng", "LOCATION"),
        ("token", "TOKEN"),
        ("old_password", "TOKEN"),
        ("client_key", "TOKEN"),
        ("mac", "MAC_ADDR"),
        ("hw_address", "MAC_ADDR"),
        ("bssid", "MAC_ADDR"),
        ("IP", "IP_ADDR"),
        ("ip_address", "IP_ADDR"),
        ("hostname", "IP_ADDR"),
        ("ssid", "WIFI_SSID"),
        ("networkName", "WIFI_SSID"),
        # Not personal: schema words that merely look alike.
        ("name", None),
        ("alert_name", None),
        ("grid_code", None),
        ("mask", None),
        ("partNumber", None),
        ("lastTeslaConnected", None),
        ("instant_power", None),
    ],
)
def test_keys_are_read_for_their_meaning(key: str, kind: str | None) -> None:
    assert kind_of_key(key) == kind


def test_values_are_replaced_inside_other_strings_and_keys() -> None:
    r = Redactor()
    first = r.value(
        [
            {"short_id": "39546", "ip_address": "Neurio-39546", "note": "meter 39546 is up"},
            {"customer_id": "c7", "serial": "TG999999"},
            {"TG999999": {"x": 1}, "a": "id c7 and TG999999", "latitude": 37.42},
        ]
    )
    out = r.scrub(first)
    text = json.dumps(out)
    for value in ("39546", "Neurio-39546", "TG999999", "37.42"):
        assert value not in text, value
    assert out[0]["note"] == f"meter {out[0]['short_id']} is up"
    assert out[2]["latitude"].startswith("<<LOCATION_")
    # "c7" is shorter than 4 characters: replaced where it is a whole value only.
    assert out[1]["customer_id"].startswith("<<ID_") and "c7" in out[2]["a"]
    assert out[2][out[1]["serial"]] == {"x": 1}


def test_placeholders_are_never_rewritten() -> None:
    r = Redactor()
    r.placeholder("SERIAL", "SERIAL")  # a value that is also part of every placeholder's text
    r.placeholder("ID", "1")
    assert r.scrub_text("<<SERIAL_1>> and <<ID_1>>") == "<<SERIAL_1>> and <<ID_1>>"
    assert r.scrub_text("a SERIAL b") == "a <<SERIAL_1>> b"


def test_many_redacted_values_and_long_tokens_stay_fast_enough_to_finish() -> None:
    r = Redactor()
    for n in range(5000):
        r.placeholder("ID", f"{n:08d}-aaaa-bbbb")
    token = "t" * 5000
    r.placeholder("TOKEN", token)
    text = "x 00004999-aaaa-bbbb y " + token + " z"
    assert r.scrub_text(text) == "x <<ID_5000>> y <<TOKEN_1>> z"


def test_data_nested_deeper_than_any_answer_is_left_out_not_recursed_into() -> None:
    deep: Any = {"serial": "TG5555"}
    for _ in range(5000):
        deep = [{"a": deep}]
    r = Redactor()
    out = r.scrub(r.document("/api/x", {"din": "1232100-00-E--TG5555", "deep": deep}))
    assert "TG5555" not in json.dumps(out)
    node = out["deep"]
    for _ in range((MAX_DEPTH - 1) // 2):
        node = node[0]["a"]
    assert TOO_DEEP in json.dumps(node) and len(json.dumps(out)) < 2000
