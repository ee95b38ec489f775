"""The control API's OpenAPI 3.1 description, served at GET /sim/openapi.json.

One table, ROUTES, says for each route of `control.make_control_app` what it does, the
body it takes and what it answers; tests/sim/test_control_openapi.py checks that the table
and the registered routes are the same set and that the server answers as documented.
Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), so any validator can check bodies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, get_args

import msgspec

from tegkit.models.vocabulary import (
    ExportRule,
    GridStatusValue,
    MeterName,
    OperationMode,
    power_name,
)
from tegkit.sim import control
from tegkit.sim.faults import FAULT_KINDS, MAX_FAULTS, RequestFaultKind, SiteFaultKind
from tegkit.sim.profiles import PROFILES

#: the version of this description (info.version): grows when a route or body changes
VERSION = "1"

_NUMBER: dict[str, Any] = {"type": "number"}
_INSTANT: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with a UTC offset, e.g. 2024-07-01T17:00:00-07:00",
}
_FIRMWARE: dict[str, Any] = {
    "type": "string",
    "maxLength": 20,
    "description": "a firmware profile: "
    + ", ".join(PROFILES)
    + " (a longer version such as 21.39.1 is its profile's)",
    "examples": ["23.44"],
}
_SOLAR_W, _LOAD_W = power_name(MeterName.SOLAR), power_name(MeterName.LOAD)


def _object(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False
) -> dict[str, Any]:
    """An object schema; `closed`: the route refuses other keys (400), else it ignores them."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _range(low: float, high: float, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "minimum": low, "maximum": high}
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_COUNTER = _object(
    {"imported_wh": _NUMBER, "exported_wh": _NUMBER}, ("imported_wh", "exported_wh"), closed=True
)

_REQUEST_FAULT = _object(
    {
        "kind": {"type": "string", "enum": list(get_args(RequestFaultKind))},
        "remaining": {"type": ["integer", "null"], "description": "null: until cleared"},
        "probability": _NUMBER,
        "latency_ms": _NUMBER,
        "status": {"type": "integer"},
        "path_prefix": {"type": "string"},
    },
    ("kind", "remaining", "probability", "latency_ms", "status", "path_prefix"),
    closed=True,
)

