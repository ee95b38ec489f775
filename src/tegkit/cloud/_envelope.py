"""Unwrap Owner API answers: the {"response": ...} envelope, its error shape, command results.

Pure functions, no I/O: the client feeds them status, headers and body bytes (or the
aiohttp error of a request that got no answer).

>>> unwrap(200, b'{"response": {"code": 201, "message": "Updated"}}', method="POST", path="/x")
{'code': 201, 'message': 'Updated'}
>>> parse_command_result({"result": True, "reason": ""}, method="POST", path="/x")
CommandResult(code=None, message=None)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tegkit._headers import retry_after_s
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    EndpointNotSupportedError,
    GatewayBusyError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
)

REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a successful command answered: its code and message, where the shape has them."""

    code: int | None
    message: str | None


def redact(text: str | None, secrets: Iterable[str]) -> str | None:
    """`text` with every secret replaced, so a token echoed by a server never leaks further."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def error_for_status(
    status: int,
    *,
    method: str,
    path: str,
    error: str | None = None,
    message: str | None = None,
    retry_after_s: float | None = None,
) -> ApiError:
    """The typed error for an HTTP error status of the Owner API or its auth host."""
    if status == 401:
        return AuthenticationError(status, method, path, error=error, message=message)
    if status == 403:
        return PermissionDeniedError(status, method, path, error=error, message=message)
    if status == 404:
        return EndpointNotSupportedError(status, method, path, error=error, message=message)
    if status == 429:
        return RateLimitedError(
            status, method, path, error=error, message=message, retry_after_s=retry_after_s
        )
    if status == 503:
        return GatewayBusyError(status, method, path, error=error, message=message)
    return ApiError(status, method, path, error=error, message=message)


def connection_problem(exc: aiohttp.ClientError) -> str:
    """Why a request got no answer, without aiohttp's repr of the SSL context."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"cannot connect to {exc.host}:{exc.port}: certificate not trusted"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        reason = os.strerror(os_error.errno) if os_error.errno else str(os_error)
        return f"cannot connect to {exc.host}:{exc.port}: {reason}"
    return f"{exc.__class__.__name__}: {exc}"


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _decode(body: bytes | str) -> Any:
    """The decoded JSON, or a marker object when the body is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def unwrap(
    status: int,
    body: bytes | str,
    *,
    method: str,
    path: str,
    retry_after: str | None = None,
    secrets: Iterable[str] = (),
) -> Any:
    """The `response` member of an Owner API answer; raise the typed error for a failure.

    A status of 400 or more raises by status (with the body's `error` and
    `error_description` where it has them); a 2xx whose body carries `error` raises ApiError;
    a 2xx that is not JSON or has no `response` raises ParseError.
    """
    secrets = tuple(secrets)
    payload = _decode(body)
    fields = payload if isinstance(payload, dict) else {}
    error = redact(_text(fields.get("error")), secrets)
    description = redact(_text(fields.get("error_description")), secrets)
    endpoint = f"{method} {path}"
    if status >= 400:
        raise error_for_status(
            status,
            method=method,
            path=path,
            error=error,
            message=description,
            retry_after_s=retry_after_s(retry_after),
        )
    if payload is _NOT_JSON:
        raise ParseError(endpoint, f"HTTP {status} body is not JSON")
    if not isinstance(payload, dict):
        raise ParseError(endpoint, f"expected a JSON object, got {type(payload).__name__}")
    if error is not None:
        raise ApiError(status, method, path, error=error, message=description)
    if "response" not in payload:
        raise ParseError(endpoint, "no 'response' member in the envelope")
    return payload["response"]


def parse_command_result(response: Any, *, method: str, path: str) -> CommandResult:
    """The result of a command in any success shape; {"result": false} raises ApiError.

    Shapes: {"code": 201, "message": "Updated"}, {"Code": 200, "Message": "..."},
    {"result": true, "reason": ""}.
    """
    endpoint = f"{method} {path}"
    if not isinstance(response, dict):
        raise ParseError(endpoint, f"command response is {type(response).__name__}, not object")
    if "result" in response:
        if response["result"] is True:
            return CommandResult(code=None, message=_text(response.get("reason")))
        reason = _text(response.get("reason"))
        raise ApiError(200, method, path, error="command refused", message=reason)
    for code_key, message_key in (("code", "message"), ("Code", "Message")):
        if code_key in response:
            code = response[code_key]
            if isinstance(code, bool) or not isinstance(code, int):
                raise ParseError(endpoint, f"{code_key} is {code!r}, not an integer")
            message = _text(response.get(message_key))
            if not 200 <= code < 300:
                raise ApiError(
                    200, method, path, code=code, error="command refused", message=message
                )
            return CommandResult(code=code, message=message)
    raise ParseError(endpoint, f"unknown command response shape with keys {sorted(response)}")


__all__ = [
    "CommandResult",
    "connection_problem",
    "error_for_status",
    "parse_command_result",
    "redact",
    "unwrap",
]
