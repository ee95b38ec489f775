"""Unwrap Owner API answers: the {"response": ...} envelope, its error shape, command results.

Pure functions, no I/O: the client feeds them status, headers and body bytes. The envelope
is read with one cached msgspec decoder that keeps `response` as its raw JSON bytes;
`decode_answer` then reads those bytes as a typed model (`tegkit.cloud._models`), exactly as
the gateway's bodies are read.

>>> unwrap(200, b'{"response": {"code": 201, "message": "Updated"}}', method="POST", path="/x")
b'{"code": 201, "message": "Updated"}'
>>> parse_command_result(b'{"result": true, "reason": ""}', method="POST", path="/x")
CommandResult(code=None, message=None)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar, overload

import msgspec

from tegkit import models
from tegkit._headers import retry_after_s
from tegkit.cloud._models import CommandAnswer, CommandResult
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    EndpointNotSupportedError,
    GatewayBusyError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
)

T = TypeVar("T")

REDACTED = "<redacted>"


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


class _Envelope(msgspec.Struct):
    """The Owner API's envelope; members kept as raw JSON (empty when absent), others ignored."""

    response: msgspec.Raw = msgspec.Raw(b"")
    error: msgspec.Raw = msgspec.Raw(b"")
    error_description: msgspec.Raw = msgspec.Raw(b"")


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_TEXT: Final = msgspec.json.Decoder(str | None)
# A peer's error text is quoted in messages and logs; past this it is cut.
MAX_ERROR_CHARS: Final = 500


def _text(raw: msgspec.Raw, secrets: tuple[str, ...]) -> str | None:
    """An error member as text (a JSON string as it is, any other value as its JSON),
    secrets redacted, then cut to MAX_ERROR_CHARS."""
    if not raw:
        return None
    try:
        value = _TEXT.decode(raw)
    except msgspec.DecodeError:  # a number, an object...: its JSON says more than nothing
        value = bytes(raw).decode("utf-8", "replace")
    value = redact(value, secrets)
    if value and len(value) > MAX_ERROR_CHARS:
        value = value[:MAX_ERROR_CHARS] + "…"
    return value or None


def _envelope(body: bytes | str, endpoint: str, status: int) -> _Envelope:
    """The envelope of a body; ParseError when it is not JSON or not a JSON object."""
    try:
        return _ENVELOPE.decode(body)
    except msgspec.ValidationError as exc:  # JSON, but not an object
        raise ParseError(endpoint, f"expected a JSON object: {exc}") from None
    except msgspec.DecodeError:
        raise ParseError(endpoint, f"HTTP {status} body is not JSON") from None
    except RecursionError:  # nested deeper than any answer: a peer's mischief
        raise ParseError(endpoint, "JSON nested too deeply") from None


def unwrap(
    status: int,
    body: bytes | str,
    *,
    method: str,
    path: str,
    retry_after: str | None = None,
    secrets: Iterable[str] = (),
) -> bytes:
    """The `response` member of an Owner API answer, as JSON bytes; raise the typed error.

    A status of 400 or more raises by status (with the body's `error` and
    `error_description` where it has them); a 2xx whose body carries `error` raises ApiError;
    a 2xx that is not JSON, not an object or has no `response` raises ParseError.
    """
    secrets = tuple(secrets)
    endpoint = f"{method} {path}"
    try:
        envelope: _Envelope | None = _envelope(body, endpoint, status)
    except ParseError:
        if status < 400:
            raise
        envelope = None  # an HTML error page: the status alone says what happened
    error = description = None
    if envelope is not None:
        error = _text(envelope.error, secrets)
        description = _text(envelope.error_description, secrets)
    if status >= 400:
        raise error_for_status(
            status,
            method=method,
            path=path,
            error=error,
            message=description,
            retry_after_s=retry_after_s(retry_after),
        )
    assert envelope is not None  # a 2xx without one raised above
    if error is not None:
        raise ApiError(status, method, path, error=error, message=description)
    if not envelope.response:
        raise ParseError(endpoint, "no 'response' member in the envelope")
    return bytes(envelope.response)


@overload
def decode_answer(model_type: type[T], response: object, *, method: str, path: str) -> T: ...
@overload
def decode_answer(model_type: Any, response: object, *, method: str, path: str) -> Any: ...
def decode_answer(model_type: Any, response: object, *, method: str, path: str) -> Any:
    """`response` (JSON bytes from `unwrap`, or decoded JSON) as `model_type`.

    The gateway models' decode: a cached decoder per type, the lenient second reading for
    unknown or re-cased keys, ParseError naming the endpoint and the field path. A null
    `response` is a ParseError too: the lenient reading would make it an empty answer.
    """
    endpoint = f"{method} {path}"
    if response is None or response == b"null":
        raise ParseError(endpoint, "the response is null, not an answer")
    return models.decode(model_type, response, endpoint)


def parse_command_result(response: object, *, method: str, path: str) -> CommandResult:
    """The result of a command in any success shape; a refusal in a 200 raises ApiError.

    `response` is the `response` member (JSON bytes from `unwrap`, or decoded JSON). Shapes:
    {"code": 201, "message": "Updated"}, {"Code": 200, "Message": "..."},
    {"result": true, "reason": ""}; {"result": false} and a code outside 2xx are refusals.
    """
    answer = decode_answer(CommandAnswer, response, method=method, path=path)
    if answer.result is not None:
        if answer.result:
            return CommandResult(code=None, message=answer.reason or None)
        raise ApiError(200, method, path, error="command refused", message=answer.reason or None)
    if answer.code is not None:
        if not 200 <= answer.code < 300:
            raise ApiError(
                200,
                method,
                path,
                code=answer.code,
                error="command refused",
                message=answer.message or None,
            )
        return CommandResult(code=answer.code, message=answer.message or None)
    keys = sorted(answer.raw)
    raise ParseError(f"{method} {path}", f"unknown command response shape with keys {keys}")


__all__ = [
    "CommandResult",
    "decode_answer",
    "error_for_status",
    "parse_command_result",
    "redact",
    "unwrap",
]