#: what the simulator is doing now: the answer of most routes (Simulator.state())
_STATE = _object(
    {
        "now": {**_INSTANT, "description": "the simulated clock, in the site's time zone"},
        "speed": {**_NUMBER, "description": "simulated seconds per real second"},
        "firmware": {"type": "string"},
        "running": {"type": "boolean", "description": "sitemaster running"},
        "mode": {"type": "string", "enum": [str(m) for m in OperationMode]},
        "backup_reserve_raw_percent": _NUMBER,
        "grid_charging_allowed": {"type": "boolean"},
        "export_rule": {"type": "string", "enum": [str(r) for r in ExportRule]},
        "storm_watch": {"type": "boolean"},
        "staged_operation": {"type": "object"},
        "commission_count": {"type": "integer"},
        "site_name": {"type": "string"},
        "timezone": {"type": "string"},
        **{power_name(m): {**_NUMBER, "description": f"{m} power in W"} for m in MeterName},
        "frequency_hz": _NUMBER,
        "voltage_v": _NUMBER,
        "soe_raw_percent": _NUMBER,
        "soe_app_percent": _NUMBER,
        "energy_remaining_wh": _NUMBER,
        "full_pack_wh": _NUMBER,
        "grid_status": {"type": "string", "enum": [str(s) for s in GridStatusValue]},
        "home_dark": {"type": "boolean"},
        "counters": _object({str(m): _COUNTER for m in MeterName}, tuple(map(str, MeterName))),
        "sessions": {"type": "integer", "description": "open login sessions"},
        "faults": {"type": "array", "items": _ref("RequestFault")},
        "update": _object(
            {
                "state": {"type": "string"},
                "status": {"type": "string"},
                "offered": {"type": ["string", "null"]},
                "fail": {"type": "boolean"},
                "started_by": {"type": ["string", "null"]},
                "auto_install_at": {"type": ["string", "null"], "format": "date-time"},
            },
            ("state", "status", "offered", "fail", "started_by", "auto_install_at"),
        ),
        "fingerprint_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
)
_STATE["required"] = list(_STATE["properties"])

_ERROR = _object(
    {"code": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
    ("code", "error", "message"),
    closed=True,
)

_FAULT_RESULT = {
    "description": "a per-request fault as armed, or what a site fault did",
    "anyOf": [
        _ref("RequestFault"),
        _object(
            {
                "kind": {"enum": list(get_args(SiteFaultKind))},
                "fingerprint_sha256": {"type": "string", "description": "rotate_cert: the new"},
                "seconds": {**_NUMBER, "description": "reboot: how long the port stays closed"},
            },
            ("kind",),
            closed=True,
        ),
    ],
}

SCHEMAS: dict[str, Any] = {
    "State": _STATE,
    "RequestFault": _REQUEST_FAULT,
    "FaultResult": _FAULT_RESULT,
    "Error": _ERROR,
    "Revoked": _object({"revoked": {"const": True}}, ("revoked",), closed=True),
    "OpenAPI": {"type": "object", "description": "this document"},
}


@dataclass(frozen=True, slots=True)
class ControlRoute:
    """One route: `path` is relative to /sim; `answer` names the schema of the 200 body."""

    method: str
    path: str
    summary: str
    description: str = ""
    body: dict[str, Any] | None = None
    body_required: bool = False
    examples: dict[str, Any] = field(default_factory=dict)  # name -> an accepted body
    answer: str = "State"
    rejects_input: bool = True  # 400 when the body (or the value it asks for) is refused
    needs_token: bool = True


ROUTES: tuple[ControlRoute, ...] = (
    ControlRoute("get", "/state", "What the simulator is doing now", rejects_input=False),
    ControlRoute(
        "post",
        "/time",
        "Jump the clock forward and/or set its speed",
        "The clock only moves forward (counters only grow), at most 31 days per call; "
        "physics runs through the gap.",
        _object(
            {
                "at": _INSTANT,
                "speed": _range(0, 100_000, "simulated seconds per real second (0: stopped)"),
            }
        ),
        examples={"stop the clock": {"speed": 0}},
    ),
    ControlRoute(
        "post",
        "/advance",
        "Move the clock by exactly this many simulated seconds",
        "Deterministic stepping for tests; timed scenario events happen at their instants.",
        _object({"seconds": _range(0, control._MAX_JUMP_S)}, ("seconds",)),
        body_required=True,
        examples={"an hour": {"seconds": 3600}},
    ),
    ControlRoute(
        "post",
        "/outage",
        "The grid goes down",
        "With minutes, it comes back after that much simulated time; else until DELETE.",
        _object({"minutes": _range(0, 366 * 1440)}),
        examples={"half an hour": {"minutes": 30}},
    ),
    ControlRoute("delete", "/outage", "The grid comes back", rejects_input=False),
    ControlRoute(
        "post",
        "/override",
        "Pin solar and/or load power (null: back to the modelled value)",
        body=_object(
            {
                _SOLAR_W: _nullable(_range(0, 1e6, "solar power in W")),
                _LOAD_W: _nullable(_range(0, 1e6, "home load in W")),
            },
            closed=True,
        ),
        examples={"a cloudy evening": {_SOLAR_W: 0, _LOAD_W: 2500}},
    ),
    ControlRoute(
        "post",
        "/faults",
        "Arm a fault",
        "Per request (latency, drop, rate_limit, status) on paths starting with path_prefix: "
        "count times (null: until cleared; a certain drop without count drops once), each "
        f"with the given probability (seeded). At most {MAX_FAULTS} armed at once. "
        "Whole simulator: expire_sessions (logins end), rotate_cert (a new certificate and "
        "fingerprint for new connections), reboot (the local port refuses connections for "
        "seconds, real time).",
        _object(
            {
                "kind": {"type": "string", "enum": list(FAULT_KINDS)},
                "count": {"type": ["integer", "null"], "minimum": 1},
                "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "latency_ms": _range(0, 60_000),
                "status": {
                    "type": "integer",
                    "enum": [500, 502, 503, 504],
                    "description": "kind status (default 502); rate_limit answers 429",
                },
                "path_prefix": {
                    "type": "string",
                    "pattern": "^/",
                    "maxLength": 200,
                    "description": "default /api/",
                },
                "seconds": _range(0, 600, "reboot: how long the port stays closed (default 2)"),
            },
            ("kind",),
            closed=True,
        ),
        body_required=True,
        examples={
            "two 503 answers": {"kind": "status", "status": 503, "count": 2},
            "slow live data": {"kind": "latency", "latency_ms": 1, "path_prefix": "/api/meters"},
            "logins end": {"kind": "expire_sessions"},
        },
        answer="FaultResult",
    ),
    ControlRoute("delete", "/faults", "Clear every armed per-request fault", rejects_input=False),
    ControlRoute(
        "post",
        "/sitemaster",
        "Stop or run sitemaster",
        "Stopped, live endpoints answer 502 as on a gateway whose sitemaster is stopped.",
        _object({"running": {"type": "boolean"}}, ("running",)),
        body_required=True,
        examples={"stop": {"running": False}},
    ),
    ControlRoute(
        "post",
        "/update",
        "What the next firmware update check finds; start an update",
        "version null: up to date. fail: the update fails once downloaded. start: begin an "
        "update now, as the gateway does by itself (the install stops the Powerwalls for 15 "
        "simulated minutes).",
        _object(
            {
                "version": {**_FIRMWARE, "type": ["string", "null"]},
                "fail": {"type": "boolean"},
                "start": {"type": "boolean"},
            },
            closed=True,
        ),
        examples={"offer 23.44": {"version": "23.44"}},
    ),
    ControlRoute(
        "post",
        "/firmware_release",
        "A firmware is released",
        "The update check finds it; unless an update is started first, the gateway installs "
        "it by itself at a seeded instant within auto_install_within_h hours (0: never), "
        "shown as update.auto_install_at. With at (later), the release happens then.",
        _object(
            {
                "version": _FIRMWARE,
                "auto_install_within_h": _range(0, 366 * 24),
                "at": _INSTANT,
            },
            ("version",),
            closed=True,
        ),
        body_required=True,
        examples={"within a day": {"version": "23.44", "auto_install_within_h": 24}},
    ),
    ControlRoute(
        "post",
        "/cloud/revoke",
        "The owner revokes the app's cloud access",
        "Both Owner API tokens stop working; the next refresh is refused (invalid_grant).",
        answer="Revoked",
        rejects_input=False,
    ),
    ControlRoute(
        "get",
        "/openapi.json",
        "This description",
        "Loopback clients only, like every control route, but no token needed.",
        answer="OpenAPI",
        rejects_input=False,
        needs_token=False,
    ),
)


def _operation(op: ControlRoute) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "200": {
            "description": op.summary,
            "content": {"application/json": {"schema": _ref(op.answer)}},
        }
    }
    error = {"content": {"application/json": {"schema": _ref("Error")}}}
    if op.rejects_input:
        answers["400"] = {"description": "refused input: the message names the field", **error}
    answers["403"] = {
        "description": "not a loopback client" + (", or a missing or wrong token" * op.needs_token),
        **error,
    }
    doc: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('.', '_')}",
        "summary": op.summary,
        "responses": answers,
    }
    if op.description:
        doc["description"] = op.description
    if not op.needs_token:
        doc["security"] = []
    if op.body is not None:
        media: dict[str, Any] = {"schema": op.body}
        if op.examples:
            media["examples"] = {name: {"value": v} for name, v in op.examples.items()}
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": media},
        }
    return doc


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tegkit simulator control API",
            "version": VERSION,
            "description": (
                "Drives a running `teg sim`: its clock, the grid, readings, faults, "
                "sitemaster and firmware. Answered on the local API's port under /sim, to "
                "loopback clients only, with the control token of the start line "
                "(Authorization: Bearer TOKEN, or X-Sim-Token: TOKEN)."
            ),
        },
        "servers": [{"url": "/sim", "description": "relative to the simulator's local URL"}],
        "security": [{"bearer": []}, {"simToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "simToken": {"type": "apiKey", "in": "header", "name": "X-Sim-Token"},
            },
        },
    }


@functools.cache
def document_bytes() -> bytes:
    return msgspec.json.encode(document())


__all__ = ["ROUTES", "SCHEMAS", "VERSION", "ControlRoute", "document", "document_bytes"]
