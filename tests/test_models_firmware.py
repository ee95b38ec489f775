"""Models against what a newer firmware may send: every capture with keys removed, nulled,
re-cased, renamed and added, null for a list, new enumeration values."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tegkit import catalog, models
from tegkit.errors import ParseError
from tegkit.models import parse_response
from tegkit.models._lenient import fold
from test_models import RESPONSES, SAMPLES, endpoint_for

Case = tuple[Path, str, str, Any]  # file, method, path, model type


def _modelled() -> list[Case]:
    out = []
    for file in RESPONSES:
        found = endpoint_for(file)
        assert found is not None
        model_type = models.model_for(found[0], found[1])
        if model_type is not None:
            out.append((file, found[0], found[1], model_type))
    return out


MODELLED = _modelled()
needs_captures = pytest.mark.skipif(not MODELLED, reason="reference captures not present")


def _members(t: mi.Type) -> tuple[mi.Type, ...]:
    return t.types if isinstance(t, mi.UnionType) else (t,)


def _nullable(t: mi.Type) -> bool:
    return any(isinstance(m, mi.NoneType | mi.AnyType) for m in _members(t))


def _container(t: mi.Type, value: Any) -> mi.Type | None:
    """The member of `t` that holds `value` (a dict or a list); None inside free JSON."""
    wanted = (mi.StructType, mi.DictType) if isinstance(value, dict) else (mi.ListType,)
    return next((m for m in _members(t) if isinstance(m, wanted)), None)


def _objects(doc: Any, t: mi.Type | None, path: tuple[Any, ...] = ()) -> Iterator[Any]:
    """(path, object, type) of every JSON object in `doc`: its StructType, its DictType (keys
    that are data: serials, grid codes), or None inside free JSON."""
    here = None if t is None else _container(t, doc)
    if isinstance(doc, dict):
        yield path, doc, here if isinstance(here, mi.StructType | mi.DictType) else None
        for key, item in doc.items():
            if isinstance(here, mi.StructType):
                inner = next((f.type for f in here.fields if f.encode_name == key), None)
            elif isinstance(here, mi.DictType):
                inner = here.value_type
            else:
                inner = None
            yield from _objects(item, inner, (*path, key))
    elif isinstance(doc, list):
        inner = here.item_type if isinstance(here, mi.ListType) else None
        for index, item in enumerate(doc):
            yield from _objects(item, inner, (*path, index))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _field(struct: mi.StructType, key: str) -> mi.Field:
    found = next((f for f in struct.fields if f.encode_name == key), None)
    assert found is not None, f"{struct.cls.__name__} has no field {key!r}: capture not modelled"
    return found


def _ambiguous(struct: mi.StructType, key: str) -> bool:
    return sum(fold(f.encode_name) == fold(key) for f in struct.fields) > 1


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first.lower() + "".join(word[:1].upper() + word[1:] for word in rest)


RECASINGS: dict[str, Callable[[str], str]] = {
    "UPPER": str.upper,
    "Title_Snake": lambda key: "_".join(w[:1].upper() + w[1:] for w in key.split("_")),
    "camelCase": _camel,
    "kebab-case": lambda key: key.replace("_", "-"),
    "sWAPCASE": str.swapcase,
}


def _parse(case: Case, doc: Any) -> Any:
    return parse_response(case[1], case[2], json.dumps(doc).encode())


@st.composite
def firmware_changes(draw: st.DrawFn) -> tuple[Case, Any, str, Any]:
    """A capture with one change a newer firmware could make, and the expected outcome.

    The outcome is "same" (parses to the model of the capture), "parses", or the name of the
    required field whose absence must be reported.
    """
    case = draw(st.sampled_from(MODELLED))
    doc = json.loads(case[0].read_bytes())
    found = list(_objects(doc, mi.type_info(case[3])))
    assume(found)
    _, obj, here = draw(st.sampled_from(found))
    struct = here if isinstance(here, mi.StructType) else None
    kinds = ["add"] + (["remove", "null", "rename", "recase"] if obj else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "add":
        assume(not isinstance(here, mi.DictType))  # a new entry of data, not a new field
        value = draw(st.sampled_from([None, 1, -2.5, "new", True, [], [1], {}, {"a": {"b": 1}}]))
        obj[f"added_by_firmware_{draw(st.integers(0, 9))}"] = value
        # Inside typed objects a new key changes nothing; in free data it is data.
        return case, doc, kind, "same" if struct is not None else "parses"
    key = draw(st.sampled_from(sorted(obj)))
    if struct is None:
        # Keys of data (meter serials, grid codes) or free JSON: only removal is a safe edit.
        assume(kind == "remove")
        del obj[key]
        return case, doc, kind, "parses"
    field = _field(struct, key)
    if kind == "recase":
        style = draw(st.sampled_from(sorted(RECASINGS)))
        new = RECASINGS[style](key)
        taken = set(obj) | {f.encode_name for f in struct.fields}
        assume(new != key and new not in taken)
        obj[new] = obj.pop(key)
        return (
            case,
            doc,
            f"{kind} {key!r} -> {new!r}",
            ("parses" if _ambiguous(struct, key) else "same"),
        )
    if kind == "null":
        obj[key] = None
        return case, doc, kind, "parses" if _nullable(field.type) else key
    if kind == "rename":  # a new name that cannot be guessed: the old field is missing
        obj[f"{key}_renamed_v2"] = obj.pop(key)
    else:
        del obj[key]
    return case, doc, f"{kind} {key!r}", key if field.required else "parses"


@needs_captures
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(firmware_changes())
def test_every_capture_survives_what_a_newer_firmware_changes(
    change: tuple[Case, Any, str, Any],
) -> None:
    case, doc, kind, expected = change
    label = f"{case[0].relative_to(SAMPLES)}: {kind}"
    event(expected if expected in ("same", "parses") else "a required field is gone")
    if expected in ("same", "parses"):
        try:
            parsed = _parse(case, doc)
        except ParseError as exc:
            raise AssertionError(f"{label} should parse: {exc}") from exc
        if expected == "same":
            assert parsed == parse_response(case[1], case[2], case[0].read_bytes()), label
        return
    with pytest.raises(ParseError) as caught:
        _parse(case, doc)
    assert f"`{expected}`" in str(caught.value) or f".{expected}`" in str(caught.value), label
    assert caught.value.endpoint == f"{case[1]} {case[2]}"


def _recase_all(doc: Any, t: mi.Type | None, style: Callable[[str], str]) -> Any:
    """Every typed key re-cased (keys two fields share when folded are left exact)."""
    here = None if t is None else _container(t, doc)
    if isinstance(doc, list):
        inner = here.item_type if isinstance(here, mi.ListType) else None
        return [_recase_all(item, inner, style) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, item in doc.items():
        if isinstance(here, mi.StructType):
            field = _field(here, key)
            new = key if _ambiguous(here, key) else style(key)
            out[new] = _recase_all(item, field.type, style)
        elif isinstance(here, mi.DictType):
            out[key] = _recase_all(item, here.value_type, style)
        else:
            out[key] = item
    return out


@needs_captures
@pytest.mark.parametrize("style", sorted(RECASINGS))
def test_every_capture_reads_the_same_with_every_key_recased(style: str) -> None:
    for case in MODELLED:
        original = parse_response(case[1], case[2], case[0].read_bytes())
        doc = _recase_all(json.loads(case[0].read_bytes()), mi.type_info(case[3]), RECASINGS[style])
        parsed = _parse(case, doc)
        assert parsed == original, case[0].relative_to(SAMPLES)
        if isinstance(parsed, models.Model):
            assert parsed.raw == doc  # .raw keeps what was sent


def _required_only(doc: Any, t: mi.Type | None) -> Any:
    """Every optional field of every typed object removed."""
    here = None if t is None else _container(t, doc)
    if isinstance(doc, list):
        inner = here.item_type if isinstance(here, mi.ListType) else None
        return [_required_only(item, inner) for item in doc]
    if not isinstance(doc, dict):
        return doc
    if isinstance(here, mi.StructType):
        fields = {f.encode_name: f for f in here.fields}
        return {
            key: _required_only(item, fields[key].type)
            for key, item in doc.items()
            if fields[key].required
        }
    if isinstance(here, mi.DictType):
        return {key: _required_only(item, here.value_type) for key, item in doc.items()}
    return doc


@needs_captures
def test_every_capture_parses_with_only_its_required_fields() -> None:
    for case in MODELLED:
        doc = _required_only(json.loads(case[0].read_bytes()), mi.type_info(case[3]))
        _parse(case, doc)


# The fields an endpoint's purpose depends on. Everything else is optional and takes null;
# growing this set breaks older or newer firmware, so it is a decision, not an accident.
REQUIRED = {
    "AuthToggleSupported": {"toggle_auth_supported"},
    "ConnTestResult": {"pass"},
    "CtReading": {"ct"},
    "GridFault": {"alert_name"},
    "GridRegions": {"regions"},
    "GridStatus": {"grid_status"},
    "InstallerCompany": {"company"},
    "IslandingMode": {"island_mode"},
    "LoginResponse": {"token"},
    "Meter": {"serial"},
    "MeterAggregate": {"instant_power"},
    "MeterCt": {"type"},
    "SiteName": {"site_name"},
    "Sitemaster": {"running"},
    "StateOfEnergy": {"percentage"},
    "UpdateStatus": {"state"},
}


def _structs() -> dict[str, mi.StructType]:
    found: dict[str, mi.StructType] = {}

    def walk(t: mi.Type) -> None:
        for m in _members(t):
            if isinstance(m, mi.ListType):
                walk(m.item_type)
            elif isinstance(m, mi.DictType):
                walk(m.value_type)
            elif isinstance(m, mi.StructType) and m.cls.__name__ not in found:
                found[m.cls.__name__] = m
                for f in m.fields:
                    walk(f.type)

    for name in sorted({e.model for e in catalog.ENDPOINTS if e.model}):
        walk(mi.type_info(models.MODELS[name]))
    return found


def test_only_the_fields_an_endpoint_needs_are_required_and_the_rest_take_null() -> None:
    structs = _structs()
    assert len(structs) > 40
    required = {
        name: {f.encode_name for f in s.fields if f.required}
        for name, s in structs.items()
        if any(f.required for f in s.fields)
    }
    assert required == REQUIRED
    for name, struct in structs.items():
        for f in struct.fields:
            if not f.required:
                assert _nullable(f.type), f"{name}.{f.encode_name} does not take null"


def _container_models() -> list[tuple[str, str, Any]]:
    out = []
    for endpoint in catalog.ENDPOINTS:
        if not endpoint.model or endpoint.params:
            continue
        model_type = models.MODELS[endpoint.model]
        info = mi.type_info(model_type)
        if any(isinstance(m, mi.ListType | mi.DictType) for m in _members(info)):
            out.append((endpoint.method, endpoint.path, info))
    return out


CONTAINERS = _container_models()


@pytest.mark.parametrize(("method", "path", "info"), CONTAINERS, ids=[c[1] for c in CONTAINERS])
def test_a_list_endpoint_answering_null_reads_as_empty(method: str, path: str, info: Any) -> None:
    # Go encodes an empty (nil) slice or map as null.
    parsed = parse_response(method, path, b"null")
    expected: Any = [] if any(isinstance(m, mi.ListType) for m in _members(info)) else {}
    assert parsed == expected
    assert parse_response(method, path, None) == expected


def test_null_for_an_object_endpoint_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="GET /api/system_status/soe"):
        parse_response("GET", "/api/system_status/soe", b"null")


def test_null_lists_inside_a_nested_map_read_as_empty() -> None:
    body = b'{"Australia": {"*": {"ASS4777.2": null}}, "Japan": null}'
    codes = parse_response("GET", "/api/site_info/grid_codes", body)
    assert codes == {"Australia": {"*": {"ASS4777.2": []}}, "Japan": {}}


def test_recased_keys_rule() -> None:
    agg = parse_response(
        "GET",
        "/api/meters/aggregates",
        b'{"site": {"Instant_Power": 5, "instantPower": 6, "ENERGY-EXPORTED": 7,'
        b' "energyImported": 8, "instant_power_v2": 9}}',
    )
    assert agg.site is not None
    # The first re-cased spelling wins; a new name is not guessed.
    assert agg.site.instant_power_w == 5
    assert agg.site.energy_exported_wh == 7 and agg.site.energy_imported_wh == 8
    assert agg.raw["site"]["instant_power_v2"] == 9  # still reachable
    recased = parse_response(
        "GET", "/api/meters/aggregates", b'{"Site": {"instant_power": 1}, "Pool": {"Power": 1}}'
    )
    assert [name for name, _ in recased.meters()] == ["site"]  # read once, under its name
    exact = parse_response(
        "GET", "/api/meters/aggregates", b'{"site": {"INSTANT_POWER": 1, "instant_power": 2}}'
    )
    assert exact.site is not None and exact.site.instant_power_w == 2  # an exact key wins
    # "Type" and "type" of a Powerwall fold alike: a third spelling matches neither.
    walls = parse_response(
        "GET", "/api/powerwalls", b'{"powerwalls": [{"TYPE": "x", "PackageSerialNumber": "S"}]}'
    )
    assert walls.powerwalls is not None
    wall = walls.powerwalls[0]
    assert wall.Type is None and wall.type is None and wall.package_serial_number == "S"


def test_a_missing_required_field_names_the_field_and_the_endpoint() -> None:
    with pytest.raises(ParseError) as caught:
        parse_response("GET", "/api/meters/aggregates", b'{"site": {"instantpowr": 1}}')
    assert caught.value.endpoint == "GET /api/meters/aggregates"
    assert "instant_power" in str(caught.value) and "$.site" in str(caught.value)
    with pytest.raises(ParseError, match="percentage"):
        parse_response("GET", "/api/system_status/soe", b'{"Percent": 50}')
    assert parse_response("GET", "/api/system_status/soe", b'{"PERCENTAGE": 50}').raw_percent == 50


def test_new_enumeration_values_are_kept_as_sent() -> None:
    grid = parse_response("GET", "/api/system_status/grid_status", b'{"grid_status":"SystemNew2"}')
    assert grid.grid_status == "SystemNew2" and not grid.connected and not grid.islanded
    op = parse_response(
        "GET", "/api/operation", b'{"real_mode":"solar_surplus","backup_reserve_percent":20}'
    )
    assert op.mode == "solar_surplus"
    update = parse_response("GET", "/api/system/update/status", b'{"state":"/update_paused"}')
    assert update.state == "/update_paused"
    check = parse_response(
        "GET",
        "/api/system/networks/conn_tests",
        b'{"name":"Network","checks":[{"name":"x","status":"deferred"}]}',
    )
    assert check.checks and check.checks[0].status == "deferred" and not check.passed


def test_missing_optional_values_read_as_none_never_zero() -> None:
    agg = parse_response("GET", "/api/meters/aggregates", b'{"site": {"instant_power": 12}}')
    assert agg.site is not None
    assert agg.site.energy_exported_wh is None and agg.site.frequency_hz is None
    assert agg.site.communicated is None and agg.site.last_communication_time is None
    status = parse_response("GET", "/api/system_status", b'{"available_blocks": 2}')
    assert status.nominal_full_pack_energy_wh is None and status.energy_raw_percent is None
    faults = parse_response("GET", "/api/system_status/grid_faults", b'[{"alert_name": "A"}]')
    assert faults[0].time is None
    # Encoding writes back only what was read.
    assert json.loads(msgspec.json.encode(agg)) == {"site": {"instant_power": 12}}


@pytest.mark.parametrize("depth", [600, 100_000])
def test_a_body_nested_too_deeply_is_a_parse_error(depth: int) -> None:
    checks = b'[{"name":"c","status":"pass","checks":' * depth + b"null" + b"}]" * depth
    arrays = b"[" * depth + b"]" * depth
    cases = [
        ("/api/system/networks/conn_tests", b'{"name":"x","checks":' + checks + b"}"),
        ("/api/meters/aggregates", b'{"site":' + arrays + b"}"),  # the lenient reading too
        ("/api/logout", b"[" * 100_000 + b"]" * 100_000),  # no model: plain JSON
    ]
    for path, body in cases:
        with pytest.raises(ParseError, match=f"GET {path}"):
            parse_response("GET", path, body)
