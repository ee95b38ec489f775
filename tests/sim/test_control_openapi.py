"""The control API's OpenAPI description says what the routes are and what they do.

The document is checked three ways: against the routes `make_control_app` registers (the
same paths and methods), as OpenAPI 3.1 by openapi-spec-validator, and against a running
simulator: every documented example is accepted as documented, every value the schemas
refuse is refused (400, naming the field), and a request without the token gets 403.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, cast

from gateway_sim_helpers import Client, client, simulator
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from netns import OWN_NETNS_ADDRESS, run_in_own_netns
from tegkit.sim.control import Controller, make_control_app
from tegkit.sim.control_openapi import ROUTES, document

DOC = document()


def _registered() -> dict[str, set[str]]:
    app = make_control_app(cast(Controller, object()), "token")
    routes: dict[str, set[str]] = {}
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds one to every GET
            continue
        assert route.resource is not None
        routes.setdefault(route.resource.canonical, set()).add(route.method.lower())
    return routes


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    documented = {path: set(methods) for path, methods in DOC["paths"].items()}
    assert documented == _registered()


def test_the_description_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC)  # raises OpenAPIValidationError naming what is wrong


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for `schema` whose #/components/... references resolve in DOC."""
    root = {**schema, "components": DOC["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _answer_validator(path: str, method: str, status: int) -> Draft202012Validator:
    answer = DOC["paths"][path][method]["responses"][str(status)]
    return _validator(answer["content"]["application/json"]["schema"])


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _bad_values(schema: dict[str, Any]) -> Iterator[Any]:
    """Values `schema` refuses: the wrong type, past each bound, outside the enum."""
    types = _types(schema)
    if "enum" in schema:
        yield 418 if isinstance(schema["enum"][0], int) else "no-such-value"
    if types & {"number", "integer"}:
        yield "a string"
        if "minimum" in schema:
            yield schema["minimum"] - 1
        if "exclusiveMinimum" in schema:
            yield schema["exclusiveMinimum"]
        if "maximum" in schema:
            yield schema["maximum"] + 1
        if "number" not in types:
            yield 1.5
    if "string" in types:
        yield 5
        if "maxLength" in schema:
            yield "/" + "x" * schema["maxLength"]
        if schema.get("format") == "date-time":
            yield "not a date-time"
    if types == {"boolean"}:
        yield "yes"


def _body_schema(path: str, method: str) -> dict[str, Any] | None:
    body = DOC["paths"][path][method].get("requestBody")
    return None if body is None else body["content"]["application/json"]["schema"]


def _examples(path: str, method: str) -> list[dict[str, Any]]:
    body = DOC["paths"][path][method].get("requestBody")
    if body is None:
        return []
    examples = body["content"]["application/json"].get("examples", {})
    return [copy.deepcopy(e["value"]) for e in examples.values()]


def _base_body(path: str, field: str) -> dict[str, Any]:
    """An accepted body to spoil one field of."""
    if (path, field) == ("/faults", "seconds"):
        return {"kind": "reboot"}  # only a reboot reads seconds (refused before it reboots)
    return _examples(path, "post")[0]


def test_every_body_documented_has_an_example_the_schema_accepts() -> None:
    for op in ROUTES:
        schema = _body_schema(op.path, op.method)
        if schema is None:
            continue
        examples = _examples(op.path, op.method)
        assert examples, f"{op.method} {op.path}: no example body"
        for example in examples:
            _validator(schema).validate(example)


async def _send(c: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await c.control(method.upper(), path, body)


async def test_the_simulator_answers_as_documented() -> None:
    async with simulator(cloud_port=None) as sim, client(sim) as c:
        for op in ROUTES:
            responses = DOC["paths"][op.path][op.method]["responses"]
            bodies: list[dict[str, Any] | None] = [*_examples(op.path, op.method)] or [None]
            for body in bodies:
                status, answer = await _send(c, op.method, op.path, body)
                assert status == 200, (op.method, op.path, body, answer)
                _answer_validator(op.path, op.method, 200).validate(answer)
            if op.answer == "State":
                assert set(answer) == set(DOC["components"]["schemas"]["State"]["properties"])
            schema = _body_schema(op.path, op.method)
            if schema is None:
                continue
            refused: list[tuple[dict[str, Any], str]] = []
            for field, field_schema in schema["properties"].items():
                for bad in _bad_values(field_schema):
                    refused.append(({**_base_body(op.path, field), field: bad}, field))
            for field in schema.get("required", ()):
                body = _base_body(op.path, field)
                del body[field]
                refused.append((body, field))
            if schema.get("additionalProperties") is False:
                refused.append(({**_base_body(op.path, "x"), "no_such_key": 1}, "no_such_key"))
            status, answer = await _send(c, op.method, op.path)  # no body at all
            assert status == (400 if op.body_required else 200), (op.path, answer)
            assert "400" in responses
            for body, field in refused:
                assert list(_validator(schema).iter_errors(body)), (op.path, body)
                status, answer = await _send(c, op.method, op.path, body)
                assert status == 400, (op.method, op.path, body, answer)
                _answer_validator(op.path, op.method, 400).validate(answer)
                assert field in answer["error"], (op.path, body, answer)
            # a body that is no JSON object is refused wherever a body is read
            status, answer = await _send(c, op.method, op.path, [1])
            assert status == 400, (op.path, answer)


def _good_values(schema: dict[str, Any]) -> Iterator[Any]:
    """The edges of what `schema` allows: each enum value, each inclusive bound."""
    yield from schema.get("enum", ())
    for bound in ("minimum", "maximum"):
        if bound in schema:
            yield schema[bound]


# Accepted, but they would cut this test's own connection off (a reboot of up to 600 s, a
# certificate its client does not trust yet): their refusals are checked above, not these.
_DISRUPTIVE = {("/faults", "kind", "reboot"), ("/faults", "kind", "rotate_cert")}
_DISRUPTIVE_FIELDS = {("/faults", "seconds")}


async def test_the_edges_of_every_documented_value_are_accepted() -> None:
    async with simulator(cloud_port=None) as sim, client(sim) as c:
        for op in ROUTES:
            schema = _body_schema(op.path, op.method)
            if schema is None:
                continue
            for field, field_schema in schema["properties"].items():
                if (op.path, field) in _DISRUPTIVE_FIELDS:
                    continue
                for good in _good_values(field_schema):
                    if (op.path, field, good) in _DISRUPTIVE:
                        continue
                    body = {**_base_body(op.path, field), field: good}
                    _validator(schema).validate(body)
                    status, answer = await _send(c, op.method, op.path, body)
                    assert status == 200, (op.path, body, answer)
                    await _send(c, "delete", "/faults")  # at most 64 armed at once


async def test_an_open_body_ignores_unknown_keys_as_documented() -> None:
    async with simulator(cloud_port=None) as sim, client(sim) as c:
        for op in ROUTES:
            schema = _body_schema(op.path, op.method)
            if schema is None or schema.get("additionalProperties") is False:
                continue
            body = {**_examples(op.path, op.method)[0], "no_such_key": 1}
            _validator(schema).validate(body)
            status, answer = await _send(c, op.method, op.path, body)
            assert status == 200, (op.path, answer)


async def test_without_the_token_only_the_description_answers() -> None:
    async with simulator(cloud_port=None) as sim, client(sim) as c:
        for op in ROUTES:
            status, answer, _ = await c.request(op.method.upper(), "/sim" + op.path, body={})
            if op.needs_token:
                assert "security" not in DOC["paths"][op.path][op.method]  # the global one
                assert status == 403, (op.path, answer)
                _answer_validator(op.path, op.method, 403).validate(answer)
            else:
                assert DOC["paths"][op.path][op.method]["security"] == []
                assert status == 200
                assert answer == DOC  # served as built, no token needed


def test_the_description_answers_loopback_clients_only() -> None:
    # a client on the non-loopback address of a network namespace of this test's own
    code = f"""
import asyncio, aiohttp
from tegkit.sim import Simulator

async def main():
    async with Simulator(host="0.0.0.0", cloud_port=None) as sim, aiohttp.ClientSession() as s:
        url = f"https://{OWN_NETNS_ADDRESS}:{{sim.port}}/sim/openapi.json"
        async with s.get(url, ssl=False) as r:
            print(r.status, (await r.json())["error"])

asyncio.run(main())
"""
    status, _, error = run_in_own_netns(code).strip().partition(" ")
    assert status == "403"
    assert "loopback" in error
