"""The envelope functions on literal shapes seen in practice, and the shared validators."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from tegkit._headers import retry_after_s
from tegkit.cloud._envelope import CommandResult, parse_command_result, unwrap
from tegkit.errors import ApiError, InvalidInputError, ParseError, RateLimitedError
from tegkit.ownerapi import (
    SUCCESS_SHAPES,
    check_backup_reserve_app_percent,
    check_operation_mode,
    check_site_name,
    success_body,
)

KW = {"method": "POST", "path": "/api/1/energy_sites/1/backup"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"response": {"code": 201, "message": "Updated"}}', CommandResult(201, "Updated")),
        (
            '{"response": {"Code": 200, "Message": "Site name updated"}}',
            CommandResult(200, "Site name updated"),
        ),
        ('{"response": {"result": true, "reason": ""}}', CommandResult(None, None)),
    ],
)
def test_success_shapes(body: str, expected: CommandResult) -> None:
    assert parse_command_result(unwrap(200, body, **KW), **KW) == expected


@pytest.mark.parametrize("shape", SUCCESS_SHAPES)
def test_the_simulators_bodies_parse(shape: str) -> None:
    body = json.dumps({"response": success_body(shape)})  # type: ignore[arg-type]
    assert parse_command_result(unwrap(200, body, **KW), **KW).message in ("Updated", None)


@pytest.mark.parametrize(
    "response",
    [
        {"result": False, "reason": "nope"},
        {"code": 400, "message": "bad"},
        {"Code": 500, "Message": "bad"},
    ],
)
def test_refusals_in_a_200(response: object) -> None:
    with pytest.raises(ApiError) as info:
        parse_command_result(response, **KW)
    assert info.value.status == 200


@pytest.mark.parametrize("response", [None, [], {"code": "201"}, {"code": True}, {"other": 1}])
def test_unknown_shapes(response: object) -> None:
    with pytest.raises(ParseError):
        parse_command_result(response, **KW)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("<html>proxy</html>", "HTTP 200 body is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"count": 1}', "no 'response' member"),
        ("", "HTTP 200 body is not JSON"),
    ],
)
def test_bad_envelopes_are_parse_errors_saying_why(body: str, said: str) -> None:
    with pytest.raises(ParseError, match=said) as info:
        unwrap(200, body, **KW)
    assert info.value.endpoint == "POST /api/1/energy_sites/1/backup"


def test_unwrap_gives_the_response_as_json_bytes() -> None:
    body = '{"response": [{"energy_site_id": 1}], "count": 1}'
    assert json.loads(unwrap(200, body, **KW)) == [{"energy_site_id": 1}]


def test_error_shape() -> None:
    body = '{"response": null, "error": "invalid bearer token", "error_description": ""}'
    with pytest.raises(ApiError) as info:
        unwrap(200, body, **KW)
    assert (info.value.error, info.value.message) == ("invalid bearer token", None)
    with pytest.raises(RateLimitedError) as limited:
        unwrap(429, body, retry_after="3", **KW)
    assert limited.value.retry_after_s == 3.0


def test_unwrap_redacts_secrets() -> None:
    body = '{"response": null, "error": "bad s3cret", "error_description": "s3cret!"}'
    with pytest.raises(ApiError) as info:
        unwrap(401, body, secrets=("s3cret",), **KW)
    assert "s3cret" not in str(info.value)


def test_retry_after_as_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after_s(later, now_s=now.timestamp()) == 30.0
    assert retry_after_s("-5") is None  # negative: ignored, the caller's default wait applies
    assert retry_after_s("") is None


@pytest.mark.parametrize(("value", "wire"), [(0, 0), (100, 100), (20.0, 20), (12.5, 12.5)])
def test_reserve_wire_values(value: float, wire: float) -> None:
    sent = check_backup_reserve_app_percent(value)
    assert sent == wire and type(sent) is type(wire)


@pytest.mark.parametrize("value", [-0.1, 100.01, float("inf"), float("nan"), "50", None, False])
def test_reserve_rejects(value: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_backup_reserve_app_percent(value)
    assert info.value.field == "backup_reserve_percent"
    assert "0 to 100" in info.value.allowed


def test_mode_and_name() -> None:
    assert check_operation_mode("backup") == "backup"
    with pytest.raises(InvalidInputError) as info:
        check_operation_mode("Backup")
    assert "self_consumption, backup, autonomous" in str(info.value)
    assert check_site_name("Zuhause ä") == "Zuhause ä"
    for bad in ("", " ", "x" * 65, "tab\there", 7):
        with pytest.raises(InvalidInputError):
            check_site_name(bad)
